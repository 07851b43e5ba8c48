/*
 * INT8, INT4 and INT4_ASYM weights in groups of 32 values (one f16 scale each, and a min for INT4_ASYM, as Q8_0,
 * Q4_0 and Q4_1 have) times INT8 activations, over rows re-laid so that each group's products add up in one 32-bit
 * lane ("group lanes"); compiled once per instruction set like every kernel source (build.sh).
 *
 * Memory layout (bitplane_kernels.h), k a multiple of 512: rows in blocks of 8 (the last one filled up with zero
 * rows), a row's groups in super-blocks of 16 (512 values); block t at byte t S B, S = k / 512 super-blocks,
 * B = 8 C + 256 (+ 256 for INT4_ASYM) bytes per super-block of the block, C = 512 (INT8) or 256 (INT4, INT4_ASYM)
 * bytes of codes per row:
 *   codes       super-block s of row j of the block at s B + j C; in it, byte 64 m + 4 L + b (m < 8, L < 16, b < 4):
 *               INT8: code + 128 (so unsigned) of value 32 (16 s + L) + 4 m + b of the row;
 *               INT4 (m < 4): u = code + 8 (INT4_ASYM: u, the code) of value 32 (16 s + L) + 8 m + b in the low
 *               nibble, and of value 32 (16 s + L) + 8 m + 4 + b in the high nibble.
 *   scales      the 16 groups' f16 scales of row j at s B + 8 C + 32 j; INT4_ASYM's f16 mins at s B + 8 C + 256 + 32 j.
 *   q lanes     per token, in the caller's scratch: super-block s at byte s 512: byte 64 m + 4 L + b holds
 *               q[32 (16 s + L) + 4 m + b], the activation that INT8 byte 64 m + 4 L + b meets, and INT4 nibbles
 *               (m = 2 v for low, 2 v + 1 for high); then the groups' sums of q, int32.
 * One vpdpbusd of a weight vector and its q vector adds four products of each of 16 groups into that group's lane,
 * so eight of them (INT8; INT4: four vectors' low and high nibbles) leave the 16 groups' sums in order with no sum
 * across lanes. The file's layouts hold a group in eight adjacent lanes of one vector, and that reduction cost more
 * than the products: INT4 in groups of 32 from L2, one thread, read 40-55 G weights/s, these lanes 122-134.
 * The AVX2 build takes INT4 and INT4_ASYM with vpmaddubsw (block_rows_avx2; INT8 lane by lane, not re-laid there).
 * sum - offset * (the group's sum of q) is the exact integer sum of code * q; times the scale (plus the min times
 * the group's sum of q, INT4_ASYM) it is the group's term; the terms are added per row in group order from 0 and
 * the total multiplied by xscale: the Java reference's float steps, so the result equals it bit for bit. A block's
 * eight rows go side by side, their terms turned (transposed) so that each add takes one group of every row; the
 * block's bytes are one stream from memory, in the order read (eight rows read side by side from the file's order
 * had eight streams of one row each, too short on 2048-value rows for the hardware prefetchers: 32000 x 2048 INT8
 * went from 45-55 to 27-41 G weights/s). Long INT8 rows go two blocks at a time, two such streams (PAIR_MIN_K).
 */
#include <string.h>

#include "bitplane_kernels.h"
#include "kernels_impl.h"

#define GROUP_VALUES 32
#define SUPER_VALUES 512
#define SUPER_GROUPS 16
#define LANE_ROWS 8
#define SCALE_BYTES (LANE_ROWS * SUPER_GROUPS * 2) /* the f16 scales (or mins) of a block's super-block */
/* How far ahead of the stream the weights are prefetched, Intel and other (prefetch_distance): on the Intel Xeon,
   INT4 g32 4096 x 14336, two threads, 1 KB 50.2-51.0 G weights/s, 2 KB 48.9-50.6, 4 KB 40.9 (the first choice,
   made on the AMD EPYC). */
