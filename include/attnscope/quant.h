// Compute kernels for ggml weight types. Each supported type has a packed block
// struct (src/quant/blocks.h, with static_asserts on sizes), a scalar reference
// dequantizer that is bit-exact with ggml, a dot product against f32 activations and,
// for the quantized formats, a dot product against activations quantized to 8 bits
// (ActBlock or ActBlockK, as llama.cpp does). Each kernel has a scalar reference; the
// AVX2 and AVX-512 variants are chosen at run time (cpu_isa()) and tests hold them to it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "attnscope/ggml_type.h"
#include "attnscope/result.h"

namespace attnscope::quant {

// ---- Instruction sets ------------------------------------------------------------------
enum class Isa : int {
  kScalar = 0,  // portable C++: the reference every other path is tested against
  kAvx2 = 1,    // AVX2 + FMA + F16C
  kAvx512 = 2,  // AVX-512 F/BW/VL + VNNI (int8 dot products with vpdpbusd)
};

const char* isa_name(Isa isa);
// The best instruction set this CPU supports.
Isa detected_isa();
// The instruction set kernels() uses: detected_isa(), unless the environment variable
// ATTNSCOPE_CPU (scalar | avx2 | avx512) asks for a lower one. Read once.
Isa cpu_isa();
// Parses an ATTNSCOPE_CPU value; an error names the accepted values, or says that this
// CPU lacks the instruction set asked for.
Result<Isa> parse_isa(const std::string& name);

// ---- Activations quantized to 8 bits --------------------------------------------------
// Two formats, x[i] ~= d * q[i] with |q| <= 127 (q = round-to-nearest-even of
// x[i] * 127 / max|x| over the block) in both; which one a weight type reads is
// Kernels::act. Non-finite inputs give d = NaN (so results are NaN, never garbage).
//
// 32 consecutive activations, plus the sums of q over each half (the formats with an
// offset or a min need them): the legacy 32-element formats.
struct ActBlock {
  float d;
  int16_t sum[2];  // sum of q[0..15], q[16..31]
  int8_t q[32];
};
static_assert(sizeof(ActBlock) == 40);

// 256 consecutive activations with one scale, plus the sums of q over each 16: the
// format of the K-quants Q2_K .. Q6_K and IQ4_XS (as llama.cpp's Q8_K). One scale per
// super-block lets those kernels add the products of all 256 values in integers, with
// the weights' sub-block scales applied as integer multipliers, and convert to float
// once.
// Aligned so that the 64-byte quarters of q can be read with aligned loads.
struct alignas(64) ActBlockK {
  int8_t q[256];
  int16_t sum[16];  // sum of q[16j .. 16j + 15]
  float d;
};
static_assert(sizeof(ActBlockK) == 320);

// 32 consecutive activations rounded to bfloat16 (f32_to_bf16): what BF16 weights are
// multiplied with, as llama.cpp does (the products of two bf16 values are exact in
// float; AVX-512 BF16's vdpbf16ps adds them in pairs).
struct ActBF16 {
  uint16_t q[32];
};
static_assert(sizeof(ActBF16) == 64);

enum class ActFormat : uint8_t {
  kNone = 0,      // no int8 kernel: the type takes f32 activations
  kBlock32 = 1,   // ActBlock
  kBlock256 = 2,  // ActBlockK
  kBF16 = 3,      // ActBF16
};

// Quantizes n_tokens rows of n_cols activations into (n_tokens, n_cols / 32) ActBlocks,
// or (n_tokens, n_cols / 256) ActBlockKs; n_cols must be a multiple of the block size.
// Every instruction set gives the same bits.
void quantize_activations(const float* x, int64_t n_tokens, int64_t n_cols, ActBlock* out);
void quantize_activations(const float* x, int64_t n_tokens, int64_t n_cols, ActBlockK* out);
void quantize_activations(const float* x, int64_t n_tokens, int64_t n_cols, ActBF16* out);

struct Kernels {
  GgmlType type;
  // Dequantizes n elements (a whole number of blocks) starting at src, bit-exactly
  // as ggml does. src needs no alignment; a trailing partial block is ignored.
  void (*dequantize)(const void* src, float* dst, int64_t n);
  // sum_i dequant(row)[i] * x[i] over n elements (a whole number of blocks),
  // accumulated in float in a fixed order (src/quant/kernels_impl.h): deterministic,
  // and the same bits as matmul_rows gives for that row and token.
  float (*dot)(const void* row, const float* x, int64_t n);
  // The activation format dot_q8 reads; kNone (and null dot_q8) for types that only
  // have the f32 path. Neither depends on the instruction set.
  ActFormat act;
  // sum_i dequant(row)[i] * x[i] with x quantized: n / 32 ActBlocks, n / 256 ActBlockKs
  // or n / 32 ActBF16s (per `act`). Integer products, then float (BF16: exact float
  // products, float sums).
  float (*dot_q8)(const void* row, const void* x, int64_t n);
  // dot_q8 of one row with 4 tokens at once (token t's blocks start x_stride blocks
  // after token t - 1's), sharing the unpacking of the weights; out[t] has the same
  // bits as dot_q8 would give.
  void (*dot_q8_x4)(const void* row, const void* x, int64_t x_stride, int64_t n, float* out);
};

// Kernels of cpu_isa() for a type the engine can compute with; nullptr otherwise
// (unknown ids, integer types, and quant formats not implemented yet).
const Kernels* kernels(uint32_t type_id);
// The same for an explicit instruction set (tests and benchmarks); nullptr also when
// this CPU cannot run `isa`.
const Kernels* kernels(uint32_t type_id, Isa isa);
// Whether the CPU has AVX-512 BF16 (vdpbf16ps), which the AVX-512 kernels use for BF16
// weights (otherwise they widen bf16 to float).
bool cpu_has_avx512_bf16();

// Dense f32 vector kernels of cpu_isa() (attention scores and value sums).
float dot_f32(const float* a, const float* b, int64_t n);
void axpy_f32(float a, const float* x, float* y, int64_t n);  // y += a * x

// gate[i] = silu(gate[i]) * up[i] (the SwiGLU feed-forward's activation).
void swiglu(float* gate, const float* up, int64_t n);

// y = x / sqrt(mean(x^2) + eps) * w over n elements (y may alias x); the mean of the
// squares is summed in double.
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* y);
// Rotates the first n_rot values of x (one head) by the angles cos, sin (n_rot / 2 each):
// pairs (2i, 2i + 1), or (i, i + n_rot / 2) when neox. The same bits on every
// instruction set.
void rope_rotate(float* x, int64_t n_rot, bool neox, const float* cos, const float* sin);

