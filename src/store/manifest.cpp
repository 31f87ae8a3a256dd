// manifest.json <-> RunManifest. Every string field `s` is written as "s" (valid
// UTF-8; invalid bytes shown as U+FFFD) and, only when its bytes are not valid UTF-8,
// also as "s_hex" (the exact bytes in lowercase hex), which readers prefer. So a token
// that ends inside a multi-byte character round-trips byte for byte.
#include <cmath>
#include <limits>
#include <optional>

#include <nlohmann/json.hpp>

#include "store/codec.h"
#include "store/format.h"
#include "store/manifest_json.h"
#include "store/utf8.h"

namespace attnscope::store {

using nlohmann::json;

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kF32: return "f32";
    case Precision::kF16: return "f16";
    case Precision::kU8: return "u8";
  }
  return "unknown";
}

Result<Precision> parse_precision(std::string_view name) {
  for (Precision p : {Precision::kF32, Precision::kF16, Precision::kU8}) {
    if (name == precision_name(p)) return p;
  }
  return make_error("unknown precision '{}': expected f32, f16 or u8", name);
}

namespace {

void put_string(json& obj, const std::string& key, const std::string& s) {
  obj[key] = s;  // dumped with U+FFFD for invalid bytes (error_handler_t::replace)
  if (!valid_utf8(s)) obj[key + "_hex"] = bytes_to_hex(s);
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// ---- Parsing: the first error wins; later getters return defaults ----
class Parser {
 public:
  explicit Parser(const std::string& source) : source_(source) {}

  bool failed() const { return error_.has_value(); }
  Error error() const { return *error_; }

  void fail(const std::string& path, const std::string& what) {
    if (!error_) error_ = make_error("{}: field {}: {}", source_, path, what);
  }

  const json* field(const json& obj, const std::string& path, const std::string& key) {
    auto it = obj.find(key);
    if (it == obj.end()) {
      if (!error_) error_ = make_error("{}: missing field {}", source_, join(path, key));
      return nullptr;
    }
    return &*it;
  }

  const json* object(const json& obj, const std::string& path, const std::string& key) {
    const json* v = field(obj, path, key);
    if (v != nullptr && !v->is_object()) return wrong(join(path, key), "an object", *v);
    return v;
  }

  int64_t integer(const json& obj, const std::string& path, const std::string& key,
                  int64_t lo = std::numeric_limits<int32_t>::min(),
                  int64_t hi = std::numeric_limits<int32_t>::max()) {
    const json* v = field(obj, path, key);
    if (v == nullptr) return 0;
    if (!v->is_number_integer()) {
      wrong(join(path, key), "an integer", *v);
      return 0;
    }
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi)) {
      fail(join(path, key), fmt::format("{} is out of range [{}, {}]", v->get<uint64_t>(), lo, hi));
      return 0;
    }
    const auto x = v->get<int64_t>();
    if (x < lo || x > hi) {
      fail(join(path, key), fmt::format("{} is out of range [{}, {}]", x, lo, hi));
      return 0;
    }
    return x;
  }

  uint64_t unsigned64(const json& obj, const std::string& path, const std::string& key) {
    const json* v = field(obj, path, key);
    if (v == nullptr) return 0;
    if (v->is_number_unsigned()) return v->get<uint64_t>();
    if (v->is_number_integer()) {  // negative
      fail(join(path, key), fmt::format("expected an integer >= 0, got {}", v->get<int64_t>()));
      return 0;
    }
    {
      wrong(join(path, key), "an integer >= 0", *v);
      return 0;
    }
  }

  double number(const json& obj, const std::string& path, const std::string& key) {
    const json* v = field(obj, path, key);
    if (v == nullptr) return 0;
    if (v->is_null()) return std::numeric_limits<double>::quiet_NaN();  // a non-finite value
    if (!v->is_number()) {
      wrong(join(path, key), "a number", *v);
      return 0;
    }
    return v->get<double>();
  }

  bool boolean(const json& obj, const std::string& path, const std::string& key) {
    const json* v = field(obj, path, key);
    if (v == nullptr) return false;
    if (!v->is_boolean()) {
      wrong(join(path, key), "true or false", *v);
      return false;
    }
    return v->get<bool>();
  }

  std::string string(const json& obj, const std::string& path, const std::string& key) {
    auto hex = obj.find(key + "_hex");
    if (hex != obj.end()) return from_hex(*hex, join(path, key + "_hex"));
    const json* v = field(obj, path, key);
    if (v == nullptr) return {};
    if (!v->is_string()) {
      wrong(join(path, key), "a string", *v);
      return std::string();
    }
    return v->get<std::string>();
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : fmt::format("{}.{}", path, key);
  }

 private:
  // Records a type error; returns nullptr (for object()).
  const json* wrong(const std::string& path, const char* expected, const json& v) {
    fail(path, fmt::format("expected {}, got {}", expected, v.type_name()));
    return nullptr;
  }

