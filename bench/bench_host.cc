// host/parallel_ceiling/{fma,l2,mem}/t<N>: the most any parallel pass can gain
// from N threads on this machine at the time of the run, measured beside the
// GEMM and training-step cases so that their thread scaling can be read
// against it.
//
// The work is fixed and shares nothing, cut into many small chunks that N
// pinned threads take from an atomic counter: perfectly balanced even when
// one core is slower. `fma` is register-only FMA throughput (the vector
// units the int8 kernels use); `l2` sums a 512 KiB per-thread buffer that
// stays in the core's L2 (as a GEMM's packed blocks do); `mem` streams a
// 64 MiB per-thread buffer from memory (the shared L3 and memory bus, which
// a GEMM's operands cross once per call when they exceed L2). On a quiet
// dedicated machine fma and l2 scale by nearly N x (less what the clock
// loses with more cores busy) and mem by what the memory bus allows; on a
// shared VM they show what the host takes (a tenant on a core's hyperthread
// sibling competing for its caches or vector units, a descheduled vCPU, a
// memory bus shared with other machines), which no split of the work can
// win back. Threads are pinned as the library's workers are (thread i on the
// i-th CPU the process could use; the caller on the first).
#include <sched.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "bench_common.h"

namespace i8t_bench {
namespace {

// Chunks per fork-join: the last one leaves the threads under 1 % apart, and
// taking one (an atomic add on a line the other core last wrote, about
// 0.1 us) costs under 2 % of it.
constexpr int kChunks = 64;
constexpr long kLoopsPerChunk = 4096;   // 1 thread: about 0.5 ms per fork-join (AVX-512)
constexpr int kAccumulators = 10;       // independent FMA chains: 2 per cycle x 4-5 latency
constexpr size_t kL2Bytes = 512 << 10;  // per thread: a quarter of a 2 MiB L2
constexpr int kL2PassesPerChunk = 2;    // 1 thread: about 0.5 ms per fork-join
constexpr size_t kMemBytes = 64 << 20;  // per thread: far beyond any L3 share
constexpr size_t kMemChunkBytes = 128 << 10; // 1 thread: about 0.3 ms per fork-join

#if defined(__x86_64__)
__attribute__((target("avx512f"))) float fma_chunk_avx512(long loops) {
  __m512 acc[kAccumulators];
  for (int i = 0; i < kAccumulators; i++) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 m = _mm512_set1_ps(0.999f), a = _mm512_set1_ps(1e-3f);
  for (long l = 0; l < loops; l++)
    for (int i = 0; i < kAccumulators; i++) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
  float lanes[16], s = 0.0f;
  for (int i = 0; i < kAccumulators; i++) {
    _mm512_storeu_ps(lanes, acc[i]);
    for (float x : lanes) s += x;
  }
  return s;
}
#endif

// The portable chunk: GCC vector extensions (SSE on x86-64, NEON on aarch64).
float fma_chunk_portable(long loops) {
  typedef float v4f __attribute__((vector_size(16)));
  v4f acc[kAccumulators];
  for (int i = 0; i < kAccumulators; i++) acc[i] = v4f{} + static_cast<float>(i);
  const v4f m = v4f{} + 0.999f, a = v4f{} + 1e-3f;
  for (long l = 0; l < loops; l++)
    for (int i = 0; i < kAccumulators; i++) acc[i] = acc[i] * m + a;
  float s = 0.0f;
  for (int i = 0; i < kAccumulators; i++) s += acc[i][0] + acc[i][1] + acc[i][2] + acc[i][3];
  return s;
}

// Sums `bytes` (a multiple of 256) from p in 64-byte vectors, 4 chains.
typedef uint32_t v16u __attribute__((vector_size(64), aligned(64)));
#if defined(__x86_64__)
__attribute__((target("avx512f"))) uint32_t sum_u32_avx512(const uint8_t *p, size_t bytes) {
  __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                    _mm512_setzero_si512()};
  for (size_t i = 0; i < bytes; i += 256)
    for (int k = 0; k < 4; k++)
      acc[k] = _mm512_add_epi32(acc[k], _mm512_load_si512(p + i + 64 * k));
  uint32_t lanes[16], s = 0;
  for (int k = 0; k < 4; k++) {
    _mm512_storeu_si512(lanes, acc[k]);
    for (uint32_t x : lanes) s += x;
  }
  return s;
}
#endif

uint32_t sum_u32_portable(const uint8_t *p, size_t bytes) {
  v16u acc[4] = {};
  for (size_t i = 0; i < bytes; i += 256)
    for (int k = 0; k < 4; k++) acc[k] += *reinterpret_cast<const v16u *>(p + i + 64 * k);
  uint32_t s = 0;
  for (int k = 0; k < 4; k++)
    for (int l = 0; l < 16; l++) s += acc[k][l];
  return s;
}

enum class Work { kFma, kL2, kMem };

// What a thread reads: its own buffer, allocated and first touched by it,
// and where its next slice starts (kMem streams through the whole buffer, so
// that nothing is left in a cache from one slice to its next use).
class Stream {
 public:
  explicit Stream(Work work)
      : bytes_(work == Work::kL2 ? kL2Bytes : work == Work::kMem ? kMemBytes : 0),
        p_(bytes_ ? static_cast<uint8_t *>(std::aligned_alloc(64, bytes_)) : nullptr) {
    if (p_) std::memset(p_, 1, bytes_);
  }
  ~Stream() { std::free(p_); }
  Stream(const Stream &) = delete;
  Stream &operator=(const Stream &) = delete;
  bool ok() const { return bytes_ == 0 || p_; }
  // The next `bytes` of the buffer (bytes divides its size).
  const uint8_t *next(size_t bytes) {
    const uint8_t *p = p_ + pos_;
    pos_ = (pos_ + bytes) % bytes_;
    return p;
  }

