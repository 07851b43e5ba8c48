/*
 * TERNARY weights (one scale per row, or per group of values: TQ2_0's 256, say) times one token's INT8 activations by
 * lookup tables over base-3 words, on rows repacked into tiles (the Java backend's Base3TileMatmul, in C); compiled
 * once per instruction set (build.sh). Three values make one index of 27 and three indexes one 16-bit word, so a row
 * streams 16 bits per 9 values (1.78 bits a weight, where the file's packed fields or planes stream 2) and takes one
 * lookup per 3 values.
 *
 * Memory layout (bitplane_kernels.h; read only by this file's kernels). A row's values go in groups of V = min(group,
 * k) (the last one cut by k), G = ceil(k / V) of them, each group in C = ceil(V / 9) chunks of 9 values (its last
 * chunk cut by the group) and then one slot of scales: S = G (C + 1) slots of 64 bytes a row.
 *   tiles   R = 32 rows per tile, T = ceil(n / 32) tiles, in groups of 8 tiles whose slots interleave, as the BINARY
 *           sign tiles' chunks do (sign_tiles.c): tile t = 8 b + i (b its group of tiles, of m = min(8, T - 8 b)
 *           tiles), slot s at byte (8 b S + s m + i) 64 holds 32 little-endian u16 words. Slot g (C + 1) + c, c < C
 *           (chunk c of group g): word j for row 32 t + j, index h (0-2) at bits 5h, bit 15 zero; index h = d0 + 3
 *           d1 + 9 d2 over the values g V + 9 c + 3 h + i, digit d_i 0 for the code 0, 1 for +1 and 2 for -1. Slot
 *           g (C + 1) + C: the f16 scales of group g of the tile's rows, the even rows' first (row 32 t + 2 p at
 *           word p), then the odd rows' (row 32 t + 2 p + 1 at word 16 + p). Rows past n, values past the group or
 *           past k are 0 (index 0, scale 0).
 *   tables  per token, int16, 96 per chunk: chunk c of group g's three tables of 32 entries at 96 (g C + c) + 32 h,
 *           entry m < 27 the sum of code(d_i(m)) x q[g V + 9 c + 3 h + i] over i (codes past the group or past k
 *           count 0), entries 27-31 zero.
 * Per tile (the AVX-512 build): acc_g, row j's sum of code x q over group g, is three vpermw a chunk that look up 32
 * rows at once (vpermw reads the low 5 bits of each lane, so the word and the word shifted down by 5 and 10 index the
 * three tables with no mask; lookup_tiles.h), in int16 sums over runs of RUN_CHUNKS chunks, widened per run into
 * int32 sums of the even and of the odd rows; then the group's scale slot turns them into terms s_g acc_g, added in
 * group order from 0, and y_j = total xscale: the Java reference's float steps, so the result is the reference's bit
 * for bit. The scales ride in the tiles' one stream (a slot every C chunks: 1/30 more bytes for groups of 256, f16 as
 * in the file), where a separate array of them would be a second stream a thread. Eight tiles go side by side,
 * sharing each table load, their interleaved slots one stream a thread that the prefetches lead. A C probe of the
 * loop alone (one scale a row, 4096 x 14336, two threads, from DRAM, the sign tiles' 2 KB prefetch) read 132-137 G
 * weights/s (29-30 GB/s of tiles) where the BINARY sign tiles read 237-238 (30 GB/s).
 * Through the backend (`bitplane bench --backend native --encodings ternary --activations int8 --layout packed`,
 * alternated with the packed rows of quantized_products.c that TERNARY took before, G weights/s): 4096x14336
 * 122-138 against 103-115, 14336x4096 126-129 against 110-116, 5632x2048 121-123 against 100-102, 2048x5632
 * 123-127 against 103-105; the 418M ternary model decoded at 205-210 against 199-200 tokens/s. Groups (the slots
 * of scales, 2026-12-07; same command, two rounds alternated with the packed rows that groups took before, G
 * weights/s): 4096x14336 in groups of 256 69-72 -> 116-118, of 1024 86-87 -> 121-125, of 128 75-78 -> 106-112, of
 * 64 65-68 -> 98-100, of 32 52-57 -> 85-88, of 16 0.6 (the packed rows' scalar path) -> 71-74; one scale a row
 * level (112-124 -> 123-126, and runs of 42 chunks widened apart where 28 were widened together). The 418M model
 * in ternary@256 (`bitplane synth --weights ternary@256 --activations int8 --layout packed`, `bench --model`)
 * decoded at 180-191 against 121-124 tokens/s. The AVX2 and portable builds run the same lookups lane by lane (the
 * backend takes these tiles only where the AVX-512 build runs).
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
/* Chunks per int16 run: a chunk adds at most 9 x 128 to a row's sum, so 28 chunks stay within 32767 (32256) for any
   int8 codes; a group of 256 values (29 chunks) is a run of 28 and one of 1. (With two sums a row widened apart,
   runs of 42 made such a group one run, and read alike from DRAM: 143-152 against 143-149 G weights/s.) */
