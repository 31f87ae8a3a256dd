// Capturing a run: tokenize, prefill, generate, and stream every attention row of
// every layer and head into a run directory (see store.h), including the row of the
// last generated token.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attnscope/generate.h"
#include "attnscope/model.h"
#include "attnscope/result.h"
#include "attnscope/session.h"
#include "attnscope/store.h"

namespace attnscope {

struct CaptureRequest {
  std::string prompt;                            // tokenized with BOS/EOS per the model
  std::optional<std::vector<int32_t>> token_ids; // used instead of `prompt` when set
  bool add_special = true;                       // BOS/EOS as the model asks
  int32_t max_new_tokens = 32;
  SamplingParams sampling;                       // greedy by default
  bool stop_at_end_of_generation = true;
  store::Precision precision = store::Precision::kF16;
  SessionOptions session;
  std::string run_dir;
  bool overwrite = false;
  store::WriterOptions writer;                    // the writer thread's queue budget
  std::string id;                                // batch-mode run id
  const std::atomic<bool>* cancel = nullptr;     // set to stop early (the run stays incomplete)
};

struct CaptureProgress {
  const char* phase = "";  // "prefill" or "decode"
  int32_t done = 0;        // tokens of this phase processed so far
  int32_t total = 0;       // tokens of this phase (decode: the maximum)
  double seconds = 0;      // since the phase began
};

using CaptureProgressFn = std::function<void(const CaptureProgress&)>;

struct CaptureResult {
  store::RunManifest manifest;
  bool cancelled = false;   // stopped through `cancel`: the run is stored, marked incomplete
  uint64_t store_bytes = 0;
  store::WriterStats writer_stats;  // e.g. how long generation waited for the writer
};

// Model identity for a manifest, with an xxh64 hash of the whole file.
Result<store::ModelIdentity> identify_model(const Model& model);

// Token records with byte spans: each token's bytes are located in `text`, in order.
// Tokens whose bytes do not appear there (BOS, a space added by the tokenizer) get the
// span of what they do match, or -1/-1.
std::vector<store::TokenRecord> token_records(const Tokenizer& tokenizer,
                                              const std::vector<int32_t>& ids,
                                              const std::string& text, bool generated,
                                              int64_t search_from = 0);

// `identity` can be reused across runs of one model (hashing a large file takes seconds).
Result<CaptureResult> capture(const std::shared_ptr<const Model>& model,
                              const store::ModelIdentity& identity, const CaptureRequest& request,
                              const CaptureProgressFn& progress = nullptr);

}  // namespace attnscope