// Attention rows of n_q queries that read the same keys (the query heads of one KV head
// at one position); query i's vector or probabilities at q / p + i * q_stride / p_stride,
// its scores or output at out + i * out_stride. Each key and value vector is loaded once
// for several queries; every query's result has the same bits as with n_q = 1.
//   scores: out_i (n_keys) = scale * q_i · k_j, keys k_j at k + j * k_stride (dim each);
//   values: out_i (dim) += sum_j p_i[j] * v_j, values v_j at v + j * v_stride, added in
//           order of j (so a sum split into consecutive ranges of keys, one call each,
//           gives the same bits).
void attention_scores_heads(const float* q, int64_t q_stride, int64_t n_q, const float* k, int64_t k_stride,
                            int64_t n_keys, int64_t dim, float scale, float* out, int64_t out_stride);
void attention_values_heads(const float* p, int64_t p_stride, int64_t n_q, const float* v, int64_t v_stride,
                            int64_t n_keys, int64_t dim, float* out, int64_t out_stride);
// The largest of x[0 .. n) (-inf for n = 0); for rows without NaN.
float max_value(const float* x, int64_t n);
// x[i] = e^(x[i] - max) for x[i] <= max; returns the sum (softmax numerator and denominator).
float exp_shifted(float* x, int64_t n, float max);

// A 2-D weight as GGUF stores it: n_rows rows of n_cols elements (ne[0] = n_cols).
struct Matrix {
  uint32_t type = 0;           // ggml type id; must have kernels()
  const void* data = nullptr;  // (n_rows, row_bytes)
  int64_t n_cols = 0;          // input features
  int64_t n_rows = 0;          // output features
  uint64_t row_bytes = 0;
  // The same rows repacked for the int8 GEMM (pack_panels), or null. When set,
  // matmul_rows_q8 reads it instead of `data`; the f32 path always reads `data`.
  const void* packed = nullptr;
};

