/*
 * BINARY weights (codes +-1, one scale per row) times one token's INT8 activations by lookup tables (the T-MAC
 * method), over rows repacked into tiles; compiled once per instruction set like kernels.c (build.sh).
 *
 * Memory layout (bitplane_kernels.h):
 *   tiles   R = 32 rows per tile, C = ceil(k / 16) chunks per row, T = ceil(n / 32) tiles, in groups of G = 8
 *           tiles whose chunks interleave: tile t = 8 g + i (g its group, of m = min(8, T - 8 g) tiles), chunk c
 *           at byte (8 g C + c m + i) 64 holds 32 little-endian u16 words, word j for row 32 t + j: bit i set where
 *           value 16 c + i of that row is -1 (its bit in the file's plane). Rows past n and values past k are 0.
 *           Why groups: the kernel reads eight tiles side by side, which, one tile after another in memory, were
 *           eight streams a thread; interleaved they are one (see below for the figures).
 *   tables  per token, int16, 128 per chunk: chunk c's at element 128 c are three tables over its 16 codes
 *           q[16 c + i] (codes past k count 0), each holding at index m the sum of its codes over the bits set in m:
 *           [0, 32) over codes 0-4 (the word's bits 0-4), [32, 64) over codes 5-9 (bits 5-9), [64, 128) over
 *           codes 10-15 (bits 10-15).
 *   scales  f32 per row, in row order (the file's f16 scales, widened by the caller once).
 * Per tile: the sum S_j of row j's codes where its bit is set is three lookups a chunk that look up 32 rows at
 * once: vpermw indexes 32 int16s by the low 5 bits of each lane and ignores the rest, so the word itself indexes
 * the first table and the word shifted down by 5 the second, with no mask; vpermt2w indexes the 64 of the third
 * (two registers) by the word shifted down by 10. acc_j = X - 2 S_j (code = 1 - 2 bit, X the token's sum of codes),
 * and y_j = (0f + (s_j acc_j + 0f)) xscale, the Java reference's float steps, so the result is the reference's bit
 * for bit. int16 sums stay exact over runs of 16 chunks (at most 16 x 127 a chunk in either sum: 32512), then widen.
 * Eight tiles go side by side, sharing each table load. A C probe of this loop alone (4096 x 14336, 35 copies, two
 * threads): 506-563 G weights/s, where four lookups of nibbles (each masked) a chunk ran 223-231, and the same
 * three lookups four tiles at a time 388-440 (prefetching 1-2 KB ahead: 4 KB ran 437). Through the backend (40
 * copies, two threads, alternated four times): tiles one after another with a 2 KB prefetch 367-380; interleaved
 * groups with 2 KB 309-340, 4 KB 372-424, 8 KB 357-394.
 */
#include <string.h>

#include "bitplane_kernels.h"
#include "kernels_impl.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

#define TILE_ROWS 32
#define CHUNK_VALUES 16
#define CHUNK_BYTES (2 * TILE_ROWS)
/* Tiles whose chunks interleave (see the layout above); the last group of a tensor may hold fewer. */
#define GROUP_TILES 8
/* int16 elements of a chunk's three tables. */
#define CHUNK_TABLE 128
/* Chunks per int16 run: a chunk adds at most 16 x 127 to a sum, which stays within 32767 for 16 chunks. */
#define RUN_CHUNKS 16
/* Tiles in flight (see above), a group's; a range's last tiles go four, two and one at a time. */
#define TILES_AT_ONCE 8
/* How far ahead of each tile's chunk the weights are prefetched (a whole group's chunk is 512 bytes), Intel and
   other (prefetch_distance). Through the backend, 4096 x 14336, two threads, G weights/s: on the AMD EPYC 2 KB
   309-340, 4 KB 372-424, 8 KB 357-394; on the Intel Xeon 1 KB 190-200, 2 KB 193-211, 4 KB 167-171. */
#define PREFETCH_INTEL 2048
#define PREFETCH_OTHER 4096

static inline int64_t chunks_of(int64_t k) {
    return (k + CHUNK_VALUES - 1) / CHUNK_VALUES;
}

/* Where tile t's chunk 0 starts, and the bytes from one of its chunks to the next, in a tensor of n rows. */
static inline int64_t tile_at(int64_t t, int64_t n, int64_t chunks, int64_t *stride) {
    int64_t tiles = (n + TILE_ROWS - 1) / TILE_ROWS;
    int64_t first = t / GROUP_TILES * GROUP_TILES; /* the group's first tile */
    int64_t in_group = tiles - first < GROUP_TILES ? tiles - first : GROUP_TILES;
    *stride = in_group * CHUNK_BYTES;
    return (first * chunks + t - first) * CHUNK_BYTES;
}

int64_t BP_FN(_sign_tiles_bytes)(int64_t n, int64_t k) {
    return (n + TILE_ROWS - 1) / TILE_ROWS * chunks_of(k) * CHUNK_BYTES;
}

