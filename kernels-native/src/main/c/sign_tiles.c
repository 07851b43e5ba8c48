/*
 * BINARY weights (codes +-1, one scale per row) times one token's INT8 activations by lookup tables (the T-MAC
 * method), over rows repacked into tiles; compiled once per instruction set like kernels.c (build.sh).
 *
 * Memory layout (bitplane_kernels.h):
 *   tiles   R = 32 rows per tile, C = ceil(k / 16) chunks per row: tile t, chunk c at byte (t C + c) 64 holds 32
 *           little-endian u16 words, word j for row 32 t + j: bit i set where value 16 c + i of that row is -1
 *           (its bit in the file's plane). Rows past n and values past k are 0.
 *   tables  per token, int16: table g (g < 4 C) at element 16 g holds at index m the sum of the codes q[4 g + i]
 *           over the bits i set in m (codes past k count 0); one more table of zeros after the last, so that a
 *           64-byte load of the last table stays inside.
 *   scales  f32 per row, in row order (the file's f16 scales, widened by the caller once).
 * Per tile: the sum S_j of row j's codes where its bit is set is, nibble by nibble, one lookup of its table: one
 * vpermw looks up 32 rows at once. acc_j = X - 2 S_j (code = 1 - 2 bit, X the token's sum of codes), and
 * y_j = (0f + (s_j acc_j + 0f)) xscale, the Java reference's float steps, so the result is the reference's bit for
 * bit. int16 sums stay exact over runs of 16 chunks (64 lookups of at most 4 x 127 each: 32512), then widen.
 * Four tiles go side by side, sharing each table load. In a C probe of this loop alone (4096 x 14336 from DRAM),
 * one tile at a time read the weights at 11 GB/s a thread although the loop ran about 250 G weights/s a thread
 * from L3; two tiles gave 240-270 G weights/s on two threads, four 380-430, eight 323-334. Through the backend
 * (quantizing, tables, the pool) `bitplane bench` measured 253-271 and JMH 313.
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
/* Chunks per int16 run: 4 lookups a chunk of at most 4 x 127 = 508 each stay within 32767 for 16 chunks. */
#define RUN_CHUNKS 16
/* Tiles in flight (see above). */
#define TILES_AT_ONCE 4
/* How far ahead of each tile's stream the weights are prefetched. */
#define PREFETCH_BYTES 4096

static inline int64_t chunks_of(int64_t k) {
    return (k + CHUNK_VALUES - 1) / CHUNK_VALUES;
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
        memset(out + t * chunks * CHUNK_BYTES, 0, (size_t) (chunks * CHUNK_BYTES));
        for (int64_t j = 0; j < TILE_ROWS && TILE_ROWS * t + j < n; j++) {
            const uint8_t *row = planes + (TILE_ROWS * t + j) * row_bytes;
            for (int64_t c = 0; c < chunks; c++) {
                uint32_t word = row[2 * c] | (uint32_t) row[2 * c + 1] << 8;
                int64_t valid = k - CHUNK_VALUES * c; /* values of the chunk below k */
                if (valid < CHUNK_VALUES) {
                    word &= (1u << valid) - 1;
                }
                uint8_t *at = out + (t * chunks + c) * CHUNK_BYTES + 2 * j;
                at[0] = (uint8_t) word;
                at[1] = (uint8_t) (word >> 8);
            }
        }
    }
}

int64_t BP_FN(_sign_tables_bytes)(int64_t k) {
    return (4 * chunks_of(k) + 1) * 16 * 2;
}

