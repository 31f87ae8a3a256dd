// The streaming safetensors writer: round trips through safetensors::File, the byte
// layout the spec requires (8-byte length, space-padded JSON, offsets tiling the data),
// and every misuse is an error naming the file and tensor, leaving no file behind.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "attnscope/quant.h"
#include "attnscope/safetensors.h"
#include "attnscope/safetensors_writer.h"

namespace attnscope::safetensors {
namespace {

namespace fs = std::filesystem;

std::string temp_path(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "attnscope-tests" / "safetensors-writer";
  fs::create_directories(dir);
  const fs::path p = dir / name;
  fs::remove(p);
  return p.string();
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Files left in the directory of `path` whose name starts with its base name.
std::vector<std::string> leftovers(const std::string& path) {
  std::vector<std::string> out;
  const fs::path p(path);
  for (const auto& e : fs::directory_iterator(p.parent_path())) {
    const std::string name = e.path().filename().string();
    if (name.rfind(p.filename().string(), 0) == 0) out.push_back(name);
  }
  return out;
}

std::span<const uint8_t> as_bytes(const std::vector<float>& v) {
  return {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)};
}

TEST(SafetensorsWriter, RoundTripThroughTheReader) {
  const std::string path = temp_path("roundtrip.safetensors");
  const std::vector<int32_t> ids = {1, -7, 300, 2147483647};
  std::vector<float> m(2 * 3 * 5);
  for (size_t i = 0; i < m.size(); ++i) m[i] = 0.1f * static_cast<float>(i) - 1.0f;

  Writer w;
  w.add_metadata("prompt", "héllo \"world\"\n");
  w.add_metadata("n_prompt", "3");
  w.add_tensor("tokens", Dtype::kI32, {4});
  w.add_tensor("b.matrix", Dtype::kF32, {2, 3, 5});
  w.add_tensor("a.half", Dtype::kF16, {2, 3, 5});
  w.add_tensor("bf", Dtype::kBF16, {30});
  w.add_tensor("wide", Dtype::kI64, {4});
  w.add_tensor("empty", Dtype::kF32, {0, 3});
  w.add_tensor("bytes", Dtype::kU8, {3});
  ASSERT_TRUE(w.status().ok());
  ASSERT_TRUE(w.open(path).ok());
  ASSERT_TRUE(w.append_i32("tokens", ids).ok());
  // In pieces, split mid-element for the raw path.
  const auto raw = as_bytes(m);
  ASSERT_TRUE(w.append("b.matrix", raw.subspan(0, 7)).ok());
  ASSERT_TRUE(w.append("b.matrix", raw.subspan(7)).ok());
  ASSERT_TRUE(w.append_floats("a.half", std::span(m).subspan(0, 11)).ok());
  ASSERT_TRUE(w.append_floats("a.half", std::span(m).subspan(11)).ok());
  ASSERT_TRUE(w.append_floats("bf", m).ok());
  ASSERT_TRUE(w.append_i32("wide", ids).ok());
  // "empty" has no bytes and is skipped.
  const uint8_t three[] = {0, 128, 255};
  ASSERT_TRUE(w.append("bytes", three).ok());
  auto st = w.finish();
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(fs::file_size(path), w.file_size());
  EXPECT_EQ(leftovers(path), std::vector<std::string>{"roundtrip.safetensors"});

  auto f = File::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->metadata().at("prompt"), "héllo \"world\"\n");
  EXPECT_EQ(f->metadata().at("n_prompt"), "3");
  ASSERT_EQ(f->tensors().size(), 7u);
  // Data in declaration order (the zero-byte tensor has no place of its own).
  std::vector<std::string> order;
  for (const Tensor& t : f->tensors()) {
    if (!t.bytes.empty()) order.push_back(t.name);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"tokens", "b.matrix", "a.half", "bf", "wide", "bytes"}));

  EXPECT_EQ(*f->read_i32("tokens"), ids);
  EXPECT_EQ(*f->read_i32("wide"), ids);
  EXPECT_EQ(f->find("wide")->dtype, "I64");
  EXPECT_EQ(*f->read_f32("b.matrix"), m);
  EXPECT_EQ(f->find("b.matrix")->shape, (std::vector<uint64_t>{2, 3, 5}));
  auto half = f->read_f32("a.half");
  auto bf = f->read_f32("bf");
  ASSERT_TRUE(half.ok() && bf.ok());
  for (size_t i = 0; i < m.size(); ++i) {
    EXPECT_EQ((*half)[i], quant::f16_to_f32(quant::f32_to_f16(m[i]))) << i;
    EXPECT_NEAR((*bf)[i], m[i], std::abs(m[i]) / 128.0f) << i;
  }
  EXPECT_EQ(f->find("empty")->shape, (std::vector<uint64_t>{0, 3}));
  EXPECT_TRUE(f->find("empty")->bytes.empty());
  const Tensor* b = f->find("bytes");
  ASSERT_EQ(b->bytes.size(), 3u);
  EXPECT_EQ(b->bytes[2], 255);
}

