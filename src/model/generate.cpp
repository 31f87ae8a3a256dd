#include "attnscope/generate.h"

#include <algorithm>
#include <chrono>

namespace attnscope {

const char* stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::kLength: return "length";
    case StopReason::kEndOfGeneration: return "end-of-generation";
    case StopReason::kContextFull: return "context-full";
    case StopReason::kCallback: return "stopped";
    case StopReason::kCancelled: return "cancelled";
  }
  return "unknown";
}

Result<GenerateResult> generate(Session& session, std::span<const int32_t> prompt,
                                const GenerateOptions& options, Observer* observer,
                                const TokenCallback& on_token) {
  using Clock = std::chrono::steady_clock;
  if (prompt.empty()) return make_error("the prompt has no tokens");
  if (session.n_past() != 0) return make_error("generate needs a fresh session");
  if (options.max_new_tokens < 0) {
    return make_error("invalid number of tokens to generate {}: expected >= 0", options.max_new_tokens);
  }
  ATTN_RETURN_IF_ERROR(options.sampling.validate());
  if (static_cast<int64_t>(prompt.size()) > session.n_ctx()) {
    return make_error("the prompt has {} tokens, more than the context length of {}", prompt.size(),
                      session.n_ctx());
  }

  // Prompt, generated tokens, and the final step's token: one allocation of the cache.
  session.reserve(static_cast<int32_t>(std::min<int64_t>(
      static_cast<int64_t>(prompt.size()) + options.max_new_tokens + 1, session.n_ctx())));

  GenerateResult result;
  const auto t0 = Clock::now();
  // The prompt in steps when someone watches its progress or may cancel it.
  const bool stepped = options.on_prefill_progress || options.cancel != nullptr;
  const size_t step = stepped ? static_cast<size_t>(std::max(1, options.prefill_step)) : prompt.size();
  for (size_t done = 0; done < prompt.size(); done += step) {
    if (options.cancel != nullptr && options.cancel->load()) {
      result.stop_reason = StopReason::kCancelled;
      result.prefill_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      return result;
    }
    const size_t n = std::min(step, prompt.size() - done);
    ATTN_RETURN_IF_ERROR(session.eval(prompt.subspan(done, n), observer));
    result.n_prompt_evaluated = static_cast<int32_t>(done + n);
    if (options.on_prefill_progress) {
      options.on_prefill_progress(result.n_prompt_evaluated, static_cast<int32_t>(prompt.size()));
    }
  }
  const auto t1 = Clock::now();
  result.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();

  Sampler sampler(options.sampling);
  const Tokenizer& tokenizer = session.model().tokenizer();
  for (int32_t i = 0; i < options.max_new_tokens; ++i) {
    const int32_t token = sampler.sample(session.last_logits());
    result.generated.push_back(token);
    const bool keep_going = !on_token || on_token(token);
    const bool is_last = i + 1 == options.max_new_tokens;
    if (options.stop_at_end_of_generation && tokenizer.is_end_of_generation(token)) {
      result.stop_reason = StopReason::kEndOfGeneration;
    } else if (!keep_going) {
      result.stop_reason = StopReason::kCallback;
    } else if (session.n_past() >= session.n_ctx()) {
      result.stop_reason = StopReason::kContextFull;
      break;  // no room to feed this token
    } else if (!is_last) {
      const int32_t one[1] = {token};
      ATTN_RETURN_IF_ERROR(session.eval(one, observer));
      continue;
    }
    // Stopping after `token`: optionally feed it once more for its attention row.
    if (options.final_step && session.n_past() < session.n_ctx()) {
      const int32_t one[1] = {token};
      ATTN_RETURN_IF_ERROR(session.eval(one, observer));
    }
    break;
  }
  result.decode_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  return result;
}

}  // namespace attnscope
