// GGUF writer: exact bytes for a hand-computed file, round trips through the reader
// for every value type, nested arrays and alignments, the fixture files rewritten,
// atomic writes, and the errors it reports instead of writing a bad file.
#include "attnscope/gguf_writer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "attnscope/gguf.h"
#include "io/io_test_util.h"
#include "support/fixtures.h"

namespace attnscope::gguf {
namespace {

using ::attnscope::testing::FailsWith;
using ::attnscope::testing::RawGguf;

std::span<const uint8_t> as_bytes(const std::vector<float>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)};
}

Result<File> round_trip(const Writer& w, std::vector<uint8_t>& storage) {
  auto bytes = w.serialize();
  if (!bytes.ok()) return std::move(bytes).error();
  storage = std::move(*bytes);
  return File::parse(storage, "roundtrip.gguf");
}

bool same_value(const Value& a, const Value& b) {
  if (a.type != b.type || a.data.index() != b.data.index()) return false;
  const Array* x = a.as_array();
  const Array* y = b.as_array();
  if (x == nullptr) {
    if (const auto* d = std::get_if<double>(&a.data)) {
      const double e = std::get<double>(b.data);
      return *d == e || (std::isnan(*d) && std::isnan(e));
    }
    if (const auto* s = a.as_string()) return *s == *b.as_string();
    if (auto v = a.as_bool()) return *v == *b.as_bool();
    if (const auto* u = std::get_if<uint64_t>(&a.data)) return *u == std::get<uint64_t>(b.data);
    return std::get<int64_t>(a.data) == std::get<int64_t>(b.data);
  }
  if (x->elem_type != y->elem_type || x->items.size() != y->items.size()) return false;
  for (size_t i = 0; i < x->items.size(); ++i) {
    if (!same_value(x->items[i], y->items[i])) return false;
  }
  return true;
}

// Byte layout computed by hand from the GGUF spec, independent of the writer's code.
TEST(GgufWriter, ExactBytesOfATinyFile) {
  const std::vector<float> data = {1.0f, -2.0f};
  Writer w;
  w.add_uint32("a", 7);
  w.add_tensor("t", 0, std::vector<uint64_t>{2}, as_bytes(data));
  auto bytes = w.serialize();
  ASSERT_TRUE(bytes.ok()) << bytes.error().message;

  RawGguf want;
  want.raw("GGUF").u32(3).u64(1).u64(1);        // magic, version, 1 tensor, 1 kv
  want.u64(1).raw("a").u32(4).u32(7);           // "a": uint32 7
  want.u64(1).raw("t").u32(1).u64(2).u32(0).u64(0);  // "t": 1 dim [2], F32, offset 0
  ASSERT_EQ(want.b.size(), 24u + 17u + 33u);
  want.zeros(96 - want.b.size());               // pad to 32: data section at 96
  want.u32(0x3f800000).u32(0xc0000000);         // 1.0f, -2.0f
  want.zeros(24);                               // tensor padded to 32
  EXPECT_EQ(*bytes, want.b);
}

