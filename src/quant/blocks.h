// Packed block formats of the ggml quantized types, laid out byte for byte as ggml
// stores them (ggml-common.h). Every struct is 2-byte aligned (f16 fields), has no
// padding (static_asserts), and is read little-endian. The kernels copy each block
// out of the row with memcpy, so a row pointer needs no particular alignment.
//
// Notation in the diagrams: `d`, `m`, `dmin` are IEEE half floats; q[i] is the
// quant of element i of the block; "lo"/"hi" are the low/high nibble of a byte.
// Byte offsets are in the left column.
#pragma once

#include <bit>
#include <cstdint>

namespace attnscope::quant {

static_assert(std::endian::native == std::endian::little,
              "block structs are read in place: little-endian hosts only");

inline constexpr int kQK = 32;     // elements per legacy / IQ4_NL block
inline constexpr int kQK_K = 256;  // elements per k-quant super-block

// ---- Q8_0: 32 elements, 34 bytes (8.5 bits/weight) ---------------------------------
//
//    0      2                                                    34
//    +------+----------------------------------------------------+
//    |  d   | qs[0] qs[1] ... qs[31]   (int8, two's complement)  |
//    +------+----------------------------------------------------+
//    y[i] = qs[i] * d
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_0) == 34);

// ---- Q4_0: 32 elements, 18 bytes (4.5 bits/weight) ---------------------------------
//
//    0      2                                  18
//    +------+----------------------------------+
//    |  d   | qs[0] ... qs[15]                 |
//    +------+----------------------------------+
//    qs[j] = (q[j+16] << 4) | q[j]       (lo nibble: first half, hi: second half)
//    y[i] = (q[i] - 8) * d
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

// ---- Q4_1: 32 elements, 20 bytes (5 bits/weight) -----------------------------------
//
//    0      2      4                                  20
//    +------+------+----------------------------------+
//    |  d   |  m   | qs[0] ... qs[15]  (as Q4_0)      |
//    +------+------+----------------------------------+
//    y[i] = q[i] * d + m
struct BlockQ4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

// ---- Q5_0: 32 elements, 22 bytes (5.5 bits/weight) ---------------------------------
//
//    0      2                6                                  22
//    +------+----------------+----------------------------------+
//    |  d   | qh (u32, LE)   | qs[0] ... qs[15]  (as Q4_0)      |
//    +------+----------------+----------------------------------+
//    qh bit i = bit 4 of q[i]   (bit 0..15: first half, 16..31: second half)
//    y[i] = (q[i] - 16) * d
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ5_0) == 22);

// ---- Q5_1: 32 elements, 24 bytes (6 bits/weight) -----------------------------------
//
//    0      2      4                8                                  24
//    +------+------+----------------+----------------------------------+
//    |  d   |  m   | qh (u32, LE)   | qs[0] ... qs[15]  (as Q4_0)      |
//    +------+------+----------------+----------------------------------+
//    y[i] = q[i] * d + m
struct BlockQ5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ5_1) == 24);

// ---- Q2_K: 256 elements, 84 bytes (2.625 bits/weight) -------------------------------
// 16 sub-blocks of 16 elements, each with a 4-bit scale and a 4-bit min.
//
//    0                   16                                   80     82     84
//    +-------------------+------------------------------------+------+------+
//    | scales[0..15]     | qs[0..63]                          |  d   | dmin |
//    +-------------------+------------------------------------+------+------+
//    scales[s] = (min_s << 4) | scale_s          (sub-block s = elements 16s..16s+15)
//
//    qs: two 128-element halves h of 32 bytes; byte qs[32h + l] holds 4 quants:
//      bits 1:0 -> element 128h +  0 + l     bits 5:4 -> element 128h + 64 + l
//      bits 3:2 -> element 128h + 32 + l     bits 7:6 -> element 128h + 96 + l
//    y = (d * scale_s) * q - (dmin * min_s)
struct BlockQ2_K {
  uint8_t scales[kQK_K / 16];
  uint8_t qs[kQK_K / 4];
  uint16_t d;
  uint16_t dmin;
};
static_assert(sizeof(BlockQ2_K) == 84);

// ---- Q3_K: 256 elements, 110 bytes (3.4375 bits/weight) ----------------------------
// 16 sub-blocks of 16 elements, each with a signed 6-bit scale; no mins.
//
//    0                 32                           96              108    110
//    +-----------------+----------------------------+---------------+------+
//    | hmask[0..31]    | qs[0..63]                  | scales[0..11] |  d   |
//    +-----------------+----------------------------+---------------+------+
//    qs: the low 2 bits of each quant, packed exactly as in Q2_K.
//    hmask: the 3rd bit. Element e = 128h + 32j + l (h<2, j<4, l<32) has it in
//      bit (4h + j) of hmask[l]; a CLEAR bit means "subtract 4".
//    q = low2 - (hbit ? 0 : 4)                                    (range -4..3)
//
//    scales: 16 x 6 bits in 12 bytes; scale s (0..15) is
//      low 4 bits : s < 8 ? scales[s] & 0xF : scales[s - 8] >> 4
//      high 2 bits: (scales[8 + s % 4] >> (2 * (s / 4))) & 3
//    y = (d * (scale_s - 32)) * q
struct BlockQ3_K {
  uint8_t hmask[kQK_K / 8];
  uint8_t qs[kQK_K / 4];
  uint8_t scales[12];
  uint16_t d;
};
static_assert(sizeof(BlockQ3_K) == 110);

