// Scalar reference of the int8 path: activation quantization and the dot product of
// every weight type against quantized activations. The SIMD kernels
// (kernels_x86.inc) are held to these by tests/quant/dot_q8_test.cpp.
//
// The arithmetic, in one formula. A weight block is unpacked into integers q[i] with
// a float scale and min per 16-element sub-block s: w[i] = scale[s] * q[i] - min[s].
// An activation block j of 32 elements is x[i] ~= d[j] * a[i] (ActBlock). Then
//
//   dot = sum_j d[j] * sum_{s in j} (scale[s] * sum_{i in s} q[i] a[i] - min[s] * sum_{i in s} a[i])
//
// with the inner sums exact in integers and the rest in float, block by block. The
// K-quants and IQ4_XS read 256-element activation blocks (ActBlockK) instead: the same
// formula with one d per super-block and sums over each 16.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "attnscope/quant.h"
#include "quant/kernels_impl.h"
#include "quant/kquant_scales.h"
#include "quant/q8_impl.h"

namespace attnscope::quant::detail {
namespace {

// A weight block as integers; kN elements, kN / 16 sub-blocks.
template <int kN>
struct IntBlock {
  int8_t q[kN];
  float scale[kN / 16];
  float min[kN / 16];
};

template <int kN>
void set_all(IntBlock<kN>& w, float scale, float min) {
  for (int s = 0; s < kN / 16; ++s) {
    w.scale[s] = scale;
    w.min[s] = min;
  }
}

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Element j (< 16) of a 32-block is the low nibble of qs[j]; element j + 16 the high one.
template <typename F>
void nibbles32(const uint8_t* qs, int8_t* q, F map) {
  for (int j = 0; j < 16; ++j) {
    q[j] = static_cast<int8_t>(map(qs[j] & 0x0F, j));
    q[j + 16] = static_cast<int8_t>(map(qs[j] >> 4, j + 16));
  }
}

// ---- unpackers: one per weight type (layouts in blocks.h) ----------------------------
void unpack_q8_0(const BlockQ8_0& b, IntBlock<32>& w) {
  std::memcpy(w.q, b.qs, 32);
  set_all(w, f16_to_f32_inline(b.d), 0.0f);
}
void unpack_q4_0(const BlockQ4_0& b, IntBlock<32>& w) {
  nibbles32(b.qs, w.q, [](int v, int) { return v - 8; });
  set_all(w, f16_to_f32_inline(b.d), 0.0f);
}
void unpack_q4_1(const BlockQ4_1& b, IntBlock<32>& w) {
  nibbles32(b.qs, w.q, [](int v, int) { return v; });
  set_all(w, f16_to_f32_inline(b.d), -f16_to_f32_inline(b.m));
}
void unpack_q5_0(const BlockQ5_0& b, IntBlock<32>& w) {
  const uint32_t qh = load_u32(b.qh);
  nibbles32(b.qs, w.q, [qh](int v, int i) { return (v | static_cast<int>(((qh >> i) & 1u) << 4)) - 16; });
  set_all(w, f16_to_f32_inline(b.d), 0.0f);
}
void unpack_q5_1(const BlockQ5_1& b, IntBlock<32>& w) {
  const uint32_t qh = load_u32(b.qh);
  nibbles32(b.qs, w.q, [qh](int v, int i) { return v | static_cast<int>(((qh >> i) & 1u) << 4); });
  set_all(w, f16_to_f32_inline(b.d), -f16_to_f32_inline(b.m));
}
void unpack_iq4_nl(const BlockIQ4_NL& b, IntBlock<32>& w) {
  nibbles32(b.qs, w.q, [](int v, int) { return kIq4nlValues[v]; });
  set_all(w, f16_to_f32_inline(b.d), 0.0f);
}
void unpack_q2_k(const BlockQ2_K& b, IntBlock<256>& w) {
  const float d = f16_to_f32_inline(b.d), dmin = f16_to_f32_inline(b.dmin);
  for (int s = 0; s < 16; ++s) {
    w.scale[s] = d * static_cast<float>(b.scales[s] & 0x0F);
    w.min[s] = dmin * static_cast<float>(b.scales[s] >> 4);
    const int h = s / 8, j = (s % 8) / 2, u = s % 2;
    const uint8_t* q = b.qs + 32 * h + 16 * u;
    for (int l = 0; l < 16; ++l) w.q[16 * s + l] = static_cast<int8_t>((q[l] >> (2 * j)) & 3);
  }
}
void unpack_q3_k(const BlockQ3_K& b, IntBlock<256>& w) {
  const float d = f16_to_f32_inline(b.d);
  for (int s = 0; s < 16; ++s) {
    w.scale[s] = d * static_cast<float>(scale_q3_k(b.scales, s));
    w.min[s] = 0.0f;
    const int h = s / 8, j = (s % 8) / 2, u = s % 2;
    const uint8_t* q = b.qs + 32 * h + 16 * u;
    const uint8_t* hm = b.hmask + 16 * u;
    for (int l = 0; l < 16; ++l) {
      const int minus4 = ((hm[l] >> (4 * h + j)) & 1) ? 0 : 4;
      w.q[16 * s + l] = static_cast<int8_t>(((q[l] >> (2 * j)) & 3) - minus4);
    }
  }
}
template <typename Block, bool kFifthBit>
void unpack_q45_k(const Block& b, IntBlock<256>& w) {
  const float d = f16_to_f32_inline(b.d), dmin = f16_to_f32_inline(b.dmin);
  for (int s = 0; s < 8; ++s) {  // sub-blocks of 32 = two of our 16-element ones
    int scale = 0, min = 0;
    scale_min_k4(b.scales, s, scale, min);
    w.scale[2 * s] = w.scale[2 * s + 1] = d * static_cast<float>(scale);
    w.min[2 * s] = w.min[2 * s + 1] = dmin * static_cast<float>(min);
    const uint8_t* q = b.qs + 32 * (s / 2);
    for (int l = 0; l < 32; ++l) {
      int v = (q[l] >> (4 * (s % 2))) & 0x0F;
      if constexpr (kFifthBit) v |= ((b.qh[l] >> s) & 1) << 4;
      w.q[32 * s + l] = static_cast<int8_t>(v);
    }
  }
}
void unpack_q4_k(const BlockQ4_K& b, IntBlock<256>& w) { unpack_q45_k<BlockQ4_K, false>(b, w); }
void unpack_q5_k(const BlockQ5_K& b, IntBlock<256>& w) { unpack_q45_k<BlockQ5_K, true>(b, w); }
void unpack_q6_k(const BlockQ6_K& b, IntBlock<256>& w) {
  const float d = f16_to_f32_inline(b.d);
  for (int s = 0; s < 16; ++s) {
    w.scale[s] = d * static_cast<float>(b.scales[s]);
    w.min[s] = 0.0f;
    const int h = s / 8, p = (s % 8) / 2, u = s % 2;
    const uint8_t* ql = b.ql + 64 * h + 32 * (p % 2) + 16 * u;
    const uint8_t* qh = b.qh + 32 * h + 16 * u;
    for (int l = 0; l < 16; ++l) {
      const int v = ((ql[l] >> (p < 2 ? 0 : 4)) & 0x0F) | (((qh[l] >> (2 * p)) & 3) << 4);
      w.q[16 * s + l] = static_cast<int8_t>(v - 32);
    }
  }
}
void unpack_iq4_xs(const BlockIQ4_XS& b, IntBlock<256>& w) {
  const float d = f16_to_f32_inline(b.d);
  for (int s = 0; s < 8; ++s) {
    const float scale = d * static_cast<float>(scale_iq4_xs(b.scales_h, b.scales_l, s));
    w.scale[2 * s] = w.scale[2 * s + 1] = scale;
    w.min[2 * s] = w.min[2 * s + 1] = 0.0f;
    nibbles32(b.qs + 16 * s, w.q + 32 * s, [](int v, int) { return kIq4nlValues[v]; });
  }
}

// The formula at the top of the file.
template <typename Block, int kN, void (*Unpack)(const Block&, IntBlock<kN>&)>
float dot_q8_blocks(const void* row, const ActBlock* x, int64_t n) {
  IntBlock<kN> w;
  float acc = 0.0f;
  for (int64_t b = 0; b < n / kN; ++b) {
    Unpack(load_block<Block>(row, b), w);
    for (int j = 0; j < kN / 32; ++j) {
      const ActBlock& a = x[b * (kN / 32) + j];
      float part = 0.0f;
      for (int u = 0; u < 2; ++u) {
        const int s = 2 * j + u;
        int32_t isum = 0;
        for (int l = 0; l < 16; ++l) isum += int32_t{w.q[16 * s + l]} * int32_t{a.q[16 * u + l]};
        part += w.scale[s] * static_cast<float>(isum) - w.min[s] * static_cast<float>(a.sum[u]);
      }
      acc += a.d * part;
    }
  }
  return acc;
}

// The same for the K-quants and IQ4_XS: one activation scale per super-block (ActBlockK).
template <typename Block, void (*Unpack)(const Block&, IntBlock<256>&)>
float dot_q8k_blocks(const void* row, const ActBlockK* x, int64_t n) {
  IntBlock<256> w;
  float acc = 0.0f;
  for (int64_t b = 0; b < n / 256; ++b) {
    Unpack(load_block<Block>(row, b), w);
    const ActBlockK& a = x[b];
    float part = 0.0f;
    for (int s = 0; s < 16; ++s) {
      int32_t isum = 0;
      for (int l = 0; l < 16; ++l) isum += int32_t{w.q[16 * s + l]} * int32_t{a.q[16 * s + l]};
      part += w.scale[s] * static_cast<float>(isum) - w.min[s] * static_cast<float>(a.sum[s]);
    }
    acc += a.d * part;
  }
  return acc;
}

// Activation quantization of kN values: d = max|x| / 127, q = x * (127 / max|x|) rounded
// to nearest even, sums of q over each 16.
template <int kN>
void quantize_ref(const float* x, float& d, int8_t* q, int16_t* sum16) {
  float amax = 0.0f;
  bool finite = true;
  for (int i = 0; i < kN; ++i) {
    finite = finite && std::isfinite(x[i]);
    amax = std::max(amax, std::fabs(x[i]));
  }
  std::memset(q, 0, kN);
  std::memset(sum16, 0, sizeof(int16_t) * (kN / 16));
  if (!finite) {
    d = std::nanf("");
    return;
  }
  d = amax / 127.0f;
  const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
  for (int s = 0; s < kN / 16; ++s) {
    int32_t sum = 0;
    for (int i = 16 * s; i < 16 * s + 16; ++i) {
      // |x * id| <= 127 up to rounding, and the rounding cannot pass 127.5.
      const auto v = static_cast<int32_t>(std::nearbyint(x[i] * id));
      q[i] = static_cast<int8_t>(v);
      sum += v;
    }
    sum16[s] = static_cast<int16_t>(sum);
  }
}

}  // namespace

void quantize_act_block_ref(const float* x, ActBlock* out) {
  std::memset(out, 0, sizeof(*out));
  quantize_ref<32>(x, out->d, out->q, out->sum);
}

void quantize_act_block_k_ref(const float* x, ActBlockK* out) {
  std::memset(out, 0, sizeof(*out));  // also the padding: blocks compare with memcmp
  quantize_ref<256>(x, out->d, out->q, out->sum);
}

#define ATTN_Q8_REF(name, Block, kN) \
  float dot_q8_##name##_ref(const void* row, const ActBlock* x, int64_t n) { \
    return dot_q8_blocks<Block, kN, unpack_##name>(row, x, n);               \
  }
