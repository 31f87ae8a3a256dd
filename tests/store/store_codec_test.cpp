// Precision conversion and compression of attention blocks, against exact references.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include <zstd.h>

#include "attnscope/quant.h"
#include "store/codec.h"

namespace attnscope::store {
namespace {

TEST(Codec, HalfEncodingIsBitExact) {
  // encode_values(f16) on the active instruction set against quant::f32_to_f16: a sweep
  // of the whole 32-bit space, then [0, 1] (probabilities) more densely.
  std::vector<float> values;
  for (uint64_t bits = 0; bits <= 0xFFFFFFFFull; bits += 257) values.push_back(std::bit_cast<float>(uint32_t(bits)));
  for (uint32_t bits = 0; bits <= 0x3F800000u; bits += 61) values.push_back(std::bit_cast<float>(bits));
  for (float f : {0.0f, -0.0f, 0x1p-25f, 0x1.8p-24f, 0x1p-14f, 0x1.ffcp-15f, 0x1.002p0f, 0x1.006p0f,
                  65504.0f, 65519.0f, 65520.0f, 1.0f, 0.5f}) {
    values.push_back(f);
  }
  std::vector<uint8_t> raw(2 + 2 * values.size(), 0x5A);  // written between two sentinels
  encode_values(Precision::kF16, values.data(), values.size(), raw.data() + 1);
  EXPECT_EQ(raw[0], 0x5A);
  EXPECT_EQ(raw.back(), 0x5A);
  for (size_t i = 0; i < values.size(); ++i) {
    uint16_t h;
    std::memcpy(&h, raw.data() + 1 + 2 * i, 2);
    ASSERT_EQ(h, quant::f32_to_f16(values[i])) << std::hex << "bits 0x" << std::bit_cast<uint32_t>(values[i]);
  }
}

std::vector<float> random_rows(int32_t row_begin, int32_t n_rows, int64_t stride, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> rows(static_cast<size_t>(n_rows * stride), -1.0f);  // (n_rows, stride)
  for (int32_t r = 0; r < n_rows; ++r) {
    for (int32_t k = 0; k <= row_begin + r; ++k) rows[static_cast<size_t>(r * stride + k)] = u(rng) * u(rng);
  }
  return rows;
}

TEST(Codec, EncodeDecodeWithinPrecisionBounds) {
  const int32_t row_begin = 37, n_rows = 11;
  const int64_t stride = row_begin + n_rows + 5;
  const auto rows = random_rows(row_begin, n_rows, stride, 1);
  for (Precision p : {Precision::kF32, Precision::kF16, Precision::kU8}) {
    SCOPED_TRACE(precision_name(p));
    // Written between two sentinels: exactly the triangle's bytes.
    std::vector<uint8_t> raw(2 + format::triangle_values(row_begin, n_rows) * dtype_size(p), 0xAA);
    encode_triangle(p, rows.data(), stride, row_begin, n_rows, raw.data() + 1);
    ASSERT_EQ(raw.front(), 0xAA);
    ASSERT_EQ(raw.back(), 0xAA);
    Encoder enc(1);
    std::vector<uint8_t> stored;
    const std::span<const uint8_t> payload(raw.data() + 1, raw.size() - 2);
    auto codec = enc.encode(p, payload, &stored);
    ASSERT_TRUE(codec.ok());
    Decoder dec;
    std::vector<uint8_t> back;
    ASSERT_TRUE(dec.decode(*codec, p, stored, static_cast<uint32_t>(payload.size()), &back, "t").ok());
    ASSERT_TRUE(std::equal(back.begin(), back.end(), payload.begin(), payload.end()));
    uint64_t at = 0;
    for (int32_t r = 0; r < n_rows; ++r) {
      const int32_t n = row_begin + r + 1;
      std::vector<float> out(static_cast<size_t>(n));
      decode_values(p, back.data(), at, static_cast<uint64_t>(n), out.data());
      for (int32_t k = 0; k < n; ++k) {
        const float want = rows[static_cast<size_t>(r * stride + k)];
        const double err = std::fabs(static_cast<double>(out[static_cast<size_t>(k)]) - want);
        const double bound = p == Precision::kF32   ? 0.0
                             : p == Precision::kF16 ? std::max(std::ldexp(double{want}, -11), 0x1p-25)
                                                    : 1.0 / 510.0 + 1e-7;
        ASSERT_LE(err, bound) << "row " << r << " key " << k;
      }
      at += static_cast<uint64_t>(n);
    }
  }
}

TEST(Codec, U8RoundsToNearestAndClamps) {
  std::vector<float> row = {0.0f, 1.0f, 0.5f / 255.0f, 1.5f / 255.0f, -0.25f, 1.75f, std::nanf("")};
  std::vector<uint8_t> raw(8, 0xAA);
  encode_triangle(Precision::kU8, row.data(), 7, 6, 1, raw.data());
  ASSERT_EQ(raw[7], 0xAA);  // 7 bytes written, no more
  EXPECT_EQ(raw[0], 0);
  EXPECT_EQ(raw[1], 255);
  EXPECT_EQ(raw[2], 1);  // exact half rounds up (error exactly 1/510)
  EXPECT_EQ(raw[3], 2);
  EXPECT_EQ(raw[4], 0);
  EXPECT_EQ(raw[5], 255);
  EXPECT_EQ(raw[6], 0);
}

TEST(Codec, IncompressibleDataIsStoredRaw) {
  std::mt19937 rng(3);
  std::vector<uint8_t> raw(1000);
  for (auto& b : raw) b = static_cast<uint8_t>(rng());
  Encoder enc(1);
  std::vector<uint8_t> stored;
  auto codec = enc.encode(Precision::kU8, raw, &stored);
  ASSERT_TRUE(codec.ok());
  EXPECT_EQ(*codec, format::Codec::kRaw);
  EXPECT_EQ(stored, raw);
}

TEST(Codec, GarbageIsAnErrorNotACrash) {
  Decoder dec;
  std::vector<uint8_t> out;
  std::mt19937 rng(5);
  for (int i = 0; i < 500; ++i) {
    std::vector<uint8_t> junk(rng() % 64);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    if (junk.size() >= 4 && i % 2 == 0) {  // a zstd magic number, to get past the first check
      junk[0] = 0x28, junk[1] = 0xB5, junk[2] = 0x2F, junk[3] = 0xFD;
    }
    const auto codec = static_cast<format::Codec>(1 + i % 3);
    if (codec == format::Codec::kPlanes && junk.size() >= 8 && i % 2 == 1) {
      // Plane sizes that add up, so that the frames themselves are garbage.
      const uint32_t a = static_cast<uint32_t>(junk.size() - 8) / 2, b = static_cast<uint32_t>(junk.size() - 8) - a;
      std::memcpy(junk.data(), &a, 4);
      std::memcpy(junk.data() + 4, &b, 4);
    }
    auto st = dec.decode(codec, Precision::kF16, junk, 128, &out, "blk");
    EXPECT_FALSE(st.ok());
  }
  auto st = dec.decode(format::Codec::kRaw, Precision::kU8, std::vector<uint8_t>(3), 4, &out, "blk");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "blk: raw payload of 3 bytes, expected 4");
  st = dec.decode(static_cast<format::Codec>(9), Precision::kU8, std::vector<uint8_t>(3), 3, &out, "blk");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "blk: unknown codec 9, expected 0, 1, 2 or 3");
  // Byte planes whose sizes do not add up, or that claim more than a plane holds.
  std::vector<uint8_t> planes(4 + 4 + 10, 0);
  const uint32_t five = 5, six = 6, nine = 9;
  std::memcpy(planes.data(), &five, 4);
  std::memcpy(planes.data() + 4, &six, 4);
  st = dec.decode(format::Codec::kPlanes, Precision::kF16, planes, 20, &out, "blk");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "blk: byte planes add up to 19 bytes, the payload has 18");
  std::memcpy(planes.data() + 4, &nine, 4);
  std::memcpy(planes.data(), &nine, 4);
  st = dec.decode(format::Codec::kPlanes, Precision::kF16, planes, 16, &out, "blk");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "blk: byte plane 0 stored in 9 bytes, more than its 8");
  st = dec.decode(format::Codec::kPlanes, Precision::kU8, planes, 16, &out, "blk");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "blk: byte planes (codec 3) of 16 bytes of 1-byte values");
}

