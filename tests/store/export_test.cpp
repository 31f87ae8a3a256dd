// Library-level export: a synthetic run is stored, exported, and read back with
// safetensors::File. Values must equal RunReader::read()/aggregate() exactly in f32 and
// up to f16 rounding in f16; shapes, names, causality and metadata as documented.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <random>

#include "attnscope/export.h"
#include "attnscope/quant.h"
#include "attnscope/safetensors.h"
#include "attnscope/store.h"

namespace attnscope::store {
namespace {

namespace fs = std::filesystem;

constexpr int32_t kLayers = 3, kHeads = 4, kTokens = 10, kPrompt = 6;

fs::path temp_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "attnscope-tests" / "export" / name;
  fs::remove_all(dir);
  fs::create_directories(dir.parent_path());
  return dir;
}

// Causal softmax-like rows, (n, n) per (layer, head).
std::vector<std::vector<float>> random_attention(uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.01f, 1.0f);
  std::vector<std::vector<float>> out;
  for (int32_t i = 0; i < kLayers * kHeads; ++i) {
    std::vector<float> m(kTokens * kTokens, 0.0f);
    for (int32_t q = 0; q < kTokens; ++q) {
      float sum = 0;
      for (int32_t k = 0; k <= q; ++k) sum += m[q * kTokens + k] = u(rng);
      for (int32_t k = 0; k <= q; ++k) m[q * kTokens + k] /= sum;
    }
    out.push_back(std::move(m));
  }
  return out;
}

// Stores the attention: a prefill block, then one row per generated token. With
// `finish` false the writer is dropped after the prompt's rows plus `extra_layers`
// layers of the next position (an interrupted capture).
void store_run(const fs::path& dir, Precision precision, bool finish = true, int32_t extra_layers = 0) {
  const auto probs = random_attention(5);
  RunManifest m;
  m.tool_version = "test";
  m.model.name = "synthetic \"model\"";
  m.model.file_name = "synthetic.gguf";
  m.model.n_layers = kLayers;
  m.model.n_heads = kHeads;
  m.prompt = "a synthetic prompt";
  m.n_prompt = kPrompt;
  m.precision = precision;
  m.n_layers = kLayers;
  m.n_heads = kHeads;
  for (int32_t i = 0; i < kPrompt; ++i) m.tokens.push_back(TokenRecord{1000 + i, fmt::format("p{}\xe2\x96", i)});
  auto writer = RunWriter::create(dir.string(), m, /*overwrite=*/true);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  auto deliver = [&](int32_t q_begin, int32_t n_rows, int32_t n_layers) {
    const int32_t n_keys = q_begin + n_rows;
    for (int32_t l = 0; l < n_layers; ++l) {
      std::vector<float> block;  // (n_heads, n_rows, n_keys)
      for (int32_t h = 0; h < kHeads; ++h) {
        for (int32_t r = 0; r < n_rows; ++r) {
          for (int32_t k = 0; k < n_keys; ++k) block.push_back(probs[l * kHeads + h][(q_begin + r) * kTokens + k]);
        }
      }
      (*writer)->on_attention(AttentionRows{l, kHeads, q_begin, n_rows, n_keys, block.data()});
    }
  };
  deliver(0, kPrompt, kLayers);
  for (int32_t pos = kPrompt; pos < kTokens; ++pos) {
    TokenRecord t{2000 + pos, fmt::format("g{}", pos)};
    t.generated = true;
    ASSERT_TRUE((*writer)->add_generated_token(t).ok());
    m.tokens.push_back(t);
    if (!finish) {
      deliver(pos, 1, extra_layers);
      ASSERT_TRUE((*writer)->status().ok());
      return;  // dropped without finish()
    }
    deliver(pos, 1, kLayers);
  }
  m.complete = true;
  m.stop_reason = "length";
  auto st = (*writer)->finish(m);
  ASSERT_TRUE(st.ok()) << st.error().message;
}

struct Fixture {
  fs::path dir;
  std::unique_ptr<RunReader> reader;
};

Fixture open_run(const std::string& name, Precision precision = Precision::kF32) {
  Fixture f;
  f.dir = temp_dir(name);
  store_run(f.dir / "run", precision);
  auto r = RunReader::open((f.dir / "run").string());
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (r.ok()) f.reader = std::move(*r);
  return f;
}

