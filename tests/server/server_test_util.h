// Runs for the server tests, captured from a tiny random-weight model (no fixtures):
// 3 layers x 10 heads, so that a render has two "heads" chunks per layer (8 + 2).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "attnscope/capture.h"
#include "attnscope/model.h"
#include "attnscope/store.h"
#include "support/tiny_model.h"

namespace attnscope::testing {

// A directory of this process (ctest runs tests in parallel processes), removed at exit.
inline const std::filesystem::path& process_dir() {
  struct Dir {
    std::filesystem::path path =
        std::filesystem::temp_directory_path() / "attnscope-tests" / fmt::format("server-{}", getpid());
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path;
}

inline std::filesystem::path fresh_dir(const std::string& name) {
  const auto dir = process_dir() / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

struct TinyModel {
  std::shared_ptr<const Model> model;
  store::ModelIdentity identity;
};

// Loaded once per test binary.
inline const TinyModel& tiny_model() {
  static const TinyModel m = [] {
    TinyModelSpec spec;
    spec.n_layers = 3;
    spec.n_embd = 40;
    spec.n_heads = 10;
    spec.n_kv_heads = 5;
    spec.n_ctx = 1024;
    process_dir();  // constructed first, so destroyed after the model
    auto path = write_tiny_model(spec, fmt::format("server-tests-{}", getpid()));
    EXPECT_TRUE(path.ok()) << path.error().message;
    auto model = Model::load(*path);
    EXPECT_TRUE(model.ok()) << model.error().message;
    auto identity = identify_model(**model);
    EXPECT_TRUE(identity.ok()) << identity.error().message;
    std::error_code ec;
    std::filesystem::remove(*path, ec);  // mapped: stays readable until unmapped
    return TinyModel{*model, *identity};
  }();
  return m;
}

// Captures `prompt` (+ n_new greedy tokens) into `dir`; f32 unless told.
inline void capture_run(const std::filesystem::path& dir, const std::string& prompt, int32_t n_new = 4,
                        store::Precision precision = store::Precision::kF32) {
  CaptureRequest request;
  request.prompt = prompt;
  request.max_new_tokens = n_new;
  request.stop_at_end_of_generation = false;
  request.precision = precision;
  request.run_dir = dir.string();
  request.overwrite = true;
  request.session.n_threads = 1;
  auto result = capture(tiny_model().model, tiny_model().identity, request);
  ASSERT_TRUE(result.ok()) << result.error().message;
}

}  // namespace attnscope::testing