 private:
  size_t bytes_;
  uint8_t *p_;
  size_t pos_ = 0;
};

bool has_avx512() {
#if defined(__x86_64__)
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
#else
  return false;
#endif
}

uint32_t sum_bytes(const uint8_t *p, size_t bytes) {
#if defined(__x86_64__)
  if (has_avx512()) return sum_u32_avx512(p, bytes);
#endif
  return sum_u32_portable(p, bytes);
}

// One chunk of `work`, reading from the running thread's stream.
float run_chunk(Work work, Stream &in) {
  switch (work) {
    case Work::kFma:
#if defined(__x86_64__)
      if (has_avx512()) return fma_chunk_avx512(kLoopsPerChunk);
#endif
      return fma_chunk_portable(kLoopsPerChunk);
    case Work::kL2: {
      uint32_t s = 0;
      for (int pass = 0; pass < kL2PassesPerChunk; pass++) s += sum_bytes(in.next(kL2Bytes), kL2Bytes);
      return static_cast<float>(s);
    }
    case Work::kMem:
      return static_cast<float>(sum_bytes(in.next(kMemChunkBytes), kMemChunkBytes));
  }
  return 0.0f;
}

// The CPUs this process could run on at start-up, in order (read once at
// registration: the library pins the calling thread while it runs a pass).
std::vector<int> read_usable_cpus() {
  cpu_set_t set;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; c++)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

const std::vector<int> &usable_cpus() {
  static const std::vector<int> cpus = read_usable_cpus();
  return cpus;
}

bool pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

// N threads (the caller and N - 1 spinning helpers) that run one job of
// kChunks chunks at a time.
class Team {
 public:
  Team(int threads, Work work, std::vector<int> cpus)
      : cpus_(std::move(cpus)), work_(work), own_(work) {
    for (int i = 1; i < threads; i++) helpers_.emplace_back([this, i] { helper(i); });
    // Not before every helper is pinned and has its buffer: a helper still
    // filling 64 MiB would hold up the first timed job by milliseconds.
    while (ready_.load(std::memory_order_acquire) != threads - 1) relax();
  }
  ~Team() {
    stop_.store(true);
    generation_.fetch_add(1);
    for (auto &t : helpers_) t.join();
  }
  // Whether a thread could not allocate its buffer (the results are then void).
  bool failed() const { return failed_.load(); }
  // Runs one job; the caller takes chunks too. Returns the checksum.
  float run() {
    next_.store(0, std::memory_order_relaxed);
    pending_.store(static_cast<int>(helpers_.size()), std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    float s = take_chunks(own_);
    while (pending_.load(std::memory_order_acquire) != 0) relax();
    return s;
  }

 private:
  static void relax() {
#if defined(__x86_64__)
    _mm_pause();
#endif
  }
  float take_chunks(Stream &in) {
    float s = 0.0f;
    if (!in.ok()) { // no buffer: leave the chunks to the others
      failed_.store(true);
      return s;
    }
    while (next_.fetch_add(1, std::memory_order_relaxed) < kChunks) s += run_chunk(work_, in);
    return s;
  }
  void helper(int index) {
    if (!cpus_.empty()) pin_to(cpus_[static_cast<size_t>(index) % cpus_.size()]);
    Stream own(work_); // after pinning: its pages on this thread's node
    ready_.fetch_add(1, std::memory_order_release);
    unsigned seen = 0; // the generation before the first job, whenever this thread starts
    for (;;) {
      unsigned g;
      while ((g = generation_.load(std::memory_order_acquire)) == seen) relax();
      seen = g;
      if (stop_.load()) return;
      float s = take_chunks(own);
      benchmark::DoNotOptimize(s);
      pending_.fetch_sub(1, std::memory_order_release);
    }
  }

  std::vector<int> cpus_;
  Work work_;
  Stream own_; // the caller's
  std::vector<std::thread> helpers_;
  std::atomic<unsigned> generation_{0};
  std::atomic<int> next_{0}, pending_{0}, ready_{0};
  std::atomic<bool> stop_{false}, failed_{false};
};

void parallel_ceiling(benchmark::State &state, Work work, int threads) {
  const std::vector<int> &cpus = usable_cpus();
  if (static_cast<int>(cpus.size()) < threads) {
    state.SkipWithError("fewer usable CPUs than threads");
    return;
  }
  cpu_set_t saved;
  bool restore = sched_getaffinity(0, sizeof saved, &saved) == 0;
  pin_to(cpus[0]);
  {
    Team team(threads, work, cpus);
    float sink = 0.0f;
    for (auto _ : state) sink += team.run();
    benchmark::DoNotOptimize(sink);
    if (team.failed()) state.SkipWithError("no memory for a thread's buffer");
  }
  if (restore) sched_setaffinity(0, sizeof saved, &saved);
}

[[maybe_unused]] const bool registered = [] {
  usable_cpus();
  for (auto [work, name] : {std::pair{Work::kFma, "fma"}, std::pair{Work::kL2, "l2"},
                            std::pair{Work::kMem, "mem"}})
    for (int threads : thread_counts())
      add_case(std::string("host/parallel_ceiling/") + name + "/" + threads_token(threads),
               [work = work, threads](benchmark::State &s) { parallel_ceiling(s, work, threads); });
  return true;
}();

}  // namespace
}  // namespace i8t_bench
