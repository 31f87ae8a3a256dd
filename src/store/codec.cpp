#include "store/codec.h"

#include <zstd.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <cmath>
#include <cstring>

#include "attnscope/quant.h"

namespace attnscope::store {

using format::Codec;

size_t dtype_size(Precision p) {
  switch (p) {
    case Precision::kF32: return 4;
    case Precision::kF16: return 2;
    case Precision::kU8: return 1;
  }
  return 0;
}

bool valid_precision(uint8_t p) { return p <= static_cast<uint8_t>(Precision::kU8); }

namespace {

// f16 -> f32 for every half (256 KiB, built once).
const float* f16_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t h = 0; h < 65536; ++h) t[h] = quant::f16_to_f32(static_cast<uint16_t>(h));
    return t;
  }();
  return table.data();
}

uint8_t to_u8(float p) {
  if (!(p > 0.0f)) return 0;  // also NaN
  if (p >= 1.0f) return 255;
  return static_cast<uint8_t>(std::floor(static_cast<double>(p) * 255.0 + 0.5));
}

// Byte planes: value i's byte b goes to dst[b * n + i].
void shuffle(const uint8_t* src, size_t n, size_t width, uint8_t* dst) {
#if defined(__SSE2__)
  if (width == 2) {  // f16, the default: 16 values per step (SSE2 is part of x86-64)
    const __m128i low = _mm_set1_epi16(0x00FF);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i));
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i + 16));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                       _mm_packus_epi16(_mm_and_si128(a, low), _mm_and_si128(b, low)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + n + i),
                       _mm_packus_epi16(_mm_srli_epi16(a, 8), _mm_srli_epi16(b, 8)));
    }
    for (; i < n; ++i) {
      dst[i] = src[2 * i];
      dst[n + i] = src[2 * i + 1];
    }
    return;
  }
#endif
  for (size_t i = 0; i < n; ++i) {
    for (size_t b = 0; b < width; ++b) dst[b * n + i] = src[i * width + b];
  }
}
void unshuffle(const uint8_t* src, size_t n, size_t width, uint8_t* dst) {
  for (size_t i = 0; i < n; ++i) {
    for (size_t b = 0; b < width; ++b) dst[i * width + b] = src[b * n + i];
  }
}

}  // namespace

void encode_values(Precision p, const float* values, size_t n, uint8_t* dst) {
  switch (p) {
    case Precision::kF32:
      std::memcpy(dst, values, n * 4);
      break;
    case Precision::kF16:
      quant::f32_to_f16_row(values, static_cast<int64_t>(n), dst);
      break;
    case Precision::kU8:
      for (size_t k = 0; k < n; ++k) dst[k] = to_u8(values[k]);
      break;
  }
}

void encode_triangle(Precision p, const float* rows, int64_t stride, int32_t row_begin, int32_t n_rows,
                     uint8_t* dst) {
  for (int32_t r = 0; r < n_rows; ++r) {
    const auto n = static_cast<size_t>(int64_t{row_begin} + r + 1);  // row r: keys 0..row_begin + r
    encode_values(p, rows + r * stride, n, dst);
    dst += n * dtype_size(p);
  }
}

void decode_values(Precision p, const uint8_t* raw, uint64_t first, uint64_t n, float* out) {
  switch (p) {
    case Precision::kF32:
      std::memcpy(out, raw + first * 4, n * 4);
      break;
    case Precision::kF16: {
      const float* table = f16_table();
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, raw + (first + i) * 2, 2);
        out[i] = table[h];
      }
      break;
    }
    case Precision::kU8:
      for (uint64_t i = 0; i < n; ++i) out[i] = static_cast<float>(raw[first + i]) / 255.0f;
      break;
  }
}

// ---- Encoder ----
Encoder::Encoder(int level) : cctx_(ZSTD_createCCtx()), level_(level) {}
Encoder::~Encoder() { ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(cctx_)); }

// Appends one zstd frame of `in` to out; returns its size.
Result<size_t> Encoder::compress(std::span<const uint8_t> in, std::vector<uint8_t>* out) {
  const size_t at = out->size();
  out->resize(at + ZSTD_compressBound(in.size()));
  const size_t n = ZSTD_compressCCtx(static_cast<ZSTD_CCtx*>(cctx_), out->data() + at, out->size() - at, in.data(),
                                     in.size(), level_);
  if (ZSTD_isError(n)) {
    out->resize(at);
    return make_error("zstd compression failed: {}", ZSTD_getErrorName(n));
  }
  out->resize(at + n);
  return n;
}

// A plane whose first kProbeBytes do not shrink by a tenth is stored raw: the low
// mantissa bytes of spread-out probabilities are noise, and compressing them cost about
// a third of the writer's time for nothing (bench/store_bench.cpp).
constexpr size_t kProbeBytes = 4096;

