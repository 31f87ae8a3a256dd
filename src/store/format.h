// On-disk structures of a run directory: the attention.log header, the record header
// that starts every record of the log, and index.bin. All integers are little-endian;
// the structs are written and read with memcpy, so their layout is the format
// (static_asserts below pin every offset). Diagrams and rules: docs/store-format.md.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace attnscope::store::format {

static_assert(std::endian::native == std::endian::little,
              "the store format is little-endian: a big-endian host would need byte swapping");

// ---- File names inside a run directory ----
inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kManifestTemp = "manifest.json.tmp";  // atomic replace
inline constexpr const char* kLogFile = "attention.log";
inline constexpr const char* kIndexFile = "index.bin";
inline constexpr const char* kIndexTemp = "index.bin.tmp";  // grows during capture
// Every name the store creates: what `overwrite` removes, and all it removes.
inline constexpr const char* kRunFiles[] = {kIndexFile, kIndexTemp, kLogFile, kManifestTemp,
                                            kManifestFile};

// ---- Limits ----
inline constexpr int32_t kMaxBlockRows = 64;                 // rows per attention block
inline constexpr uint64_t kMaxBlockRawBytes = 64ull << 20;   // decoded bytes per block
inline constexpr int64_t kMaxLayerHeads = 1 << 20;            // layers x heads of a run
inline constexpr int64_t kMaxPositions = 1 << 24;             // positions of a run (the engine's context limit)
inline constexpr uint32_t kMaxTokenPayload = 1u << 20;       // a token record's payload
inline constexpr int32_t kMaxLayers = 1 << 16;
inline constexpr int32_t kMaxHeads = 1 << 16;

// ---- attention.log header: 64 bytes at offset 0 ----
inline constexpr char kLogMagic[8] = {'A', 'T', 'T', 'N', 'L', 'O', 'G', '\x1a'};

struct LogHeader {
  char magic[8];                // "ATTNLOG\x1a"
  uint32_t format_version;      // kFormatVersion of the writer
  uint32_t header_size;         // sizeof(LogHeader)
  uint64_t run_uid;             // random; repeated in manifest.json and index.bin
  int32_t n_layers;
  int32_t n_heads;
  uint8_t precision;            // store::Precision
  uint8_t reserved0[3];         // 0
  uint32_t record_header_size;  // sizeof(RecordHeader)
  uint8_t reserved1[16];        // 0
  uint64_t checksum;            // XXH64 (seed 0) of bytes 0..55
};
static_assert(sizeof(LogHeader) == 64);
static_assert(offsetof(LogHeader, format_version) == 8);
static_assert(offsetof(LogHeader, run_uid) == 16);
static_assert(offsetof(LogHeader, n_layers) == 24);
static_assert(offsetof(LogHeader, precision) == 32);
static_assert(offsetof(LogHeader, record_header_size) == 36);
static_assert(offsetof(LogHeader, checksum) == 56);

// ---- Record header: 48 bytes before every record's payload ----
inline constexpr uint32_t kRecordMagic = 0x1a435241;  // bytes "ARC\x1a"

enum class RecordKind : uint8_t {
  kAttention = 1,  // rows row_begin .. row_begin+n_rows-1 of (layer, head), lower triangle
  kToken = 2,      // a generated token (TokenPayload + its text bytes)
};

enum class Codec : uint8_t {
  kRaw = 0,          // payload = the raw values
  kZstd = 1,         // payload = one zstd frame of the raw values
  kZstdShuffle = 2,  // one zstd frame of the raw values with their bytes split into planes
  kPlanes = 3,       // the byte planes apart, each raw or its own zstd frame (codec.h)
};

inline constexpr uint8_t kTokenGenerated = 1;  // RecordHeader::flags of a token record
inline constexpr uint8_t kTokenSpecial = 2;

struct RecordHeader {
  uint32_t magic;             // kRecordMagic
  uint8_t kind;               // RecordKind
  uint8_t dtype;              // store::Precision of the values (token: 0)
  uint8_t codec;              // Codec (token: kRaw)
  uint8_t flags;              // token: kTokenGenerated | kTokenSpecial; attention: 0
  int32_t layer;              // token: -1
  int32_t head;               // token: -1
  int32_t row_begin;          // token: its position in the sequence
  int32_t n_rows;             // token: 0
  uint32_t stored_size;       // payload bytes following this header
  uint32_t raw_size;          // payload bytes after decompression
  uint64_t payload_checksum;  // XXH64 (seed 0) of the stored payload
  uint32_t reserved;          // 0
  uint32_t header_checksum;   // XXH32 (seed 0) of bytes 0..43
};
static_assert(sizeof(RecordHeader) == 48);
static_assert(offsetof(RecordHeader, layer) == 8);
static_assert(offsetof(RecordHeader, stored_size) == 24);
static_assert(offsetof(RecordHeader, payload_checksum) == 32);
static_assert(offsetof(RecordHeader, header_checksum) == 44);

// Payload of a kToken record: this struct, then the token's text bytes.
struct TokenPayload {
  int32_t id;
  uint32_t reserved;  // 0
  int64_t byte_begin;
  int64_t byte_end;
};
static_assert(sizeof(TokenPayload) == 24);

// ---- index.bin: a 64-byte header, then n_entries IndexEntry in log order ----
inline constexpr char kIndexMagic[8] = {'A', 'T', 'T', 'N', 'I', 'D', 'X', '\x1a'};

struct IndexHeader {
  char magic[8];              // "ATTNIDX\x1a"
  uint32_t format_version;
  uint32_t header_size;       // sizeof(IndexHeader)
  uint64_t run_uid;           // = LogHeader::run_uid
  int32_t n_layers;
  int32_t n_heads;
  uint64_t n_entries;
  uint64_t log_size;          // bytes of attention.log when the index was written
  uint64_t entries_checksum;  // XXH64 (seed 0) of the entries
  uint64_t header_checksum;   // XXH64 (seed 0) of bytes 0..55
};
static_assert(sizeof(IndexHeader) == 64);
static_assert(offsetof(IndexHeader, n_entries) == 32);
static_assert(offsetof(IndexHeader, header_checksum) == 56);

struct IndexEntry {  // one attention record
  int32_t layer;
  int32_t head;
  int32_t row_begin;
  int32_t n_rows;
  uint64_t offset;  // of the record header in attention.log
  uint32_t stored_size;
  uint32_t raw_size;
};
static_assert(sizeof(IndexEntry) == 32);
static_assert(offsetof(IndexEntry, offset) == 16);

// ---- Shapes ----
// Values stored for rows [row_begin, row_begin + n_rows): row i keeps keys 0..i.
// Rows per attention block of a delivery whose rows hold n_keys values of `width` bytes
// (the last row's): kMaxBlockRows, fewer when that would pass kMaxBlockRawBytes.
constexpr int32_t block_rows(int64_t n_keys, uint64_t width) {
  const uint64_t row_bytes = static_cast<uint64_t>(n_keys) * width;
  const uint64_t by_bytes = row_bytes == 0 ? 1 : kMaxBlockRawBytes / row_bytes;
  return static_cast<int32_t>(std::min<uint64_t>(kMaxBlockRows, std::max<uint64_t>(1, by_bytes)));
}

constexpr uint64_t triangle_values(int64_t row_begin, int64_t n_rows) {
  return static_cast<uint64_t>(n_rows * (row_begin + 1) + n_rows * (n_rows - 1) / 2);
}

}  // namespace attnscope::store::format
