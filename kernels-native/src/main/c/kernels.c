/*
 * The matrix-product kernels, written once and compiled once per instruction set (build.sh): with -mavx2 -mfma
 * -mf16c (BP_IMPL=avx2) the __AVX2__ paths below run, without them (BP_IMPL=portable) the plain loops do. Both
 * are held to the Java scalar reference by the same randomized tests.
 *
 * Memory layout read (bitplane_kernels.h, FORMAT.md section 4), W = [n rows, k columns], Wd = ceil(k / 64):
 *   F32 / F16 / BF16   row r at element r*k
 *   INT8               int8 code at byte r*k + i
 *   bit planes         row r at word r*P*Wd: plane 0's Wd words, then plane 1's, ...; value i is bit i%64 of word
 *                      i/64 of each plane, so (little-endian) byte i/8, bit i%8, and 32 values from a multiple of
 *                      32 are one unaligned 4-byte load per plane
 *   scales, mins       f16 at scales_offset (mins_offset) + 2*(r*groups + g)
 *
 * Method: each row of a quantized tensor is decoded once into int8 codes (the INT8 row is its own codes; planes are
 * expanded 32 values at a time), then every token of the batch runs over it group by group. With int8 activations
 * the group sums are exact integers (vpmaddubsw on |code| and sign-adjusted activations, then vpmaddwd), combined
 * in float exactly as the Java reference does (build.sh passes -ffp-contract=off so that no multiply-add fuses).
 */
#include <string.h>

#include "bitplane_kernels.h"
#include "kernels_impl.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

#ifndef BP_IMPL
#error "compile with -DBP_IMPL=portable or -DBP_IMPL=avx2 (build.sh does)"
#endif
#define BP_FN(f) BP_IMPL_NAME(BP_IMPL, f)

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

static inline float bf16_to_f32(uint16_t h) {
    return bits_to_float((uint32_t) h << 16);
}

static inline float float_weight(const uint8_t *row, int32_t encoding, int64_t i) {
    switch (encoding) {
        case BP_F16:
            return f16_to_f32(load_u16(row + 2 * i));
        case BP_BF16:
            return bf16_to_f32(load_u16(row + 2 * i));
        default:
            return bits_to_float(load_u32(row + 4 * i));
    }
}

#ifdef __AVX2__
/* Sums the 8 lanes in a fixed order, so that a token's result never depends on anything but its inputs. */
static inline float sum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int32_t sum8i(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

static inline __m256 load8_weights(const uint8_t *row, int32_t encoding, int64_t i) {
    switch (encoding) {
        case BP_F16:
            return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (row + 2 * i)));
        case BP_BF16:
            return _mm256_castsi256_ps(_mm256_slli_epi32(
                    _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *) (row + 2 * i))), 16));
        default:
            return _mm256_loadu_ps((const float *) (row + 4 * i));
    }
}

/* 32 bits to 32 bytes: 0xFF where the bit is set, 0 elsewhere (bit j of the word to byte j). */
static inline __m256i expand_bits(uint32_t bits) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
                                            3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i select = _mm256_set1_epi64x((long long) 0x8040201008040201ULL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int) bits), spread);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, select), select);
}
#endif

