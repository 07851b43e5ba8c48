/*
 * Causal attention over a float KV cache, a token's query heads that share one KV head taken together (or one
 * head at a time, where the caller splits heads over its threads), so that each block of keys is read from memory
 * once and then from L1 by every query head. Compiled once per instruction set like every kernel source (build.sh).
 *
 * Memory layout (bitplane_kernels.h, bp_attention), kv_mul = n_heads / n_kv_heads, kv_dim = n_kv_heads head_size:
 *   q, out  [batch][n_heads][head_size]: query head j of group (b, h) at (b n_heads + h kv_mul + j) head_size.
 *   keys    [positions][kv_dim]: position t's key for KV head h at t kv_dim + h head_size; values likewise.
 *   scores  scratch of kv_mul * (position + 1) floats for the group's token: head j's scores, then weights, at
 *           scores[j * count].
 * For each head: s_t = (q . k_t) / sqrt(head_size), w = softmax(s) (the largest score subtracted before exp),
 * out = sum_t w_t v_t. Equal to the Java reference (ScalarBackend.attendHeads) within float rounding: sums run in
 * other orders and exp is a polynomial here. Every head's arithmetic depends only on its own inputs, so a token's
 * result is the same bit for bit whatever else shares the call or the thread.
 *
 * AVX-512 (heads of whole 16-float vectors): scores for 16 positions at a time, their 16 sums across lanes done
 * together by a tree of permutes (30 permutes and 15 adds for 16 scores, where one sum across a vector's lanes
 * takes about 8 operations); exp by a polynomial over 16 lanes; weighted sums two heads at a time, each value
 * vector loaded once for both. Elsewhere (AVX2 and portable builds, other head sizes) plain loops, which the
 * native backend does not take: the Java kernels were 3-4x faster there (AVX2, 2 threads, position 512: 97 against
 * 287 us a call); they stay for the tails of blocks and as the tested reference of the interface.
 * Measured (a C program, 32 heads of 64, 4 KV heads, position 512, one thread): 116 us a call with one chain of
 * multiply-adds per 16-float slice and scalar maxima, 63 us as it is, where the Java kernels take 93-155 us; most
 * of what is left is the multiply-adds themselves (one 512-bit FMA a cycle on this machine's cores).
 */
#include <math.h>

#include "bitplane_kernels.h"
#include "kernels_impl.h"

#ifdef __AVX512F__
#include <immintrin.h>
#endif

/* Positions per block of keys: 16 scores make one vector, and 16 keys of 64 floats (4 KB) stay in L1. */
#define SCORE_BLOCK 16
/* The most 16-float vectors of a head whose scores go 16 at a time (heads up to 128 floats): the query's vectors
   and 16 sums then fit the 32 vector registers. */
#define Q_VECTORS 8

static float dot(const float *a, const float *b, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        s += a[i] * b[i];
    }
    return s;
}

#ifdef __AVX512F__
/*
 * The sums across lanes of a[0..15], as lane i of the result: each level adds the even and odd lanes of two
 * vectors side by side, halving the lanes each source keeps, until each source has one lane, in order.
 */
ALWAYS_INLINE __m512 sums16(__m512 a[16]) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int width = 16; width > 1; width /= 2) {
        for (int i = 0; i < width / 2; i++) {
            __m512 x = a[2 * i], y = a[2 * i + 1];
            a[i] = _mm512_add_ps(_mm512_permutex2var_ps(x, even, y), _mm512_permutex2var_ps(x, odd, y));
        }
    }
    return a[0];
}

/*
 * s[0..15] = (q . k_t) / norm for the 16 keys from k (rows stride apart), heads of `vectors` 16-float vectors
 * (at most Q_VECTORS; a constant where inlined):
 * the query's vectors stay in registers and each key's dot product is one chain, with one pointer stepping
 * through the keys (16 chains over the dimensions, indexing 16 rows at once, had GCC keep the rows' addresses in
 * vector registers and on the stack).
 */
