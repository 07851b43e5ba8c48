/*
 * TERNARY weights (one scale per row) times one token's INT8 activations by lookup tables over base-3 words, on rows
 * repacked into tiles (the Java backend's Base3TileMatmul, in C); compiled once per instruction set (build.sh).
 * Three values make one index of 27 and three indexes one 16-bit word, so a row streams 16 bits per 9 values (1.78
 * bits a weight, where the file's packed fields or planes stream 2) and takes one lookup per 3 values.
 *
 * Memory layout (bitplane_kernels.h; read only by this file's kernels):
 *   tiles   R = 32 rows per tile, C = ceil(k / 9) chunks per row, T = ceil(n / 32) tiles, in groups of G = 8 tiles
 *           whose chunks interleave, as the BINARY sign tiles' do (sign_tiles.c): tile t = G g + i (g its group, of
 *           m = min(G, T - G g) tiles), chunk c at byte (G g C + c m + i) 64 holds 32 little-endian u16 words, word
 *           j for row 32 t + j: index h (0-2) at bits 5h, bit 15 zero; index h = d0 + 3 d1 + 9 d2 over the values
 *           9 c + 3 h + i, digit d_i 0 for the code 0, 1 for +1 and 2 for -1. Rows past n and values past k are
 *           0 (index 0).
 *   tables  per token, int16, 96 per chunk: chunk c's three tables of 32 entries at 96 c + 32 h, entry m < 27 the
 *           sum of code(d_i(m)) x q[9 c + 3 h + i] over i (codes past k count 0), entries 27-31 zero.
 *   scales  f32 per row, in row order (the file's f16 scales, widened by the caller once).
 * Per tile (the AVX-512 build): S_j, row j's sum of code x q, is three vpermw a chunk that look up 32 rows at once
 * (vpermw reads the low 5 bits of each lane, so the word and the word shifted down by 5 and 10 index the three
 * tables with no mask), in int16 sums over runs of 28 chunks (at most 28 x 9 x 127 = 32004), widened per run.
 * y_j = (0f + (s_j S_j + 0f)) xscale, the Java reference's float steps, so the result is the reference's bit for
 * bit. Eight tiles go side by side, sharing each table load, their interleaved chunks one stream a thread that the
 * prefetches lead. A C probe of the loop alone (4096 x 14336, two threads, from DRAM, the sign tiles' 2 KB
 * prefetch) read 132-137 G weights/s (29-30 GB/s of tiles) where the BINARY sign tiles read 237-238 (30 GB/s).
 * Through the backend (`bitplane bench --backend native --encodings ternary --activations int8 --layout packed`,
 * alternated with the packed rows of quantized_products.c that TERNARY took before, G weights/s): 4096x14336
 * 122-138 against 103-115, 14336x4096 126-129 against 110-116, 5632x2048 121-123 against 100-102, 2048x5632
 * 123-127 against 103-105; the 418M ternary model decoded at 205-210 against 199-200 tokens/s. The AVX2 and
 * portable builds run the same lookups lane by lane (the backend takes these tiles only where the AVX-512 build
 * runs).
 */
#include <string.h>

#include "bitplane_kernels.h"
#include "kernels_impl.h"
#include "lookup_tiles.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

#define CHUNK_VALUES 9
/* int16 elements of a chunk's three tables. */
#define CHUNK_TABLE 96
/* Chunks per int16 run: a chunk adds at most 9 x 127 to a row's two sums together (see above). */
#define RUN_CHUNKS 28
/* Tiles whose chunks interleave: as many as the kernel reads side by side (lookup_tiles.h). */
#define GROUP_TILES LOOKUP_TILES
/* How far ahead of each tile's chunk the weights are prefetched into L1 (a group's chunk is 512 bytes), and L2_AHEAD
   times as far into L2. On the Intel Xeon (`bitplane bench --backend native --encodings ternary --activations int8
   --layout packed --shape 4096x14336`, builds alternated, G weights/s): 1 KB 121-122, 2 KB (the sign tiles' Intel
   distance) 114-118, 4 KB 122-138, 6 KB 120-122, 8 KB 117-119. Not measured elsewhere. */
#define PREFETCH_BYTES 4096

static inline int64_t chunks_of(int64_t k) {
    return (k + CHUNK_VALUES - 1) / CHUNK_VALUES;
}

int64_t BP_FN(_base3_tiles_bytes)(int64_t n, int64_t k) {
    return tiles_bytes(n, chunks_of(k));
}

/* The base-3 digit of value i of a row in the file: layout 1, packed 2-bit fields (t + 1) in 32-byte blocks of 128
   values; layout 0, a mask plane then a sign plane of plane_bytes each. -1 for a packed field of 3, which no code
   has. */
