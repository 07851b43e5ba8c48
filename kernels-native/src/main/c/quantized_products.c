/*
 * Products of quantized weights (INT8, INT4, INT4_ASYM, TERNARY and BINARY, in bit planes or packed codes) with INT8
 * or float activations, one token and batches: bp_matmul_quantized_i8 and bp_matmul_quantized_f32. Written once
 * and compiled once per instruction set (build.sh): with -mavx2 -mfma -mf16c (BP_IMPL=avx2) the __AVX2__ paths
 * below run; adding AVX-512 F/BW/VL and VNNI (BP_IMPL=avx512) also turns on BP_VNNI (vpdpbusd, 64-byte vectors
 * where a kernel is written over `vec`); without them (BP_IMPL=portable) the plain loops do. All three are held to
 * the Java scalar reference by the same randomized tests. Float weights (float_products.c), the activations'
 * quantization (quantize.c), binary x binary (xnor.c), the BINARY lookup tiles (sign_tiles.c) and the group lanes
 * (group_lanes.c) have files of their own.
 *
 * Memory layout read (bitplane_kernels.h, FORMAT.md section 4), W = [n rows, k columns], Wd = ceil(k / 64):
 *   INT8               int8 code at byte r*k + i
 *   bit planes         row r at word r*P*Wd: plane 0's Wd words, then plane 1's, ...; value i is bit i%64 of word
 *                      i/64 of each plane, so (little-endian) byte i/8, bit i%8, and 32 values from a multiple of
 *                      32 are one unaligned 4-byte load per plane
 *   packed (layout 1)  INT4, INT4_ASYM, TERNARY: b-bit fields (b = 4, 2) in 32-byte blocks of V = 256 / b values,
 *                      row r at byte r * ceil(k / V) * 32; value j of a block is field j / 32 of byte j % 32
 *   scales, mins       f16 at scales_offset (mins_offset) + 2*(r*groups + g)
 *
 * Method: a batch decodes each block of four rows once into int8 codes (the INT8 row is its own codes; planes are
 * expanded 32 values at a time, packed fields shifted and masked) and runs every token over them group by group;
 * one token decodes in registers as it goes: packed fields by a shift and a mask (VNNI rows with one scale: a mask
 * in place, and each field's sum shifted once at the row's end), bit planes by shifting whole
 * 32-byte blocks of the planes against the token's codes permuted to match (plane_groups_i8). With int8
 * activations the group sums are exact integers (vpmaddubsw on |code| and sign-adjusted activations, or directly
 * on unsigned fields minus offset * sum(q), then vpmaddwd), combined in float exactly as the Java reference does
 * (build.sh passes -ffp-contract=off so that no multiply-add fuses). Float activations on the AVX-512 build add
 * them under mask registers (binary, ternary) or times codes widened to floats (INT4), four rows per pass over the
 * token (rows_fields_f32); elsewhere rows are decoded to codes and widened.
 */
#include <string.h>

#include "bitplane_kernels.h"
#include "kernels_impl.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

#ifdef __AVX2__
/* The lane sums of four vectors at once, in lanes 0-3 (fewer shuffles than four sum8 calls). */
static inline __m128 sum4x8(__m256 a, __m256 b, __m256 c, __m256 d) {
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d)); /* each half: its 4 lanes' sums */
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

static inline int32_t sum8i(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* The sum of n int8 values: 32 at a time as unsigned bytes (q + 128) summed by vpsadbw, less 128 per value. */
static inline int32_t sum_i8(const int8_t *q, int64_t n) {
    const __m256i bias = _mm256_set1_epi8((char) 0x80);
    __m256i wide = _mm256_setzero_si256();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i u = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *) (q + i)), bias);
        wide = _mm256_add_epi64(wide, _mm256_sad_epu8(u, _mm256_setzero_si256()));
    }
    __m128i h = _mm_add_epi64(_mm256_castsi256_si128(wide), _mm256_extracti128_si256(wide, 1));
    int64_t sum = _mm_cvtsi128_si64(h) + _mm_extract_epi64(h, 1) - 128 * i;
    for (; i < n; i++) {
        sum += q[i];
    }
    return (int32_t) sum;
}

/* 32 bits to 32 bytes: 0xFF where the bit is set, 0 elsewhere (bit j of the word to byte j). */
static inline __m256i expand_bits(uint32_t bits) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
                                            3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i select = _mm256_set1_epi64x((long long) 0x8040201008040201ULL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int) bits), spread);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, select), select);
}

/*
 * Byte products, u unsigned times s signed. AVX2's vpmaddubsw adds adjacent products into int16 lanes (saturating)
 * and vpmaddwd by ones adds those pairs into int32; AVX-512 VNNI's vpdpbusd (BP_VNNI) multiplies, adds four and
 * accumulates into int32 in one instruction. Either way int32 lane m ends up with the products of bytes 4m .. 4m+3.
 * "pairs" accumulate the int16 pair sums on AVX2, widened once at the end (each caller bounds them within int16);
 * with VNNI they are int32 lane sums already and widening does nothing.
 */
ALWAYS_INLINE __m256i pairs_add256(__m256i pairs, __m256i u, __m256i s) {
#ifdef BP_VNNI
    return _mm256_dpbusd_epi32(pairs, u, s);
#else
    return _mm256_add_epi16(pairs, _mm256_maddubs_epi16(u, s));
#endif
}

ALWAYS_INLINE __m256i widen_pairs256(__m256i pairs) {
#ifdef BP_VNNI
    return pairs;
#else
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
#endif
}

/* acc + the int32 lane sums of u x s (a single pair step, so within int16 whenever |u| <= 128 and |s| <= 127). */
ALWAYS_INLINE __m256i dot_add256(__m256i acc, __m256i u, __m256i s) {
#ifdef BP_VNNI
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc, widen_pairs256(pairs_add256(_mm256_setzero_si256(), u, s)));
#endif
}

/*
 * The widest integer vector of the build, for kernels whose layout lets any width serve (bit planes, packed
 * blocks): 64 bytes with AVX-512, 32 with AVX2. The v_ functions are the few operations those kernels use.
 */
#ifdef BP_VNNI
#define VBYTES 64
typedef __m512i vec;
typedef __m512 vecf;
ALWAYS_INLINE vec v_load(const void *p) { return _mm512_loadu_si512(p); }
ALWAYS_INLINE vec v_set1_8(int c) { return _mm512_set1_epi8((char) c); }
ALWAYS_INLINE vec v_zero(void) { return _mm512_setzero_si512(); }
ALWAYS_INLINE vec v_and(vec a, vec b) { return _mm512_and_si512(a, b); }
ALWAYS_INLINE vec v_or(vec a, vec b) { return _mm512_or_si512(a, b); }
ALWAYS_INLINE vec v_andnot(vec a, vec b) { return _mm512_andnot_si512(a, b); }
ALWAYS_INLINE vec v_srli16(vec a, int n) { return _mm512_srli_epi16(a, (unsigned) n); }
ALWAYS_INLINE vec v_slli16(vec a, int n) { return _mm512_slli_epi16(a, (unsigned) n); }
ALWAYS_INLINE vec v_add32(vec a, vec b) { return _mm512_add_epi32(a, b); }
ALWAYS_INLINE vec v_sub32(vec a, vec b) { return _mm512_sub_epi32(a, b); }
ALWAYS_INLINE vec v_slli32(vec a, int n) { return _mm512_slli_epi32(a, (unsigned) n); }
ALWAYS_INLINE vec v_pairs_add(vec pairs, vec u, vec s) { return dpbusd512(pairs, u, s); }
ALWAYS_INLINE vec v_widen_pairs(vec pairs) { return pairs; }
ALWAYS_INLINE int32_t v_sum32(vec a) { return _mm512_reduce_add_epi32(a); }
ALWAYS_INLINE vecf vf_load(const float *p) { return _mm512_loadu_ps(p); }
ALWAYS_INLINE void vf_store(float *p, vecf v) { _mm512_storeu_ps(p, v); }
ALWAYS_INLINE vecf vf_mul(vecf a, vecf b) { return _mm512_mul_ps(a, b); }
ALWAYS_INLINE vecf vf_add(vecf a, vecf b) { return _mm512_add_ps(a, b); }
ALWAYS_INLINE vecf vf_from32(vec a) { return _mm512_cvtepi32_ps(a); }
ALWAYS_INLINE vecf vf_fmadd(vecf a, vecf b, vecf c) { return _mm512_fmadd_ps(a, b, c); }
ALWAYS_INLINE vecf vf_set1(float f) { return _mm512_set1_ps(f); }
ALWAYS_INLINE vecf vf_zero(void) { return _mm512_setzero_ps(); }
/* The VBYTES / 4 int8 codes at p as floats. */
ALWAYS_INLINE vecf vf_codes(const int8_t *p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *) p)));
}
/* The lanes' sum in a fixed order (GCC's sequence of halvings). */
ALWAYS_INLINE float vf_sum(vecf a) { return _mm512_reduce_add_ps(a); }
/* Halves a vector's lanes: lane i of the result is lane i + lane i + 8 (AVX512F only, no AVX512DQ). */
ALWAYS_INLINE __m256 vf_fold(vecf a) {
    return _mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}
/* Lane i (i < 16 / m) the sum of lanes m i .. m i + m - 1, for m = 1, 2, 4 or 8; the other lanes 0. */
ALWAYS_INLINE vec v_group_lanes(vec v, int m) {
    static const __mmask16 firsts[9] = {0, 0xFFFF, 0x5555, 0, 0x1111, 0, 0, 0, 0x0101};
    const vec zero = _mm512_setzero_si512();
    if (m == 1) {
        return v;
    }
    if (m >= 2) {
        v = _mm512_add_epi32(v, _mm512_alignr_epi32(zero, v, 1)); /* lane i + lane i + 1 */
    }
    if (m >= 4) {
        v = _mm512_add_epi32(v, _mm512_alignr_epi32(zero, v, 2));
    }
    if (m >= 8) {
        v = _mm512_add_epi32(v, _mm512_alignr_epi32(zero, v, 4));
    }
    return _mm512_maskz_compress_epi32(firsts[m], v);
}
/* The first n lanes from p, or to p; nothing is read or written past them. */
ALWAYS_INLINE __mmask16 first_lanes512(int n) { return (__mmask16) ((1u << n) - 1); }
ALWAYS_INLINE vec v_load32_n(const int32_t *p, int n) { return _mm512_maskz_loadu_epi32(first_lanes512(n), p); }
ALWAYS_INLINE vecf vf_load_n(const float *p, int n) { return _mm512_maskz_loadu_ps(first_lanes512(n), p); }
ALWAYS_INLINE void vf_store_n(float *p, vecf v, int n) { _mm512_mask_storeu_ps(p, first_lanes512(n), v); }
/* Two 32-byte pieces, lo from p and hi from p + hi_offset; only the low piece where hi is 0 (the upper lanes 0). */
ALWAYS_INLINE vec v_load_halves(const void *p, int64_t hi_offset, int hi) {
    if (hi && hi_offset == 32) { /* adjacent pieces (a constant offset where this is inlined): one load */
        return _mm512_loadu_si512(p);
    }
    return hi ? _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *) p)),
                                   _mm256_loadu_si256((const __m256i *) ((const uint8_t *) p + hi_offset)), 1)
              : _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *) p));
}
#else
#define VBYTES 32
typedef __m256i vec;
typedef __m256 vecf;
ALWAYS_INLINE vec v_load(const void *p) { return _mm256_loadu_si256((const __m256i *) p); }
ALWAYS_INLINE vec v_set1_8(int c) { return _mm256_set1_epi8((char) c); }
ALWAYS_INLINE vec v_zero(void) { return _mm256_setzero_si256(); }
ALWAYS_INLINE vec v_and(vec a, vec b) { return _mm256_and_si256(a, b); }
ALWAYS_INLINE vec v_or(vec a, vec b) { return _mm256_or_si256(a, b); }
ALWAYS_INLINE vec v_andnot(vec a, vec b) { return _mm256_andnot_si256(a, b); }
ALWAYS_INLINE vec v_srli16(vec a, int n) { return _mm256_srli_epi16(a, n); }
ALWAYS_INLINE vec v_slli16(vec a, int n) { return _mm256_slli_epi16(a, n); }
ALWAYS_INLINE vec v_add32(vec a, vec b) { return _mm256_add_epi32(a, b); }
ALWAYS_INLINE vec v_sub32(vec a, vec b) { return _mm256_sub_epi32(a, b); }
ALWAYS_INLINE vec v_slli32(vec a, int n) { return _mm256_slli_epi32(a, n); }
ALWAYS_INLINE vec v_pairs_add(vec pairs, vec u, vec s) { return pairs_add256(pairs, u, s); }
ALWAYS_INLINE vec v_widen_pairs(vec pairs) { return widen_pairs256(pairs); }
ALWAYS_INLINE int32_t v_sum32(vec a) { return sum8i(a); }
ALWAYS_INLINE vecf vf_load(const float *p) { return _mm256_loadu_ps(p); }
ALWAYS_INLINE void vf_store(float *p, vecf v) { _mm256_storeu_ps(p, v); }
ALWAYS_INLINE vecf vf_mul(vecf a, vecf b) { return _mm256_mul_ps(a, b); }
ALWAYS_INLINE vecf vf_add(vecf a, vecf b) { return _mm256_add_ps(a, b); }
ALWAYS_INLINE vecf vf_from32(vec a) { return _mm256_cvtepi32_ps(a); }
ALWAYS_INLINE vecf vf_fmadd(vecf a, vecf b, vecf c) { return _mm256_fmadd_ps(a, b, c); }
ALWAYS_INLINE vecf vf_set1(float f) { return _mm256_set1_ps(f); }
ALWAYS_INLINE vecf vf_zero(void) { return _mm256_setzero_ps(); }
ALWAYS_INLINE vecf vf_codes(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *) p)));
}
ALWAYS_INLINE float vf_sum(vecf a) { return sum8(a); }
ALWAYS_INLINE __m256 vf_fold(vecf a) { return a; }
/* Lane i (i < 8 / m) the sum of lanes m i .. m i + m - 1, for m = 1, 2 or 4; the other lanes unspecified. */
ALWAYS_INLINE vec v_group_lanes(vec v, int m) {
    if (m >= 2) {
        v = _mm256_add_epi32(v, _mm256_shuffle_epi32(v, _MM_SHUFFLE(2, 3, 0, 1))); /* lane i + lane i ^ 1 */
    }
    if (m >= 4) {
        v = _mm256_add_epi32(v, _mm256_shuffle_epi32(v, _MM_SHUFFLE(1, 0, 3, 2))); /* + lanes i ^ 2 */
    }
    return m == 1 ? v : _mm256_permutevar8x32_epi32(v, m == 2 ? _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0)
                                                             : _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0));
}
ALWAYS_INLINE __m256i first_lanes256(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
/* The first n lanes from p, or to p; nothing is read or written past them (whole vectors the plain way). */
ALWAYS_INLINE vec v_load32_n(const int32_t *p, int n) {
    return n == 8 ? _mm256_loadu_si256((const __m256i *) p) : _mm256_maskload_epi32(p, first_lanes256(n));
}
ALWAYS_INLINE vecf vf_load_n(const float *p, int n) {
    return n == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, first_lanes256(n));
}
ALWAYS_INLINE void vf_store_n(float *p, vecf v, int n) {
    if (n == 8) {
        _mm256_storeu_ps(p, v);
    } else {
        _mm256_maskstore_ps(p, first_lanes256(n), v);
    }
}
ALWAYS_INLINE vec v_load_halves(const void *p, int64_t hi_offset, int hi) {
    (void) hi_offset;
    (void) hi;
    return v_load(p);
}
#endif
#else
static inline int32_t sum_i8(const int8_t *q, int64_t n) {
    int32_t sum = 0;
    for (int64_t i = 0; i < n; i++) {
        sum += q[i];
    }
    return sum;
}
#endif
#ifndef VBYTES
#define VBYTES 32 /* the portable build: only the sizes of the plane scratch depend on it */
#endif

/*
 * A row's "kind": its encoding id, plus PACKED for layout 1 (packed codes: INT4, INT4_ASYM, TERNARY as b-bit
 * fields, b = 4 or 2; a 32-byte block holds 256 / b values, value j of a block in byte j % 32 at bit (j / 32) * b).
 */
