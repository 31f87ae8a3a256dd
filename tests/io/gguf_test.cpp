// GGUF reader against the shared fixtures (written by llama.cpp's converter and
// gguf-py, never by attnscope), plus the typed metadata getters.
#include "attnscope/gguf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "attnscope/ggml_type.h"
#include "attnscope/gguf_writer.h"
#include "attnscope/safetensors.h"
#include "io/io_test_util.h"
#include "support/fixtures.h"

namespace attnscope::gguf {
namespace {

using ::attnscope::testing::fixture_path;

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// Every tensor's bytes lie inside the file, after the data section start, aligned.
void expect_tensors_placed(const File& f, const uint8_t* base) {
  for (const TensorInfo& t : f.tensors()) {
    SCOPED_TRACE(t.name);
    ASSERT_NE(t.data, nullptr);
    const uint64_t begin = static_cast<uint64_t>(t.data - base);
    EXPECT_EQ(begin, f.data_offset() + t.offset);
    EXPECT_EQ(t.offset % f.alignment(), 0u);
    EXPECT_LE(begin + t.n_bytes, f.file_size());
  }
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(GgufFixture, LlamaF32Metadata) {
  ATTN_REQUIRE_FIXTURES();
  auto f = File::open(fixture_path("models/llama/model-f32.gguf"));
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->file_size(), std::filesystem::file_size(fixture_path("models/llama/model-f32.gguf")));
  EXPECT_EQ(*f->get_string("general.architecture"), "llama");
  EXPECT_EQ(*f->get_int("llama.block_count"), 3);
  EXPECT_EQ(*f->get_int("llama.attention.head_count"), 4);
  EXPECT_EQ(*f->get_int("llama.attention.head_count_kv"), 2);
  EXPECT_EQ(*f->get_int("llama.embedding_length"), 64);
  EXPECT_EQ(*f->get_int("llama.feed_forward_length"), 160);
  EXPECT_NEAR(*f->get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-12);
  EXPECT_EQ(*f->get_int("tokenizer.ggml.bos_token_id"), 1);
  EXPECT_EQ(*f->get_int("tokenizer.ggml.eos_token_id"), 2);
  // Keys are unique and find() agrees with metadata().
  for (const auto& [key, value] : f->metadata()) EXPECT_EQ(f->find(key), &value) << key;
}

TEST(GgufFixture, LlamaF32Vocabulary) {
  ATTN_REQUIRE_FIXTURES();
  auto f = File::open(fixture_path("models/llama/model-f32.gguf"));
  ASSERT_TRUE(f.ok()) << f.error().message;
  auto tokens = f->get_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.error().message;
  ASSERT_EQ((*tokens)->elem_type, ValueType::kString);
  ASSERT_EQ((*tokens)->items.size(), 32000u);
  EXPECT_EQ(*(*tokens)->items[1].as_string(), "<s>");
  EXPECT_EQ(*(*tokens)->items[2].as_string(), "</s>");
  // The prompt's pieces, as Hugging Face tokenized it.
  const auto ref = read_json(fixture_path("models/llama/reference.json"));
  const auto& ids = ref["input_ids"];
  const auto& pieces = ref["input_pieces"];
  ASSERT_EQ(ids.size(), pieces.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const int id = ids[i].get<int>();
    EXPECT_EQ(*(*tokens)->items.at(id).as_string(), pieces[i].get<std::string>()) << "id " << id;
  }
  auto scores = f->get_array("tokenizer.ggml.scores");
  ASSERT_TRUE(scores.ok()) << scores.error().message;
  EXPECT_EQ((*scores)->elem_type, ValueType::kFloat32);
  EXPECT_EQ((*scores)->items.size(), 32000u);
  auto types = f->get_array("tokenizer.ggml.token_type");
  ASSERT_TRUE(types.ok()) << types.error().message;
  EXPECT_EQ((*types)->elem_type, ValueType::kInt32);
  EXPECT_EQ((*types)->items.size(), 32000u);
}

TEST(GgufFixture, LlamaF32Tensors) {
  ATTN_REQUIRE_FIXTURES();
  const std::string path = fixture_path("models/llama/model-f32.gguf");
  const std::vector<uint8_t> bytes = read_bytes(path);
  auto f = File::parse(bytes, path);
  ASSERT_TRUE(f.ok()) << f.error().message;
  // token_embd, output_norm and 9 tensors per layer (tied embeddings: no output.weight).
  EXPECT_EQ(f->tensors().size(), 2u + 9u * 3u);
  EXPECT_EQ(f->find_tensor("output.weight"), nullptr);

  const TensorInfo* emb = f->find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->type, static_cast<uint32_t>(GgmlType::F32));
  EXPECT_EQ(emb->n_dims, 2u);
  EXPECT_EQ(emb->ne[0], 64u);
  EXPECT_EQ(emb->ne[1], 32000u);
  EXPECT_EQ(emb->n_elements(), 64u * 32000u);
  EXPECT_EQ(emb->n_bytes, 64u * 32000u * 4u);