#define PREFETCH_INTEL 1024
#define PREFETCH_OTHER 4096
/*
 * INT8 rows of at least this many values go two blocks at a time (block_rows: two streams a thread). `bitplane
 * bench --backend native --encodings int8,int4 --activations int8` on the Intel Xeon, four alternated rounds, G
 * weights/s: INT8 4096x14336 28.7-30.2 -> 30.9-33.0 (81-88% -> 91-95% of the roofline), 14336x4096 27.6-28.7 ->
 * 29.2-30.1; in pairs 32000x2048 read 26.8-27.4 against 28.2-29.1, and INT4 lost at every shape (4096x14336
 * 46.5-47.1 -> 44.7-46.5, 32000x2048 49.5-50.7 -> 38.7-40.8), so those keep one block at a time.
 */
#define PAIR_MIN_K 4096

/* Bytes of codes per row and super-block. */
static inline int64_t code_bytes(int32_t encoding) {
    return encoding == BP_INT8 ? 512 : 256;
}

/* Bytes per super-block of a block of rows, and per block. */
static inline int64_t step_bytes(int32_t encoding) {
    return LANE_ROWS * code_bytes(encoding) + (encoding == BP_INT4_ASYM ? 2 : 1) * SCALE_BYTES;
}

static inline int64_t block_bytes(int32_t encoding, int64_t k) {
    return k / SUPER_VALUES * step_bytes(encoding);
}

int64_t BP_FN(_group_lanes_bytes)(int32_t encoding, int64_t n, int64_t k) {
    return (n + LANE_ROWS - 1) / LANE_ROWS * block_bytes(encoding, k);
}

/* Value i of a row in the file's layout: an INT8 code, or INT4's u = code + 8 from bit planes (layout 0: plane p's
   bit i) or packed nibbles (layout 1: 32-byte blocks of 64 values, value j at byte j % 32, nibble (j % 64) / 32). */
static inline int32_t file_value(const uint8_t *row, int32_t encoding, int32_t layout, int64_t k, int64_t i) {
    if (encoding == BP_INT8) {
        return (int8_t) row[i];
    }
    if (layout == 1) {
        return row[i / 64 * 32 + i % 32] >> (4 * (i % 64 / 32)) & 15;
    }
    int64_t plane_bytes = (k + 63) / 64 * 8;
    int32_t u = 0;
    for (int p = 0; p < 4; p++) {
        u |= (row[p * plane_bytes + i / 8] >> (i % 8) & 1) << p;
    }
    return u;
}

void BP_FN(_group_lanes_repack)(const void *w, int32_t encoding, int32_t layout, int64_t k, int64_t n,
                                int64_t scales_offset, int64_t mins_offset, int64_t block_start, int64_t block_end,
                                void *lanes) {
    const uint8_t *file = (const uint8_t *) w;
    int64_t file_stride = encoding == BP_INT8 ? k : layout == 1 ? k / 2 : 4 * ((k + 63) / 64 * 8);
    int64_t groups = k / GROUP_VALUES;
    for (int64_t t = block_start; t < block_end; t++) {
        uint8_t *block = (uint8_t *) lanes + t * block_bytes(encoding, k);
        memset(block, 0, (size_t) block_bytes(encoding, k));
        for (int64_t j = 0; j < LANE_ROWS && LANE_ROWS * t + j < n; j++) {
            int64_t r = LANE_ROWS * t + j;
            const uint8_t *row = file + r * file_stride;
            for (int64_t s = 0; s < k / SUPER_VALUES; s++) {
                uint8_t *codes = block + s * step_bytes(encoding) + j * code_bytes(encoding);
                for (int m = 0; m < 8; m++) {
                    for (int lane = 0; lane < SUPER_GROUPS; lane++) {
                        for (int b = 0; b < 4; b++) {
                            int32_t value = file_value(row, encoding, layout, k,
                                                       GROUP_VALUES * (SUPER_GROUPS * s + lane) + 4 * m + b);
                            if (encoding == BP_INT8) {
                                codes[64 * m + 4 * lane + b] = (uint8_t) (value + 128);
                            } else { /* m = 2 v + high: value 8 v + 4 high + b of the group */
                                codes[64 * (m / 2) + 4 * lane + b] |= (uint8_t) (value << (4 * (m & 1)));
                            }
                        }
                    }
                }
                uint8_t *scales = block + s * step_bytes(encoding) + LANE_ROWS * code_bytes(encoding);
                memcpy(scales + 32 * j, file + scales_offset + 2 * (r * groups + SUPER_GROUPS * s), 32);
                if (encoding == BP_INT4_ASYM) {
                    memcpy(scales + SCALE_BYTES + 32 * j, file + mins_offset + 2 * (r * groups + SUPER_GROUPS * s), 32);
                }
            }
        }
    }
}

