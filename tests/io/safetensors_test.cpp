// safetensors reader against the Hugging Face reference outputs and checkpoints in the
// shared fixtures, float conversions against gguf-py's dequantized values, and
// malformed headers.
#include "attnscope/safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "attnscope/gguf.h"
#include "io/io_test_util.h"
#include "support/fixtures.h"

namespace attnscope::safetensors {
namespace {

using ::attnscope::testing::fixture_path;
using ::attnscope::testing::FailsWith;

// header length, JSON header, data.
std::vector<uint8_t> build(const std::string& header, const std::vector<uint8_t>& data = {}) {
  std::vector<uint8_t> b;
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(uint64_t{header.size()} >> (8 * i)));
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

Result<File> parse(const std::string& header, const std::vector<uint8_t>& data = {}) {
  static std::vector<uint8_t> storage;  // File points into it
  storage = build(header, data);
  return File::parse(storage, "bad.safetensors");
}

TEST(SafetensorsFixture, LlamaReferenceAttention) {
  ATTN_REQUIRE_FIXTURES();
  auto f = File::open(fixture_path("models/llama/reference.safetensors"));
  ASSERT_TRUE(f.ok()) << f.error().message;
  for (int layer = 0; layer < 3; ++layer) {
    const std::string name = fmt::format("attn.{}", layer);
    SCOPED_TRACE(name);
    const Tensor* t = f->find(name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dtype, "F32");
    ASSERT_EQ(t->shape, (std::vector<uint64_t>{4, 19, 19}));
    auto a = f->read_f32(name);  // (n_heads, n_tokens, n_tokens)
    ASSERT_TRUE(a.ok()) << a.error().message;
    ASSERT_EQ(a->size(), 4u * 19u * 19u);
    for (size_t h = 0; h < 4; ++h) {
      for (size_t i = 0; i < 19; ++i) {
        double sum = 0;
        for (size_t j = 0; j < 19; ++j) {
          const float p = (*a)[(h * 19 + i) * 19 + j];
          sum += p;
          if (j > i) {
            EXPECT_EQ(p, 0.0f) << h << "," << i << "," << j;  // causal
          }
        }
        EXPECT_NEAR(sum, 1.0, 1e-5) << "head " << h << " row " << i;
      }
    }
  }
  EXPECT_TRUE(FailsWith(f->read_i32("attn.0"), {"tensor 'attn.0': expected dtype I32 or I64, found F32"}));
  EXPECT_TRUE(FailsWith(f->read_f32("attn.9"), {"reference.safetensors: tensor 'attn.9' not found"}));
}

TEST(SafetensorsFixture, LlamaReferenceIds) {
  ATTN_REQUIRE_FIXTURES();
  auto f = File::open(fixture_path("models/llama/reference.safetensors"));
  ASSERT_TRUE(f.ok()) << f.error().message;
  std::ifstream in(fixture_path("models/llama/reference.json"));
  const auto ref = nlohmann::json::parse(in);
  auto ids = f->read_i32("input_ids");
  ASSERT_TRUE(ids.ok()) << ids.error().message;
  EXPECT_EQ(f->find("input_ids")->dtype, "I32");
  EXPECT_EQ(*ids, ref["input_ids"].get<std::vector<int32_t>>());
  auto gen = f->read_i32("generated_ids");
  ASSERT_TRUE(gen.ok()) << gen.error().message;
  EXPECT_EQ(*gen, ref["generated_ids"].get<std::vector<int32_t>>());
  EXPECT_TRUE(FailsWith(f->read_f32("input_ids"), {"expected dtype F32, F16 or BF16, found I32"}));
  // Tensors come in file order, back to back.
  uint64_t expected_begin = 0;
  const uint8_t* base = f->tensors().front().bytes.data();
  for (const Tensor& t : f->tensors()) {
    EXPECT_EQ(static_cast<uint64_t>(t.bytes.data() - base), expected_begin) << t.name;
    expected_begin += t.bytes.size();
  }
}

TEST(SafetensorsFixture, HfCheckpointMetadataAndShapes) {
  ATTN_REQUIRE_FIXTURES();
  auto f = File::open(fixture_path("models/llama/hf/model.safetensors"));
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->metadata().at("format"), "pt");
  const Tensor* emb = f->find("model.embed_tokens.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->shape, (std::vector<uint64_t>{32000, 64}));
  EXPECT_EQ(emb->bytes.size(), 32000u * 64u * 4u);
  EXPECT_EQ(f->find("model.layers.0.self_attn.k_proj.weight")->shape, (std::vector<uint64_t>{32, 64}));
  EXPECT_EQ(f->find("__metadata__"), nullptr);
}

// F16 / BF16 conversion: the GGUF fixture's 16-bit tensor bytes, wrapped in a
// safetensors file, read back equal to gguf-py's dequantization bit for bit.
TEST(SafetensorsFixture, HalfConversionsMatchGgufPy) {
  ATTN_REQUIRE_FIXTURES();
  for (const std::string type : {"F16", "BF16"}) {
    SCOPED_TRACE(type);
    auto g = gguf::File::open(fixture_path("quant/" + type + ".gguf"));
    ASSERT_TRUE(g.ok()) << g.error().message;
    auto ref = File::open(fixture_path("quant/" + type + ".dequant.safetensors"));
    ASSERT_TRUE(ref.ok()) << ref.error().message;
    for (const std::string name : {"normal", "mixed"}) {
      const gguf::TensorInfo* t = g->find_tensor(name);
      ASSERT_NE(t, nullptr);
      const nlohmann::json header = {
          {name, {{"dtype", type}, {"shape", {t->ne[1], t->ne[0]}}, {"data_offsets", {0, t->n_bytes}}}}};
      const std::vector<uint8_t> bytes = build(header.dump(), std::vector<uint8_t>(t->data, t->data + t->n_bytes));
      auto f = File::parse(bytes, "wrapped.safetensors");
      ASSERT_TRUE(f.ok()) << f.error().message;
      auto got = f->read_f32(name);
      auto want = ref->read_f32(name);
      ASSERT_TRUE(got.ok()) << got.error().message;
      ASSERT_TRUE(want.ok()) << want.error().message;
      ASSERT_EQ(got->size(), want->size());
      EXPECT_EQ(std::memcmp(got->data(), want->data(), got->size() * 4), 0) << name;
    }
  }
}

TEST(Safetensors, HalfSpecialValues) {
  // 0, -0, 1, -2, 65504 (max), smallest subnormal 2^-24, inf, nan; bf16 1.0 and -inf.
  const std::vector<uint8_t> f16 = {0x00, 0x00, 0x00, 0x80, 0x00, 0x3c, 0x00, 0xc0,
                                    0xff, 0x7b, 0x01, 0x00, 0x00, 0x7c, 0x00, 0x7e};
  auto f = parse(R"({"h": {"dtype": "F16", "shape": [8], "data_offsets": [0, 16]}})", f16);
  ASSERT_TRUE(f.ok()) << f.error().message;
  auto v = f->read_f32("h");
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ((*v)[0], 0.0f);
  EXPECT_TRUE(std::signbit((*v)[1]));
  EXPECT_EQ((*v)[2], 1.0f);
  EXPECT_EQ((*v)[3], -2.0f);
  EXPECT_EQ((*v)[4], 65504.0f);
  EXPECT_EQ((*v)[5], std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf((*v)[6]));
  EXPECT_TRUE(std::isnan((*v)[7]));
  auto b = parse(R"({"b": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}})", {0x80, 0x3f, 0x80, 0xff});
  ASSERT_TRUE(b.ok()) << b.error().message;
  auto bv = b->read_f32("b");
  ASSERT_TRUE(bv.ok());
  EXPECT_EQ((*bv)[0], 1.0f);
  EXPECT_EQ((*bv)[1], -std::numeric_limits<float>::infinity());
}

TEST(Safetensors, I64ToI32) {
  std::vector<uint8_t> data(16, 0);
  data[0] = 5;                                       // 5
  for (int i = 8; i < 16; ++i) data[i] = 0xff;       // -1
  auto f = parse(R"({"ids": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}})", data);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(*f->read_i32("ids"), (std::vector<int32_t>{5, -1}));
  data[4] = 1;  // 2^32 + 5
  auto big = parse(R"({"ids": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}})", data);
  ASSERT_TRUE(big.ok());
  EXPECT_TRUE(FailsWith(big->read_i32("ids"), {"I64 value 4294967301 at index 0 does not fit in int32"}));
}

TEST(Safetensors, EmptyAndScalarTensors) {
  auto f = parse(R"({"__metadata__": {"a": "b"}, "s": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]},
                    "e": {"dtype": "U8", "shape": [0, 3], "data_offsets": [4, 4]}})",
                 {0, 0, 0x80, 0x3f});
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->metadata().at("a"), "b");
  EXPECT_EQ(*f->read_f32("s"), std::vector<float>{1.0f});
  EXPECT_EQ(f->find("e")->bytes.size(), 0u);
}

