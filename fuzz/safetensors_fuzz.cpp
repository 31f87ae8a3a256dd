// libFuzzer target for the safetensors reader: parse arbitrary bytes, and when they
// parse, read every tensor through the converting accessors.
#include <cstddef>
#include <cstdint>
#include <span>

#include "attnscope/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = attnscope::safetensors::File::parse(std::span<const uint8_t>(data, size), "fuzz.safetensors");
  if (!f.ok()) return 0;
  volatile uint64_t sink = 0;
  for (const auto& t : f->tensors()) {
    for (uint8_t b : t.bytes) sink = sink + b;
    (void)f->read_f32(t.name);
    (void)f->read_i32(t.name);
  }
  for (const auto& [k, v] : f->metadata()) sink = sink + k.size() + v.size();
  return 0;
}