/* One token's q lanes and its groups' sums of q (the layout above), from q[k]. */
static void token_lanes(const int8_t *q, int64_t k, int8_t *qp, int32_t *qsums) {
    for (int64_t s = 0; s < k / SUPER_VALUES; s++) {
        for (int m = 0; m < 8; m++) {
            for (int lane = 0; lane < SUPER_GROUPS; lane++) { /* four values at a time */
                memcpy(qp + s * 512 + 64 * m + 4 * lane, q + GROUP_VALUES * (SUPER_GROUPS * s + lane) + 4 * m, 4);
            }
        }
    }
    for (int64_t g = 0; g < k / GROUP_VALUES; g++) {
        int32_t sum = 0;
        for (int i = 0; i < GROUP_VALUES; i++) {
            sum += q[GROUP_VALUES * g + i];
        }
        qsums[g] = sum;
    }
}

#ifdef __AVX2__
/*
 * The end of a super-block in block_rows (both vector builds): its scales (and mins, from `scales`) are prefetched
 * ahead, and the terms of the block's rows (lo[j], hi[j]: groups 0-7 and 8-15 of row j) are turned so that each add
 * takes one group of every row, then added to sums (row j in lane j) in group order.
 */
ALWAYS_INLINE __m256 add_terms_in_order(__m256 sums, __m256 lo[LANE_ROWS], __m256 hi[LANE_ROWS],
                                        const uint8_t *scales, int32_t encoding, int64_t ahead) {
    for (int line = 0; line < step_bytes(encoding) - LANE_ROWS * code_bytes(encoding); line += 64) {
        _mm_prefetch((const char *) (scales + line + ahead), _MM_HINT_T0);
    }
    transpose8x8(lo); /* lo[g]: group 16 s + g of every row */
    transpose8x8(hi);
    for (int g = 0; g < 8; g++) {
        sums = _mm256_add_ps(sums, lo[g]);
    }
    for (int g = 0; g < 8; g++) {
        sums = _mm256_add_ps(sums, hi[g]);
    }
    return sums;
}

/* y[0..rows) = the block's row totals (lane j: row j) times xscale. */
static inline void store_rows(__m256 sums, float xscale, float *y, int rows) {
    float out[LANE_ROWS];
    _mm256_storeu_ps(out, _mm256_mul_ps(sums, _mm256_set1_ps(xscale)));
    memcpy(y, out, (size_t) rows * sizeof(float));
}
#endif

#if defined(__AVX512BW__) && defined(__AVX512VNNI__)

