/*
 * BINARY weights (codes +-1, one scale per row or per group of a multiple of 16 values) times one token's INT8
 * activations by lookup tables (the T-MAC method), over rows repacked into tiles; compiled once per instruction set
 * like every kernel source (build.sh).
 *
 * Memory layout (bitplane_kernels.h; each build lays tiles and tables out its own way, read only by itself):
 *   tiles   R = 32 rows per tile, C = ceil(k / 16) chunks per row, T = ceil(n / 32) tiles, in groups of G tiles
 *           (8; 4 in the AVX2 build) whose chunks interleave: tile t = G g + i (g its group, of m = min(G, T - G g)
 *           tiles), chunk c at byte (G g C + c m + i) 64 holds 32 little-endian u16 words, word j for row 32 t + j:
 *           bit i set where value 16 c + i of that row is -1 (its bit in the file's plane). Rows past n and values
 *           past k are 0. The AVX2 build stores a chunk's words as two byte planes instead: the 32 low bytes, then
 *           the 32 high bytes (BYTE_PLANES below). Why groups: the kernel reads G tiles side by side, which, one
 *           tile after another in memory, were G streams a thread; interleaved they are one (see below for the
 *           figures; in the AVX2 build, reading four tiles of groups of eight read half of each group's lines a
 *           pass: 103-119 G weights/s, where groups of four read 172-186).
 *   tables  AVX2 build: nibble tables, see chunk_tables there. Else per token, int16, 128 per chunk: chunk c's at
 *           element 128 c are three tables over its 16 codes
 *           q[16 c + i] (codes past k count 0), each holding at index m the sum of its codes over the bits set in m:
 *           [0, 32) over codes 0-4 (the word's bits 0-4), [32, 64) over codes 5-9 (bits 5-9), [64, 128) over
 *           codes 10-15 (bits 10-15).
 *   scales  f32 per row, in row order (the file's f16 scales, widened by the caller once).
 * Groups (group < k, a multiple of 16): a row's values go in G = ceil(k / group) groups, each in C_g = group / 16
 *   chunks as above (chunk c of group g holds values group g + 16 c ..) and then one slot of the group's f16 scales
 *   (the rows' u16 in base3_tiles.c's order: even rows first, scale_position), S = G (C_g + 1) slots of 64 bytes a
 *   row, interleaved as the chunks above (GROUP_TILES); the AVX2 build keeps its byte planes in the chunks, the
 *   scale slots as words. The tables are the chunks' as above, G C_g of them (codes past k count 0), and each
 *   group's sum of codes X_g goes beside them: acc_g = X_g - 2 S_g, and y_j = (sum over g in order of s_g acc_g,
 *   from 0) xscale, as the reference adds its group terms.
 * Per tile (the AVX-512 build; nibble_sums has the AVX2 build's): the sum S_j of row j's codes where its bit is
 * set is three lookups a chunk that look up 32 rows at
 * once: vpermw indexes 32 int16s by the low 5 bits of each lane and ignores the rest, so the word itself indexes
 * the first table and the word shifted down by 5 the second, with no mask; vpermt2w indexes the 64 of the third
 * (two registers) by the word shifted down by 10. acc_j = X - 2 S_j (code = 1 - 2 bit, X the token's sum of codes),
 * and y_j = (0f + (s_j acc_j + 0f)) xscale, the Java reference's float steps, so the result is the reference's bit
 * for bit. int16 sums stay exact over runs of 16 chunks (at most 16 x 127 a chunk in both sums together: 32512),
 * then widen.
 * Groups: the AVX-512 build's lookup_group_tiles (lookup_tiles.h) and the AVX2 build's nibble_group_tiles, runs
 * that end at each group's end and the group's terms from its slot of scales, in the lanes. `bitplane bench
 * --backend native,java --shape 4096x14336 --encodings binary@32,...,binary@512 --activations int8`, G weights/s,
 * against the planes' kernel that groups took before: AVX-512 (twice; the Java backend's sign tiles in brackets)
 * binary@32 166-170 (108-111), @64 103 -> 196-198 (160-164), @128 204-214 (176-201), @256 116 -> 245-251
 * (200-225), @512 239-246 (234-236), one scale a row in the same runs 256-272; AVX2 code (-Dbitplane.native.isa=avx2
 * -XX:UseAVX=2) binary@32 72 -> 119, @64 48-58 -> 170-176, @128 41 -> 211, @256 70-84 -> 225-236, @512 86 -> 237.
 * Eight tiles go side by side, sharing each table load. A C probe of this loop alone (4096 x 14336, 35 copies, two
 * threads): 506-563 G weights/s, where four lookups of nibbles (each masked) a chunk ran 223-231, and the same
 * three lookups four tiles at a time 388-440 (prefetching 1-2 KB ahead: 4 KB ran 437). Through the backend (40
 * copies, two threads, alternated four times): tiles one after another with a 2 KB prefetch 367-380; interleaved
 * groups with 2 KB 309-340, 4 KB 372-424, 8 KB 357-394.
 */
