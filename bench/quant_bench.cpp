// Throughput of the scalar reference kernels: Kernels::dot per type (one token, the
// decode case) and matmul_rows with 16 tokens (the prompt case). Reports weight
// bytes streamed per second; rows are random valid blocks.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "attnscope/ggml_type.h"
#include "attnscope/quant.h"

namespace {

using attnscope::GgmlType;
namespace quant = attnscope::quant;

constexpr int64_t kCols = 4096;
constexpr int64_t kRows = 256;

// Random bytes with every block's leading f16 replaced by a small finite scale
// (the types whose scale sits elsewhere get random but finite values there too,
// since random f16 bits are rarely inf/nan and the timing does not care).
std::vector<uint8_t> make_rows(GgmlType type) {
  const auto id = static_cast<uint32_t>(type);
  const auto* info = attnscope::ggml_type_info(id);
  const uint64_t row_bytes = attnscope::ggml_row_bytes(id, kCols).value();
  std::vector<uint8_t> bytes(row_bytes * kRows);
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  if (type == GgmlType::F32) {
    for (size_t i = 0; i < bytes.size(); i += 4) {
      const float v = value(rng);
      std::memcpy(&bytes[i], &v, 4);
    }
    return bytes;
  }
  if (info->block_size == 1) {  // F16 / BF16
    for (size_t i = 0; i < bytes.size(); i += 2) {
      const uint16_t h = quant::f32_to_f16(value(rng));
      std::memcpy(&bytes[i], &h, 2);
    }
    return bytes;
  }
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  const uint16_t scale = quant::f32_to_f16(0.01f);
  for (size_t i = 0; i < bytes.size(); i += info->type_size) std::memcpy(&bytes[i], &scale, 2);
  return bytes;
}

void BM_Dot(benchmark::State& state, GgmlType type) {
  const auto* k = quant::kernels(static_cast<uint32_t>(type));
  const auto rows = make_rows(type);
  const uint64_t row_bytes = rows.size() / kRows;
  std::vector<float> x(kCols, 0.5f);
  for (auto _ : state) {
    for (int64_t r = 0; r < kRows; ++r) {
      benchmark::DoNotOptimize(k->dot(rows.data() + r * row_bytes, x.data(), kCols));
    }
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(rows.size()));
}

void BM_Matmul16(benchmark::State& state, GgmlType type) {
  constexpr int64_t kTokens = 16;
  const auto rows = make_rows(type);
  const quant::Matrix w{static_cast<uint32_t>(type), rows.data(), kCols, kRows,
                        rows.size() / kRows};
  std::vector<float> x(kTokens * kCols, 0.5f), y(kTokens * kRows);
  for (auto _ : state) {
    quant::matmul_rows(w, x.data(), kTokens, y.data(), 0, kRows);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(rows.size()));
  state.counters["GFLOP/s"] = benchmark::Counter(
      static_cast<double>(2 * kTokens * kCols * kRows) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
}

#define ATTN_BENCH_TYPE(T)                   \
  BENCHMARK_CAPTURE(BM_Dot, T, GgmlType::T); \
  BENCHMARK_CAPTURE(BM_Matmul16, T, GgmlType::T);

ATTN_BENCH_TYPE(F32)
ATTN_BENCH_TYPE(F16)
ATTN_BENCH_TYPE(BF16)
ATTN_BENCH_TYPE(Q8_0)
ATTN_BENCH_TYPE(Q4_0)
ATTN_BENCH_TYPE(Q4_1)
ATTN_BENCH_TYPE(Q5_0)
ATTN_BENCH_TYPE(Q5_1)
ATTN_BENCH_TYPE(Q2_K)
ATTN_BENCH_TYPE(Q3_K)
ATTN_BENCH_TYPE(Q4_K)
ATTN_BENCH_TYPE(Q5_K)
ATTN_BENCH_TYPE(Q6_K)
ATTN_BENCH_TYPE(IQ4_NL)
ATTN_BENCH_TYPE(IQ4_XS)

}  // namespace

BENCHMARK_MAIN();