ATTN_Q8_REF(q8_0, BlockQ8_0, 32)
ATTN_Q8_REF(q4_0, BlockQ4_0, 32)
ATTN_Q8_REF(q4_1, BlockQ4_1, 32)
ATTN_Q8_REF(q5_0, BlockQ5_0, 32)
ATTN_Q8_REF(q5_1, BlockQ5_1, 32)
ATTN_Q8_REF(iq4_nl, BlockIQ4_NL, 32)
#undef ATTN_Q8_REF

#define ATTN_Q8K_REF(name, Block) \
  float dot_q8k_##name##_ref(const void* row, const ActBlockK* x, int64_t n) { \
    return dot_q8k_blocks<Block, unpack_##name>(row, x, n);                    \
  }
ATTN_Q8K_REF(q2_k, BlockQ2_K)
ATTN_Q8K_REF(q3_k, BlockQ3_K)
ATTN_Q8K_REF(q4_k, BlockQ4_K)
ATTN_Q8K_REF(q5_k, BlockQ5_K)
ATTN_Q8K_REF(q6_k, BlockQ6_K)
ATTN_Q8K_REF(iq4_xs, BlockIQ4_XS)
#undef ATTN_Q8K_REF

// BF16 weights with bf16 activations: every product of two bf16 values is exact in
// float; they are added in float, block of 32 by block.
float dot_bf16_bf16_ref(const void* row, const ActBF16* x, int64_t n) {
  const auto* w = static_cast<const uint8_t*>(row);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / 32; ++b) {
    float block = 0.0f;
    for (int i = 0; i < 32; ++i) {
      uint16_t wi;
      std::memcpy(&wi, w + 2 * (32 * b + i), 2);
      block += bf16_to_f32_inline(wi) * bf16_to_f32_inline(x[b].q[i]);
    }
    sum += block;
  }
  return sum;
}

}  // namespace attnscope::quant::detail