#include <string.h>

#include "bitplane_kernels.h"
#include "kernels_impl.h"
#include "lookup_tiles.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

#define CHUNK_VALUES 16
/* int16 elements of a chunk's three tables. */
#define CHUNK_TABLE 128
/* Chunks per int16 run: a chunk adds between 16 x -128 and 16 x 127 to a row's sum (the codes where its bits are
   set), which stays within int16 (-32768 to 32512) for 16 chunks and any int8 codes, so a run is widened once (when
   each row had two sums, widening them once added together rather than apart read, from L2, a C probe of this loop
   on two threads, 1024 x 14336 alternated five times: 413-433 -> 430-444 G weights/s; from DRAM within the noise). */
#define RUN_CHUNKS 16
/* How far ahead of each tile's chunk the weights are prefetched (a whole group's chunk is 512 bytes; 256 in the
   AVX2 build), Intel and other (prefetch_distance). Through the backend, 4096 x 14336, two threads, G weights/s:
   on the AMD EPYC 2 KB 309-340, 4 KB 372-424, 8 KB 357-394; on the Intel Xeon 1 KB 190-200, 2 KB 193-211, 4 KB
   167-171 (the AVX2 build there: nibble_sums). The AVX2 build on the AMD machine is not measured. */
#define PREFETCH_INTEL 2048
#define PREFETCH_OTHER 4096
/* Both builds also ask for the weights L2_AHEAD times as far ahead into L2 (prefetcht2), as the XNOR loops do.
   On the Intel Xeon, alternated three times: the AVX2 build 186-188 -> 201-203 G weights/s (85-86% -> 92-94%), the
   AVX-512 build 209-214 -> 235-237 (110% of the roofline `bitplane bench` takes from its plain read loop, which
   itself reads without prefetching). */

/*
 * The AVX2 build lays each chunk out as two byte planes: its first 32 bytes hold the low bytes of the 32 rows' words
 * (values 0-7 of the chunk, byte j for row j), its last 32 the high bytes (values 8-15), so that a 32-byte load is
 * one byte a row for 8 values, whose two nibbles index vpshufb's 16-entry tables (nibble_sums). The other builds
 * keep the words above.
 */
#if defined(__AVX2__) && !defined(__AVX512BW__)
#define BYTE_PLANES 1
#define LOW_BYTE_AT(j) (j)
#define HIGH_BYTE_AT(j) (TILE_ROWS + (j))
#else
#define BYTE_PLANES 0
#define LOW_BYTE_AT(j) (2 * (j))
#define HIGH_BYTE_AT(j) (2 * (j) + 1)
#endif
/* Bytes of a chunk's tables in the AVX2 build: eight of 16 bytes (chunk_tables). */
#define NIBBLE_TABLES 128
/* What each high-part entry of those tables adds, keeping its sum of four values (each -8 to 7) within 0-60. */
#define HIGH_BIAS 32
/* Chunks per run of the AVX2 build's 16-bit sums (nibble_sums). */
#define NIBBLE_RUN 256
/* Tiles the AVX2 build reads side by side; a range's last tiles go two and one at a time. */
#define NIBBLE_TILES 4
/* Runs TILES(count) for tiles [t, tile_end) (t, an int64_t variable, moved to tile_end), NIBBLE_TILES at a time, then
   two and one, with `count` a constant in each of TILES' three inlined copies (the AVX2 build's EACH_TILE_COUNT). */
