/*
 * Float weights (F32, F16, BF16) times float activations: the baselines issue 4 asks for, and the products of the
 * tensors a model keeps in float. Compiled once per instruction set (build.sh); the AVX2 builds widen eight
 * weights at a time (vcvtph2ps for F16, a shift for BF16) into four chains of fused multiply-adds, whose lanes are
 * summed in a fixed order (sum8), so that a token's result depends on nothing but its inputs.
 *
 * Memory layout read (bitplane_kernels.h, FORMAT.md section 4), W = [n rows, k columns]:
 *   F32 / F16 / BF16   row r at element r*k (little-endian, no alignment)
 *   x, y               token b's activations at x[b*k], its outputs at y[b*n + r]
 */
#include <string.h>

#include "bitplane_kernels.h"
#include "kernels_impl.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

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