#define PACKED 0x10
/* Rows are worked in blocks of this many, so that their sequential sums over groups overlap in the CPU: one
   vector lane per row (sum_terms). */
#define ROW_BLOCK 8
/* Tokens of a batch that share each decoded vector of packed fields: two (with four, GCC spilled the sums to the
   stack and a 16-token batch ran at 77 G products/s per thread instead of 112). */
#define TOKEN_BLOCK 2
/* How far ahead of the kernel the weights are prefetched: one thread's hardware prefetchers alone left a quarter to
   a half of the bandwidth unused (INT4 packed, one thread: 14-19 G weights/s without, 27 with 4 KB ahead). */
#define PREFETCH_BYTES 4096
/*
 * How far ahead packed_rows_one_group (and packed_span_tokens) also asks for its rows into L2 (prefetcht2), besides
 * PREFETCH_BYTES into L1: one thread streamed these rows from DRAM at about 75% of a plain read loop's rate, and
 * moving the one prefetch further ahead helped short rows but cost 4096 x 14336 9% (its token's 14 KB of codes then
 * left L1). A C probe alternating builds, ternary one token, two threads from DRAM, G weights/s: 5632 x 2048 229-267
 * -> 247-270, 2048 x 5632 254-270 -> 261-267, 2560 x 2048 244-271 -> 275-280, 4096 x 14336 179-198 -> 188-209 (in
 * faster minutes of the machine 5632 x 2048 270-272 -> 295-307, 4096 x 14336 198-201 -> 232-245); `bitplane bench
 * --shape 4096x14336` (ternary packed, libraries alternated three times) 153-166 -> 159-173; a layer's products in
 * decode order (8 layers, the 418M shapes) 234-239 -> 235-250. The same second prefetch in the BINARY tiles and the
 * group lanes changed nothing measurable.
 */
#define L2_PREFETCH_BYTES (L2_AHEAD * PREFETCH_BYTES)
/* The packed rows' prefetches of the line `at` will reach: PREFETCH_BYTES on into L1, L2_PREFETCH_BYTES on into L2.
   A macro: as an inline function it changed GCC's inlining of the AVX-512 build's packed rows, which then read 3-5%
   slower (ternary@1024, 4096 x 14336, alternated four times). */
#define PREFETCH_PACKED_AHEAD(at)                                                                                  \
    do {                                                                                                           \
        _mm_prefetch((const char *) ((at) + PREFETCH_BYTES), _MM_HINT_T0);                                         \
        _mm_prefetch((const char *) ((at) + L2_PREFETCH_BYTES), _MM_HINT_T2);                                      \
    } while (0)
/* INT8 rows in groups (whole_groups_i8: the AVX2 build's INT8 x INT8) on Intel CPUs (prefetch_distance): 4096 x
   14336 g32, two threads, on the Intel Xeon at 26-28 GB/s (`bitplane bench`, ten rounds alternated): 4 KB
   17.3-21.7 G weights/s, 2 KB 18.9-24.7 (24.0-24.4, 94-96% of the roofline, in the last three). */
#define INT8_PREFETCH_INTEL 2048

ALWAYS_INLINE int packed_bits(int32_t kind) {
    return (kind & ~PACKED) == BP_TERNARY ? 2 : 4;
}

/* What a field's value is offset by: INT4 codes are u - 8, ternary t = f - 1, INT4_ASYM u. */
ALWAYS_INLINE int packed_offset(int32_t kind) {
    switch (kind & ~PACKED) {
        case BP_INT4:
            return 8;
        case BP_TERNARY:
            return 1;
        default:
            return 0;
    }
}

/*
 * Runs CALL(K) with K the row kind as a constant, for every kind of bit fields (bit planes and packed codes), so
 * that a kernel inlined in CALL is compiled once per kind: with the kind known only at run time they ran at half
 * speed. Other kinds never reach the kernels (TensorSpec.problem); the last case takes them.
 */
#define SWITCH_FIELD_KIND(kind, CALL)                 \
    switch (kind) {                                   \
        case BP_BINARY:                               \
            CALL(BP_BINARY);                          \
            break;                                    \
        case BP_TERNARY:                              \
            CALL(BP_TERNARY);                         \
            break;                                    \
        case BP_TERNARY | PACKED:                     \
            CALL(BP_TERNARY | PACKED);                \
            break;                                    \
        case BP_INT4:                                 \
            CALL(BP_INT4);                            \
            break;                                    \
        case BP_INT4 | PACKED:                        \
            CALL(BP_INT4 | PACKED);                   \
            break;                                    \
        case BP_INT4_ASYM:                            \
            CALL(BP_INT4_ASYM);                       \
            break;                                    \
        default:                                      \
            CALL(BP_INT4_ASYM | PACKED);              \
            break;                                    \
    }

static inline int planes_of(int32_t encoding) {
    switch (encoding) {
        case BP_INT4:
        case BP_INT4_ASYM:
            return 4;
        case BP_TERNARY:
            return 2;
        default:
            return 1;
    }
}

/* The code of value i of a plane row (the scalar rule; the vector paths decode 32 values at once). */
static inline int8_t code_at(const uint8_t *row, int64_t plane_bytes, int32_t encoding, int64_t i) {
    if (encoding & PACKED) {
        int b = packed_bits(encoding);
        int64_t v = 256 / b;
        int64_t j = i % v;
        int field = (row[i / v * 32 + j % 32] >> (j / 32 * b)) & ((1 << b) - 1);
        return (int8_t) (field - packed_offset(encoding));
    }
    int bit = (row[i / 8] >> (i % 8)) & 1;
    switch (encoding) {
        case BP_BINARY:
            return bit ? -1 : 1;
        case BP_TERNARY:
            return bit == 0 ? 0 : ((row[plane_bytes + i / 8] >> (i % 8)) & 1) ? -1 : 1;
        default: {
            int u = bit;
            for (int p = 1; p < 4; p++) {
                u |= ((row[p * plane_bytes + i / 8] >> (i % 8)) & 1) << p;
            }
            return (int8_t) (encoding == BP_INT4 ? u - 8 : u);
        }
    }
}

#ifdef __AVX2__
/* The codes of the 32 values from i (a multiple of 32) of a plane row, in a register. */
ALWAYS_INLINE __m256i decode32(const uint8_t *row, int64_t plane_bytes, int32_t encoding, int64_t i) {
    if (encoding & PACKED) { /* one load, one shift, one mask: the reason layout 1 exists */
        int b = packed_bits(encoding);
        int log2v = b == 2 ? 7 : 6; /* V = 256 / b values per block */
        __m256i block = _mm256_loadu_si256((const __m256i *) (row + (i >> log2v) * 32));
        int shift = (int) ((i & ((1 << log2v) - 1)) >> 5) * b;
        __m256i f = _mm256_and_si256(_mm256_srl_epi16(block, _mm_cvtsi32_si128(shift)),
                                     _mm256_set1_epi8((char) ((1 << b) - 1)));
        return _mm256_sub_epi8(f, _mm256_set1_epi8((char) packed_offset(encoding)));
    }
    const __m256i one = _mm256_set1_epi8(1);
    const uint8_t *at = row + i / 8;
#ifdef BP_VNNI
    if (encoding == BP_INT4 || encoding == BP_INT4_ASYM) {
        /* from -8 (INT4) or 0, add 2^p where plane p's bit is set: one masked add per plane, its mask loaded in
           place, where the expansion below takes a shuffle, two masks, a compare and an or per plane */
        __m256i c = _mm256_set1_epi8((char) (encoding == BP_INT4 ? -8 : 0));
        for (int p = 0; p < 4; p++) {
            c = _mm256_mask_add_epi8(c, _load_mask32((__mmask32 *) (at + p * plane_bytes)), c,
                                     _mm256_set1_epi8((char) (1 << p)));
        }
        return c;
    }
#endif
    __m256i m0 = expand_bits(load_u32(at));
    if (encoding == BP_BINARY) {
        return _mm256_or_si256(m0, one); /* sign set: 0xFF = -1, else 1 */
    }
    if (encoding == BP_TERNARY) {
        return _mm256_and_si256(m0, _mm256_or_si256(one, expand_bits(load_u32(at + plane_bytes))));
    }
    __m256i u = _mm256_and_si256(m0, one);
    u = _mm256_or_si256(u, _mm256_and_si256(expand_bits(load_u32(at + plane_bytes)), _mm256_set1_epi8(2)));
    u = _mm256_or_si256(u, _mm256_and_si256(expand_bits(load_u32(at + 2 * plane_bytes)), _mm256_set1_epi8(4)));
    u = _mm256_or_si256(u, _mm256_and_si256(expand_bits(load_u32(at + 3 * plane_bytes)), _mm256_set1_epi8(8)));
    return encoding == BP_INT4 ? _mm256_sub_epi8(u, _mm256_set1_epi8(8)) : u;
}

/* Eight vectors of partial sums to the vector of their eight totals, in order. */
static inline __m256i reduce8x8(const __m256i v[8]) {
    __m256i ab = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
    __m256i cd = _mm256_hadd_epi32(_mm256_hadd_epi32(v[4], v[5]), _mm256_hadd_epi32(v[6], v[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(ab, cd, 0x20), _mm256_permute2x128_si256(ab, cd, 0x31));
}
#endif

static void decode_row(const uint8_t *row, int64_t plane_bytes, int32_t encoding, int64_t k, int8_t *codes) {
    int64_t i = 0;
#ifdef __AVX2__
    for (; i + 32 <= k; i += 32) {
        _mm256_storeu_si256((__m256i *) (codes + i), decode32(row, plane_bytes, encoding, i));
    }
#endif
    for (; i < k; i++) {
        codes[i] = code_at(row, plane_bytes, encoding, i);
    }
}

/*
 * Where a row's codes come from: memory (INT8 rows, or planes decoded once for a batch), or, for one token on the
 * AVX2 build, the planes themselves, decoded in registers as they are used.
 */
typedef struct {
    const int8_t *codes;
    const uint8_t *planes;
    int64_t plane_bytes;
    int32_t encoding;
} row_codes;

static inline int32_t code_of(const row_codes *rc, int64_t i) {
    return rc->codes ? rc->codes[i] : code_at(rc->planes, rc->plane_bytes, rc->encoding, i);
}

#ifdef __AVX2__
/* Exact partial sums of code * q over [start, end) (their total is the group's sum). */
static inline __m256i group_i8(const row_codes *rc, const int8_t *q, int64_t start, int64_t end) {
    __m256i acc = _mm256_setzero_si256();
    int32_t scalar = 0;
    int64_t i = start;
    int64_t aligned = (start + 31) & ~(int64_t) 31; /* decoding planes in registers starts at multiples of 32 */
    for (; i < aligned && i < end; i++) {
        scalar += code_of(rc, i) * q[i];
    }
    for (; i + 32 <= end; i += 32) {
        __m256i cv = rc->codes ? _mm256_loadu_si256((const __m256i *) (rc->codes + i))
                               : decode32(rc->planes, rc->plane_bytes, rc->encoding, i);
        __m256i qv = _mm256_loadu_si256((const __m256i *) (q + i));
        acc = dot_add256(acc, _mm256_abs_epi8(cv), _mm256_sign_epi8(qv, cv)); /* |c| * (q with c's sign) */
    }
    for (; i < end; i++) {
        scalar += code_of(rc, i) * q[i];
    }
    return _mm256_add_epi32(acc, _mm256_setr_epi32(scalar, 0, 0, 0, 0, 0, 0, 0));
}
#endif

static inline int32_t group_sum_i8(const row_codes *rc, const int8_t *q, int64_t start, int64_t end) {
#ifdef __AVX2__
    return sum8i(group_i8(rc, q, start, end));
#else
    int32_t sum = 0;
    for (int64_t i = start; i < end; i++) {
        sum += code_of(rc, i) * q[i];
    }
    return sum;
#endif
}

#ifdef __AVX2__

/* acc + exact partial sums of code * q over the 32 values from i; source is BP_INT8 for codes in memory, else the
   encoding of planes decoded in registers. A constant source specializes the loops that inline this. */
ALWAYS_INLINE __m256i chunk_i8(__m256i acc, const row_codes *rc, const int8_t *q, int64_t i, int32_t source) {
    __m256i cv = source == BP_INT8 ? _mm256_loadu_si256((const __m256i *) (rc->codes + i))
                                   : decode32(rc->planes, rc->plane_bytes, source, i);
    __m256i qv = _mm256_loadu_si256((const __m256i *) (q + i));
    return dot_add256(acc, _mm256_abs_epi8(cv), _mm256_sign_epi8(qv, cv));
}

/* terms of the groups that lie whole in the row, when the group is a multiple of 32 (eight at a time where there
   are eight); returns how many groups it did. */
ALWAYS_INLINE int64_t whole_groups_i8(const row_codes *rc, const int8_t *q, const int32_t *qsums,
                                      const float *scales, const float *mins, int64_t k, int64_t group,
                                      float *terms, int32_t source) {
    int64_t chunks = group / 32;
    int64_t whole = k / group;
    const int64_t distance = prefetch_distance(INT8_PREFETCH_INTEL, PREFETCH_BYTES);
    int64_t g = 0;
    for (; g + 8 <= whole; g += 8) {
        if (source == BP_INT8) { /* INT8 rows stream from memory; decoded codes are in L1 already */
            for (int64_t ahead = 0; ahead < 8 * group; ahead += 64) {
                _mm_prefetch((const char *) (rc->codes + g * group + ahead + distance), _MM_HINT_T0);
            }
        }
        __m256i partial[8];
        if (chunks == 1) { /* groups of 32, the common case: straight-line, the partial sums stay in registers */
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                partial[j] = chunk_i8(_mm256_setzero_si256(), rc, q, (g + j) * 32, source);
            }
        } else {
            for (int j = 0; j < 8; j++) {
                int64_t i = (g + j) * group;
                __m256i acc = _mm256_setzero_si256();
                for (int64_t c = 0; c < chunks; c++) {
                    acc = chunk_i8(acc, rc, q, i + 32 * c, source);
                }
                partial[j] = acc;
            }
        }
        __m256 t = _mm256_mul_ps(_mm256_loadu_ps(scales + g), _mm256_cvtepi32_ps(reduce8x8(partial)));
        if (mins) {
            __m256 m = _mm256_mul_ps(_mm256_loadu_ps(mins + g),
                                     _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *) (qsums + g))));
            t = _mm256_add_ps(t, m);
        }
        _mm256_storeu_ps(terms + g, t);
    }
    for (; g < whole; g++) { /* long groups: few per row, one at a time */
        int64_t i = g * group;
        __m256i acc = _mm256_setzero_si256();
        for (int64_t c = 0; c < chunks; c++) {
            if (source == BP_INT8 && (c & 1) == 0) {
                _mm_prefetch((const char *) (rc->codes + i + 32 * c + distance), _MM_HINT_T0);
            }
            acc = chunk_i8(acc, rc, q, i + 32 * c, source);
        }
        terms[g] = group_term(scales[g], sum8i(acc), mins, g, mins ? qsums[g] : 0);
    }
    return g;
}
#endif

#ifdef BP_VNNI
/*
 * Four vectors of int32 partial sums, each two halves of eight lanes (one group's sums per half), to the vector of
 * the eight halves' totals: p[0..3]'s low halves, then their high halves. Integer adds, exact in any order.
 */
