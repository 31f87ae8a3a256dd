// Session: KV cache, batching, and the LLaMA-family forward pass.
#include "attnscope/session.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include "model/attention.h"
#include "model/ops.h"
#include "model/thread_pool.h"

namespace attnscope {

namespace {
// A matrix product's input in the formats its matrices' kernels read (quant.h), each
// (n, max(n_embd, n_ff, n_attn) / block size).
struct ActBuffers {
  std::vector<quant::ActBlock> b32;    // legacy formats, Q8_0
  std::vector<quant::ActBlockK> b256;  // K-quants, IQ4_XS
  std::vector<quant::ActBF16> bf16;    // BF16
};
}  // namespace

// Activations of one batch. Sized for the largest batch seen so far and kept, so that
// decoding token by token allocates nothing.
struct Session::Buffers {
  std::vector<float> x;      // (n, n_embd) residual stream
  std::vector<float> xn;     // (n, n_embd) normed input
  std::vector<float> q;      // (n, n_heads * head_dim)
  std::vector<float> k;      // (n, n_kv_heads * head_dim)
  std::vector<float> v;      // (n, n_kv_heads * head_dim_v)
  std::vector<float> attn;   // (n, n_heads * head_dim_v)
  std::vector<float> proj;   // (n, n_embd)
  std::vector<float> gate;   // (n, n_ff)
  std::vector<float> up;     // (n, n_ff)
  std::vector<float> probs;  // (n_heads, q_chunk, n_keys)
  std::vector<float> rope_cos, rope_sin;  // (n, n_rot / 2) angles of each position
  ActBuffers acts;                        // the normed input or attention output, quantized
};

namespace {

template <typename T>
T* sized(std::vector<T>& v, int64_t n) {
  if (v.size() < static_cast<size_t>(n)) v.resize(static_cast<size_t>(n));
  return v.data();
}

// Products of several matrices with the same input x (n, n_cols): y_i = x · w_iᵀ.
// With int8 activations, x is quantized once for all of them, into each format that one
// of them reads (matrices without an int8 kernel read x in f32). Rows are split across
// the pool.
struct Product {
  const quant::Matrix* w;
  float* y;  // (n, w->n_rows)
};

// x (n, n_cols) into out (n, n_cols / block size), tokens split across the pool.
template <typename Block>
void quantize(const float* x, int64_t n, int64_t n_cols, std::vector<Block>& out, ThreadPool* pool) {
  constexpr int64_t block = std::extent_v<decltype(Block::q)>;  // values per block
  Block* q = sized(out, n * (n_cols / block));
  if (n < 8) return quant::quantize_activations(x, n, n_cols, q);
  pool->parallel_for(n, [&](int64_t begin, int64_t end) {
    quant::quantize_activations(x + begin * n_cols, end - begin, n_cols, q + begin * (n_cols / block));
  });
}

void project(std::initializer_list<Product> products, const float* x, int64_t n, Activations activations,
             ActBuffers& buffers, ThreadPool* pool) {
  const int64_t n_cols = products.begin()->w->n_cols;
  bool need32 = false, need256 = false, need_bf16 = false;
  if (activations == Activations::kInt8) {
    for (const Product& p : products) {
      const quant::ActFormat f = quant::kernels(p.w->type)->act;
      need32 = need32 || (f == quant::ActFormat::kBlock32 && n_cols % 32 == 0);
      need256 = need256 || (f == quant::ActFormat::kBlock256 && n_cols % 256 == 0);
      need_bf16 = need_bf16 || (f == quant::ActFormat::kBF16 && n_cols % 32 == 0);
    }
  }
  quant::QuantizedActs xq;
  if (need32) {
    quantize(x, n, n_cols, buffers.b32, pool);
    xq.b32 = buffers.b32.data();
  }
  if (need256) {
    quantize(x, n, n_cols, buffers.b256, pool);
    xq.b256 = buffers.b256.data();
  }
  if (need_bf16) {
    quantize(x, n, n_cols, buffers.bf16, pool);
    xq.bf16 = buffers.bf16.data();
  }
  // One parallel_for over the rows of all the matrices: fewer hand-offs per layer. The
  // rows go out in whole panels of 16 (the packed GEMM's unit; a cut panel would be
  // computed twice).
  constexpr int64_t kUnit = quant::kPanelRows;
  const auto units = [](const Product& p) { return (p.w->n_rows + kUnit - 1) / kUnit; };
  int64_t total_units = 0;
  for (const Product& p : products) total_units += units(p);
  pool->parallel_for(total_units, [&](int64_t begin, int64_t end) {
    int64_t offset = 0;  // in units
    for (const Product& p : products) {
      const int64_t lo = (std::max(begin, offset) - offset) * kUnit;
      const int64_t hi = std::min((std::min(end, offset + units(p)) - offset) * kUnit, p.w->n_rows);
      offset += units(p);
      if (lo >= hi) continue;
      const quant::ActFormat f = quant::kernels(p.w->type)->act;
      if ((f == quant::ActFormat::kBlock32 && xq.b32 != nullptr) ||
          (f == quant::ActFormat::kBlock256 && xq.b256 != nullptr) ||
          (f == quant::ActFormat::kBF16 && xq.bf16 != nullptr)) {
        quant::matmul_rows_q8(*p.w, xq, n, p.y, lo, hi);
      } else {
        quant::matmul_rows(*p.w, x, n, p.y, lo, hi);
      }
    }
  });
}

void add_bias(float* x, const std::vector<float>& bias, int64_t n_tokens) {
  if (bias.empty()) return;
  const int64_t n = static_cast<int64_t>(bias.size());
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t i = 0; i < n; ++i) x[t * n + i] += bias[static_cast<size_t>(i)];
  }
}

}  // namespace

