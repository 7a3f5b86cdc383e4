// gojodb-raft-sim --seeds N [--seed S] [--steps K] [--verbose]
//
// Runs seeds S, S+1, ..., S+N-1 (S defaults to 1; with --seed alone, N is 1) and
// stops at the first failure, printing its seed and the command that replays it.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tests/sim/raft/simulator.h"

namespace {

bool ParseU64(const char* s, uint64_t* out) {
  if (s == nullptr || *s == '\0') return false;
  char* end = nullptr;
  unsigned long long v = std::strtoull(s, &end, 10);
  if (*end != '\0') return false;
  *out = v;
  return true;
}

int Usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--seeds N] [--seed S] [--steps K] [--verbose]\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t seeds = 0, first = 1;
  bool seed_given = false;
  gojodb::sim::SimOptions opt;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (std::strcmp(a, "--seeds") == 0 && ParseU64(v, &seeds)) {
      ++i;
    } else if (std::strcmp(a, "--seed") == 0 && ParseU64(v, &first)) {
      seed_given = true;
      ++i;
    } else if (std::strcmp(a, "--steps") == 0 && ParseU64(v, &opt.steps)) {
      ++i;
    } else if (std::strcmp(a, "--verbose") == 0) {
      opt.verbose = true;
    } else {
      return Usage(argv[0]);
    }
  }
  if (seeds == 0) seeds = seed_given ? 1 : 100;
  auto start = std::chrono::steady_clock::now();
  uint64_t ticks = 0, applied = 0, leaders = 0, crashes = 0, confs = 0, snaps = 0, reads = 0;
  for (uint64_t s = first; s < first + seeds; ++s) {
    gojodb::sim::SimResult r = gojodb::sim::RunSimulation(s, opt);
    if (!r.ok) {
      std::printf(
          "FAIL seed=%llu: %s\n  params: %s\n  replay: %s --seed %llu --steps %llu --verbose\n",
          static_cast<unsigned long long>(s), r.failure.c_str(), r.params.c_str(), argv[0],
          static_cast<unsigned long long>(s), static_cast<unsigned long long>(opt.steps));
      return 1;
    }
    ticks += r.ticks;
    applied += r.applied;
    leaders += r.leaders;
    crashes += r.crashes;
    confs += r.conf_changes;
    snaps += r.snapshots_sent;
    reads += r.reads;
    if (opt.verbose)
      std::printf("seed %llu ok: %s\n", static_cast<unsigned long long>(s), r.params.c_str());
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "ok: %llu seeds (from %llu, %llu steps) in %.1fs (%.0f seeds/s): %llu ticks, %llu entries "
      "applied, "
      "%llu leaders, %llu crashes, %llu conf changes, %llu snapshots sent, %llu reads checked\n",
      static_cast<unsigned long long>(seeds), static_cast<unsigned long long>(first),
      static_cast<unsigned long long>(opt.steps), secs, secs > 0 ? seeds / secs : 0.0,
      static_cast<unsigned long long>(ticks), static_cast<unsigned long long>(applied),
      static_cast<unsigned long long>(leaders), static_cast<unsigned long long>(crashes),
      static_cast<unsigned long long>(confs), static_cast<unsigned long long>(snaps),
      static_cast<unsigned long long>(reads));
  return 0;
}
