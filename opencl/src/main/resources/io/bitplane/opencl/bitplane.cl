/*
 * Bitplane's OpenCL kernels: every op of one Llama decoder step, so that a whole step stays on the device.
 * OpenCL C 1.2, no extensions: the same source runs on PoCL (CPU) and on GPU drivers.
 *
 * Memory layout of the weights on the device (one buffer per tensor; offsets in bytes from its start):
 *   F32 / F16 / BF16  row n at element n*K (f16 read with vload_half, bf16 as the high half of a float)
 *   INT8              int8 q at byte n*K + k
 *   packed codes      INT4, INT4_ASYM and TERNARY are always in layout 1 on the device (FORMAT.md section 5; files
 *                     in layout 0 are re-laid by repack_planes at upload): rows of rowBytes, 32-byte blocks of
 *                     V = 256/b values; value j of a block is field j/32 (b bits) of byte j%32. Field f means code
 *                     f-8 (INT4), f (INT4_ASYM), f-1 (TERNARY).
 *   BINARY            one bit plane: 64-bit word n*W + k/64, bit k%64 set means -1, clear +1 (W = ceil(K/64))
 *   scales, mins      f16 at scalesOffset + 2*(n*groups + g) (and minsOffset), g = k / groupSize
 *
 * Activations are [batch][K] floats, outputs [batch][N] floats. With INT8 activations a token is first quantized by
 * quantize_int8 to [batch][K] chars and [batch] scales.
 *
 * Arithmetic order (Backend's javadoc is the contract): each group's integer sum is exact; the float terms of the
 * groups are added in ascending group order, then multiplied by the token scale, with no fused multiply-adds, so
 * integer paths equal the Java reference bit for bit. Build with -cl-fp32-correctly-rounded-divide-sqrt so that
 * quantize_int8's divisions round as Java's do.
 */
#pragma OPENCL FP_CONTRACT OFF

#define ENC_F32 0
#define ENC_F16 1
#define ENC_BF16 2
#define ENC_INT8 3
#define ENC_INT4 4
#define ENC_INT4_ASYM 5
#define ENC_TERNARY 6
#define ENC_BINARY 7

/* Tokens one work-item multiplies with each decoded chunk of its row. */
#define TOKENS 4

/* Bits per packed field and the code of field 0. */
#define FIELD_BITS(enc) ((enc) == ENC_TERNARY ? 2 : 4)
#define FIELD_OFFSET(enc) ((enc) == ENC_INT4 ? 8 : (enc) == ENC_TERNARY ? 1 : 0)

/* ---------------------------------------------------------------------------------------------------------------
 * Reading codes and values
 * ------------------------------------------------------------------------------------------------------------- */

/* The integer code of value col of a row that starts at byte row_at (INT8, packed) or word row_word (BINARY). */
inline int code_at(global const uchar *w, const int enc, ulong row_at, int col) {
    if (enc == ENC_INT8) {
        return ((global const char *) w)[row_at + col];
    }
    if (enc == ENC_BINARY) {
        ulong word = ((global const ulong *) w)[row_at / 8 + col / 64];
        return (int) ((word >> (col % 64)) & 1) ? -1 : 1;
    }
    const int b = FIELD_BITS(enc);
    const int v = 256 / b;
    int j = col % v;
    uchar field = (w[row_at + (col / v) * 32 + j % 32] >> ((j / 32) * b)) & ((1 << b) - 1);
    return (int) field - FIELD_OFFSET(enc);
}