ALWAYS_INLINE __m256i halves_sums4(const __m512i p[4]) {
    /* per 128-bit lane: [a0 + a2, b0 + b2, a1 + a3, b1 + b3], likewise c, d */
    __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(p[0], p[1]), _mm512_unpackhi_epi32(p[0], p[1]));
    __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2], p[3]), _mm512_unpackhi_epi32(p[2], p[3]));
    /* per 128-bit lane: a, b, c, d's sums over it */
    __m512i u = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
    /* 128-bit lanes 0 + 1 (the low halves) and 2 + 3 (the high halves) */
    __m512i v = _mm512_add_epi32(u, _mm512_shuffle_i32x4(u, u, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm512_castsi512_si256(_mm512_shuffle_i32x4(v, v, _MM_SHUFFLE(2, 0, 2, 0)));
}

/*
 * Codes in memory (INT8 rows, or rows decoded for a batch) with VNNI, 64 codes per vector: vpdpbusd wants one
 * side unsigned, so each code's sign bit is flipped (c + 128, in 1 .. 255) and the sum corrected by the group's
 * sum of q: sum c q = sum (c + 128) q - 128 Q_g, exact in int32 (wrapping arithmetic where a huge group's
 * intermediate would not fit, the result fits). Groups of 32 come out of a vector two at a time (lanes 0-7 and
 * 8-15) and are summed across lanes eight at a time; groups of a multiple of 64 run two chains of vectors. Whole
 * groups only; returns how many it did.
 */
static int64_t code_groups_vnni(const int8_t *codes, const int8_t *q, const int32_t *qsums, const float *scales,
                                const float *mins, int64_t k, int64_t group, float *terms) {
    const __m512i flip = _mm512_set1_epi8((char) 0x80);
    int64_t whole = k / group;
    int64_t g = 0;
    if (group == 32) {
        for (; g + 8 <= whole; g += 8) {
            const int8_t *c = codes + g * 32;
            for (int ahead = 0; ahead < 256; ahead += 64) {
                _mm_prefetch((const char *) (c + ahead + PREFETCH_BYTES), _MM_HINT_T0);
            }
            __m512i p[4]; /* p[j]: groups 2j (low half) and 2j + 1 */
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                p[j] = _mm512_dpbusd_epi32(_mm512_setzero_si512(),
                                           _mm512_xor_si512(_mm512_loadu_si512(c + 64 * j), flip),
                                           _mm512_loadu_si512(q + g * 32 + 64 * j));
            }
            /* halves_sums4 gives groups 0 2 4 6 1 3 5 7 */
            __m256i in_order = _mm256_permutevar8x32_epi32(halves_sums4(p), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            __m256i qs = _mm256_loadu_si256((const __m256i *) (qsums + g));
            __m256i sums = _mm256_sub_epi32(in_order, _mm256_slli_epi32(qs, 7));
            __m256 t = _mm256_mul_ps(_mm256_loadu_ps(scales + g), _mm256_cvtepi32_ps(sums));
            if (mins) {
                t = _mm256_add_ps(t, _mm256_mul_ps(_mm256_loadu_ps(mins + g), _mm256_cvtepi32_ps(qs)));
            }
            _mm256_storeu_ps(terms + g, t);
        }
        return g;
    }
    if (group % 64 != 0) {
        return 0;
    }
    for (; g < whole; g++) {
        const int8_t *c = codes + g * group;
        const int8_t *qg = q + g * group;
        __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
        int64_t i = 0;
        for (; i + 128 <= group; i += 128) {
            _mm_prefetch((const char *) (c + i + PREFETCH_BYTES), _MM_HINT_T0);
            _mm_prefetch((const char *) (c + i + 64 + PREFETCH_BYTES), _MM_HINT_T0);
            a0 = dpbusd512(a0, _mm512_xor_si512(_mm512_loadu_si512(c + i), flip), _mm512_loadu_si512(qg + i));
            a1 = dpbusd512(a1, _mm512_xor_si512(_mm512_loadu_si512(c + i + 64), flip),
                           _mm512_loadu_si512(qg + i + 64));
        }
        if (i < group) { /* one vector left */
            a0 = dpbusd512(a0, _mm512_xor_si512(_mm512_loadu_si512(c + i), flip), _mm512_loadu_si512(qg + i));
        }
        int32_t sum = (int32_t) ((uint32_t) _mm512_reduce_add_epi32(_mm512_add_epi32(a0, a1))
                                 - ((uint32_t) qsums[g] << 7));
        terms[g] = group_term(scales[g], sum, mins, g, mins ? qsums[g] : 0);
    }
    return g;
}
#endif

#ifdef __AVX2__
/* acc + sum(field * q) over the 32 values of sub-chunk s of a packed block (fields unsigned: no sign trick). */
ALWAYS_INLINE __m256i packed_chunk_i8(__m256i acc, __m256i block, int s, int b, const int8_t *q) {
    __m256i f = _mm256_and_si256(_mm256_srl_epi16(block, _mm_cvtsi32_si128(s * b)),
                                 _mm256_set1_epi8((char) ((1 << b) - 1)));
    return dot_add256(acc, f, _mm256_loadu_si256((const __m256i *) q));
}

/*
 * The lane sums of field * q for eight groups of m chunks (32 values each) from chunk c0 (a multiple of 8, so of the
 * chunks per block) of a packed row, group j in partial[j]. Where m is a constant (2, 4) the loops unroll, each
 * chunk's block and shift are constants and each block loads once.
 */
ALWAYS_INLINE void packed_groups8(const uint8_t *row, const int8_t *q, int64_t c0, int m, int b,
                                  __m256i partial[8]) {
    const int per_block = 8 / b;
    const uint8_t *blocks = row + c0 / per_block * 32;
    const int8_t *qc = q + c0 * 32;
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        __m256i acc = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int c = 0; c < m; c++) {
            int chunk = j * m + c;
            __m256i block = _mm256_loadu_si256((const __m256i *) (blocks + chunk / per_block * 32));
            acc = packed_chunk_i8(acc, block, chunk % per_block, b, qc + chunk * 32);
        }
        partial[j] = acc;
    }
}

#ifndef BP_VNNI
/* Blocks whose ternary pair sums add up in int16 in ternary_span_avx2 (see there). */
#define TERNARY_RUN_BLOCKS 8

/*
 * packed_span_tokens for TERNARY on the AVX2 build (below: the same sums), in fewer operations: fields 1 and 3 are
 * masked in place (w & 0x0C = 4 f) rather than shifted down first, so that one 16-bit shift by 4 a block serves fields
 * 2 and 3; their vpmaddubsw pair sums, 4 times the exact ones, go into a sum of their own, shifted back (exactly: every
 * term is a multiple of 4) once a run of TERNARY_RUN_BLOCKS blocks, where the other fields' sum joins it and one
 * vpmaddwd widens both (packed_block_vnni, with 32-bit sums, masks every field in place). A run's fourfold sum is at
 * most 8 blocks x 2 products x 2 pairs x 8 x 128 = 32768 in magnitude, reached only below zero (q = -128), which int16
 * holds; the plain one a quarter of that. Per 128 values and token: 13 vector operations and a half, where the shifted
 * fields took 17; from the caches (JMH, 1024x14336, two threads) 112 -> 127 G weights/s. On the Intel Xeon with AVX2
 * code throughout (`BITPLANE_JVM_OPTS="-Dbitplane.native.isa=avx2 -XX:UseAVX=2" ./bitplane bench --backend native
 * --activations int8 --encodings ternary --layout packed`, builds alternated, G weights/s): 4096x14336 70.4-83.1 ->
 * 83.2-94.4 (five rounds), 14336x4096 80.5-81.9 -> 88.7-96.2, 2048x5632 66.3-68.6 -> 75.6-79.8, 5632x2048 69.3-72.3 ->
 * 76.6-77.0, ternary@1024 76.6-77.3 -> 89.4-92.5 (two each); the 418M ternary model (`--model`, six rounds) decoded
 * 114.5-123.4 -> 119.5-136.1 tokens/s, 4-10% faster in each round, and read its prompts at 302-333 -> 331-367.
 * Spans shorter than a run (groups of 256, as TQ2_0's) keep the shifted fields: there this loop read 55.0-56.9 against
 * 63.1-63.3 (ternary@256, 4096x14336, twice), its run's setup and widening paid every two blocks.
 */
ALWAYS_INLINE void ternary_span_avx2(const uint8_t *row, const int8_t *q, int64_t k, int64_t start, int64_t end,
                                     __m256i acc[TOKEN_BLOCK], int tokens) {
    const __m256i low = _mm256_set1_epi8(0x03), high = _mm256_set1_epi8(0x0C), ones = _mm256_set1_epi16(1);
    for (int t = 0; t < tokens; t++) {
        acc[t] = _mm256_setzero_si256();
    }
    for (int64_t run = start / 128; run < end / 128; run += TERNARY_RUN_BLOCKS) {
        const int64_t run_end = run + TERNARY_RUN_BLOCKS < end / 128 ? run + TERNARY_RUN_BLOCKS : end / 128;
        __m256i plain[TOKEN_BLOCK], fours[TOKEN_BLOCK];
        for (int t = 0; t < tokens; t++) {
            plain[t] = _mm256_setzero_si256();
            fours[t] = _mm256_setzero_si256();
        }
#pragma GCC unroll 8
        for (int64_t i = run; i < run_end; i++) {
            const uint8_t *at = row + 32 * i;
            if (i % 2 == 0) { /* once a 64-byte line, as packed_span_tokens */
                PREFETCH_PACKED_AHEAD(at);
            }
            __m256i w = _mm256_loadu_si256((const __m256i *) at);
            __m256i w4 = _mm256_srli_epi16(w, 4);
            __m256i f0 = _mm256_and_si256(w, low), f1 = _mm256_and_si256(w, high); /* f1: 4 x field 1 */
            __m256i f2 = _mm256_and_si256(w4, low), f3 = _mm256_and_si256(w4, high);
#pragma GCC unroll 4
            for (int t = 0; t < tokens; t++) {
                const __m256i *qi = (const __m256i *) (q + t * k + 128 * i);
                plain[t] = _mm256_add_epi16(plain[t], _mm256_maddubs_epi16(f0, _mm256_loadu_si256(qi)));
                fours[t] = _mm256_add_epi16(fours[t], _mm256_maddubs_epi16(f1, _mm256_loadu_si256(qi + 1)));
                plain[t] = _mm256_add_epi16(plain[t], _mm256_maddubs_epi16(f2, _mm256_loadu_si256(qi + 2)));
                fours[t] = _mm256_add_epi16(fours[t], _mm256_maddubs_epi16(f3, _mm256_loadu_si256(qi + 3)));
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < tokens; t++) {
            __m256i exact = _mm256_add_epi16(plain[t], _mm256_srai_epi16(fours[t], 2));
            acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(exact, ones));
        }
    }
}
#endif

/*
 * acc[t] = the int32 lane sums of field * q over values [start, end) of one packed row (whole blocks), for `tokens`
 * tokens at once (1, or TOKEN_BLOCK for a batch; a constant where this is inlined): each shifted and masked field
 * vector serves every token (q + t k), so a batch decodes once per block of tokens. A vector holds VBYTES / 32
 * blocks (two with AVX-512: the fields of blocks B and B + 1 side by side, and the activations of both loaded to
 * match; a span's odd last block alone, the upper half zero).
 * Each line is prefetched once into L1 and once into L2, as the VNNI rows below are. The AVX2 build's ternary x INT8
 * with one scale a row ran here (now ternary_span_avx2; `bitplane bench --backend native --shape 4096x14336
 * --activations int8 --encodings ternary --layout packed`, -Dbitplane.native.isa=avx2 -XX:UseAVX=2, on the Intel Xeon):
 * with the L1 prefetch alone, every 32 bytes, it read 54-64 G weights/s in ten of fourteen runs (at 26-35 GB/s) and
 * 82-86 in four; with both, once a line, 81.9-85.6 in all seven (33-36 GB/s; at 26 GB/s both every 32 bytes read 68-75
 * against 54-58). The 418M ternary model on AVX2 code decodes level (130-143 -> 136-137 tokens/s), on AVX-512 too.
 */
ALWAYS_INLINE void packed_span_tokens(const uint8_t *row, const int8_t *q, int64_t k, int64_t start, int64_t end,
                                      vec acc[TOKEN_BLOCK], int32_t kind, int tokens) {
#ifndef BP_VNNI
    if (packed_bits(kind) == 2 && end - start >= 128 * TERNARY_RUN_BLOCKS) { /* shorter spans: see there */
        ternary_span_avx2(row, q, k, start, end, acc, tokens);
        return;
    }
#endif
    const int b = packed_bits(kind);
    const int per_block = 8 / b;
    const int64_t v = 32 * per_block;
    const vec mask = v_set1_8((1 << b) - 1);
    for (int t = 0; t < tokens; t++) {
        acc[t] = v_zero();
    }
    for (int64_t i = start; i < end; i += v * (VBYTES / 32)) {
        const int both = i + v < end; /* a second block for the upper half (AVX-512 only) */
        if (i / v % 2 == 0) { /* once a 64-byte line: into L1, and L2_AHEAD times as far into L2 */
            PREFETCH_PACKED_AHEAD(row + i / v * 32);
        }
        vec block = v_load_halves(row + i / v * 32, 32, both);
        /* A block's pair sums add up in 16 bits (at most 4 x 2 x 3 x 127 or 2 x 2 x 15 x 127), so AVX2's
           widening vpmaddwd runs once per block, not once per 32 values. */
        vec pairs[TOKEN_BLOCK];
        for (int t = 0; t < tokens; t++) {
            pairs[t] = v_zero();
        }
#pragma GCC unroll 4
        for (int s = 0; s < per_block; s++) {
            vec f = v_and(v_srli16(block, s * b), mask);
#pragma GCC unroll 4
            for (int t = 0; t < tokens; t++) {
                pairs[t] = v_pairs_add(pairs[t], f, v_load_halves(q + t * k + i + 32 * s, v, both));
            }
        }
#pragma GCC unroll 4
        for (int t = 0; t < tokens; t++) {
            acc[t] = v_add32(acc[t], v_widen_pairs(pairs[t]));
        }
    }
}

/*
 * The first `count` groups of one packed row, groups being whole blocks, for `tokens` tokens at once. Token t's
 * group sums of q are at qsums[t * qsum_stride + g] and its terms go to terms[t * token_stride + g]: the same
 * integer sums and float operations whatever the number of tokens.
 */
ALWAYS_INLINE void packed_row_tokens(const uint8_t *row, const int8_t *q, int64_t k, const int32_t *qsums,
                                     int64_t qsum_stride, int64_t count, const float *scales, const float *mins,
                                     int64_t group, float *terms, int64_t token_stride, int32_t kind, int tokens) {
    for (int64_t g = 0; g < count; g++) {
        vec acc[TOKEN_BLOCK];
        packed_span_tokens(row, q, k, g * group, (g + 1) * group, acc, kind, tokens);
        for (int t = 0; t < tokens; t++) {
            int32_t qsum = qsums[t * qsum_stride + g];
            terms[t * token_stride + g] = group_term(scales[g], v_sum32(acc[t]) - packed_offset(kind) * qsum, mins,
                                                     g, qsum);
        }
    }
}

/* A vector's int32 lanes added pairwise into eight (the 64-byte build's halves; the 32-byte vector as it is). */
ALWAYS_INLINE __m256i fold256(vec a) {
#ifdef BP_VNNI
    return _mm256_add_epi32(_mm512_castsi512_si256(a), _mm512_extracti64x4_epi64(a, 1));
#else
    return a;
#endif
}

/*
 * y[0..7] for eight rows of one group each from their code sums: (0 + s acc [+ m Q]) x xscale, the float steps of
 * group_term and sum_terms, with the rows' f16 scales (and mins) converted where they lie in the file.
 */
ALWAYS_INLINE void store_one_group_rows(__m256i sums, const uint8_t *scales_f16, const uint8_t *mins_f16,
                                        int32_t qsum, float xscale, float *y) {
    __m256 t = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) scales_f16)),
                             _mm256_cvtepi32_ps(sums));
    if (mins_f16) {
        t = _mm256_add_ps(t, _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) mins_f16)),
                                           _mm256_set1_ps((float) qsum)));
    }
    _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_add_ps(_mm256_setzero_ps(), t), _mm256_set1_ps(xscale)));
}

#ifdef BP_VNNI
/*
 * One token's q laid out for packed rows read two blocks per 64-byte vector (VNNI build): per pair of blocks (2 v
 * values from i), vector s holds q[i + 32 s ..] and then q[i + v + 32 s ..], 32 each, the values that shift s of
 * the pair's fields meets (a lone last block's upper half of zero fields meets zeros). One load then serves each
 * product, where reading q in place took two loads and an insert per product (64 x 14336 ternary from L2, one
 * thread: 157 -> 193 G weights/s). k is a multiple of v; qp holds k rounded up to 2 v bytes.
 */