// The exported file, or nullopt after reporting why not.
std::optional<safetensors::File> export_and_open(const RunReader& reader, const ExportOptions& options,
                                                 const fs::path& path) {
  auto st = export_safetensors(reader, options, path.string());
  EXPECT_TRUE(st.ok()) << st.error().message;
  if (!st.ok()) return std::nullopt;
  auto f = safetensors::File::open(path.string());
  EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message);
  if (!f.ok()) return std::nullopt;
  return std::move(*f);
}

const Range kAll{0, kTokens};

std::vector<float> slice(const std::vector<float>& v, size_t index, size_t n) {
  return {v.begin() + static_cast<ptrdiff_t>(index * n), v.begin() + static_cast<ptrdiff_t>((index + 1) * n)};
}

void expect_causal(const std::vector<float>& m, const std::string& what) {
  for (int32_t q = 0; q < kTokens; ++q) {
    for (int32_t k = q + 1; k < kTokens; ++k) EXPECT_EQ(m[q * kTokens + k], 0.0f) << what << " (" << q << ", " << k << ")";
  }
}

TEST(Export, DefaultIsEveryHeadOfEveryLayerInF32) {
  Fixture fx = open_run("default");
  ASSERT_TRUE(fx.reader);
  const RunReader& reader = *fx.reader;
  const fs::path out = fx.dir / "run.safetensors";
  auto file = export_and_open(reader, {}, out);
  ASSERT_TRUE(file);
  const safetensors::File& f = *file;

  std::vector<std::string> names;
  for (const auto& t : f.tensors()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"tokens", "attn.0", "attn.1", "attn.2"}));
  EXPECT_EQ(*export_tensor_names(reader, {}), names);

  EXPECT_EQ(f.find("tokens")->dtype, "I32");
  EXPECT_EQ(f.find("tokens")->shape, std::vector<uint64_t>{kTokens});
  std::vector<int32_t> ids;
  for (const auto& t : reader.manifest().tokens) ids.push_back(t.id);
  EXPECT_EQ(*f.read_i32("tokens"), ids);

  const size_t nn = kTokens * kTokens;
  for (int32_t l = 0; l < kLayers; ++l) {
    const std::string name = fmt::format("attn.{}", l);
    const safetensors::Tensor* t = f.find(name);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->dtype, "F32");
    EXPECT_EQ(t->shape, (std::vector<uint64_t>{kHeads, kTokens, kTokens}));
    auto values = f.read_f32(name);
    ASSERT_TRUE(values.ok());
    for (int32_t h = 0; h < kHeads; ++h) {
      auto want = reader.read(l, h, kAll, kAll);
      ASSERT_TRUE(want.ok()) << want.error().message;
      const auto got = slice(*values, static_cast<size_t>(h), nn);
      EXPECT_EQ(got, *want) << name << " head " << h;
      expect_causal(got, name);
    }
  }

  const auto& meta = f.metadata();
  EXPECT_EQ(meta.at("n_prompt"), "6");
  EXPECT_EQ(meta.at("n_tokens"), "10");
  EXPECT_EQ(meta.at("model"), "synthetic \"model\"");
  EXPECT_EQ(meta.at("model_file"), "synthetic.gguf");
  EXPECT_EQ(meta.at("prompt"), "a synthetic prompt");
  EXPECT_EQ(meta.at("format"), "attnscope-export");
  EXPECT_EQ(meta.at("format_version"), std::to_string(kFormatVersion));
  EXPECT_EQ(meta.at("precision"), "f32");
  EXPECT_EQ(meta.at("dtype"), "F32");
  EXPECT_EQ(meta.at("aggregate"), "none");
  EXPECT_EQ(meta.at("layers"), "[0,1,2]");
  EXPECT_EQ(meta.at("heads"), "[0,1,2,3]");
  EXPECT_EQ(meta.at("complete"), "true");
  EXPECT_EQ(meta.at("n_layers"), "3");
  EXPECT_EQ(meta.at("n_heads"), "4");
  const auto texts = nlohmann::json::parse(meta.at("token_texts"));
  ASSERT_EQ(texts.size(), static_cast<size_t>(kTokens));
  EXPECT_EQ(texts[0], "p0\xef\xbf\xbd") << "a partial UTF-8 sequence becomes U+FFFD";
  EXPECT_EQ(texts[9], "g9");
}