#define EACH_NIBBLE_COUNT(t, tile_end, TILES)                                                                      \
    for (int count_ = NIBBLE_TILES; count_ >= 1; count_ /= 2) {                                                    \
        for (; (t) + count_ <= (tile_end); (t) += count_) {                                                        \
            switch (count_) {                                                                                      \
            case NIBBLE_TILES: TILES(NIBBLE_TILES); break;                                                         \
            case 2: TILES(2); break;                                                                               \
            default: TILES(1); break;                                                                              \
            }                                                                                                      \
        }                                                                                                          \
    }
/* Tiles whose chunks interleave (see the layout above): as many as the kernel reads side by side, so that each pass
   reads whole groups; the last group of a tensor may hold fewer. */
#if BYTE_PLANES
#define GROUP_TILES NIBBLE_TILES
#else
#define GROUP_TILES LOOKUP_TILES /* eight (lookup_tiles.h): tiles in flight (see above) */
#endif

static inline int64_t chunks_of(int64_t k) {
    return (k + CHUNK_VALUES - 1) / CHUNK_VALUES;
}

/* Groups of a row (1 for group >= k) and chunks of a group (the row's for one group; group / 16 else). */
static inline int64_t groups_of(int64_t k, int64_t group) {
    return group >= k ? 1 : (k + group - 1) / group;
}

static inline int64_t group_chunks(int64_t k, int64_t group) {
    return group >= k ? chunks_of(k) : group / CHUNK_VALUES;
}

/* Slots of 64 bytes a row: the chunks, and in groups one slot of scales a group. */
static inline int64_t slots_of(int64_t k, int64_t group) {
    return group >= k ? chunks_of(k) : groups_of(k, group) * (group_chunks(k, group) + 1);
}

int64_t BP_FN(_sign_tiles_bytes)(int64_t n, int64_t k, int64_t group) {
    return tiles_bytes(n, slots_of(k, group));
}

/* Chunk c (values 16 c ..) of a row of the file's sign plane as a word, its bits past k cleared. */
static inline uint32_t chunk_word(const uint8_t *row, int64_t k, int64_t c) {
    uint32_t word = row[2 * c] | (uint32_t) row[2 * c + 1] << 8;
    int64_t valid = k - CHUNK_VALUES * c; /* values of the chunk below k */
    return valid >= CHUNK_VALUES ? word : valid > 0 ? word & ((1u << valid) - 1) : 0;
}

/* Row j's word into a chunk of a tile (the AVX2 build's byte planes, else a little-endian u16). */
static inline void put_word(uint8_t *chunk, int64_t j, uint32_t word) {
    chunk[LOW_BYTE_AT(j)] = (uint8_t) word;
    chunk[HIGH_BYTE_AT(j)] = (uint8_t) (word >> 8);
}

void BP_FN(_sign_tiles_repack)(const void *w, int64_t k, int64_t group, int64_t scales_offset, int64_t n,
                               int64_t tile_start, int64_t tile_end, void *tiles) {
    const uint8_t *planes = (const uint8_t *) w;
    uint8_t *out = (uint8_t *) tiles;
    int64_t groups = groups_of(k, group);
    int64_t chunks = group_chunks(k, group);
    int64_t row_bytes = (k + 63) / 64 * 8;
    for (int64_t t = tile_start; t < tile_end; t++) {
        int64_t stride;
        uint8_t *tile = cleared_tile(out, t, n, slots_of(k, group), GROUP_TILES, &stride);
        for (int64_t j = 0; j < TILE_ROWS && TILE_ROWS * t + j < n; j++) {
            int64_t r = TILE_ROWS * t + j;
            const uint8_t *row = planes + r * row_bytes;
            if (groups == 1) {
                for (int64_t c = 0; c < chunks; c++) {
                    put_word(tile + c * stride, j, chunk_word(row, k, c));
                }
                continue;
            }
            for (int64_t g = 0; g < groups; g++) {
                uint8_t *slot = tile + g * (chunks + 1) * stride;
                for (int64_t c = 0; c < chunks; c++, slot += stride) {
                    put_word(slot, j, chunk_word(row, k, g * chunks + c));
                }
                memcpy(slot + 2 * scale_position((int) j), planes + scales_offset + 2 * (r * groups + g), 2);
            }
        }
    }
}