// f16 values of spread-out probabilities: the low (mantissa) plane is noise and stored
// raw, the exponent plane compressed; near-uniform rows compress in both planes. Either
// way the payload decodes to the same bytes, and its layout is the documented one.
TEST(Codec, BytePlanesKeepNoiseRawAndCompressTheRest) {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  const size_t n = 20000;
  for (const bool spread : {true, false}) {
    SCOPED_TRACE(spread ? "spread" : "near-uniform");
    std::vector<float> values(n);
    for (auto& v : values) v = spread ? u(rng) * u(rng) * 0.01f : 0.001f * (1.0f + 0.0001f * u(rng));
    std::vector<uint8_t> raw(n * 2);
    encode_values(Precision::kF16, values.data(), n, raw.data());
    Encoder enc(1);
    std::vector<uint8_t> stored = {0x11};  // appended after what is there
    auto codec = enc.encode(Precision::kF16, raw, &stored);
    ASSERT_TRUE(codec.ok());
    ASSERT_EQ(*codec, format::Codec::kPlanes);
    ASSERT_EQ(stored[0], 0x11);
    uint32_t size[2];
    std::memcpy(size, stored.data() + 1, 8);
    ASSERT_EQ(stored.size(), 1 + 8 + size[0] + size[1]);
    EXPECT_LT(size[1], n);  // the exponent plane shrinks
    if (spread) {
      ASSERT_EQ(size[0], n);  // raw: byte 0 of every value, in order
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(stored[9 + i], raw[2 * i]) << i;
    } else {
      EXPECT_LT(size[0], n);
    }
    Decoder dec;
    std::vector<uint8_t> back;
    const std::span<const uint8_t> payload(stored.data() + 1, stored.size() - 1);
    ASSERT_TRUE(dec.decode(*codec, Precision::kF16, payload, static_cast<uint32_t>(raw.size()), &back, "t").ok());
    EXPECT_EQ(back, raw);
    // A block of at most 4,096 values (a decoded row) is one frame of both planes.
    std::vector<uint8_t> small;
    auto small_codec = enc.encode(Precision::kF16, std::span<const uint8_t>(raw).first(2 * 4096), &small);
    ASSERT_TRUE(small_codec.ok());
    EXPECT_EQ(*small_codec, format::Codec::kZstdShuffle);
    ASSERT_TRUE(dec.decode(*small_codec, Precision::kF16, small, 2 * 4096, &back, "t").ok());
    EXPECT_TRUE(std::equal(back.begin(), back.end(), raw.begin()));
  }
}