TEST(SafetensorsWriter, HeaderFollowsTheSpec) {
  const std::string path = temp_path("layout.safetensors");
  Writer w;
  w.add_metadata("k", "v");
  w.add_tensor("z", Dtype::kF32, {1});
  w.add_tensor("a", Dtype::kU8, {3});
  ASSERT_TRUE(w.open(path).ok());
  const float one = 1.0f;
  ASSERT_TRUE(w.append_floats("z", std::span(&one, 1)).ok());
  const uint8_t abc[] = {'a', 'b', 'c'};
  ASSERT_TRUE(w.append("a", abc).ok());
  ASSERT_TRUE(w.finish().ok());

  const std::string bytes = read_bytes(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[static_cast<size_t>(i)]);
  EXPECT_EQ(n % 8, 0u) << "header padded to 8 bytes";
  EXPECT_EQ(bytes.size(), 8 + n + 7);
  const std::string header = bytes.substr(8, n);
  EXPECT_EQ(header[0], '{');
  EXPECT_EQ(header.find("__metadata__"), 2u) << "metadata first: " << header;
  EXPECT_LT(header.find("\"z\""), header.find("\"a\"")) << "declaration order: " << header;
  auto j = nlohmann::json::parse(header);
  EXPECT_EQ(j["z"]["data_offsets"], nlohmann::json::array({0, 4}));
  EXPECT_EQ(j["a"]["data_offsets"], nlohmann::json::array({4, 7}));
  EXPECT_EQ(j["a"]["dtype"], "U8");
  EXPECT_EQ(bytes.substr(8 + n + 4), "abc");
}

TEST(SafetensorsWriter, TooManyBytesIsAnErrorNamingFileAndTensor) {
  const std::string path = temp_path("too-many.safetensors");
  Writer w;
  w.add_tensor("x", Dtype::kF32, {2});
  w.add_tensor("y", Dtype::kF32, {1});
  ASSERT_TRUE(w.open(path).ok());
  const std::vector<float> three = {1, 2, 3};
  auto st = w.append_floats("x", three);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find(path), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("'x'"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("holds 8 bytes; 12 appended"), std::string::npos) << st.error().message;
  // Sticky, and the temporary file is gone.
  EXPECT_FALSE(w.append_floats("x", std::span(three).subspan(0, 2)).ok());
  EXPECT_FALSE(w.finish().ok());
  EXPECT_TRUE(leftovers(path).empty());
}

TEST(SafetensorsWriter, MissingTensorDataIsAnError) {
  const std::string path = temp_path("missing.safetensors");
  Writer w;
  w.add_tensor("x", Dtype::kF32, {2});
  w.add_tensor("y", Dtype::kF32, {2});
  w.add_tensor("z", Dtype::kF32, {2});
  ASSERT_TRUE(w.open(path).ok());
  const std::vector<float> two = {1, 2};
  ASSERT_TRUE(w.append_floats("x", two).ok());
  ASSERT_TRUE(w.append_floats("y", std::span(two).subspan(0, 1)).ok());
  auto st = w.finish();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find(path), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("tensor 'y' (F32 [2]) received 4 of its 8 bytes; 1 more tensors have no data"),
            std::string::npos)
      << st.error().message;
  EXPECT_TRUE(leftovers(path).empty());
}

TEST(SafetensorsWriter, DataOutOfDeclarationOrderIsAnError) {
  const std::string path = temp_path("order.safetensors");
  Writer w;
  w.add_tensor("x", Dtype::kF32, {1});
  w.add_tensor("y", Dtype::kF32, {1});
  ASSERT_TRUE(w.open(path).ok());
  const float v = 1;
  auto st = w.append_floats("y", std::span(&v, 1));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("'y' appended while 'x' expects data"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("declaration order"), std::string::npos);

  Writer w2;
  w2.add_tensor("x", Dtype::kF32, {1});
  ASSERT_TRUE(w2.open(path).ok());
  ASSERT_TRUE(w2.append_floats("x", std::span(&v, 1)).ok());
  auto extra = w2.append_floats("x", std::span(&v, 1));
  ASSERT_FALSE(extra.ok());
  EXPECT_NE(extra.error().message.find("after every declared tensor was complete"), std::string::npos)
      << extra.error().message;
  EXPECT_TRUE(leftovers(path).empty());
}