/* Chunks of tables a token takes: every group's, the last group's past k too (their codes count 0). */
static inline int64_t table_chunks(int64_t k, int64_t group) {
    return groups_of(k, group) * group_chunks(k, group);
}

int64_t BP_FN(_sign_tables_bytes)(int64_t k, int64_t group) {
#if BYTE_PLANES
    return table_chunks(k, group) * NIBBLE_TABLES;
#else
    return table_chunks(k, group) * CHUNK_TABLE * 2;
#endif
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

#if BYTE_PLANES
/*
 * The AVX2 build's tables: per chunk c, at byte 128 c, eight tables of 16 bytes over the chunk's four groups of four
 * codes (group g: codes 4g to 4g + 3, which the low nibble of a byte plane's byte covers for g = 0 and 2, the high
 * nibble for g = 1 and 3). Each code splits as q = 16 h + l, l = q & 15 (0 to 15) and h = q >> 4 (-8 to 7); table
 * g (bytes 16 g) holds at index m the sum of l over the codes whose bit is set in m (0 to 60), table 4 + g that sum
 * of h plus HIGH_BIAS (0 to 60). So byte lookups add without carries, and S = 16 (H - HIGH_BIAS x lookups) + L.
 */
static void chunk_tables(const int8_t *q, int64_t k, int64_t chunks, int16_t *tables) {
    uint8_t *out = (uint8_t *) tables;
    /* index_has_bit[b]: byte m (in each 128-bit lane) 0xff where bit b of m is set */
    const __m256i index = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                           0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m256i index_has_bit[4];
    for (int b = 0; b < 4; b++) {
        __m256i bit = _mm256_set1_epi8((char) (1 << b));
        index_has_bit[b] = _mm256_cmpeq_epi8(_mm256_and_si256(index, bit), bit);
    }
    const __m256i bias = _mm256_setr_m128i(_mm_setzero_si128(), _mm_set1_epi8(HIGH_BIAS));
    for (int64_t c = 0; c < chunks; c++) {
        int8_t v[CHUNK_VALUES] = {0};
        int64_t valid = k - CHUNK_VALUES * c < CHUNK_VALUES ? k - CHUNK_VALUES * c : CHUNK_VALUES;
        if (valid > 0) {
            memcpy(v, q + CHUNK_VALUES * c, (size_t) valid);
        }
        __m128i x = _mm_loadu_si128((const __m128i *) v);
        __m128i low = _mm_and_si128(x, _mm_set1_epi8(15));
        /* q >> 4 per byte: (q + 128) >> 4 is (q ^ 0x80) >> 4 unsigned, less 8 */
        __m128i high = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(_mm_xor_si128(x, _mm_set1_epi8((char) 0x80)), 4),
                                                  _mm_set1_epi8(15)), _mm_set1_epi8(8));
        __m256i parts = _mm256_setr_m128i(low, high); /* the low parts in lane 0, the high in lane 1 */
        for (int g = 0; g < 4; g++) {
            __m256i table = bias;
            for (int b = 0; b < 4; b++) {
                __m256i code = _mm256_shuffle_epi8(parts, _mm256_set1_epi8((char) (4 * g + b)));
                table = _mm256_add_epi8(table, _mm256_and_si256(code, index_has_bit[b]));
            }
            _mm_storeu_si128((__m128i *) (out + NIBBLE_TABLES * c + 16 * g), _mm256_castsi256_si128(table));
            _mm_storeu_si128((__m128i *) (out + NIBBLE_TABLES * c + 64 + 16 * g), _mm256_extracti128_si256(table, 1));
        }
    }
}
#else
static void chunk_tables(const int8_t *q, int64_t k, int64_t chunks, int16_t *tables) {
    for (int64_t c = 0; c < chunks; c++) {
        int16_t v[CHUNK_VALUES];
        for (int i = 0; i < CHUNK_VALUES; i++) {
            v[i] = CHUNK_VALUES * c + i < k ? q[CHUNK_VALUES * c + i] : 0;
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
}
#endif

void BP_FN(_sign_tables)(const int8_t *q, int64_t k, int64_t group, int16_t *tables, int32_t *code_sums) {
    int64_t groups = groups_of(k, group);
    int64_t values = group >= k ? k : group;
    for (int64_t g = 0; g < groups; g++) {
        int32_t sum = 0;
        for (int64_t i = g * values; i < k && i < (g + 1) * values; i++) {
            sum += q[i];
        }
        code_sums[g] = sum;
    }
    chunk_tables(q, k, table_chunks(k, group), tables);
}

#if BYTE_PLANES
static inline __m256i table_at(const uint8_t *p) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *) p));
}

