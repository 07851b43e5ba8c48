/*
 * What the two lookup-tile kernels share (sign_tiles.c: BINARY; base3_tiles.c: TERNARY in base-3 words): tiles of
 * 32 rows, each chunk of a tile 64 bytes (a 16-bit word a row), the chunks of `group` consecutive tiles interleaved
 * (tile t = group g + i, of a group of m tiles, has chunk c at byte (group g C + c m + i) 64, C chunks a row); the
 * rows' results from their sums; and, on AVX-512, the int16 sums a run of chunks leaves in the 32 lanes of a vector,
 * widened to int32 even and odd rows.
 */
#ifndef BITPLANE_LOOKUP_TILES_H
#define BITPLANE_LOOKUP_TILES_H

#include "kernels_impl.h"

#define TILE_ROWS 32
#define CHUNK_BYTES (2 * TILE_ROWS)

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

/* Where tile t's chunk 0 starts, and the bytes from one of its chunks to the next, in a tensor of n rows. */
static inline int64_t tile_at(int64_t t, int64_t n, int64_t chunks, int64_t group, int64_t *stride) {
    int64_t tiles = (n + TILE_ROWS - 1) / TILE_ROWS;
    int64_t first = t / group * group; /* the group's first tile */
    int64_t in_group = tiles - first < group ? tiles - first : group;
    *stride = in_group * CHUNK_BYTES;
    return (first * chunks + t - first) * CHUNK_BYTES;
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
#endif

#endif
