/*
 * Bitplane native kernels: the one source of truth for the C interface.
 *
 * The Java bindings (io.bitplane.kernels.ffm.NativeKernels) are written by hand from this file, and
 * NativeBindingsMatchHeaderTest fails when a prototype here and a descriptor there disagree. Where jextract is
 * available, `jextract --output gen -t io.bitplane.kernels.ffm.gen bitplane_kernels.h` generates equivalent
 * bindings to compare with.
 *
 * Memory layouts read (model-format/FORMAT.md section 4), for W = [n rows, k columns], P planes,
 * words per plane row Wd = ceil(k / 64):
 *   F32 / F16 / BF16   row r at element r*k (little-endian)
 *   INT8               int8 code at byte r*k + i
 *   bit planes         row r: P*Wd 64-bit words at word r*P*Wd; plane p's words follow plane p-1's; value i is bit
 *                      i%64 of word i/64. INT4 / INT4_ASYM: code u = sum_p bit_p << p (INT4 uses u - 8);
 *                      TERNARY: plane 0 mask, plane 1 sign (t = mask ? (sign ? -1 : 1) : 0); BINARY: plane 0 sign.
 *   packed (layout 1)  INT4, INT4_ASYM, TERNARY as b-bit fields (b = 4: u; b = 2: t + 1): row r at byte
 *                      r * ceil(k / V) * 32, V = 256 / b values per 32-byte block; value j of a block is field
 *                      (j / 32) of byte j % 32 (bits (j / 32) * b up)
 *   scales, mins       f16 at byte offset scales_offset (mins_offset) + 2*(r*groups + g), groups = ceil(k / group)
 *
 * Semantics are those of the Java Backend interface: with int8 activations every group sum is an exact integer and
 * y = xscale * sum_g (s_g * acc_g [+ m_g * qsum_g]) in float, groups in order, without fused multiply-adds, so the
 * result equals the Java reference bit for bit. With float activations results agree within float rounding.
 *
 * Every function computes rows [row_start, row_end) of y for every token b: y[b*n + r]. Callers (the Java side)
 * check every length, shape and range before the call; the kernels trust them. Pointers need no alignment.
 */
#ifndef BITPLANE_KERNELS_H
#define BITPLANE_KERNELS_H

#include <stdint.h>

#define BP_ABI_VERSION 8

/* Encoding ids, as in the file's tensor directory. */
#define BP_F32 0
#define BP_F16 1
#define BP_BF16 2
#define BP_INT8 3
#define BP_INT4 4
#define BP_INT4_ASYM 5
#define BP_TERNARY 6
#define BP_BINARY 7

/* Instruction sets of the implementations. */
#define BP_ISA_PORTABLE 1
#define BP_ISA_AVX2 2
#define BP_ISA_AVX512 3 /* AVX-512 F, BW, VL and VNNI (vpdpbusd), besides AVX2, FMA and F16C */

/* BP_ABI_VERSION of the library: the bindings refuse a library built from another header. */
int32_t bp_abi_version(void);

/* The best instruction set this CPU supports among those built into the library. */
int32_t bp_best_isa(void);

/* Selects the implementation (BP_ISA_*), capped at bp_best_isa(); returns the one now in use. Not thread-safe:
   call before kernels run (the Java side calls it once at load, and tests to reach the portable code). */
int32_t bp_select_isa(int32_t isa);

/* Per-token INT8 activations, exactly as the Java reference (ActivationQuantizer): s = max|x| / 127, q = x / s
   rounded half up and clamped to [-127, 127]; returns s. All-zero x: s = 0, q = 0. A NaN or infinity in x gives
   s = NaN or infinity and q = 0 (Java's Math.round of NaN). */
float bp_quantize_i8(const float *x, int64_t k, int8_t *q);

/* Float weights (F32, F16, BF16) times float activations x[batch][k]. */
void bp_matmul_float(const void *w, int32_t encoding, int64_t k, const float *x, float *y, int32_t batch,
                     int64_t n, int64_t row_start, int64_t row_end);

