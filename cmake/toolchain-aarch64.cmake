# Cross build for aarch64 Linux (Debian's gcc-aarch64-linux-gnu) with the arm64
# multiarch libraries (cmocka, hwloc, zlib :arm64); ctest runs the tests under
# qemu-aarch64. Usage: cmake -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake ...
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(I8T_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${I8T_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${I8T_CROSS_TRIPLE}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${I8T_CROSS_TRIPLE})

# -E LD_LIBRARY_PATH keeps the dynamic loader and libc from the same glibc
# build: with the arm64 multiarch libc installed, -L alone pairs the cross
# toolchain's ld.so with the multiarch libc.so.6 and pthread_create hangs.
# The CPU model comes from QEMU_CPU (e.g. max: SDOT; cortex-a53: none).
set(CMAKE_CROSSCOMPILING_EMULATOR
    qemu-aarch64 -L /usr/${I8T_CROSS_TRIPLE}
    -E LD_LIBRARY_PATH=/usr/${I8T_CROSS_TRIPLE}/lib:/usr/lib/${I8T_CROSS_TRIPLE}:/lib/${I8T_CROSS_TRIPLE})

# Target libraries: the multiarch arm64 .pc files, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${I8T_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
set(CMAKE_IGNORE_PATH /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu)

# Neither oneDNN nor Google Benchmark exists for the cross target here.
set(I8T_WITH_ONEDNN OFF CACHE BOOL "Use oneDNN (not available for the aarch64 cross build)")
set(I8T_BUILD_BENCH OFF CACHE BOOL "Build int8train_bench (Google Benchmark: not available cross)")