/*
 * The lookups of chunks [c0, c1) of `count` tiles (count a constant where inlined), tile i's chunk c at tile[i] + c
 * stride[i], its tables at tables + NIBBLE_TABLES c: per tile, its byte sums of the low and the high parts added
 * into 16-bit lanes whole and shifted down by 8 (nibble_sums says why), from 0.
 */
ALWAYS_INLINE void nibble_run(const uint8_t *const tile[NIBBLE_TILES], const int64_t stride[NIBBLE_TILES],
                              const uint8_t *tables, int64_t c0, int64_t c1, int64_t ahead, int count,
                              __m256i low_both[NIBBLE_TILES], __m256i low_odd[NIBBLE_TILES],
                              __m256i high_both[NIBBLE_TILES], __m256i high_odd[NIBBLE_TILES]) {
    const __m256i nibble = _mm256_set1_epi8(15);
    for (int i = 0; i < count; i++) {
        low_both[i] = low_odd[i] = high_both[i] = high_odd[i] = _mm256_setzero_si256();
    }
    for (int64_t c = c0; c < c1; c++) {
        const uint8_t *tb = tables + NIBBLE_TABLES * c;
        __m256i l0 = table_at(tb), l1 = table_at(tb + 16), l2 = table_at(tb + 32), l3 = table_at(tb + 48);
        __m256i h0 = table_at(tb + 64), h1 = table_at(tb + 80), h2 = table_at(tb + 96), h3 = table_at(tb + 112);
#pragma GCC unroll 4
        for (int i = 0; i < count; i++) {
            const uint8_t *at = tile[i] + c * stride[i];
            __m256i w0, w1;
            halves_after_prefetch(at, ahead, L2_AHEAD * ahead, &w0, &w1);
            __m256i n0 = _mm256_and_si256(w0, nibble), n1 = _mm256_and_si256(_mm256_srli_epi16(w0, 4), nibble);
            __m256i n2 = _mm256_and_si256(w1, nibble), n3 = _mm256_and_si256(_mm256_srli_epi16(w1, 4), nibble);
            __m256i low = _mm256_add_epi8(
                    _mm256_add_epi8(_mm256_shuffle_epi8(l0, n0), _mm256_shuffle_epi8(l1, n1)),
                    _mm256_add_epi8(_mm256_shuffle_epi8(l2, n2), _mm256_shuffle_epi8(l3, n3)));
            __m256i high = _mm256_add_epi8(
                    _mm256_add_epi8(_mm256_shuffle_epi8(h0, n0), _mm256_shuffle_epi8(h1, n1)),
                    _mm256_add_epi8(_mm256_shuffle_epi8(h2, n2), _mm256_shuffle_epi8(h3, n3)));
            low_both[i] = _mm256_add_epi16(low_both[i], low);
            low_odd[i] = _mm256_add_epi16(low_odd[i], _mm256_srli_epi16(low, 8));
            high_both[i] = _mm256_add_epi16(high_both[i], high);
            high_odd[i] = _mm256_add_epi16(high_odd[i], _mm256_srli_epi16(high, 8));
        }
    }
}