#define RUN_CHUNKS 28
/* Tiles whose chunks interleave: as many as the kernel reads side by side (lookup_tiles.h). */
#define GROUP_TILES LOOKUP_TILES
/* How far ahead of each tile's chunk the weights are prefetched into L1 (a group's chunk is 512 bytes), and L2_AHEAD
   times as far into L2. On the Intel Xeon (`bitplane bench --backend native --encodings ternary --activations int8
   --layout packed --shape 4096x14336`, builds alternated, G weights/s): 1 KB 121-122, 2 KB (the sign tiles' Intel
   distance) 114-118, 4 KB 122-138, 6 KB 120-122, 8 KB 117-119. Not measured elsewhere. */
#define PREFETCH_BYTES 4096

/* The shape of a row in tiles: groups of `values` values (the last one maybe cut by k), `chunks` chunks each and
   then the slot of the group's scales; `slots` a row in all. */
struct row_shape {
    int64_t values;
    int64_t groups;
    int64_t chunks;
    int64_t slots;
};

static inline struct row_shape row_shape_of(int64_t k, int64_t group) {
    struct row_shape shape;
    shape.values = group < k ? group : k;
    shape.groups = (k + shape.values - 1) / shape.values;
    shape.chunks = (shape.values + CHUNK_VALUES - 1) / CHUNK_VALUES;
    shape.slots = shape.groups * (shape.chunks + 1);
    return shape;
}

/* Value i of chunk c of group g (its first value 9 c), or -1 past the group or past k. */
static inline int64_t value_at(struct row_shape shape, int64_t k, int64_t g, int64_t c, int i) {
    int64_t in_group = CHUNK_VALUES * c + i;
    int64_t v = shape.values * g + in_group;
    return in_group < shape.values && v < k ? v : -1;
}

