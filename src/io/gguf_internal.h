// Internals shared by the GGUF reader and writer (not part of the public API).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "attnscope/gguf.h"
#include "io/byte_reader.h"

namespace attnscope::gguf::detail {

// A plain array has depth 1, an array of arrays depth 2, ... Deeper files are rejected,
// which also bounds the parser's recursion.
inline constexpr int kMaxArrayDepth = 8;

// Smallest encodings, used to reject counts that cannot fit in the bytes left.
inline constexpr uint64_t kMinKvBytes = 8 + 4 + 1;              // key length, type, 1-byte value
inline constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // name len, n_dims, ne[0], type, offset

bool is_valid_type(uint32_t type);
// Bytes taken by the smallest value of `type` (an empty string, an empty array).
uint64_t min_encoded_size(ValueType type);
// The fixed size of a scalar numeric/bool type; 0 for string and array.
uint64_t scalar_size(ValueType type);
bool is_integer(ValueType type);
bool is_signed_integer(ValueType type);

// "string", "array of uint32", "array of array of string", ...
std::string describe(const Value& value);

// Cap on the number of array elements in one file's metadata. A Value takes ~56 bytes
// in memory against as little as 1 byte in the file; the cap bounds that blow-up
// (~1 GB) while leaving 20x headroom over the largest real vocabularies (~800k values).
inline constexpr uint64_t kMaxMetadataValues = uint64_t{1} << 24;

// Reads one value of `type` at the reader's position. `what` names it in errors
// (e.g. "metadata key 'general.name'"); `depth` is the array nesting of the value
// being read (0 at top level); `values_left` is the remaining kMaxMetadataValues budget.
Result<Value> read_value(io::ByteReader& reader, ValueType type, std::string_view what, int depth,
                         uint64_t& values_left);

// Largest power of two <= 2^31 check for general.alignment.
inline bool is_power_of_two(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

}  // namespace attnscope::gguf::detail