  const struct { const char* name; std::vector<uint64_t> ne; } expected[] = {
      {"blk.0.attn_k.weight", {64, 32}},   {"blk.0.attn_v.weight", {64, 32}},
      {"blk.0.attn_q.weight", {64, 64}},   {"blk.2.attn_output.weight", {64, 64}},
      {"blk.1.ffn_down.weight", {160, 64}}, {"blk.1.ffn_gate.weight", {64, 160}},
      {"blk.2.ffn_up.weight", {64, 160}},  {"blk.0.attn_norm.weight", {64}},
      {"output_norm.weight", {64}},
  };
  for (const auto& e : expected) {
    SCOPED_TRACE(e.name);
    const TensorInfo* t = f->find_tensor(e.name);
    ASSERT_NE(t, nullptr);
    ASSERT_EQ(t->n_dims, e.ne.size());
    for (size_t i = 0; i < e.ne.size(); ++i) EXPECT_EQ(t->ne[i], e.ne[i]);
    EXPECT_EQ(t->type, 0u);
  }
  expect_tensors_placed(*f, bytes.data());
}

// The GGUF embedding holds the same float32 values as the Hugging Face checkpoint it
// was converted from (llama.cpp's converter does not permute token_embd or the norms).
TEST(GgufFixture, LlamaF32DataMatchesHfCheckpoint) {
  ATTN_REQUIRE_FIXTURES();
  auto f = File::open(fixture_path("models/llama/model-f32.gguf"));
  ASSERT_TRUE(f.ok()) << f.error().message;
  auto hf = safetensors::File::open(fixture_path("models/llama/hf/model.safetensors"));
  ASSERT_TRUE(hf.ok()) << hf.error().message;
  const std::pair<const char*, const char*> pairs[] = {
      {"token_embd.weight", "model.embed_tokens.weight"},
      {"output_norm.weight", "model.norm.weight"},
      {"blk.1.ffn_down.weight", "model.layers.1.mlp.down_proj.weight"},
  };
  for (const auto& [gguf_name, hf_name] : pairs) {
    SCOPED_TRACE(gguf_name);
    const TensorInfo* t = f->find_tensor(gguf_name);
    const safetensors::Tensor* h = hf->find(hf_name);
    ASSERT_NE(t, nullptr);
    ASSERT_NE(h, nullptr);
    ASSERT_EQ(t->n_bytes, h->bytes.size());
    EXPECT_EQ(std::memcmp(t->data, h->bytes.data(), t->n_bytes), 0);
  }
}

TEST(GgufFixture, LlamaF16TensorTypes) {
  ATTN_REQUIRE_FIXTURES();
  auto f = File::open(fixture_path("models/llama/model-f16.gguf"));
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ(f->find_tensor("token_embd.weight")->type, static_cast<uint32_t>(GgmlType::F16));
  EXPECT_EQ(f->find_tensor("token_embd.weight")->n_bytes, 64u * 32000u * 2u);
  EXPECT_EQ(f->find_tensor("blk.0.attn_q.weight")->type, static_cast<uint32_t>(GgmlType::F16));
  EXPECT_EQ(f->find_tensor("output_norm.weight")->type, static_cast<uint32_t>(GgmlType::F32));
}

// Every quantized fixture: tensor shapes, type ids, byte counts and absolute data
// offsets as the fixture manifest (written by gguf-py) states them.
TEST(GgufFixture, QuantFilesMatchManifest) {
  ATTN_REQUIRE_FIXTURES();
  const auto manifest = read_json(fixture_path("quant/manifest.json"));
  int checked = 0;
  for (const auto& [type_name, info] : manifest["types"].items()) {
    SCOPED_TRACE(type_name);
    auto f = File::open(fixture_path("quant/" + type_name + ".gguf"));
    ASSERT_TRUE(f.ok()) << f.error().message;
    EXPECT_EQ(*f->get_string("general.architecture"), "quant-test");
    EXPECT_EQ(f->file_size(), info["file_bytes"].get<uint64_t>());
    ASSERT_EQ(f->tensors().size(), 2u);
    for (const auto& [tensor_name, ti] : info["tensors"].items()) {
      SCOPED_TRACE(tensor_name);
      const TensorInfo* t = f->find_tensor(tensor_name);
      ASSERT_NE(t, nullptr);
      EXPECT_EQ(t->type, info["ggml_type_id"].get<uint32_t>());
      EXPECT_EQ(ggml_type_name(t->type), type_name);
      const auto ne = manifest["tensors"][tensor_name]["gguf_ne"];
      ASSERT_EQ(t->n_dims, 2u);
      EXPECT_EQ(t->ne[0], ne[0].get<uint64_t>());
      EXPECT_EQ(t->ne[1], ne[1].get<uint64_t>());
      EXPECT_EQ(t->n_bytes, ti["n_bytes"].get<uint64_t>());
      EXPECT_EQ(f->data_offset() + t->offset, ti["data_offset_in_file"].get<uint64_t>());
      ++checked;
    }
  }
  EXPECT_GE(checked, 2 * 25);
  auto q4k = File::open(fixture_path("quant/Q4_K.gguf"));
  ASSERT_TRUE(q4k.ok()) << q4k.error().message;
  EXPECT_EQ(q4k->find_tensor("normal")->ne[0], 512u);
  EXPECT_EQ(q4k->find_tensor("normal")->ne[1], 64u);
  EXPECT_EQ(q4k->find_tensor("mixed")->ne[0], 256u);
  EXPECT_EQ(q4k->find_tensor("mixed")->ne[1], 16u);
  EXPECT_EQ(q4k->find_tensor("mixed")->type, 12u);
}

// Every GGUF in the fixture set parses, and its tensors lie inside the file.
TEST(GgufFixture, EveryFixtureFileParses) {
  ATTN_REQUIRE_FIXTURES();
  int n_files = 0;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(::attnscope::testing::fixtures_dir())) {
    if (entry.path().extension() != ".gguf") continue;
    SCOPED_TRACE(entry.path().string());
    const std::vector<uint8_t> bytes = read_bytes(entry.path().string());
    auto f = File::parse(bytes, entry.path().string());
    ASSERT_TRUE(f.ok()) << f.error().message;
    EXPECT_TRUE(f->get_string("general.architecture").ok());
    expect_tensors_placed(*f, bytes.data());
    ++n_files;
  }
  EXPECT_GE(n_files, 40);
}