int64_t BP_FN(_base3_tiles_bytes)(int64_t n, int64_t k, int64_t group) {
    return tiles_bytes(n, row_shape_of(k, group).slots);
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

int64_t BP_FN(_base3_tiles_repack)(const void *w, int32_t layout, int64_t k, int64_t group, int64_t scales_offset,
                                   int64_t n, int64_t tile_start, int64_t tile_end, void *tiles) {
    int64_t invalid = 0;
    const uint8_t *file = (const uint8_t *) w;
    uint8_t *out = (uint8_t *) tiles;
    struct row_shape shape = row_shape_of(k, group);
    int64_t plane_bytes = (k + 63) / 64 * 8; /* layout 0 */
    int64_t row_bytes = layout == 1 ? (k + 127) / 128 * 32 : 2 * plane_bytes;
    for (int64_t t = tile_start; t < tile_end; t++) {
        int64_t stride;
        uint8_t *tile = cleared_tile(out, t, n, shape.slots, GROUP_TILES, &stride);
        for (int64_t j = 0; j < TILE_ROWS && TILE_ROWS * t + j < n; j++) {
            int64_t r = TILE_ROWS * t + j;
            const uint8_t *row = file + r * row_bytes;
            for (int64_t g = 0; g < shape.groups; g++) {
                uint8_t *slot = tile + g * (shape.chunks + 1) * stride;
                for (int64_t c = 0; c < shape.chunks; c++, slot += stride) {
                    uint32_t word = 0;
                    for (int h = 0; h < 3; h++) {
                        int index = 0;
                        for (int i = 2; i >= 0; i--) {
                            int64_t v = value_at(shape, k, g, c, 3 * h + i);
                            int digit = v >= 0 ? digit_at(row, layout, plane_bytes, v) : 0;
                            invalid += digit < 0;
                            index = 3 * index + (digit < 0 ? 0 : digit);
                        }
                        word |= (uint32_t) index << (5 * h);
                    }
                    slot[2 * j] = (uint8_t) word;
                    slot[2 * j + 1] = (uint8_t) (word >> 8);
                }
                memcpy(slot + 2 * scale_position((int) j), file + scales_offset + 2 * (r * shape.groups + g), 2);
            }
        }
    }
    return invalid;
}

int64_t BP_FN(_base3_tables_bytes)(int64_t k, int64_t group) {
    struct row_shape shape = row_shape_of(k, group);
    return shape.groups * shape.chunks * CHUNK_TABLE * 2;
}

void BP_FN(_base3_tables)(const int8_t *q, int64_t k, int64_t group, int16_t *tables) {
    struct row_shape shape = row_shape_of(k, group);
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
    for (int64_t g = 0; g < shape.groups; g++) {
        for (int64_t c = 0; c < shape.chunks; c++) {
            int16_t v[CHUNK_VALUES];
            for (int i = 0; i < CHUNK_VALUES; i++) {
                int64_t at = value_at(shape, k, g, c, i);
                v[i] = at >= 0 ? q[at] : 0;
            }
            for (int h = 0; h < 3; h++) {
                int16_t *t = tables + CHUNK_TABLE * (g * shape.chunks + c) + 32 * h;
#if defined(__AVX512BW__)
                __m512i table = _mm512_setzero_si512();
                for (int i = 0; i < 3; i++) {
                    __m512i code = _mm512_set1_epi16(v[3 * h + i]);
                    table = _mm512_mask_sub_epi16(_mm512_mask_add_epi16(table, plus[i], table, code), minus[i],
                                                  table, code);
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
}

#if !defined(__AVX512BW__)
/*
 * y for the rows of tiles [t, tile_end) lane by lane (the AVX2 and portable builds, which have no vpermw; tests
 * reach them by selecting them): each row's groups summed by lookup_word, their terms s_g acc_g added in group order
 * from 0 and the total times xscale.
 */
static void base3_product_lanewise(const uint8_t *tiles, int64_t n, struct row_shape shape, const int16_t *tables,
                                   float xscale, float *y, int64_t t, int64_t tile_end) {
    for (; t < tile_end; t++) {
        int64_t stride;
        const uint8_t *tile = tiles + tile_at(t, n, shape.slots, GROUP_TILES, &stride);
        for (int j = 0; j < TILE_ROWS && TILE_ROWS * t + j < n; j++) {
            float sum = 0.0f;
            for (int64_t g = 0; g < shape.groups; g++) {
                const uint8_t *slot = tile + g * (shape.chunks + 1) * stride;
                const int16_t *tb = tables + g * shape.chunks * CHUNK_TABLE;
                int32_t acc = 0;
                for (int64_t c = 0; c < shape.chunks; c++, slot += stride, tb += CHUNK_TABLE) {
                    acc += lookup_word(tb, slot, j);
                }
                sum += f16_to_f32(load_u16(slot + 2 * scale_position(j))) * (float) acc;
            }
            y[TILE_ROWS * t + j] = sum * xscale;
        }
    }
}
#endif

void BP_FN(_matmul_base3_tiles)(const void *tiles, int64_t k, int64_t group, int64_t n, const int16_t *tables,
                                float xscale, float *y, int64_t tile_start, int64_t tile_end) {
    const uint8_t *base = (const uint8_t *) tiles;
    struct row_shape shape = row_shape_of(k, group);
#if defined(__AVX512BW__)
    int64_t t = tile_start;
#define BASE3_TILES(count)                                                                                         \
    lookup_group_tiles(base, n, shape.groups, shape.chunks, tables, CHUNK_TABLE, RUN_CHUNKS, 0, PREFETCH_BYTES, NULL, \
                       1, xscale, y, t, count)
    EACH_TILE_COUNT(t, tile_end, BASE3_TILES)
#undef BASE3_TILES
#else
    base3_product_lanewise(base, n, shape, tables, xscale, y, tile_start, tile_end);
#endif
}