ALWAYS_INLINE void scores16(const float *q, const float *k, int64_t stride, int vectors, float norm, float *s) {
    __m512 qv[Q_VECTORS];
    qv[0] = _mm512_loadu_ps(q);
    for (int c = 1; c < vectors; c++) {
        qv[c] = _mm512_loadu_ps(q + 16 * c);
    }
    __m512 acc[16];
#pragma GCC unroll 16
    for (int t = 0; t < 16; t++) {
        const float *row = k + t * stride;
        __m512 a = _mm512_mul_ps(qv[0], _mm512_loadu_ps(row));
        for (int c = 1; c < vectors; c++) {
            a = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(row + 16 * c), a);
        }
        acc[t] = a;
    }
    _mm512_storeu_ps(s, _mm512_div_ps(sums16(acc), _mm512_set1_ps(norm)));
}

/*
 * e^x over 16 lanes: x = n ln 2 + r, |r| <= ln 2 / 2, e^r by its Taylor polynomial to r^7 (relative error below
 * 2e-7 there), scaled by 2^n. Inputs here are scores minus their maximum (x <= 0); below -87 the result is 0 or a
 * denormal as e^x is, and softmax's weights there do not matter.
 */
static inline __m512 exp16(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}
#endif

/* In place: the softmax of s[0..count). */
static void softmax(float *s, int64_t count) {
    float max = s[0];
    int64_t t = 0;
#ifdef __AVX512F__
    if (count >= 16) { /* one chain of scalar maxima waited on each one: a fifth of attention's time */
        __m512 m16 = _mm512_loadu_ps(s);
        for (t = 16; t + 16 <= count; t += 16) {
            m16 = _mm512_max_ps(m16, _mm512_loadu_ps(s + t));
        }
        max = _mm512_reduce_max_ps(m16);
    }
#endif
    for (; t < count; t++) {
        max = s[t] > max ? s[t] : max;
    }
    float sum = 0.0f;
    t = 0;
#ifdef __AVX512F__
    __m512 m = _mm512_set1_ps(max), total = _mm512_setzero_ps();
    for (; t + 16 <= count; t += 16) {
        __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(s + t), m));
        _mm512_storeu_ps(s + t, e);
        total = _mm512_add_ps(total, e);
    }
    sum = _mm512_reduce_add_ps(total);
#endif
    for (; t < count; t++) {
        s[t] = expf(s[t] - max);
        sum += s[t];
    }
    float inverse = 1.0f / sum;
    for (t = 0; t < count; t++) {
        s[t] *= inverse;
    }
}

/* out[0..n) = sum_t w[t] v[t * stride ..] over count positions. */
static void weighted_sum(const float *w, const float *v, int64_t stride, int64_t count, int64_t n, float *out) {
    memset(out, 0, (size_t) n * sizeof(float));
    for (int64_t t = 0; t < count; t++) {
        for (int64_t i = 0; i < n; i++) {
            out[i] += w[t] * v[t * stride + i];
        }
    }
}

#ifdef __AVX512F__
/* weighted_sum for two heads (weights wa, wb; outputs oa, ob) over heads of 64 floats: each value loaded once. */
static void weighted_sums2_64(const float *wa, const float *wb, const float *v, int64_t stride, int64_t count,
                              float *oa, float *ob) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int64_t t = 0; t < count; t++) {
        const float *row = v + t * stride;
        __m512 x = _mm512_set1_ps(wa[t]), y = _mm512_set1_ps(wb[t]);
        __m512 v0 = _mm512_loadu_ps(row), v1 = _mm512_loadu_ps(row + 16);
        __m512 v2 = _mm512_loadu_ps(row + 32), v3 = _mm512_loadu_ps(row + 48);
        a0 = _mm512_fmadd_ps(x, v0, a0);
        a1 = _mm512_fmadd_ps(x, v1, a1);
        a2 = _mm512_fmadd_ps(x, v2, a2);
        a3 = _mm512_fmadd_ps(x, v3, a3);
        b0 = _mm512_fmadd_ps(y, v0, b0);
        b1 = _mm512_fmadd_ps(y, v1, b1);
        b2 = _mm512_fmadd_ps(y, v2, b2);
        b3 = _mm512_fmadd_ps(y, v3, b3);
    }
    _mm512_storeu_ps(oa, a0);
    _mm512_storeu_ps(oa + 16, a1);
    _mm512_storeu_ps(oa + 32, a2);
    _mm512_storeu_ps(oa + 48, a3);
    _mm512_storeu_ps(ob, b0);
    _mm512_storeu_ps(ob + 16, b1);
    _mm512_storeu_ps(ob + 32, b2);
    _mm512_storeu_ps(ob + 48, b3);
}

