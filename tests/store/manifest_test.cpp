// manifest.json: full round trip of RunManifest, exact bytes of invalid UTF-8 text,
// and errors (never exceptions) that name the file and the field.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <random>

#include <nlohmann/json.hpp>

#include "attnscope/store.h"
#include "store/manifest_json.h"

namespace attnscope::store {
namespace {

using nlohmann::json;

RunManifest full_manifest() {
  RunManifest m;
  m.tool_version = "0.1.0";
  m.id = "batch-7";
  m.model = {"model.gguf", 123456789012ull, "xxh64:0123456789abcdef", "qwen2", "Qwen 0.5B",
             24, 14, 2, 64, 896, 151936, 32768};
  m.prompt = "Hello \xe2\x82";  // ends inside a character
  m.text = "Hello \xe2\x82\xac world";
  m.tokens = {{1, "", -1, -1, false, true},
              {9707, "Hello", 0, 5, false, false},
              {220, " \xe2\x82", 5, 8, false, false},
              {223, "\xac", 8, 9, true, false},
              {1879, " world", 9, 15, true, false},
              {-5, "\xff\xfe\x00x", 3, 4, true, true}};
  m.tokens.back().text = std::string("\xff\xfe\x00x", 4);  // an embedded NUL
  m.n_prompt = 3;
  m.sampling = {0.8f, 40, 0.95f, 0.05f, std::numeric_limits<uint64_t>::max()};
  m.max_new_tokens = 64;
  m.stop_reason = "end-of-generation";
  m.precision = Precision::kU8;
  m.n_layers = 24;
  m.n_heads = 14;
  m.timings = {"2024-05-01T12:00:00Z", 0.125, 3.0000000000000004, 1e-300};
  m.compute = {"avx2", "int8", 6};
  m.complete = true;
  return m;
}

void expect_equal(const RunManifest& a, const RunManifest& b) {
  EXPECT_EQ(a.format_version, b.format_version);
  EXPECT_EQ(a.tool_version, b.tool_version);
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.model.file_name, b.model.file_name);
  EXPECT_EQ(a.model.file_size, b.model.file_size);
  EXPECT_EQ(a.model.content_hash, b.model.content_hash);
  EXPECT_EQ(a.model.architecture, b.model.architecture);
  EXPECT_EQ(a.model.name, b.model.name);
  EXPECT_EQ(a.model.n_layers, b.model.n_layers);
  EXPECT_EQ(a.model.n_heads, b.model.n_heads);
  EXPECT_EQ(a.model.n_kv_heads, b.model.n_kv_heads);
  EXPECT_EQ(a.model.head_dim, b.model.head_dim);
  EXPECT_EQ(a.model.n_embd, b.model.n_embd);
  EXPECT_EQ(a.model.n_vocab, b.model.n_vocab);
  EXPECT_EQ(a.model.n_ctx_train, b.model.n_ctx_train);
  EXPECT_EQ(a.prompt, b.prompt);
  EXPECT_EQ(a.text, b.text);
  ASSERT_EQ(a.tokens.size(), b.tokens.size());
  for (size_t i = 0; i < a.tokens.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(a.tokens[i].id, b.tokens[i].id);
    EXPECT_EQ(a.tokens[i].text, b.tokens[i].text);
    EXPECT_EQ(a.tokens[i].byte_begin, b.tokens[i].byte_begin);
    EXPECT_EQ(a.tokens[i].byte_end, b.tokens[i].byte_end);
    EXPECT_EQ(a.tokens[i].generated, b.tokens[i].generated);
    EXPECT_EQ(a.tokens[i].special, b.tokens[i].special);
  }
  EXPECT_EQ(a.n_prompt, b.n_prompt);
  EXPECT_EQ(a.sampling.temperature, b.sampling.temperature);
  EXPECT_EQ(a.sampling.top_k, b.sampling.top_k);
  EXPECT_EQ(a.sampling.top_p, b.sampling.top_p);
  EXPECT_EQ(a.sampling.min_p, b.sampling.min_p);
  EXPECT_EQ(a.sampling.seed, b.sampling.seed);
  EXPECT_EQ(a.max_new_tokens, b.max_new_tokens);
  EXPECT_EQ(a.stop_reason, b.stop_reason);
  EXPECT_EQ(a.precision, b.precision);
  EXPECT_EQ(a.n_layers, b.n_layers);
  EXPECT_EQ(a.n_heads, b.n_heads);
  EXPECT_EQ(a.timings.started_at, b.timings.started_at);
  EXPECT_EQ(a.timings.prefill_seconds, b.timings.prefill_seconds);
  EXPECT_EQ(a.timings.decode_seconds, b.timings.decode_seconds);
  EXPECT_EQ(a.timings.total_seconds, b.timings.total_seconds);
  EXPECT_EQ(a.compute.kernels, b.compute.kernels);
  EXPECT_EQ(a.compute.activations, b.compute.activations);
  EXPECT_EQ(a.compute.n_threads, b.compute.n_threads);
  EXPECT_EQ(a.complete, b.complete);
}

TEST(Manifest, PrecisionNames) {
  for (Precision p : {Precision::kF32, Precision::kF16, Precision::kU8}) {
    auto back = parse_precision(precision_name(p));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, p);
  }
  auto bad = parse_precision("bf16");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "unknown precision 'bf16': expected f32, f16 or u8");
}

