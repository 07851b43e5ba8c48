package io.bitplane.format.importer;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.Encoding;
import io.bitplane.format.Halfs;
import io.bitplane.format.TensorSpec;
import io.bitplane.format.quant.Quantizer;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Re-lays ggml blocks as .bpm tensors. The types of {@link GgmlType.Fidelity#EXACT} keep every value: the integer
 * codes move into bit planes (or INT8 bytes) and each block's f16 scale (and Q4_1's f16 min) becomes the group's, so
 * the .bpm dequantization computes what ggml's {@code dequantize_row_*} computes, bit for bit. The types of
 * {@link GgmlType.Fidelity#F16_SCALES} (the k-quants, IQ4_XS) keep their codes, and their groups' f32 scales and
 * mins are rounded to f16;
 * Q5_1 and Q5_K, whose 5-bit asymmetric codes no .bpm encoding has, are ggml's values rounded to INT8 groups of 32.
 * The fixture tests hold each to ggml's own dequantization.
 */
final class GgmlToBpm {
    private GgmlToBpm() {
    }

    private static final ValueLayout.OfShort SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final int[] POW3 = {1, 3, 9, 27, 81, 243};

    static EncodedTensor convert(String name, long[] shape, GgmlType type, MemorySegment data) {
        long[] matrix = shape.length == 1 ? new long[] {1, shape[0]} : shape;
        TensorSpec spec = TensorSpec.of(name, type.encoding(), type.bpmSpec.groupSize(),
                type.encoding().quantized ? matrix : shape);
        long n = spec.elementCount();
        switch (type) {
            case F32 -> {
                return new EncodedTensor(spec, data.toArray(ValueLayout.JAVA_BYTE));
            }
            case F16, BF16 -> {
                return EncodedTensor.ofHalfBits(spec, data.toArray(SHORT));
            }
            default -> {
            }
        }
        if (type.fidelity == GgmlType.Fidelity.REQUANTIZED) {
            return Quantizer.quantize(name, matrix, GgmlSubBlocks.dequantize(type, data, n), type.bpmSpec,
                    ActivationHint.F32);
        }
        int rows = Math.toIntExact(spec.rows());
        int cols = Math.toIntExact(spec.cols());
        int blocksPerRow = cols / type.blockSize;
        int group = Math.toIntExact(spec.effectiveGroupSize());
        int groupsPerBlock = type.blockSize / group;
        short[] scales = new short[rows * blocksPerRow * groupsPerBlock];
        short[] mins = type.encoding().hasMins() ? new short[scales.length] : null;
        int[] codes = new int[type.blockSize];
        float[] groupScales = new float[groupsPerBlock];
        float[] groupMins = new float[groupsPerBlock];
        int planes = type.encoding().planes;
        int words = Math.toIntExact(spec.wordsPerRow());
        long[] bits = new long[planes == 0 ? 0 : rows * planes * words];
        byte[] int8 = planes == 0 ? new byte[Math.toIntExact(n)] : null;
        for (int r = 0; r < rows; r++) {
            for (int blk = 0; blk < blocksPerRow; blk++) {
                int b = r * blocksPerRow + blk;
                long at = (long) b * type.blockBytes;
                switch (type) {
                    case Q8_0 -> {
                        scales[b] = data.get(SHORT, at);
                        MemorySegment.copy(data, ValueLayout.JAVA_BYTE, at + 2, int8, b * 32, 32);
                        continue;
                    }
                    case Q4_0 -> {
                        scales[b] = data.get(SHORT, at);
                        nibbles(data, at + 2, codes);
                    }
                    case Q4_1 -> {
                        scales[b] = data.get(SHORT, at);
                        mins[b] = data.get(SHORT, at + 2);
                        nibbles(data, at + 4, codes);
                    }
                    case TQ2_0 -> {
                        tq2(data, at, codes);
                        scales[b] = data.get(SHORT, at + 64);
                    }
                    case TQ1_0 -> {
                        tq1(data, at, codes);
                        scales[b] = data.get(SHORT, at + 52);
                    }
                    default -> {
                        GgmlSubBlocks.decode(type, data, at, codes, groupScales, groupMins);
                        for (int g = 0; g < groupsPerBlock; g++) {
                            scales[b * groupsPerBlock + g] = Halfs.scaleToF16(groupScales[g], name);
                            if (mins != null) {
                                mins[b * groupsPerBlock + g] = Halfs.scaleToF16(-groupMins[g], name);
                            }
                        }
                        if (type.encoding() == Encoding.INT4) {
                            for (int i = 0; i < codes.length; i++) {
                                codes[i] += 8;  // INT4's nibbles are the code + 8, as Q4_0's are
                            }
                        }
                    }
                }
                if (int8 != null) {
                    for (int i = 0; i < type.blockSize; i++) {
                        int8[b * type.blockSize + i] = (byte) codes[i];
                    }
                    continue;
                }
                int base = r * planes * words;
                for (int i = 0; i < type.blockSize; i++) {
                    int col = blk * type.blockSize + i;
                    int v = codes[i];
                    int planeBits = planes == 2 ? (v == 0 ? 0 : v > 0 ? 1 : 3) : v; // ternary: mask, sign
                    for (int p = 0; p < planes; p++) {
                        if ((planeBits >>> p & 1) != 0) {
                            bits[base + p * words + (col >>> 6)] |= 1L << (col & 63);
                        }
                    }
                }
            }
        }
        return int8 != null ? EncodedTensor.ofInt8(spec, int8, scales)
                : EncodedTensor.ofPlanes(spec, bits, scales, mins);
    }

    /** Q4_0/Q4_1: value j is the low nibble of qs[j], value j + 16 the high nibble. */
    private static void nibbles(MemorySegment data, long qs, int[] out) {
        for (int j = 0; j < 16; j++) {
            int b = Byte.toUnsignedInt(data.get(ValueLayout.JAVA_BYTE, qs + j));
            out[j] = b & 0xF;
            out[j + 16] = b >>> 4;
        }
    }

    /** TQ2_0: 2-bit codes q (t = q - 1); value j*4 + l*32 + m is bits 2l of qs[j + m], j in {0, 32}. */
    private static void tq2(MemorySegment data, long at, int[] out) {
        int y = 0;
        for (int j = 0; j < 64; j += 32) {
            for (int l = 0; l < 4; l++) {
                for (int m = 0; m < 32; m++) {
                    int q = Byte.toUnsignedInt(data.get(ValueLayout.JAVA_BYTE, at + j + m)) >>> (l * 2) & 3;
                    out[y++] = q - 1;
                }
            }
        }
    }

    /**
     * TQ1_0: five base-3 digits per byte, stored as a fixed-point fraction; digit n of byte q is
     * {@code ((u8)(q * 3^n) * 3) >> 8}. 32 bytes x 5, then 16 bytes x 5, then the 4 qh bytes x 4 digits.
     */
    private static void tq1(MemorySegment data, long at, int[] out) {
        int y = 0;
        y = tq1Digits(data, at, 32, 5, out, y);
        y = tq1Digits(data, at + 32, 16, 5, out, y);
        for (int n = 0; n < 4; n++) {
            for (int j = 0; j < 4; j++) {
                out[y++] = tq1Digit(data.get(ValueLayout.JAVA_BYTE, at + 48 + j), n);
            }
        }
    }

    private static int tq1Digits(MemorySegment data, long at, int count, int digits, int[] out, int y) {
        for (int n = 0; n < digits; n++) {
            for (int m = 0; m < count; m++) {
                out[y++] = tq1Digit(data.get(ValueLayout.JAVA_BYTE, at + m), n);
            }
        }
        return y;
    }

    private static int tq1Digit(byte b, int n) {
        int q = (Byte.toUnsignedInt(b) * POW3[n]) & 0xFF;
        return ((q * 3) >>> 8) - 1;
    }
}
