// GGUF reader on malformed input: every case must fail with a message that names the
// file and the specific problem, and none may crash or allocate by an untrusted count.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <vector>

#include "attnscope/gguf.h"
#include "attnscope/gguf_writer.h"
#include "io/io_test_util.h"

namespace attnscope::gguf {
namespace {

using ::attnscope::testing::FailsWith;
using ::attnscope::testing::RawGguf;

constexpr uint64_t kHuge = uint64_t{1} << 60;

Result<File> parse(const RawGguf& g) { return File::parse(g.b, "bad.gguf"); }

// A small valid file: a few keys, two F32 tensors whose data ends exactly at the end
// of the file (no trailing padding), so every strict prefix is truncated.
std::vector<uint8_t> small_valid_file() {
  static const std::vector<float> a(8, 1.0f), b(16, 2.0f);
  Writer w;
  w.add_string("general.architecture", "tiny");
  w.add_uint32("tiny.block_count", 2);
  w.add_array("tokenizer.ggml.tokens", std::vector<std::string>{"a", "bc", ""});
  w.add_kv("nested", make_array(ValueType::kArray, {make_array(ValueType::kInt8, {make_int8(-1)})}));
  w.add_tensor("a", 0, std::vector<uint64_t>{8},
               {reinterpret_cast<const uint8_t*>(a.data()), a.size() * 4});
  w.add_tensor("b", 0, std::vector<uint64_t>{4, 4},
               {reinterpret_cast<const uint8_t*>(b.data()), b.size() * 4});
  auto bytes = w.serialize();
  EXPECT_TRUE(bytes.ok()) << bytes.error().message;
  return std::move(bytes).value();
}

TEST(GgufBadInput, SmallValidFileParses) {
  auto bytes = small_valid_file();
  auto f = File::parse(bytes, "small.gguf");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->find_tensor("b")->offset + f->find_tensor("b")->n_bytes + f->data_offset(),
            bytes.size());
}

TEST(GgufBadInput, EveryTruncationFails) {
  const auto bytes = small_valid_file();
  for (size_t n = 0; n < bytes.size(); ++n) {
    SCOPED_TRACE(n);
    auto f = File::parse(std::span<const uint8_t>(bytes.data(), n), "cut.gguf");
    ASSERT_FALSE(f.ok());
    const std::string& m = f.error().message;
    EXPECT_TRUE(m.starts_with("cut.gguf: ")) << m;
    EXPECT_TRUE(m.find("truncated") != std::string::npos ||
                m.find("past the end of the file") != std::string::npos)
        << m;
  }
}

TEST(GgufBadInput, WrongMagic) {
  RawGguf g;
  g.raw("GGML").u32(3).u64(0).u64(0);
  EXPECT_TRUE(FailsWith(parse(g), {"bad.gguf: not a GGUF file (magic 'GGML', expected 'GGUF')"}));
  RawGguf bin;
  bin.u8(0x50).u8(0x4b).u8(0x03).u8(0x04).zeros(20);
  EXPECT_TRUE(FailsWith(parse(bin), {"magic 'PK\\x03\\x04'"}));
  RawGguf tiny;
  tiny.raw("GG");
  EXPECT_TRUE(FailsWith(parse(tiny), {"truncated: needed 4 bytes at offset 0 for magic, file has 2"}));
}

TEST(GgufBadInput, UnsupportedVersions) {
  RawGguf v1, v4, v0, be;
  v1.header(0, 0, 1);
  v4.header(0, 0, 4);
  v0.header(0, 0, 0);
  be.header(0, 0, 0x03000000);
  EXPECT_TRUE(FailsWith(parse(v1), {"bad.gguf", "version 1", "expected 2 or 3"}));
  EXPECT_TRUE(FailsWith(parse(v4), {"bad.gguf: unsupported GGUF version 4 (expected 2 or 3)"}));
  EXPECT_TRUE(FailsWith(parse(v0), {"version 0", "expected 2 or 3"}));
  EXPECT_TRUE(FailsWith(parse(be), {"big-endian"}));
  RawGguf v2;
  v2.header(0, 0, 2);
  EXPECT_TRUE(parse(v2).ok());
}

TEST(GgufBadInput, HugeCountsFailFast) {
  RawGguf kv, tensors;
  kv.header(0, kHuge);
  tensors.header(kHuge, 0);
  EXPECT_TRUE(FailsWith(parse(kv), {"metadata count 1152921504606846976"}));
  EXPECT_TRUE(FailsWith(parse(tensors), {"tensor count 1152921504606846976"}));
}

TEST(GgufBadInput, HugeStringLength) {
  RawGguf key, value, name;
  key.header(0, 1).u64(kHuge).raw("abc").zeros(16);
  EXPECT_TRUE(FailsWith(parse(key), {"string length 1152921504606846976", "key of metadata entry 0",
                                     "runs past the end"}));
  value.header(0, 1).key("general.name", 8).u64(std::numeric_limits<uint64_t>::max());
  EXPECT_TRUE(FailsWith(parse(value), {"metadata key 'general.name'", "runs past the end"}));
  name.header(1, 0).u64(100).raw("short").zeros(30);
  EXPECT_TRUE(FailsWith(parse(name), {"string length 100", "name of tensor info 0"}));
}

TEST(GgufBadInput, HugeArrayCount) {
  RawGguf strings, bytes;
  strings.header(0, 1).key("tokenizer.ggml.tokens", 9).u32(8).u64(kHuge).str("a").str("b");
  EXPECT_TRUE(FailsWith(parse(strings), {"metadata key 'tokenizer.ggml.tokens'",
                                         "array count 1152921504606846976", "truncated"}));
  bytes.header(0, 1).key("k", 9).u32(0).u64(10).zeros(9);
  EXPECT_TRUE(FailsWith(parse(bytes), {"array count 10", "only 9 bytes remain"}));
}

TEST(GgufBadInput, UnknownValueTypes) {
  RawGguf top, elem;
  top.header(0, 1).key("general.x", 13).u32(0);
  EXPECT_TRUE(FailsWith(parse(top), {"metadata key 'general.x': unknown value type 13"}));
  elem.header(0, 1).key("general.x", 9).u32(77).u64(0);
  EXPECT_TRUE(FailsWith(parse(elem), {"metadata key 'general.x': unknown array element type 77"}));
}

TEST(GgufBadInput, BoolMustBeZeroOrOne) {
  RawGguf g;
  g.header(0, 1).key("flag", 7).u8(2);
  EXPECT_TRUE(FailsWith(parse(g), {"metadata key 'flag': bool at offset", "is 2, expected 0 or 1"}));
}

TEST(GgufBadInput, NestedArrayDepth) {
  // depth levels of array-of-array, innermost an empty uint8 array.
  auto nested = [](int depth) {
    RawGguf g;
    g.header(0, 1).key("deep", 9);
    for (int i = 1; i < depth; ++i) g.u32(9).u64(1);
    g.u32(0).u64(0);
    return g;
  };
  EXPECT_TRUE(parse(nested(8)).ok());
  EXPECT_TRUE(FailsWith(parse(nested(9)), {"metadata key 'deep'", "nested deeper than 8"}));
  EXPECT_TRUE(FailsWith(parse(nested(100000)), {"nested deeper than 8"}));
}

TEST(GgufBadInput, DuplicateKeysAndTensorNames) {
  RawGguf keys;
  keys.header(0, 2).kv_u32("a.b", 1).kv_u32("a.b", 2);
  EXPECT_TRUE(FailsWith(parse(keys), {"bad.gguf: duplicate metadata key 'a.b' (entries 0 and 1)"}));
  RawGguf names;
  names.header(2, 0).tensor_info("w", {4}, 0, 0).tensor_info("w", {4}, 0, 32).pad_to(32).zeros(64);
  EXPECT_TRUE(FailsWith(parse(names), {"duplicate tensor name 'w'"}));
}

TEST(GgufBadInput, Alignment) {
  auto with_alignment = [](uint32_t type, uint64_t value) {
    RawGguf g;
    g.header(0, 1).key("general.alignment", type);
    if (type == 4) g.u32(static_cast<uint32_t>(value)); else g.u64(value);
    return g;
  };
  EXPECT_TRUE(FailsWith(parse(with_alignment(4, 0)),
                        {"'general.alignment': expected a nonzero power of two, found 0"}));
  EXPECT_TRUE(FailsWith(parse(with_alignment(4, 48)), {"power of two, found 48"}));
  EXPECT_TRUE(FailsWith(parse(with_alignment(10, 64)), {"expected uint32, found uint64"}));
  auto ok = parse(with_alignment(4, 64));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->alignment(), 64u);
}