TEST(Manifest, RoundTripsEveryField) {
  const RunManifest m = full_manifest();
  const std::string text = manifest_to_json(m);
  auto back = manifest_from_json(text, "run/manifest.json");
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_equal(m, *back);
  // And again: the output of a round trip is a fixed point.
  EXPECT_EQ(manifest_to_json(*back), text);
}

TEST(Manifest, RunsWithoutComputeFieldsStillOpen) {
  const std::string text = manifest_to_json(full_manifest());
  auto j = nlohmann::json::parse(text);
  ASSERT_TRUE(j.contains("compute"));
  j.erase("compute");  // as written before the field existed
  auto back = manifest_from_json(j.dump(), "old/manifest.json");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->compute.kernels, "");
  j["compute"] = 7;  // present but malformed: an error naming the field
  auto bad = manifest_from_json(j.dump(), "bad/manifest.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("compute"), std::string::npos) << bad.error().message;
}

TEST(Manifest, DefaultManifestRoundTrips) {
  RunManifest m;
  auto back = manifest_from_json(manifest_to_json(m), "m.json");
  ASSERT_TRUE(back.ok()) << back.error().message;
  expect_equal(m, *back);
}

TEST(Manifest, InvalidUtf8IsValidJsonWithExactBytesInHex) {
  const RunManifest m = full_manifest();
  const json j = json::parse(manifest_to_json(m));  // valid UTF-8 JSON, or this throws
  EXPECT_EQ(j["tokens"][1]["text"], "Hello");
  EXPECT_FALSE(j["tokens"][1].contains("text_hex"));
  EXPECT_EQ(j["tokens"][2]["text"], " \xef\xbf\xbd");  // U+FFFD for display
  EXPECT_EQ(j["tokens"][2]["text_hex"], "20e282");
  EXPECT_EQ(j["text"], "Hello \xe2\x82\xac world");
  EXPECT_FALSE(j.contains("text_hex"));
  EXPECT_EQ(j["prompt_hex"], "48656c6c6f20e282");
}

TEST(Manifest, NonFiniteNumbersBecomeNullAndReadBackAsNan) {
  RunManifest m;
  m.timings.decode_seconds = std::numeric_limits<double>::infinity();
  m.timings.total_seconds = std::nan("");
  auto back = manifest_from_json(manifest_to_json(m), "m.json");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(std::isnan(back->timings.decode_seconds));
  EXPECT_TRUE(std::isnan(back->timings.total_seconds));
}

TEST(Manifest, StoreFieldsRoundTrip) {
  StoreFields sf;
  sf.run_uid = 0xfedcba9876543210ull;
  sf.n_rows = 77;
  auto back = parse_stored_manifest(manifest_to_json(full_manifest(), sf), "m.json");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->store.run_uid, sf.run_uid);
  EXPECT_EQ(back->store.n_rows, sf.n_rows);
}