/* The 16 groups' exact sums of code * q over one super-block of a row (at) and the token's q lanes (qs), from start
   (the first chain's first value): minus the stored codes' offset, 128 or 8 (INT4_ASYM: 0), times the groups' sums of
   q. Four chains of products for INT8 and two for INT4 (low and high nibbles), so that no chain waits long on the one
   before. INT8 also asks for its codes L2_AHEAD times as far ahead into L2, as the packed ternary rows do: on the Intel
   Xeon, weights in 2 MB pages, 4096 x 14336, two threads (`bitplane bench`, alternated), 25.3-26.4 -> 27.5-29.4 G
   weights/s (2 and 3 KB ahead 27.5-28.1, 6 KB 27.6); INT4 stayed level with it at 2-4 KB (51.5-53.1 against 52.1-53.1)
   and lost at 6-16 KB (48-50), so it has none.
   INT4 does the least it can, as each operation it leaves out lets it read more, although it does not wait on them from
   memory (docs/PERFORMANCE.md, "INT4 group lanes with fewer operations"): its high nibbles are masked in place (z &
   0xF0 = 16 u) rather than shifted down and masked, their chain's sum, 16 times the exact one, shifted back once
   (dpbusd's products are at most 240 x 128, four a lane per instruction, four instructions a chain: far from overflow);
   two chains where four had been, so that no chains' sums are added; and the offsets taken as the low chain's start
   instead of subtracted. */
ALWAYS_INLINE __m512i super_sums(const uint8_t *at, const int8_t *qs, int32_t encoding, int64_t ahead, __m512i start) {
    if (encoding == BP_INT8) {
        __m512i a[4] = {start, _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
#pragma GCC unroll 8
        for (int m = 0; m < 8; m++) {
            _mm_prefetch((const char *) (at + 64 * m + ahead), _MM_HINT_T0);
            _mm_prefetch((const char *) (at + 64 * m + L2_AHEAD * ahead), _MM_HINT_T2);
            a[m % 4] = dpbusd512(a[m % 4], _mm512_loadu_si512(at + 64 * m), _mm512_loadu_si512(qs + 64 * m));
        }
        return _mm512_add_epi32(_mm512_add_epi32(a[0], a[1]), _mm512_add_epi32(a[2], a[3]));
    }
    const __m512i nibble = _mm512_set1_epi8(15);
    __m512i low = start, high = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++) {
        __m512i z = load_after_prefetch(at + 64 * v, ahead, 0);
        low = dpbusd512(low, _mm512_and_si512(z, nibble), _mm512_loadu_si512(qs + 128 * v));
        high = dpbusd512(high, _mm512_andnot_si512(nibble, z), _mm512_loadu_si512(qs + 128 * v + 64)); /* 16 u */
    }
    return _mm512_add_epi32(low, _mm512_srai_epi32(high, 4));
}

/*
 * y[0..rows) for the rows of one block (rows <= 8) and one token: per super-block, each row's 16 exact group sums,
 * its 16 terms, and the eight rows' terms added in group order (two 8x8 turns). With count 2, the next block too
 * (its rows at y + 8, rows2 of them), super-block by super-block beside the first: two streams of weights a thread
 * where one had been. encoding and count are constants where this is inlined.
 */
ALWAYS_INLINE void block_rows(const uint8_t *block, int32_t encoding, int64_t k, const int8_t *qp,
                              const int32_t *qsums, float xscale, float *y, int rows, int count, int rows2) {
    const int64_t ahead = prefetch_distance(PREFETCH_INTEL, PREFETCH_OTHER);
    const int offset_shift = encoding == BP_INT8 ? 7 : 3; /* codes stored + 128 (INT8) or + 8 (INT4; INT4_ASYM: 0) */
    __m256 sums[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    for (int64_t s = 0; s < k / SUPER_VALUES; s++) {
        __m512i qs = _mm512_loadu_si512(qsums + SUPER_GROUPS * s);
        __m512i start = encoding == BP_INT4_ASYM /* minus the offsets' products */
                                ? _mm512_setzero_si512()
                                : _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(qs, offset_shift));
        for (int b = 0; b < count; b++) {
            const uint8_t *step = block + b * block_bytes(encoding, k) + s * step_bytes(encoding);
            __m256 lo[LANE_ROWS], hi[LANE_ROWS];
#pragma GCC unroll 8
            for (int j = 0; j < LANE_ROWS; j++) { /* rows past n have zero scales: terms 0, and not stored */
                __m512i exact = super_sums(step + j * code_bytes(encoding), qp + s * 512, encoding, ahead, start);
                __m512 scales = _mm512_cvtph_ps(
                        _mm256_loadu_si256((const __m256i *) (step + LANE_ROWS * code_bytes(encoding) + 32 * j)));
                __m512 terms = _mm512_mul_ps(scales, _mm512_cvtepi32_ps(exact));
                if (encoding == BP_INT4_ASYM) { /* + m Q, rounded apart as the reference's s acc + m Q */
                    __m512 mins = _mm512_cvtph_ps(_mm256_loadu_si256(
                            (const __m256i *) (step + LANE_ROWS * code_bytes(encoding) + SCALE_BYTES + 32 * j)));
                    terms = _mm512_add_ps(terms, _mm512_mul_ps(mins, _mm512_cvtepi32_ps(qs)));
                }
                lo[j] = _mm512_castps512_ps256(terms);
                hi[j] = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(terms), 1));
            }
            sums[b] = add_terms_in_order(sums[b], lo, hi, step + LANE_ROWS * code_bytes(encoding), encoding, ahead);
        }
    }
    store_rows(sums[0], xscale, y, rows);
    if (count == 2) {
        store_rows(sums[1], xscale, y + LANE_ROWS, rows2);
    }
}

