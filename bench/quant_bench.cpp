// Kernel throughput per weight type and per instruction set (Google Benchmark).
//
//   dot/TYPE/ISA/COLSxROWS            Kernels::dot (f32 activations), one token: the decode
//                                     case. Counter weights_B = weight bytes read per second.
//   dot_q8/TYPE/ISA/COLSxROWS         Kernels::dot_q8 (activations quantized to the type's
//                                     format beforehand, outside the timing), one token: the decode
//                                     case of the default int8 path. Types without an int8
//                                     kernel have no such benchmark.
//   matmul/TYPE/ISA/PATH/Ntok/COLSxROWS
//                                     the engine's matmul: matmul_rows_q8 (PATH q8, the
//                                     default for types with dot_q8; activations quantized
//                                     outside the timing) or matmul_rows (PATH f32: the other
//                                     types, and --f32-activations), N = 16 or 64 tokens: the
//                                     prefill case. Counter FLOP = 2 * N * cols * rows per second.
//                                     Runs with the ACTIVE instruction set only (ATTNSCOPE_CPU
//                                     or the detected one): bench/kernel_bench.sh reruns them
//                                     once per instruction set.
//   dot_q8/Q8_0-packed/ISA/COLSxROWS, matmul/Q8_0-packed/ISA/q8/Ntok/COLSxROWS
//                                     the same for Q8_0 weights packed into 16-row panels
//                                     (quant::pack_panels, what the engine multiplies Q8_0
//                                     with), active instruction set.
//   quantize_activations/ISA/FORMAT/Ntok/COLS
//                                     quantize_activations of N tokens into ActBlocks (b32) or
//                                     ActBlockKs (b256): the cost the q8 paths add per matmul
//                                     input, active instruction set.
//                                     Counter act_B = f32 activation bytes read per second.
//
// Shapes: 4096 x 256 rows (a 4096-column weight, a few MB at most: mostly cache-resident,
// so it measures the kernel), and Llama-3-8B's ffn_down, 14336 x 4096 rows (the whole
// matrix, 33 MB at Q4_K to 235 MB at F32: streamed from memory as in real decoding). The
// matmul benchmarks use the first 256 rows of each shape (weights are reused across
// tokens, so the row count matters little). Weights are random but well formed
// (quant::fill_random); activations are N(0, 1). One thread.
//
// All output is self-describing; `--benchmark_format=json` for tools, `--benchmark_filter=`
// to select (e.g. '^dot_q8/Q4_K/' or '/avx2/'), `--benchmark_min_time=` to shorten.
// `--isas=scalar,avx2` limits the dot benchmarks to those instruction sets (default: every
// one this CPU supports); `--isas=active` to the active one, as bench/kernel_bench.sh does
// when it runs this once per ATTNSCOPE_CPU value.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "attnscope/ggml_type.h"
#include "attnscope/quant.h"

namespace {

using attnscope::GgmlType;
namespace quant = attnscope::quant;
using quant::Isa;

constexpr GgmlType kTypes[] = {
    GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,   GgmlType::Q4_0,
    GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q2_K,   GgmlType::Q3_K,
    GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS,
};
constexpr Isa kIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512};

struct Shape {
  int64_t n_cols;
  int64_t n_rows;         // rows of the dot benchmarks (the whole matrix)
  int64_t n_matmul_rows;  // rows of the matmul benchmarks (a prefix of the matrix)
};
constexpr Shape kShapes[] = {
    {4096, 256, 256},    // a 4096-column weight, mostly cache-resident
    {14336, 4096, 256},  // Llama-3-8B ffn_down: streamed from memory
};
constexpr int64_t kMatmulTokens[] = {16, 64};

// ---- Inputs -------------------------------------------------------------------------
// The weights of one (type, shape), kept until another is asked for: benchmarks are
// registered type by type and shape by shape, and Google Benchmark calls each function
// several times while it sizes the iteration count, so this avoids refilling up to
// 235 MB each time while holding one matrix at a time.
struct Weights {
  GgmlType type;
  int64_t n_cols = 0, n_rows = 0;
  uint64_t row_bytes = 0;
  std::vector<uint8_t> data;  // (n_rows, row_bytes)
  std::vector<uint8_t> packed;  // quant::pack_panels of data, made on first use (packable types)
};