static inline int digit_at(const uint8_t *row, int32_t layout, int64_t plane_bytes, int64_t i) {
    int code;
    if (layout == 1) {
        int field = row[i / 128 * 32 + i % 32] >> (2 * (i % 128 / 32)) & 3;
        if (field == 3) {
            return -1;
        }
        code = field - 1;
    } else {
        int mask = row[i / 8] >> (i % 8) & 1;
        int sign = row[plane_bytes + i / 8] >> (i % 8) & 1;
        code = mask ? (sign ? -1 : 1) : 0;
    }
    return code == 0 ? 0 : code == 1 ? 1 : 2;
}

int64_t BP_FN(_base3_tiles_repack)(const void *w, int32_t layout, int64_t k, int64_t n, int64_t tile_start,
                                   int64_t tile_end, void *tiles) {
    int64_t invalid = 0;
    const uint8_t *file = (const uint8_t *) w;
    uint8_t *out = (uint8_t *) tiles;
    int64_t chunks = chunks_of(k);
    int64_t plane_bytes = (k + 63) / 64 * 8; /* layout 0 */
    int64_t row_bytes = layout == 1 ? (k + 127) / 128 * 32 : 2 * plane_bytes;
    for (int64_t t = tile_start; t < tile_end; t++) {
        int64_t stride;
        uint8_t *tile = cleared_tile(out, t, n, chunks, GROUP_TILES, &stride);
        for (int64_t j = 0; j < TILE_ROWS && TILE_ROWS * t + j < n; j++) {
            const uint8_t *row = file + (TILE_ROWS * t + j) * row_bytes;
            for (int64_t c = 0; c < chunks; c++) {
                uint32_t word = 0;
                for (int h = 0; h < 3; h++) {
                    int index = 0;
                    for (int i = 2; i >= 0; i--) {
                        int64_t v = CHUNK_VALUES * c + 3 * h + i;
                        int digit = v < k ? digit_at(row, layout, plane_bytes, v) : 0;
                        invalid += digit < 0;
                        index = 3 * index + (digit < 0 ? 0 : digit);
                    }
                    word |= (uint32_t) index << (5 * h);
                }
                uint8_t *at = tile + c * stride;
                at[2 * j] = (uint8_t) word;
                at[2 * j + 1] = (uint8_t) (word >> 8);
            }
        }
    }
    return invalid;
}

int64_t BP_FN(_base3_tables_bytes)(int64_t k) {
    return chunks_of(k) * CHUNK_TABLE * 2;
}

void BP_FN(_base3_tables)(const int8_t *q, int64_t k, int16_t *tables) {
    int64_t chunks = chunks_of(k);
#if defined(__AVX512BW__)
    /* has_digit[i][d - 1]: entries m < 27 whose digit i is d (1: code +1, 2: code -1) */
    __mmask32 plus[3] = {0}, minus[3] = {0};
    for (int m = 0; m < 27; m++) {
        for (int i = 0, rest = m; i < 3; i++, rest /= 3) {
            if (rest % 3 == 1) {
                plus[i] |= 1u << m;
            } else if (rest % 3 == 2) {
                minus[i] |= 1u << m;
            }
        }
    }
#endif
    for (int64_t c = 0; c < chunks; c++) {
        int16_t v[CHUNK_VALUES];
        for (int i = 0; i < CHUNK_VALUES; i++) {
            v[i] = CHUNK_VALUES * c + i < k ? q[CHUNK_VALUES * c + i] : 0;
        }
        for (int h = 0; h < 3; h++) {
            int16_t *t = tables + CHUNK_TABLE * c + 32 * h;
#if defined(__AVX512BW__)
            __m512i table = _mm512_setzero_si512();
            for (int i = 0; i < 3; i++) {
                __m512i code = _mm512_set1_epi16(v[3 * h + i]);
                table = _mm512_mask_sub_epi16(_mm512_mask_add_epi16(table, plus[i], table, code), minus[i], table,
                                              code);
            }
            _mm512_storeu_si512(t, table);
#else
            for (int m = 0; m < 32; m++) {
                int16_t s = 0;
                for (int i = 0, rest = m; i < 3 && m < 27; i++, rest /= 3) {
                    s += rest % 3 == 1 ? v[3 * h + i] : rest % 3 == 2 ? -v[3 * h + i] : 0;
                }
                t[m] = s;
            }
#endif
        }
    }
}

void BP_FN(_matmul_base3_tiles)(const void *tiles, int64_t k, int64_t n, const int16_t *tables,
                                const float *scales, float xscale, float *y, int64_t tile_start, int64_t tile_end) {
    const uint8_t *base = (const uint8_t *) tiles;
#if defined(__AVX512BW__)
    lookup_product(base, n, chunks_of(k), tables, CHUNK_TABLE, RUN_CHUNKS, 0, PREFETCH_BYTES, 0, 1, scales, xscale, y,
                   tile_start, tile_end);
#else
    /* The AVX2 and portable builds (tests reach them by selecting them). */
    lookup_product_lanewise(base, n, chunks_of(k), tables, CHUNK_TABLE, GROUP_TILES, 0, 1, scales, xscale, y,
                            tile_start, tile_end);
#endif
}
