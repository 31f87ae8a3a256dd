// The generation loop: prefill the prompt, then sample and feed one token at a time,
// with an observer attached throughout.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "attnscope/observer.h"
#include "attnscope/result.h"
#include "attnscope/sampling.h"
#include "attnscope/session.h"

namespace attnscope {

struct GenerateOptions {
  int32_t max_new_tokens = 64;
  SamplingParams sampling;
  bool stop_at_end_of_generation = true;  // stop after EOS / EOT
  // Also evaluate the last generated token (no sampling), so that every token of the
  // final sequence has its own attention row.
  bool final_step = false;
  // Called after each batch of the prompt with (tokens done, prompt tokens); may be null.
  std::function<void(int32_t done, int32_t total)> on_prefill_progress;
  // Prompt tokens per call to Session::eval when on_prefill_progress or cancel is set.
  int32_t prefill_step = 64;
  // When it becomes true during the prompt, generation stops before the next call to
  // Session::eval (StopReason::kCancelled, nothing generated; the session holds the
  // prompt's first n_prompt_evaluated tokens). During decoding, stop through on_token.
  const std::atomic<bool>* cancel = nullptr;
};

enum class StopReason { kLength, kEndOfGeneration, kContextFull, kCallback, kCancelled };
const char* stop_reason_name(StopReason reason);

struct GenerateResult {
  std::vector<int32_t> generated;  // sampled ids, in order
  StopReason stop_reason = StopReason::kLength;
  int32_t n_prompt_evaluated = 0;  // the whole prompt unless cancelled during it
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;
};

// Called with each sampled token; return false to stop.
using TokenCallback = std::function<bool(int32_t token)>;

// The session must be empty (n_past() == 0). A prompt that does not fit the
// context is an error that says both lengths.
Result<GenerateResult> generate(Session& session, std::span<const int32_t> prompt,
                                const GenerateOptions& options, Observer* observer = nullptr,
                                const TokenCallback& on_token = nullptr);

}  // namespace attnscope