/*
 * S for `count` tiles from t (count a constant where inlined), the AVX2 build: per tile and chunk, the two byte
 * planes' four nibbles look up the low and the high parts (eight vpshufb), each part's four lookups added as bytes
 * (at most 4 x 60). Those byte sums add into 16-bit lanes two ways, whole (lane p: row 2p's sum + 256 x row 2p + 1's)
 * and shifted down by 8 (row 2p + 1's alone), so that row 2p's is their difference: no byte is widened in the loop,
 * and a run of NIBBLE_RUN chunks keeps every row's sum of a part within 16 bits (at most 256 x 240). Each run's
 * sums then go to int32 row by row. Through the backend (4096 x 14336, two threads, 25-27 GB/s on the Intel Xeon):
 * 172-186 G weights/s (85-88% of the roofline), where the planes' kernel (quantized_products.c), which the AVX2
 * build used before it had tiles, read 108-110; with the prefetch 1 KB ahead 173-177, 4 KB 159-161, none 136-140.
 * From the L3 (JMH, one copy): 1,459 -> 3,081 calls/s on one thread, 2,720 -> 5,566 on two.
 */
ALWAYS_INLINE void nibble_sums(const uint8_t *tiles, int64_t n, int64_t chunks, const uint8_t *tables, int64_t t,
                               int count, int32_t sums[][TILE_ROWS]) {
    const uint8_t *tile[NIBBLE_TILES];
    int64_t stride[NIBBLE_TILES];
    const int64_t ahead = prefetch_distance(PREFETCH_INTEL, PREFETCH_OTHER);
    for (int i = 0; i < count; i++) {
        tile[i] = tiles + tile_at(t + i, n, chunks, GROUP_TILES, &stride[i]);
        memset(sums[i], 0, sizeof sums[i]);
    }
    for (int64_t c0 = 0; c0 < chunks; c0 += NIBBLE_RUN) {
        int64_t c1 = c0 + NIBBLE_RUN < chunks ? c0 + NIBBLE_RUN : chunks;
        __m256i low_both[NIBBLE_TILES], low_odd[NIBBLE_TILES], high_both[NIBBLE_TILES], high_odd[NIBBLE_TILES];
        nibble_run(tile, stride, tables, c0, c1, ahead, count, low_both, low_odd, high_both, high_odd);
        int32_t bias = 16 * HIGH_BIAS * 4 * (int32_t) (c1 - c0); /* 16 x the run's four high lookups a chunk */
        for (int i = 0; i < count; i++) {
            uint16_t lb[16], lo[16], hb[16], ho[16];
            _mm256_storeu_si256((__m256i *) lb, low_both[i]);
            _mm256_storeu_si256((__m256i *) lo, low_odd[i]);
            _mm256_storeu_si256((__m256i *) hb, high_both[i]);
            _mm256_storeu_si256((__m256i *) ho, high_odd[i]);
            for (int p = 0; p < 16; p++) {
                uint16_t low_even = (uint16_t) (lb[p] - (lo[p] << 8)), high_even = (uint16_t) (hb[p] - (ho[p] << 8));
                sums[i][2 * p] += 16 * (int32_t) high_even + low_even - bias;
                sums[i][2 * p + 1] += 16 * (int32_t) ho[p] + lo[p] - bias;
            }
        }
    }
}

/* Eight rows' S (int32) from their u16 low and high part sums l and h, half `half` (0 or 1: lanes 0-7 or 8-15) of
   the vectors: 16 h + l - bias. */
static inline __m256i part_sums(__m256i l, __m256i h, int half, __m256i bias) {
    __m128i l8 = half ? _mm256_extracti128_si256(l, 1) : _mm256_castsi256_si128(l);
    __m128i h8 = half ? _mm256_extracti128_si256(h, 1) : _mm256_castsi256_si128(h);
    return _mm256_sub_epi32(_mm256_add_epi32(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h8), 4),
                                             _mm256_cvtepu16_epi32(l8)), bias);
}

/*
 * y for `count` tiles from t in groups (count a constant where inlined), the AVX2 build: per group, nibble_run over
 * its chunks in runs of NIBBLE_RUN, each run's sums widened in the lanes (part_sums) into the int32 S of the even
 * rows and of the odd rows (scale_position's order), then acc = X_g - 2 S and the term s_g acc (the slot's f16
 * scales by vcvtph2ps) added into each row's float total, in group order from 0; y = total xscale.
 */
