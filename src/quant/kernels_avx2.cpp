// The x86 kernels (kernels_x86.inc) compiled for AVX2 + FMA + F16C.
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
#pragma GCC target("avx2,fma,f16c")
namespace attnscope::quant::detail {
#define ATTN_X86_NS avx2
#define ATTN_X86_VNNI 0
#include "quant/kernels_x86.inc"
#undef ATTN_X86_NS
#undef ATTN_X86_VNNI
}  // namespace attnscope::quant::detail
#pragma GCC pop_options

namespace attnscope::quant::detail {
const IsaKernels* avx2_kernels() { return &avx2::kTable; }
}  // namespace attnscope::quant::detail

#else
namespace attnscope::quant::detail {
const IsaKernels* avx2_kernels() { return nullptr; }
}  // namespace attnscope::quant::detail
#endif
