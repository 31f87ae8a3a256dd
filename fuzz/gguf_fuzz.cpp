// libFuzzer target for the GGUF reader: parse arbitrary bytes, and when they parse,
// read every value and tensor byte so that the sanitizers see any bad pointer.
#include <cstddef>
#include <cstdint>
#include <span>

#include "attnscope/gguf.h"

namespace {

uint64_t touch(const attnscope::gguf::Value& v) {
  uint64_t h = static_cast<uint64_t>(v.type);
  if (const auto* s = v.as_string()) {
    for (char c : *s) h += static_cast<uint8_t>(c);
  } else if (const auto* a = v.as_array()) {
    for (const auto& item : a->items) h += touch(item);
  } else if (auto x = v.as_int()) {
    h += static_cast<uint64_t>(*x);
  }
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = attnscope::gguf::File::parse(std::span<const uint8_t>(data, size), "fuzz.gguf");
  if (!f.ok()) return 0;
  volatile uint64_t sink = 0;
  for (const auto& [key, value] : f->metadata()) {
    sink = sink + touch(value);
    (void)f->get_int(key);
    (void)f->get_float_or(key, 0.0);
    (void)f->get_string_or(key, "");
  }
  for (const auto& t : f->tensors()) {
    for (uint64_t i = 0; i < t.n_bytes; ++i) sink = sink + t.data[i];
    (void)f->find_tensor(t.name);
  }
  return 0;
}