int32_t default_thread_count() {
  // Count distinct (physical id, core id) pairs: hyper-threads share a core's units.
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, physical = "0";
  while (std::getline(cpuinfo, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (line.rfind("physical id", 0) == 0) physical = value;
    if (line.rfind("core id", 0) == 0) cores.emplace(physical, value);
  }
  if (!cores.empty()) return static_cast<int32_t>(cores.size());
  return static_cast<int32_t>(std::max(1u, std::thread::hardware_concurrency()));
}

Result<std::unique_ptr<Session>> Session::create(std::shared_ptr<const Model> model,
                                                 const SessionOptions& options) {
  if (!model) return make_error("Session::create: no model");
  const ModelConfig& c = model->config();
  std::unique_ptr<Session> s(new Session());
  s->options_ = options;
  s->n_ctx_ = options.n_ctx > 0 ? options.n_ctx : c.n_ctx_train;
  if (options.n_batch <= 0 || options.q_chunk <= 0 || options.n_threads < 0 || s->n_ctx_ <= 0) {
    return make_error("invalid session options: n_ctx {}, n_batch {}, q_chunk {}, n_threads {}",
                      options.n_ctx, options.n_batch, options.q_chunk, options.n_threads);
  }
  const int32_t n_threads = options.n_threads > 0 ? options.n_threads : default_thread_count();
  s->pool_ = std::make_unique<ThreadPool>(n_threads);
  s->k_cache_.resize(static_cast<size_t>(c.n_layers));
  s->v_cache_.resize(static_cast<size_t>(c.n_layers));
  // The int8 path multiplies with the packed copies of the Q8_0 matrices.
  s->weights_ = options.activations == Activations::kInt8 ? &model->int8_weights(n_threads) : &model->weights();
  s->model_ = std::move(model);
  s->buf_ = std::make_unique<Buffers>();
  return s;
}

Session::~Session() = default;

int32_t Session::n_threads() const { return pool_->size(); }

std::span<const float> Session::last_logits() const {
  const size_t n_vocab = static_cast<size_t>(model_->config().n_vocab);
  if (logits_.size() < n_vocab) return {};
  return std::span<const float>(logits_).subspan(logits_.size() - n_vocab);
}

Status Session::eval(std::span<const int32_t> tokens, Observer* observer, bool all_logits) {
  if (tokens.empty()) return make_error("eval: no tokens");
  if (static_cast<int64_t>(n_past_) + static_cast<int64_t>(tokens.size()) > n_ctx_) {
    return make_error("{} tokens after {} already evaluated exceed the context length of {}",
                      tokens.size(), n_past_, n_ctx_);
  }
  const int32_t n_vocab = model_->config().n_vocab;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= n_vocab) {
      return make_error("token id {} at index {} is outside the vocabulary (0..{})", tokens[i], i,
                        n_vocab - 1);
    }
  }
  std::vector<float> all;  // (n_tokens, n_vocab) when all_logits
  for (size_t b = 0; b < tokens.size(); b += static_cast<size_t>(options_.n_batch)) {
    const size_t n = std::min(tokens.size() - b, static_cast<size_t>(options_.n_batch));
    ATTN_RETURN_IF_ERROR(eval_batch(tokens.subspan(b, n), observer, all_logits));
    if (all_logits) all.insert(all.end(), logits_.begin(), logits_.end());
  }
  if (all_logits) logits_ = std::move(all);
  return ok_status();
}