TEST(Safetensors, BadHeaders) {
  EXPECT_TRUE(FailsWith(File::parse({}, "x.safetensors"),
                        {"x.safetensors: truncated: needed 8 bytes at offset 0 for header length"}));
  std::vector<uint8_t> huge = build("{}");
  huge[7] = 0x10;
  EXPECT_TRUE(FailsWith(File::parse(huge, "x.safetensors"), {"header length", "runs past the end"}));
  EXPECT_TRUE(FailsWith(parse("{not json"), {"bad.safetensors: header is not valid JSON"}));
  EXPECT_TRUE(FailsWith(parse("[1, 2]"), {"header is a JSON array, expected an object"}));
  EXPECT_TRUE(FailsWith(parse(R"({"__metadata__": {"k": 1}})"), {"__metadata__ key 'k': expected a string, found number"}));
  EXPECT_TRUE(FailsWith(parse(R"({"__metadata__": []})"), {"__metadata__ is a array"}));
  EXPECT_TRUE(FailsWith(parse(R"({"t": 5})"), {"tensor 't': header entry is a number"}));
  EXPECT_TRUE(FailsWith(parse(R"({"t": {"shape": [1], "data_offsets": [0, 4]}})"), {"tensor 't': missing string field 'dtype'"}));
  EXPECT_TRUE(FailsWith(parse(R"({"t": {"dtype": "F4", "shape": [1], "data_offsets": [0, 1]}})", {0}),
                        {"tensor 't': unsupported dtype 'F4'"}));
  EXPECT_TRUE(FailsWith(parse(R"({"t": {"dtype": "F32", "data_offsets": [0, 4]}})"), {"missing array field 'shape'"}));
  EXPECT_TRUE(FailsWith(parse(R"({"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})"),
                        {"shape entry -1 is not a non-negative integer"}));
  EXPECT_TRUE(FailsWith(parse(R"({"t": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})"),
                        {"shape entry 1.5"}));
  EXPECT_TRUE(FailsWith(parse(R"({"t": {"dtype": "F32", "shape": [1]}})"), {"missing field 'data_offsets'"}));
  EXPECT_TRUE(FailsWith(parse(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})"),
                        {"bad data_offsets [4,0]"}));
  EXPECT_TRUE(FailsWith(parse(R"({"attn.0": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})",
                              std::vector<uint8_t>(20)),
                        {"tensor 'attn.0': F32 [2, 3] needs 24 bytes, data_offsets [0, 20) hold 20"}));
  EXPECT_TRUE(FailsWith(parse(R"({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", {1, 2, 3}),
                        {"tensor 't' data [", "extends past the end of the file"}));
  EXPECT_TRUE(FailsWith(parse(R"({"t": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})"),
                        {"tensor 't': [4294967296, 4294967296] x 8 bytes overflows 64 bits"}));
  EXPECT_TRUE(FailsWith(parse(R"({"t": {"dtype": "U8", "shape": [1], "data_offsets": [18446744073709551615, 18446744073709551616]}})"),
                        {"data_offsets"}));
}