// Runs written before the byte planes (codec 2: one zstd frame of all the planes; codec
// 1: one frame of the values) still read back.
TEST(Codec, EarlierCodecsStillDecode) {
  std::mt19937 rng(4);
  std::vector<uint8_t> raw(2 * 3000);
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<uint8_t>(i % 2 ? 0x20 + rng() % 4 : rng());
  std::vector<uint8_t> planes(raw.size());
  for (size_t i = 0; i < raw.size() / 2; ++i) {
    planes[i] = raw[2 * i];
    planes[raw.size() / 2 + i] = raw[2 * i + 1];
  }
  for (const auto& [codec, input] : {std::pair{format::Codec::kZstdShuffle, planes}, std::pair{format::Codec::kZstd, raw}}) {
    std::vector<uint8_t> frame(ZSTD_compressBound(input.size()));
    frame.resize(ZSTD_compress(frame.data(), frame.size(), input.data(), input.size(), 3));
    Decoder dec;
    std::vector<uint8_t> back;
    ASSERT_TRUE(dec.decode(codec, Precision::kF16, frame, static_cast<uint32_t>(raw.size()), &back, "t").ok());
    EXPECT_EQ(back, raw) << static_cast<int>(codec);
  }
}

}  // namespace
}  // namespace attnscope::store
