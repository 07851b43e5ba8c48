/*
 * The functions the kernel sources define (build.sh lists the sources, one job each, from the float and quantized
 * products to attention), each compiled once per instruction set with BP_IMPL naming the set; dispatch.c picks one
 * set at load time and forwards the public functions of bitplane_kernels.h to it.
 */
#ifndef BITPLANE_KERNELS_IMPL_H
#define BITPLANE_KERNELS_IMPL_H

#include "bitplane_kernels.h"

/* Helpers the kernel sources share. */
#include <string.h>

/* Inlined into loops whose encoding (or count) is a constant, so that every branch on it folds away. */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* The AVX-512 build (BP_IMPL=avx512: AVX-512 F, BW, VL and VNNI besides AVX2, FMA and F16C): vpdpbusd, and 64-byte
   vectors where a kernel is written for them. */
#if defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
#define BP_VNNI 1
#endif

#if defined(__AVX512BW__) && defined(__AVX512VNNI__)
#include <immintrin.h>
/*
 * acc + vpdpbusd(u, s) (unsigned bytes u times signed bytes s, four adjacent products added into each int32 lane of
 * acc), in place: GCC 12 compiles _mm512_dpbusd_epi32 in a loop that carries acc with a copy to a fresh register
 * before each vpdpbusd and a copy back after (in the batch kernel it also spilled one of eight sums to the stack,
 * putting a store and a load into its chain of adds). In the packed ternary rows' loop the copies were 8 of its 30
 * instructions a 64-byte step: one token of 2048 x 5632 ternary from L2, one thread, 151 -> 188 G weights/s (the
 * loop already split, packed_rows_one_group).
 */
ALWAYS_INLINE __m512i dpbusd512(__m512i acc, __m512i u, __m512i s) {
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u), "vm"(s));
    return acc;
}
#endif

static inline float bits_to_float(uint32_t bits) {
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* IEEE binary16 to float, exactly (every half is a float). */
static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t) (h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0) {
        float magnitude = (float) man * 5.9604644775390625e-8f; /* man * 2^-24, exact */
        uint32_t bits;
        memcpy(&bits, &magnitude, 4);
        return bits_to_float(bits | sign);
    }
    if (exp == 31) {
        return bits_to_float(sign | 0x7f800000u | (man << 13));
    }
    return bits_to_float(sign | ((exp + 112) << 23) | (man << 13));
}

/* Unaligned little-endian loads: the file's bytes promise no alignment. */
static inline uint32_t load_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* One group's term as the Java reference forms it: s_g * acc_g (+ m_g * qsum_g for INT4_ASYM, where mins is set). */
static inline float group_term(float scale, int32_t acc, const float *mins, int64_t g, int32_t qsum) {
    float t = scale * (float) acc;
    if (mins) {
        t += mins[g] * (float) qsum;
    }
    return t;
}

#ifdef __AVX2__
#include <immintrin.h>

/* Sums the 8 lanes in a fixed order, so that a token's result never depends on anything but its inputs. */
static inline float sum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/*
 * A prefetch distance in bytes. Two machines of this project's wanted different ones: an AMD EPYC (Zen 4, reading
 * 50-100 GB/s), where the distances were first tuned, and an Intel Xeon (28 GB/s), where those ran 15-20% below
 * shorter ones (docs/PERFORMANCE.md, "Prefetch distances"). Not a rule: the Intel machine's distance on Intel CPUs,
 * the AMD one's elsewhere (bp_best_isa's __builtin_cpu_init has read the CPU before any kernel runs).
 */
static inline int64_t prefetch_distance(int64_t intel, int64_t other) {
    return __builtin_cpu_is("intel") ? intel : other;
}

/*
 * How many times as far ahead as its prefetch into L1 a kernel also asks for its weights into L2 (prefetcht2): the
 * packed ternary rows' (quantized_products.c, L2_PREFETCH_BYTES), taken since by the XNOR loops and the BINARY
 * tiles, which each measured the gain in their comments.
 */
#define L2_AHEAD 4

/*
 * A prefetch of the line l1_ahead bytes on from `at` into L1 and, where l2_ahead is not 0, of the one l2_ahead bytes
 * on into L2, as volatile asm, so that the loads the callers below issue after them (volatile asm too) stay after
 * them: GCC moved plain loads above the prefetches beside them, and the order matters (see load_after_prefetch).
 */