static float dot_float(const uint8_t *row, int32_t encoding, const float *x, int64_t k) {
    int64_t i = 0;
    float sum = 0;
#ifdef __AVX2__
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (; i + 32 <= k; i += 32) {
        a0 = _mm256_fmadd_ps(load8_weights(row, encoding, i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(load8_weights(row, encoding, i + 8), _mm256_loadu_ps(x + i + 8), a1);
        a2 = _mm256_fmadd_ps(load8_weights(row, encoding, i + 16), _mm256_loadu_ps(x + i + 16), a2);
        a3 = _mm256_fmadd_ps(load8_weights(row, encoding, i + 24), _mm256_loadu_ps(x + i + 24), a3);
    }
    for (; i + 8 <= k; i += 8) {
        a0 = _mm256_fmadd_ps(load8_weights(row, encoding, i), _mm256_loadu_ps(x + i), a0);
    }
    sum = sum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
#endif
    for (; i < k; i++) {
        sum += float_weight(row, encoding, i) * x[i];
    }
    return sum;
}

void BP_FN(_matmul_float)(const void *w, int32_t encoding, int64_t k, const float *x, float *y, int32_t batch,
                          int64_t n, int64_t row_start, int64_t row_end) {
    int64_t bytes = encoding == BP_F32 ? 4 : 2;
    for (int64_t r = row_start; r < row_end; r++) {
        const uint8_t *row = (const uint8_t *) w + r * k * bytes;
        for (int32_t b = 0; b < batch; b++) {
            y[b * n + r] = dot_float(row, encoding, x + b * k, k);
        }
    }
}

static inline int planes_of(int32_t encoding) {
    switch (encoding) {
        case BP_INT4:
        case BP_INT4_ASYM:
            return 4;
        case BP_TERNARY:
            return 2;
        default:
            return 1;
    }
}

static inline int8_t code_at(const uint8_t *row, int64_t plane_bytes, int32_t encoding, int64_t i) {
    int bit = (row[i / 8] >> (i % 8)) & 1;
    switch (encoding) {
        case BP_BINARY:
            return bit ? -1 : 1;
        case BP_TERNARY:
            return bit == 0 ? 0 : ((row[plane_bytes + i / 8] >> (i % 8)) & 1) ? -1 : 1;
        default: {
            int u = bit;
            for (int p = 1; p < 4; p++) {
                u |= ((row[p * plane_bytes + i / 8] >> (i % 8)) & 1) << p;
            }
            return (int8_t) (encoding == BP_INT4 ? u - 8 : u);
        }
    }
}

/* The int8 codes of row r: the row itself for INT8, else the planes decoded into codes[0..k). */
static const int8_t *decode_row(const uint8_t *w, int32_t encoding, int64_t k, int64_t r, int8_t *codes) {
    if (encoding == BP_INT8) {
        return (const int8_t *) (w + r * k);
    }
    int planes = planes_of(encoding);
    int64_t plane_bytes = (k + 63) / 64 * 8;
    const uint8_t *row = w + r * planes * plane_bytes;
    int64_t i = 0;
#ifdef __AVX2__
    const __m256i one = _mm256_set1_epi8(1);
    for (; i + 32 <= k; i += 32) {
        const uint8_t *at = row + i / 8;
        __m256i m0 = expand_bits(load_u32(at));
        __m256i c;
        if (encoding == BP_BINARY) {
            c = _mm256_or_si256(m0, one); /* sign set: 0xFF = -1, else 1 */
        } else if (encoding == BP_TERNARY) {
            c = _mm256_and_si256(m0, _mm256_or_si256(one, expand_bits(load_u32(at + plane_bytes))));
        } else {
            __m256i u = _mm256_and_si256(m0, one);
            u = _mm256_or_si256(u, _mm256_and_si256(expand_bits(load_u32(at + plane_bytes)), _mm256_set1_epi8(2)));
            u = _mm256_or_si256(u, _mm256_and_si256(expand_bits(load_u32(at + 2 * plane_bytes)),
                                                    _mm256_set1_epi8(4)));
            u = _mm256_or_si256(u, _mm256_and_si256(expand_bits(load_u32(at + 3 * plane_bytes)),
                                                    _mm256_set1_epi8(8)));
            c = encoding == BP_INT4 ? _mm256_sub_epi8(u, _mm256_set1_epi8(8)) : u;
        }
        _mm256_storeu_si256((__m256i *) (codes + i), c);
    }
#endif
    for (; i < k; i++) {
        codes[i] = code_at(row, plane_bytes, encoding, i);
    }
    return codes;
}

/* Exact: sum of c[i] * q[i]. */
static inline int32_t dot_codes_i8(const int8_t *c, const int8_t *q, int64_t len) {
    int64_t i = 0;
    int32_t sum = 0;
#ifdef __AVX2__
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc = _mm256_setzero_si256();
    for (; i + 32 <= len; i += 32) {
        __m256i cv = _mm256_loadu_si256((const __m256i *) (c + i));
        __m256i qv = _mm256_loadu_si256((const __m256i *) (q + i));
        /* |c| * (q with c's sign): pairs of products stay within int16 (|c| <= 128, |q| <= 127). */
        __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(cv), _mm256_sign_epi8(qv, cv));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, ones));
    }
    sum = sum8i(acc);