Weights* weights(GgmlType type, const Shape& shape, std::string* error) {
  static std::unique_ptr<Weights> cached;
  if (cached && cached->type == type && cached->n_cols == shape.n_cols && cached->n_rows == shape.n_rows) {
    return cached.get();
  }
  cached.reset();  // free the previous matrix before allocating the next one
  const auto id = static_cast<uint32_t>(type);
  auto row_bytes = attnscope::ggml_row_bytes(id, static_cast<uint64_t>(shape.n_cols));
  if (!row_bytes.ok()) {
    *error = row_bytes.error().message;
    return nullptr;
  }
  auto w = std::make_unique<Weights>();
  w->type = type;
  w->n_cols = shape.n_cols;
  w->n_rows = shape.n_rows;
  w->row_bytes = *row_bytes;
  w->data.resize(*row_bytes * static_cast<uint64_t>(shape.n_rows));
  auto filled = quant::fill_random(id, w->data.data(), shape.n_cols * shape.n_rows, /*seed=*/42, 0.02f);
  if (!filled.ok()) {
    *error = filled.error().message;
    return nullptr;
  }
  cached = std::move(w);
  return cached.get();
}

// (n_tokens, n_cols) activations, N(0, 1).
std::vector<float> activations(int64_t n_tokens, int64_t n_cols) {
  std::vector<float> x(static_cast<size_t>(n_tokens * n_cols));
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : x) v = normal(rng);
  return x;
}

// The same values in every activation format: (n_tokens, n_cols / 32) ActBlocks,
// (n_tokens, n_cols / 256) ActBlockKs and (n_tokens, n_cols / 32) ActBF16s.
struct Quantized {
  std::vector<quant::ActBlock> b32;
  std::vector<quant::ActBlockK> b256;
  std::vector<quant::ActBF16> bf16;
  quant::QuantizedActs acts() const { return {b32.data(), b256.data(), bf16.data()}; }
  const void* in(quant::ActFormat f) const {
    if (f == quant::ActFormat::kBF16) return bf16.data();
    return f == quant::ActFormat::kBlock256 ? static_cast<const void*>(b256.data()) : b32.data();
  }
};
Quantized quantized(const std::vector<float>& x, int64_t n_tokens, int64_t n_cols) {
  Quantized q;
  q.b32.resize(static_cast<size_t>(n_tokens * n_cols / 32));
  q.b256.resize(static_cast<size_t>(n_tokens * n_cols / 256));
  quant::quantize_activations(x.data(), n_tokens, n_cols, q.b32.data());
  quant::quantize_activations(x.data(), n_tokens, n_cols, q.b256.data());
  q.bf16.resize(static_cast<size_t>(n_tokens * n_cols / 32));
  quant::quantize_activations(x.data(), n_tokens, n_cols, q.bf16.data());
  return q;
}

