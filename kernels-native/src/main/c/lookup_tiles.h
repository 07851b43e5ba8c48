/*
 * What the two lookup-tile kernels share (sign_tiles.c: BINARY; base3_tiles.c: TERNARY in base-3 words): tiles of
 * 32 rows, each chunk of a tile 64 bytes (a 16-bit word a row), the chunks of `group` consecutive tiles interleaved
 * (tile t = group g + i, of a group of m tiles, has chunk c at byte (group g C + c m + i) 64, C chunks a row); the
 * rows' results from their sums; the lookups themselves, three a chunk of 32 rows (AVX-512: vpermw and vpermt2w in
 * int16 runs widened to int32 even and odd rows; lane by lane where the build has no vpermw); and, for rows in groups
 * of values, each group's chunks followed by a slot of its f16 scales whose terms the lanes add in group order.
 */
#ifndef BITPLANE_LOOKUP_TILES_H
#define BITPLANE_LOOKUP_TILES_H

#include <string.h>

#include "kernels_impl.h"

#define TILE_ROWS 32
#define CHUNK_BYTES (2 * TILE_ROWS)
/* Tiles the AVX-512 kernels read side by side, a whole interleaved group; a range's last tiles go 4, 2 and 1. */
#define LOOKUP_TILES 8

/* Bytes of the tiles of a tensor of n rows and `chunks` chunks a row. */
static inline int64_t tiles_bytes(int64_t n, int64_t chunks) {
    return (n + TILE_ROWS - 1) / TILE_ROWS * chunks * CHUNK_BYTES;
}

/*
 * y for the rows of tile t below n from each row's lookup sum S_j: acc_j = offset + factor S_j (exact in int32) and
 * y = (0f + (s acc + 0f)) xscale, the Java reference's float steps for one group a row, so that the result is the
 * reference's bit for bit. BINARY: offset the token's sum of codes, factor -2; TERNARY: 0 and 1.
 */
static inline void store_tile(const int32_t sums[TILE_ROWS], int64_t t, int64_t n, int32_t offset, int32_t factor,
                              const float *scales, float xscale, float *y) {
    for (int64_t j = 0; j < TILE_ROWS && TILE_ROWS * t + j < n; j++) {
        int64_t r = TILE_ROWS * t + j;
        int32_t acc = offset + factor * sums[j];
        y[r] = (0.0f + (scales[r] * (float) acc + 0.0f)) * xscale;
    }
}

/* Where row j of a tile (32 of them) keeps its u16 in a slot of group scales: the even rows first, then the odd
   ones, the order of the AVX-512 kernels' int32 sums. */
static inline int scale_position(int j) {
    return j % 2 * (TILE_ROWS / 2) + j / 2;
}

/* Where tile t's chunk 0 starts, and the bytes from one of its chunks to the next, in a tensor of n rows. */
static inline int64_t tile_at(int64_t t, int64_t n, int64_t chunks, int64_t group, int64_t *stride) {
    int64_t tiles = (n + TILE_ROWS - 1) / TILE_ROWS;
    int64_t first = t / group * group; /* the group's first tile */
    int64_t in_group = tiles - first < group ? tiles - first : group;
    *stride = in_group * CHUNK_BYTES;
    return (first * chunks + t - first) * CHUNK_BYTES;
}

/* Where a repack writes tile t (tile_at's start and stride), its chunks zeroed first: rows past n and values past
   k stay 0. */
static inline uint8_t *cleared_tile(uint8_t *tiles, int64_t t, int64_t n, int64_t chunks, int64_t group,
                                    int64_t *stride) {
    uint8_t *tile = tiles + tile_at(t, n, chunks, group, stride);
    for (int64_t c = 0; c < chunks; c++) {
        memset(tile + c * *stride, 0, CHUNK_BYTES);
    }
    return tile;
}

/* Row j's three lookups in a chunk's tables tb: T0[w & 31] + T1[(w >> 5) & 31] + T2[w >> 10], w the row's word in
   the chunk at `chunk` (T2 is 64 entries for BINARY, 32 for TERNARY, whose words leave bit 15 zero). */
static inline int32_t lookup_word(const int16_t *tb, const uint8_t *chunk, int j) {
    uint32_t word = chunk[2 * j] | (uint32_t) chunk[2 * j + 1] << 8;
    return tb[word & 31] + tb[32 + (word >> 5 & 31)] + tb[64 + (word >> 10)];
}