TEST(Safetensors, OpenErrors) {
  EXPECT_TRUE(FailsWith(File::open("/nonexistent/x.safetensors"),
                        {"cannot open /nonexistent/x.safetensors: No such file or directory"}));
  EXPECT_TRUE(FailsWith(File::open(::testing::TempDir()), {"is a directory"}));
}

// Every prefix fails; random mutations never crash (they may parse).
TEST(Safetensors, TruncationsAndMutations) {
  const std::string header =
      R"({"__metadata__": {"format": "pt"}, "a": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 8]},)"
      R"( "b": {"dtype": "I32", "shape": [3], "data_offsets": [8, 20]}})";
  const std::vector<uint8_t> good = build(header, std::vector<uint8_t>(20, 0x3c));
  ASSERT_TRUE(File::parse(good, "good").ok());
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(File::parse(std::span<const uint8_t>(good.data(), n), "cut").ok()) << n;
  }
  std::mt19937_64 rng(7);
  int n_ok = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<uint8_t> b = good;
    for (int m = 0; m < 1 + static_cast<int>(rng() % 3); ++m) {
      const size_t at = rng() % b.size();
      switch (rng() % 3) {
        case 0: b[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
        case 1: b[at] = "0123456789[]{}\",:-.eE \xff"[rng() % 23]; break;
        default: b.resize(at); break;
      }
      if (b.empty()) break;
    }
    auto f = File::parse(b, "mutated");
    if (!f.ok()) continue;
    ++n_ok;
    for (const Tensor& t : f->tensors()) {
      uint64_t sum = 0;
      for (uint8_t x : t.bytes) sum += x;
      (void)sum;
      (void)f->read_f32(t.name);
      (void)f->read_i32(t.name);
    }
  }
  EXPECT_GT(n_ok, 0);
}

}  // namespace
}  // namespace attnscope::safetensors
