package io.bitplane.format.importer;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * ggml's blocks whose values are {@code scale * code - min} per group of 16 or 32 values: Q5_0, Q5_1 and IQ4_NL
 * (one group a block) and the k-quants Q2_K..Q6_K and IQ4_XS (256-value super-blocks whose groups' scales and mins
 * are the block's f16 {@code d} and {@code dmin} times small integer sub-scales). IQ4_NL's and IQ4_XS's codes index
 * a grid of 16 int8 values ({@link #IQ4_GRID}), and the code is the grid's value. {@link #decode} unpacks one block into codes and each
 * group's scale and min, computed in f32 as ggml's {@code dequantize_row_*} computes them, so that
 * {@code scale * code - min} is ggml's value bit for bit (the fixture test holds it to ggml's output).
 *
 * <p>Block layouts (ggml-common.h; f16 little-endian; offsets in bytes):
 * <pre>
 * Q5_0  22 B / 32:  d@0, qh[4]@2, qs[16]@6          code j = (qs[j%16] nibble j/16 | bit j of qh << 4) - 16
 * Q5_1  24 B / 32:  d@0, m@2, qh[4]@4, qs[16]@8     same codes without the -16; value = d * code + m
 * Q2_K  84 B / 256: scales[16]@0 (low nibble: sub-scale, high: sub-min), qs[64]@16, d@80, dmin@82; groups of 16,
 *                   2-bit codes: value 128h + 32j + 16s + l is bits 2j of qs[32h + 16s + l]
 * Q3_K 110 B / 256: hmask[32]@0, qs[64]@32, scales[12]@96 (sixteen 6-bit sub-scales, biased by 32), d@108; groups
 *                   of 16, 2-bit codes as Q2_K, minus 4 where the value's bit (4h + j) of hmask[16s + l] is clear
 * Q4_K 144 B / 256: d@0, dmin@2, scales[12]@4 (eight 6-bit sub-scales and sub-mins), qs[128]@16; groups of 32:
 *                   value 64j + 32s + l is nibble s of qs[32j + l]
 * Q5_K 176 B / 256: d@0, dmin@2, scales[12]@4, qh[32]@16, qs[128]@48; Q4_K's codes plus 16 where bit 2j + s of
 *                   qh[l] is set
 * Q6_K 210 B / 256: ql[128]@0, qh[64]@128, scales[16]@192 (int8), d@208; groups of 16, codes minus 32: value
 *                   128h + 32k + l is nibble k/2 of ql[64h + 32(k%2) + l] | bits 2k of qh[32h + l] << 4
 * IQ4_NL 18 B / 32: d@0, qs[16]@2                    code j = grid[qs[j%16] nibble j/16]
 * IQ4_XS 136 B / 256: d@0, scales_h (u16)@2, scales_l[4]@4, qs[128]@8; groups of 32 with 6-bit sub-scales (nibble
 *                   g%2 of scales_l[g/2] | bits 2g of scales_h << 4) biased by 32; group g is IQ4_NL's qs[16g..]
 * </pre>
 */
final class GgmlSubBlocks {
    private GgmlSubBlocks() {
    }

    private static final ValueLayout.OfShort SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** kvalues_iq4nl of ggml-common.h: the values IQ4_NL's and IQ4_XS's nibbles stand for. */
    private static final int[] IQ4_GRID = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

    /** Whether {@link #decode} takes this type. */
    static boolean handles(GgmlType type) {
        return switch (type) {
            case Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS -> true;
            default -> false;
        };
    }

    /** Values a group: 16 for Q2_K, Q3_K and Q6_K, else 32. */
    static int groupSize(GgmlType type) {
        return type == GgmlType.Q2_K || type == GgmlType.Q3_K || type == GgmlType.Q6_K ? 16 : 32;
    }

    /**
     * Unpacks the block at {@code at}: {@code codes[type.blockSize]}, and per group {@code scales} and {@code mins}
     * (zero for the symmetric types), such that value i is {@code scales[g] * codes[i] - mins[g]}, g = i / group.
     */
    static void decode(GgmlType type, MemorySegment data, long at, int[] codes, float[] scales, float[] mins) {
        switch (type) {
            case Q5_0 -> {
                fiveBitCodes(data, at + 2, at + 6, codes, -16);
                scales[0] = half(data, at);
                mins[0] = 0f;
            }
            case Q5_1 -> {
                fiveBitCodes(data, at + 4, at + 8, codes, 0);
                scales[0] = half(data, at);
                mins[0] = -half(data, at + 2);  // ggml adds m; x - (-m) is x + m exactly
            }
            case Q2_K -> q2k(data, at, codes, scales, mins);
            case Q3_K -> q3k(data, at, codes, scales, mins);
            case Q4_K, Q5_K -> q45k(type, data, at, codes, scales, mins);
            case Q6_K -> q6k(data, at, codes, scales, mins);
            case IQ4_NL -> {
                iq4Codes(data, at + 2, codes, 0);
                scales[0] = half(data, at);
                mins[0] = 0f;
            }
            case IQ4_XS -> {
                float d = half(data, at);
                int high = Short.toUnsignedInt(data.get(SHORT, at + 2));
                for (int g = 0; g < 8; g++) {
                    int ls = (u8(data, at + 4 + g / 2) >>> (4 * (g % 2)) & 0xF) | (high >>> (2 * g) & 3) << 4;
                    scales[g] = d * (ls - 32);
                    mins[g] = 0f;
                    iq4Codes(data, at + 8 + 16 * g, codes, 32 * g);
                }
            }
            default -> throw new IllegalArgumentException(type + " is not a sub-block type");
        }
    }

    /** ggml's dequantization of {@code count} values: {@code scale * code - min} in f32, block by block. */
    static float[] dequantize(GgmlType type, MemorySegment data, long count) {
        int group = groupSize(type);
        int[] codes = new int[type.blockSize];
        float[] scales = new float[type.blockSize / group];
        float[] mins = new float[scales.length];
        float[] out = new float[Math.toIntExact(count)];
        for (int b = 0; b < count / type.blockSize; b++) {
            decode(type, data, (long) b * type.blockBytes, codes, scales, mins);
            for (int i = 0; i < codes.length; i++) {
                out[b * type.blockSize + i] = scales[i / group] * codes[i] - mins[i / group];
            }
        }
        return out;
    }

    /** 32 values from 16 bytes: value j is the grid's entry at the low nibble of byte j, value j + 16 the high. */
    private static void iq4Codes(MemorySegment data, long qs, int[] codes, int first) {
        for (int j = 0; j < 16; j++) {
            int q = u8(data, qs + j);
            codes[first + j] = IQ4_GRID[q & 0xF];
            codes[first + j + 16] = IQ4_GRID[q >>> 4];
        }
    }

    private static void fiveBitCodes(MemorySegment data, long qhAt, long qsAt, int[] codes, int bias) {
        int qh = data.get(INT, qhAt);
        for (int j = 0; j < 16; j++) {
            int q = u8(data, qsAt + j);
            codes[j] = ((q & 0xF) | (qh >>> j & 1) << 4) + bias;
            codes[j + 16] = ((q >>> 4) | (qh >>> (j + 16) & 1) << 4) + bias;
        }
    }

    private static void q2k(MemorySegment data, long at, int[] codes, float[] scales, float[] mins) {
        float d = half(data, at + 80);
        float dmin = half(data, at + 82);
        for (int g = 0; g < 16; g++) {
            int sc = u8(data, at + g);
            scales[g] = d * (sc & 0xF);
            mins[g] = dmin * (sc >>> 4);
        }
        for (int h = 0; h < 2; h++) {
            for (int j = 0; j < 4; j++) {
                for (int i = 0; i < 32; i++) {
                    codes[128 * h + 32 * j + i] = u8(data, at + 16 + 32 * h + i) >>> (2 * j) & 3;
                }
            }
        }
    }

    private static void q3k(MemorySegment data, long at, int[] codes, float[] scales, float[] mins) {
        float d = half(data, at + 108);
        for (int g = 0; g < 16; g++) {
            int low = u8(data, at + 96 + g % 8) >>> (g < 8 ? 0 : 4) & 0xF;
            int high = u8(data, at + 96 + 8 + g % 4) >>> (2 * (g / 4)) & 3;
            scales[g] = d * ((low | high << 4) - 32);
            mins[g] = 0f;
        }
        for (int h = 0; h < 2; h++) {
            for (int j = 0; j < 4; j++) {
                int mask = 1 << (4 * h + j);
                for (int i = 0; i < 32; i++) {
                    int q = u8(data, at + 32 + 32 * h + i) >>> (2 * j) & 3;
                    codes[128 * h + 32 * j + i] = q - ((u8(data, at + i) & mask) != 0 ? 0 : 4);
                }
            }
        }
    }

    private static void q45k(GgmlType type, MemorySegment data, long at, int[] codes, float[] scales, float[] mins) {
        float d = half(data, at);
        float dmin = half(data, at + 2);
        long packed = at + 4;
        for (int g = 0; g < 8; g++) {
            int sc;
            int m;
            if (g < 4) {  // get_scale_min_k4: the first four in the low 6 bits of bytes 0-3 and 4-7
                sc = u8(data, packed + g) & 63;
                m = u8(data, packed + g + 4) & 63;
            } else {      // the last four: a nibble of bytes 8-11 below the top two bits of bytes 0-3 and 4-7
                sc = (u8(data, packed + g + 4) & 0xF) | (u8(data, packed + g - 4) >>> 6) << 4;
                m = (u8(data, packed + g + 4) >>> 4) | (u8(data, packed + g) >>> 6) << 4;
            }
            scales[g] = d * sc;
            mins[g] = dmin * m;
        }
        boolean five = type == GgmlType.Q5_K;
        long qs = at + (five ? 48 : 16);
        for (int j = 0; j < 4; j++) {
            for (int i = 0; i < 32; i++) {
                int q = u8(data, qs + 32 * j + i);
                int high = five ? u8(data, at + 16 + i) >>> (2 * j) : 0;
                codes[64 * j + i] = (q & 0xF) | (high & 1) << 4;
                codes[64 * j + 32 + i] = (q >>> 4) | (high >>> 1 & 1) << 4;
            }
        }
    }

    private static void q6k(MemorySegment data, long at, int[] codes, float[] scales, float[] mins) {
        float d = half(data, at + 208);
        for (int g = 0; g < 16; g++) {
            scales[g] = d * data.get(ValueLayout.JAVA_BYTE, at + 192 + g);
            mins[g] = 0f;
        }
        for (int h = 0; h < 2; h++) {
            for (int k = 0; k < 4; k++) {
                for (int i = 0; i < 32; i++) {
                    int low = u8(data, at + 64 * h + 32 * (k % 2) + i) >>> (4 * (k / 2)) & 0xF;
                    int high = u8(data, at + 128 + 32 * h + i) >>> (2 * k) & 3;
                    codes[128 * h + 32 * k + i] = (low | high << 4) - 32;
                }
            }
        }
    }

    private static float half(MemorySegment data, long at) {
        return Float.float16ToFloat(data.get(SHORT, at));
    }

    private static int u8(MemorySegment data, long at) {
        return Byte.toUnsignedInt(data.get(ValueLayout.JAVA_BYTE, at));
    }
}