ALWAYS_INLINE void prefetch_in_order(const uint8_t *at, int64_t l1_ahead, int64_t l2_ahead) {
    __asm__ volatile("prefetcht0 %0" : : "m"(*(const char *) (at + l1_ahead)));
    if (l2_ahead != 0) {
        __asm__ volatile("prefetcht2 %0" : : "m"(*(const char *) (at + l2_ahead)));
    }
}

#if defined(__AVX512F__)
/*
 * The 64 bytes at `at`, issued after prefetch_in_order's prefetches, in that order: GCC moved plain loads above the
 * prefetches beside them, and the order matters. A C probe reading 7 MB halves on two threads (Intel Xeon, 2 MB
 * pages): a prefetch then a load a line read 30.6 GB/s, as the plain read loop does; the loads of eight lines, then
 * their prefetches, 27.6-28.1, as with no prefetch at all. (All the prefetches of a step first, then its loads, read
 * as fast in that loop, but lost a quarter in the lookup tiles' loop: per line is kept.) Taken by the lookup tiles
 * and the INT4 group lanes: in C probes of their loops (4096 x 14336, two threads) BINARY 243-252 -> 253-260 G
 * weights/s, TERNARY 132-146 -> 134-147, INT4 53.4-57.8 -> 53.9-58.6; through the backend (`bitplane bench --backend
 * native --activations int8 --layout packed`, alternated four times, at 0.5-1.5 GB/s less read bandwidth) BINARY
 * 211-219 -> 210-239, TERNARY 128-136 -> 131-145, INT4 W4A8 51.1-52.6 -> 51.6-53.5.
 */
ALWAYS_INLINE __m512i load_after_prefetch(const uint8_t *at, int64_t l1_ahead, int64_t l2_ahead) {
    __m512i v;
    prefetch_in_order(at, l1_ahead, l2_ahead);
    __asm__ volatile("vmovdqu64 %1, %0" : "=v"(v) : "m"(*(const __m512i *) at));
    return v;
}
#endif

/*
 * load_after_prefetch's order for the AVX2 builds: the two 32-byte halves of the line at `at`, after
 * prefetch_in_order's prefetches. AVX2 code throughout (`bitplane bench --backend native --activations int8 --layout
 * packed`, 4096 x 14336, with -Dbitplane.native.isa=avx2 -XX:UseAVX=2): the INT4 group lanes, alternated four times,
 * 43.4-44.1 -> 43.9-47.6 G weights/s (70-73% -> 73-76% of the roofline); the BINARY nibble tiles, alternated three
 * times, 176-180 -> 173-185 (63-64% -> 65-67%).
 */
ALWAYS_INLINE void halves_after_prefetch(const uint8_t *at, int64_t l1_ahead, int64_t l2_ahead, __m256i *low,
                                        __m256i *high) {
    prefetch_in_order(at, l1_ahead, l2_ahead);
    __asm__ volatile("vmovdqu %1, %0" : "=x"(*low) : "m"(*(const __m256i *) at));
    __asm__ volatile("vmovdqu %1, %0" : "=x"(*high) : "m"(*(const __m256i *) (at + 32)));
}