ALWAYS_INLINE void nibble_group_tiles(const uint8_t *tiles, int64_t n, int64_t groups, int64_t chunks,
                                      const uint8_t *tables, const int32_t *code_sums, float xscale, float *y,
                                      int64_t t, int count) {
    const uint8_t *tile[NIBBLE_TILES];
    int64_t stride[NIBBLE_TILES];
    const int64_t ahead = prefetch_distance(PREFETCH_INTEL, PREFETCH_OTHER);
    float totals[NIBBLE_TILES][TILE_ROWS]; /* scale_position's order: even rows, then odd */
    for (int i = 0; i < count; i++) {
        tile[i] = tiles + tile_at(t + i, n, groups * (chunks + 1), GROUP_TILES, &stride[i]);
        memset(totals[i], 0, sizeof totals[i]);
    }
    for (int64_t g = 0; g < groups; g++) {
        const uint8_t *group[NIBBLE_TILES];
        for (int i = 0; i < count; i++) {
            group[i] = tile[i] + g * (chunks + 1) * stride[i];
        }
        const uint8_t *group_tables = tables + NIBBLE_TABLES * g * chunks;
        __m256i s[NIBBLE_TILES][4]; /* S of rows 0-7, 8-15 (even), 16-23, 24-31 (odd) in scale_position's order */
        for (int i = 0; i < count; i++) {
            s[i][0] = s[i][1] = s[i][2] = s[i][3] = _mm256_setzero_si256();
        }
        for (int64_t c0 = 0; c0 < chunks; c0 += NIBBLE_RUN) {
            int64_t c1 = c0 + NIBBLE_RUN < chunks ? c0 + NIBBLE_RUN : chunks;
            __m256i low_both[NIBBLE_TILES], low_odd[NIBBLE_TILES], high_both[NIBBLE_TILES], high_odd[NIBBLE_TILES];
            nibble_run(group, stride, group_tables, c0, c1, ahead, count, low_both, low_odd, high_both, high_odd);
            __m256i bias = _mm256_set1_epi32(16 * HIGH_BIAS * 4 * (int32_t) (c1 - c0));
            for (int i = 0; i < count; i++) {
                __m256i low_even = _mm256_sub_epi16(low_both[i], _mm256_slli_epi16(low_odd[i], 8));
                __m256i high_even = _mm256_sub_epi16(high_both[i], _mm256_slli_epi16(high_odd[i], 8));
                __m256i part[4] = {part_sums(low_even, high_even, 0, bias), part_sums(low_even, high_even, 1, bias),
                                   part_sums(low_odd[i], high_odd[i], 0, bias),
                                   part_sums(low_odd[i], high_odd[i], 1, bias)};
                for (int h = 0; h < 4; h++) {
                    s[i][h] = _mm256_add_epi32(s[i][h], part[h]);
                }
            }
        }
        __m256i x = _mm256_set1_epi32(code_sums[g]);
        for (int i = 0; i < count; i++) {
            const uint8_t *scales = group[i] + chunks * stride[i];
            for (int h = 0; h < 4; h++) {
                __m256 scale = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (scales + 16 * h)));
                __m256i acc = _mm256_sub_epi32(x, _mm256_slli_epi32(s[i][h], 1));
                __m256 total = _mm256_add_ps(_mm256_loadu_ps(totals[i] + 8 * h),
                                             _mm256_mul_ps(scale, _mm256_cvtepi32_ps(acc)));
                _mm256_storeu_ps(totals[i] + 8 * h, total);
            }
        }
    }
    for (int i = 0; i < count; i++) {
        int64_t first = TILE_ROWS * (t + i);
        for (int j = 0; j < TILE_ROWS && first + j < n; j++) {
            y[first + j] = totals[i][scale_position(j)] * xscale;
        }
    }
}
#endif

#if !defined(__AVX512BW__) && !BYTE_PLANES
/*
 * y for the rows of tiles [t, tile_end) in groups, lane by lane (the portable build, which the backend does not
 * tile: tests reach it by selecting it): each row's terms s_g (X_g - 2 S_g) added in group order from 0, the total
 * times xscale.
 */