TEST(GgufWriter, RoundTripsEveryScalarType) {
  Writer w;
  w.add_uint8("u8", 255);
  w.add_int8("i8", -128);
  w.add_uint16("u16", 65535);
  w.add_int16("i16", -32768);
  w.add_uint32("u32", 4294967295u);
  w.add_int32("i32", std::numeric_limits<int32_t>::min());
  w.add_uint64("u64", std::numeric_limits<uint64_t>::max());
  w.add_int64("i64", std::numeric_limits<int64_t>::min());
  w.add_float32("f32", 3.14159f);
  w.add_float64("f64", 2.718281828459045);
  w.add_float32("f32.inf", -std::numeric_limits<float>::infinity());
  w.add_bool("t", true);
  w.add_bool("f", false);
  w.add_string("s", "héllo ▁world");
  w.add_string("empty", "");
  w.add_string("nul", std::string("a\0b", 3));
  std::vector<uint8_t> storage;
  auto f = round_trip(w, storage);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->version(), 3u);
  ASSERT_EQ(f->metadata().size(), 16u);
  EXPECT_EQ(f->metadata()[0].first, "u8");  // file order kept
  EXPECT_EQ(f->find("u8")->type, ValueType::kUint8);
  EXPECT_EQ(*f->get_int("u8"), 255);
  EXPECT_EQ(f->find("i8")->type, ValueType::kInt8);
  EXPECT_EQ(*f->get_int("i8"), -128);
  EXPECT_EQ(*f->get_int("u16"), 65535);
  EXPECT_EQ(*f->get_int("i16"), -32768);
  EXPECT_EQ(*f->get_int("u32"), 4294967295);
  EXPECT_EQ(*f->get_int("i32"), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(std::get<uint64_t>(f->find("u64")->data), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(*f->get_int("i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f->find("f32")->type, ValueType::kFloat32);
  EXPECT_EQ(*f->get_float("f32"), static_cast<double>(3.14159f));
  EXPECT_EQ(f->find("f64")->type, ValueType::kFloat64);
  EXPECT_EQ(*f->get_float("f64"), 2.718281828459045);
  EXPECT_EQ(*f->get_float("f32.inf"), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(*f->get_bool("t"), true);
  EXPECT_EQ(*f->get_bool("f"), false);
  EXPECT_EQ(*f->get_string("s"), "héllo ▁world");
  EXPECT_EQ(*f->get_string("empty"), "");
  EXPECT_EQ(*f->get_string("nul"), std::string("a\0b", 3));
}

TEST(GgufWriter, RoundTripsArrays) {
  Writer w;
  w.add_array("u8", std::vector<uint8_t>{0, 255});
  w.add_array("i8", std::vector<int8_t>{-1, 1});
  w.add_array("u16", std::vector<uint16_t>{65535});
  w.add_array("i16", std::vector<int16_t>{-2});
  w.add_array("u32", std::vector<uint32_t>{1, 2, 3});
  w.add_array("i32", std::vector<int32_t>{-3});
  w.add_array("u64", std::vector<uint64_t>{std::numeric_limits<uint64_t>::max()});
  w.add_array("i64", std::vector<int64_t>{-4});
  w.add_array("f32", std::vector<float>{0.25f, -0.5f});
  w.add_array("f64", std::vector<double>{1e300});
  w.add_array("strings", std::vector<std::string>{"<s>", "", "▁the"});
  w.add_array("empty", std::vector<float>{});
  w.add_kv("bools", make_array(ValueType::kBool, {make_bool(true), make_bool(false)}));
  std::vector<uint8_t> storage;
  auto f = round_trip(w, storage);
  ASSERT_TRUE(f.ok()) << f.error().message;
  const struct { const char* key; ValueType elem; size_t n; } expected[] = {
      {"u8", ValueType::kUint8, 2},   {"i8", ValueType::kInt8, 2},       {"u16", ValueType::kUint16, 1},
      {"i16", ValueType::kInt16, 1},  {"u32", ValueType::kUint32, 3},    {"i32", ValueType::kInt32, 1},
      {"u64", ValueType::kUint64, 1}, {"i64", ValueType::kInt64, 1},     {"f32", ValueType::kFloat32, 2},
      {"f64", ValueType::kFloat64, 1}, {"strings", ValueType::kString, 3}, {"empty", ValueType::kFloat32, 0},
      {"bools", ValueType::kBool, 2},
  };
  for (const auto& e : expected) {
    SCOPED_TRACE(e.key);
    auto a = f->get_array(e.key);
    ASSERT_TRUE(a.ok()) << a.error().message;
    EXPECT_EQ((*a)->elem_type, e.elem);
    EXPECT_EQ((*a)->items.size(), e.n);
  }
  EXPECT_EQ(*(*f->get_array("u8"))->items[1].as_int(), 255);
  EXPECT_EQ(*(*f->get_array("i8"))->items[0].as_int(), -1);
  EXPECT_EQ(*(*f->get_array("i64"))->items[0].as_int(), -4);
  EXPECT_EQ(*(*f->get_array("f32"))->items[1].as_float(), -0.5);
  EXPECT_EQ(*(*f->get_array("f64"))->items[0].as_float(), 1e300);
  EXPECT_EQ(*(*f->get_array("strings"))->items[2].as_string(), "▁the");
  EXPECT_EQ(*(*f->get_array("bools"))->items[0].as_bool(), true);
}

TEST(GgufWriter, RoundTripsNestedArrays) {
  // [[1, 2], []] of uint16; [[["a"]], [["b", "c"]]] of strings; an array of arrays of mixed types.
  Value ints = make_array(ValueType::kArray,
                          {make_array(ValueType::kUint16, {make_uint16(1), make_uint16(2)}),
                           make_array(ValueType::kUint16, {})});
  Value strings = make_array(
      ValueType::kArray,
      {make_array(ValueType::kArray, {make_array(ValueType::kString, {make_string("a")})}),
       make_array(ValueType::kArray,
                  {make_array(ValueType::kString, {make_string("b"), make_string("c")})})});
  Value mixed = make_array(ValueType::kArray,
                           {make_array(ValueType::kFloat64, {make_float64(0.5)}),
                            make_array(ValueType::kString, {make_string("x")})});
  Value deepest = make_array(ValueType::kUint8, {make_uint8(9)});
  for (int i = 1; i < 8; ++i) deepest = make_array(ValueType::kArray, {deepest});  // depth 8
  Writer w;
  w.add_kv("ints", ints);
  w.add_kv("strings", strings);
  w.add_kv("mixed", mixed);
  w.add_kv("deepest", deepest);
  std::vector<uint8_t> storage;
  auto f = round_trip(w, storage);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_TRUE(same_value(*f->find("ints"), ints));
  EXPECT_TRUE(same_value(*f->find("strings"), strings));
  EXPECT_TRUE(same_value(*f->find("mixed"), mixed));
  EXPECT_TRUE(same_value(*f->find("deepest"), deepest));
  EXPECT_FALSE(same_value(*f->find("ints"), mixed));
  auto s = f->get_string("strings");
  EXPECT_TRUE(FailsWith(s, {"expected a string, found array of array of array of string"}));
}

class GgufWriterAlignment : public ::testing::TestWithParam<uint32_t> {};

TEST_P(GgufWriterAlignment, TensorsAlignedAndIntact) {
  const uint32_t alignment = GetParam();
  std::vector<std::vector<float>> data;
  for (size_t n : {3, 16, 1, 40}) {
    data.emplace_back(n);
    for (size_t i = 0; i < n; ++i) data.back()[i] = static_cast<float>(n * 100 + i);
  }
  const std::vector<uint8_t> q4_0(18 * 3, 0xab);  // 3 Q4_0 blocks = 96 elements
  Writer w;
  if (alignment != 32) w.add_uint32("general.alignment", alignment);
  w.add_string("general.architecture", "aligned");
  EXPECT_EQ(w.alignment(), alignment);
  for (size_t i = 0; i < data.size(); ++i) {
    w.add_tensor(fmt::format("t{}", i), 0, std::vector<uint64_t>{data[i].size()}, as_bytes(data[i]));
  }
  w.add_tensor("q", 2, std::vector<uint64_t>{32, 3}, q4_0);
  std::vector<uint8_t> storage;
  auto f = round_trip(w, storage);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->alignment(), alignment);
  EXPECT_EQ(f->data_offset() % alignment, 0u);
  EXPECT_EQ(storage.size() % alignment, 0u);
  ASSERT_EQ(f->tensors().size(), 5u);
  for (size_t i = 0; i < data.size(); ++i) {
    const TensorInfo& t = f->tensors()[i];
    EXPECT_EQ(t.name, fmt::format("t{}", i));
    EXPECT_EQ(t.offset % alignment, 0u);
    EXPECT_EQ(static_cast<uint64_t>(t.data - storage.data()) % alignment, 0u);
    ASSERT_EQ(t.n_bytes, data[i].size() * 4);
    EXPECT_EQ(std::memcmp(t.data, data[i].data(), t.n_bytes), 0);
  }
  const TensorInfo* q = f->find_tensor("q");
  EXPECT_EQ(q->type, 2u);
  EXPECT_EQ(q->n_dims, 2u);
  EXPECT_EQ(q->ne[1], 3u);
  EXPECT_EQ(q->n_bytes, q4_0.size());
  EXPECT_EQ(std::memcmp(q->data, q4_0.data(), q4_0.size()), 0);
}

INSTANTIATE_TEST_SUITE_P(Alignments, GgufWriterAlignment, ::testing::Values(32u, 64u, 1u, 4096u));

// Rewriting gguf-py's files reproduces their metadata and tensor bytes.
TEST(GgufWriter, RewritesFixtureFiles) {
  ATTN_REQUIRE_FIXTURES();
  for (const char* name : {"quant/Q4_K.gguf", "quant/IQ2_XS.gguf", "tokenizer/ggml-vocab/ggml-vocab-gpt-2.gguf"}) {
    SCOPED_TRACE(name);
    auto src = File::open(::attnscope::testing::fixture_path(name));
    ASSERT_TRUE(src.ok()) << src.error().message;
    Writer w;
    for (const auto& [key, value] : src->metadata()) w.add_kv(key, value);
    for (const TensorInfo& t : src->tensors()) {
      w.add_tensor(t.name, t.type, std::span<const uint64_t>(t.ne.data(), t.n_dims), {t.data, t.n_bytes});
    }
    std::vector<uint8_t> storage;
    auto f = round_trip(w, storage);
    ASSERT_TRUE(f.ok()) << f.error().message;
    ASSERT_EQ(f->metadata().size(), src->metadata().size());
    for (size_t i = 0; i < f->metadata().size(); ++i) {
      EXPECT_EQ(f->metadata()[i].first, src->metadata()[i].first);
      EXPECT_TRUE(same_value(f->metadata()[i].second, src->metadata()[i].second)) << f->metadata()[i].first;
    }
    ASSERT_EQ(f->tensors().size(), src->tensors().size());
    for (size_t i = 0; i < f->tensors().size(); ++i) {
      const TensorInfo& a = f->tensors()[i];
      const TensorInfo& b = src->tensors()[i];
      EXPECT_EQ(a.name, b.name);
      EXPECT_EQ(a.ne, b.ne);
      EXPECT_EQ(a.type, b.type);
      EXPECT_EQ(a.offset, b.offset);  // gguf-py also pads each tensor to the alignment
      ASSERT_EQ(a.n_bytes, b.n_bytes);
      EXPECT_EQ(std::memcmp(a.data, b.data, a.n_bytes), 0);
    }
    EXPECT_EQ(f->data_offset(), src->data_offset());
  }
}

TEST(GgufWriter, WritesAtomicallyToPath) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / "attnscope_gguf_writer_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "model.gguf").string();
  const std::vector<float> data(10, 1.5f);
  for (int round = 0; round < 2; ++round) {  // the second write replaces the first
    Writer w;
    w.add_int32("round", round);
    w.add_tensor("w", 0, std::vector<uint64_t>{5, 2}, as_bytes(data));
    ASSERT_TRUE(w.write(path).ok());
    auto f = File::open(path);
    ASSERT_TRUE(f.ok()) << f.error().message;
    EXPECT_EQ(*f->get_int("round"), round);
    EXPECT_EQ(std::memcmp(f->find_tensor("w")->data, data.data(), 40), 0);
    auto serialized = w.serialize();
    EXPECT_EQ(fs::file_size(path), serialized->size());
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);  // no temp left

  Writer w;
  w.add_int32("x", 1);
  const std::string missing = (dir / "no" / "such" / "dir.gguf").string();
  auto s = w.write(missing);
  ASSERT_FALSE(s.ok());
  EXPECT_CONTAINS(s.error().message, missing);
  EXPECT_FALSE(fs::exists(missing));

  Writer bad;  // an invalid writer never touches the destination
  bad.add_int32("x", 1);
  bad.add_int32("x", 2);
  EXPECT_FALSE(bad.write(path).ok());
  auto still = File::open(path);
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(*still->get_int("round"), 1);
  fs::remove_all(dir);
}

TEST(GgufWriter, ReportsTheFirstError) {
  const std::vector<float> four(4, 0.0f);
  auto first_error = [](auto build) {
    Writer w;
    build(w);
    EXPECT_FALSE(w.serialize().ok());
    return w.status();
  };
  EXPECT_TRUE(FailsWith(first_error([](Writer& w) { w.add_int32("k", 1); w.add_string("k", "x"); }),
                        {"duplicate metadata key 'k'"}));
  EXPECT_TRUE(FailsWith(first_error([&](Writer& w) {
                          w.add_tensor("t", 0, std::vector<uint64_t>{4}, as_bytes(four));
                          w.add_tensor("t", 0, std::vector<uint64_t>{4}, as_bytes(four));
                        }),
                        {"duplicate tensor name 't'"}));
  EXPECT_TRUE(FailsWith(first_error([&](Writer& w) {
                          w.add_tensor("blk.0.attn_q.weight", 0, std::vector<uint64_t>{2, 4}, as_bytes(four));
                        }),
                        {"tensor 'blk.0.attn_q.weight' (F32, 8 elements): expected 32 bytes of data, got 16"}));
  EXPECT_TRUE(FailsWith(first_error([&](Writer& w) { w.add_tensor("t", 99, std::vector<uint64_t>{4}, as_bytes(four)); }),
                        {"unknown ggml type id 99"}));
  EXPECT_TRUE(FailsWith(first_error([&](Writer& w) { w.add_tensor("t", 0, std::vector<uint64_t>{}, as_bytes(four)); }),
                        {"0 dimensions, expected 1 to 4"}));
  EXPECT_TRUE(FailsWith(first_error([&](Writer& w) {
                          w.add_tensor("t", 0, std::vector<uint64_t>{1, 1, 1, 1, 4}, as_bytes(four));
                        }),
                        {"5 dimensions"}));
  EXPECT_TRUE(FailsWith(first_error([&](Writer& w) { w.add_tensor("t", 12, std::vector<uint64_t>{100}, {}); }),
                        {"block size 256"}));
  EXPECT_TRUE(FailsWith(first_error([&](Writer& w) {
                          w.add_tensor(std::string(64, 'n'), 0, std::vector<uint64_t>{4}, as_bytes(four));
                        }),
                        {"is 64 bytes, ggml allows at most 63"}));
  EXPECT_TRUE(FailsWith(first_error([](Writer& w) { w.add_uint32("general.alignment", 0); }),
                        {"'general.alignment': expected a nonzero power of two, found 0"}));
  EXPECT_TRUE(FailsWith(first_error([](Writer& w) { w.add_uint32("general.alignment", 48); }),
                        {"found 48"}));
  EXPECT_TRUE(FailsWith(first_error([](Writer& w) { w.add_uint64("general.alignment", 64); }),
                        {"expected uint32, found uint64"}));
  EXPECT_TRUE(FailsWith(first_error([](Writer& w) { w.add_kv("k", Value{ValueType::kUint32, std::string("x")}); }),
                        {"metadata key 'k': data does not hold an integer for uint32"}));
  EXPECT_TRUE(FailsWith(first_error([](Writer& w) { w.add_kv("k", Value{ValueType::kUint8, uint64_t{300}}); }),
                        {"does not fit in uint8"}));
  EXPECT_TRUE(FailsWith(first_error([](Writer& w) { w.add_kv("k", Value{ValueType::kString, 1.0}); }),
                        {"data does not hold a string"}));
  EXPECT_TRUE(FailsWith(first_error([](Writer& w) {
                          w.add_kv("k", make_array(ValueType::kInt32, {make_int32(1), make_string("x")}));
                        }),
                        {"array of int32 has a string at index 1"}));
  EXPECT_TRUE(FailsWith(first_error([](Writer& w) {
                          Value v = make_array(ValueType::kUint8, {});
                          for (int i = 0; i < 8; ++i) v = make_array(ValueType::kArray, {v});  // depth 9
                          w.add_kv("deep", v);
                        }),
                        {"metadata key 'deep': arrays nested deeper than 8 levels"}));
  // The first error wins; later valid calls do not clear it.
  Writer w;
  w.add_kv("bad", Value{ValueType::kBool, uint64_t{1}});
  w.add_int32("good", 1);
  EXPECT_TRUE(FailsWith(w.status(), {"'bad'"}));
  // Signed values are accepted in unsigned types when they fit, and vice versa.
  Writer lenient;
  lenient.add_kv("u", Value{ValueType::kUint16, int64_t{7}});
  lenient.add_kv("s", Value{ValueType::kInt8, uint64_t{100}});
  EXPECT_TRUE(lenient.status().ok());
}

}  // namespace
}  // namespace attnscope::gguf