/*
 * The AVX-512 kernels' lookups lane by lane, for the builds without vpermw (the portable build; base3_tiles.c's AVX2
 * build too): y for tiles [t, tile_end) of interleaved groups of `group` tiles, each row's S the sum over its chunks
 * of lookup_word (chunk_table int16 a chunk, the tables 32 apart), stored by store_tile with offset and factor.
 */
static inline void lookup_product_lanewise(const uint8_t *tiles, int64_t n, int64_t chunks, const int16_t *tables,
                                           int chunk_table, int64_t group, int32_t offset, int32_t factor,
                                           const float *scales, float xscale, float *y, int64_t t, int64_t tile_end) {
    for (; t < tile_end; t++) {
        int64_t stride;
        const uint8_t *tile = tiles + tile_at(t, n, chunks, group, &stride);
        int32_t sums[TILE_ROWS];
        for (int j = 0; j < TILE_ROWS; j++) {
            int32_t s = 0;
            for (int64_t c = 0; c < chunks; c++) {
                s += lookup_word(tables + chunk_table * c, tile + c * stride, j);
            }
            sums[j] = s;
        }
        store_tile(sums, t, n, offset, factor, scales, xscale, y);
    }
}

#if defined(__AVX512BW__)
#include <immintrin.h>

/* A run's int16 row sums s (row 2p in the low half of 32-bit lane p, row 2p + 1 in the high) added into the int32
   sums of the even and of the odd rows. */
ALWAYS_INLINE void widen_run(__m512i s, __m512i *even, __m512i *odd) {
    *even = _mm512_add_epi32(*even, _mm512_srai_epi32(_mm512_slli_epi32(s, 16), 16));
    *odd = _mm512_add_epi32(*odd, _mm512_srai_epi32(s, 16));
}

/* The even and odd rows' int32 sums back in row order. */
ALWAYS_INLINE void rows_in_order(__m512i even, __m512i odd, int32_t sums[TILE_ROWS]) {
    int32_t e[16], o[16];
    _mm512_storeu_si512(e, even);
    _mm512_storeu_si512(o, odd);
    for (int j = 0; j < 16; j++) {
        sums[2 * j] = e[j];
        sums[2 * j + 1] = o[j];
    }
}

/*
 * The lookups of `run` chunks for `count` tiles of one group side by side (every argument but the pointers a
 * constant where inlined), from *chunk (the first tile's chunk; the group's tiles lie side by side in each chunk, 64
 * bytes apart) and the chunk's tables at *tb (chunk_table int16 a chunk), both moved past the run: per chunk, three
 * lookups of 32 rows at once by the word, the word shifted down by 5 and by 10 (vpermw reads an index's low 5 bits,
 * vpermt2w its low 6, so no mask); the third over 64 entries in two registers where wide_third (BINARY's codes
 * 10-15), else over 32 (TERNARY's third index). A tile's three lookups are added together and then into its int16
 * sum s[i], started at 0 (one add a chunk on the chain through s[i]), and the caller bounds the run so that s[i]
 * stays within int16. Prefetches `ahead` bytes ahead into L1 and L2_AHEAD times as far into L2. One sum a tile, not
 * two (the first and third lookups in one, the second in the other, as before 2026-12-07): eight tiles' sums and
 * the tables then fit the 32 registers, where GCC had spilled three to five of sixteen sums to the stack, a load
 * and a store a chunk each (JMH `MatmulBenchmark -p backend=native -p activations=int8 -p shape=1024x14336 -p
 * copies=1`, two threads, from the caches, alternated twice, calls/s: BINARY 23,005-23,327 -> 23,715-24,308,
 * TERNARY 16,243-16,336 -> 16,818-16,991; from DRAM level).
 */
ALWAYS_INLINE void lookup_run(const uint8_t **chunk, int64_t stride, const int16_t **tb, int chunk_table, int64_t run,
                              int wide_third, int64_t ahead, int count, __m512i s[LOOKUP_TILES]) {
    for (int i = 0; i < count; i++) {
        s[i] = _mm512_setzero_si512();
    }
    const uint8_t *at = *chunk;
    const int16_t *t = *tb;
    for (int64_t c = 0; c < run; c++, at += stride, t += chunk_table) {
        __m512i t0 = _mm512_loadu_si512(t), t1 = _mm512_loadu_si512(t + 32), t2 = _mm512_loadu_si512(t + 64);
        __m512i t3 = wide_third ? _mm512_loadu_si512(t + 96) : t2;
#pragma GCC unroll 8
        for (int i = 0; i < count; i++) {
            __m512i w = load_after_prefetch(at + CHUNK_BYTES * i, ahead, L2_AHEAD * ahead);
            __m512i third = _mm512_srli_epi16(w, 10);
            __m512i first_two = _mm512_add_epi16(_mm512_permutexvar_epi16(w, t0),
                                                 _mm512_permutexvar_epi16(_mm512_srli_epi16(w, 5), t1));
            s[i] = _mm512_add_epi16(s[i], _mm512_add_epi16(first_two, wide_third
                                                                         ? _mm512_permutex2var_epi16(t2, third, t3)
                                                                         : _mm512_permutexvar_epi16(third, t2)));
        }
    }
    *chunk = at;
    *tb = t;
}