/* Codes of values col .. col+15 (col a multiple of 16). */
inline short16 codes16(global const uchar *w, const int enc, ulong row_at, int col) {
    if (enc == ENC_INT8) {
        return convert_short16(vload16(0, (global const char *) (w + row_at + col)));
    }
    if (enc == ENC_BINARY) {
        ulong word = ((global const ulong *) w)[row_at / 8 + col / 64];
        short bits = (short) ((word >> (col % 64)) & 0xffff);
        const short16 lane = (short16) (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        short16 set = ((short16) bits >> lane) & (short16) 1;
        return (short16) 1 - (set << 1);
    }
    const int b = FIELD_BITS(enc);
    const int v = 256 / b;
    int j = col % v;
    uchar16 bytes = vload16(0, w + row_at + (col / v) * 32 + j % 32);
    uchar16 fields = (bytes >> (uchar16) ((j / 32) * b)) & (uchar16) ((1 << b) - 1);
    return convert_short16(fields) - (short16) FIELD_OFFSET(enc);
}

/* Where row n starts: bytes for INT8 and packed rows, bytes of its first plane word for BINARY. */
inline ulong row_start(const int enc, long n, int cols, int row_bytes) {
    if (enc == ENC_INT8) {
        return (ulong) n * cols;
    }
    return (ulong) n * row_bytes;
}

inline float scale_at(global const uchar *w, ulong offset, long index) {
    return vload_half(0, (global const half *) (w + offset) + index);
}

/* Value col of row n of any encoding, as the reference Dequantizer computes it. */
inline float value_at(global const uchar *w, int enc, long n, int cols, int row_bytes, int group_size,
                      int groups, ulong scales_at, ulong mins_at, int col) {
    long i = n * cols + col;
    switch (enc) {
        case ENC_F32:
            return ((global const float *) w)[i];
        case ENC_F16:
            return vload_half(0, (global const half *) w + i);
        case ENC_BF16:
            return as_float(((uint) ((global const ushort *) w)[i]) << 16);
        default: {
            long g = n * groups + col / group_size;
            float s = scale_at(w, scales_at, g);
            int code = code_at(w, enc, row_start(enc, n, cols, row_bytes), col);
            return enc == ENC_INT4_ASYM ? code * s + scale_at(w, mins_at, g) : code * s;
        }
    }
}

/* ---------------------------------------------------------------------------------------------------------------
 * Upload: layout 0 bit planes to layout 1 packed codes (INT4, INT4_ASYM, TERNARY). One work-item per 32-byte block.
 * Planes: word (n*P + p)*W + k/64, bit k%64 is bit p of value k's code; TERNARY planes are mask and sign.
 * ------------------------------------------------------------------------------------------------------------- */
kernel void repack_planes(global const ulong *planes, global uchar *packed, int enc, int cols, int words,
                          int row_bytes) {
    const int n = get_global_id(1);
    const int block = get_global_id(0);
    const int b = FIELD_BITS(enc);
    const int v = 256 / b;
    const int p = enc == ENC_TERNARY ? 2 : 4;
    global const ulong *row = planes + (ulong) n * p * words;
    for (int j = 0; j < 32; j++) {
        uchar out = 0;
        for (int s = 0; s < v / 32; s++) {
            int col = block * v + s * 32 + j;
            if (col < cols) {
                int word = col / 64;
                int bit = col % 64;
                int field;
                if (enc == ENC_TERNARY) {
                    int mask = (row[word] >> bit) & 1;
                    int sign = (row[words + word] >> bit) & 1;
                    field = mask ? (sign ? 0 : 2) : 1;
                } else {
                    field = 0;
                    for (int q = 0; q < 4; q++) {
                        field |= (int) ((row[q * words + word] >> bit) & 1) << q;
                    }
                }
                out |= (uchar) (field << (s * b));
            }
        }
        packed[(ulong) n * row_bytes + block * 32 + j] = out;
    }
}

/* ---------------------------------------------------------------------------------------------------------------
 * Per-token INT8 quantization of activations (Java's ActivationQuantizer): s = max|x| / 127, q = round(x / s)
 * (half away from zero upward, as Math.round), clamped to [-127, 127]. One work-group per token.
 * ------------------------------------------------------------------------------------------------------------- */
inline float java_round(float v) {
    float f = floor(v);
    return v - f >= 0.5f ? f + 1.0f : f; /* v - floor(v) is exact, so ties go up as Math.round's do */
}

kernel void quantize_int8(global const float *x, global char *q, global float *scales, int k,
                          local float *partial) {
    const int token = get_group_id(0);
    const int lid = get_local_id(0);
    const int size = get_local_size(0);
    global const float *in = x + (ulong) token * k;
    float amax = 0.0f;
    for (int i = lid; i < k; i += size) {
        amax = fmax(amax, fabs(in[i]));
    }
    partial[lid] = amax;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int half_size = size / 2; half_size > 0; half_size /= 2) {
        if (lid < half_size) {
            partial[lid] = fmax(partial[lid], partial[lid + half_size]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float scale = partial[0] / 127.0f;
    if (lid == 0) {
        scales[token] = scale;
    }
    global char *out = q + (ulong) token * k;
    for (int i = lid; i < k; i += size) {
        out[i] = scale == 0.0f ? 0 : (char) clamp(java_round(in[i] / scale), -127.0f, 127.0f);
    }
}

/*
 * Binary activations (XNOR-Net) as codes: -1 where x < 0, else +1, and one scale per token, mean |x|, summed in the
 * reference's order (ActivationQuantizer.meanAbs: eight running sums over whole blocks of eight, paired
 * ((0+4)+(2+6))+((1+5)+(3+7)), then the rest in order) by work-item 0, so the scale is the reference's bit for bit.
 */
kernel void binarize(global const float *x, global char *q, global float *scales, int k, local float *unused) {
    const int token = get_group_id(0);
    const int lid = get_local_id(0);
    const int size = get_local_size(0);
    global const float *in = x + (ulong) token * k;
    if (lid == 0) {
        float s[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
        const int upper = k - k % 8;
        for (int i = 0; i < upper; i += 8) {
            for (int j = 0; j < 8; j++) {
                s[j] += fabs(in[i + j]);
            }
        }
        float sum = ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
        for (int i = upper; i < k; i++) {
            sum += fabs(in[i]);
        }
        scales[token] = k == 0 ? 0.0f : sum / (float) k;
    }
    global char *out = q + (ulong) token * k;
    for (int i = lid; i < k; i += size) {
        out[i] = in[i] < 0.0f ? -1 : 1;
    }
}

/* ---------------------------------------------------------------------------------------------------------------
 * Matrix products. One work-item computes one row for up to TOKENS tokens, decoding each chunk of 16 weights once.
 * Global size: (N, ceil(batch / TOKENS)).
 * ------------------------------------------------------------------------------------------------------------- */

/* Sum of the 16 lanes of an exact integer accumulator. */
inline int sum16(int16 v) {
    int8 a = v.lo + v.hi;
    int4 b = a.lo + a.hi;
    int2 c = b.lo + b.hi;
    return c.x + c.y;
}

inline float fsum16(float16 v) {
    float8 a = v.lo + v.hi;
    float4 b = a.lo + a.hi;
    float2 c = b.lo + b.hi;
    return c.x + c.y;
}

/* Float weights i .. i+15 (F32, F16 or BF16) as floats. */
inline float16 float_weights16(global const uchar *w, const int enc, long i) {
    if (enc == ENC_F32) {
        return vload16(0, (global const float *) w + i);
    }
    if (enc == ENC_F16) {
        return vload_half16(0, (global const half *) w + i);
    }
    return as_float16(convert_uint16(vload16(0, (global const ushort *) w + i)) << 16);
}

/* Float weights: y[b][n] = sum_k w[n][k] x[b][k]. */
kernel void matmul_float(global const uchar *w, int enc, global const float *x, global float *y, int rows,
                         int cols, int batch) {
    const int n = get_global_id(0);
    const int t0 = get_global_id(1) * TOKENS;
    const int tokens = min(TOKENS, batch - t0);
    float16 acc[TOKENS];
    float tail[TOKENS];
    for (int t = 0; t < TOKENS; t++) {
        acc[t] = (float16) 0.0f;
        tail[t] = 0.0f;
    }
    const long base = (long) n * cols;
    int k = 0;
    for (; k + 16 <= cols; k += 16) {
        float16 wv = float_weights16(w, enc, base + k);
        for (int t = 0; t < tokens; t++) {
            acc[t] += wv * vload16(0, x + (long) (t0 + t) * cols + k);
        }
    }
    for (; k < cols; k++) {
        float wk = value_at(w, enc, n, cols, 0, 1, 1, 0, 0, k);
        for (int t = 0; t < tokens; t++) {
            tail[t] += wk * x[(long) (t0 + t) * cols + k];
        }
    }
    for (int t = 0; t < tokens; t++) {
        float16 a = acc[t];
        float8 s8 = a.lo + a.hi;
        float4 s4 = s8.lo + s8.hi;
        float2 s2 = s4.lo + s4.hi;
        y[(long) (t0 + t) * rows + n] = (s2.x + s2.y) + tail[t];
    }
}

/*
 * Float weights with a work-group per row, for GPUs: work-item i takes units i, i + size, ... of 16 values
 * (neighbouring items read neighbouring memory), then one work-item per token adds the items' partial sums in item
 * order, so a token's result does not depend on the batch. partial: TOKENS * local size floats of local memory.
 */
kernel void matmul_float_wg(global const uchar *w, int enc, global const float *x, global float *y, int rows,
                            int cols, int batch, local float *partial) {
    const int n = get_group_id(0);
    const int t0 = get_group_id(1) * TOKENS;
    const int tokens = min(TOKENS, batch - t0);
    const int lid = get_local_id(0);
    const int size = get_local_size(0);
    float acc[TOKENS];
    for (int t = 0; t < TOKENS; t++) {
        acc[t] = 0.0f;
    }
    const long base = (long) n * cols;
    for (int unit = lid; unit * 16 < cols; unit += size) {
        const int k0 = unit * 16;
        if (k0 + 16 <= cols) {
            float16 wv = float_weights16(w, enc, base + k0);
            for (int t = 0; t < tokens; t++) {
                acc[t] += fsum16(wv * vload16(0, x + (long) (t0 + t) * cols + k0));
            }
        } else {
            for (int k = k0; k < cols; k++) {
                float wk = value_at(w, enc, n, cols, 0, 1, 1, 0, 0, k);
                for (int t = 0; t < tokens; t++) {
                    acc[t] += wk * x[(long) (t0 + t) * cols + k];
                }
            }
        }
    }
    for (int t = 0; t < TOKENS; t++) {
        partial[t * size + lid] = acc[t];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < tokens) {
        float sum = 0.0f;
        for (int i = 0; i < size; i++) {
            sum += partial[lid * size + i];
        }
        y[(long) (t0 + lid) * rows + n] = sum;
    }
}

/*
 * Exact integer sums over columns [start, end) of one row (inside one group) for `tokens` tokens: acc[t] = sum code
 * * q, qsum[t] = sum q. Whole chunks of 16 where a chunk lies inside the range, single values elsewhere, so a group
 * that is not a multiple of 16 still reads each value once.
 */
inline void range_sums_i8(global const uchar *w, const int enc, global const char *q, ulong row_at, int cols,
                          int start, int end, int t0, int tokens, int *acc, int *qsum) {
    const bool asym = enc == ENC_INT4_ASYM;
    int16 acc16[TOKENS];
    int16 qsum16[TOKENS];
    for (int t = 0; t < TOKENS; t++) {
        acc16[t] = (int16) 0;
        qsum16[t] = (int16) 0;
        acc[t] = 0;
        qsum[t] = 0;
    }
    for (int k = start; k < end;) {
        if (k % 16 == 0 && k + 16 <= end) {
            short16 c = codes16(w, enc, row_at, k);
            for (int t = 0; t < tokens; t++) {
                short16 qv = convert_short16(vload16(0, q + (long) (t0 + t) * cols + k));
                acc16[t] += convert_int16(c * qv);
                if (asym) {
                    qsum16[t] += convert_int16(qv);
                }
            }
            k += 16;
        } else {
            int c = code_at(w, enc, row_at, k);
            for (int t = 0; t < tokens; t++) {
                int qv = q[(long) (t0 + t) * cols + k];
                acc[t] += c * qv;
                qsum[t] += qv;
            }
            k++;
        }
    }
    for (int t = 0; t < tokens; t++) {
        acc[t] += sum16(acc16[t]);
        if (asym) {
            qsum[t] += sum16(qsum16[t]);
        }
    }
}

/* A group's float term from its exact sums, as the reference forms it: s_g * acc (+ m_g * qsum). */
inline float term_i8(float s, float m, bool asym, int acc, int qsum) {
    float term = s * (float) acc;
    if (asym) {
        term = term + m * (float) qsum;
    }
    return term;
}

/*
 * Quantized weights with INT8 activations (q, token scales from quantize_int8): per group an exact integer sum of
 * code * q (and, for INT4_ASYM, of q), then sum += s_g * acc (+ m_g * qsum) in group order; y = sum * s_x.
 */
inline void matmul_int8_act(global const uchar *w, const int enc, global const char *q,
                            global const float *token_scales, global float *y, int rows, int cols, int batch,
                            int row_bytes, int group_size, int groups, ulong scales_at, ulong mins_at) {
    const int n = get_global_id(0);
    const int t0 = get_global_id(1) * TOKENS;
    const int tokens = min(TOKENS, batch - t0);
    const ulong row_at = row_start(enc, n, cols, row_bytes);
    const bool asym = enc == ENC_INT4_ASYM;
    float sum[TOKENS];
    for (int t = 0; t < TOKENS; t++) {
        sum[t] = 0.0f;
    }
    for (int g = 0; g < groups; g++) {
        int acc[TOKENS];
        int qsum[TOKENS];
        range_sums_i8(w, enc, q, row_at, cols, g * group_size, min(cols, (g + 1) * group_size), t0, tokens, acc,
                      qsum);
        const long gi = (long) n * groups + g;
        const float s = scale_at(w, scales_at, gi);
        const float m = asym ? scale_at(w, mins_at, gi) : 0.0f;
        for (int t = 0; t < tokens; t++) {
            sum[t] += term_i8(s, m, asym, acc[t], qsum[t]);
        }
    }
    for (int t = 0; t < tokens; t++) {
        y[(long) (t0 + t) * rows + n] = sum[t] * token_scales[t0 + t];
    }
}

/*
 * The same product with a work-group per row (and tile of tokens), for GPUs: neighbouring work-items read
 * neighbouring 16-value units of the row, adding their exact integer sums into the group's slot in local memory
 * (integer atomics: any order gives the same sums); then one work-item per token adds the groups' terms in group
 * order, so the result equals matmul_int8_act's bit for bit. sums: 2 * TOKENS * groups ints of local memory.
 */
inline void matmul_int8_act_wg(global const uchar *w, const int enc, global const char *q,
                               global const float *token_scales, global float *y, int rows, int cols, int batch,
                               int row_bytes, int group_size, int groups, ulong scales_at, ulong mins_at,
                               local int *sums) {
    const int n = get_group_id(0);
    const int t0 = get_group_id(1) * TOKENS;
    const int tokens = min(TOKENS, batch - t0);
    const int lid = get_local_id(0);
    const int size = get_local_size(0);
    const ulong row_at = row_start(enc, n, cols, row_bytes);
    const bool asym = enc == ENC_INT4_ASYM;
    local int *qsums = sums + TOKENS * groups;
    for (int i = lid; i < 2 * TOKENS * groups; i += size) {
        sums[i] = 0;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int unit = lid; unit * 16 < cols; unit += size) {
        const int k1 = min(cols, unit * 16 + 16);
        for (int k = unit * 16; k < k1;) { /* a unit that straddles groups is cut at their boundary */
            const int g = k / group_size;
            const int end = min(k1, (g + 1) * group_size);
            int acc[TOKENS];
            int qsum[TOKENS];
            range_sums_i8(w, enc, q, row_at, cols, k, end, t0, tokens, acc, qsum);
            for (int t = 0; t < tokens; t++) {
                atomic_add(sums + t * groups + g, acc[t]);
                if (asym) {
                    atomic_add(qsums + t * groups + g, qsum[t]);
                }
            }
            k = end;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < tokens) {
        float sum = 0.0f;
        for (int g = 0; g < groups; g++) {
            const long gi = (long) n * groups + g;
            const float s = scale_at(w, scales_at, gi);
            const float m = asym ? scale_at(w, mins_at, gi) : 0.0f;
            sum += term_i8(s, m, asym, sums[lid * groups + g], qsums[lid * groups + g]);
        }
        y[(long) (t0 + lid) * rows + n] = sum * token_scales[t0 + lid];
    }
}

/* One group's terms for `tokens` tokens with float activations: s_g * sum code * x (+ m_g * sum x). */
inline void group_terms_f32(global const uchar *w, const int enc, global const float *x, ulong row_at, int cols,
                            int start, int end, int t0, int tokens, float s, float m, float *terms) {
    const bool asym = enc == ENC_INT4_ASYM;
    float16 acc[TOKENS];
    float16 xsum[TOKENS];
    float acc1[TOKENS];
    float xsum1[TOKENS];
    for (int t = 0; t < TOKENS; t++) {
        acc[t] = (float16) 0.0f;
        xsum[t] = (float16) 0.0f;
        acc1[t] = 0.0f;
        xsum1[t] = 0.0f;
    }
    for (int k = start; k < end;) { /* as in range_sums_i8 */
        if (k % 16 == 0 && k + 16 <= end) {
            float16 c = convert_float16(codes16(w, enc, row_at, k));
            for (int t = 0; t < tokens; t++) {
                float16 xv = vload16(0, x + (long) (t0 + t) * cols + k);
                acc[t] += c * xv;
                if (asym) {
                    xsum[t] += xv;
                }
            }
            k += 16;
        } else {
            float c = code_at(w, enc, row_at, k);
            for (int t = 0; t < tokens; t++) {
                float xv = x[(long) (t0 + t) * cols + k];
                acc1[t] += c * xv;
                xsum1[t] += xv;
            }
            k++;
        }
    }
    for (int t = 0; t < tokens; t++) {
        float term = s * (fsum16(acc[t]) + acc1[t]);
        if (asym) {
            term = term + m * (fsum16(xsum[t]) + xsum1[t]);
        }
        terms[t] = term;
    }
}

/* Quantized weights with float activations: the groups' terms added in group order. */
inline void matmul_f32_act(global const uchar *w, const int enc, global const float *x, global float *y, int rows,
                           int cols, int batch, int row_bytes, int group_size, int groups, ulong scales_at,
                           ulong mins_at) {
    const int n = get_global_id(0);
    const int t0 = get_global_id(1) * TOKENS;
    const int tokens = min(TOKENS, batch - t0);
    const ulong row_at = row_start(enc, n, cols, row_bytes);
    float sum[TOKENS];
    for (int t = 0; t < TOKENS; t++) {
        sum[t] = 0.0f;
    }
    for (int g = 0; g < groups; g++) {
        const long gi = (long) n * groups + g;
        float terms[TOKENS];
        group_terms_f32(w, enc, x, row_at, cols, g * group_size, min(cols, (g + 1) * group_size), t0, tokens,
                        scale_at(w, scales_at, gi), enc == ENC_INT4_ASYM ? scale_at(w, mins_at, gi) : 0.0f, terms);
        for (int t = 0; t < tokens; t++) {
            sum[t] += terms[t];
        }
    }
    for (int t = 0; t < tokens; t++) {
        y[(long) (t0 + t) * rows + n] = sum[t];
    }
}

/*
 * The same with a work-group per row: work-item i forms the terms of groups i, i + size, ... (float sums cannot
 * be split without changing their order), then one work-item per token adds them in group order: bit for bit
 * matmul_f32_act's result. terms: TOKENS * groups floats of local memory.
 */
inline void matmul_f32_act_wg(global const uchar *w, const int enc, global const float *x, global float *y,
                              int rows, int cols, int batch, int row_bytes, int group_size, int groups,
                              ulong scales_at, ulong mins_at, local float *terms) {
    const int n = get_group_id(0);
    const int t0 = get_group_id(1) * TOKENS;
    const int tokens = min(TOKENS, batch - t0);
    const int lid = get_local_id(0);
    const ulong row_at = row_start(enc, n, cols, row_bytes);
    for (int g = lid; g < groups; g += get_local_size(0)) {
        const long gi = (long) n * groups + g;
        float group_terms[TOKENS];
        group_terms_f32(w, enc, x, row_at, cols, g * group_size, min(cols, (g + 1) * group_size), t0, tokens,
                        scale_at(w, scales_at, gi), enc == ENC_INT4_ASYM ? scale_at(w, mins_at, gi) : 0.0f,
                        group_terms);
        for (int t = 0; t < tokens; t++) {
            terms[t * groups + g] = group_terms[t];
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid < tokens) {
        float sum = 0.0f;
        for (int g = 0; g < groups; g++) {
            sum += terms[lid * groups + g];
        }
        y[(long) (t0 + lid) * rows + n] = sum;
    }
}

/* One kernel per encoding and activation mode, so that each is compiled for its encoding alone. */
#define QUANTIZED_KERNELS(suffix, enc)                                                                              \
kernel void matmul_##suffix##_int8(global const uchar *w, global const char *q, global const float *token_scales,   \
                                   global float *y, int rows, int cols, int batch, int row_bytes, int group_size,   \
                                   int groups, ulong scales_at, ulong mins_at) {                                    \
    matmul_int8_act(w, enc, q, token_scales, y, rows, cols, batch, row_bytes, group_size, groups, scales_at,        \
                    mins_at);                                                                                       \
}                                                                                                                   \
kernel void matmul_##suffix##_f32(global const uchar *w, global const float *x, global float *y, int rows,         \
                                  int cols, int batch, int row_bytes, int group_size, int groups, ulong scales_at,  \
                                  ulong mins_at) {                                                                  \
    matmul_f32_act(w, enc, x, y, rows, cols, batch, row_bytes, group_size, groups, scales_at, mins_at);            \
}                                                                                                                   \
kernel void matmul_##suffix##_int8_wg(global const uchar *w, global const char *q,                                 \
                                      global const float *token_scales, global float *y, int rows, int cols,       \
                                      int batch, int row_bytes, int group_size, int groups, ulong scales_at,       \
                                      ulong mins_at, local int *sums) {                                            \
    matmul_int8_act_wg(w, enc, q, token_scales, y, rows, cols, batch, row_bytes, group_size, groups, scales_at,     \
                       mins_at, sums);                                                                              \
}                                                                                                                   \
kernel void matmul_##suffix##_f32_wg(global const uchar *w, global const float *x, global float *y, int rows,      \
                                     int cols, int batch, int row_bytes, int group_size, int groups,               \
                                     ulong scales_at, ulong mins_at, local float *terms) {                         \
    matmul_f32_act_wg(w, enc, x, y, rows, cols, batch, row_bytes, group_size, groups, scales_at, mins_at, terms);  \
}

QUANTIZED_KERNELS(int8, ENC_INT8)
QUANTIZED_KERNELS(int4, ENC_INT4)
QUANTIZED_KERNELS(int4_asym, ENC_INT4_ASYM)
QUANTIZED_KERNELS(ternary, ENC_TERNARY)
QUANTIZED_KERNELS(binary, ENC_BINARY)

/* ---------------------------------------------------------------------------------------------------------------
 * The other ops of a decoder step
 * ------------------------------------------------------------------------------------------------------------- */

/* out[out_offset + col] = row `row` of an embedding table, dequantized. One work-item per column. */
kernel void embed(global const uchar *w, int enc, int row, int cols, int row_bytes, int group_size, int groups,
                  ulong scales_at, ulong mins_at, global float *out, int out_offset) {
    const int col = get_global_id(0);
    out[out_offset + col] = value_at(w, enc, row, cols, row_bytes, group_size, groups, scales_at, mins_at, col);
}

/* RMSNorm of each token: out = gamma * (x / sqrt(mean(x^2) + eps)); out may be x. One work-group per token. */
kernel void rms_norm(global float *out, global const float *x, global const uchar *gamma, int gamma_enc, int dim,
                     float eps, local float *partial) {
    const int token = get_group_id(0);
    const int lid = get_local_id(0);
    const int size = get_local_size(0);
    global const float *in = x + (long) token * dim;
    float ss = 0.0f;
    for (int i = lid; i < dim; i += size) {
        ss += in[i] * in[i];
    }
    partial[lid] = ss;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int half_size = size / 2; half_size > 0; half_size /= 2) {
        if (lid < half_size) {
            partial[lid] += partial[lid + half_size];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    float scale = 1.0f / sqrt(partial[0] / dim + eps);
    global float *o = out + (long) token * dim;
    for (int i = lid; i < dim; i += size) {
        o[i] = value_at(gamma, gamma_enc, 0, dim, 0, 1, 1, 0, 0, i) * (scale * in[i]);
    }
}

/*
 * Rotary embeddings in place on [batch][heads * head_size], rotating pairs (2i, 2i+1) of each head by the angle of
 * its position. cos/sin are the host's table (cos[pos * head_size/2 + i]), so every backend rotates identically.
 * Global size: (heads * head_size / 2, batch).
 */
kernel void rope(global float *v, global const int *positions, global const float *cos_table,
                 global const float *sin_table, int heads, int head_size) {
    const int pair = get_global_id(0);
    const int token = get_global_id(1);
    const int half_size = head_size / 2;
    const int i = pair % half_size;
    const long row = (long) positions[token] * half_size;
    global float *at = v + (long) token * heads * head_size + 2 * pair;
    float fcr = cos_table[row + i];
    float fci = sin_table[row + i];
    float v0 = at[0];
    float v1 = at[1];
    at[0] = v0 * fcr - v1 * fci;
    at[1] = v0 * fci + v1 * fcr;
}

/*
 * Causal attention for one (token, head) per work-group: scores q.k / sqrt(head_size) over positions 0..pos into
 * scores[(token * heads + head) * capacity ..], softmax, then out = sum_t p_t v_t. keys and values are
 * [capacity][kv_dim]; query head h reads kv head h / (heads / kv_heads).
 */
kernel void attention(global float *out, global const float *q, global const float *keys,
                      global const float *values, global const int *positions, global float *scores, int heads,
                      int kv_heads, int head_size, int capacity, local float *partial) {
    const int head = get_group_id(0);
    const int token = get_group_id(1);
    const int lid = get_local_id(0);
    const int size = get_local_size(0);
    const int pos = positions[token];
    const int kv_dim = kv_heads * head_size;
    const int kv_offset = (head / (heads / kv_heads)) * head_size;
    global const float *qh = q + (long) token * heads * head_size + head * head_size;
    global float *att = scores + ((long) token * heads + head) * capacity;
    const float norm = sqrt((float) head_size);
    float local_max = -INFINITY;
    for (int t = lid; t <= pos; t += size) {
        global const float *k = keys + (long) t * kv_dim + kv_offset;
        float score = 0.0f;
        for (int i = 0; i < head_size; i++) {
            score += qh[i] * k[i];
        }
        score /= norm;
        att[t] = score;
        local_max = fmax(local_max, score);
    }
    partial[lid] = local_max;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int half_size = size / 2; half_size > 0; half_size /= 2) {
        if (lid < half_size) {
            partial[lid] = fmax(partial[lid], partial[lid + half_size]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float max_score = partial[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    float local_sum = 0.0f;
    for (int t = lid; t <= pos; t += size) {
        float e = exp(att[t] - max_score);
        att[t] = e;
        local_sum += e;
    }
    partial[lid] = local_sum;
    barrier(CLK_LOCAL_MEM_FENCE | CLK_GLOBAL_MEM_FENCE);
    for (int half_size = size / 2; half_size > 0; half_size /= 2) {
        if (lid < half_size) {
            partial[lid] += partial[lid + half_size];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float total = partial[0];
    global float *o = out + (long) token * heads * head_size + head * head_size;
    for (int i = lid; i < head_size; i += size) {
        float acc = 0.0f;
        for (int t = 0; t <= pos; t++) {
            acc += (att[t] / total) * values[(long) t * kv_dim + kv_offset + i];
        }
        o[i] = acc;
    }
}

/* gate = silu(gate) * up. */
kernel void swiglu(global float *gate, global const float *up) {
    const int i = get_global_id(0);
    float g = gate[i];
    gate[i] = g * (1.0f / (1.0f + exp(-g))) * up[i];
}

/* acc += x. */
kernel void add(global float *acc, global const float *x) {
    const int i = get_global_id(0);
    acc[i] += x[i];
}

/* acc[i] += bias[i % n]: a projection's bias added to each token's row of n. One work-item per float. */
kernel void add_bias(global float *acc, global const uchar *bias, int bias_enc, int n) {
    const int i = get_global_id(0);
    acc[i] += value_at(bias, bias_enc, 0, n, 0, 1, 1, 0, 0, i % n);
}