benchmark::Counter rate(double per_iteration, const benchmark::State& state) {
  return benchmark::Counter(per_iteration * static_cast<double>(state.iterations()),
                            benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

// ---- Benchmarks -----------------------------------------------------------------------
// The packed panel GEMM (quant::pack_panels) through matmul_rows_q8, active instruction
// set: n_rows rows of the shape for n_tokens tokens. Reported under the type name
// "TYPE-packed" with both counters, so that the tables show it as a row of its own.
void bench_packed(benchmark::State& state, GgmlType type, Shape shape, int64_t n_tokens, int64_t n_rows) {
  std::string error;
  Weights* w = weights(type, shape, &error);
  if (w == nullptr) {
    state.SkipWithError(error.c_str());
    return;
  }
  quant::Matrix m{static_cast<uint32_t>(type), w->data.data(), shape.n_cols, shape.n_rows, w->row_bytes};
  if (w->packed.empty()) {
    w->packed.resize(quant::packed_bytes(m));
    quant::pack_panels(m, 0, quant::panel_count(m), w->packed.data());
  }
  m.packed = w->packed.data();
  const auto x = activations(n_tokens, shape.n_cols);  // (n_tokens, n_cols)
  const auto xq = quantized(x, n_tokens, shape.n_cols);
  std::vector<float> y(static_cast<size_t>(n_tokens * shape.n_rows));  // (n_tokens, n_rows)
  for (auto _ : state) {
    quant::matmul_rows_q8(m, xq.acts(), n_tokens, y.data(), 0, n_rows);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const auto bytes = static_cast<int64_t>(w->row_bytes) * n_rows;
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["weights_B"] = rate(static_cast<double>(bytes), state);
  state.counters["FLOP"] = rate(2.0 * static_cast<double>(n_tokens * shape.n_cols * n_rows), state);
}

void bench_dot(benchmark::State& state, GgmlType type, Isa isa, Shape shape, bool q8) {
  std::string error;
  const Weights* w = weights(type, shape, &error);
  const quant::Kernels* k = quant::kernels(static_cast<uint32_t>(type), isa);
  if (w == nullptr || k == nullptr) {
    state.SkipWithError(w == nullptr ? error.c_str() : "no kernel");
    return;
  }
  const auto x = activations(1, shape.n_cols);      // (n_cols)
  const auto xq = quantized(x, 1, shape.n_cols);
  const void* xk = xq.in(k->act);  // in the format the kernel reads
  const uint8_t* base = w->data.data();
  for (auto _ : state) {
    for (int64_t r = 0; r < shape.n_rows; ++r) {
      const uint8_t* row = base + static_cast<uint64_t>(r) * w->row_bytes;
      benchmark::DoNotOptimize(q8 ? k->dot_q8(row, xk, shape.n_cols)
                                  : k->dot(row, x.data(), shape.n_cols));
    }
  }
  const auto bytes = static_cast<int64_t>(w->data.size());
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["weights_B"] = rate(static_cast<double>(bytes), state);
  state.counters["FLOP"] = rate(2.0 * static_cast<double>(shape.n_cols * shape.n_rows), state);
}

void bench_matmul(benchmark::State& state, GgmlType type, Shape shape, int64_t n_tokens, bool q8) {
  std::string error;
  const Weights* w = weights(type, shape, &error);
  if (w == nullptr) {
    state.SkipWithError(error.c_str());
    return;
  }
  const int64_t n_rows = shape.n_matmul_rows;
  const quant::Matrix m{static_cast<uint32_t>(type), w->data.data(), shape.n_cols, n_rows, w->row_bytes};
  const auto x = activations(n_tokens, shape.n_cols);  // (n_tokens, n_cols)
  const auto xq = quantized(x, n_tokens, shape.n_cols);
  std::vector<float> y(static_cast<size_t>(n_tokens * n_rows));  // (n_tokens, n_rows)
  for (auto _ : state) {
    if (q8) {
      quant::matmul_rows_q8(m, xq.acts(), n_tokens, y.data(), 0, n_rows);
    } else {
      quant::matmul_rows(m, x.data(), n_tokens, y.data(), 0, n_rows);
    }
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const auto bytes = static_cast<int64_t>(w->row_bytes) * n_rows;
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["FLOP"] = rate(2.0 * static_cast<double>(n_tokens * shape.n_cols * n_rows), state);
}

template <typename Block>
void bench_quantize(benchmark::State& state, int64_t n_tokens, int64_t n_cols) {
  const auto x = activations(n_tokens, n_cols);
  std::vector<Block> xq(static_cast<size_t>(n_tokens * n_cols / static_cast<int64_t>(sizeof(Block::q))));
  for (auto _ : state) {
    quant::quantize_activations(x.data(), n_tokens, n_cols, xq.data());
    benchmark::DoNotOptimize(xq.data());
    benchmark::ClobberMemory();
  }
  state.counters["act_B"] = rate(4.0 * static_cast<double>(n_tokens * n_cols), state);
}

std::string shape_name(const Shape& s, int64_t n_rows) { return std::to_string(s.n_cols) + "x" + std::to_string(n_rows); }

void register_all(const std::vector<Isa>& dot_isas) {
  const Isa active = quant::cpu_isa();
  const std::string active_name = quant::isa_name(active);
  for (const GgmlType type : kTypes) {
    const auto id = static_cast<uint32_t>(type);
    const std::string tname = attnscope::ggml_type_name(id);
    if (quant::kernels(id) == nullptr) {
      std::fprintf(stderr, "quant_bench: no kernel for %s, skipped\n", tname.c_str());
      continue;
    }
    const bool has_q8 = quant::kernels(id)->dot_q8 != nullptr;  // the same for every ISA
    for (const Shape& shape : kShapes) {
      for (const Isa isa : dot_isas) {
        if (quant::kernels(id, isa) == nullptr) continue;  // this CPU cannot run it
        const std::string suffix = tname + "/" + quant::isa_name(isa) + "/" + shape_name(shape, shape.n_rows);
        benchmark::RegisterBenchmark(("dot/" + suffix).c_str(), bench_dot, type, isa, shape, false)
            ->Unit(benchmark::kMicrosecond);
        if (has_q8) {
          benchmark::RegisterBenchmark(("dot_q8/" + suffix).c_str(), bench_dot, type, isa, shape, true)
              ->Unit(benchmark::kMicrosecond);
        }
      }
      if (quant::packable(quant::Matrix{id, nullptr, shape.n_cols, shape.n_rows,
                                        attnscope::ggml_row_bytes(id, static_cast<uint64_t>(shape.n_cols)).value()})) {
        const std::string packed = tname + "-packed/" + active_name + "/";
        if (std::find(dot_isas.begin(), dot_isas.end(), active) != dot_isas.end()) {
          benchmark::RegisterBenchmark(("dot_q8/" + packed + shape_name(shape, shape.n_rows)).c_str(), bench_packed,
                                       type, shape, int64_t{1}, shape.n_rows)
              ->Unit(benchmark::kMicrosecond);
        }
        for (const int64_t n_tokens : kMatmulTokens) {
          const std::string name = "matmul/" + packed + "q8/" + std::to_string(n_tokens) + "tok/" +
                                   shape_name(shape, shape.n_matmul_rows);
          benchmark::RegisterBenchmark(name.c_str(), bench_packed, type, shape, n_tokens, shape.n_matmul_rows)
              ->Unit(benchmark::kMicrosecond);
        }
      }
      for (const int64_t n_tokens : kMatmulTokens) {
        // The engine's default path first, then (for int8 types) --f32-activations.
        for (const bool q8 : {true, false}) {
          if (q8 && !has_q8) continue;
          const std::string name = "matmul/" + tname + "/" + active_name + "/" + (q8 ? "q8" : "f32") + "/" +
                                   std::to_string(n_tokens) + "tok/" + shape_name(shape, shape.n_matmul_rows);
          benchmark::RegisterBenchmark(name.c_str(), bench_matmul, type, shape, n_tokens, q8)
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
  for (const int64_t n_tokens : {int64_t{1}, int64_t{64}}) {
    const std::string name = "quantize_activations/" + active_name + "/";
    const std::string shape = "/" + std::to_string(n_tokens) + "tok/4096";
    benchmark::RegisterBenchmark((name + "b32" + shape).c_str(), bench_quantize<quant::ActBlock>, n_tokens,
                                 int64_t{4096})
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((name + "b256" + shape).c_str(), bench_quantize<quant::ActBlockK>, n_tokens,
                                 int64_t{4096})
        ->Unit(benchmark::kMicrosecond);
  }
}

// "--isas=LIST": the instruction sets of the dot benchmarks ("active" = cpu_isa()).
// Removes the flag from argv; false (with a message) for a bad list.
bool parse_isas(int* argc, char** argv, std::vector<Isa>* isas) {
  for (const Isa isa : kIsas) {
    if (static_cast<int>(isa) <= static_cast<int>(quant::detected_isa())) isas->push_back(isa);
  }
  const std::string flag = "--isas=";
  int kept = 1;
  for (int i = 1; i < *argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind(flag, 0) != 0) {
      argv[kept++] = argv[i];
      continue;
    }
    isas->clear();
    std::string list = arg.substr(flag.size());
    for (size_t pos = 0; pos <= list.size();) {
      size_t comma = list.find(',', pos);
      if (comma == std::string::npos) comma = list.size();
      const std::string name = list.substr(pos, comma - pos);
      pos = comma + 1;
      if (name == "active") {
        isas->push_back(quant::cpu_isa());
        continue;
      }
      auto isa = quant::parse_isa(name);
      if (!isa.ok()) {  // parse_isa's message names ATTNSCOPE_CPU; say which flag it was
        std::fprintf(stderr, "quant_bench: --isas=%s: %s\n", list.c_str(), isa.error().message.c_str());
        return false;
      }
      isas->push_back(*isa);
    }
  }
  *argc = kept;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::vector<Isa> dot_isas;
  if (!parse_isas(&argc, argv, &dot_isas)) return 2;
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  if (const char* env = std::getenv("ATTNSCOPE_CPU"); env != nullptr && *env != '\0') {
    if (auto isa = quant::parse_isa(env); !isa.ok()) {
      std::fprintf(stderr, "quant_bench: %s\n", isa.error().message.c_str());
      return 2;
    }
  }
  benchmark::AddCustomContext("attnscope_detected_isa", quant::isa_name(quant::detected_isa()));
  benchmark::AddCustomContext("attnscope_active_isa", quant::isa_name(quant::cpu_isa()));
  register_all(dot_isas);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
