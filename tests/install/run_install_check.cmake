# Installs the build tree into a scratch prefix, then builds a small consumer
# with find_package(int8train) and another with pkg-config, and runs both.
file(REMOVE_RECURSE ${BIN})
execute_process(COMMAND ${CMAKE_COMMAND} --install ${BIN}/../.. --prefix ${BIN}/prefix
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "cmake --install failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SRC}/tests/install -B ${BIN}/consumer -G ${GENERATOR}
                        -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_PREFIX_PATH=${BIN}/prefix
                        "-DCMAKE_C_FLAGS=${CONSUMER_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${CONSUMER_FLAGS}"
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the find_package consumer failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BIN}/consumer RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the find_package consumer failed")
endif()
execute_process(COMMAND ${BIN}/consumer/consumer RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "the find_package consumer failed")
endif()
# pkg-config route.
file(GLOB pcdir ${BIN}/prefix/lib*/pkgconfig ${BIN}/prefix/lib/*/pkgconfig)
execute_process(COMMAND env PKG_CONFIG_PATH=${pcdir} pkg-config --cflags --libs int8train
                OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "pkg-config does not find int8train.pc in ${pcdir}")
endif()
separate_arguments(flags)
execute_process(COMMAND ${C_COMPILER} ${SRC}/tests/install/consumer.c -o ${BIN}/pc_consumer ${flags} ${CONSUMER_FLAGS}
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the pkg-config consumer failed")
endif()
file(GLOB libdir ${BIN}/prefix/lib*/libint8train.so ${BIN}/prefix/lib/*/libint8train.so)
get_filename_component(libdir "${libdir}" DIRECTORY)
execute_process(COMMAND env LD_LIBRARY_PATH=${libdir} ${BIN}/pc_consumer RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "the pkg-config consumer failed")
endif()
