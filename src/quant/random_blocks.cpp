// Random but well-formed weights of any computable type, for benchmark models with
// real shapes: random quant bits, with every block scale a sane half-precision value
// (random bytes there could be inf or NaN).
#include <cstddef>
#include <cstring>
#include <random>

#include "attnscope/quant.h"
#include "quant/blocks.h"

namespace attnscope::quant {
namespace {

// Byte offsets of the f16 scale fields in a block of each type.
std::vector<size_t> f16_fields(GgmlType t) {
  switch (t) {
    case GgmlType::Q8_0: return {offsetof(BlockQ8_0, d)};
    case GgmlType::Q4_0: return {offsetof(BlockQ4_0, d)};
    case GgmlType::Q4_1: return {offsetof(BlockQ4_1, d), offsetof(BlockQ4_1, m)};
    case GgmlType::Q5_0: return {offsetof(BlockQ5_0, d)};
    case GgmlType::Q5_1: return {offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)};
    case GgmlType::Q2_K: return {offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)};
    case GgmlType::Q3_K: return {offsetof(BlockQ3_K, d)};
    case GgmlType::Q4_K: return {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)};
    case GgmlType::Q5_K: return {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)};
    case GgmlType::Q6_K: return {offsetof(BlockQ6_K, d)};
    case GgmlType::IQ4_NL: return {offsetof(BlockIQ4_NL, d)};
    case GgmlType::IQ4_XS: return {offsetof(BlockIQ4_XS, d)};
    default: return {};
  }
}

}  // namespace

Status fill_random(uint32_t type_id, void* dst, int64_t n_elements, uint64_t seed, float scale) {
  const GgmlTypeInfo* info = ggml_type_info(type_id);
  if (info == nullptr || kernels(type_id) == nullptr) {
    return make_error("cannot make random weights of type {}", ggml_type_name(type_id));
  }
  ATTN_ASSIGN_OR_RETURN(uint64_t bytes, ggml_row_bytes(type_id, static_cast<uint64_t>(n_elements)));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  auto* out = static_cast<uint8_t*>(dst);
  if (info->type == GgmlType::F32 || info->type == GgmlType::F16 || info->type == GgmlType::BF16) {
    for (int64_t i = 0; i < n_elements; ++i) {
      const float v = normal(rng);
      if (info->type == GgmlType::F32) {
        std::memcpy(out + 4 * i, &v, 4);
      } else {
        uint32_t bits;
        std::memcpy(&bits, &v, 4);
        const uint16_t h = info->type == GgmlType::F16 ? f32_to_f16(v) : static_cast<uint16_t>(bits >> 16);
        std::memcpy(out + 2 * i, &h, 2);
      }
    }
    return ok_status();
  }
  for (uint64_t i = 0; i < bytes; i += 8) {
    const uint64_t r = rng();
    std::memcpy(out + i, &r, std::min<uint64_t>(8, bytes - i));
  }
  // Scales chosen so that dequantized values have roughly the requested spread.
  std::uniform_real_distribution<float> u(0.5f, 1.5f);
  const auto fields = f16_fields(info->type);
  for (uint64_t b = 0; b < bytes; b += info->type_size) {
    for (size_t off : fields) {
      const uint16_t h = f32_to_f16(scale * 0.1f * u(rng));
      std::memcpy(out + b + off, &h, 2);
    }
  }
  return ok_status();
}

}  // namespace attnscope::quant