static void block_rows_any(const uint8_t *block, int32_t encoding, int64_t k, const int8_t *qp,
                           const int32_t *qsums, float xscale, float *y, int rows, int count, int rows2) {
    switch (encoding) { /* a constant encoding (and count) for each inlined copy; only INT8 goes in pairs */
        case BP_INT8:
            if (count == 2) {
                block_rows(block, BP_INT8, k, qp, qsums, xscale, y, rows, 2, rows2);
            } else {
                block_rows(block, BP_INT8, k, qp, qsums, xscale, y, rows, 1, 0);
            }
            break;
        case BP_INT4:
            block_rows(block, BP_INT4, k, qp, qsums, xscale, y, rows, 1, 0);
            break;
        default:
            block_rows(block, BP_INT4_ASYM, k, qp, qsums, xscale, y, rows, 1, 0);
            break;
    }
}
#else
/* The same sums lane by lane: the portable build, and INT8 on the AVX2 build (below), which the Java side re-lays
   only for the AVX-512 build; tests reach this code by selecting the implementation. */
static void block_rows_lanewise(const uint8_t *block, int32_t encoding, int64_t k, const int8_t *qp,
                                const int32_t *qsums, float xscale, float *y, int rows) {
    for (int j = 0; j < rows; j++) {
        float sum = 0.0f;
        for (int64_t g = 0; g < k / GROUP_VALUES; g++) {
            int64_t s = g / SUPER_GROUPS;
            int lane = (int) (g % SUPER_GROUPS);
            const uint8_t *step = block + s * step_bytes(encoding);
            const uint8_t *codes = step + j * code_bytes(encoding) + 4 * lane;
            const int8_t *qs = qp + s * 512 + 4 * lane;
            int32_t acc = 0;
            for (int m = 0; m < 8; m++) {
                for (int b = 0; b < 4; b++) {
                    int32_t code = encoding == BP_INT8 ? codes[64 * m + b] - 128
                                                       : (codes[64 * (m / 2) + b] >> (4 * (m & 1)) & 15)
                                                         - (encoding == BP_INT4 ? 8 : 0);
                    acc += code * qs[64 * m + b];
                }
            }
            uint16_t h;
            memcpy(&h, step + LANE_ROWS * code_bytes(encoding) + 32 * j + 2 * lane, 2);
            float term = f16_to_f32(h) * (float) acc;
            if (encoding == BP_INT4_ASYM) {
                memcpy(&h, step + LANE_ROWS * code_bytes(encoding) + SCALE_BYTES + 32 * j + 2 * lane, 2);
                term += f16_to_f32(h) * (float) qsums[g];
            }
            sum += term;
        }
        y[j] = sum * xscale;
    }
}