// ---- Typed getters (on a file from the writer) ----

File getters_file(std::vector<uint8_t>& storage) {
  Writer w;
  w.add_uint8("u8", 200);
  w.add_int8("i8", -100);
  w.add_uint16("u16", 60000);
  w.add_int16("i16", -30000);
  w.add_uint32("u32", 4000000000u);
  w.add_int32("i32", -2000000000);
  w.add_uint64("u64.small", 123);
  w.add_uint64("u64.big", std::numeric_limits<uint64_t>::max());
  w.add_int64("i64", std::numeric_limits<int64_t>::min());
  w.add_float32("f32", 0.5f);
  w.add_float64("f64", -2.25);
  w.add_bool("flag", true);
  w.add_string("name", "tiny");
  w.add_array("list", std::vector<int32_t>{1, 2, 3});
  auto bytes = w.serialize();
  EXPECT_TRUE(bytes.ok()) << bytes.error().message;
  storage = std::move(*bytes);
  auto f = File::parse(storage, "getters.gguf");
  EXPECT_TRUE(f.ok()) << f.error().message;
  return std::move(f).value();
}

TEST(GgufGetters, IntegersOfEveryWidth) {
  std::vector<uint8_t> storage;
  File f = getters_file(storage);
  EXPECT_EQ(*f.get_int("u8"), 200);
  EXPECT_EQ(*f.get_int("i8"), -100);
  EXPECT_EQ(*f.get_int("u16"), 60000);
  EXPECT_EQ(*f.get_int("i16"), -30000);
  EXPECT_EQ(*f.get_int("u32"), 4000000000);
  EXPECT_EQ(*f.get_int("i32"), -2000000000);
  EXPECT_EQ(*f.get_int("u64.small"), 123);
  EXPECT_EQ(*f.get_int("i64"), std::numeric_limits<int64_t>::min());
  auto big = f.get_int("u64.big");
  ASSERT_FALSE(big.ok());
  EXPECT_CONTAINS(big.error().message, "getters.gguf: metadata key 'u64.big'");
  EXPECT_CONTAINS(big.error().message, "18446744073709551615 does not fit in int64");
  EXPECT_FALSE(f.find("u64.big")->as_int().has_value());
}

