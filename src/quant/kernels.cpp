// The kernel table: one entry per ggml type the engine can compute with.
#include <array>

#include "attnscope/quant.h"
#include "quant/kernels_impl.h"

namespace attnscope::quant {
namespace {

using namespace detail;

constexpr std::array<Kernels, 15> kKernels = {{
    {GgmlType::F32, dequantize_f32, dot_f32},
    {GgmlType::F16, dequantize_f16, dot_f16},
    {GgmlType::BF16, dequantize_bf16, dot_bf16},
    {GgmlType::Q8_0, dequantize_q8_0, dot_q8_0},
    {GgmlType::Q4_0, dequantize_q4_0, dot_q4_0},
    {GgmlType::Q4_1, dequantize_q4_1, dot_q4_1},
    {GgmlType::Q5_0, dequantize_q5_0, dot_q5_0},
    {GgmlType::Q5_1, dequantize_q5_1, dot_q5_1},
    {GgmlType::Q2_K, dequantize_q2_k, dot_q2_k},
    {GgmlType::Q3_K, dequantize_q3_k, dot_q3_k},
    {GgmlType::Q4_K, dequantize_q4_k, dot_q4_k},
    {GgmlType::Q5_K, dequantize_q5_k, dot_q5_k},
    {GgmlType::Q6_K, dequantize_q6_k, dot_q6_k},
    {GgmlType::IQ4_NL, dequantize_iq4_nl, dot_iq4_nl},
    {GgmlType::IQ4_XS, dequantize_iq4_xs, dot_iq4_xs},
}};

}  // namespace

const Kernels* kernels(uint32_t type_id) {
  for (const Kernels& k : kKernels) {
    if (static_cast<uint32_t>(k.type) == type_id) return &k;
  }
  return nullptr;
}

}  // namespace attnscope::quant
