// The x86 kernels (kernels_x86.inc) compiled for AVX-512 (F, BW, VL) + VNNI: int8 dot products with vpdpbusd on 256-bit registers.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "attnscope/quant.h"
#include "quant/blocks.h"
#include "quant/kernels_impl.h"
#include "quant/kquant_scales.h"
#include "quant/q8_impl.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
namespace attnscope::quant::detail {
#define ATTN_X86_NS avx512
#define ATTN_X86_VNNI 1
#include "quant/kernels_x86.inc"
#undef ATTN_X86_NS
#undef ATTN_X86_VNNI
}  // namespace attnscope::quant::detail
#pragma GCC pop_options

namespace attnscope::quant::detail {
const IsaKernels* avx512_kernels() { return &avx512::kTable; }
}  // namespace attnscope::quant::detail

#else
namespace attnscope::quant::detail {
const IsaKernels* avx512_kernels() { return nullptr; }
}  // namespace attnscope::quant::detail
#endif
