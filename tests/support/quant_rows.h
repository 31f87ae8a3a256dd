// Random rows of every computable weight type, for the kernel tests: random bytes
// everywhere (every bit pattern of quants and packed sub-block scales is valid) with
// finite f16 super-scales, and random activations.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "attnscope/ggml_type.h"
#include "attnscope/quant.h"
#include "quant/blocks.h"

namespace attnscope::quant::testing {

constexpr GgmlType kSupported[] = {
    GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,   GgmlType::Q4_0,
    GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q2_K,   GgmlType::Q3_K,
    GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_NL, GgmlType::IQ4_XS,
};

inline uint32_t id(GgmlType t) { return static_cast<uint32_t>(t); }
inline std::string name(GgmlType t) { return ggml_type_name(id(t)); }

// Byte offsets of the f16 fields (scales) inside one block of each type.
inline std::vector<size_t> half_fields(GgmlType t) {
  switch (t) {
    case GgmlType::Q8_0:
      return {offsetof(BlockQ8_0, d)};
    case GgmlType::Q4_0:
      return {offsetof(BlockQ4_0, d)};
    case GgmlType::Q4_1:
      return {offsetof(BlockQ4_1, d), offsetof(BlockQ4_1, m)};
    case GgmlType::Q5_0:
      return {offsetof(BlockQ5_0, d)};
    case GgmlType::Q5_1:
      return {offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)};
    case GgmlType::Q2_K:
      return {offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)};
    case GgmlType::Q3_K:
      return {offsetof(BlockQ3_K, d)};
    case GgmlType::Q4_K:
      return {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)};
    case GgmlType::Q5_K:
      return {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)};
    case GgmlType::Q6_K:
      return {offsetof(BlockQ6_K, d)};
    case GgmlType::IQ4_NL:
      return {offsetof(BlockIQ4_NL, d)};
    case GgmlType::IQ4_XS:
      return {offsetof(BlockIQ4_XS, d)};
    default:
      return {};
  }
}

inline void put_u16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

// n_rows random rows of n_cols elements: random bytes everywhere (every bit pattern
// of quants and packed sub-block scales is valid) with finite f16 super-scales.
inline std::vector<uint8_t> random_rows(GgmlType t, int64_t n_rows, int64_t n_cols, std::mt19937& rng) {
  const GgmlTypeInfo* info = ggml_type_info(id(t));
  const uint64_t row_bytes = ggml_row_bytes(id(t), static_cast<uint64_t>(n_cols)).value();
  std::vector<uint8_t> bytes(row_bytes * static_cast<uint64_t>(n_rows));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> value(-2.0f, 2.0f);
  std::uniform_real_distribution<float> scale(-0.05f, 0.05f);
  const int64_t n = n_rows * n_cols;
  switch (t) {
    case GgmlType::F32:
      for (int64_t i = 0; i < n; ++i) {
        const float v = value(rng);
        std::memcpy(bytes.data() + 4 * i, &v, 4);
      }
      return bytes;
    case GgmlType::F16:
      for (int64_t i = 0; i < n; ++i) put_u16(bytes.data() + 2 * i, f32_to_f16(value(rng)));
      return bytes;
    case GgmlType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        put_u16(bytes.data() + 2 * i,
                static_cast<uint16_t>(std::bit_cast<uint32_t>(value(rng)) >> 16));
      }
      return bytes;
    default:
      break;
  }
  for (auto& b : bytes) b = static_cast<uint8_t>(byte(rng));
  for (size_t blk = 0; blk < bytes.size() / info->type_size; ++blk) {
    for (size_t off : half_fields(t)) {
      put_u16(bytes.data() + blk * info->type_size + off, f32_to_f16(scale(rng)));
    }
  }
  return bytes;
}

inline std::vector<float> random_floats(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = dist(rng);
  return x;
}

}  // namespace attnscope::quant::testing