// ---- Weights packed for the int8 GEMM ---------------------------------------------------
// Q8_0 rows repacked 16 at a time ("panels") so that one vpdpbusd multiplies 16 rows by
// the same 4 activations, and a tile of rows x tokens stays in registers. A panel holds,
// for its nb = n_cols / 32 blocks (f16 scales first, so that the quants are 64-aligned):
//
//   scales  [nb][16 rows]            f16, the rows' Q8_0 block scales
//   quants  [nb][8 groups][16 rows][4]  byte = q ^ 0x80 (q + 128 as unsigned), group g
//                                       holding the row's block values 4g .. 4g + 3
//
// so a panel is nb * 544 bytes, as many as the 16 rows in Q8_0. Rows past n_rows in
// the last panel are zero (scale 0, byte 0x80). Every output is computed as
//   acc = 0; for each block b: acc = fma(float(sum_i q[i] * xq[i]), d_w(b) * d_x(b), acc)
// (the integer sum is exact), on every instruction set and whatever the batch or row
// range: the scalar reference and the SIMD kernels give the same bits.
inline constexpr int64_t kPanelRows = 16;
inline constexpr int64_t kPanelBlockBytes = 2 * kPanelRows + 32 * kPanelRows;  // 544

// Whether pack_panels supports w (Q8_0, n_cols a multiple of 32).
bool packable(const Matrix& w);
int64_t panel_count(const Matrix& w);  // ceil(n_rows / 16)
uint64_t packed_bytes(const Matrix& w);  // panel_count * (n_cols / 32) * 544
// Writes panels [panel_begin, panel_end) of w's packed form into `packed` (the buffer of
// the whole matrix, packed_bytes(w) long). Panels are independent: threads may fill
// disjoint ranges at once.
void pack_panels(const Matrix& w, int64_t panel_begin, int64_t panel_end, void* packed);
// Row r (< n_rows) of w.packed as n_cols floats: the same values as dequantizing the Q8_0
// row (q * d), so that a tied token embedding can be looked up without its mapped rows.
void dequantize_packed_row(const Matrix& w, int64_t r, float* out);

// y[t, r] = dot(w row r, x[t, :]) for t < n_tokens and r in [row_begin, row_end).
// x: (n_tokens, n_cols) row-major; y: (n_tokens, n_rows) row-major.
// Single-threaded; callers split [0, n_rows) across threads. Rows outside the range
// are not touched. Uses a thread_local buffer of n_cols floats for multi-token input.
// Preconditions (checked by callers, e.g. with ggml_row_bytes): kernels(w.type) is
// non-null and n_cols is a whole number of blocks; otherwise nothing is written.
void matmul_rows(const Matrix& w, const float* x, int64_t n_tokens, float* y,
                 int64_t row_begin, int64_t row_end);

// A batch of activations quantized for the int8 kernels, in the formats its weights
// read (null where no weight reads that format).
struct QuantizedActs {
  const ActBlock* b32 = nullptr;    // (n_tokens, n_cols / 32)
  const ActBlockK* b256 = nullptr;  // (n_tokens, n_cols / 256)
  const ActBF16* bf16 = nullptr;    // (n_tokens, n_cols / 32)
};

// The same with quantized activations, in the format kernels(w.type)->act. Requires
// kernels(w.type)->dot_q8 and that format in xq (otherwise nothing is written). With
// w.packed set, runs the panel GEMM (register tiles of panels x tokens; ranges that
// start or end inside a panel are computed whole and only the rows in range stored);
// otherwise walks rows in tiles so that a tile of weights is reused from cache for every
// token. Either way y[t, r] does not depend on n_tokens or the row range.
void matmul_rows_q8(const Matrix& w, const QuantizedActs& xq, int64_t n_tokens, float* y,
                    int64_t row_begin, int64_t row_end);

// Fills n_elements (whole blocks) of random, well-formed weights of a computable type:
// N(0, scale) floats, or random quants with sane block scales. For benchmark models.
Status fill_random(uint32_t type_id, void* dst, int64_t n_elements, uint64_t seed, float scale);

// IEEE half and bfloat16 conversions (exact, as ggml does them).
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even
// n values of x as halves at out (any alignment), the same bits as f32_to_f16 on every
// instruction set (F16C where present): the store's f16 encoding.
void f32_to_f16_row(const float* x, int64_t n, void* out);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);  // round to nearest even; NaN stays a (quiet) NaN

}  // namespace attnscope::quant
