#include "attnscope/ggml_type.h"

#include <array>
#include <limits>

namespace attnscope {
namespace {

constexpr std::array<GgmlTypeInfo, 33> kTypes = {{
    {GgmlType::F32, "F32", 1, 4},         {GgmlType::F16, "F16", 1, 2},
    {GgmlType::Q4_0, "Q4_0", 32, 18},     {GgmlType::Q4_1, "Q4_1", 32, 20},
    {GgmlType::Q5_0, "Q5_0", 32, 22},     {GgmlType::Q5_1, "Q5_1", 32, 24},
    {GgmlType::Q8_0, "Q8_0", 32, 34},     {GgmlType::Q8_1, "Q8_1", 32, 36},
    {GgmlType::Q2_K, "Q2_K", 256, 84},    {GgmlType::Q3_K, "Q3_K", 256, 110},
    {GgmlType::Q4_K, "Q4_K", 256, 144},   {GgmlType::Q5_K, "Q5_K", 256, 176},
    {GgmlType::Q6_K, "Q6_K", 256, 210},   {GgmlType::Q8_K, "Q8_K", 256, 292},
    {GgmlType::IQ2_XXS, "IQ2_XXS", 256, 66}, {GgmlType::IQ2_XS, "IQ2_XS", 256, 74},
    {GgmlType::IQ3_XXS, "IQ3_XXS", 256, 98}, {GgmlType::IQ1_S, "IQ1_S", 256, 50},
    {GgmlType::IQ4_NL, "IQ4_NL", 32, 18}, {GgmlType::IQ3_S, "IQ3_S", 256, 110},
    {GgmlType::IQ2_S, "IQ2_S", 256, 82},  {GgmlType::IQ4_XS, "IQ4_XS", 256, 136},
    {GgmlType::I8, "I8", 1, 1},           {GgmlType::I16, "I16", 1, 2},
    {GgmlType::I32, "I32", 1, 4},         {GgmlType::I64, "I64", 1, 8},
    {GgmlType::F64, "F64", 1, 8},         {GgmlType::IQ1_M, "IQ1_M", 256, 56},
    {GgmlType::BF16, "BF16", 1, 2},       {GgmlType::TQ1_0, "TQ1_0", 256, 54},
    {GgmlType::TQ2_0, "TQ2_0", 256, 66},  {GgmlType::MXFP4, "MXFP4", 32, 17},
    {GgmlType::NVFP4, "NVFP4", 64, 36},
}};

}  // namespace

const GgmlTypeInfo* ggml_type_info(uint32_t type_id) {
  for (const auto& t : kTypes) {
    if (static_cast<uint32_t>(t.type) == type_id) return &t;
  }
  return nullptr;
}

std::string ggml_type_name(uint32_t type_id) {
  const GgmlTypeInfo* info = ggml_type_info(type_id);
  return info ? std::string(info->name) : fmt::format("type {}", type_id);
}

Result<uint64_t> ggml_row_bytes(uint32_t type_id, uint64_t n) {
  const GgmlTypeInfo* info = ggml_type_info(type_id);
  if (!info) return make_error("unknown ggml type id {}", type_id);
  if (n % info->block_size != 0) {
    return make_error("row of {} elements is not a multiple of the {} block size {}", n,
                      info->name, info->block_size);
  }
  const uint64_t blocks = n / info->block_size;
  if (blocks > std::numeric_limits<uint64_t>::max() / info->type_size) {
    return make_error("row of {} {} elements overflows 64 bits", n, info->name);
  }
  return blocks * info->type_size;
}

Result<uint64_t> ggml_tensor_bytes(uint32_t type_id, std::span<const uint64_t> ne) {
  if (ne.empty()) return make_error("tensor has no dimensions");
  ATTN_ASSIGN_OR_RETURN(uint64_t bytes, ggml_row_bytes(type_id, ne[0]));
  for (size_t i = 1; i < ne.size(); ++i) {
    if (ne[i] != 0 && bytes > std::numeric_limits<uint64_t>::max() / ne[i]) {
      return make_error("tensor size overflows 64 bits");
    }
    bytes *= ne[i];
  }
  return bytes;
}

}  // namespace attnscope