/*
 * S for `count` tiles from t, all of one group (every argument but the pointers and t a constant where inlined): per
 * chunk, lookup_run's lookups, in runs of run_chunks chunks (the caller bounds them, so that a run's sums stay
 * within int16), widened per run into int32 lanes, even rows and odd rows apart.
 * The tiles of a group lie side by side in each chunk, so one pointer walks them all (tile i at 64 i): with a
 * pointer and a stride per tile GCC kept seven strides on the stack, reloaded every chunk (a C probe, two threads,
 * 1024 x 14336 from L2: BINARY 328-352 -> 360-372 G weights/s, TERNARY 225-228 -> 241-246; from DRAM level).
 */
ALWAYS_INLINE void lookup_sums(const uint8_t *tiles, int64_t n, int64_t chunks, const int16_t *tables, int chunk_table,
                               int run_chunks, int wide_third, int64_t ahead, int64_t t, int count,
                               int32_t sums[LOOKUP_TILES][TILE_ROWS]) {
    int64_t stride;
    const uint8_t *chunk = tiles + tile_at(t, n, chunks, LOOKUP_TILES, &stride); /* tile t's chunk 0 */
    __m512i even[LOOKUP_TILES], odd[LOOKUP_TILES];
    for (int i = 0; i < count; i++) {
        even[i] = odd[i] = _mm512_setzero_si512();
    }
    const int16_t *tb = tables;
    for (int64_t c0 = 0; c0 < chunks; c0 += run_chunks) {
        __m512i s[LOOKUP_TILES];
        lookup_run(&chunk, stride, &tb, chunk_table, run_chunks < chunks - c0 ? run_chunks : chunks - c0, wide_third,
                   ahead, count, s);
        for (int i = 0; i < count; i++) { /* within int16 (run_chunks): widened once a run */
            widen_run(s[i], &even[i], &odd[i]);
        }
    }
    for (int i = 0; i < count; i++) {
        rows_in_order(even[i], odd[i], sums[i]);
    }
}

/*
 * Runs TILES(count) for tiles [t, tile_end) (t, an int64_t variable, moved to tile_end), group by group: LOOKUP_TILES
 * at a time, then 4, 2 and 1 of a group that is short or cut by the range, with `count` a constant in each of
 * TILES' four inlined copies (TILES(count) reads tiles [t, t + count)).
 */
#define EACH_TILE_COUNT(t, tile_end, TILES)                                                                        \
    while ((t) < (tile_end)) {                                                                                     \
        int64_t next_group_ = ((t) / LOOKUP_TILES + 1) * LOOKUP_TILES;                                             \
        int64_t end_ = next_group_ < (tile_end) ? next_group_ : (tile_end);                                        \
        for (int count_ = LOOKUP_TILES; count_ >= 1; count_ /= 2) {                                                \
            for (; (t) + count_ <= end_; (t) += count_) {                                                          \
                switch (count_) {                                                                                  \
                case LOOKUP_TILES: TILES(LOOKUP_TILES); break;                                                     \
                case 4: TILES(4); break;                                                                           \
                case 2: TILES(2); break;                                                                           \
                default: TILES(1); break;                                                                          \
                }                                                                                                  \
            }                                                                                                      \
        }                                                                                                          \
    }

/*
 * y for tiles [t, tile_end) by lookup_sums (its constants as there), EACH_TILE_COUNT at a time, each tile's rows
 * stored by store_tile with offset and factor.
 */
ALWAYS_INLINE void lookup_product(const uint8_t *tiles, int64_t n, int64_t chunks, const int16_t *tables,
                                  int chunk_table, int run_chunks, int wide_third, int64_t ahead, int32_t offset,
                                  int32_t factor, const float *scales, float xscale, float *y, int64_t t,
                                  int64_t tile_end) {
    int32_t sums[LOOKUP_TILES][TILE_ROWS];
#define LOOKUP_TILE_SUMS(count)                                                                                    \
    do {                                                                                                           \
        lookup_sums(tiles, n, chunks, tables, chunk_table, run_chunks, wide_third, ahead, t, count, sums);         \
        for (int i = 0; i < (count); i++) {                                                                        \
            store_tile(sums[i], t + i, n, offset, factor, scales, xscale, y);                                      \
        }                                                                                                          \
    } while (0)
    EACH_TILE_COUNT(t, tile_end, LOOKUP_TILE_SUMS)
#undef LOOKUP_TILE_SUMS
}

