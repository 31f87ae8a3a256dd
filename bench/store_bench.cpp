// Store writer throughput (Google Benchmark): RunWriter fed the way the engine feeds it
// (per layer, chunks of 64 query rows of every head for the prompt, then one row per
// layer for each generated token), into a run directory under /tmp, until finish().
//
//   writer/PRECISION/ROWS/Nprompt
//
// ROWS is what the rows hold:
//   peaked  softmax of random logits (uniform in [-3, 3], the first key +4 and the own
//           position +2: a sink and a diagonal, as trained models show): probabilities
//           spread over many keys, whose low bits are noise. The hard case for the
//           compressor, and closer to trained models than
//   flat    near-uniform rows (logits within ±0.01), what random-weight models produce
//           and what bench/capture_bench.sh's runs therefore store.
//
// Counters: values/s (stored probabilities, lower triangles), ns/value and bytes/value of
// the finished log. Wall time (the writer thread compresses and writes behind the calls,
// so wall time is the pipeline's speed); 2 layers × 14 heads (Qwen2.5-0.5B's heads),
// 16 generated tokens.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "attnscope/observer.h"
#include "attnscope/store.h"

namespace {

using namespace attnscope;
namespace fs = std::filesystem;

constexpr int32_t kLayers = 2, kHeads = 14, kGenerated = 16, kChunk = 64;

enum class Rows { kPeaked, kFlat };

uint64_t mix(uint64_t x) {  // splitmix64
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// One row of head h at position i: i + 1 probabilities into out.
void make_row(Rows kind, int32_t h, int32_t i, float* out) {
  double max = -1e30, sum = 0;
  for (int32_t j = 0; j <= i; ++j) {
    const double u = static_cast<double>(mix((uint64_t(h) << 40) ^ (uint64_t(i) << 20) ^ uint64_t(j)) >> 11) /
                     9007199254740992.0;  // [0, 1)
    double x = kind == Rows::kFlat ? 0.02 * u - 0.01 : 6.0 * u - 3.0;
    if (kind == Rows::kPeaked && j == 0) x += 4.0;
    if (kind == Rows::kPeaked && j == i) x += 2.0;
    out[j] = static_cast<float>(x);
    max = std::max(max, x);
  }
  for (int32_t j = 0; j <= i; ++j) sum += std::exp(out[j] - max);
  for (int32_t j = 0; j <= i; ++j) out[j] = static_cast<float>(std::exp(out[j] - max) / sum);
}

// The deliveries of one layer (every layer gets the same rows: the compressor does not
// care), made once per benchmark: (n_heads, n_rows, n_keys) blocks.
struct Delivery {
  int32_t q_begin, n_rows, n_keys;
  std::vector<float> probs;
};
std::vector<Delivery> deliveries(Rows kind, int32_t n_prompt) {
  std::vector<Delivery> out;
  const auto block = [&](int32_t q0, int32_t n_rows) {
    Delivery d{q0, n_rows, q0 + n_rows, {}};
    d.probs.assign(static_cast<size_t>(kHeads) * n_rows * d.n_keys, 0.0f);
    for (int32_t h = 0; h < kHeads; ++h) {
      for (int32_t r = 0; r < n_rows; ++r) make_row(kind, h, q0 + r, d.probs.data() + (size_t(h) * n_rows + r) * d.n_keys);
    }
    out.push_back(std::move(d));
  };
  for (int32_t q = 0; q < n_prompt; q += kChunk) block(q, std::min(kChunk, n_prompt - q));
  for (int32_t g = 0; g < kGenerated; ++g) block(n_prompt + g, 1);
  return out;
}

store::TokenRecord token(int32_t i, bool generated) {
  store::TokenRecord t;
  t.id = 100 + i % 200;
  t.text = " t" + std::to_string(i);
  t.generated = generated;
  return t;
}
void append(store::RunManifest* m, store::TokenRecord t) {
  t.byte_begin = static_cast<int64_t>(m->text.size());
  m->text += t.text;
  t.byte_end = static_cast<int64_t>(m->text.size());
  m->tokens.push_back(std::move(t));
}

void bench_writer(benchmark::State& state, store::Precision precision, Rows kind) {
  const auto n_prompt = static_cast<int32_t>(state.range(0));
  const std::vector<Delivery> rows = deliveries(kind, n_prompt);
  const std::string dir = (fs::temp_directory_path() / ("attnscope-store-bench-" + std::to_string(getpid()))).string();
  store::RunManifest initial;
  initial.tool_version = "store_bench";
  initial.model.name = "synthetic";
  initial.model.n_layers = kLayers;
  initial.model.n_heads = kHeads;
  initial.precision = precision;
  initial.n_layers = kLayers;
  initial.n_heads = kHeads;
  initial.n_prompt = n_prompt;
  initial.max_new_tokens = kGenerated;
  for (int32_t i = 0; i < n_prompt; ++i) append(&initial, token(i, false));
  initial.prompt = initial.text;

  const int32_t T = n_prompt + kGenerated;
  const double values = double(kLayers) * kHeads * (double(T) * (T + 1) / 2);
  uint64_t bytes = 0;
  double seconds = 0;
  for (auto _ : state) {
    state.PauseTiming();  // removing the previous iteration's run is not the writer's cost
    std::error_code ec;
    fs::remove_all(dir, ec);
    state.ResumeTiming();
    const auto t0 = std::chrono::steady_clock::now();
    auto writer = store::RunWriter::create(dir, initial, /*overwrite=*/false, {});
    if (!writer.ok()) {
      state.SkipWithError(writer.error().message.c_str());
      return;
    }
    store::RunManifest m = initial;
    for (const Delivery& d : rows) {
      if (d.n_rows == 1) {  // a generated token, then its row in every layer
        store::TokenRecord t = token(d.q_begin, true);
        (void)(*writer)->add_generated_token(t);
        append(&m, std::move(t));
      }
      for (int32_t l = 0; l < kLayers; ++l) {
        (*writer)->on_attention(AttentionRows{.layer = l, .n_heads = kHeads, .q_begin = d.q_begin,
                                              .n_rows = d.n_rows, .n_keys = d.n_keys, .probs = d.probs.data()});
      }
    }
    m.complete = true;
    const Status st = (*writer)->finish(m);
    if (!st.ok()) {
      state.SkipWithError(st.error().message.c_str());
      return;
    }
    bytes = (*writer)->bytes_written();
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  state.counters["values/s"] = benchmark::Counter(values * static_cast<double>(state.iterations()),
                                                  benchmark::Counter::kIsRate);
  state.counters["ns/value"] = seconds * 1e9 / (values * static_cast<double>(state.iterations()));
  state.counters["bytes/value"] = static_cast<double>(bytes) / values;
}

void register_all() {
  for (const auto& [pname, p] : {std::pair{"f16", store::Precision::kF16}, std::pair{"u8", store::Precision::kU8},
                                 std::pair{"f32", store::Precision::kF32}}) {
    for (const auto& [kname, k] : {std::pair{"peaked", Rows::kPeaked}, std::pair{"flat", Rows::kFlat}}) {
      const std::string name = std::string("writer/") + pname + "/" + kname;
      benchmark::RegisterBenchmark(name.c_str(), bench_writer, p, k)
          ->Arg(512)
          ->Arg(2048)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