// ---- Q4_K: 256 elements, 144 bytes (4.5 bits/weight) -------------------------------
// 8 sub-blocks of 32 elements, each with a 6-bit scale and a 6-bit min.
//
//    0      2      4                16                                        144
//    +------+------+----------------+-----------------------------------------+
//    |  d   | dmin | scales[0..11]  | qs[0..127]                              |
//    +------+------+----------------+-----------------------------------------+
//    scales (12 bytes, "get_scale_min_k4"): for sub-block s (0..7)
//      s < 4 : scale = scales[s] & 63           min = scales[s + 4] & 63
//      s >= 4: scale = (scales[s + 4] & 0xF) | ((scales[s - 4] >> 6) << 4)
//              min   = (scales[s + 4] >>  4) | ((scales[s    ] >> 6) << 4)
//
//      byte:    0..3                4..7                8..11
//             +--+------+         +--+------+         +------+------+
//             |hs| sc0-3|         |hm| mn0-3|         | mn4-7| sc4-7|   (hi | lo nibble)
//             +--+------+         +--+------+         +------+------+
//             hs = bits 5:4 of sc4-7, hm = bits 5:4 of mn4-7
//
//    qs: four 64-element chunks c of 32 bytes; byte qs[32c + l]:
//      lo nibble -> element 64c + l       (sub-block 2c)
//      hi nibble -> element 64c + 32 + l  (sub-block 2c + 1)
//    y = (d * scale_s) * q - (dmin * min_s)
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

// ---- Q5_K: 256 elements, 176 bytes (5.5 bits/weight) -------------------------------
//
//    0      2      4                16               48                       176
//    +------+------+----------------+----------------+------------------------+
//    |  d   | dmin | scales[0..11]  | qh[0..31]      | qs[0..127]             |
//    +------+------+----------------+----------------+------------------------+
//    scales, qs: as Q4_K (the low 4 bits of each quant).
//    qh: bit 4 of each quant; element 64c + l has it in bit 2c of qh[l],
//        element 64c + 32 + l in bit 2c + 1 of qh[l]        (c < 4, l < 32)
//    y = (d * scale_s) * q - (dmin * min_s)                 (q in 0..31)
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQK_K / 8];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

// ---- Q6_K: 256 elements, 210 bytes (6.5625 bits/weight) ----------------------------
// 16 sub-blocks of 16 elements, each with a signed 8-bit scale; no mins.
//
//    0                            128               192             208    210
//    +----------------------------+-----------------+---------------+------+
//    | ql[0..127]                 | qh[0..63]       | scales[0..15] |  d   |
//    +----------------------------+-----------------+---------------+------+
//    Two 128-element halves h; with L = ql + 64h, H = qh + 32h, for l < 32:
//      element 128h +  0 + l: lo nibble of L[l]      | bits 1:0 of H[l] << 4
//      element 128h + 32 + l: lo nibble of L[l + 32] | bits 3:2 of H[l] << 4
//      element 128h + 64 + l: hi nibble of L[l]      | bits 5:4 of H[l] << 4
//      element 128h + 96 + l: hi nibble of L[l + 32] | bits 7:6 of H[l] << 4
//    q = that 6-bit value - 32;  scales (int8) per 16 elements in order
//    y = (d * scale_s) * q
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210);

// ---- Q8_K: 256 elements, 292 bytes (activation format; not a weight type here) -----
//
//    0      4                                       260                      292
//    +------+---------------------------------------+------------------------+
//    | d f32| qs[0..255] (int8)                     | bsums[0..15] (int16)   |
//    +------+---------------------------------------+------------------------+
struct BlockQ8_K {
  float d;
  int8_t qs[kQK_K];
  int16_t bsums[kQK_K / 16];
};
static_assert(sizeof(BlockQ8_K) == 292);

// ---- IQ4_NL: 32 elements, 18 bytes (4.5 bits/weight) -------------------------------
//
//    0      2                                  18
//    +------+----------------------------------+
//    |  d   | qs[0..15]  (nibbles as Q4_0)     |
//    +------+----------------------------------+
//    y[i] = d * kIq4nlValues[q[i]]        (a fixed non-linear 16-entry int8 table)
struct BlockIQ4_NL {
  uint16_t d;
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockIQ4_NL) == 18);

// ---- IQ4_XS: 256 elements, 136 bytes (4.25 bits/weight) ----------------------------
// 8 sub-blocks of 32 elements, each with a 6-bit scale.
//
//    0      2          4             8                                    136
//    +------+----------+-------------+------------------------------------+
//    |  d   | scales_h | scales_l[4] | qs[0..127]                         |
//    +------+----------+-------------+------------------------------------+
//    scale of sub-block s (0..7), 6 bits:
//      low 4 bits : (scales_l[s / 2] >> (4 * (s % 2))) & 0xF
//      high 2 bits: (scales_h >> (2 * s)) & 3            (scales_h: u16, LE)
//    qs: sub-block s uses qs[16s .. 16s + 15] laid out as one IQ4_NL block.
//    y = (d * (scale_s - 32)) * kIq4nlValues[q]
struct BlockIQ4_XS {
  uint16_t d;
  uint16_t scales_h;
  uint8_t scales_l[kQK_K / 64];
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockIQ4_XS) == 136);

// The IQ4_NL / IQ4_XS code book (ggml's kvalues_iq4nl).
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

}  // namespace attnscope::quant