#ifdef __AVX2__
/*
 * block_rows for INT4 and INT4_ASYM on the AVX2 build (encoding a constant where inlined): a 64-byte vector of the
 * layout is two 256-bit halves, groups 0-7 and 8-15 of the super-block. vpmaddubsw multiplies u (at most 15) by q
 * and adds pairs into int16; a super-block's eight such products a lane (four vectors' low and high nibbles) stay
 * within int16 (8 x 2 x 15 x 128 = 30720), so one vpmaddwd per half and super-block finishes each group's sum in its
 * 32-bit lane. INT8's u = code + 128 would overflow vpmaddubsw's pairs, so INT8 stays lane by lane on this build
 * (and the backend does not re-lay it for this build). Same integer sums and float steps as block_rows. On the
 * Intel Xeon with AVX2 code throughout (`BITPLANE_JVM_OPTS="-Dbitplane.native.isa=avx2 -XX:UseAVX=2"`; before, the
 * AVX2 build left these products to the Java backend's nibble tiles), 4096 x 14336 INT4 g32, two threads: 34-36 ->
 * 45-48 G weights/s (95-100% of the roofline at 26-27 GB/s); the 418M W4A8 model decoded at 61-66 -> 82.4-82.6
 * tokens/s (83%).
 */
ALWAYS_INLINE void block_rows_avx2(const uint8_t *block, int32_t encoding, int64_t k, const int8_t *qp,
                                   const int32_t *qsums, float xscale, float *y, int rows) {
    const int64_t ahead = prefetch_distance(PREFETCH_INTEL, PREFETCH_OTHER);
    const __m256i nibble = _mm256_set1_epi8(15);
    const __m256i ones = _mm256_set1_epi16(1);
    const int64_t codes = code_bytes(encoding);
    __m256 sums = _mm256_setzero_ps();
    for (int64_t s = 0; s < k / SUPER_VALUES; s++) {
        const uint8_t *step = block + s * step_bytes(encoding);
        const int8_t *qs = qp + s * 512;
        __m256i q_lo = _mm256_loadu_si256((const __m256i *) (qsums + SUPER_GROUPS * s));
        __m256i q_hi = _mm256_loadu_si256((const __m256i *) (qsums + SUPER_GROUPS * s + 8));
        /* codes stored + 8 (INT4; INT4_ASYM: 0) */
        __m256i offsets_lo = encoding == BP_INT4_ASYM ? _mm256_setzero_si256() : _mm256_slli_epi32(q_lo, 3);
        __m256i offsets_hi = encoding == BP_INT4_ASYM ? _mm256_setzero_si256() : _mm256_slli_epi32(q_hi, 3);
        __m256 lo[LANE_ROWS], hi[LANE_ROWS];
#pragma GCC unroll 8
        for (int j = 0; j < LANE_ROWS; j++) { /* rows past n have zero scales: terms 0, and not stored */
            const uint8_t *at = step + j * codes;
            __m256i pairs_lo = _mm256_setzero_si256(), pairs_hi = _mm256_setzero_si256();
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) { /* low nibbles meet q lanes 2 v, high nibbles 2 v + 1 */
                __m256i z0, z1;
                halves_after_prefetch(at + 64 * v, ahead, 0, &z0, &z1);
                const int8_t *qv = qs + 128 * v;
                __m256i q0 = _mm256_loadu_si256((const __m256i *) qv);
                __m256i q1 = _mm256_loadu_si256((const __m256i *) (qv + 32));
                __m256i q2 = _mm256_loadu_si256((const __m256i *) (qv + 64));
                __m256i q3 = _mm256_loadu_si256((const __m256i *) (qv + 96));
                pairs_lo = _mm256_add_epi16(pairs_lo, _mm256_maddubs_epi16(_mm256_and_si256(z0, nibble), q0));
                pairs_lo = _mm256_add_epi16(pairs_lo, _mm256_maddubs_epi16(
                        _mm256_and_si256(_mm256_srli_epi16(z0, 4), nibble), q2));
                pairs_hi = _mm256_add_epi16(pairs_hi, _mm256_maddubs_epi16(_mm256_and_si256(z1, nibble), q1));
                pairs_hi = _mm256_add_epi16(pairs_hi, _mm256_maddubs_epi16(
                        _mm256_and_si256(_mm256_srli_epi16(z1, 4), nibble), q3));
            }
            __m256i exact_lo = _mm256_sub_epi32(_mm256_madd_epi16(pairs_lo, ones), offsets_lo);
            __m256i exact_hi = _mm256_sub_epi32(_mm256_madd_epi16(pairs_hi, ones), offsets_hi);
            const uint8_t *scales = step + LANE_ROWS * codes + 32 * j;
            lo[j] = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) scales)),
                                  _mm256_cvtepi32_ps(exact_lo));
            hi[j] = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (scales + 16))),
                                  _mm256_cvtepi32_ps(exact_hi));
            if (encoding == BP_INT4_ASYM) { /* + m Q, rounded apart as the reference's s acc + m Q */
                const uint8_t *mins = scales + SCALE_BYTES;
                lo[j] = _mm256_add_ps(lo[j], _mm256_mul_ps(
                        _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) mins)), _mm256_cvtepi32_ps(q_lo)));
                hi[j] = _mm256_add_ps(hi[j], _mm256_mul_ps(
                        _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (mins + 16))), _mm256_cvtepi32_ps(q_hi)));
            }
        }
        sums = add_terms_in_order(sums, lo, hi, step + LANE_ROWS * codes, encoding, ahead);
    }
    store_rows(sums, xscale, y, rows);
}
#endif

