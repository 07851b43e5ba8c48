package io.bitplane.format;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Layout 1, packed codes (FORMAT.md section 5): INT4, INT4_ASYM and TERNARY values as unsigned b-bit fields
 * (b = 4: u; b = 2: t + 1), packed so that a SIMD kernel decodes 32 values with one shift and one mask.
 *
 * <pre>
 * A row is split into blocks of 256 / b values (64 for INT4, 128 for TERNARY), each 32 bytes; the row is padded
 * to whole blocks with zero fields. Value j of a block is field (j / 32) of byte (j % 32) of the block:
 *   byte = rowStart + (col / V) * 32 + (col % V) % 32,   shift = ((col % V) / 32) * b,   V = 256 / b
 * so shifting a block's 32 bytes right by s * b (and masking) gives values 32 s .. 32 s + 31 in byte order.
 * Rows follow each other; scales (and mins) come after, as in layout 0.
 * </pre>
 * The code of a field is {@code u - 8} (INT4), {@code u} (INT4_ASYM), {@code f - 1} (TERNARY; the writer never
 * writes the field 3, which reads as 2).
 */
public final class PackedCodes {
    private PackedCodes() {
    }

    /** Whether an encoding has a packed layout. */
    public static boolean supports(Encoding e) {
        return e == Encoding.INT4 || e == Encoding.INT4_ASYM || e == Encoding.TERNARY;
    }

    /** Bits per field. */
    public static int bits(Encoding e) {
        return switch (e) {
            case INT4, INT4_ASYM -> 4;
            case TERNARY -> 2;
            default -> throw new IllegalArgumentException(e + " has no packed layout");
        };
    }

    /** Values per 32-byte block. */
    public static int blockValues(Encoding e) {
        return 256 / bits(e);
    }

    /** Bytes of one row: whole 32-byte blocks. */
    public static long rowBytes(TensorSpec spec) {
        long values = blockValues(spec.encoding());
        return (spec.cols() + values - 1) / values * 32;
    }

    /** The integer code of value {@code col} of {@code row}. */
    public static int code(TensorSpec spec, MemorySegment data, long row, long col) {
        int b = bits(spec.encoding());
        int v = 256 / b;
        long j = col % v;
        long at = row * rowBytes(spec) + col / v * 32 + j % 32;
        int field = (data.get(ValueLayout.JAVA_BYTE, at) >>> (int) (j / 32 * b)) & ((1 << b) - 1);
        return codeOfField(spec.encoding(), field);
    }

    /** The codes of a whole row into {@code codes[0 .. K)}: one pass over its bytes (the reference kernels' path). */
    public static void decodeRow(TensorSpec spec, MemorySegment data, long row, int[] codes) {
        Encoding e = spec.encoding();
        int b = bits(e);
        int v = 256 / b;
        int mask = (1 << b) - 1;
        int offset = -codeOfField(e, 0);
        long k = spec.cols();
        long rowBytes = rowBytes(spec);
        long base = row * rowBytes;
        for (long block = 0; block * v < k; block++) {
            for (int j = 0; j < 32; j++) {
                int byteValue = data.get(ValueLayout.JAVA_BYTE, base + block * 32 + j) & 0xff;
                for (int s = 0; s < v / 32; s++) {
                    long col = block * v + s * 32L + j;
                    if (col < k) {
                        codes[(int) col] = ((byteValue >>> (s * b)) & mask) - offset;
                    }
                }
            }
        }
    }

    /** The code a field stands for (its value minus the encoding's offset: 8 INT4, 0 INT4_ASYM, 1 TERNARY). */
    public static int codeOfField(Encoding e, int field) {
        return switch (e) {
            case INT4 -> field - 8;
            case INT4_ASYM -> field;
            default -> field - 1;
        };
    }

    private static int fieldOfCode(Encoding e, int code) {
        return switch (e) {
            case INT4 -> code + 8;
            case INT4_ASYM -> code;
            default -> code + 1;
        };
    }

    /** The same tensor in layout 1: the codes re-laid, the scales and mins copied unchanged. */
    public static EncodedTensor relayout(EncodedTensor canonical) {
        TensorSpec from = canonical.spec();
        if (from.layout() != TensorSpec.LAYOUT_CANONICAL || !supports(from.encoding())) {
            throw new IllegalArgumentException("tensor " + from.name() + ": cannot pack " + from.encoding()
                    + " in layout " + from.layout());
        }
        TensorSpec to = from.withLayout(TensorSpec.LAYOUT_PACKED);
        byte[] out = new byte[Math.toIntExact(to.byteLength())];
        MemorySegment src = canonical.segment();
        int b = bits(from.encoding());
        int v = 256 / b;
        long rowBytes = rowBytes(to);
        for (long r = 0; r < from.rows(); r++) {
            for (long col = 0; col < from.cols(); col++) {
                long j = col % v;
                int at = Math.toIntExact(r * rowBytes + col / v * 32 + j % 32);
                int field = fieldOfCode(from.encoding(), Dequantizer.planeCode(from, src, r, col));
                out[at] |= (byte) (field << (int) (j / 32 * b));
            }
        }
        MemorySegment.copy(src, ValueLayout.JAVA_BYTE, from.scalesOffset(), MemorySegment.ofArray(out),
                ValueLayout.JAVA_BYTE, to.scalesOffset(), from.scaleBytes());
        if (from.encoding().hasMins()) {
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, from.minsOffset(), MemorySegment.ofArray(out),
                    ValueLayout.JAVA_BYTE, to.minsOffset(), from.scaleBytes());
        }
        return new EncodedTensor(to, out);
    }
}