Result<Codec> Encoder::encode(Precision p, std::span<const uint8_t> raw, std::vector<uint8_t>* out) {
  const size_t width = dtype_size(p);
  const size_t at = out->size();
  const auto store_raw = [&] {
    out->resize(at);
    out->insert(out->end(), raw.begin(), raw.end());
    return Codec::kRaw;
  };
  if (width == 1) {
    ATTN_ASSIGN_OR_RETURN(const size_t n, compress(raw, out));
    return n >= raw.size() ? store_raw() : Codec::kZstd;
  }
  const size_t n = raw.size() / width;
  shuffled_.resize(raw.size());
  shuffle(raw.data(), n, width, shuffled_.data());
  if (n <= kProbeBytes) {
    // A small block (a decoded token's row): one frame of all the planes (codec 2), as
    // a zstd call's fixed cost would outweigh what keeping a plane raw saves.
    ATTN_ASSIGN_OR_RETURN(const size_t size, compress(shuffled_, out));
    return size >= raw.size() ? store_raw() : Codec::kZstdShuffle;
  }
  // Byte planes: a header of plane sizes, then the planes.
  out->resize(at + 4 * width);
  for (size_t b = 0; b < width; ++b) {
    const std::span<const uint8_t> plane(shuffled_.data() + b * n, n);
    size_t size = n;  // raw unless zstd shrinks it
    bool try_zstd = b + 1 == width;  // the top byte: sign and exponent bits
    if (!try_zstd) {
      ATTN_ASSIGN_OR_RETURN(const size_t probe, compress(plane.first(kProbeBytes), &probe_));
      probe_.clear();
      try_zstd = probe * 10 < kProbeBytes * 9;
    }
    const size_t plane_at = out->size();
    if (try_zstd) {
      ATTN_ASSIGN_OR_RETURN(size, compress(plane, out));
      if (size >= n) {
        out->resize(plane_at);
        size = n;
      }
    }
    if (size == n) out->insert(out->end(), plane.begin(), plane.end());
    const auto s32 = static_cast<uint32_t>(size);
    std::memcpy(out->data() + at + 4 * b, &s32, 4);  // little-endian hosts only (format.h)
  }
  if (out->size() - at >= raw.size()) return store_raw();
  return Codec::kPlanes;
}

// ---- Decoder ----
Decoder::Decoder() : dctx_(ZSTD_createDCtx()) {}
Decoder::~Decoder() { ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(dctx_)); }

Status Decoder::decode(Codec codec, Precision p, std::span<const uint8_t> stored,
                       uint32_t raw_size, std::vector<uint8_t>* raw, const std::string& what) {
  // Every check that can fail comes before the allocation of raw_size bytes.
  if (codec == Codec::kRaw) {
    if (stored.size() != raw_size) {
      return make_error("{}: raw payload of {} bytes, expected {}", what, stored.size(), raw_size);
    }
    raw->resize(raw_size);
    std::memcpy(raw->data(), stored.data(), raw_size);
    return ok_status();
  }
  if (codec == Codec::kPlanes) return decode_planes(p, stored, raw_size, raw, what);
  if (codec != Codec::kZstd && codec != Codec::kZstdShuffle) {
    return make_error("{}: unknown codec {}, expected 0, 1, 2 or 3", what, static_cast<int>(codec));
  }
  const unsigned long long content = ZSTD_getFrameContentSize(stored.data(), stored.size());
  if (content != ZSTD_CONTENTSIZE_UNKNOWN && content != raw_size) {
    return make_error("{}: compressed frame holds {} bytes, expected {}", what, content, raw_size);
  }
  raw->resize(raw_size);
  const size_t width = dtype_size(p);
  const bool shuffled = codec == Codec::kZstdShuffle && width > 1;
  if (shuffled) shuffled_.resize(raw_size);
  uint8_t* dst = shuffled ? shuffled_.data() : raw->data();
  const size_t n = ZSTD_decompressDCtx(static_cast<ZSTD_DCtx*>(dctx_), dst, raw_size,
                                       stored.data(), stored.size());
  if (ZSTD_isError(n)) {
    return make_error("{}: zstd decompression failed: {}", what, ZSTD_getErrorName(n));
  }
  if (n != raw_size) {
    return make_error("{}: decompressed to {} bytes, expected {}", what, n, raw_size);
  }
  if (shuffled) unshuffle(shuffled_.data(), raw_size / width, width, raw->data());
  return ok_status();
}

Status Decoder::decode_planes(Precision p, std::span<const uint8_t> stored, uint32_t raw_size,
                              std::vector<uint8_t>* raw, const std::string& what) {
  const size_t width = dtype_size(p);
  if (width < 2 || raw_size % width != 0) {
    return make_error("{}: byte planes (codec 3) of {} bytes of {}-byte values", what, raw_size, width);
  }
  const size_t n = raw_size / width;
  const size_t header = 4 * width;
  if (stored.size() < header) {
    return make_error("{}: byte-plane payload of {} bytes, shorter than its {}-byte header", what, stored.size(),
                      header);
  }
  uint32_t sizes[4];
  uint64_t total = header;
  for (size_t b = 0; b < width; ++b) {
    std::memcpy(&sizes[b], stored.data() + 4 * b, 4);
    if (sizes[b] > n) return make_error("{}: byte plane {} stored in {} bytes, more than its {}", what, b, sizes[b], n);
    total += sizes[b];
  }
  if (total != stored.size()) {
    return make_error("{}: byte planes add up to {} bytes, the payload has {}", what, total, stored.size());
  }
  raw->resize(raw_size);
  shuffled_.resize(raw_size);
  const uint8_t* src = stored.data() + header;
  for (size_t b = 0; b < width; ++b) {
    uint8_t* dst = shuffled_.data() + b * n;
    if (sizes[b] == n) {
      std::memcpy(dst, src, n);
    } else {
      const size_t got = ZSTD_decompressDCtx(static_cast<ZSTD_DCtx*>(dctx_), dst, n, src, sizes[b]);
      if (ZSTD_isError(got)) {
        return make_error("{}: zstd decompression of byte plane {} failed: {}", what, b, ZSTD_getErrorName(got));
      }
      if (got != n) return make_error("{}: byte plane {} decompressed to {} bytes, expected {}", what, b, got, n);
    }
    src += sizes[b];
  }
  unshuffle(shuffled_.data(), n, width, raw->data());
  return ok_status();
}

}  // namespace attnscope::store