// Edits the JSON of full_manifest() and returns the parse error.
std::string error_after(const std::function<void(json&)>& edit) {
  json j = json::parse(manifest_to_json(full_manifest()));
  edit(j);
  auto r = manifest_from_json(j.dump(), "runs/a/manifest.json");
  return r.ok() ? std::string("(no error)") : r.error().message;
}

TEST(Manifest, ErrorsNameTheFileAndTheField) {
  EXPECT_EQ(error_after([](json& j) { j["tokens"][1]["begin"] = "zero"; }),
            "runs/a/manifest.json: field tokens[1].begin: expected an integer, got string");
  EXPECT_EQ(error_after([](json& j) { j["model"].erase("n_heads"); }),
            "runs/a/manifest.json: missing field model.n_heads");
  EXPECT_EQ(error_after([](json& j) { j["complete"] = 1; }),
            "runs/a/manifest.json: field complete: expected true or false, got number");
  EXPECT_EQ(error_after([](json& j) { j["sampling"]["seed"] = -1; }),
            "runs/a/manifest.json: field sampling.seed: expected an integer >= 0, got -1");
  EXPECT_EQ(error_after([](json& j) { j["n_prompt"] = 1ull << 40; }),
            "runs/a/manifest.json: field n_prompt: 1099511627776 is out of range [0, 2147483647]");
  EXPECT_EQ(error_after([](json& j) { j["attention"]["precision"] = "f64"; }),
            "runs/a/manifest.json: field attention.precision: unknown precision 'f64': expected f32, f16 or u8");
  EXPECT_EQ(error_after([](json& j) { j["tokens"][2]["text_hex"] = "2"; }),
            "runs/a/manifest.json: field tokens[2].text_hex: expected hex digits, two per byte");
  EXPECT_EQ(error_after([](json& j) { j["tokens"] = json::object(); }),
            "runs/a/manifest.json: field tokens: expected an array, got object");
  EXPECT_EQ(error_after([](json& j) { j["tokens"][0] = 3; }),
            "runs/a/manifest.json: field tokens[0]: expected an object, got number");
  EXPECT_EQ(error_after([](json& j) { j["attention"]["run_uid"] = "xyz"; }),
            "runs/a/manifest.json: field attention.run_uid: expected 16 hex digits, got 'xyz'");
}

TEST(Manifest, FutureVersionIsRefused) {
  EXPECT_EQ(error_after([](json& j) { j["format_version"] = 7; }),
            "runs/a/manifest.json: format version 7 is newer than this attnscope (1): upgrade attnscope");
  EXPECT_EQ(error_after([](json& j) { j["format_version"] = 0; }),
            "runs/a/manifest.json: field format_version: 0 is not a valid version");
}

TEST(Manifest, NotJsonIsAnErrorNotAnException) {
  for (const char* text : {"", "{", "[]", "null", "{\"format_version\": 1", "\xff"}) {
    SCOPED_TRACE(text);
    auto r = manifest_from_json(text, "m.json");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message.rfind("m.json: ", 0), 0u) << r.error().message;
  }
}

TEST(Manifest, MutatedJsonNeverThrows) {
  const std::string base = manifest_to_json(full_manifest());
  std::mt19937_64 rng(42);
  int parsed = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string s = base;
    const int n = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < n; ++k) {
      const size_t at = rng() % s.size();
      switch (rng() % 3) {
        case 0: s[at] = static_cast<char>(rng()); break;
        case 1: s.erase(at, 1 + rng() % 8); break;
        default: s.insert(at, 1, "{}[]\",:0-e\\"[rng() % 11]); break;
      }
      if (s.empty()) s = "x";
    }
    auto r = manifest_from_json(s, "m.json");  // must not throw or crash
    parsed += r.ok();
  }
  EXPECT_GT(parsed, 0);
}

TEST(Manifest, Utf8Validation) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("abc \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  EXPECT_FALSE(valid_utf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(valid_utf8("\x80"));
  EXPECT_FALSE(valid_utf8("a\xff"));
}

}  // namespace
}  // namespace attnscope::store
