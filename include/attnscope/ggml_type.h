// The ggml tensor types that GGUF files can hold: ids, block sizes and bytes per block.
// This table only describes storage; which types the engine can compute with is
// decided by the kernel table in quant.h.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "attnscope/result.h"

namespace attnscope {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3,
  Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20,
  IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
  I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28,
  IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35,
  MXFP4 = 39, NVFP4 = 40,
};

struct GgmlTypeInfo {
  GgmlType type;
  const char* name;     // "Q4_K", as llama.cpp spells it
  uint32_t block_size;  // elements per block
  uint32_t type_size;   // bytes per block
};

// nullptr for an id that no ggml version defines (or that was removed).
const GgmlTypeInfo* ggml_type_info(uint32_t type_id);

// "Q4_K", or "type 99" for an unknown id.
std::string ggml_type_name(uint32_t type_id);

// Bytes taken by one row of n elements; an error if n is not a whole number of blocks.
Result<uint64_t> ggml_row_bytes(uint32_t type_id, uint64_t n);

// Bytes taken by a tensor of shape ne (ne[0] fastest-varying), with overflow checks.
Result<uint64_t> ggml_tensor_bytes(uint32_t type_id, std::span<const uint64_t> ne);

}  // namespace attnscope