/*
 * y for `count` tiles from t, all of one group of interleaved tiles (every argument but the pointers and t a constant
 * where inlined), whose rows go in `groups` groups of values, each `chunks` chunks (tables chunk_table int16 apart,
 * in order) and then a slot of the group's f16 scales (even rows, then odd: scale_position): per group,
 * lookup_run's sums in runs of run_chunks chunks, each widened into the int32 sums of the even and of the odd rows;
 * acc_g = offsets[g] + factor S_g (offsets NULL: 0); the slot's halves widen to f32 (vcvtph2ps) and scale acc_g into
 * the rows' float totals, in group order from 0; y = total xscale, in row order. The reference adds s_g acc_g + 0f:
 * that + 0f only turns -0 into +0, which leaves a total that starts at +0 unchanged, so the result is the
 * reference's bit for bit.
 */
ALWAYS_INLINE void lookup_group_tiles(const uint8_t *tiles, int64_t n, int64_t groups, int64_t chunks,
                                      const int16_t *tables, int chunk_table, int run_chunks, int wide_third,
                                      int64_t ahead, const int32_t *offsets, int32_t factor, float xscale, float *y,
                                      int64_t t, int count) {
    int64_t stride;
    const uint8_t *chunk = tiles + tile_at(t, n, groups * (chunks + 1), LOOKUP_TILES, &stride); /* first slot */
    const int16_t *tb = tables;
    __m512 total_even[LOOKUP_TILES], total_odd[LOOKUP_TILES];
    for (int i = 0; i < count; i++) {
        total_even[i] = total_odd[i] = _mm512_setzero_ps();
    }
    for (int64_t g = 0; g < groups; g++) {
        __m512i even[LOOKUP_TILES], odd[LOOKUP_TILES];
        for (int i = 0; i < count; i++) {
            even[i] = odd[i] = _mm512_setzero_si512();
        }
        for (int64_t c0 = 0; c0 < chunks; c0 += run_chunks) {
            __m512i s[LOOKUP_TILES];
            lookup_run(&chunk, stride, &tb, chunk_table, run_chunks < chunks - c0 ? run_chunks : chunks - c0,
                       wide_third, ahead, count, s);
            for (int i = 0; i < count; i++) {
                widen_run(s[i], &even[i], &odd[i]);
            }
        }
        __m512i offset = _mm512_set1_epi32(offsets ? offsets[g] : 0);
        __m512i by = _mm512_set1_epi32(factor);
        for (int i = 0; i < count; i++) {
            __m512i scales = load_after_prefetch(chunk + CHUNK_BYTES * i, ahead, L2_AHEAD * ahead);
            __m512 scale_even = _mm512_cvtph_ps(_mm512_castsi512_si256(scales));
            __m512 scale_odd = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(scales, 1));
            __m512i acc_even = factor == 1 ? even[i] : _mm512_add_epi32(offset, _mm512_mullo_epi32(by, even[i]));
            __m512i acc_odd = factor == 1 ? odd[i] : _mm512_add_epi32(offset, _mm512_mullo_epi32(by, odd[i]));
            total_even[i] = _mm512_add_ps(total_even[i], _mm512_mul_ps(scale_even, _mm512_cvtepi32_ps(acc_even)));
            total_odd[i] = _mm512_add_ps(total_odd[i], _mm512_mul_ps(scale_odd, _mm512_cvtepi32_ps(acc_odd)));
        }
        chunk += stride;
    }
    __m512 x = _mm512_set1_ps(xscale);
    for (int i = 0; i < count; i++) {
        float e[TILE_ROWS / 2], o[TILE_ROWS / 2];
        _mm512_storeu_ps(e, _mm512_mul_ps(total_even[i], x));
        _mm512_storeu_ps(o, _mm512_mul_ps(total_odd[i], x));
        int64_t first = TILE_ROWS * (t + i);
        for (int j = 0; j < TILE_ROWS && first + j < n; j++) {
            y[first + j] = j % 2 == 0 ? e[j / 2] : o[j / 2];
        }
    }
}
#endif

#endif