TEST(GgufBadInput, TensorDims) {
  RawGguf zero, five;
  zero.header(1, 0).str("t").u32(0).u32(0).u64(0).zeros(16);
  EXPECT_TRUE(FailsWith(parse(zero), {"tensor 't': n_dims is 0, expected 1 to 4"}));
  five.header(1, 0).tensor_info("t", {1, 1, 1, 1, 1}, 0, 0);
  EXPECT_TRUE(FailsWith(parse(five), {"tensor 't': n_dims is 5, expected 1 to 4"}));
  RawGguf overflow;
  overflow.header(1, 0).tensor_info("t", {uint64_t{1} << 32, uint64_t{1} << 32, 4}, 0, 0);
  EXPECT_TRUE(FailsWith(parse(overflow), {"tensor 't'", "overflows"}));
  RawGguf neg;
  neg.header(1, 0).tensor_info("t", {std::numeric_limits<uint64_t>::max()}, 0, 0);
  EXPECT_TRUE(FailsWith(parse(neg), {"tensor 't': ne[0] = 18446744073709551615 does not fit in int64"}));
  // Fits in int64 elements, but not in 64-bit bytes.
  RawGguf bytes;
  bytes.header(1, 0).tensor_info("t", {uint64_t{1} << 31, uint64_t{1} << 31}, 0, 0);
  EXPECT_TRUE(FailsWith(parse(bytes), {"tensor 't' (F32, ne [2147483648, 2147483648])", "overflows"}));
}

