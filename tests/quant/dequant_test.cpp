// Bit-exactness of every dequantizer against the shared fixtures: for each type,
// quant/<TYPE>.gguf holds tensors `normal` (64 x 512) and `mixed` (16 x 256), and
// quant/<TYPE>.dequant.safetensors the float32 values gguf-py (and libggml, checked
// identical) dequantizes them to. Tolerance 0: every float must have the same bits.
#include <gtest/gtest.h>

#include <bit>
#include <cstdint>
#include <string>
#include <vector>

#include "attnscope/ggml_type.h"
#include "attnscope/gguf.h"
#include "attnscope/quant.h"
#include "attnscope/safetensors.h"
#include "support/fixtures.h"

namespace attnscope::quant {
namespace {

using attnscope::testing::fixture_path;

class Dequant : public ::testing::TestWithParam<const char*> {};

TEST_P(Dequant, BitExactWithFixtures) {
  ATTN_REQUIRE_FIXTURES();
  const std::string type = GetParam();
  auto gguf = gguf::File::open(fixture_path("quant/" + type + ".gguf"));
  ASSERT_TRUE(gguf.ok()) << gguf.error().message;
  auto expected = safetensors::File::open(fixture_path("quant/" + type + ".dequant.safetensors"));
  ASSERT_TRUE(expected.ok()) << expected.error().message;

  for (const char* tensor : {"normal", "mixed"}) {
    SCOPED_TRACE(type + " tensor " + tensor);
    const gguf::TensorInfo* info = gguf->find_tensor(tensor);
    ASSERT_NE(info, nullptr);
    ASSERT_EQ(ggml_type_name(info->type), type);
    const Kernels* k = kernels(info->type);
    ASSERT_NE(k, nullptr);

    const auto n_cols = static_cast<int64_t>(info->ne[0]);
    const auto n_rows = static_cast<int64_t>(info->n_elements() / info->ne[0]);
    auto row_bytes = ggml_row_bytes(info->type, info->ne[0]);
    ASSERT_TRUE(row_bytes.ok()) << row_bytes.error().message;
    ASSERT_EQ(*row_bytes * static_cast<uint64_t>(n_rows), info->n_bytes);

    auto want = expected->read_f32(tensor);
    ASSERT_TRUE(want.ok()) << want.error().message;
    ASSERT_EQ(want->size(), static_cast<size_t>(n_rows * n_cols));

    std::vector<float> got(static_cast<size_t>(n_rows * n_cols));  // (n_rows, n_cols)
    for (int64_t r = 0; r < n_rows; ++r) {
      k->dequantize(info->data + r * *row_bytes, got.data() + r * n_cols, n_cols);
    }
    size_t mismatches = 0, first = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      if (std::bit_cast<uint32_t>(got[i]) != std::bit_cast<uint32_t>((*want)[i])) {
        if (mismatches++ == 0) first = i;
      }
    }
    EXPECT_EQ(mismatches, 0u) << "first mismatch at element " << first << " (row " << first / n_cols
                              << ", col " << first % n_cols << "): got " << got[first] << " (0x"
                              << std::hex << std::bit_cast<uint32_t>(got[first]) << "), want "
                              << std::dec << (*want)[first] << " (0x" << std::hex
                              << std::bit_cast<uint32_t>((*want)[first]) << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Dequant,
                         ::testing::Values("F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1",
                                           "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL",
                                           "IQ4_XS"),
                         [](const ::testing::TestParamInfo<const char*>& param) {
                           return std::string(param.param);
                         });

}  // namespace
}  // namespace attnscope::quant
