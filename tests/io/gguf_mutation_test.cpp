// Deterministic mutation testing of the GGUF reader: flip, overwrite, truncate and
// splice bytes of small valid files (fixed seed) and check that parse never crashes.
// It may succeed or fail; when it succeeds, every value and tensor byte is touched so
// that the sanitizer build catches any out-of-bounds pointer.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <vector>

#include "attnscope/gguf.h"
#include "attnscope/gguf_writer.h"

namespace attnscope::gguf {
namespace {

std::vector<uint8_t> seed_file(uint32_t alignment) {
  static const std::vector<uint8_t> q8(34 * 2, 7);  // two Q8_0 blocks
  static const std::vector<float> f(6, 0.25f);
  Writer w;
  w.add_uint32("general.alignment", alignment);
  w.add_string("general.architecture", "mut");
  w.add_int64("mut.count", -5);
  w.add_float64("mut.eps", 1e-6);
  w.add_bool("mut.flag", false);
  w.add_array("mut.tokens", std::vector<std::string>{"x", "yy", "zzz"});
  w.add_array("mut.scores", std::vector<float>{0.5f, -1.0f});
  w.add_kv("mut.nested", make_array(ValueType::kArray,
                                    {make_array(ValueType::kUint16, {make_uint16(1), make_uint16(2)}),
                                     make_array(ValueType::kString, {make_string("s")})}));
  w.add_tensor("q", 8, std::vector<uint64_t>{64}, q8);
  w.add_tensor("f", 0, std::vector<uint64_t>{3, 2},
               {reinterpret_cast<const uint8_t*>(f.data()), f.size() * 4});
  auto bytes = w.serialize();
  EXPECT_TRUE(bytes.ok()) << bytes.error().message;
  return std::move(bytes).value();
}

// Reads everything a successful parse exposes.
uint64_t touch(const Value& v) {
  uint64_t h = static_cast<uint64_t>(v.type);
  if (const std::string* s = v.as_string()) {
    for (char c : *s) h += static_cast<uint8_t>(c);
  } else if (const Array* a = v.as_array()) {
    for (const Value& item : a->items) h += touch(item);
  } else if (auto x = v.as_float()) {
    h += static_cast<uint64_t>(*x != 0);
  }
  return h;
}

uint64_t touch(const File& f) {
  uint64_t h = f.metadata().size();
  for (const auto& [key, value] : f.metadata()) {
    h += key.size() + touch(value);
    (void)f.get_int(key);
    (void)f.get_string_or(key, "");
  }
  for (const TensorInfo& t : f.tensors()) {
    EXPECT_LE(t.n_bytes, f.file_size());
    for (uint64_t i = 0; i < t.n_bytes; ++i) h += t.data[i];
    EXPECT_EQ(f.find_tensor(t.name), &t);
  }
  return h;
}

void mutate(std::vector<uint8_t>& b, std::mt19937_64& rng) {
  auto pick = [&](uint64_t n) { return n == 0 ? uint64_t{0} : rng() % n; };
  static const uint64_t kInteresting[] = {0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0xffffffff,
                                          uint64_t{1} << 32, uint64_t{1} << 60, ~uint64_t{0}};
  const int n_mutations = 1 + static_cast<int>(pick(4));
  for (int m = 0; m < n_mutations && !b.empty(); ++m) {
    switch (pick(6)) {
      case 0:  // flip a bit
        b[pick(b.size())] ^= static_cast<uint8_t>(1u << pick(8));
        break;
      case 1:  // random byte
        b[pick(b.size())] = static_cast<uint8_t>(rng());
        break;
      case 2: {  // an interesting little-endian integer over 1, 4 or 8 bytes
        const uint64_t v = kInteresting[pick(std::size(kInteresting))];
        const size_t width = std::array<size_t, 3>{1, 4, 8}[pick(3)];
        const size_t at = pick(b.size());
        for (size_t i = 0; i < width && at + i < b.size(); ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
        break;
      }
      case 3:  // truncate
        b.resize(pick(b.size()));
        break;
      case 4: {  // splice: copy a chunk of the file over another place
        const size_t from = pick(b.size()), to = pick(b.size());
        const size_t n = std::min<size_t>(pick(64), std::min(b.size() - from, b.size() - to));
        std::vector<uint8_t> chunk(b.begin() + from, b.begin() + from + n);
        std::copy(chunk.begin(), chunk.end(), b.begin() + to);
        break;
      }
      default: {  // insert or erase a few bytes (shifts everything after)
        const size_t at = pick(b.size());
        if (rng() & 1) {
          b.insert(b.begin() + at, 1 + pick(8), static_cast<uint8_t>(rng()));
        } else {
          b.erase(b.begin() + at, b.begin() + std::min(b.size(), at + 1 + pick(8)));
        }
        break;
      }
    }
  }
}

TEST(GgufMutation, NeverCrashes) {
  const std::vector<std::vector<uint8_t>> seeds = {seed_file(32), seed_file(64)};
  for (const auto& s : seeds) ASSERT_TRUE(File::parse(s, "seed").ok());
  std::mt19937_64 rng(20240531);
  int n_ok = 0, n_failed = 0;
  uint64_t sink = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    std::vector<uint8_t> b = seeds[iter % seeds.size()];
    mutate(b, rng);
    auto f = File::parse(b, "mutated.gguf");
    if (f.ok()) {
      sink += touch(*f);
      ++n_ok;
    } else {
      EXPECT_EQ(f.error().message.rfind("mutated.gguf: ", 0), 0u) << f.error().message;
      ++n_failed;
    }
  }
  // Both outcomes occur: the mutations are neither all harmless nor all fatal.
  EXPECT_GT(n_ok, 100);
  EXPECT_GT(n_failed, 1000);
  RecordProperty("parsed", n_ok);
  RecordProperty("rejected", n_failed);
  EXPECT_NE(sink, 0u);
}

}  // namespace
}  // namespace attnscope::gguf