/* Bytes of the scratch that a quantized product of this shape needs (decoded rows, scales as floats, per-group
   terms and token sums); each calling thread brings its own, aligned to 64 bytes. */
int64_t bp_scratch_bytes(int64_t k, int64_t group, int32_t batch);

/* Quantized weights (INT8, bit planes in layout 0, packed codes in layout 1) times float activations x[batch][k].
   Each block of rows is decoded once and used for every token. */
void bp_matmul_quantized_f32(const void *w, int32_t encoding, int32_t layout, int64_t k, int64_t group,
                             int64_t scales_offset, int64_t mins_offset, const float *x, float *y, int32_t batch,
                             int64_t n, int64_t row_start, int64_t row_end, void *scratch);

/* Quantized weights times int8 activations xq[batch][k] with one scale per token (xscales[batch]). */
void bp_matmul_quantized_i8(const void *w, int32_t encoding, int32_t layout, int64_t k, int64_t group,
                            int64_t scales_offset, int64_t mins_offset, const int8_t *xq, const float *xscales,
                            float *y, int32_t batch, int64_t n, int64_t row_start, int64_t row_end, void *scratch);

/* BINARY weights (layout 0) times binary activations (XNOR-Net): xbits[batch][ceil(k / 64)] sign words (bit i%64 of
   word i/64 set where x_i < 0) and one scale per token (xscales[batch], mean |x|). group is a multiple of 64 or at
   least k. y = xscale * sum_g s_g * (len_g - 2 popcount(w XOR x over group g)), groups in order: the Java
   reference's result bit for bit. */
void bp_matmul_xnor(const void *w, int64_t k, int64_t group, int64_t scales_offset, const uint64_t *xbits,
                    const float *xscales, float *y, int32_t batch, int64_t n, int64_t row_start, int64_t row_end);

/* BINARY weights in layout 0 with one scale per group of `group` values (a multiple of 16, or group >= k: one a row),
   times one token's INT8 activations, by lookup tables over tiles of 32 rows (sign_tiles.c has the layouts). The
   caller repacks a tensor once: bp_sign_tiles_bytes of memory (any alignment), filled tile range by tile range by
   bp_sign_tiles_repack from the file's planes w (in groups, the f16 scales at scales_offset, ceil(k / group) a row,
   go into the tiles; one a row, they do not); per token it builds the tables (bp_sign_tables_bytes of memory) with
   bp_sign_tables, which writes each group's sum of codes X_g to code_sums[ceil(k / group)], and runs tiles
   [tile_start, tile_end) of bp_matmul_sign_tiles, with one scale a row the rows' scales as f32 in row order (else
   scales is not read): y[r] = (sum over groups g in order of s_g (X_g - 2 S_g,r), from 0) * xscale, S_g,r the sum
   of q over row r's set bits in group g, exactly the Java reference's bp_matmul_quantized_i8 result for the same
   tensor. */
int64_t bp_sign_tiles_bytes(int64_t n, int64_t k, int64_t group);
void bp_sign_tiles_repack(const void *w, int64_t k, int64_t group, int64_t scales_offset, int64_t n,
                          int64_t tile_start, int64_t tile_end, void *tiles);
int64_t bp_sign_tables_bytes(int64_t k, int64_t group);
void bp_sign_tables(const int8_t *q, int64_t k, int64_t group, int16_t *tables, int32_t *code_sums);
void bp_matmul_sign_tiles(const void *tiles, int64_t k, int64_t group, int64_t n, const int16_t *tables,
                          const int32_t *code_sums, const float *scales, float xscale, float *y, int64_t tile_start,
                          int64_t tile_end);

/* TERNARY weights with one scale per group of `group` values (group >= 1; group >= k: one a row), times one token's
   INT8 activations, by lookup tables over base-3 words in tiles of 32 rows (base3_tiles.c has the layouts). The caller
   repacks a tensor once: bp_base3_tiles_bytes of memory (any alignment), filled tile range by tile range by
   bp_base3_tiles_repack from the file's bytes w (layout 0: mask and sign planes; layout 1: packed fields; f16 scales
   at scales_offset, ceil(k / group) a row), which returns how many packed fields were 3 (no code: the tiles are then
   not to be used); per token it builds the tables (bp_base3_tables_bytes of memory) with bp_base3_tables and runs
   tiles [tile_start, tile_end) of bp_matmul_base3_tiles: y[r] = (sum over groups g in order of s_g acc_g, from 0) *
   xscale, acc_g row r's sum of code x q over group g, exactly the Java reference's bp_matmul_quantized_i8 result for
   the same tensor. */
