// Storage sizes of ggml types: known values (ggml-common.h), partial blocks and overflow.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "attnscope/ggml_type.h"

namespace attnscope {
namespace {

uint32_t id(GgmlType t) { return static_cast<uint32_t>(t); }

TEST(GgmlType, RowBytesOfKnownTypes) {
  EXPECT_EQ(ggml_row_bytes(id(GgmlType::F32), 64).value(), 256u);
  EXPECT_EQ(ggml_row_bytes(id(GgmlType::Q8_0), 64).value(), 68u);    // 2 blocks of 34
  EXPECT_EQ(ggml_row_bytes(id(GgmlType::Q4_K), 512).value(), 288u);  // 2 blocks of 144
  EXPECT_EQ(ggml_row_bytes(id(GgmlType::Q6_K), 256).value(), 210u);
  EXPECT_EQ(ggml_type_name(id(GgmlType::IQ4_XS)), "IQ4_XS");
  EXPECT_EQ(ggml_type_name(99), "type 99");
}

TEST(GgmlType, PartialBlocksAndUnknownTypesAreErrors) {
  auto partial = ggml_row_bytes(id(GgmlType::Q4_0), 33);
  ASSERT_FALSE(partial.ok());
  EXPECT_NE(partial.error().message.find("block size 32"), std::string::npos) << partial.error().message;
  EXPECT_FALSE(ggml_row_bytes(4, 32).ok());  // a removed type id
}

TEST(GgmlType, SizesThatOverflowAreErrorsNotWrappedValues) {
  // 2^62 F32 elements would need 2^64 bytes: it must not wrap to 0.
  auto row = ggml_row_bytes(id(GgmlType::F32), uint64_t{1} << 62);
  ASSERT_FALSE(row.ok());
  EXPECT_NE(row.error().message.find("overflows"), std::string::npos);
  const std::vector<uint64_t> ne = {uint64_t{1} << 32, uint64_t{1} << 31};
  EXPECT_FALSE(ggml_tensor_bytes(id(GgmlType::F32), ne).ok());
  const std::vector<uint64_t> fine = {4096, 4096};
  EXPECT_EQ(ggml_tensor_bytes(id(GgmlType::F16), fine).value(), 4096u * 4096u * 2u);
}

}  // namespace
}  // namespace attnscope
