/*
 * Binary weights x binary activations (XNOR-Net). Row r is plane 0 of the BINARY tensor: Wd = ceil(k / 64) words,
 * bit set where w < 0; xbits[b] holds token b's Wd sign words in the same order. A group is a run of whole words
 * (group % 64 == 0, or one group per row), so its product is len - 2 popcount(w XOR x) over its words, with the
 * bits past k masked in the row's last word. AVX2 counts four words at a time with the nibble lookup (vpshufb),
 * adding byte counts for up to 31 rounds before widening them with vpsadbw (the AVX-512 build eight words at a
 * time first); the rest, and the portable build, use __builtin_popcountll. Terms are added in group order and
 * multiplied by the token's scale, as the Java reference does. Compiled once per instruction set (build.sh).
 *
 * Memory layout read: row r at byte 8 r Wd (its Wd little-endian words), scales f16 at scales_offset + 2 (r groups +
 * g); xbits[b * Wd ..] token b's sign words, xscales[b] its scale (mean |x|); y[b * n + r].
 */
#include <string.h>

#include "bitplane_kernels.h"
#include "kernels_impl.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

static inline uint64_t load_u64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* How far ahead along a row the XNOR loops prefetch: a thread's one stream of rows read from DRAM at 15-16 GB/s
   of the machine's 28 with two threads; 1 KB ahead 87-89% of it (4096x14336, 2 threads: 512 B 83%, 2 KB 81-90%,
   4 KB 64%). The AVX2 loop, half as much work a step, wanted 2 KB on the same Intel machine (`bitplane bench
   --encodings binary --activations binary`, alternated: 1 KB 126-143 G weights/s, 2 KB 154-178 (72-80%), 3 KB
   137-190, 4 KB 136-139); not measured elsewhere. */
#define XNOR_PREFETCH_BYTES 1024
#define XNOR_PREFETCH_BYTES_AVX2 2048
/* And four times as far ahead into L2 (prefetcht2), as packed_rows_one_group does, alternated three times on that
   machine: the AVX2 loop 173-179 -> 200-201 G weights/s (81-83% -> 91-93%), the AVX-512 loop 151-154 -> 203-208
   (70-72% -> 95-97%; 185-186 in runs an hour before). */
#define XNOR_L2_PREFETCH_BYTES (L2_AHEAD * XNOR_PREFETCH_BYTES)
#define XNOR_L2_PREFETCH_BYTES_AVX2 (L2_AHEAD * XNOR_PREFETCH_BYTES_AVX2)
/* Mismatched signs between words [w0, w1) of a row and of x. */
static int64_t mismatches(const uint8_t *row, const uint64_t *x, int64_t w0, int64_t w1) {
    int64_t count = 0;
    int64_t i = w0;
#ifdef BP_VNNI
    /* The AVX-512 build: the same lookup eight words at a time (vpshufb on 512 bits is AVX512BW). VPOPCNTQ would
       count a vector in one instruction, but AVX-512 VNNI machines without it exist (Cascade Lake). */
    if (w1 - w0 >= 8) {
        const __m512i lut = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
        const __m512i low = _mm512_set1_epi8(0x0f);
        __m512i wide = _mm512_setzero_si512();
        while (i + 8 <= w1) {
            __m512i bytes = _mm512_setzero_si512();
            for (int round = 0; round < 31 && i + 8 <= w1; round++, i += 8) {
                _mm_prefetch((const char *) (row + 8 * i + XNOR_PREFETCH_BYTES), _MM_HINT_T0);
                _mm_prefetch((const char *) (row + 8 * i + XNOR_L2_PREFETCH_BYTES), _MM_HINT_T2);
                __m512i v = _mm512_xor_si512(_mm512_loadu_si512((const void *) (row + 8 * i)),
                                             _mm512_loadu_si512((const void *) (x + i)));
                __m512i lo = _mm512_shuffle_epi8(lut, _mm512_and_si512(v, low));
                __m512i hi = _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(v, 4), low));
                bytes = _mm512_add_epi8(bytes, _mm512_add_epi8(lo, hi));
            }
            wide = _mm512_add_epi64(wide, _mm512_sad_epu8(bytes, _mm512_setzero_si512()));
        }
        count += _mm512_reduce_add_epi64(wide);
    }
#endif
#ifdef __AVX2__
    if (w1 - i >= 4) {
        const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                             0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
        const __m256i low = _mm256_set1_epi8(0x0f);
        __m256i wide = _mm256_setzero_si256();
        while (i + 4 <= w1) {
            __m256i bytes = _mm256_setzero_si256();
            for (int round = 0; round < 31 && i + 4 <= w1; round++, i += 4) {
                if (i % 8 == 0) { /* one prefetch a 64-byte line */
                    _mm_prefetch((const char *) (row + 8 * i + XNOR_PREFETCH_BYTES_AVX2), _MM_HINT_T0);
                    _mm_prefetch((const char *) (row + 8 * i + XNOR_L2_PREFETCH_BYTES_AVX2), _MM_HINT_T2);
                }
                __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *) (row + 8 * i)),
                                             _mm256_loadu_si256((const __m256i *) (x + i)));
                __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, low));
                __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
                bytes = _mm256_add_epi8(bytes, _mm256_add_epi8(lo, hi));
            }
            wide = _mm256_add_epi64(wide, _mm256_sad_epu8(bytes, _mm256_setzero_si256()));
        }
        count += _mm256_extract_epi64(wide, 0) + _mm256_extract_epi64(wide, 1) + _mm256_extract_epi64(wide, 2)
                 + _mm256_extract_epi64(wide, 3);
    }
#endif
    for (; i < w1; i++) {
        count += __builtin_popcountll(load_u64(row + 8 * i) ^ x[i]);
    }
    return count;
}

void BP_FN(_matmul_xnor)(const void *weights, int64_t k, int64_t group, int64_t scales_offset, const uint64_t *xbits,
                         const float *xscales, float *y, int32_t batch, int64_t n, int64_t row_start,
                         int64_t row_end) {
    const uint8_t *w = (const uint8_t *) weights;
    const int64_t words = (k + 63) / 64;
    const int64_t groups = (k + group - 1) / group;
    const int64_t group_words = (group + 63) / 64;
    const uint64_t last_mask = k % 64 == 0 ? ~(uint64_t) 0 : ((uint64_t) 1 << (k % 64)) - 1;
    for (int64_t r = row_start; r < row_end; r++) {
        const uint8_t *row = w + 8 * r * words;
        for (int32_t b = 0; b < batch; b++) {
            const uint64_t *x = xbits + b * words;
            float sum = 0.0f;
            for (int64_t g = 0; g < groups; g++) {
                const int64_t w0 = g * group_words;
                const int64_t w1 = w0 + group_words < words ? w0 + group_words : words;
                uint64_t tail = load_u64(row + 8 * (w1 - 1)) ^ x[w1 - 1];
                if (w1 == words) {
                    tail &= last_mask;
                }
                const int64_t mism = mismatches(row, x, w0, w1 - 1) + __builtin_popcountll(tail);
                const int64_t end = (g + 1) * group < k ? (g + 1) * group : k;
                const int32_t acc = (int32_t) (end - g * group - 2 * mism);
                sum += group_term(f16_to_f32(load_u16(w + scales_offset + 2 * (r * groups + g))), acc, 0, g, 0);
            }
            y[b * n + r] = sum * xscales[b];
        }
    }
}