TEST(GgufGetters, FloatsAcceptIntegers) {
  std::vector<uint8_t> storage;
  File f = getters_file(storage);
  EXPECT_EQ(*f.get_float("f32"), 0.5);
  EXPECT_EQ(*f.get_float("f64"), -2.25);
  EXPECT_EQ(*f.get_float("i16"), -30000.0);
  EXPECT_EQ(*f.get_float("u64.big"), 18446744073709551615.0);
  auto s = f.get_float("name");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().message, "getters.gguf: metadata key 'name': expected a number, found string");
}

TEST(GgufGetters, WrongTypesNameKeyAndBothTypes) {
  std::vector<uint8_t> storage;
  File f = getters_file(storage);
  auto i = f.get_int("name");
  ASSERT_FALSE(i.ok());
  EXPECT_EQ(i.error().message, "getters.gguf: metadata key 'name': expected an integer, found string");
  auto fl = f.get_int("f32");
  ASSERT_FALSE(fl.ok());
  EXPECT_CONTAINS(fl.error().message, "expected an integer, found float32");
  auto b = f.get_bool("u8");
  ASSERT_FALSE(b.ok());
  EXPECT_CONTAINS(b.error().message, "'u8': expected a bool, found uint8");
  auto str = f.get_string("list");
  ASSERT_FALSE(str.ok());
  EXPECT_CONTAINS(str.error().message, "'list': expected a string, found array of int32");
  auto arr = f.get_array("flag");
  ASSERT_FALSE(arr.ok());
  EXPECT_CONTAINS(arr.error().message, "'flag': expected an array, found bool");
}