/* The 8x8 transpose of floats: lane j of v[i] goes to lane i of v[j]. */
static inline void transpose8x8(__m256 v[8]) {
    __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
    __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    v[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    v[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    v[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    v[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    v[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    v[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    v[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    v[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}
#endif

#define BP_CAT3(a, b, c) a##b##c
#define BP_IMPL_NAME(impl, f) BP_CAT3(bp_, impl, f)

/* In a kernel source, compiled once per implementation with -DBP_IMPL=portable, avx2 or avx512 (build.sh),
   BP_FN(f) names that implementation's f; dispatch.c, which includes this file without BP_IMPL, names them all. */
#ifdef BP_IMPL
#define BP_FN(f) BP_IMPL_NAME(BP_IMPL, f)
#endif

#define BP_DECLARE_IMPL(impl)                                                                                   \
    void BP_IMPL_NAME(impl, _matmul_float)(const void *w, int32_t encoding, int64_t k, const float *x, float *y,\
                                           int32_t batch, int64_t n, int64_t row_start, int64_t row_end);       \
    int64_t BP_IMPL_NAME(impl, _scratch_bytes)(int64_t k, int64_t group, int32_t batch);                        \
    float BP_IMPL_NAME(impl, _quantize_i8)(const float *x, int64_t k, int8_t *q);                               \
    void BP_IMPL_NAME(impl, _matmul_quantized_f32)(const void *w, int32_t encoding, int32_t layout, int64_t k,   \
                                                   int64_t group, int64_t scales_offset, int64_t mins_offset,    \
                                                   const float *x, float *y, int32_t batch, int64_t n,          \
                                                   int64_t row_start, int64_t row_end, void *scratch);          \
    void BP_IMPL_NAME(impl, _matmul_quantized_i8)(const void *w, int32_t encoding, int32_t layout, int64_t k,    \
                                                  int64_t group, int64_t scales_offset, int64_t mins_offset,     \
                                                  const int8_t *xq, const float *xscales, float *y,             \
                                                  int32_t batch, int64_t n, int64_t row_start, int64_t row_end, \
                                                  void *scratch);                                               \
    void BP_IMPL_NAME(impl, _matmul_xnor)(const void *w, int64_t k, int64_t group, int64_t scales_offset,      \
                                          const uint64_t *xbits, const float *xscales, float *y, int32_t batch, \
                                          int64_t n, int64_t row_start, int64_t row_end);                      \
    int64_t BP_IMPL_NAME(impl, _sign_tiles_bytes)(int64_t n, int64_t k, int64_t group);                         \
    void BP_IMPL_NAME(impl, _sign_tiles_repack)(const void *w, int64_t k, int64_t group, int64_t scales_offset, \
                                                int64_t n, int64_t tile_start, int64_t tile_end, void *tiles);  \
    int64_t BP_IMPL_NAME(impl, _sign_tables_bytes)(int64_t k, int64_t group);                                   \
    void BP_IMPL_NAME(impl, _sign_tables)(const int8_t *q, int64_t k, int64_t group, int16_t *tables,           \
                                          int32_t *code_sums);                                                  \
    void BP_IMPL_NAME(impl, _matmul_sign_tiles)(const void *tiles, int64_t k, int64_t group, int64_t n,         \
                                                const int16_t *tables, const int32_t *code_sums,                \
                                                const float *scales, float xscale, float *y, int64_t tile_start,\
                                                int64_t tile_end);                                              \
    int64_t BP_IMPL_NAME(impl, _base3_tiles_bytes)(int64_t n, int64_t k, int64_t group);                        \
    int64_t BP_IMPL_NAME(impl, _base3_tiles_repack)(const void *w, int32_t layout, int64_t k, int64_t group,   \
                                                    int64_t scales_offset, int64_t n, int64_t tile_start,       \
                                                    int64_t tile_end, void *tiles);                             \
    int64_t BP_IMPL_NAME(impl, _base3_tables_bytes)(int64_t k, int64_t group);                                  \
    void BP_IMPL_NAME(impl, _base3_tables)(const int8_t *q, int64_t k, int64_t group, int16_t *tables);         \
    void BP_IMPL_NAME(impl, _matmul_base3_tiles)(const void *tiles, int64_t k, int64_t group, int64_t n,       \
                                                 const int16_t *tables, float xscale, float *y,                 \
                                                 int64_t tile_start, int64_t tile_end);                         \
    int64_t BP_IMPL_NAME(impl, _group_lanes_bytes)(int32_t encoding, int64_t n, int64_t k);                     \
    void BP_IMPL_NAME(impl, _group_lanes_repack)(const void *w, int32_t encoding, int32_t layout, int64_t k,     \
                                                 int64_t n, int64_t scales_offset, int64_t mins_offset,          \
                                                 int64_t block_start, int64_t block_end, void *lanes);           \
    void BP_IMPL_NAME(impl, _matmul_group_lanes)(const void *lanes, int32_t encoding, int64_t k, int64_t n,     \
                                                 const int8_t *xq, const float *xscales, float *y, int32_t batch,\
                                                 int64_t block_start, int64_t block_end, void *scratch);\
    void BP_IMPL_NAME(impl, _attention)(const float *q, const float *keys, const float *values, float *out,      \
                                        const int32_t *positions, int32_t n_heads, int32_t n_kv_heads,          \
                                        int64_t head_size, int32_t unit_heads, int64_t unit_start,              \
                                        int64_t unit_end, float *scores);                                       \
    int64_t BP_IMPL_NAME(impl, _stream_read)(const void *data, int64_t bytes);

BP_DECLARE_IMPL(portable)
#if defined(__x86_64__)
BP_DECLARE_IMPL(avx2)
BP_DECLARE_IMPL(avx512)
#endif

#endif