static void group_product_lanewise(const uint8_t *tiles, int64_t n, int64_t groups, int64_t chunks,
                                   const int16_t *tables, const int32_t *code_sums, float xscale, float *y, int64_t t,
                                   int64_t tile_end) {
    for (; t < tile_end; t++) {
        int64_t stride;
        const uint8_t *tile = tiles + tile_at(t, n, groups * (chunks + 1), GROUP_TILES, &stride);
        for (int j = 0; j < TILE_ROWS && TILE_ROWS * t + j < n; j++) {
            float total = 0.0f;
            for (int64_t g = 0; g < groups; g++) {
                const uint8_t *slot = tile + g * (chunks + 1) * stride;
                int32_t s = 0;
                for (int64_t c = 0; c < chunks; c++, slot += stride) {
                    s += lookup_word(tables + CHUNK_TABLE * (g * chunks + c), slot, j);
                }
                total += f16_to_f32(load_u16(slot + 2 * scale_position(j))) * (float) (code_sums[g] - 2 * s);
            }
            y[TILE_ROWS * t + j] = total * xscale;
        }
    }
}
#endif

void BP_FN(_matmul_sign_tiles)(const void *tiles, int64_t k, int64_t group, int64_t n, const int16_t *tables,
                               const int32_t *code_sums, const float *scales, float xscale, float *y,
                               int64_t tile_start, int64_t tile_end) {
    const uint8_t *base = (const uint8_t *) tiles;
    int64_t chunks = group_chunks(k, group);
    int64_t t = tile_start;
    if (groups_of(k, group) > 1) {
        int64_t groups = groups_of(k, group);
#if defined(__AVX512BW__)
        int64_t ahead = prefetch_distance(PREFETCH_INTEL, PREFETCH_OTHER);
#define SIGN_GROUP_TILES(count)                                                                                    \
    lookup_group_tiles(base, n, groups, chunks, tables, CHUNK_TABLE, RUN_CHUNKS, 1, ahead, code_sums, -2, xscale, y, \
                       t, count)
        EACH_TILE_COUNT(t, tile_end, SIGN_GROUP_TILES)
#undef SIGN_GROUP_TILES
#elif BYTE_PLANES
        const uint8_t *nibble_tables = (const uint8_t *) tables;
#define NIBBLE_GROUP_TILES(count)                                                                                  \
    nibble_group_tiles(base, n, groups, chunks, nibble_tables, code_sums, xscale, y, t, count)
        EACH_NIBBLE_COUNT(t, tile_end, NIBBLE_GROUP_TILES)
#undef NIBBLE_GROUP_TILES
#else
        group_product_lanewise(base, n, groups, chunks, tables, code_sums, xscale, y, t, tile_end);
#endif
        return;
    }
    int32_t code_sum = code_sums[0];
#if defined(__AVX512BW__)
    lookup_product(base, n, chunks, tables, CHUNK_TABLE, RUN_CHUNKS, 1,
                   prefetch_distance(PREFETCH_INTEL, PREFETCH_OTHER), code_sum, -2, scales, xscale, y, t, tile_end);
#elif BYTE_PLANES
    const uint8_t *nibble_tables = (const uint8_t *) tables;
    int32_t sums[NIBBLE_TILES][TILE_ROWS];
#define NIBBLE_TILE_SUMS(count)                                                                                    \
    do {                                                                                                           \
        nibble_sums(base, n, chunks, nibble_tables, t, count, sums);                                               \
        for (int i = 0; i < (count); i++) {                                                                        \
            store_tile(sums[i], t + i, n, code_sum, -2, scales, xscale, y);                                        \
        }                                                                                                          \
    } while (0)
    EACH_NIBBLE_COUNT(t, tile_end, NIBBLE_TILE_SUMS)
#undef NIBBLE_TILE_SUMS
#else
    /* The portable build (tests reach it by selecting it). */
    lookup_product_lanewise(base, n, chunks, tables, CHUNK_TABLE, GROUP_TILES, code_sum, -2, scales, xscale, y, t,
                            tile_end);
#endif
}