static void pair_blocks_q(const int8_t *q, int64_t k, int32_t kind, int8_t *qp) {
    const int per_block = 8 / packed_bits(kind);
    const int64_t v = 32 * per_block;
    for (int64_t i = 0; i < k; i += 2 * v) {
        for (int s = 0; s < per_block; s++) {
            memcpy(qp + i + 64 * s, q + i + 32 * s, 32);
            if (i + v < k) {
                memcpy(qp + i + 64 * s + 32, q + i + v + 32 * s, 32);
            } else {
                memset(qp + i + 64 * s + 32, 0, 32);
            }
        }
    }
}
#endif

#ifdef BP_VNNI
/*
 * Independent sets of sums in packed_rows_one_group: with one set, each vpdpbusd waited on the one a block before
 * (its sum's latency). 4096 x 14336 ternary, one token (a C probe alternating builds, two threads from DRAM, two
 * rounds of 16 passes): 203-228 -> 239-243 G weights/s with two sets; 2048 x 5632: 227-241 -> 272-283; 256 x 14336
 * from L2 on one thread: 241 -> 270. Three or four sets did no better than two from DRAM (in decode order, the C
 * probe below, three rounds: two sets 775-786 tokens/s of layer products, three 728-734, four 762-771).
 * Reverted once (c8d8349) on `bitplane bench --shape 4096x14336`, where it read 7-16% slower; back because decoding
 * reads these rows in smaller products between other work, and there it is faster: the 418M ternary model,
 * `bitplane bench --model` with each build's library alternated three times, 286-304 -> 306-335 tokens/s (a C probe
 * running a layer's products in decode order, builds alternated token by token: 7-9%), while that one product read
 * 208-222 against 205-208 (alternated four times) and W4A8 decode read alike.
 */
#define PACKED_SETS 2


/*
 * Where packed_rows_one_group's sets of sums read a row in parts, each set its own (PACKED_SETS streams a row),
 * rather than neighbouring blocks: rows of at least this many steps (PACKED_SETS blocks of 64 bytes a step; 8 is
 * 1 KB a row). `bitplane bench --backend native --encodings ternary --activations int8 --layout packed` on the Intel
 * Xeon, alternated two to four times, G weights/s: 14336x4096 99-103 -> 120-122, 4096x14336 102-105 -> 107-114,
 * 2048x5632 93-95 -> 93-96; at 5632x2048 (512-byte rows, parts 256 bytes apart) parts read 82-84 against 91, so
 * shorter rows go two rows at a time (packed_row_pairs), or, ending in half a block, keep neighbouring blocks.
 */
#define PACKED_PART_MIN_STEPS 8

/*
 * acc[s] += the products of field s of each byte of a 64-byte block of packed rows (b bits a field, a constant
 * where inlined) with q as pair_blocks_q laid it out (qa: 64 codes a field). Field s is masked where it stands, not
 * shifted down: the byte is field * 2^(s b) (at most 192 or 240, still an unsigned byte), and the caller shifts
 * acc[s] back once at the end, exactly (every term is a multiple of 2^(s b)). One instruction a field fewer.
 */
ALWAYS_INLINE void packed_block_vnni(__m512i block, const int8_t *qa, int b, __m512i acc[4]) {
#pragma GCC unroll 4
    for (int s = 0; s < 8 / b; s++) {
        __m512i in_place = _mm512_set1_epi8((char) (((1 << b) - 1) << (s * b)));
        acc[s] = dpbusd512(acc[s], _mm512_and_si512(block, in_place), _mm512_loadu_si512(qa + 64 * s));
    }
}

/* A row's sums of field x q from packed_block_vnni's (each field's shifted back down, exactly), folded to 8 lanes. */
ALWAYS_INLINE __m256i packed_row_sum(const __m512i acc[4], int b) {
    __m512i sum = _mm512_setzero_si512();
    for (int s = 0; s < 8 / b; s++) {
        sum = _mm512_add_epi32(sum, _mm512_srai_epi32(acc[s], s * b));
    }
    return fold256(sum);
}
#endif

#ifdef BP_VNNI
/*
 * packed_rows_one_group's rows shorter than PACKED_PART_MIN_STEPS steps, of whole 64-byte blocks: rows j and j +
 * ROW_BLOCK / 2 side by side, each into its own sums (two streams a thread, and each load of q serves both rows),
 * their sums into partial[j] and partial[j + ROW_BLOCK / 2]. `bitplane bench --backend native --encodings ternary
 * --activations int8 --layout packed` on the Intel Xeon, alternated four times: 5632x2048 (512-byte rows)
 * 80.0-81.5 -> 90.3-94.5 G weights/s. The 418M ternary model, whose products are mostly such rows, within the noise
 * (`bench --backend native --model`, eight rounds: 167-199 against 178-210 tokens/s). On the AMD EPYC rows side by
 * side had read slower from DRAM (141-184 against 179-199); not measured there since.
 */
ALWAYS_INLINE void packed_row_pairs(const uint8_t *rows, int64_t stride, int64_t k, const int8_t *qp, int32_t kind,
                                    __m256i partial[ROW_BLOCK]) {
    const int b = packed_bits(kind);
    const int64_t v = 32 * (8 / b);
    const int64_t blocks = k / (2 * v);
    for (int j = 0; j < ROW_BLOCK / 2; j++) {
        const uint8_t *row[2] = {rows + j * stride, rows + (j + ROW_BLOCK / 2) * stride};
        __m512i acc[2][4];
        for (int a = 0; a < 2; a++) {
            for (int s = 0; s < 4; s++) {
                acc[a][s] = _mm512_setzero_si512();
            }
        }
        for (int64_t i = 0; i < blocks; i++) {
#pragma GCC unroll 2
            for (int a = 0; a < 2; a++) {
                PREFETCH_PACKED_AHEAD(row[a] + 64 * i);
                packed_block_vnni(_mm512_loadu_si512(row[a] + 64 * i), qp + 2 * v * i, b, acc[a]);
            }
        }
        partial[j] = packed_row_sum(acc[0], b);
        partial[j + ROW_BLOCK / 2] = packed_row_sum(acc[1], b);
    }
}
#endif

/*
 * One token over ROW_BLOCK packed rows of one group each (a scale per row, as BitNet-style ternary models have;
 * k a multiple of the block): the rows' sums are reduced together and their outputs formed eight at a time, with
 * the scales read straight from the file's f16s. A short row (2048 values: 512 bytes of ternary) would otherwise
 * pay about as much for its setup, reduction and scale conversion as for its products. Same integer sums and
 * float steps as the general path (group_term, then sum_terms from 0): y = (0 + s (acc - offset Q) [+ m Q]) x.
 * The VNNI build reads q as pair_blocks_q laid it out (qp), one chain of products per shift; the AVX2 build reads q
 * in place (qp is q).
 */
ALWAYS_INLINE void packed_rows_one_group(const uint8_t *rows, int64_t stride, int64_t k, const int8_t *qp,
                                         int32_t qsum, const uint8_t *scales_f16, const uint8_t *mins_f16,
                                         float xscale, float *y, int32_t kind) {
    __m256i partial[ROW_BLOCK];
    int rows_alone = ROW_BLOCK; /* rows summed one at a time below (none where packed_row_pairs sums them all) */
#ifdef BP_VNNI
    const int b = packed_bits(kind);
    const int per_block = 8 / b;
    const int64_t v = 32 * per_block;
    /* Each row: PACKED_SETS whole 64-byte blocks (two of 32) a step, each into its own sums: set a's from part a of
       the row (blocks a x steps onwards) in rows of PACKED_PART_MIN_STEPS steps or more, else neighbouring blocks;
       then the block left, then the row's last 32-byte block if their count is odd. One loop without a test
       inside, where loading one or two halves in the loop had cost a branch and a jump each step (one token of
       2048 x 5632 ternary from L2, one thread: 123 -> 151 G weights/s; with dpbusd512's sums in place, 188).
       Shorter rows of whole blocks go two rows at a time instead (packed_row_pairs). */
    const int64_t steps = k / (2 * v) / PACKED_SETS;
    const int parts = steps >= PACKED_PART_MIN_STEPS;
    const int64_t gap = parts ? steps : 1;          /* blocks from one set's block to the next set's */
    const int64_t step = parts ? 1 : PACKED_SETS;   /* blocks a step advances */
    if (!parts && k % (2 * v) == 0) {
        packed_row_pairs(rows, stride, k, qp, kind, partial);
        rows_alone = 0;
    }
#endif
    for (int j = 0; j < rows_alone; j++) {
#ifdef BP_VNNI
        const uint8_t *at = rows + j * stride;
        const int8_t *qa = qp;
        const uint8_t *whole_end = at + k / (2 * v) * 64; /* past the row's whole 64-byte blocks */
        __m512i acc[PACKED_SETS][4];
        for (int a = 0; a < PACKED_SETS; a++) {
            for (int s = 0; s < 4; s++) {
                acc[a][s] = _mm512_setzero_si512();
            }
        }
        for (int64_t i = 0; i < steps; i++, at += 64 * step, qa += 2 * v * step) {
#pragma GCC unroll 4
            for (int a = 0; a < PACKED_SETS; a++) {
                const uint8_t *block = at + 64 * gap * a;
                PREFETCH_PACKED_AHEAD(block);
                packed_block_vnni(_mm512_loadu_si512(block), qa + 2 * v * gap * a, b, acc[a]);
            }
        }
        at = rows + j * stride + 64 * PACKED_SETS * steps;
        qa = qp + 2 * v * PACKED_SETS * steps;
        for (; at < whole_end; at += 64, qa += 2 * v) {
            packed_block_vnni(_mm512_loadu_si512(at), qa, b, acc[0]);
        }
        if (k % (2 * v) != 0) {
            packed_block_vnni(v_load_halves(at, 32, 0), qa, b, acc[0]);
        }
        for (int a = 1; a < PACKED_SETS; a++) { /* the sets' sums of each field together, then shifted down */
            for (int s = 0; s < per_block; s++) {
                acc[0][s] = _mm512_add_epi32(acc[0][s], acc[a][s]);
            }
        }
        partial[j] = packed_row_sum(acc[0], b);
#else
        vec acc[TOKEN_BLOCK];
        packed_span_tokens(rows + j * stride, qp, k, 0, k, acc, kind, 1);
        partial[j] = fold256(acc[0]);
#endif
    }
    store_one_group_rows(_mm256_sub_epi32(reduce8x8(partial), _mm256_set1_epi32(packed_offset(kind) * qsum)),
                         scales_f16, mins_f16, qsum, xscale, y);
}

/*
 * terms[0..7] of eight groups of packed fields from their sums of field x q: s_g (sum_g - offset Q_g) (+ m_g Q_g),
 * Q_g the group's sum of q (qsums[0..7]); elementwise, so each rounds as group_term does.
 */
ALWAYS_INLINE void packed_terms8(__m256i sums, int32_t kind, const int32_t *qsums, const float *scales,
                                 const float *mins, float *terms) {
    __m256i qs = _mm256_loadu_si256((const __m256i *) qsums);
    sums = _mm256_sub_epi32(sums, _mm256_mullo_epi32(_mm256_set1_epi32(packed_offset(kind)), qs));
    __m256 t = _mm256_mul_ps(_mm256_loadu_ps(scales), _mm256_cvtepi32_ps(sums));
    if (mins) {
        t = _mm256_add_ps(t, _mm256_mul_ps(_mm256_loadu_ps(mins), _mm256_cvtepi32_ps(qs)));
    }
    _mm256_storeu_ps(terms, t);
}

/*
 * The terms of the first whole groups of 32 m values (1 < m < 8) of a packed row, eight groups at a time; returns
 * how many it did. kind is a constant where this is inlined.
 */
ALWAYS_INLINE int64_t short_groups_i8(const uint8_t *row, const int8_t *q, const int32_t *qsums,
                                      const float *scales, const float *mins, int64_t whole, int64_t group,
                                      float *terms, int32_t kind) {
    const int b = packed_bits(kind);
    const int m = (int) (group / 32);
    int64_t g = 0;
    for (; g + 8 <= whole; g += 8) { /* eight groups: group x b bytes of fields */
        const uint8_t *at = row + g * group * b / 8;
        for (int64_t ahead = 0; ahead < group * b; ahead += 64) {
            _mm_prefetch((const char *) (at + ahead + PREFETCH_BYTES), _MM_HINT_T0);
        }
        __m256i partial[8];
        switch (m) { /* the common sizes with constant loops */
            case 2:
                packed_groups8(row, q, 2 * g, 2, b, partial);
                break;
            case 4:
                packed_groups8(row, q, 4 * g, 4, b, partial);
                break;
            default:
                packed_groups8(row, q, m * g, m, b, partial);
                break;
        }
        packed_terms8(reduce8x8(partial), kind, qsums + g, scales + g, mins ? mins + g : 0, terms + g);
    }
    return g;
}

#ifdef BP_VNNI
/*
 * Packed rows in groups of 32 with VNNI, eight groups (256 values: 64 bytes of ternary, 128 of INT4) at a time,
 * two groups per 64-byte product: a vector of fields holds two blocks, so one shift and mask gives the same 32
 * values of both, and the activations of those two groups are put side by side to match (one vshufi64x2 from
 * two loads). Four such products hold the eight groups' sums, in halves, summed across lanes together
 * (halves_sums4), where the 32-byte path made eight products and a reduction of eight vectors. Same integer sums
 * and float steps as that path. Returns how many groups it did (a multiple of 8).
 */
ALWAYS_INLINE int64_t packed_g32_vnni(const uint8_t *row, const int8_t *q, const int32_t *qsums, const float *scales,
                                      const float *mins, int64_t whole, float *terms, int32_t kind) {
    const int b = packed_bits(kind);
    const __m512i mask = _mm512_set1_epi8((char) ((1 << b) - 1));
    const __m512i zero = _mm512_setzero_si512();
    int64_t g = 0;
    for (; g + 8 <= whole; g += 8) {
        const uint8_t *at = row + g * 4 * b; /* 32 b bytes per eight groups */
        const int8_t *qg = q + g * 32;
        _mm_prefetch((const char *) (at + PREFETCH_BYTES), _MM_HINT_T0);
        __m512i p[4];
        __m256i sums;
        if (b == 2) {
            /* blocks of 128 values: the vector's halves are groups 0-3 and 4-7; shift 2s gives groups s, 4 + s */
            __m512i z = _mm512_loadu_si512(at);
            __m512i q01 = _mm512_loadu_si512(qg), q23 = _mm512_loadu_si512(qg + 64);
            __m512i q45 = _mm512_loadu_si512(qg + 128), q67 = _mm512_loadu_si512(qg + 192);
            p[0] = _mm512_dpbusd_epi32(zero, _mm512_and_si512(z, mask), _mm512_shuffle_i64x2(q01, q45, 0x44));
            p[1] = _mm512_dpbusd_epi32(zero, _mm512_and_si512(_mm512_srli_epi16(z, 2), mask),
                                       _mm512_shuffle_i64x2(q01, q45, 0xEE));
            p[2] = _mm512_dpbusd_epi32(zero, _mm512_and_si512(_mm512_srli_epi16(z, 4), mask),
                                       _mm512_shuffle_i64x2(q23, q67, 0x44));
            p[3] = _mm512_dpbusd_epi32(zero, _mm512_and_si512(_mm512_srli_epi16(z, 6), mask),
                                       _mm512_shuffle_i64x2(q23, q67, 0xEE));
            sums = halves_sums4(p); /* groups 0 1 2 3 | 4 5 6 7 */
        } else {
            /* blocks of 64 values: vector h's halves are groups 4h, 4h + 1 and 4h + 2, 4h + 3; shift 4s gives
               groups 4h + s, 4h + 2 + s */
            _mm_prefetch((const char *) (at + 64 + PREFETCH_BYTES), _MM_HINT_T0);
            for (int h = 0; h < 2; h++) {
                __m512i z = _mm512_loadu_si512(at + 64 * h);
                __m512i qa = _mm512_loadu_si512(qg + 128 * h), qb = _mm512_loadu_si512(qg + 128 * h + 64);
                p[2 * h] = _mm512_dpbusd_epi32(zero, _mm512_and_si512(z, mask), _mm512_shuffle_i64x2(qa, qb, 0x44));
                p[2 * h + 1] = _mm512_dpbusd_epi32(zero, _mm512_and_si512(_mm512_srli_epi16(z, 4), mask),
                                                   _mm512_shuffle_i64x2(qa, qb, 0xEE));
            }
            /* groups 0 1 4 5 | 2 3 6 7, put in order */
            sums = _mm256_permutevar8x32_epi32(halves_sums4(p), _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7));
        }
        packed_terms8(sums, kind, qsums + g, scales + g, mins ? mins + g : 0, terms + g);
    }
    return g;
}
#endif