TEST(Export, AggregatesEqualRunReaderAggregateExactly) {
  Fixture fx = open_run("aggregates");
  ASSERT_TRUE(fx.reader);
  const RunReader& reader = *fx.reader;
  ExportOptions options;
  options.aggregates = {Aggregate::kRollout, Aggregate::kHeadMean, Aggregate::kLayerMean, Aggregate::kHeadMax,
                        Aggregate::kHeadMean};
  auto file = export_and_open(reader, options, fx.dir / "agg.safetensors");
  ASSERT_TRUE(file);
  const safetensors::File& f = *file;

  std::vector<std::string> names;
  for (const auto& t : f.tensors()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"tokens", "attn.0.head_mean", "attn.0.head_max", "attn.0.rollout",
                                             "attn.1.head_mean", "attn.1.head_max", "attn.1.rollout",
                                             "attn.2.head_mean", "attn.2.head_max", "attn.2.rollout",
                                             "attn.layer_mean"}));
  EXPECT_EQ(f.metadata().at("aggregate"), "head-mean,head-max,layer-mean,rollout");

  auto check = [&](const std::string& name, Aggregate kind, int32_t layer) {
    const safetensors::Tensor* t = f.find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->shape, (std::vector<uint64_t>{kTokens, kTokens})) << name;
    auto want = reader.aggregate(kind, layer, 0, kAll, kAll);
    ASSERT_TRUE(want.ok()) << want.error().message;
    auto got = f.read_f32(name);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, *want) << name;
    expect_causal(*got, name);
  };
  for (int32_t l = 0; l < kLayers; ++l) {
    check(fmt::format("attn.{}.head_mean", l), Aggregate::kHeadMean, l);
    check(fmt::format("attn.{}.head_max", l), Aggregate::kHeadMax, l);
    check(fmt::format("attn.{}.rollout", l), Aggregate::kRollout, l);
  }
  check("attn.layer_mean", Aggregate::kLayerMean, 0);
}

TEST(Export, F16IsTheF32ValueRoundedToHalf) {
  Fixture fx = open_run("f16");
  ASSERT_TRUE(fx.reader);
  const RunReader& reader = *fx.reader;
  ExportOptions options;
  options.dtype = safetensors::Dtype::kF16;
  options.aggregates = {Aggregate::kNone, Aggregate::kRollout};
  auto file = export_and_open(reader, options, fx.dir / "half.safetensors");
  ASSERT_TRUE(file);
  const safetensors::File& f = *file;
  EXPECT_EQ(f.metadata().at("dtype"), "F16");
  EXPECT_EQ(f.find("tokens")->dtype, "I32");
  for (int32_t l = 0; l < kLayers; ++l) {
    const std::string raw = fmt::format("attn.{}", l), roll = fmt::format("attn.{}.rollout", l);
    EXPECT_EQ(f.find(raw)->dtype, "F16");
    auto got = f.read_f32(raw);
    ASSERT_TRUE(got.ok());
    for (int32_t h = 0; h < kHeads; ++h) {
      auto want = reader.read(l, h, kAll, kAll);
      ASSERT_TRUE(want.ok());
      for (size_t i = 0; i < want->size(); ++i) {
        EXPECT_EQ((*got)[h * kTokens * kTokens + i], quant::f16_to_f32(quant::f32_to_f16((*want)[i])));
        EXPECT_NEAR((*got)[h * kTokens * kTokens + i], (*want)[i], 1.0 / 2048);
      }
    }
    auto want = reader.aggregate(Aggregate::kRollout, l, 0, kAll, kAll);
    auto got_roll = f.read_f32(roll);
    ASSERT_TRUE(want.ok() && got_roll.ok());
    for (size_t i = 0; i < want->size(); ++i) {
      EXPECT_EQ((*got_roll)[i], quant::f16_to_f32(quant::f32_to_f16((*want)[i])));
    }
  }
}