  std::string from_hex(const json& v, const std::string& path) {
    if (!v.is_string()) {
      wrong(path, "a hex string", v);
      return {};
    }
    std::optional<std::string> bytes = hex_to_bytes(v.get_ref<const std::string&>());
    if (!bytes) {
      fail(path, "expected hex digits, two per byte");
      return {};
    }
    return std::move(*bytes);
  }

  const std::string& source_;
  std::optional<Error> error_;
};

json token_to_json(const TokenRecord& t) {
  json j = json::object();
  j["id"] = t.id;
  put_string(j, "text", t.text);
  j["begin"] = t.byte_begin;
  j["end"] = t.byte_end;
  j["generated"] = t.generated;
  j["special"] = t.special;
  return j;
}

}  // namespace

std::string manifest_to_json(const RunManifest& m, const StoreFields& store) {
  json j = json::object();
  j["format_version"] = kFormatVersion;
  put_string(j, "tool_version", m.tool_version);
  put_string(j, "id", m.id);
  j["complete"] = m.complete;

  json model = json::object();
  put_string(model, "file_name", m.model.file_name);
  model["file_size"] = m.model.file_size;
  put_string(model, "content_hash", m.model.content_hash);
  put_string(model, "architecture", m.model.architecture);
  put_string(model, "name", m.model.name);
  model["n_layers"] = m.model.n_layers;
  model["n_heads"] = m.model.n_heads;
  model["n_kv_heads"] = m.model.n_kv_heads;
  model["head_dim"] = m.model.head_dim;
  model["n_embd"] = m.model.n_embd;
  model["n_vocab"] = m.model.n_vocab;
  model["n_ctx_train"] = m.model.n_ctx_train;
  j["model"] = std::move(model);

  put_string(j, "prompt", m.prompt);
  put_string(j, "text", m.text);
  j["n_prompt"] = m.n_prompt;
  json tokens = json::array();
  for (const TokenRecord& t : m.tokens) tokens.push_back(token_to_json(t));
  j["tokens"] = std::move(tokens);

  j["sampling"] = json{{"temperature", number_or_null(m.sampling.temperature)},
                       {"top_k", m.sampling.top_k},
                       {"top_p", number_or_null(m.sampling.top_p)},
                       {"min_p", number_or_null(m.sampling.min_p)},
                       {"seed", m.sampling.seed}};
  j["max_new_tokens"] = m.max_new_tokens;
  put_string(j, "stop_reason", m.stop_reason);

  json timings = json::object();
  put_string(timings, "started_at", m.timings.started_at);
  timings["prefill_seconds"] = number_or_null(m.timings.prefill_seconds);
  timings["decode_seconds"] = number_or_null(m.timings.decode_seconds);
  timings["total_seconds"] = number_or_null(m.timings.total_seconds);
  j["timings"] = std::move(timings);
  if (!m.compute.kernels.empty()) {
    j["compute"] = json{{"kernels", m.compute.kernels},
                        {"activations", m.compute.activations},
                        {"threads", m.compute.n_threads}};
  }

  json att = json::object();
  att["precision"] = precision_name(m.precision);
  att["n_layers"] = m.n_layers;
  att["n_heads"] = m.n_heads;
  att["layout"] = "lower-triangle";
  att["log"] = format::kLogFile;
  att["index"] = format::kIndexFile;
  if (store.run_uid) att["run_uid"] = fmt::format("{:016x}", *store.run_uid);
  if (store.n_rows) att["n_rows"] = *store.n_rows;
  j["attention"] = std::move(att);
  // Never throws: invalid UTF-8 is replaced (the exact bytes are in the _hex fields).
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string manifest_to_json(const RunManifest& m) { return manifest_to_json(m, StoreFields{}); }

namespace {

Result<StoredManifest> parse_manifest_impl(std::string_view text, const std::string& source) {
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return make_error("{}: not valid JSON: {}", source, e.what());
  }
  if (!j.is_object()) return make_error("{}: expected a JSON object, got {}", source, j.type_name());

  Parser p(source);
  StoredManifest out;
  RunManifest& m = out.manifest;
  const int64_t version = p.integer(j, "", "format_version");
  if (p.failed()) return p.error();
  if (version > kFormatVersion) {
    return make_error("{}: format version {} is newer than this attnscope ({}): upgrade attnscope",
                      source, version, kFormatVersion);
  }
  if (version < 1) return make_error("{}: field format_version: {} is not a valid version", source, version);
  m.format_version = static_cast<int32_t>(version);
  m.tool_version = p.string(j, "", "tool_version");
  m.id = p.string(j, "", "id");
  m.complete = p.boolean(j, "", "complete");

  if (const json* model = p.object(j, "", "model")) {
    const std::string at = "model";
    m.model.file_name = p.string(*model, at, "file_name");
    m.model.file_size = p.unsigned64(*model, at, "file_size");
    m.model.content_hash = p.string(*model, at, "content_hash");
    m.model.architecture = p.string(*model, at, "architecture");
    m.model.name = p.string(*model, at, "name");
    m.model.n_layers = static_cast<int32_t>(p.integer(*model, at, "n_layers"));
    m.model.n_heads = static_cast<int32_t>(p.integer(*model, at, "n_heads"));
    m.model.n_kv_heads = static_cast<int32_t>(p.integer(*model, at, "n_kv_heads"));
    m.model.head_dim = static_cast<int32_t>(p.integer(*model, at, "head_dim"));
    m.model.n_embd = static_cast<int32_t>(p.integer(*model, at, "n_embd"));
    m.model.n_vocab = static_cast<int32_t>(p.integer(*model, at, "n_vocab"));
    m.model.n_ctx_train = static_cast<int32_t>(p.integer(*model, at, "n_ctx_train"));
  }

  m.prompt = p.string(j, "", "prompt");
  m.text = p.string(j, "", "text");
  m.n_prompt = static_cast<int32_t>(p.integer(j, "", "n_prompt", 0));
  if (const json* tokens = p.field(j, "", "tokens")) {
    if (!tokens->is_array()) {
      p.fail("tokens", fmt::format("expected an array, got {}", tokens->type_name()));
    } else {
      m.tokens.reserve(tokens->size());
      for (size_t i = 0; i < tokens->size() && !p.failed(); ++i) {
        const json& t = (*tokens)[i];
        const std::string at = fmt::format("tokens[{}]", i);
        if (!t.is_object()) {
          p.fail(at, fmt::format("expected an object, got {}", t.type_name()));
          break;
        }
        TokenRecord r;
        r.id = static_cast<int32_t>(p.integer(t, at, "id"));
        r.text = p.string(t, at, "text");
        r.byte_begin = p.integer(t, at, "begin", -1, std::numeric_limits<int64_t>::max());
        r.byte_end = p.integer(t, at, "end", -1, std::numeric_limits<int64_t>::max());
        r.generated = p.boolean(t, at, "generated");
        r.special = p.boolean(t, at, "special");
        m.tokens.push_back(std::move(r));
      }
    }
  }

  if (const json* s = p.object(j, "", "sampling")) {
    m.sampling.temperature = static_cast<float>(p.number(*s, "sampling", "temperature"));
    m.sampling.top_k = static_cast<int32_t>(p.integer(*s, "sampling", "top_k"));
    m.sampling.top_p = static_cast<float>(p.number(*s, "sampling", "top_p"));
    m.sampling.min_p = static_cast<float>(p.number(*s, "sampling", "min_p"));
    m.sampling.seed = p.unsigned64(*s, "sampling", "seed");
  }
  m.max_new_tokens = static_cast<int32_t>(p.integer(j, "", "max_new_tokens"));
  m.stop_reason = p.string(j, "", "stop_reason");

  if (const json* t = p.object(j, "", "timings")) {
    m.timings.started_at = p.string(*t, "timings", "started_at");
    m.timings.prefill_seconds = p.number(*t, "timings", "prefill_seconds");
    m.timings.decode_seconds = p.number(*t, "timings", "decode_seconds");
    m.timings.total_seconds = p.number(*t, "timings", "total_seconds");
  }

  if (j.contains("compute")) {  // optional: older runs lack it
    if (const json* c = p.object(j, "", "compute")) {
      m.compute.kernels = p.string(*c, "compute", "kernels");
      m.compute.activations = p.string(*c, "compute", "activations");
      m.compute.n_threads = static_cast<int32_t>(p.integer(*c, "compute", "threads", 0, 1 << 20));
    }
  }

  if (const json* a = p.object(j, "", "attention")) {
    const std::string name = p.string(*a, "attention", "precision");
    if (!p.failed()) {
      auto prec = parse_precision(name);
      if (!prec.ok()) p.fail("attention.precision", prec.error().message);
      else m.precision = *prec;
    }
    m.n_layers = static_cast<int32_t>(p.integer(*a, "attention", "n_layers", 0, format::kMaxLayers));
    m.n_heads = static_cast<int32_t>(p.integer(*a, "attention", "n_heads", 0, format::kMaxHeads));
    if (a->contains("run_uid")) {
      const std::string uid = p.string(*a, "attention", "run_uid");
      if (!p.failed()) {
        const std::optional<std::string> bytes = uid.size() == 16 ? hex_to_bytes(uid) : std::nullopt;
        uint64_t v = 0;
        for (char c : bytes.value_or("")) v = (v << 8) | static_cast<uint8_t>(c);
        if (!bytes) p.fail("attention.run_uid", fmt::format("expected 16 hex digits, got '{}'", uid));
        out.store.run_uid = v;
      }
    }
    if (a->contains("n_rows")) {
      out.store.n_rows = static_cast<int32_t>(p.integer(*a, "attention", "n_rows", 0));
    }
  }
  if (p.failed()) return p.error();
  return out;
}

}  // namespace

Result<StoredManifest> parse_stored_manifest(std::string_view text, const std::string& source) {
  try {
    return parse_manifest_impl(text, source);
  } catch (const json::exception& e) {  // not expected: every access is type-checked first
    return make_error("{}: {}", source, e.what());
  }
}

Result<RunManifest> manifest_from_json(std::string_view json_text, const std::string& source) {
  ATTN_ASSIGN_OR_RETURN(StoredManifest s, parse_stored_manifest(json_text, source));
  return std::move(s.manifest);
}

}  // namespace attnscope::store
