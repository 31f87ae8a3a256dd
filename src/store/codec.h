// Precision conversion and compression of attention blocks.
//
// A block's raw payload is the lower triangle of its rows, row after row: row i keeps
// keys 0..i, as dtype values (f32: the float bits; f16: IEEE half, round to nearest
// even; u8: round(p * 255), read back as q / 255).
//
// Stored payloads (format::Codec). The encoder writes u8 as one zstd frame (codec 1) and
// f16 / f32 as byte planes (byte b of every value together): blocks of more than 4,096
// values as separate planes (codec 3), the top plane (sign and exponent bits, slowly
// varying) compressed, a lower plane kept raw when a sample of it does not compress (the
// low mantissa bytes of spread-out probabilities are noise: zstd would spend time and
// gain nothing); smaller blocks as one zstd frame of all the planes (codec 2, what
// earlier versions wrote for every block). Anything that zstd does not shrink is stored
// raw (codec 0). Readers decode every codec.
//
//   codec 3: u32 size[width] (little-endian), then each plane's bytes: plane b holds
//            byte b of each of the n = raw_size / width values; size[b] == n: stored
//            raw, size[b] < n: one zstd frame of the n bytes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "attnscope/result.h"
#include "attnscope/store.h"
#include "store/format.h"

namespace attnscope::store {

size_t dtype_size(Precision p);  // 4, 2, 1
bool valid_precision(uint8_t p);

// Writes n values converted to p to dst (n * dtype_size(p) bytes; a packed lower
// triangle is a payload as is). f16 is IEEE half, round to nearest even
// (quant::f32_to_f16_row: the same bits as quant::f32_to_f16, with F16C where present).
void encode_values(Precision p, const float* values, size_t n, uint8_t* dst);

// Writes the lower triangle of one head's rows, converted to p, to dst
// (triangle_values(row_begin, n_rows) * dtype_size(p) bytes).
// rows: (n_rows, stride) row-major; row r holds keys 0..row_begin + r (stride >= that + 1).
void encode_triangle(Precision p, const float* rows, int64_t stride, int32_t row_begin, int32_t n_rows,
                     uint8_t* dst);

// Converts n values of raw (a decoded payload), starting at value index first, to float.
void decode_values(Precision p, const uint8_t* raw, uint64_t first, uint64_t n, float* out);

// zstd level of the store's blocks: level 1 is the fastest that still compresses
// probabilities' exponent bytes well (bench/store_bench.cpp).
inline constexpr int kStoreZstdLevel = 1;

// Compresses raw payloads; holds a zstd context (one per thread that encodes).
class Encoder {
 public:
  explicit Encoder(int level);
  ~Encoder();
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  // Appends the stored form of raw to out and returns its codec.
  Result<format::Codec> encode(Precision p, std::span<const uint8_t> raw, std::vector<uint8_t>* out);

 private:
  Result<size_t> compress(std::span<const uint8_t> in, std::vector<uint8_t>* out);

  void* cctx_;  // ZSTD_CCtx
  int level_;
  std::vector<uint8_t> shuffled_;  // (width, n) the byte planes
  std::vector<uint8_t> probe_;     // a plane sample's zstd frame
};

// Decompresses stored payloads; one per read() call (not thread-safe).
class Decoder {
 public:
  Decoder();
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // raw = the decoded payload (raw_size bytes). Errors name `what` (file and block).
  Status decode(format::Codec codec, Precision p, std::span<const uint8_t> stored,
                uint32_t raw_size, std::vector<uint8_t>* raw, const std::string& what);

 private:
  Status decode_planes(Precision p, std::span<const uint8_t> stored, uint32_t raw_size, std::vector<uint8_t>* raw,
                       const std::string& what);

  void* dctx_;  // ZSTD_DCtx
  std::vector<uint8_t> shuffled_;
};

}  // namespace attnscope::store