#endif
    for (; i < len; i++) {
        sum += c[i] * q[i];
    }
    return sum;
}

static inline int32_t sum_i8(const int8_t *q, int64_t len) {
    int32_t sum = 0;
    for (int64_t i = 0; i < len; i++) {
        sum += q[i];
    }
    return sum;
}

static inline float dot_codes_f32(const int8_t *c, const float *x, int64_t len) {
    int64_t i = 0;
    float sum = 0;
#ifdef __AVX2__
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (; i + 16 <= len; i += 16) {
        __m128i c16 = _mm_loadu_si128((const __m128i *) (c + i));
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c16)), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(c16, 8))),
                             _mm256_loadu_ps(x + i + 8), a1);
    }
    for (; i + 8 <= len; i += 8) {
        __m128i c8 = _mm_loadl_epi64((const __m128i *) (c + i));
        a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c8)), _mm256_loadu_ps(x + i), a0);
    }
    sum = sum8(_mm256_add_ps(a0, a1));
#endif
    for (; i < len; i++) {
        sum += c[i] * x[i];
    }
    return sum;
}

static inline float sum_f32(const float *x, int64_t len) {
    float sum = 0;
    for (int64_t i = 0; i < len; i++) {
        sum += x[i];
    }
    return sum;
}

static inline float scale_at(const uint8_t *w, int64_t offset, int64_t index) {
    return f16_to_f32(load_u16(w + offset + 2 * index));
}

void BP_FN(_matmul_quantized_f32)(const void *weights, int32_t encoding, int64_t k, int64_t group,
                                  int64_t scales_offset, int64_t mins_offset, const float *x, float *y,
                                  int32_t batch, int64_t n, int64_t row_start, int64_t row_end, int8_t *codes) {
    const uint8_t *w = (const uint8_t *) weights;
    int64_t groups = (k + group - 1) / group;
    int asym = encoding == BP_INT4_ASYM;
    for (int64_t r = row_start; r < row_end; r++) {
        const int8_t *c = decode_row(w, encoding, k, r, codes);
        for (int32_t b = 0; b < batch; b++) {
            const float *xb = x + b * k;
            float sum = 0;
            for (int64_t g = 0; g < groups; g++) {
                int64_t start = g * group;
                int64_t len = start + group <= k ? group : k - start;
                float acc = dot_codes_f32(c + start, xb + start, len);
                float term = scale_at(w, scales_offset, r * groups + g) * acc;
                if (asym) {
                    term += scale_at(w, mins_offset, r * groups + g) * sum_f32(xb + start, len);
                }
                sum += term;
            }
            y[b * n + r] = sum;
        }
    }
}

void BP_FN(_matmul_quantized_i8)(const void *weights, int32_t encoding, int64_t k, int64_t group,
                                 int64_t scales_offset, int64_t mins_offset, const int8_t *xq,
                                 const float *xscales, float *y, int32_t batch, int64_t n, int64_t row_start,
                                 int64_t row_end, int8_t *codes) {
    const uint8_t *w = (const uint8_t *) weights;
    int64_t groups = (k + group - 1) / group;
    int asym = encoding == BP_INT4_ASYM;
    for (int64_t r = row_start; r < row_end; r++) {
        const int8_t *c = decode_row(w, encoding, k, r, codes);
        for (int32_t b = 0; b < batch; b++) {
            const int8_t *qb = xq + b * k;
            float sum = 0;
            for (int64_t g = 0; g < groups; g++) {
                int64_t start = g * group;
                int64_t len = start + group <= k ? group : k - start;
                /* The Java reference's order: s * acc (+ m * qsum), then added to the running sum. */
                float term = scale_at(w, scales_offset, r * groups + g) * (float) dot_codes_i8(c + start, qb + start,
                                                                                               len);
                if (asym) {
                    term += scale_at(w, mins_offset, r * groups + g) * (float) sum_i8(qb + start, len);
                }
                sum += term;
            }
            y[b * n + r] = sum * xscales[b];
        }
    }
}