/*
 * Packed rows with int8 activations, for groups of 32 to 224 values or of whole blocks. Short groups go eight at a
 * time: per 32 values a shift, a mask and a product step on the unsigned fields, each group's steps adding into its
 * own vector, and the eight summed across lanes together (one horizontal sum per group, as the whole-block path
 * does, cost more than the products of 64 values). The fields' offset comes off as offset * qsum_g (qsum_g: the
 * group's sum of q). Returns how many groups it did.
 */
ALWAYS_INLINE int64_t packed_groups_i8(const row_codes *rc, const int8_t *q, const int32_t *qsums,
                                       const float *scales, const float *mins, int64_t k, int64_t group,
                                       float *terms, int32_t kind) {
    const int b = packed_bits(kind);
    const int64_t v = 32 * (8 / b); /* values per 32-byte block */
    int64_t whole = k / group;
    int64_t g = 0;
#ifdef BP_VNNI
    if (group == 32) {
        return packed_g32_vnni(rc->planes, q, qsums, scales, mins, whole, terms, kind);
    }
#endif
    if (group == 32) {
        const int per_block = 8 / b; /* 32-value chunks per 32-byte block */
        for (; g + 8 <= whole; g += 8) { /* 8 groups = 256 values = 8 / per_block blocks */
            _mm_prefetch((const char *) (rc->planes + (g * 32 / v) * 32 + PREFETCH_BYTES), _MM_HINT_T0);
            _mm_prefetch((const char *) (rc->planes + (g * 32 / v) * 32 + PREFETCH_BYTES + 64), _MM_HINT_T0);
            __m256i partial[8];
#pragma GCC unroll 4
            for (int blk = 0; blk < 8 / per_block; blk++) {
                __m256i block = _mm256_loadu_si256((const __m256i *) (rc->planes + (g * 32 / v + blk) * 32));
#pragma GCC unroll 4
                for (int s = 0; s < per_block; s++) {
                    partial[blk * per_block + s] = packed_chunk_i8(_mm256_setzero_si256(), block, s, b,
                                                                   q + (g + blk * per_block + s) * 32);
                }
            }
            packed_terms8(reduce8x8(partial), kind, qsums + g, scales + g, mins ? mins + g : 0, terms + g);
        }
        return g;
    }
    if (group % 32 == 0 && group < 256) {
        g = short_groups_i8(rc->planes, q, qsums, scales, mins, whole, group, terms, kind);
        if (g == whole || group % v != 0) {
            return g;
        }
    }
    if (group % v != 0) {
        return 0;
    }
    /* groups of whole blocks, one at a time (those left after eight at a time, if any) */
    int64_t from = g * group;
    packed_row_tokens(rc->planes + from / v * 32, q + from, k, qsums + g, 0, whole - g, scales + g, mins ? mins + g : 0,
                      group, terms + g, 0, kind, 1);
    return whole;
}
#endif

/*
 * Bit planes for one token, with no bits expanded: a plane's own bytes are the fields, and the token's codes are
 * permuted to match them, once per token (plane_token_prepare). W = VBYTES, the vector's bytes (32 or 64).
 *   A W-byte block B of a plane holds values 8W B .. 8W B + 8W - 1: bit s of byte j is value 8W B + 8 j + s.
 *   Shifted right by s and masked to its low bit, the block is W one-bit fields, byte j for value 8W B + 8 j + s,
 *   so the byte products against qp[8W B + W s + j] = q[8W B + 8 j + s] sum them; summed over s = 0..7, int32
 *   lane m of the block holds values 8W B + 32 m .. 8W B + 32 m + 31 (bytes 4m .. 4m + 3).
 *   A group of 32 is one lane: W / 4 groups' sums come out side by side, with no horizontal sums; a group of
 *   32 m (m = 2, 4, 8 while it fits a block) is m neighbouring lanes, added across the vector.
 * The fields are unsigned, R = sum(f q) per lane; the code sum is R minus an offset times Q, the lane's sum of q
 * (qs32, per 32 values): BINARY f = sign bit, code = 1 - 2 f, so Q - 2R; TERNARY f = code + 1 (from the planes:
 * 1 - mask + 2 (mask and not sign)), so R - Q; INT4 f = u, code = u - 8, so R - 8 Q; INT4_ASYM R.
 * Per 32 values this is a shift and a mask per plane and a product step, against expanding every plane's bits
 * (a shuffle, a mask, a compare) and the sign trick.
 */
typedef struct {
    int8_t *qp;    /* the token's codes permuted as above, zero past k */
    int32_t *qs32; /* the token's sums of q per 32 values, zero past k */
} plane_token;

/* Values per block of a plane: 8 per byte of a vector. */
#define PLANE_BLOCK_VALUES (8 * VBYTES)

/* Rounds k up to whole blocks: the length of qp (and 32 times that of qs32). */
static inline int64_t block_values(int64_t k) {
    return (k + PLANE_BLOCK_VALUES - 1) / PLANE_BLOCK_VALUES * PLANE_BLOCK_VALUES;
}

#ifdef __AVX2__
/*
 * Transposes an 8 x 8 byte matrix held as 8 little-endian words (row r = word r, column s = byte s) in place: in
 * round d = 1, 2, 4, each row r with (r & d) == 0 and row r + d swap their blocks of d bytes across the diagonal.
 */
static inline void transpose8x8_bytes(uint64_t m[8]) {
    static const uint64_t low_blocks[3] = {0x00FF00FF00FF00FFULL, 0x0000FFFF0000FFFFULL, 0x00000000FFFFFFFFULL};
    for (int round = 0; round < 3; round++) {
        int d = 1 << round;
        int bits = 8 << round;
        for (int r = 0; r < 8; r++) {
            if (r & d) {
                continue;
            }
            uint64_t t = ((m[r] >> bits) ^ m[r + d]) & low_blocks[round];
            m[r + d] ^= t;
            m[r] ^= t << bits;
        }
    }
}

/*
 * A block of whole values is eight rows of VBYTES bytes: value 8 j + s goes to byte j of row s, an 8 x 8 byte
 * transpose for each 8 j's (64 values). The block holding k (if k is not a multiple of it) goes value by value,
 * zero past k. Per-call work: at k = 14336 the value-by-value loop had taken 16 us, as long as 8 rows' products.
 */
static void plane_token_prepare(const int8_t *q, int64_t k, const plane_token *pt) {
    int64_t len = block_values(k);
    int64_t whole = k / PLANE_BLOCK_VALUES * PLANE_BLOCK_VALUES;
    for (int64_t b = 0; b < whole; b += PLANE_BLOCK_VALUES) {
        for (int j = 0; j < VBYTES; j += 8) {
            uint64_t m[8];
            memcpy(m, q + b + 8 * j, sizeof m);
            transpose8x8_bytes(m);
            for (int s = 0; s < 8; s++) {
                memcpy(pt->qp + b + VBYTES * s + j, &m[s], 8);
            }
        }
    }
    for (int64_t b = whole; b < len; b += PLANE_BLOCK_VALUES) {
        for (int s = 0; s < 8; s++) {
            for (int j = 0; j < VBYTES; j++) {
                int64_t i = b + 8 * j + s;
                pt->qp[b + VBYTES * s + j] = i < k ? q[i] : 0;
            }
        }
    }
    for (int64_t c = 0; c < len / 32; c++) {
        pt->qs32[c] = 32 * c < k ? sum_i8(q + 32 * c, 32 * c + 32 < k ? 32 : k - 32 * c) : 0;
    }
}

/* Bit s of each byte of plane p moved to bit p (the others cleared): INT4's field u built bit by bit. */
ALWAYS_INLINE vec plane_bit(vec plane, int s, int p) {
    vec moved = s >= p ? v_srli16(plane, s - p) : v_slli16(plane, p - s);
    return v_and(moved, v_set1_8(1 << p));
}

/* R per lane for block blk of a row's planes (see above); encoding is a constant where this is inlined. */
ALWAYS_INLINE vec plane_block_i8(const uint8_t *row, int64_t plane_bytes, const int8_t *qp, int64_t blk,
                                 int32_t encoding) {
    const vec one = v_set1_8(1);
    const uint8_t *at = row + VBYTES * blk;
    vec p0 = v_load(at);
    vec p1 = p0, p2 = p0, p3 = p0;
    if (encoding != BP_BINARY) {
        p1 = v_load(at + plane_bytes);
    }
    if (encoding == BP_TERNARY) { /* p0: 1 where the value is 0; p1: 1 where it is +1 (mask and not sign) */
        vec mask = p0;
        p0 = v_andnot(mask, v_set1_8(0xFF));
        p1 = v_andnot(p1, mask);
    }
    if (encoding == BP_INT4 || encoding == BP_INT4_ASYM) {
        p2 = v_load(at + 2 * plane_bytes);
        p3 = v_load(at + 3 * plane_bytes);
    }
    const int8_t *qb = qp + PLANE_BLOCK_VALUES * blk;
    /* AVX2's pair sums stay within int16 over the 8 shifts: at most 8 x 2 x 15 x 127. Two chains, even and odd
       shifts, since a chain of eight vpdpbusd waits on each one's latency. */
    vec pairs[2] = {v_zero(), v_zero()};
#pragma GCC unroll 8
    for (int s = 0; s < 8; s++) {
        vec f;
        if (encoding == BP_BINARY) {
            f = v_and(v_srli16(p0, s), one);
        } else if (encoding == BP_TERNARY) {
            f = v_or(plane_bit(p0, s, 0), plane_bit(p1, s, 1));
        } else {
            f = v_or(v_or(plane_bit(p0, s, 0), plane_bit(p1, s, 1)), v_or(plane_bit(p2, s, 2), plane_bit(p3, s, 3)));
        }
        pairs[s & 1] = v_pairs_add(pairs[s & 1], f, v_load(qb + VBYTES * s));
    }
    return v_add32(v_widen_pairs(pairs[0]), v_widen_pairs(pairs[1]));
}

/* Code sums from R and Q, lane by lane (see above). */
ALWAYS_INLINE vec plane_code_sums(vec r, vec q, int32_t encoding) {
    switch (encoding) {
        case BP_BINARY:
            return v_sub32(q, v_add32(r, r));
        case BP_TERNARY:
            return v_sub32(r, q);
        case BP_INT4:
            return v_sub32(r, v_slli32(q, 3));
        default:
            return r;
    }
}

ALWAYS_INLINE void prefetch_planes(const uint8_t *at, int64_t plane_bytes, int32_t encoding) {
    int planes = encoding == BP_BINARY ? 1 : encoding == BP_TERNARY ? 2 : 4;
    for (int p = 0; p < planes; p++) {
        _mm_prefetch((const char *) (at + p * plane_bytes + PREFETCH_BYTES), _MM_HINT_T0);
    }
}

/*
 * The terms of one token's groups of a plane row by whole blocks, for groups of 32, 64, ... that divide the block
 * (the block's groups side by side, while whole groups lie in a block every plane can load; groups of 64 to 256 had
 * gone 32 values at a time, at a third to a quarter of the speed) or of a multiple of the block, or one group per row
 * (the values a block cannot reach go through group_sum_i8). Returns how many groups it did; the caller does the
 * rest.
 */
ALWAYS_INLINE int64_t plane_groups_i8(const row_codes *rc, const plane_token *pt, const int8_t *q,
                                      const int32_t *qsums, const float *scales, const float *mins, int64_t k,
                                      int64_t group, int64_t groups, float *terms, int32_t encoding) {
    const int lanes = VBYTES / 4;
    int64_t blocks = rc->plane_bytes / VBYTES; /* whole vector loads in a plane row */
    if (group % 32 == 0 && group < PLANE_BLOCK_VALUES && PLANE_BLOCK_VALUES % group == 0) {
        /* Groups of 32 m inside a block: its lanes (32 values each) added m at a time, then per_block groups'
           terms side by side. Adding the lanes' integer sums is exact; the float steps are group_term's. */
        const int m = (int) (group / 32);
        const int per_block = lanes / m;
        int64_t count = blocks < groups / per_block ? blocks : groups / per_block;
        for (int64_t b = 0; b < count; b++) {
            prefetch_planes(rc->planes + VBYTES * b, rc->plane_bytes, encoding);
            vec sums = plane_code_sums(plane_block_i8(rc->planes, rc->plane_bytes, pt->qp, b, encoding),
                                       v_load(pt->qs32 + lanes * b), encoding);
            sums = v_group_lanes(sums, m);
            int64_t g0 = per_block * b;
            vecf t = vf_mul(vf_load_n(scales + g0, per_block), vf_from32(sums));
            if (mins) {
                t = vf_add(t, vf_mul(vf_load_n(mins + g0, per_block), vf_from32(v_load32_n(qsums + g0, per_block))));
            }
            vf_store_n(terms + g0, t, per_block);
        }
        return per_block * count;
    }
    if (group % PLANE_BLOCK_VALUES != 0 && groups != 1) {
        return 0;
    }
    for (int64_t g = 0; g < groups; g++) {
        int64_t start = g * group;
        int64_t end = start + group < k ? start + group : k;
        int64_t b0 = start / PLANE_BLOCK_VALUES;
        int64_t b1 = (end + PLANE_BLOCK_VALUES - 1) / PLANE_BLOCK_VALUES; /* past k, qp and qs32 are 0 */
        b1 = b1 < blocks ? b1 : blocks;
        vec r = v_zero();
        vec qv = v_zero();
        for (int64_t b = b0; b < b1; b++) {
            prefetch_planes(rc->planes + VBYTES * b, rc->plane_bytes, encoding);
            r = v_add32(r, plane_block_i8(rc->planes, rc->plane_bytes, pt->qp, b, encoding));
            qv = v_add32(qv, v_load(pt->qs32 + lanes * b));
        }
        int32_t acc = v_sum32(plane_code_sums(r, qv, encoding));
        int64_t done = b1 > b0 ? PLANE_BLOCK_VALUES * b1 : start;
        if (done < end) {
            acc += group_sum_i8(rc, q, done, end);
        }
        terms[g] = group_term(scales[g], acc, mins, g, mins ? qsums[g] : 0);
    }
    return groups;
}
#endif


#ifdef __AVX2__
/*
 * One token over ROW_BLOCK plane rows of one group each, k a multiple of the block: packed_rows_one_group's
 * counterpart for bit planes (the same float steps as the general path). The token's sums of q are the same for
 * every row, so they are added up once.
 */
ALWAYS_INLINE void plane_rows_one_group(const uint8_t *rows, int64_t stride, int64_t plane_bytes, int64_t k,
                                        const plane_token *pt, int32_t qsum, const uint8_t *scales_f16,
                                        const uint8_t *mins_f16, float xscale, float *y, int32_t encoding) {
    const int lanes = VBYTES / 4;
    const int64_t blocks = k / PLANE_BLOCK_VALUES;
    vec qv = v_zero();
    for (int64_t b = 0; b < blocks; b++) {
        qv = v_add32(qv, v_load(pt->qs32 + lanes * b));
    }
    __m256i partial[ROW_BLOCK];
    for (int j = 0; j < ROW_BLOCK; j++) {
        const uint8_t *row = rows + j * stride;
        vec r = v_zero();
        for (int64_t b = 0; b < blocks; b++) {
            prefetch_planes(row + VBYTES * b, plane_bytes, encoding);
            r = v_add32(r, plane_block_i8(row, plane_bytes, pt->qp, b, encoding));
        }
        vec sums = plane_code_sums(r, qv, encoding);
        partial[j] = fold256(sums);
    }
    store_one_group_rows(reduce8x8(partial), scales_f16, mins_f16, qsum, xscale, y);
}
#endif

/*
 * terms[g] = s_g * acc_g (+ m_g * qsum_g) for every group of one row and one token: the Java reference's float
 * operations, elementwise, so computing eight groups at once rounds exactly as one at a time does.
 */