void BP_FN(_sign_tiles_repack)(const void *w, int64_t k, int64_t n, int64_t tile_start, int64_t tile_end,
                               void *tiles) {
    const uint8_t *planes = (const uint8_t *) w;
    uint8_t *out = (uint8_t *) tiles;
    int64_t chunks = chunks_of(k);
    int64_t row_bytes = (k + 63) / 64 * 8;
    for (int64_t t = tile_start; t < tile_end; t++) {
        int64_t stride;
        uint8_t *tile = out + tile_at(t, n, chunks, &stride);
        for (int64_t c = 0; c < chunks; c++) {
            memset(tile + c * stride, 0, CHUNK_BYTES);
        }
        for (int64_t j = 0; j < TILE_ROWS && TILE_ROWS * t + j < n; j++) {
            const uint8_t *row = planes + (TILE_ROWS * t + j) * row_bytes;
            for (int64_t c = 0; c < chunks; c++) {
                uint32_t word = row[2 * c] | (uint32_t) row[2 * c + 1] << 8;
                int64_t valid = k - CHUNK_VALUES * c; /* values of the chunk below k */
                if (valid < CHUNK_VALUES) {
                    word &= (1u << valid) - 1;
                }
                uint8_t *at = tile + c * stride + 2 * j;
                at[0] = (uint8_t) word;
                at[1] = (uint8_t) (word >> 8);
            }
        }
    }
}

int64_t BP_FN(_sign_tables_bytes)(int64_t k) {
    return chunks_of(k) * CHUNK_TABLE * 2;
}

#if defined(__AVX512BW__)
/* Table over count codes (count <= 5) in one register: lane m sums v[i] over the bits i set in m (lanes 0-31). */
static inline __m512i table_of(const int16_t *v, int count) {
    static const __mmask32 has_bit[5] = {0xAAAAAAAAu, 0xCCCCCCCCu, 0xF0F0F0F0u, 0xFF00FF00u, 0xFFFF0000u};
    __m512i t = _mm512_setzero_si512();
    for (int i = 0; i < count; i++) {
        t = _mm512_mask_add_epi16(t, has_bit[i], t, _mm512_set1_epi16(v[i]));
    }
    return t;
}
#endif

int32_t BP_FN(_sign_tables)(const int8_t *q, int64_t k, int16_t *tables) {
    int64_t chunks = chunks_of(k);
    int32_t sum = 0;
    for (int64_t c = 0; c < chunks; c++) {
        int16_t v[CHUNK_VALUES];
        for (int i = 0; i < CHUNK_VALUES; i++) {
            v[i] = CHUNK_VALUES * c + i < k ? q[CHUNK_VALUES * c + i] : 0;
            sum += v[i];
        }
        int16_t *t = tables + CHUNK_TABLE * c;
#if defined(__AVX512BW__)
        __m512i low = table_of(v + 10, 5); /* codes 10-14; code 15 adds to the upper 32 */
        _mm512_storeu_si512(t, table_of(v, 5));
        _mm512_storeu_si512(t + 32, table_of(v + 5, 5));
        _mm512_storeu_si512(t + 64, low);
        _mm512_storeu_si512(t + 96, _mm512_add_epi16(low, _mm512_set1_epi16(v[15])));
#else
        static const int first[3] = {0, 5, 10}, count[3] = {5, 5, 6}, at[3] = {0, 32, 64};
        for (int table = 0; table < 3; table++) {
            for (int m = 0; m < 1 << count[table]; m++) {
                int16_t s = 0;
                for (int i = 0; i < count[table]; i++) {
                    s += m >> i & 1 ? v[first[table] + i] : 0;
                }
                t[at[table] + m] = s;
            }
        }
#endif
    }
    return sum;
}

/* y for the rows of tile t from S (row j's sum of codes over its set bits), rows below n only. */
static inline void store_tile(const int32_t sums[TILE_ROWS], int64_t t, int64_t n, int32_t code_sum,
                              const float *scales, float xscale, float *y) {
    for (int64_t j = 0; j < TILE_ROWS && TILE_ROWS * t + j < n; j++) {
        int64_t r = TILE_ROWS * t + j;
        int32_t acc = code_sum - 2 * sums[j];
        y[r] = (0.0f + (scales[r] * (float) acc + 0.0f)) * xscale;
    }
}

#if defined(__AVX512BW__)

/*
 * S for `count` tiles from t (count a constant where inlined): lookups in int16 runs, widened per run into int32
 * lanes, even rows (the low halves of the 32-bit lanes) and odd rows apart.
 */
