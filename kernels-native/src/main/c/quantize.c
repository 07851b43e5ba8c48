/*
 * Per-token INT8 activations (bp_quantize_i8), exactly as the Java reference (ActivationQuantizer) forms them, so
 * that every integer product downstream matches it bit for bit: s = max|x| / 127, q = x / s rounded half up (Java's
 * Math.round) and clamped to [-127, 127]. The division stays a division (vdivps), as the reference divides:
 * x * (1 / s) differs from x / s in its last bit for many x (38% of a random token's), which can move a code
 * across a half. Compiled once per instruction set (build.sh).
 *
 * Memory layout: x[k] floats in, q[k] int8 codes out, the scale returned.
 */
#include <string.h>

#include "bitplane_kernels.h"
#include "kernels_impl.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

/* Java's Math.round(float) on values far below 2^23: the nearest integer, ties up (v - floor(v) is exact here). */
static inline float round_half_up(float v) {
    float f = __builtin_floorf(v);
    return v - f >= 0.5f ? f + 1 : f;
}

float BP_FN(_quantize_i8)(const float *x, int64_t k, int8_t *q) {
    if (k <= 0) {
        return 0;
    }
    float amax = 0;
    int finite = 1;
    int64_t i = 0;
#ifdef __AVX2__
    __m256 vmax = _mm256_setzero_ps();
    __m256 bad = _mm256_setzero_ps();
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 inf = _mm256_set1_ps(__builtin_inff());
    for (; i + 8 <= k; i += 8) {
        __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask);
        vmax = _mm256_max_ps(vmax, a);
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, inf, _CMP_NLT_UQ)); /* infinity or NaN */
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, vmax);
    for (int j = 0; j < 8; j++) {
        amax = lanes[j] > amax ? lanes[j] : amax;
    }
    finite = _mm256_movemask_ps(bad) == 0;
#endif
    for (; i < k; i++) {
        float a = __builtin_fabsf(x[i]);
        if (!(a < __builtin_inff())) {
            finite = 0;
        }
        amax = a > amax ? a : amax;
    }
    if (!finite) { /* Java: the scale is NaN or infinite, every x / s rounds from NaN or 0 to 0 */
        int nan = 0;
        for (int64_t j = 0; j < k; j++) {
            nan |= x[j] != x[j];
        }
        memset(q, 0, (size_t) k);
        return nan ? __builtin_nanf("") : __builtin_inff();
    }
    float scale = amax / 127.0f;
    if (scale == 0) {
        memset(q, 0, (size_t) k);
        return 0;
    }
    i = 0;
#ifdef __AVX2__
    const __m256 vs = _mm256_set1_ps(scale);
    const __m256 half = _mm256_set1_ps(0.5f);
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 lo = _mm256_set1_ps(-127.0f);
    const __m256 hi = _mm256_set1_ps(127.0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (; i + 32 <= k; i += 32) {
        __m256i r[4];
        for (int j = 0; j < 4; j++) {
            __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + i + 8 * j), vs);
            __m256 f = _mm256_floor_ps(v);
            f = _mm256_add_ps(f, _mm256_and_ps(_mm256_cmp_ps(_mm256_sub_ps(v, f), half, _CMP_GE_OQ), one));
            r[j] = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(f, lo), hi));
        }
        __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(r[0], r[1]), _mm256_packs_epi32(r[2], r[3]));
        _mm256_storeu_si256((__m256i *) (q + i), _mm256_permutevar8x32_epi32(bytes, order));
    }
#endif
    for (; i < k; i++) {
        float r = round_half_up(x[i] / scale);
        q[i] = (int8_t) (r < -127 ? -127 : r > 127 ? 127 : r);
    }
    return scale;
}