static void block_rows_one(const uint8_t *block, int32_t encoding, int64_t k, const int8_t *qp,
                           const int32_t *qsums, float xscale, float *y, int rows) {
#ifdef __AVX2__
    if (encoding == BP_INT4) {
        block_rows_avx2(block, BP_INT4, k, qp, qsums, xscale, y, rows);
        return;
    }
    if (encoding == BP_INT4_ASYM) {
        block_rows_avx2(block, BP_INT4_ASYM, k, qp, qsums, xscale, y, rows);
        return;
    }
#endif
    block_rows_lanewise(block, encoding, k, qp, qsums, xscale, y, rows);
}

/* The AVX-512 build's signature: `count` blocks (1 or 2) from block, one after the other here. */
static void block_rows_any(const uint8_t *block, int32_t encoding, int64_t k, const int8_t *qp,
                           const int32_t *qsums, float xscale, float *y, int rows, int count, int rows2) {
    block_rows_one(block, encoding, k, qp, qsums, xscale, y, rows);
    if (count == 2) {
        block_rows_one(block + block_bytes(encoding, k), encoding, k, qp, qsums, xscale, y + LANE_ROWS, rows2);
    }
}
#endif

void BP_FN(_matmul_group_lanes)(const void *lanes, int32_t encoding, int64_t k, int64_t n, const int8_t *xq,
                                const float *xscales, float *y, int32_t batch, int64_t block_start,
                                int64_t block_end, void *scratch) {
    int8_t *qp = (int8_t *) scratch;
    int32_t *qsums = (int32_t *) (qp + k); /* k is a multiple of 512: aligned as the scratch is */
    const int pairs = encoding == BP_INT8 && k >= PAIR_MIN_K;
    for (int32_t b = 0; b < batch; b++) {
        token_lanes(xq + b * k, k, qp, qsums);
        for (int64_t t = block_start; t < block_end;) {
            int64_t r = LANE_ROWS * t;
            int rows = n - r < LANE_ROWS ? (int) (n - r) : LANE_ROWS;
            int count = pairs && t + 1 < block_end ? 2 : 1;
            int rows2 = count == 2 && n - r - LANE_ROWS < LANE_ROWS ? (int) (n - r - LANE_ROWS) : LANE_ROWS;
            block_rows_any((const uint8_t *) lanes + t * block_bytes(encoding, k), encoding, k, qp, qsums,
                           xscales[b], y + b * n + r, rows, count, rows2);
            t += count;
        }
    }
}