TEST(Export, SelectedLayersAndHeads) {
  Fixture fx = open_run("selection");
  ASSERT_TRUE(fx.reader);
  const RunReader& reader = *fx.reader;
  ExportOptions options;
  options.layers = {2, 1};
  options.heads = {3, 0};
  options.aggregates = {Aggregate::kNone, Aggregate::kHeadMean, Aggregate::kLayerMean, Aggregate::kRollout};
  auto file = export_and_open(reader, options, fx.dir / "sel.safetensors");
  ASSERT_TRUE(file);
  const safetensors::File& f = *file;
  std::vector<std::string> names;
  for (const auto& t : f.tensors()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"tokens", "attn.1", "attn.1.head_mean", "attn.1.rollout", "attn.2",
                                             "attn.2.head_mean", "attn.2.rollout", "attn.layer_mean"}));
  EXPECT_EQ(f.metadata().at("layers"), "[1,2]");
  EXPECT_EQ(f.metadata().at("heads"), "[0,3]");
  const size_t nn = kTokens * kTokens;

  std::vector<float> layer_sum(nn, 0.0f);
  for (int32_t l : {1, 2}) {
    auto raw = f.read_f32(fmt::format("attn.{}", l));
    ASSERT_TRUE(raw.ok());
    EXPECT_EQ(f.find(fmt::format("attn.{}", l))->shape, (std::vector<uint64_t>{2, kTokens, kTokens}));
    auto h0 = reader.read(l, 0, kAll, kAll);
    auto h3 = reader.read(l, 3, kAll, kAll);
    EXPECT_EQ(slice(*raw, 0, nn), *h0) << "index 0 is head 0";
    EXPECT_EQ(slice(*raw, 1, nn), *h3) << "index 1 is head 3";
    auto mean = f.read_f32(fmt::format("attn.{}.head_mean", l));
    for (size_t i = 0; i < nn; ++i) {
      EXPECT_NEAR((*mean)[i], ((*h0)[i] + (*h3)[i]) / 2, 1e-7);
      layer_sum[i] += (*mean)[i] / 2;
    }
  }
  auto layer_mean = f.read_f32("attn.layer_mean");
  for (size_t i = 0; i < nn; ++i) EXPECT_NEAR((*layer_mean)[i], layer_sum[i], 1e-7) << "mean of layers 1 and 2";

  // The rollout chain runs through layer 0 too, with the selected heads' mean.
  auto roll1 = f.read_f32("attn.1.rollout");
  ASSERT_TRUE(roll1.ok());
  std::vector<double> r(nn, 0.0);
  for (int32_t i = 0; i < kTokens; ++i) r[i * kTokens + i] = 1.0;
  for (int32_t l = 0; l <= 1; ++l) {
    auto h0 = reader.read(l, 0, kAll, kAll);
    auto h3 = reader.read(l, 3, kAll, kAll);
    std::vector<double> a(nn);
    for (size_t i = 0; i < nn; ++i) a[i] = ((*h0)[i] + (*h3)[i]) / 2 * 0.5;
    for (int32_t i = 0; i < kTokens; ++i) a[i * kTokens + i] += 0.5;
    std::vector<double> next(nn, 0.0);
    for (int32_t i = 0; i < kTokens; ++i) {
      for (int32_t j = 0; j < kTokens; ++j) {
        for (int32_t m = 0; m < kTokens; ++m) next[i * kTokens + j] += a[i * kTokens + m] * r[m * kTokens + j];
      }
    }
    r = next;
  }
  for (size_t i = 0; i < nn; ++i) EXPECT_NEAR((*roll1)[i], r[i], 1e-6) << i;
}

TEST(Export, IncompleteRunExportsTheStoredPositions) {
  const fs::path dir = temp_dir("incomplete");
  store_run(dir / "run", Precision::kF32, /*finish=*/false, /*extra_layers=*/2);
  auto reader = RunReader::open((dir / "run").string());
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  ASSERT_FALSE((*reader)->complete());
  ASSERT_EQ((*reader)->n_rows(), kPrompt) << "position 6 has only 2 of 3 layers";
  auto file = export_and_open(**reader, {}, dir / "partial.safetensors");
  ASSERT_TRUE(file);
  const safetensors::File& f = *file;
  EXPECT_EQ(f.metadata().at("complete"), "false");
  EXPECT_EQ(f.metadata().at("n_tokens"), std::to_string(kPrompt));
  EXPECT_EQ(f.find("tokens")->shape, std::vector<uint64_t>{kPrompt});
  EXPECT_EQ(f.find("attn.2")->shape, (std::vector<uint64_t>{kHeads, kPrompt, kPrompt}));
  auto got = f.read_f32("attn.2");
  auto want = (*reader)->read(2, 1, {0, kPrompt}, {0, kPrompt});
  ASSERT_TRUE(got.ok() && want.ok());
  EXPECT_EQ(slice(*got, 1, kPrompt * kPrompt), *want);
}

