// RunReader::aggregate and the aggregate names. The arithmetic is in aggregate_math.cpp;
// the formulas are in docs/aggregations.md.
#include <array>
#include <string>

#include "attnscope/store.h"
#include "store/aggregate_math.h"
#include "store/reader_internal.h"

namespace attnscope::store {
namespace {

constexpr std::array<std::pair<Aggregate, const char*>, 5> kNames = {{
    {Aggregate::kNone, "none"},
    {Aggregate::kHeadMean, "head-mean"},
    {Aggregate::kHeadMax, "head-max"},
    {Aggregate::kLayerMean, "layer-mean"},
    {Aggregate::kRollout, "rollout"},
}};

}  // namespace

const char* aggregate_name(Aggregate a) {
  for (const auto& [kind, name] : kNames) {
    if (kind == a) return name;
  }
  return "?";
}

Result<Aggregate> parse_aggregate(std::string_view name) {
  std::string valid;
  for (const auto& [kind, n] : kNames) {
    if (name == n) return kind;
    valid += fmt::format("{}{}", valid.empty() ? "" : ", ", n);
  }
  return make_error("invalid aggregate: '{}' (valid: {})", name, valid);
}

Result<std::vector<float>> RunReader::aggregate(Aggregate kind, int32_t layer, int32_t head, Range q,
                                                Range k) const {
  HeadSource src;
  src.name = impl_->dir;
  src.n_layers = n_layers();
  src.n_heads = n_heads();
  src.n_rows = n_rows();
  src.read = [this](int32_t l, int32_t h, Range qq, Range kk) { return read(l, h, qq, kk); };
  return compute_aggregate(src, kind, layer, head, q, k);
}

}  // namespace attnscope::store
