// Shared helpers of the store tests: a synthetic run (deterministic attention that is a
// valid distribution per row), delivered as the engine delivers it, and temp dirs.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "attnscope/store.h"

namespace attnscope::store::testing {

// A fresh directory under the test temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "attnscope-store-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : std::string();
    EXPECT_FALSE(path_.empty());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline uint64_t mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Attention of a synthetic model: row i of (layer, head) is the softmax over keys
// 0..i of a hash of (layer, head, i, j), with a bias towards the diagonal and key 0
// like real heads. Entries above the diagonal are 0.
struct Synth {
  int32_t n_layers = 3, n_heads = 4, n_prompt = 130, n_generated = 20;
  std::vector<float> probs;  // (n_layers, n_heads, T, T)

  int32_t n_positions() const { return n_prompt + n_generated; }

  void build() {
    const int32_t T = n_positions();
    probs.assign(static_cast<size_t>(n_layers) * n_heads * T * T, 0.0f);
    std::vector<double> logits;
    for (int32_t l = 0; l < n_layers; ++l) {
      for (int32_t h = 0; h < n_heads; ++h) {
        for (int32_t i = 0; i < T; ++i) {
          logits.assign(static_cast<size_t>(i) + 1, 0.0);
          double max = -1e30, sum = 0;
          for (int32_t j = 0; j <= i; ++j) {
            const uint64_t k = mix((uint64_t(l) << 48) ^ (uint64_t(h) << 40) ^ (uint64_t(i) << 20) ^ uint64_t(j));
            double x = static_cast<double>(k >> 11) / 9007199254740992.0 * 6.0 - 3.0;
            if (j == 0) x += 4.0;
            if (j == i) x += 2.0 + h;
            logits[j] = x;
            max = std::max(max, x);
          }
          for (int32_t j = 0; j <= i; ++j) sum += std::exp(logits[j] - max);
          for (int32_t j = 0; j <= i; ++j) at(l, h, i, j) = static_cast<float>(std::exp(logits[j] - max) / sum);
        }
      }
    }
  }

  float& at(int32_t l, int32_t h, int32_t i, int32_t j) {
    const size_t T = static_cast<size_t>(n_positions());
    return probs[((static_cast<size_t>(l) * n_heads + h) * T + i) * T + j];
  }
  float at(int32_t l, int32_t h, int32_t i, int32_t j) const {
    const size_t T = static_cast<size_t>(n_positions());
    return probs[((static_cast<size_t>(l) * n_heads + h) * T + i) * T + j];
  }

  // Delivers rows q_begin .. q_begin + n_rows - 1 of one layer, as AttentionRows does.
  void deliver(Observer& obs, int32_t layer, int32_t q_begin, int32_t n_rows) const {
    const int32_t n_keys = q_begin + n_rows;
    std::vector<float> buf(static_cast<size_t>(n_heads) * n_rows * n_keys, 0.0f);  // (n_heads, n_rows, n_keys)
    for (int32_t h = 0; h < n_heads; ++h) {
      for (int32_t r = 0; r < n_rows; ++r) {
        for (int32_t j = 0; j <= q_begin + r; ++j) {
          buf[(static_cast<size_t>(h) * n_rows + r) * n_keys + j] = at(layer, h, q_begin + r, j);
        }
      }
    }
    obs.on_attention(AttentionRows{.layer = layer, .n_heads = n_heads, .q_begin = q_begin,
                                   .n_rows = n_rows, .n_keys = n_keys, .probs = buf.data()});
  }

  TokenRecord prompt_token(int32_t i) const {
    TokenRecord t;
    t.id = 1000 + i;
    t.text = i == 0 ? std::string() : fmt::format(" p{}", i);
    t.special = i == 0;  // a BOS with no text
    return t;
  }
  // Generated tokens; some end inside a UTF-8 character (the euro sign split 2 + 1).
  TokenRecord generated_token(int32_t g) const {
    TokenRecord t;
    t.id = 2000 + g;
    t.generated = true;
    if (g % 5 == 1) t.text = "\xe2\x82";
    else if (g % 5 == 2) t.text = "\xac";
    else t.text = fmt::format(" g{}", g);
    return t;
  }

  // The initial manifest: prompt tokens with their spans in the text.
  RunManifest initial_manifest(Precision p) const {
    RunManifest m;
    m.tool_version = "test";
    m.model.name = "synthetic";
    m.model.n_layers = n_layers;
    m.model.n_heads = n_heads;
    m.precision = p;
    m.n_layers = n_layers;
    m.n_heads = n_heads;
    m.n_prompt = n_prompt;
    m.max_new_tokens = n_generated;
    for (int32_t i = 0; i < n_prompt; ++i) append_token(&m, prompt_token(i));
    m.prompt = m.text;
    return m;
  }

  static void append_token(RunManifest* m, TokenRecord t) {
    if (!t.text.empty()) {
      t.byte_begin = static_cast<int64_t>(m->text.size());
      m->text += t.text;
      t.byte_end = static_cast<int64_t>(m->text.size());
    }
    m->tokens.push_back(std::move(t));
  }

  // What has been handed to the writer so far.
  struct Progress {
    std::vector<int32_t> rows;  // (n_layers) rows delivered
    int32_t n_generated = 0;    // generated tokens added
    int32_t complete_rows() const { return *std::min_element(rows.begin(), rows.end()); }
  };

  // Runs the capture as the engine would: prefill chunks of 64 rows layer by layer,
  // then per generated token: add_generated_token, then one row per layer.
  // `after_step` runs after every writer call (for tests that track durability).
  void run(RunWriter& w, RunManifest* m, const std::function<void(const Progress&)>& after_step = {}) const {
    Progress p;
    p.rows.assign(static_cast<size_t>(n_layers), 0);
    auto step = [&] {
      if (after_step) after_step(p);
    };
    for (int32_t l = 0; l < n_layers; ++l) {
      for (int32_t r0 = 0; r0 < n_prompt; r0 += 64) {
        deliver(w, l, r0, std::min(64, n_prompt - r0));
        p.rows[static_cast<size_t>(l)] = std::min(r0 + 64, n_prompt);
        step();
      }
    }
    for (int32_t g = 0; g < n_generated; ++g) {
      append_token(m, generated_token(g));
      const Status st = w.add_generated_token(m->tokens.back());
      if (w.status().ok()) {  // else the test makes the writer fail on purpose
        EXPECT_TRUE(st.ok()) << st.error().message;
      }
      ++p.n_generated;
      step();
      for (int32_t l = 0; l < n_layers; ++l) {
        deliver(w, l, n_prompt + g, 1);
        ++p.rows[static_cast<size_t>(l)];
        step();
      }
    }
  }
};

// f32: exact; f16: within half of an f16 ulp; u8: within 1/510.
inline double tolerance(Precision p, float expected) {
  switch (p) {
    case Precision::kF32: return 0.0;
    case Precision::kF16: return std::max(std::ldexp(std::fabs(static_cast<double>(expected)), -11), std::ldexp(1.0, -25));
    case Precision::kU8: return 1.0 / 510.0 + 1e-7;
  }
  return 0.0;
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}
inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

}  // namespace attnscope::store::testing