static void terms_i8(const row_codes *rc, const int8_t *q, const int32_t *qsums, const float *scales,
                     const float *mins, int64_t k, int64_t group, int64_t groups, float *terms,
                     const plane_token *pt) {
    int64_t g = 0;
    (void) pt; /* the AVX2 build's */
#ifdef __AVX2__
    if (pt && !rc->codes) {
        switch (rc->encoding) {
            case BP_BINARY:
                g = plane_groups_i8(rc, pt, q, qsums, scales, mins, k, group, groups, terms, BP_BINARY);
                break;
            case BP_TERNARY:
                g = plane_groups_i8(rc, pt, q, qsums, scales, mins, k, group, groups, terms, BP_TERNARY);
                break;
            case BP_INT4:
                g = plane_groups_i8(rc, pt, q, qsums, scales, mins, k, group, groups, terms, BP_INT4);
                break;
            case BP_INT4_ASYM:
                g = plane_groups_i8(rc, pt, q, qsums, scales, mins, k, group, groups, terms, BP_INT4_ASYM);
                break;
            default:
                break;
        }
    }
    if (g == 0 && group % 32 == 0) {
        int32_t source = rc->codes ? BP_INT8 : rc->encoding;
        switch (source) {
            case BP_INT8:
#ifdef BP_VNNI
                g = code_groups_vnni(rc->codes, q, qsums, scales, mins, k, group, terms);
                if (g > 0) {
                    break;
                }
#endif
                g = whole_groups_i8(rc, q, qsums, scales, mins, k, group, terms, BP_INT8);
                break;
            case BP_INT4:
                g = whole_groups_i8(rc, q, qsums, scales, mins, k, group, terms, BP_INT4);
                break;
            case BP_INT4_ASYM:
                g = whole_groups_i8(rc, q, qsums, scales, mins, k, group, terms, BP_INT4_ASYM);
                break;
            case BP_TERNARY:
                g = whole_groups_i8(rc, q, qsums, scales, mins, k, group, terms, BP_TERNARY);
                break;
            case BP_INT4 | PACKED:
                g = packed_groups_i8(rc, q, qsums, scales, mins, k, group, terms, BP_INT4 | PACKED);
                break;
            case BP_INT4_ASYM | PACKED:
                g = packed_groups_i8(rc, q, qsums, scales, mins, k, group, terms, BP_INT4_ASYM | PACKED);
                break;
            case BP_TERNARY | PACKED:
                g = packed_groups_i8(rc, q, qsums, scales, mins, k, group, terms, BP_TERNARY | PACKED);
                break;
            default:
                g = whole_groups_i8(rc, q, qsums, scales, mins, k, group, terms, BP_BINARY);
                break;
        }
    }
#endif
    for (; g < groups; g++) {
        int64_t start = g * group;
        terms[g] = group_term(scales[g], group_sum_i8(rc, q, start, start + group <= k ? start + group : k), mins, g,
                              mins ? qsums[g] : 0);
    }
}

/* Rows that one pass over a token's float activations serves: each load of x serves all of them (one row at a
   time read 4 bytes of x per weight from L2 on long rows: 57 KB for 14336 values, more than L1 holds). */
#define F32_ROWS 4

/*
 * y[j] = sum_g s_jg * sum(c_j x over group g) (+ m_jg * xsum_g) for F32_ROWS rows of codes and one float token.
 * Float activations keep no exact integer, so (vector builds) each group's products stay in the lanes and are
 * scaled into the row's lanes: one horizontal sum per row, where one per group cost more than the products at
 * groups of 32. Vectors are the build's width (vecf: 16 floats on the AVX-512 build, 8 on AVX2).
 * Each row's arithmetic depends on its own codes and x alone (whichever rows share its pass).
 * `ahead` (INT8 rows read in place) is how far the same value of the next pass's rows is: those are prefetched,
 * as four rows side by side per thread are more streams than the hardware prefetchers keep up with (INT8 x f32
 * 32000 x 2048 from memory: 26 -> 45 G products/s; prefetching 4 KB further along the same row gave 33). 0 for
 * codes decoded into the scratch.
 */
static void rows_codes_f32(const int8_t *const c[F32_ROWS], int64_t ahead, const float *x, int64_t k, int64_t group,
                           int64_t groups, const float *const scales[F32_ROWS], const float *const mins[F32_ROWS],
                           const float *xsums, float y[F32_ROWS]) {
    (void) ahead; /* the vector builds' */
    float extra[F32_ROWS] = {0};
#ifdef __AVX2__
    vecf acc[F32_ROWS];
    for (int j = 0; j < F32_ROWS; j++) {
        acc[j] = vf_zero();
    }
#endif
    for (int64_t g = 0; g < groups; g++) {
        int64_t i = g * group;
        int64_t end = i + group <= k ? i + group : k;
#ifdef __AVX2__
        const int lanes = VBYTES / 4; /* floats per vector: 16 on the AVX-512 build, 8 on AVX2 */
        vecf a0[F32_ROWS], a1[F32_ROWS];
        for (int j = 0; j < F32_ROWS; j++) {
            a0[j] = a1[j] = vf_zero();
        }
        for (; i + 2 * lanes <= end; i += 2 * lanes) {
            vecf x0 = vf_load(x + i), x1 = vf_load(x + i + lanes);
            for (int j = 0; j < F32_ROWS; j++) {
                if (ahead) {
                    _mm_prefetch((const char *) (c[j] + i + ahead), _MM_HINT_T0);
                }
                a0[j] = vf_fmadd(vf_codes(c[j] + i), x0, a0[j]);
                a1[j] = vf_fmadd(vf_codes(c[j] + i + lanes), x1, a1[j]);
            }
        }
        for (; i + lanes <= end; i += lanes) {
            vecf x0 = vf_load(x + i);
            for (int j = 0; j < F32_ROWS; j++) {
                a0[j] = vf_fmadd(vf_codes(c[j] + i), x0, a0[j]);
            }
        }
        for (int j = 0; j < F32_ROWS; j++) {
            acc[j] = vf_fmadd(vf_add(a0[j], a1[j]), vf_set1(scales[j][g]), acc[j]);
        }
#endif
        if (i == end && !mins[0]) {
            continue; /* nothing to add to extra but +0: skipped, as it took a third of a group of 32's time */
        }
        for (int j = 0; j < F32_ROWS; j++) {
            float tail = 0; /* the values the vectors left (all of them in the portable build) */
            for (int64_t t = i; t < end; t++) {
                tail += c[j][t] * x[t];
            }
            extra[j] += scales[j][g] * tail + (mins[j] ? mins[j][g] * xsums[g] : 0);
        }
    }
#ifdef __AVX2__
    _Static_assert(F32_ROWS == 4, "one sum4x8 a pass");
    float sums[F32_ROWS];
    _mm_storeu_ps(sums, sum4x8(vf_fold(acc[0]), vf_fold(acc[1]), vf_fold(acc[2]), vf_fold(acc[3])));
#else
    const float sums[F32_ROWS] = {0};
#endif
    for (int j = 0; j < F32_ROWS; j++) {
        y[j] = sums[j] + extra[j];
    }
}

static void f16_to_floats(const uint8_t *src, float *dst, int64_t count) {
    int64_t i = 0;
#ifdef __AVX2__
    for (; i + 8 <= count; i += 8) {
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (src + 2 * i))));
    }
    if (i < count) { /* the last few through one zero-padded vector too: the software conversion branches */
        uint16_t halves[8] = {0};
        float floats[8];
        memcpy(halves, src + 2 * i, (size_t) (count - i) * 2);
        _mm256_storeu_ps(floats, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) halves)));
        memcpy(dst + i, floats, (size_t) (count - i) * 4);
        return;
    }
#endif
    for (; i < count; i++) {
        dst[i] = f16_to_f32(load_u16(src + 2 * i));
    }
}

/* Rows per pass of the VNNI batch kernel (two vectors of 16 int32 lanes, one row each); see batch_vnni. The
   scratch holds one turned pass on the VNNI build only. */
#define VROWS 32
#ifdef BP_VNNI
#define TURNED_ROWS VROWS
#else
#define TURNED_ROWS 0
#endif

/* The scratch a call needs (see bitplane_kernels.h): carved into the pieces below. */
typedef struct {
    int8_t *codes;   /* ROW_BLOCK rows of k codes */
    float *scales;   /* ROW_BLOCK rows of groups */
    float *mins;     /* ROW_BLOCK rows of groups */
    float *terms;    /* TOKEN_BLOCK tokens of ROW_BLOCK rows of groups */
    void *sums;      /* batch tokens of groups: int32 q sums or float x sums, for INT4_ASYM */
    plane_token token; /* one token's codes permuted for bit planes, and its sums per 32 values */
    uint8_t *turned; /* VNNI batches: TURNED_ROWS rows of k codes, turned (turn_rows) */
    float *tscales;  /* VNNI batches: groups x TURNED_ROWS scales, a group's rows side by side */
    float *tmins;    /* VNNI batches: the same for mins */
} scratch;

static inline int64_t align64(int64_t x) {
    return (x + 63) & ~(int64_t) 63;
}

/* Space left after each of the scratch's per-group float arrays (scales, mins, terms), so that a store to one and a
   later load from the next do not share their low 12 address bits whenever groups x 64 bytes is a multiple of 4
   KB (k = 2048 or 4096 in groups of 32): the CPU then takes the load as depending on the store (4K aliasing).
   Measured, packed INT4 in groups of 32, 2048 x 4096, one thread: 44-51 -> 47-53 G products/s. */
#define SCRATCH_SKEW 1088

static scratch carve(void *base, int64_t k, int64_t groups) {
    uint8_t *p = (uint8_t *) base;
    scratch s;
    s.codes = (int8_t *) p;
    p += align64(ROW_BLOCK * k);
    s.scales = (float *) p;
    p += align64(ROW_BLOCK * groups * 4) + SCRATCH_SKEW;
    s.mins = (float *) p;
    p += align64(ROW_BLOCK * groups * 4) + SCRATCH_SKEW;
    s.terms = (float *) p;
    p += align64(TOKEN_BLOCK * ROW_BLOCK * groups * 4) + SCRATCH_SKEW;
    s.token.qp = (int8_t *) p;
    p += block_values(k);
    s.token.qs32 = (int32_t *) p;
    p += block_values(k) / 32 * 4;
    s.turned = p;
    p += align64(TURNED_ROWS * k);
    s.tscales = (float *) p;
    p += align64(TURNED_ROWS * groups * 4);
    s.tmins = (float *) p;
    p += align64(TURNED_ROWS * groups * 4);
    s.sums = p;
    return s;
}

int64_t BP_FN(_scratch_bytes)(int64_t k, int64_t group, int32_t batch) {
    int64_t groups = (k + group - 1) / group;
    return align64(ROW_BLOCK * k) + 2 * align64(ROW_BLOCK * groups * 4) + align64(TOKEN_BLOCK * ROW_BLOCK * groups * 4)
           + 3 * SCRATCH_SKEW
           + block_values(k) + block_values(k) / 32 * 4 + align64(TURNED_ROWS * k)
           + 2 * align64(TURNED_ROWS * groups * 4) + align64(batch * groups * 4);
}

/* Bytes from one row's codes to the next: INT8 bytes, bit planes, or packed blocks. */
static inline int64_t row_stride(int32_t kind, int64_t k) {
    if (kind == BP_INT8) {
        return k;
    }
    if (kind & PACKED) {
        int64_t v = 256 / packed_bits(kind);
        return (k + v - 1) / v * 32;
    }
    return planes_of(kind) * ((k + 63) / 64 * 8);
}

/* One block of rows: codes (when the kernel reads them from memory), scales and mins as floats. */
static void prepare_block(const uint8_t *w, int32_t kind, int64_t k, int64_t groups, int64_t scales_offset,
                          int64_t mins_offset, int64_t r, int rows, int decode, const scratch *s) {
    int64_t plane_bytes = (k + 63) / 64 * 8;
    for (int j = 0; decode && j < rows; j++) {
        decode_row(w + (r + j) * row_stride(kind, k), plane_bytes, kind, k, s->codes + j * k);
    }
    /* The block's rows' scales (and mins) follow one another in the file as in the scratch: one conversion, whole
       vectors even where a row has few groups (row by row, stories260K's 2 groups a row took a third of a call) */
    f16_to_floats(w + scales_offset + 2 * r * groups, s->scales, rows * groups);
    if ((kind & ~PACKED) == BP_INT4_ASYM) {
        f16_to_floats(w + mins_offset + 2 * r * groups, s->mins, rows * groups);
    }
}

/*
 * y[j] = the float sum of row j's terms in group order (times factor), for the block's rows: the reference's
 * order, a chain of dependent adds per row. The chains of the block's rows run side by side: on AVX2 in the
 * lanes of one vector, eight groups' terms turned (transposed) so that each add takes one group of every row;
 * each lane adds exactly what the scalar loop would.
 */
static void sum_terms(const float *terms, int64_t groups, int rows, float factor, int multiply, float *y) {
    float sums[ROW_BLOCK] = {0};
    int64_t g = 0;
#ifdef __AVX2__
    _Static_assert(ROW_BLOCK == 8, "one lane per row");
    __m256 acc = _mm256_setzero_ps();
    for (; g + 8 <= groups; g += 8) {
        __m256 v[8];
        for (int j = 0; j < 8; j++) {
            v[j] = _mm256_loadu_ps(terms + j * groups + g);
        }
        transpose8x8(v);
        for (int i = 0; i < 8; i++) {
            acc = _mm256_add_ps(acc, v[i]);
        }
    }
    _mm256_storeu_ps(sums, acc);
#endif
    for (; g < groups; g++) {
        for (int j = 0; j < ROW_BLOCK; j++) {
            sums[j] += terms[j * groups + g];
        }
    }
    for (int j = 0; j < rows; j++) {
        y[j] = multiply ? sums[j] * factor : sums[j];
    }
}

#ifdef BP_VNNI
/*
 * Float activations over rows of bit fields (bit planes or packed codes), 32 values at a time (AVX-512 build).
 * Float activations are not quantized, so there is no exact integer to keep: each group's products add in float
 * lanes, and each group's lanes, times its scale, add into the row's lanes (one horizontal sum per row, not one
 * per group). Every token of a batch takes this same arithmetic (the determinism rule, ARCHITECTURE.md).
 *   BINARY, TERNARY: no multiplies. Masks of the 32 values pick the activations to add (masked adds) into two
 *     sums A and M, and the group's sum is A - 2 M:
 *       BINARY planes: A = all x, M = x coded -1 (sign); TERNARY planes: A = x not 0 (mask), M = x coded -1
 *       (mask and sign); packed TERNARY (field f = t + 1 at bits 2s, 2s + 1 of the block's 32 bytes for its values
 *       32s .. 32s + 31, bits b0 and b1): A = b0 x - x, M = -b1 x, so A - 2 M = (2 b1 + b0 - 1) x = (f - 1) x.
 *   INT4, INT4_ASYM: the 32 codes as bytes (decode32: u, less 8 for INT4), widened to floats 16 at a time and
 *     multiplied.
 * Values past k: the activations load as 0 (masked loads do not fault), so whatever the fields hold there adds 0.
 * Groups must be whole multiples of 32 values, or one group a row, so that no 32 values straddle two groups.
 */

/*
 * Adds values i .. i + 31 of one row, against the token's x0 (values i .. i + 15) and x1, into its four lane sums:
 * A in a[0..1] and M in a[2..3] (see above; BINARY's A, all x, is the token's, kept by the caller), or INT4's
 * products in a[0..1].
 */