int32_t BP_FN(_sign_tables)(const int8_t *q, int64_t k, int16_t *tables) {
    int64_t groups = 4 * chunks_of(k);
    int32_t sum = 0;
    for (int64_t g = 0; g < groups; g++) {
        int16_t v[4];
        for (int i = 0; i < 4; i++) {
            v[i] = 4 * g + i < k ? q[4 * g + i] : 0;
            sum += v[i];
        }
        for (int m = 0; m < 16; m++) {
            tables[16 * g + m] = (int16_t) ((m & 1 ? v[0] : 0) + (m & 2 ? v[1] : 0) + (m & 4 ? v[2] : 0)
                                            + (m & 8 ? v[3] : 0));
        }
    }
    memset(tables + 16 * groups, 0, 16 * sizeof(int16_t));
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
ALWAYS_INLINE void tiles_sums(const uint8_t *tiles, int64_t chunks, const int16_t *tables, int64_t t, int count,
                              int32_t sums[TILES_AT_ONCE][TILE_ROWS]) {
    const __m512i nibble = _mm512_set1_epi16(15);
    const uint8_t *tile[TILES_AT_ONCE];
    __m512i even[TILES_AT_ONCE], odd[TILES_AT_ONCE];
    for (int i = 0; i < count; i++) {
        tile[i] = tiles + (t + i) * chunks * CHUNK_BYTES;
        even[i] = odd[i] = _mm512_setzero_si512();
    }
    for (int64_t c0 = 0; c0 < chunks; c0 += RUN_CHUNKS) {
        int64_t c1 = c0 + RUN_CHUNKS < chunks ? c0 + RUN_CHUNKS : chunks;
        /* two int16 sums per tile (nibbles 0, 2 and 1, 3), so that no chain of adds waits on every lookup */
        __m512i s0[TILES_AT_ONCE], s1[TILES_AT_ONCE];
        for (int i = 0; i < count; i++) {
            s0[i] = s1[i] = _mm512_setzero_si512();
        }
        for (int64_t c = c0; c < c1; c++) {
            const int16_t *tb = tables + 64 * c;
            __m512i t0 = _mm512_loadu_si512(tb), t1 = _mm512_loadu_si512(tb + 16);
            __m512i t2 = _mm512_loadu_si512(tb + 32), t3 = _mm512_loadu_si512(tb + 48);
#pragma GCC unroll 4
            for (int i = 0; i < count; i++) {
                _mm_prefetch((const char *) (tile[i] + c * CHUNK_BYTES + PREFETCH_BYTES), _MM_HINT_T0);
                __m512i w = _mm512_loadu_si512(tile[i] + c * CHUNK_BYTES);
                s0[i] = _mm512_add_epi16(s0[i], _mm512_permutexvar_epi16(_mm512_and_si512(w, nibble), t0));
                s1[i] = _mm512_add_epi16(
                        s1[i], _mm512_permutexvar_epi16(_mm512_and_si512(_mm512_srli_epi16(w, 4), nibble), t1));
                s0[i] = _mm512_add_epi16(
                        s0[i], _mm512_permutexvar_epi16(_mm512_and_si512(_mm512_srli_epi16(w, 8), nibble), t2));
                s1[i] = _mm512_add_epi16(s1[i], _mm512_permutexvar_epi16(_mm512_srli_epi16(w, 12), t3));
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
    for (; t + TILES_AT_ONCE <= tile_end; t += TILES_AT_ONCE) {
        tiles_sums(base, chunks, tables, t, TILES_AT_ONCE, sums);
        for (int i = 0; i < TILES_AT_ONCE; i++) {
            store_tile(sums[i], t + i, n, code_sum, scales, xscale, y);
        }
    }
    for (; t < tile_end; t++) {
        tiles_sums(base, chunks, tables, t, 1, sums);
        store_tile(sums[0], t, n, code_sum, scales, xscale, y);
    }
#endif
    /* Elsewhere the same lookups lane by lane (the portable and AVX2 builds: the Java side tiles only where the
       AVX-512 build runs, and tests reach this code by selecting the implementation). */
    for (; t < tile_end; t++) {
        const uint8_t *tile = base + t * chunks * CHUNK_BYTES;
        for (int j = 0; j < TILE_ROWS; j++) {
            int32_t s = 0;
            for (int64_t c = 0; c < chunks; c++) {
                const uint8_t *at = tile + c * CHUNK_BYTES + 2 * j;
                uint32_t word = at[0] | (uint32_t) at[1] << 8;
                for (int g = 0; g < 4; g++) {
                    s += tables[16 * (4 * c + g) + (word >> (4 * g) & 15)];
                }
            }
            sums[0][j] = s;
        }
        store_tile(sums[0], t, n, code_sum, scales, xscale, y);
    }
}