int64_t bp_base3_tiles_bytes(int64_t n, int64_t k, int64_t group);
int64_t bp_base3_tiles_repack(const void *w, int32_t layout, int64_t k, int64_t group, int64_t scales_offset,
                              int64_t n, int64_t tile_start, int64_t tile_end, void *tiles);
int64_t bp_base3_tables_bytes(int64_t k, int64_t group);
void bp_base3_tables(const int8_t *q, int64_t k, int64_t group, int16_t *tables);
void bp_matmul_base3_tiles(const void *tiles, int64_t k, int64_t group, int64_t n, const int16_t *tables,
                           float xscale, float *y, int64_t tile_start, int64_t tile_end);

/* INT8, INT4 or INT4_ASYM weights in groups of 32 (k a multiple of 512) times INT8 activations, over blocks of 8
   rows re-laid so that each group's sum takes one 32-bit lane, with the rows' scales and mins (group_lanes.c has the
   layouts). The caller repacks a tensor once: bp_group_lanes_bytes of memory (any alignment), filled block range by
   block range by bp_group_lanes_repack from the file's bytes w (INT8 rows; INT4 bit planes, layout 0, or packed
   codes, layout 1; f16 scales at scales_offset, INT4_ASYM's mins at mins_offset); then bp_matmul_group_lanes
   computes the rows of blocks [block_start, block_end) of y[b * n + r] for batch tokens xq[batch][k] with scales
   xscales[batch], with scratch of bp_scratch_bytes(k, 32, 1) bytes aligned to 64: the result of
   bp_matmul_quantized_i8 for the same tensor, bit for bit. */
int64_t bp_group_lanes_bytes(int32_t encoding, int64_t n, int64_t k);
void bp_group_lanes_repack(const void *w, int32_t encoding, int32_t layout, int64_t k, int64_t n,
                           int64_t scales_offset, int64_t mins_offset, int64_t block_start, int64_t block_end,
                           void *lanes);
void bp_matmul_group_lanes(const void *lanes, int32_t encoding, int64_t k, int64_t n, const int8_t *xq,
                           const float *xscales, float *y, int32_t batch, int64_t block_start, int64_t block_end,
                           void *scratch);

/* Causal attention (attention.c has the layouts) for units [unit_start, unit_end) of unit_heads query heads each
   (n_heads / n_kv_heads, the heads that share a KV head, or 1), unit u being query heads [u unit_heads, (u + 1)
   unit_heads) of the batch's tokens laid end to end (token b's heads b n_heads ..; n_heads a multiple of
   n_kv_heads): for each query head h of token b, s_t = q_h . k_t / sqrt(head_size) over positions t in [0,
   positions[b]] of its KV head h / (n_heads / n_kv_heads), w = softmax(s), out_h = sum_t w_t v_t. q and out are
   [batch][n_heads * head_size], keys and values [positions][n_kv_heads * head_size]; scores is scratch of
   unit_heads * (positions[b] + 1) floats for the largest position of the units. Equal to the Java reference
   within float rounding; a head's result is the same bit for bit whatever the units. */
void bp_attention(const float *q, const float *keys, const float *values, float *out, const int32_t *positions,
                  int32_t n_heads, int32_t n_kv_heads, int64_t head_size, int32_t unit_heads, int64_t unit_start,
                  int64_t unit_end, float *scores);

/* Reads bytes of data once (any alignment) and returns the sum of its 64-bit words and its tail's bytes, wrapping:
   a probe of the read bandwidth, streaming and prefetching as the kernels read weights (stream_read.c). */
int64_t bp_stream_read(const void *data, int64_t bytes);

#endif