ALWAYS_INLINE void fields32_f32(const uint8_t *row, int64_t plane_bytes, int32_t kind, uint64_t i, __m512 x0,
                                __m512 x1, __m512 a[4]) {
    if (kind & PACKED) { /* one 64-byte line: 256 ternary or 128 INT4 values */
        if (i % 128 == 0) {
            _mm_prefetch((const char *) (row + i * packed_bits(kind) / 8 + PREFETCH_BYTES), _MM_HINT_T0);
        }
    } else if (i % 512 == 0) {
        prefetch_planes(row + i / 8, plane_bytes, kind);
    }
    /* Mask registers load straight from the planes: a move from a general register for each 16 values bound the
       loop. */
    if (kind == BP_BINARY) {
        __mmask32 minus = _load_mask32((__mmask32 *) (row + i / 8));
        a[2] = _mm512_mask_add_ps(a[2], (__mmask16) minus, a[2], x0);
        a[3] = _mm512_mask_add_ps(a[3], (__mmask16) _kshiftri_mask32(minus, 16), a[3], x1);
    } else if (kind == BP_TERNARY) {
        __mmask32 nonzero = _load_mask32((__mmask32 *) (row + i / 8));
        __mmask32 minus = _kand_mask32(nonzero, _load_mask32((__mmask32 *) (row + plane_bytes + i / 8)));
        a[0] = _mm512_mask_add_ps(a[0], (__mmask16) nonzero, a[0], x0);
        a[1] = _mm512_mask_add_ps(a[1], (__mmask16) _kshiftri_mask32(nonzero, 16), a[1], x1);
        a[2] = _mm512_mask_add_ps(a[2], (__mmask16) minus, a[2], x0);
        a[3] = _mm512_mask_add_ps(a[3], (__mmask16) _kshiftri_mask32(minus, 16), a[3], x1);
    } else if (kind == (BP_TERNARY | PACKED)) {
        /* code = f - 1 = b0 - 1 - 2 (-b1) over the field's bits (so the field 3 reads as 2, as in the reference):
           a[0..1] gather b0 x - x, a[2..3] subtract b1 x */
        __m256i block = _mm256_loadu_si256((const __m256i *) (row + i / 128 * 32));
        int s = (int) (i / 32 % 4);
        __mmask32 b0 = _mm256_test_epi8_mask(block, _mm256_set1_epi8((char) (1 << (2 * s))));
        __mmask32 b1 = _mm256_test_epi8_mask(block, _mm256_set1_epi8((char) (2 << (2 * s))));
        a[0] = _mm512_sub_ps(_mm512_mask_add_ps(a[0], (__mmask16) b0, a[0], x0), x0);
        a[1] = _mm512_sub_ps(_mm512_mask_add_ps(a[1], (__mmask16) _kshiftri_mask32(b0, 16), a[1], x1), x1);
        a[2] = _mm512_mask_sub_ps(a[2], (__mmask16) b1, a[2], x0);
        a[3] = _mm512_mask_sub_ps(a[3], (__mmask16) _kshiftri_mask32(b1, 16), a[3], x1);
    } else {
        __m256i c = decode32(row, plane_bytes, kind, (int64_t) i);
        a[0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(c))), x0, a[0]);
        a[1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(c, 1))), x1, a[1]);
    }
}

/*
 * One float token over F32_ROWS rows: y_j = sum_g s_jg * sum(code x) (+ m_jg * xsum_g); kind is a constant where
 * inlined. The rows share every load of x: one row at a time read 4 bytes of x from L2 per weight (57 KB per row
 * of 14336 values, more than L1 holds), which bound the loop at about 6 values a cycle.
 */
ALWAYS_INLINE void rows_fields_f32(const uint8_t *const rows[F32_ROWS], int64_t plane_bytes, int32_t kind,
                                   const float *x, int64_t k, int64_t group, int64_t groups,
                                   const float *const scales[F32_ROWS], const float *const mins[F32_ROWS],
                                   const float *xsums, float y[F32_ROWS]) {
    __m512 acc[F32_ROWS];
    float extra[F32_ROWS];
    for (int j = 0; j < F32_ROWS; j++) {
        acc[j] = _mm512_setzero_ps();
        extra[j] = 0;
    }
    for (int64_t g = 0; g < groups; g++) {
        uint64_t end = (uint64_t) ((g + 1) * group < k ? (g + 1) * group : k);
        __m512 a[F32_ROWS][4];
        for (int j = 0; j < F32_ROWS; j++) {
            a[j][0] = a[j][1] = a[j][2] = a[j][3] = _mm512_setzero_ps();
        }
        __m512 all0 = _mm512_setzero_ps(), all1 = all0; /* BINARY's A */
        for (uint64_t i = (uint64_t) (g * group); i < end; i += 32) {
            __m512 x0, x1;
            if (end - i >= 32) {
                x0 = _mm512_loadu_ps(x + i);
                x1 = _mm512_loadu_ps(x + i + 16);
            } else {
                __mmask32 valid = (__mmask32) ((1u << (end - i)) - 1);
                x0 = _mm512_maskz_loadu_ps((__mmask16) valid, x + i);
                x1 = _mm512_maskz_loadu_ps((__mmask16) (valid >> 16), x + i + 16);
            }
            if (kind == BP_BINARY) {
                all0 = _mm512_add_ps(all0, x0);
                all1 = _mm512_add_ps(all1, x1);
            }
            for (int j = 0; j < F32_ROWS; j++) {
                fields32_f32(rows[j], plane_bytes, kind, i, x0, x1, a[j]);
            }
        }
        for (int j = 0; j < F32_ROWS; j++) {
            __m512 all = kind == BP_BINARY ? _mm512_add_ps(all0, all1) : _mm512_add_ps(a[j][0], a[j][1]);
            __m512 minus = _mm512_add_ps(a[j][2], a[j][3]);
            __m512 sum = _mm512_sub_ps(all, _mm512_add_ps(minus, minus));
            acc[j] = _mm512_fmadd_ps(sum, _mm512_set1_ps(scales[j][g]), acc[j]);
            if (mins[j]) {
                extra[j] += mins[j][g] * xsums[g];
            }
        }
    }
    for (int j = 0; j < F32_ROWS; j++) {
        y[j] = _mm512_reduce_add_ps(acc[j]) + extra[j];
    }
}

static void rows_fields_f32_any(const uint8_t *const rows[F32_ROWS], int64_t plane_bytes, int32_t kind,
                                const float *x, int64_t k, int64_t group, int64_t groups,
                                const float *const scales[F32_ROWS], const float *const mins[F32_ROWS],
                                const float *xsums, float y[F32_ROWS]) {
#define ROWS_F32(kind_constant) \
    rows_fields_f32(rows, plane_bytes, kind_constant, x, k, group, groups, scales, mins, xsums, y)
    SWITCH_FIELD_KIND(kind, ROWS_F32)
#undef ROWS_F32
}
#endif

void BP_FN(_matmul_quantized_f32)(const void *weights, int32_t encoding, int32_t layout, int64_t k, int64_t group,
                                  int64_t scales_offset, int64_t mins_offset, const float *x, float *y,
                                  int32_t batch, int64_t n, int64_t row_start, int64_t row_end, void *work) {
    const uint8_t *w = (const uint8_t *) weights;
    int32_t kind = encoding | (layout == 1 ? PACKED : 0);
    int64_t groups = (k + group - 1) / group;
    scratch s = carve(work, k, groups);
    int asym = encoding == BP_INT4_ASYM;
    float *xsums = (float *) s.sums;
    for (int32_t b = 0; asym && b < batch; b++) {
        for (int64_t g = 0; g < groups; g++) {
            float sum = 0;
            for (int64_t i = g * group; i < k && i < (g + 1) * group; i++) {
                sum += x[b * k + i];
            }
            xsums[b * groups + g] = sum;
        }
    }
#ifdef BP_VNNI
    if (encoding != BP_INT8 && (group % 32 == 0 || groups == 1)) {
        _Static_assert(ROW_BLOCK % F32_ROWS == 0, "whole passes in a block");
        int64_t plane_bytes = (k + 63) / 64 * 8;
        for (int64_t r = row_start; r < row_end; r += ROW_BLOCK) {
            int rows = row_end - r < ROW_BLOCK ? (int) (row_end - r) : ROW_BLOCK;
            prepare_block(w, kind, k, groups, scales_offset, mins_offset, r, rows, 0, &s);
            for (int32_t b = 0; b < batch; b++) {
                for (int j0 = 0; j0 < rows; j0 += F32_ROWS) {
                    /* a block's last pass may hold fewer rows: the others repeat its last row, unstored */
                    const uint8_t *row_at[F32_ROWS];
                    const float *scales_at[F32_ROWS], *mins_at[F32_ROWS];
                    for (int j = 0; j < F32_ROWS; j++) {
                        int jr = j0 + j < rows ? j0 + j : rows - 1;
                        row_at[j] = w + (r + jr) * row_stride(kind, k);
                        scales_at[j] = s.scales + jr * groups;
                        mins_at[j] = asym ? s.mins + jr * groups : 0;
                    }
                    float out[F32_ROWS];
                    rows_fields_f32_any(row_at, plane_bytes, kind, x + b * k, k, group, groups, scales_at, mins_at,
                                        xsums + b * groups, out);
                    for (int j = 0; j < F32_ROWS && j0 + j < rows; j++) {
                        y[b * n + r + j0 + j] = out[j];
                    }
                }
            }
        }
        return;
    }
#endif
    for (int64_t r = row_start; r < row_end; r += ROW_BLOCK) {
        int rows = row_end - r < ROW_BLOCK ? (int) (row_end - r) : ROW_BLOCK;
        prepare_block(w, kind, k, groups, scales_offset, mins_offset, r, rows, encoding != BP_INT8, &s);
        for (int32_t b = 0; b < batch; b++) {
            for (int j0 = 0; j0 < rows; j0 += F32_ROWS) {
                /* a block's last pass may hold fewer rows: the others repeat its last row, unstored */
                const int8_t *codes[F32_ROWS];
                const float *scales[F32_ROWS], *mins[F32_ROWS];
                for (int j = 0; j < F32_ROWS; j++) {
                    int jr = j0 + j < rows ? j0 + j : rows - 1;
                    codes[j] = encoding == BP_INT8 ? (const int8_t *) (w + (r + jr) * k) : s.codes + jr * k;
                    scales[j] = s.scales + jr * groups;
                    mins[j] = asym ? s.mins + jr * groups : 0;
                }
                float out[F32_ROWS];
                rows_codes_f32(codes, encoding == BP_INT8 ? F32_ROWS * k : 0, x + b * k, k, group, groups, scales,
                               mins, xsums + b * groups, out);
                for (int j = 0; j < F32_ROWS && j0 + j < rows; j++) {
                    y[b * n + r + j0 + j] = out[j];
                }
            }
        }
    }
}

#ifdef BP_VNNI
/* ---------------------------------------------------------------------------------------------------------------
 * Batches of int8 tokens with VNNI (prompts, several requests at once): a matrix-matrix kernel. The one-token
 * kernels, run once per token, reached only the speed of one token (about 50 G products/s per thread at INT4 g32,
 * 150 for ternary rows), spending more on sums across lanes and per-group bookkeeping than on vpdpbusd.
 *
 * Memory layout of a pass of VROWS = 32 rows (turn_rows), codes made unsigned (c + 128, 0 for padding rows):
 *   turned[(i / 4) * 128 + (r / 16) * 64 + (r % 16) * 4 + i % 4] = code of row r, value i
 * so one 64-byte load holds four consecutive values of 16 rows, and vpdpbusd against four of a token's values
 * broadcast to every lane adds each row's four products into its own lane. tscales[g * 32 + r] (and tmins) hold
 * the rows' scales of group g side by side.
 *
 * Tokens go VTOKENS = 4 at a time: each load of codes serves four tokens and each broadcast both halves of the
 * rows, eight independent sums. Per group and token the lane sums are exact (sum c q = sum (c + 128) q - 128 Q_g,
 * wrapping as in code_groups_vnni), and each lane then forms and adds its row's term as group_term and sum_terms
 * do: t = s * acc (+ m * Q_g), sum += t in group order, times the token's scale at the end. So every token's
 * outputs are the one-token kernels', bit for bit, whatever batch it comes in.
 * ------------------------------------------------------------------------------------------------------------- */
#define VTOKENS 4
/*
 * The smallest batch that takes this kernel. Turning the rows costs about what the products of four tokens do
 * (decoding included), so smaller batches run the one-token kernels once per token. Measured on 2048 x 2048
 * weights from memory, one thread, best of 500 calls: 4 tokens took 0.22-0.44 ms one at a time against
 * 0.28-0.54 here; at 6 tokens this kernel is ahead for INT4 planes, ternary and INT8 (0.46-0.50 ms against
 * 0.50-0.63) and level for binary and packed INT4.
 */
#define VNNI_MIN_BATCH 6

/* The 16 x 16 transpose of int32: lane j of v[i] goes to lane i of v[j]. */
static inline void transpose16x16_epi32(__m512i v[16]) {
    __m512i a[16], b[16];
    for (int i = 0; i < 16; i += 2) { /* a[i], a[i + 1] lane L: rows i, i + 1 at columns 4L, 4L + 1 / 4L + 2, 4L + 3 */
        a[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]);
        a[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) { /* b[i + m] lane L: rows i .. i + 3 at column 4L + m */
        b[i] = _mm512_unpacklo_epi64(a[i], a[i + 2]);
        b[i + 1] = _mm512_unpackhi_epi64(a[i], a[i + 2]);
        b[i + 2] = _mm512_unpacklo_epi64(a[i + 1], a[i + 3]);
        b[i + 3] = _mm512_unpackhi_epi64(a[i + 1], a[i + 3]);
    }
    for (int m = 0; m < 4; m++) { /* column 4L + m: lane l from b[4l + m], lane L (a 4 x 4 transpose of lanes) */
        __m512i c0 = _mm512_shuffle_i32x4(b[m], b[4 + m], 0x44);
        __m512i c1 = _mm512_shuffle_i32x4(b[m], b[4 + m], 0xEE);
        __m512i c2 = _mm512_shuffle_i32x4(b[8 + m], b[12 + m], 0x44);
        __m512i c3 = _mm512_shuffle_i32x4(b[8 + m], b[12 + m], 0xEE);
        v[m] = _mm512_shuffle_i32x4(c0, c2, 0x88);
        v[4 + m] = _mm512_shuffle_i32x4(c0, c2, 0xDD);
        v[8 + m] = _mm512_shuffle_i32x4(c1, c3, 0x88);
        v[12 + m] = _mm512_shuffle_i32x4(c1, c3, 0xDD);
    }
}

/* The codes of values [i, i + 64) of row r, i a multiple of 64 below k: INT8 bytes, or decoded 32 at a time. */
ALWAYS_INLINE __m512i codes64(const uint8_t *w, int32_t kind, int64_t k, int64_t r, int64_t i) {
    if (kind == BP_INT8) {
        /* the same bytes of the next pass's row: 32 rows read side by side are more streams than the hardware
           prefetchers follow (a prefetch never faults, past the tensor's end included). Turning 32000 x 2048 on
           two threads: 4.4 -> 2.6 ms. The denser encodings read a quarter of the bytes or less, and the same
           prefetch made them slower (INT4 planes 2.5 -> 3.2 ms). */
        _mm_prefetch((const char *) (w + (r + VROWS) * k + i), _MM_HINT_T0);
        return _mm512_loadu_si512(w + r * k + i);
    }
    const uint8_t *row = w + r * row_stride(kind, k);
    int64_t plane_bytes = (k + 63) / 64 * 8;
    return _mm512_inserti64x4(_mm512_castsi256_si512(decode32(row, plane_bytes, kind, i)),
                              decode32(row, plane_bytes, kind, i + 32), 1);
}

/*
 * The codes of rows [r, r + rows) turned into the layout above (kind a constant where this is inlined: with the
 * kind known at run time, each 32 values' decoding went through the branches for every encoding, and turning
 * ran at a quarter of this speed). Rows past `rows` pad with zeros. Each 16 rows x 64 values is one 16 x 16
 * transpose of int32, the codes decoded straight into its registers (a scalar word at a time, turning cost a
 * cycle per weight, as much as a whole 64-token batch's products).
 */
ALWAYS_INLINE void turn_codes(const uint8_t *w, int32_t kind, int64_t k, int64_t r, int rows, const scratch *s) {
    int64_t plane_bytes = (k + 63) / 64 * 8;
    const __m512i flip = _mm512_set1_epi8((char) 0x80);
    int64_t i = 0;
    for (; i + 64 <= k; i += 64) {
        for (int h = 0; h < 2; h++) {
            __m512i v[16];
            for (int j = 0; j < 16; j++) {
                int row = 16 * h + j;
                v[j] = row < rows ? _mm512_xor_si512(codes64(w, kind, k, r + row, i), flip) : _mm512_setzero_si512();
            }
            transpose16x16_epi32(v);
            for (int c = 0; c < 16; c++) {
                _mm512_storeu_si512(s->turned + 128 * (i / 4 + c) + 64 * h, v[c]);
            }
        }
    }
    for (; i < k; i++) { /* the values past the last 64, one at a time */
        for (int j = 0; j < VROWS; j++) {
            uint8_t u = 0;
            if (j < rows) {
                int8_t c = kind == BP_INT8 ? (int8_t) w[(r + j) * k + i]
                                           : code_at(w + (r + j) * row_stride(kind, k), plane_bytes, kind, i);
                u = (uint8_t) (c ^ 0x80);
            }
            s->turned[128 * (i / 4) + (j / 16) * 64 + (j % 16) * 4 + i % 4] = u;
        }
    }
}

