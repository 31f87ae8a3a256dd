// An Observer that assembles the attention rows it receives into full per-layer
// (n_heads, n_positions, n_positions) matrices, for comparison with references.
#pragma once

#include <cstdint>
#include <vector>

#include "attnscope/observer.h"

namespace attnscope::testing {

class AttentionCollector : public Observer {
 public:
  AttentionCollector(int32_t n_layers, int32_t n_heads, int32_t n_positions)
      : n_layers_(n_layers), n_heads_(n_heads), n_pos_(n_positions),
        probs_(static_cast<size_t>(n_layers) * n_heads * n_positions * n_positions, -1.0f),
        deliveries_(static_cast<size_t>(n_layers) * n_positions, 0) {}

  void on_attention(const AttentionRows& r) override {
    if (r.layer < 0 || r.layer >= n_layers_ || r.n_heads != n_heads_ || r.n_keys != r.q_begin + r.n_rows ||
        r.q_begin + r.n_rows > n_pos_) {
      ++malformed_;
      return;
    }
    for (int32_t row = 0; row < r.n_rows; ++row) ++deliveries_[static_cast<size_t>(r.layer) * n_pos_ + r.q_begin + row];
    // Heads copied on the engine's threads, as the store does: a head that for_ranges
    // skipped would read -1 in every comparison.
    r.for_ranges(r.n_heads, [&](int64_t begin, int64_t end) {
      for (auto h = static_cast<int32_t>(begin); h < end; ++h) {
        for (int32_t row = 0; row < r.n_rows; ++row) {
          for (int32_t k = 0; k < r.n_keys; ++k) at(r.layer, h, r.q_begin + row, k) = r.at(h, row, k);
        }
      }
    });
  }

  bool wants_residual() const override { return collect_residual_; }
  void on_residual(const ResidualRows& r) override {
    if (residual_.size() <= static_cast<size_t>(r.index)) residual_.resize(static_cast<size_t>(r.index) + 1);
    auto& dst = residual_[static_cast<size_t>(r.index)];
    const size_t begin = static_cast<size_t>(r.pos_begin) * r.n_embd;
    if (dst.size() < begin + static_cast<size_t>(r.n_rows) * r.n_embd) {
      dst.resize(begin + static_cast<size_t>(r.n_rows) * r.n_embd);
    }
    std::copy(r.values, r.values + static_cast<size_t>(r.n_rows) * r.n_embd, dst.begin() + static_cast<std::ptrdiff_t>(begin));
  }
  void collect_residual(bool on) { collect_residual_ = on; }

  // Unwritten entries (keys after a row's own position are never written) read -1.
  float& at(int32_t layer, int32_t head, int32_t q, int32_t k) {
    return probs_[((static_cast<size_t>(layer) * n_heads_ + head) * n_pos_ + q) * n_pos_ + k];
  }
  // How many times row q of a layer was delivered.
  int32_t deliveries(int32_t layer, int32_t q) const {
    return deliveries_[static_cast<size_t>(layer) * n_pos_ + q];
  }
  int32_t malformed() const { return malformed_; }
  // residual(index) : (positions, n_embd) as delivered so far.
  const std::vector<float>& residual(int32_t index) const { return residual_.at(static_cast<size_t>(index)); }

 private:
  int32_t n_layers_, n_heads_, n_pos_;
  std::vector<float> probs_;       // (n_layers, n_heads, n_pos, n_pos)
  std::vector<int32_t> deliveries_;  // (n_layers, n_pos)
  int32_t malformed_ = 0;
  bool collect_residual_ = false;
  std::vector<std::vector<float>> residual_;
};

}  // namespace attnscope::testing