void Session::reserve_cache(int32_t n_positions) {
  if (n_positions <= cache_capacity_) return;
  // Grow geometrically so that decoding token by token copies the cache O(log n) times;
  // a 128k-context model never pays for positions it does not use.
  const int32_t capacity =
      std::min(n_ctx_, std::max({n_positions, 2 * cache_capacity_, 256}));
  const ModelConfig& c = model_->config();
  for (size_t l = 0; l < k_cache_.size(); ++l) {
    k_cache_[l].resize(static_cast<size_t>(capacity) * c.n_kv_heads * c.head_dim);
    v_cache_[l].resize(static_cast<size_t>(capacity) * c.n_kv_heads * c.head_dim_v);
  }
  cache_capacity_ = capacity;
}

Status Session::eval_batch(std::span<const int32_t> tokens, Observer* observer, bool all_logits) {
  const ModelConfig& c = model_->config();
  const ModelWeights& w = *weights_;
  ThreadPool* pool = pool_.get();
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int32_t pos0 = n_past_;
  const int64_t n_embd = c.n_embd;
  const int64_t n_q = int64_t{c.n_heads} * c.head_dim;
  const int64_t n_k = int64_t{c.n_kv_heads} * c.head_dim;
  const int64_t n_v = int64_t{c.n_kv_heads} * c.head_dim_v;
  const int64_t n_attn = int64_t{c.n_heads} * c.head_dim_v;
  reserve_cache(pos0 + static_cast<int32_t>(n));

  Buffers& B = *buf_;
  const Activations act = options_.activations;
  float* x = sized(B.x, n * n_embd);
  float* xn = sized(B.xn, n * n_embd);
  float* q = sized(B.q, n * n_q);
  float* k = sized(B.k, n * n_k);
  float* v = sized(B.v, n * n_v);
  float* attn = sized(B.attn, n * n_attn);
  float* proj = sized(B.proj, n * n_embd);
  float* gate = sized(B.gate, n * c.n_ff);
  float* up = sized(B.up, n * c.n_ff);
  const int32_t half_rot = c.n_rot / 2;
  float* rope_cos = sized(B.rope_cos, n * half_rot);
  float* rope_sin = sized(B.rope_sin, n * half_rot);
  const float* freq_factors = w.rope_freq_factors.empty() ? nullptr : w.rope_freq_factors.data();
  for (int64_t t = 0; t < n; ++t) {
    model::rope_angles(c.n_rot, pos0 + static_cast<int32_t>(t), c, freq_factors, rope_cos + t * half_rot,
                       rope_sin + t * half_rot);
  }

  auto emit_residual = [&](int32_t index, const float* values) {
    if (observer != nullptr && observer->wants_residual()) {
      observer->on_residual(ResidualRows{.index = index, .pos_begin = pos0,
                                         .n_rows = static_cast<int32_t>(n),
                                         .n_embd = c.n_embd, .values = values});
    }
  };

  const auto* embd_kernels = quant::kernels(w.token_embd.type);
  for (int64_t t = 0; t < n; ++t) {
    if (w.token_embd.packed != nullptr) {  // tied and packed: the mapped rows are released
      quant::dequantize_packed_row(w.token_embd, tokens[static_cast<size_t>(t)], x + t * n_embd);
      continue;
    }
    const auto* row = static_cast<const uint8_t*>(w.token_embd.data) +
                      static_cast<uint64_t>(tokens[static_cast<size_t>(t)]) * w.token_embd.row_bytes;
    embd_kernels->dequantize(row, x + t * n_embd, n_embd);
  }
  emit_residual(0, x);

  for (int32_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = w.layers[static_cast<size_t>(l)];
    float* k_cache = k_cache_[static_cast<size_t>(l)].data();  // (cache_capacity, n_k)
    float* v_cache = v_cache_[static_cast<size_t>(l)].data();  // (cache_capacity, n_v)

    // Attention block.
    for (int64_t t = 0; t < n; ++t) {
      model::rms_norm(x + t * n_embd, L.attn_norm.data(), n_embd, c.norm_eps, xn + t * n_embd);
    }
    project({{&L.wq, q}, {&L.wk, k}, {&L.wv, v}}, xn, n, act, B.acts, pool);
    add_bias(q, L.bq, n);
    add_bias(k, L.bk, n);
    add_bias(v, L.bv, n);
    for (int64_t t = 0; t < n; ++t) {
      float* qt = q + t * n_q;
      float* kt = k + t * n_k;
      if (c.qk_norm) {
        for (int32_t h = 0; h < c.n_heads; ++h) {
          float* head = qt + int64_t{h} * c.head_dim;
          model::rms_norm(head, L.q_norm.data(), c.head_dim, c.norm_eps, head);
        }
        for (int32_t h = 0; h < c.n_kv_heads; ++h) {
          float* head = kt + int64_t{h} * c.head_dim;
          model::rms_norm(head, L.k_norm.data(), c.head_dim, c.norm_eps, head);
        }
      }
      model::rope_apply(qt, c.n_heads, c.head_dim, c.n_rot, c.rope_layout, rope_cos + t * half_rot,
                        rope_sin + t * half_rot);
      model::rope_apply(kt, c.n_kv_heads, c.head_dim, c.n_rot, c.rope_layout, rope_cos + t * half_rot,
                        rope_sin + t * half_rot);
    }
    std::copy(k, k + n * n_k, k_cache + static_cast<int64_t>(pos0) * n_k);
    std::copy(v, v + n * n_v, v_cache + static_cast<int64_t>(pos0) * n_v);

    model::attention(model::AttentionInput{.config = &c, .layer = l, .pos0 = pos0,
                                           .n_tokens = static_cast<int32_t>(n), .q = q,
                                           .k = k_cache, .v = v_cache, .q_chunk = options_.q_chunk},
                     attn, &B.probs, observer, pool);
    project({{&L.wo, proj}}, attn, n, act, B.acts, pool);
    for (int64_t i = 0; i < n * n_embd; ++i) x[i] += proj[i];

    // Feed-forward block (SwiGLU).
    for (int64_t t = 0; t < n; ++t) {
      model::rms_norm(x + t * n_embd, L.ffn_norm.data(), n_embd, c.norm_eps, xn + t * n_embd);
    }
    project({{&L.w_gate, gate}, {&L.w_up, up}}, xn, n, act, B.acts, pool);
    pool->parallel_for(n, [&](int64_t begin, int64_t end) {
      quant::swiglu(gate + begin * c.n_ff, up + begin * c.n_ff, (end - begin) * c.n_ff);
    });
    project({{&L.w_down, proj}}, gate, n, act, B.acts, pool);
    for (int64_t i = 0; i < n * n_embd; ++i) x[i] += proj[i];
    emit_residual(l + 1, x);
  }

  // Final norm and output projection, for the last row only unless all are wanted.
  const int64_t first_out = all_logits ? 0 : n - 1;
  const int64_t n_out = n - first_out;
  for (int64_t t = 0; t < n; ++t) {
    model::rms_norm(x + t * n_embd, w.output_norm.data(), n_embd, c.norm_eps, xn + t * n_embd);
  }
  emit_residual(c.n_layers + 1, xn);
  logits_.resize(static_cast<size_t>(n_out * c.n_vocab));  // (n_out, n_vocab)
  project({{&w.output, logits_.data()}}, xn + first_out * n_embd, n_out, act, B.acts, pool);
  if (c.final_softcap > 0.0f) {
    for (float& z : logits_) z = c.final_softcap * std::tanh(z / c.final_softcap);
  }
  n_past_ += static_cast<int32_t>(n);
  return ok_status();
}

}  // namespace attnscope