TEST(GgufGetters, MissingKeysAndFallbacks) {
  std::vector<uint8_t> storage;
  File f = getters_file(storage);
  EXPECT_EQ(f.find("absent"), nullptr);
  auto i = f.get_int("absent");
  ASSERT_FALSE(i.ok());
  EXPECT_EQ(i.error().message, "getters.gguf: metadata key 'absent' not found");
  EXPECT_FALSE(f.get_float("absent").ok());
  EXPECT_FALSE(f.get_bool("absent").ok());
  EXPECT_FALSE(f.get_string("absent").ok());
  EXPECT_FALSE(f.get_array("absent").ok());

  EXPECT_EQ(*f.get_int_or("absent", 7), 7);
  EXPECT_EQ(*f.get_float_or("absent", 1.5), 1.5);
  EXPECT_EQ(*f.get_bool_or("absent", true), true);
  EXPECT_EQ(*f.get_string_or("absent", "x"), "x");
  // Present keys return their value, not the fallback...
  EXPECT_EQ(*f.get_int_or("i8", 7), -100);
  EXPECT_EQ(*f.get_bool_or("flag", false), true);
  EXPECT_EQ(*f.get_string_or("name", "x"), "tiny");
  EXPECT_EQ(*f.get_float_or("f64", 0.0), -2.25);
  // ...and a present key of the wrong type is still an error.
  EXPECT_FALSE(f.get_int_or("name", 7).ok());
  EXPECT_FALSE(f.get_float_or("flag", 1.0).ok());
  EXPECT_FALSE(f.get_bool_or("name", true).ok());
  EXPECT_FALSE(f.get_string_or("u8", "x").ok());
  EXPECT_FALSE(f.get_int_or("u64.big", 0).ok());
}

TEST(GgufGetters, ValueTypeNames) {
  EXPECT_STREQ(value_type_name(ValueType::kUint8), "uint8");
  EXPECT_STREQ(value_type_name(ValueType::kFloat64), "float64");
  EXPECT_STREQ(value_type_name(ValueType::kArray), "array");
  EXPECT_STREQ(value_type_name(static_cast<ValueType>(99)), "unknown");
}

TEST(GgufOpen, FileErrors) {
  auto missing = File::open("/nonexistent/dir/model.gguf");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message,
            "cannot open /nonexistent/dir/model.gguf: No such file or directory");

  auto dir = File::open(::testing::TempDir());
  ASSERT_FALSE(dir.ok());
  EXPECT_CONTAINS(dir.error().message, "is a directory");

  const std::string empty = ::testing::TempDir() + "/attnscope_empty.gguf";
  { std::ofstream out(empty); }
  auto e = File::open(empty);
  ASSERT_FALSE(e.ok());
  EXPECT_CONTAINS(e.error().message, empty);
  EXPECT_CONTAINS(e.error().message, "file is empty");
  std::filesystem::remove(empty);
}

// Resident pages of this process (/proc/self/statm, second field).
long resident_pages() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident;
}

TEST(GgufOpen, ReleasedPagesLeaveTheResidentSetAndReadBackTheSame) {
  ATTN_REQUIRE_FIXTURES();
  auto f = File::open(fixture_path("models/llama/model-f32.gguf"));
  ASSERT_TRUE(f.ok()) << f.error().message;
  const TensorInfo* t = f->find_tensor("token_embd.weight");  // 32000 x 64 f32: 8 MB
  ASSERT_NE(t, nullptr);
  const std::vector<uint8_t> copy(t->data, t->data + t->n_bytes);  // touches every page
  const long before = resident_pages();
  f->release_pages(t->data, t->n_bytes);
  const long released = before - resident_pages();
  const long pages = static_cast<long>(t->n_bytes / static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)));
  EXPECT_GE(released, pages * 9 / 10) << "of " << pages << " pages";  // reading statm maps a few in
  EXPECT_EQ(0, std::memcmp(t->data, copy.data(), copy.size()));  // mapped in again from the file

  // Memory that is not the file's mapping is never dropped (MADV_DONTNEED would zero it):
  // a parse()d image in a buffer, and other memory handed to a mapped file.
  const std::vector<uint8_t> image = read_bytes(fixture_path("models/llama/model-f32.gguf"));
  auto parsed = File::parse(image, "buffer");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const TensorInfo* pt = parsed->find_tensor("token_embd.weight");
  parsed->release_pages(pt->data, pt->n_bytes);
  EXPECT_EQ(0, std::memcmp(pt->data, copy.data(), copy.size()));
  f->release_pages(pt->data, pt->n_bytes);
  EXPECT_EQ(0, std::memcmp(pt->data, copy.data(), copy.size()));
}

}  // namespace
}  // namespace attnscope::gguf