TEST(GgufBadInput, TensorTypes) {
  RawGguf unknown;
  unknown.header(1, 0).tensor_info("t", {4}, 99, 0).pad_to(32).zeros(32);
  EXPECT_TRUE(FailsWith(parse(unknown), {"bad.gguf: tensor 't': unknown ggml type id 99"}));
  RawGguf removed;  // id 4 (Q4_2) was removed from ggml
  removed.header(1, 0).tensor_info("t", {32}, 4, 0).pad_to(32).zeros(32);
  EXPECT_TRUE(FailsWith(parse(removed), {"unknown ggml type id 4"}));
  RawGguf partial_block;  // Q4_K needs rows of 256
  partial_block.header(1, 0).tensor_info("blk.0.attn_q.weight", {100, 2}, 12, 0).pad_to(32).zeros(512);
  EXPECT_TRUE(FailsWith(parse(partial_block), {"tensor 'blk.0.attn_q.weight' (Q4_K, ne [100, 2])",
                                               "block size 256"}));
}

TEST(GgufBadInput, TensorPlacement) {
  RawGguf unaligned;
  unaligned.header(1, 0).tensor_info("t", {4}, 0, 16).pad_to(32).zeros(64);
  EXPECT_TRUE(FailsWith(parse(unaligned), {"tensor 't': data offset 16 is not a multiple of the alignment 32"}));

  RawGguf past;  // 4 floats at offset 32: needs 48 bytes of data, has 32
  past.header(1, 0).tensor_info("blk.0.attn_q.weight", {4}, 0, 32).pad_to(32);
  const uint64_t data_start = past.b.size();
  past.zeros(32);
  EXPECT_TRUE(FailsWith(parse(past), {fmt::format("bad.gguf: tensor 'blk.0.attn_q.weight' data [{}, {}) "
                                                  "extends past the end of the file ({} bytes)",
                                                  data_start + 32, data_start + 48, data_start + 32)}));

  RawGguf far;  // offset near 2^64: start + offset overflows
  far.header(1, 0).tensor_info("t", {4}, 0, std::numeric_limits<uint64_t>::max() - 31).pad_to(32);
  EXPECT_TRUE(FailsWith(parse(far), {"tensor 't' data offset", "past the end of the file"}));

  RawGguf no_data;  // infos end mid-way to the alignment boundary, file ends there
  no_data.header(1, 0).tensor_info("t", {1}, 0, 0);
  EXPECT_TRUE(FailsWith(parse(no_data), {"tensor 't'", "past the end of the file"}));
}

TEST(GgufBadInput, ZeroTensorsNeedNoDataSection) {
  RawGguf g;
  g.header(0, 1).kv_str("general.architecture", "vocab-only");
  auto f = parse(g);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(*f->get_string("general.architecture"), "vocab-only");
}

TEST(GgufBadInput, EmptyInput) {
  EXPECT_TRUE(FailsWith(File::parse({}, "empty.gguf"),
                        {"empty.gguf: truncated: needed 4 bytes at offset 0 for magic, file has 0"}));
}

}  // namespace
}  // namespace attnscope::gguf
