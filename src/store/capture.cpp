#include "attnscope/capture.h"

#include <xxhash.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>

#include "attnscope/quant.h"
#include "attnscope/version.h"

namespace attnscope {
namespace {

std::string utc_now_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool is_special(const Tokenizer& tok, int32_t id) {
  const TokenType t = tok.token_type(id);
  return t == TokenType::kControl || t == TokenType::kUnknown;
}

}  // namespace

Result<store::ModelIdentity> identify_model(const Model& model) {
  const ModelConfig& c = model.config();
  store::ModelIdentity id;
  id.file_name = std::filesystem::path(model.path()).filename().string();
  id.file_size = model.gguf().file_size();
  id.architecture = c.architecture;
  id.name = c.name;
  id.n_layers = c.n_layers;
  id.n_heads = c.n_heads;
  id.n_kv_heads = c.n_kv_heads;
  id.head_dim = c.head_dim;
  id.n_embd = c.n_embd;
  id.n_vocab = c.n_vocab;
  id.n_ctx_train = c.n_ctx_train;

  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(model.path().c_str(), "rb"), &std::fclose);
  if (!f) return make_error("cannot read {} to hash it", model.path());
  std::unique_ptr<XXH64_state_t, XXH_errorcode (*)(XXH64_state_t*)> state(XXH64_createState(),
                                                                          &XXH64_freeState);
  if (!state) return make_error("out of memory hashing {}", model.path());
  XXH64_reset(state.get(), 0);
  std::vector<char> buf(1 << 20);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), f.get())) > 0) XXH64_update(state.get(), buf.data(), n);
  if (std::ferror(f.get()) != 0) return make_error("error reading {} to hash it", model.path());
  id.content_hash = fmt::format("xxh64:{:016x}", XXH64_digest(state.get()));
  return id;
}

std::vector<store::TokenRecord> token_records(const Tokenizer& tok, const std::vector<int32_t>& ids,
                                              const std::string& text, bool generated,
                                              int64_t search_from) {
  std::vector<store::TokenRecord> out;
  size_t cursor = static_cast<size_t>(search_from);
  for (int32_t id : ids) {
    store::TokenRecord r;
    r.id = id;
    r.generated = generated;
    r.special = is_special(tok, id);
    r.text = tok.token_to_piece(id, /*render_special=*/true);
    // Where this token's bytes sit in the text. A leading space the tokenizer adds
    // (SentencePiece's space prefix) may be absent from the text.
    std::string_view piece = r.text;
    auto matches_at = [&](std::string_view p) {
      return !p.empty() && cursor <= text.size() && text.compare(cursor, p.size(), p) == 0;
    };
    if (!matches_at(piece) && !piece.empty() && piece.front() == ' ') piece.remove_prefix(1);
    if (matches_at(piece)) {
      r.byte_begin = static_cast<int64_t>(cursor);
      cursor += piece.size();
      r.byte_end = static_cast<int64_t>(cursor);
    }
    out.push_back(std::move(r));
  }
  return out;
}