ALWAYS_INLINE void tiles_sums(const uint8_t *tiles, int64_t n, int64_t chunks, const int16_t *tables, int64_t t,
                              int count, int32_t sums[TILES_AT_ONCE][TILE_ROWS]) {
    const uint8_t *tile[TILES_AT_ONCE];
    int64_t stride[TILES_AT_ONCE];
    __m512i even[TILES_AT_ONCE], odd[TILES_AT_ONCE];
    const int64_t ahead = prefetch_distance(PREFETCH_INTEL, PREFETCH_OTHER);
    for (int i = 0; i < count; i++) {
        tile[i] = tiles + tile_at(t + i, n, chunks, &stride[i]);
        even[i] = odd[i] = _mm512_setzero_si512();
    }
    for (int64_t c0 = 0; c0 < chunks; c0 += RUN_CHUNKS) {
        int64_t c1 = c0 + RUN_CHUNKS < chunks ? c0 + RUN_CHUNKS : chunks;
        /* two int16 sums per tile, so that no chain of adds waits on every lookup */
        __m512i s0[TILES_AT_ONCE], s1[TILES_AT_ONCE];
        for (int i = 0; i < count; i++) {
            s0[i] = s1[i] = _mm512_setzero_si512();
        }
        for (int64_t c = c0; c < c1; c++) {
            const int16_t *tb = tables + CHUNK_TABLE * c;
            __m512i t0 = _mm512_loadu_si512(tb), t1 = _mm512_loadu_si512(tb + 32);
            __m512i t2 = _mm512_loadu_si512(tb + 64), t3 = _mm512_loadu_si512(tb + 96);
#pragma GCC unroll 8
            for (int i = 0; i < count; i++) {
                _mm_prefetch((const char *) (tile[i] + c * stride[i] + ahead), _MM_HINT_T0);
                __m512i w = _mm512_loadu_si512(tile[i] + c * stride[i]);
                s0[i] = _mm512_add_epi16(s0[i], _mm512_permutexvar_epi16(w, t0));
                s1[i] = _mm512_add_epi16(s1[i], _mm512_permutexvar_epi16(_mm512_srli_epi16(w, 5), t1));
                s0[i] = _mm512_add_epi16(s0[i], _mm512_permutex2var_epi16(t2, _mm512_srli_epi16(w, 10), t3));
            }
        }
        for (int i = 0; i < count; i++) {
            even[i] = _mm512_add_epi32(even[i], _mm512_srai_epi32(_mm512_slli_epi32(s0[i], 16), 16));
            even[i] = _mm512_add_epi32(even[i], _mm512_srai_epi32(_mm512_slli_epi32(s1[i], 16), 16));
            odd[i] = _mm512_add_epi32(odd[i], _mm512_srai_epi32(s0[i], 16));
            odd[i] = _mm512_add_epi32(odd[i], _mm512_srai_epi32(s1[i], 16));
        }
    }
    for (int i = 0; i < count; i++) {
        int32_t e[16], o[16];
        _mm512_storeu_si512(e, even[i]);
        _mm512_storeu_si512(o, odd[i]);
        for (int j = 0; j < 16; j++) {
            sums[i][2 * j] = e[j];
            sums[i][2 * j + 1] = o[j];
        }
    }
}
#endif

void BP_FN(_matmul_sign_tiles)(const void *tiles, int64_t k, int64_t n, const int16_t *tables, int32_t code_sum,
                               const float *scales, float xscale, float *y, int64_t tile_start, int64_t tile_end) {
    const uint8_t *base = (const uint8_t *) tiles;
    int64_t chunks = chunks_of(k);
    int32_t sums[TILES_AT_ONCE][TILE_ROWS];
    int64_t t = tile_start;
#if defined(__AVX512BW__)
    for (int count = TILES_AT_ONCE; count >= 1; count /= 2) {
        for (; t + count <= tile_end; t += count) {
            switch (count) { /* a constant count for each inlined copy */
            case TILES_AT_ONCE: tiles_sums(base, n, chunks, tables, t, TILES_AT_ONCE, sums); break;
            case 4: tiles_sums(base, n, chunks, tables, t, 4, sums); break;
            case 2: tiles_sums(base, n, chunks, tables, t, 2, sums); break;
            default: tiles_sums(base, n, chunks, tables, t, 1, sums); break;
            }
            for (int i = 0; i < count; i++) {
                store_tile(sums[i], t + i, n, code_sum, scales, xscale, y);
            }
        }
    }
#endif
    /* Elsewhere the same lookups lane by lane (the portable and AVX2 builds: the Java side tiles only where the
       AVX-512 build runs, and tests reach this code by selecting the implementation). */
    for (; t < tile_end; t++) {
        int64_t stride;
        const uint8_t *tile = base + tile_at(t, n, chunks, &stride);
        for (int j = 0; j < TILE_ROWS; j++) {
            int32_t s = 0;
            for (int64_t c = 0; c < chunks; c++) {
                const uint8_t *at = tile + c * stride + 2 * j;
                uint32_t word = at[0] | (uint32_t) at[1] << 8;
                const int16_t *tb = tables + CHUNK_TABLE * c;
                s += tb[word & 31] + tb[32 + (word >> 5 & 31)] + tb[64 + (word >> 10)];
            }
            sums[0][j] = s;
        }
        store_tile(sums[0], t, n, code_sum, scales, xscale, y);
    }
}