TEST(Export, ProgressReachesEveryTensor) {
  Fixture fx = open_run("progress");
  ASSERT_TRUE(fx.reader);
  ExportOptions options;
  options.aggregates = {Aggregate::kNone, Aggregate::kHeadMax};
  int32_t last_done = 0, n_tensors = 0;
  uint64_t last_bytes = 0, total = 0;
  auto st = export_safetensors(*fx.reader, options, (fx.dir / "p.safetensors").string(),
                               [&](const ExportProgress& p) {
                                 EXPECT_GE(p.tensors_done, last_done);
                                 EXPECT_GE(p.bytes_done, last_bytes);
                                 last_done = p.tensors_done;
                                 last_bytes = p.bytes_done;
                                 n_tensors = p.n_tensors;
                                 total = p.total_bytes;
                               });
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(n_tensors, 7);
  EXPECT_EQ(last_done, 7);
  EXPECT_EQ(total, fs::file_size(fx.dir / "p.safetensors"));
}

TEST(Export, BadOptionsAndPathsAreErrorsNamingTheFile) {
  Fixture fx = open_run("errors");
  ASSERT_TRUE(fx.reader);
  const std::string out = (fx.dir / "bad.safetensors").string();
  ExportOptions layer;
  layer.layers = {0, 3};
  auto st = export_safetensors(*fx.reader, layer, out);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, out + ": export: layer 3 is out of range (the run has layers 0-2)");
  ExportOptions head;
  head.heads = {1, 1};
  st = export_safetensors(*fx.reader, head, out);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("head 1 is selected twice"), std::string::npos) << st.error().message;
  ExportOptions ints;
  ints.dtype = safetensors::Dtype::kI32;
  EXPECT_FALSE(export_safetensors(*fx.reader, ints, out).ok());
  EXPECT_FALSE(fs::exists(out));

  st = export_safetensors(*fx.reader, {}, "/no/such/dir/x.safetensors");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("/no/such/dir/x.safetensors"), std::string::npos) << st.error().message;
  for (const auto& e : fs::directory_iterator(fx.dir)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  }
}

TEST(IndexList, ParsesSinglesAndRangesSorted) {
  EXPECT_EQ(*parse_index_list("0,3-5", 8, "layer"), (std::vector<int32_t>{0, 3, 4, 5}));
  EXPECT_EQ(*parse_index_list("7,1", 8, "layer"), (std::vector<int32_t>{1, 7}));
  EXPECT_EQ(*parse_index_list("0-7", 8, "head"), (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(*parse_index_list("2-2", 8, "head"), (std::vector<int32_t>{2}));
}

TEST(IndexList, ErrorsNameTheValueAndTheValidRange) {
  auto err = [](std::string_view text, int32_t count = 8) {
    auto r = parse_index_list(text, count, "layer");
    EXPECT_FALSE(r.ok()) << text;
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_EQ(err("0,9"), "invalid layer list '0,9': layer 9 is out of range (the run has layers 0-7)");
  EXPECT_EQ(err("3-12"), "invalid layer list '3-12': layer 8 is out of range (the run has layers 0-7)");
  EXPECT_EQ(err("1,1"), "invalid layer list '1,1': layer 1 is listed twice");
  EXPECT_EQ(err("0-3,2"), "invalid layer list '0-3,2': layer 2 is listed twice");
  EXPECT_EQ(err("5-3"), "invalid layer list '5-3': range '5-3' runs backwards");
  EXPECT_EQ(err("a"), "invalid layer list 'a': 'a' is not a layer number or a range like 3-5");
  EXPECT_EQ(err("0,"), "invalid layer list '0,': '' is not a layer number or a range like 3-5");
  EXPECT_EQ(err(""), "invalid layer list '': it is empty (expected e.g. 0,3-5; the run has layers 0-7)");
  EXPECT_EQ(err("0", 0), "invalid layer list '0': layer 0 is out of range (the run has no layers)");
  for (const char* bad : {"-1", " 1", "1 ", "+1", "1-2-3", "1--2", "0x1", "1.0", "99999999999", ",", "1,,2"}) {
    EXPECT_FALSE(parse_index_list(bad, 8, "layer").ok()) << bad;
  }
}

}  // namespace
}  // namespace attnscope::store