Result<CaptureResult> capture(const std::shared_ptr<const Model>& model,
                              const store::ModelIdentity& identity, const CaptureRequest& request,
                              const CaptureProgressFn& progress) {
  using Clock = std::chrono::steady_clock;
  const auto t_start = Clock::now();
  const Tokenizer& tok = model->tokenizer();
  const ModelConfig& c = model->config();

  std::vector<int32_t> ids;
  if (request.token_ids) {
    ids = *request.token_ids;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0 || ids[i] >= c.n_vocab) {
        return make_error("token id {} (position {}) is outside the vocabulary 0..{}", ids[i], i,
                          c.n_vocab - 1);
      }
    }
  } else {
    ids = tok.encode(request.prompt, request.add_special, /*parse_special=*/true);
  }
  if (ids.empty()) return make_error("the prompt has no tokens");
  const int32_t n_ctx = request.session.n_ctx > 0 ? request.session.n_ctx : c.n_ctx_train;
  if (static_cast<int64_t>(ids.size()) > n_ctx) {
    return make_error("the prompt has {} tokens, more than the context length of {}", ids.size(), n_ctx);
  }

  store::RunManifest m;
  m.tool_version = kVersion;
  m.id = request.id;
  m.model = identity;
  m.prompt = request.token_ids ? tok.decode(ids, /*render_special=*/true) : request.prompt;
  m.text = m.prompt;
  m.tokens = token_records(tok, ids, m.text, /*generated=*/false);
  m.n_prompt = static_cast<int32_t>(ids.size());
  m.sampling = request.sampling;
  m.max_new_tokens = request.max_new_tokens;
  m.precision = request.precision;
  m.n_layers = c.n_layers;
  m.n_heads = c.n_heads;
  m.timings.started_at = utc_now_iso8601();
  m.compute.kernels = quant::isa_name(quant::cpu_isa());
  m.compute.activations = request.session.activations == Activations::kF32 ? "f32" : "int8";
  m.compute.n_threads = request.session.n_threads > 0 ? request.session.n_threads : default_thread_count();

  ATTN_ASSIGN_OR_RETURN(auto writer, store::RunWriter::create(request.run_dir, m, request.overwrite, request.writer));
  ATTN_ASSIGN_OR_RETURN(auto session, Session::create(model, request.session));

  GenerateOptions go;
  go.max_new_tokens = request.max_new_tokens;
  go.sampling = request.sampling;
  go.stop_at_end_of_generation = request.stop_at_end_of_generation;
  go.final_step = true;  // every token of the final sequence gets its own row
  go.prefill_step = std::max(1, request.session.n_batch);
  go.cancel = request.cancel;  // stops the prompt between batches; decoding stops in on_token
  const auto t_prefill = Clock::now();
  auto t_decode = t_prefill;
  auto cancel_requested = [&] { return request.cancel != nullptr && request.cancel->load(); };
  go.on_prefill_progress = [&](int32_t done, int32_t total) {
    if (done == total) t_decode = Clock::now();
    if (progress) {
      progress({"prefill", done, total, std::chrono::duration<double>(Clock::now() - t_prefill).count()});
    }
  };

  Status token_status;
  bool cancelled = false;
  int32_t n_generated = 0;
  auto on_token = [&](int32_t id) {
    // Record the token before the engine feeds it, so its rows are never orphaned.
    const auto before = static_cast<int64_t>(m.text.size());
    m.text += tok.token_to_piece(id, /*render_special=*/true);
    store::TokenRecord rec = token_records(tok, {id}, m.text, /*generated=*/true, before)[0];
    m.tokens.push_back(rec);
    ++n_generated;
    // Also reports an earlier write error, without waiting for the writer thread.
    if (token_status.ok()) token_status = writer->add_generated_token(rec);
    if (progress) {
      progress({"decode", n_generated, request.max_new_tokens,
                std::chrono::duration<double>(Clock::now() - t_decode).count()});
    }
    if (cancel_requested()) cancelled = true;
    return token_status.ok() && !cancelled;
  };

  auto result = generate(*session, ids, go, writer.get(), on_token);
  if (!result.ok()) {
    (void)writer->checkpoint(m);  // keep what was stored, marked incomplete
    return std::move(result).error();
  }
  ATTN_RETURN_IF_ERROR(token_status);
  ATTN_RETURN_IF_ERROR(writer->status());
  if (result->stop_reason == StopReason::kCancelled) cancelled = true;  // during the prompt
  m.stop_reason = cancelled ? "cancelled" : stop_reason_name(result->stop_reason);
  m.timings.prefill_seconds = result->prefill_seconds;
  m.timings.decode_seconds = result->decode_seconds;
  m.timings.total_seconds = std::chrono::duration<double>(Clock::now() - t_start).count();

  CaptureResult out;
  out.cancelled = cancelled;
  if (cancelled) {
    ATTN_RETURN_IF_ERROR(writer->checkpoint(m));
  } else {
    m.complete = true;
    ATTN_RETURN_IF_ERROR(writer->finish(m));
  }
  out.store_bytes = writer->bytes_written();
  out.writer_stats = writer->stats();
  out.manifest = std::move(m);
  return out;
}

}  // namespace attnscope