/* weighted_sum over heads of whole 16-float vectors. */
static void weighted_sum16(const float *w, const float *v, int64_t stride, int64_t count, int64_t n, float *out) {
    for (int64_t i = 0; i < n; i += 16) {
        __m512 acc = _mm512_setzero_ps();
        for (int64_t t = 0; t < count; t++) {
            acc = _mm512_fmadd_ps(_mm512_set1_ps(w[t]), _mm512_loadu_ps(v + t * stride + i), acc);
        }
        _mm512_storeu_ps(out + i, acc);
    }
}
#endif

/* kv_mul query heads of one token that share a KV head (all of them, or one): at q, keys and values offset to
   the KV head, out at the first of the heads, positions [0, count). Each head's arithmetic is the same whichever
   heads share the call (the two-head weighted sums add in the one-head order), so results do not depend on it. */
static void attend_group(const float *q, const float *keys, const float *values, float *out, int64_t kv_dim,
                         int64_t head_size, int32_t kv_mul, int64_t count, float *scores) {
    const float norm = sqrtf((float) head_size);
#ifdef __AVX512F__
    const int whole = head_size % 16 == 0; /* heads of whole vectors */
    const int scores_by_16 = whole && head_size <= 16 * Q_VECTORS;
#endif
    for (int64_t t0 = 0; t0 < count; t0 += SCORE_BLOCK) {
        int64_t n = count - t0 < SCORE_BLOCK ? count - t0 : SCORE_BLOCK;
        for (int32_t j = 0; j < kv_mul; j++) {
            float *s = scores + j * count + t0;
            const float *qj = q + j * head_size;
#ifdef __AVX512F__
            if (scores_by_16 && n == SCORE_BLOCK) {
                switch (head_size) { /* the common sizes with constant loops */
                    case 64: scores16(qj, keys + t0 * kv_dim, kv_dim, 4, norm, s); break;
                    case 128: scores16(qj, keys + t0 * kv_dim, kv_dim, 8, norm, s); break;
                    default: scores16(qj, keys + t0 * kv_dim, kv_dim, (int) (head_size / 16), norm, s); break;
                }
                continue;
            }
#endif
            for (int64_t t = 0; t < n; t++) {
                s[t] = dot(qj, keys + (t0 + t) * kv_dim, head_size) / norm;
            }
        }
    }
    for (int32_t j = 0; j < kv_mul; j++) {
        softmax(scores + j * count, count);
    }
    int32_t j = 0;
#ifdef __AVX512F__
    if (head_size == 64) {
        for (; j + 2 <= kv_mul; j += 2) {
            weighted_sums2_64(scores + j * count, scores + (j + 1) * count, values, kv_dim, count,
                              out + j * head_size, out + (j + 1) * head_size);
        }
    }
    if (whole) {
        for (; j < kv_mul; j++) {
            weighted_sum16(scores + j * count, values, kv_dim, count, head_size, out + j * head_size);
        }
    }
#endif
    for (; j < kv_mul; j++) {
        weighted_sum(scores + j * count, values, kv_dim, count, head_size, out + j * head_size);
    }
}

void BP_FN(_attention)(const float *q, const float *keys, const float *values, float *out, const int32_t *positions,
                       int32_t n_heads, int32_t n_kv_heads, int64_t head_size, int32_t unit_heads, int64_t unit_start,
                       int64_t unit_end, float *scores) {
    const int32_t kv_mul = n_heads / n_kv_heads;
    const int64_t query_dim = (int64_t) n_heads * head_size, kv_dim = (int64_t) n_kv_heads * head_size;
    for (int64_t u = unit_start; u < unit_end; u++) {
        int64_t b = u * unit_heads / n_heads, head = u * unit_heads % n_heads; /* the unit's token, first head */
        int64_t first = b * query_dim + head * head_size;
        attend_group(q + first, keys + head / kv_mul * head_size, values + head / kv_mul * head_size, out + first,
                     kv_dim, head_size, unit_heads, (int64_t) positions[b] + 1, scores);
    }
}