TEST(SafetensorsWriter, WrongDtypeSizeIsAnError) {
  const std::string path = temp_path("dtype.safetensors");
  {
    Writer w;
    w.add_tensor("ids", Dtype::kF16, {4});
    ASSERT_TRUE(w.open(path).ok());
    const std::vector<int32_t> ids = {1, 2, 3, 4};
    auto st = w.append_i32("ids", ids);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("tensor 'ids' is F16; int32 values need I32 or I64"), std::string::npos)
        << st.error().message;
  }
  {
    Writer w;
    w.add_tensor("x", Dtype::kI32, {2});
    ASSERT_TRUE(w.open(path).ok());
    const std::vector<float> v = {1, 2};
    auto st = w.append_floats("x", v);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("tensor 'x' is I32; float values need F32, F16 or BF16"), std::string::npos)
        << st.error().message;
  }
  {
    // F32-sized bytes for an F16 tensor: more bytes than declared.
    Writer w;
    w.add_tensor("h", Dtype::kF16, {2});
    ASSERT_TRUE(w.open(path).ok());
    const std::vector<float> v = {1, 2};
    auto st = w.append("h", as_bytes(v));
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message.find("'h' (F16 [2]) holds 4 bytes; 8 appended"), std::string::npos)
        << st.error().message;
  }
  EXPECT_TRUE(leftovers(path).empty());
}

TEST(SafetensorsWriter, BadDeclarationsAreReportedByOpen) {
  const std::string path = temp_path("decl.safetensors");
  auto open_error = [&](auto declare) {
    Writer w;
    declare(w);
    auto st = w.open(path);
    EXPECT_FALSE(st.ok());
    return st.ok() ? std::string() : st.error().message;
  };
  auto dup = open_error([](Writer& w) {
    w.add_tensor("x", Dtype::kF32, {1});
    w.add_tensor("x", Dtype::kF32, {1});
  });
  EXPECT_NE(dup.find("duplicate tensor name 'x'"), std::string::npos) << dup;
  EXPECT_NE(dup.find(path), std::string::npos) << dup;
  auto reserved = open_error([](Writer& w) { w.add_tensor("__metadata__", Dtype::kF32, {1}); });
  EXPECT_NE(reserved.find("reserved"), std::string::npos) << reserved;
  auto overflow = open_error([](Writer& w) { w.add_tensor("big", Dtype::kF32, {1ull << 40, 1ull << 40}); });
  EXPECT_NE(overflow.find("overflows 64 bits"), std::string::npos) << overflow;
  auto utf8 = open_error([](Writer& w) { w.add_metadata("k", std::string("\xff\xfe", 2)); });
  EXPECT_NE(utf8.find("not valid UTF-8"), std::string::npos) << utf8;
  auto dup_key = open_error([](Writer& w) {
    w.add_metadata("k", "1");
    w.add_metadata("k", "2");
  });
  EXPECT_NE(dup_key.find("duplicate metadata key 'k'"), std::string::npos) << dup_key;
  EXPECT_TRUE(leftovers(path).empty());
}

TEST(SafetensorsWriter, AbandonedWriterLeavesNoFile) {
  const std::string path = temp_path("abandoned.safetensors");
  {
    Writer w;
    w.add_tensor("x", Dtype::kF32, {1000});
    ASSERT_TRUE(w.open(path).ok());
    EXPECT_EQ(leftovers(path).size(), 1u);  // the temporary file
  }
  EXPECT_TRUE(leftovers(path).empty());
}

TEST(SafetensorsWriter, UnwritableDirectoryNamesThePath) {
  Writer w;
  w.add_tensor("x", Dtype::kF32, {1});
  auto st = w.open("/no/such/dir/out.safetensors");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("/no/such/dir/out.safetensors"), std::string::npos) << st.error().message;
}

TEST(SafetensorsWriter, ReplacesAnExistingFileAtomically) {
  const std::string path = temp_path("replace.safetensors");
  std::ofstream(path) << "old contents";
  Writer w;
  w.add_tensor("x", Dtype::kI32, {1});
  ASSERT_TRUE(w.open(path).ok());
  EXPECT_EQ(read_bytes(path), "old contents") << "untouched until finish()";
  const int32_t v = 5;
  ASSERT_TRUE(w.append_i32("x", std::span(&v, 1)).ok());
  ASSERT_TRUE(w.finish().ok());
  auto f = File::open(path);
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(*f->read_i32("x"), std::vector<int32_t>{5});
}

TEST(SafetensorsWriter, LargeTensorInManyPieces) {
  const std::string path = temp_path("large.safetensors");
  constexpr uint64_t kRows = 300, kCols = 1000;  // 1.2 MB: crosses the write buffer
  Writer w;
  w.add_tensor("m", Dtype::kF32, {kRows, kCols});
  ASSERT_TRUE(w.open(path).ok());
  std::vector<float> row(kCols);
  for (uint64_t r = 0; r < kRows; ++r) {
    for (uint64_t c = 0; c < kCols; ++c) row[c] = static_cast<float>(r * kCols + c);
    ASSERT_TRUE(w.append_floats("m", row).ok());
  }
  ASSERT_TRUE(w.finish().ok());
  auto f = File::open(path);
  ASSERT_TRUE(f.ok());
  auto m = f->read_f32("m");
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->size(), kRows * kCols);
  for (size_t i = 0; i < m->size(); i += 997) EXPECT_EQ((*m)[i], static_cast<float>(i));
}

}  // namespace
}  // namespace attnscope::safetensors
