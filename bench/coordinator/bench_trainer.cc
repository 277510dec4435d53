// bench_trainer: a stand-in for sweep-train for the overhead benchmark. It keeps the
// trainer's contract with sweep-worker (docs/worker.md): `probe` prints one CPU device;
// `run --job FILE --workdir DIR [--resume]` prints a start line, step lines spread over
// BENCH_TRAINER_SECONDS (default 0.1) and a final line, BENCH_TRAINER_POINTS lines in all
// (default 20), then exits 0. A compiled stand-in, so the trainer's own start costs little
// next to what sweepd and sweep-worker add per job.
#include <chrono>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

double EnvNumber(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atof(v) : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "probe") == 0) {
    std::puts(R"({"devices":[{"kind":"cpu","index":0,"name":"bench-cpu","memory_bytes":0}]})");
    return 0;
  }
  if (argc < 2 || std::strcmp(argv[1], "run") != 0) {
    std::fprintf(stderr, "bench_trainer: usage: bench_trainer probe | run --job FILE --workdir DIR\n");
    return 2;
  }
  const double seconds = EnvNumber("BENCH_TRAINER_SECONDS", 0.1);
  const int points = std::max(2, static_cast<int>(EnvNumber("BENCH_TRAINER_POINTS", 20)));
  const int steps = points - 2;
  const auto start = std::chrono::steady_clock::now();
  std::printf("{\"type\":\"start\",\"resumed_from\":0}\n");
  std::fflush(stdout);
  for (int k = 1; k <= steps; ++k) {
    std::this_thread::sleep_until(start + std::chrono::duration<double>(seconds * k / (steps + 1)));
    std::printf("{\"type\":\"step\",\"step\":%d,\"total_steps\":%d,\"loss\":%.3f,\"lr\":0.001,"
                "\"tokens_per_s\":1000.0}\n",
                k, steps, 2.0 - 0.01 * k);
    std::fflush(stdout);
  }
  std::this_thread::sleep_until(start + std::chrono::duration<double>(seconds));
  std::printf("{\"type\":\"final\",\"kind\":\"train\",\"steps\":%d,\"final_loss\":1.0,"
              "\"scores\":{}}\n",
              steps);
  return 0;
}