/* The f16 values (scales or mins) of VROWS rows of `groups` each from `at` as floats, dst[g * VROWS + j], zeros
   past `rows`; each row is converted into tmp first. */
static void spread_rows(const uint8_t *at, int64_t groups, int rows, float *tmp, float *dst) {
    for (int j = 0; j < VROWS; j++) {
        if (j < rows) {
            f16_to_floats(at + 2 * j * groups, tmp, groups);
        }
        for (int64_t g = 0; g < groups; g++) {
            dst[g * VROWS + j] = j < rows ? tmp[g] : 0;
        }
    }
}

/* Rows [r, r + rows) turned into the layout above, with their scales and mins (zeros past `rows`). */
static void turn_rows(const uint8_t *w, int32_t kind, int64_t k, int64_t groups, int64_t scales_offset,
                      int64_t mins_offset, int64_t r, int rows, const scratch *s) {
#define TURN(kind_constant) turn_codes(w, kind_constant, k, r, rows, s)
    if (kind == BP_INT8) {
        TURN(BP_INT8);
    } else {
        SWITCH_FIELD_KIND(kind, TURN)
    }
#undef TURN
    spread_rows(w + scales_offset + 2 * r * groups, groups, rows, s->scales, s->tscales);
    if ((kind & ~PACKED) == BP_INT4_ASYM) {
        spread_rows(w + mins_offset + 2 * r * groups, groups, rows, s->scales, s->tmins);
    }
}

/*
 * y for tokens b0 .. b0 + tokens - 1 (tokens <= VTOKENS) and the turned pass of `rows` rows at r. A pass of fewer
 * than VTOKENS tokens repeats its last token in the spare sums and stores nothing of them. (The sums are named,
 * not an array: with an array of them GCC kept copying sums between registers and spilling them.)
 */
static void batch_pass_vnni(const scratch *s, const int8_t *xq, const int32_t *qsums, const float *xscales,
                            int64_t k, int64_t group, int64_t groups, int asym, int32_t b0, int tokens, float *y,
                            int64_t n, int64_t r, int rows) {
    _Static_assert(VTOKENS == 4, "four tokens' sums are named below");
    int32_t tok[VTOKENS];
    for (int t = 0; t < VTOKENS; t++) {
        tok[t] = b0 + (t < tokens ? t : tokens - 1);
    }
    const uint8_t *q0 = (const uint8_t *) xq + tok[0] * k, *q1 = (const uint8_t *) xq + tok[1] * k;
    const uint8_t *q2 = (const uint8_t *) xq + tok[2] * k, *q3 = (const uint8_t *) xq + tok[3] * k;
    __m512 sum[VTOKENS][2];
    for (int t = 0; t < VTOKENS; t++) {
        sum[t][0] = _mm512_setzero_ps();
        sum[t][1] = _mm512_setzero_ps();
    }
    for (int64_t g = 0; g < groups; g++) {
        int64_t c1 = ((g + 1) * group < k ? (g + 1) * group : k) / 4;
        __m512i a00 = _mm512_setzero_si512(), a01 = a00, a10 = a00, a11 = a00;
        __m512i a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        for (int64_t c = g * group / 4; c < c1; c++) {
            __m512i u0 = _mm512_loadu_si512(s->turned + 128 * c);
            __m512i u1 = _mm512_loadu_si512(s->turned + 128 * c + 64);
            __m512i v = _mm512_set1_epi32((int32_t) load_u32(q0 + 4 * c));
            a00 = dpbusd512(a00, u0, v);
            a01 = dpbusd512(a01, u1, v);
            v = _mm512_set1_epi32((int32_t) load_u32(q1 + 4 * c));
            a10 = dpbusd512(a10, u0, v);
            a11 = dpbusd512(a11, u1, v);
            v = _mm512_set1_epi32((int32_t) load_u32(q2 + 4 * c));
            a20 = dpbusd512(a20, u0, v);
            a21 = dpbusd512(a21, u1, v);
            v = _mm512_set1_epi32((int32_t) load_u32(q3 + 4 * c));
            a30 = dpbusd512(a30, u0, v);
            a31 = dpbusd512(a31, u1, v);
        }
        const __m512i acc[VTOKENS][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}};
        for (int t = 0; t < VTOKENS; t++) {
            int32_t qs = qsums[tok[t] * groups + g];
            __m512i flip = _mm512_set1_epi32((int32_t) ((uint32_t) qs << 7));
            for (int h = 0; h < 2; h++) {
                __m512 term = _mm512_mul_ps(_mm512_loadu_ps(s->tscales + g * VROWS + 16 * h),
                                            _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[t][h], flip)));
                if (asym) {
                    term = _mm512_add_ps(term, _mm512_mul_ps(_mm512_loadu_ps(s->tmins + g * VROWS + 16 * h),
                                                             _mm512_set1_ps((float) qs)));
                }
                sum[t][h] = _mm512_add_ps(sum[t][h], term);
            }
        }
    }
    for (int t = 0; t < tokens; t++) {
        __m512 factor = _mm512_set1_ps(xscales[b0 + t]);
        for (int h = 0; h < 2; h++) {
            int left = rows - 16 * h;
            __mmask16 m = left >= 16 ? 0xFFFF : left > 0 ? (__mmask16) ((1u << left) - 1) : 0;
            _mm512_mask_storeu_ps(y + (b0 + t) * n + r + 16 * h, m, _mm512_mul_ps(sum[t][h], factor));
        }
    }
}

/* Rows [row_start, row_end) for every token, VROWS rows per pass; k % 4 == 0 and whole chunks of 4 per group. */
static void batch_vnni(const uint8_t *w, int32_t kind, int64_t k, int64_t group, int64_t groups,
                       int64_t scales_offset, int64_t mins_offset, const int8_t *xq, const int32_t *qsums,
                       const float *xscales, float *y, int32_t batch, int64_t n, int64_t row_start,
                       int64_t row_end, const scratch *s) {
    int asym = (kind & ~PACKED) == BP_INT4_ASYM;
    for (int64_t r = row_start; r < row_end; r += VROWS) {
        int rows = row_end - r < VROWS ? (int) (row_end - r) : VROWS;
        turn_rows(w, kind, k, groups, scales_offset, mins_offset, r, rows, s);
        for (int32_t b = 0; b < batch; b += VTOKENS) {
            batch_pass_vnni(s, xq, qsums, xscales, k, group, groups, asym, b,
                            batch - b < VTOKENS ? batch - b : VTOKENS, y, n, r, rows);
        }
    }
}
#endif

void BP_FN(_matmul_quantized_i8)(const void *weights, int32_t encoding, int32_t layout, int64_t k, int64_t group,
                                 int64_t scales_offset, int64_t mins_offset, const int8_t *xq,
                                 const float *xscales, float *y, int32_t batch, int64_t n, int64_t row_start,
                                 int64_t row_end, void *work) {
#ifdef BP_VNNI
    if (batch > 1 && batch < VNNI_MIN_BATCH) { /* see VNNI_MIN_BATCH */
        for (int32_t b = 0; b < batch; b++) {
            BP_FN(_matmul_quantized_i8)(weights, encoding, layout, k, group, scales_offset, mins_offset, xq + b * k,
                                        xscales + b, y + b * n, 1, n, row_start, row_end, work);
        }
        return;
    }
#endif
    const uint8_t *w = (const uint8_t *) weights;
    int32_t kind = encoding | (layout == 1 ? PACKED : 0);
    int64_t groups = (k + group - 1) / group;
    int64_t plane_bytes = (k + 63) / 64 * 8;
    scratch s = carve(work, k, groups);
    int asym = encoding == BP_INT4_ASYM;
    /* One token on the AVX2 build decodes planes in registers; a batch (or the portable build) decodes each row
       once into memory and shares it between tokens. Packed fields cost less to decode again per token (a shift
       and a mask, and no sign trick) than decoded codes cost to reload, so they are never decoded into memory. */
#ifdef __AVX2__
    int decode = encoding != BP_INT8 && batch > 1 && !(kind & PACKED);
#else
    int decode = encoding != BP_INT8;
#endif
    /* Per token and group: for mins, for the offset of packed fields, and (VNNI) for codes in memory made
       unsigned (code_groups_vnni: INT8 rows and decoded rows). */
    int32_t *qsums = (int32_t *) s.sums;
    int need_qsums = asym || (kind & PACKED);
#ifdef BP_VNNI
    int vnni_batch = batch >= VNNI_MIN_BATCH && k % 4 == 0 && (group % 4 == 0 || groups == 1);
    need_qsums = need_qsums || encoding == BP_INT8 || decode || vnni_batch;
#endif
    for (int32_t b = 0; need_qsums && b < batch; b++) {
        for (int64_t g = 0; g < groups; g++) {
            int64_t start = g * group;
            qsums[b * groups + g] = sum_i8(xq + b * k + start, start + group < k ? group : k - start);
        }
    }
#ifdef BP_VNNI
    if (vnni_batch) {
        batch_vnni(w, kind, k, group, groups, scales_offset, mins_offset, xq, qsums, xscales, y, batch, n, row_start,
                   row_end, &s);
        return;
    }
#endif
    memset(s.terms, 0, TOKEN_BLOCK * ROW_BLOCK * groups * sizeof(float));
    const plane_token *plane_tok = 0;
#ifdef __AVX2__
    /* One token over bit planes in groups of 32 or more, or one group per row: the fields are the planes' bytes
       (plane_groups_i8). */
    if (batch == 1 && !decode && encoding != BP_INT8 && !(kind & PACKED) && (group % 32 == 0 || groups == 1)) {
        plane_token_prepare(xq, k, &s.token);
        plane_tok = &s.token;
    }
    int64_t token_stride = ROW_BLOCK * groups;
    /* Batches over packed rows in whole blocks and whole groups take TOKEN_BLOCK tokens at a time. */
    int by_block = (kind & PACKED) && batch >= TOKEN_BLOCK && group % (256 / packed_bits(kind)) == 0 && k % group == 0;
    /* One token over rows with one scale each and whole blocks (packed, or planes with the token prepared for
       them): eight rows at a time. */
    int one_group_rows = batch == 1 && groups == 1
            && ((kind & PACKED) ? k % (256 / packed_bits(kind)) == 0 : plane_tok && k % PLANE_BLOCK_VALUES == 0);
    const int8_t *packed_q = xq; /* q as packed_rows_one_group reads it */
#ifdef BP_VNNI
    if (one_group_rows && (kind & PACKED)) {
        pair_blocks_q(xq, k, kind, s.token.qp); /* the plane token's space: planes and packed rows never meet */
        packed_q = s.token.qp;
    }
#endif
#endif
#ifdef __AVX2__
    if (one_group_rows) {
        /* The kernel prefetches PREFETCH_BYTES ahead of where it reads: the range's first bytes are asked for here,
           all at once, instead of one miss after another while the stream starts (2048 x 2048 ternary from DRAM,
           one thread, alternated: 125-138 -> 137-146 G weights/s; with two threads no difference showed). */
        const uint8_t *first = w + row_start * row_stride(kind, k);
        int64_t bytes = (row_end - row_start) * row_stride(kind, k);
        for (int64_t at = 0; at < PREFETCH_BYTES && at < bytes; at += 64) {
            _mm_prefetch((const char *) (first + at), _MM_HINT_T0);
        }
    }
#endif
    for (int64_t r = row_start; r < row_end; r += ROW_BLOCK) {
        int rows = row_end - r < ROW_BLOCK ? (int) (row_end - r) : ROW_BLOCK;
#ifdef __AVX2__
        if (one_group_rows && rows == ROW_BLOCK) {
            const uint8_t *block = w + r * row_stride(kind, k);
            const uint8_t *scales_f16 = w + scales_offset + 2 * r;
            const uint8_t *mins_f16 = asym ? w + mins_offset + 2 * r : 0;
            switch (kind) {
                case BP_INT4 | PACKED:
                    packed_rows_one_group(block, row_stride(kind, k), k, packed_q, qsums[0], scales_f16, mins_f16,
                                          xscales[0], y + r, BP_INT4 | PACKED);
                    break;
                case BP_INT4_ASYM | PACKED:
                    packed_rows_one_group(block, row_stride(kind, k), k, packed_q, qsums[0], scales_f16, mins_f16,
                                          xscales[0], y + r, BP_INT4_ASYM | PACKED);
                    break;
                case BP_TERNARY | PACKED:
                    packed_rows_one_group(block, row_stride(kind, k), k, packed_q, qsums[0], scales_f16, mins_f16,
                                          xscales[0], y + r, BP_TERNARY | PACKED);
                    break;
                case BP_BINARY:
                    plane_rows_one_group(block, row_stride(kind, k), plane_bytes, k, plane_tok, 0, scales_f16, 0,
                                         xscales[0], y + r, BP_BINARY);
                    break;
                case BP_TERNARY:
                    plane_rows_one_group(block, row_stride(kind, k), plane_bytes, k, plane_tok, 0, scales_f16, 0,
                                         xscales[0], y + r, BP_TERNARY);
                    break;
                case BP_INT4:
                    plane_rows_one_group(block, row_stride(kind, k), plane_bytes, k, plane_tok, 0, scales_f16, 0,
                                         xscales[0], y + r, BP_INT4);
                    break;
                default:
                    plane_rows_one_group(block, row_stride(kind, k), plane_bytes, k, plane_tok, qsums[0], scales_f16,
                                         mins_f16, xscales[0], y + r, BP_INT4_ASYM);
                    break;
            }
            continue;
        }
#endif
        prepare_block(w, kind, k, groups, scales_offset, mins_offset, r, rows, decode, &s);
        int32_t b = 0;
#ifdef __AVX2__
        for (; by_block && b + TOKEN_BLOCK <= batch; b += TOKEN_BLOCK) {
            for (int j = 0; j < rows; j++) {
                const uint8_t *row = w + (r + j) * row_stride(kind, k);
                const float *mins_j = asym ? s.mins + j * groups : 0;
                float *terms_j = s.terms + j * groups;
                switch (kind) {
                    case BP_INT4 | PACKED:
                        packed_row_tokens(row, xq + b * k, k, qsums + b * groups, groups, groups, s.scales + j * groups,
                                          mins_j, group, terms_j, token_stride, BP_INT4 | PACKED, TOKEN_BLOCK);
                        break;
                    case BP_INT4_ASYM | PACKED:
                        packed_row_tokens(row, xq + b * k, k, qsums + b * groups, groups, groups, s.scales + j * groups,
                                          mins_j, group, terms_j, token_stride, BP_INT4_ASYM | PACKED, TOKEN_BLOCK);
                        break;
                    default:
                        packed_row_tokens(row, xq + b * k, k, qsums + b * groups, groups, groups, s.scales + j * groups,
                                          mins_j, group, terms_j, token_stride, BP_TERNARY | PACKED, TOKEN_BLOCK);
                        break;
                }
            }
            for (int t = 0; t < TOKEN_BLOCK; t++) {
                sum_terms(s.terms + t * token_stride, groups, rows, xscales[b + t], 1, y + (b + t) * n + r);
            }
        }
#endif
        for (; b < batch; b++) {
            for (int j = 0; j < rows; j++) {
                row_codes rc = {0, w + (r + j) * row_stride(kind, k), plane_bytes, kind};
                if (encoding == BP_INT8) {
                    rc.codes = (const int8_t *) (w + (r + j) * k);
                } else if (decode) {
                    rc.codes = s.codes + j * k;
                }
                terms_i8(&rc, xq + b * k, qsums + b * groups, s.scales + j * groups,
                         asym ? s.mins + j * groups : 0, k, group, groups, s.terms + j * groups, plane_tok);
            }
            sum_terms(s.terms, groups, rows, xscales[b], 1, y + b * n + r);
        }
    }
}
