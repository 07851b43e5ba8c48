package io.bitplane.format;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

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
        TensorSpec to = packedSpec(from);
        byte[] out = new byte[Math.toIntExact(to.byteLength())];
        MemorySegment dst = MemorySegment.ofArray(out);
        relayoutRows(from, canonical.segment(), dst, 0, from.rows());
        copyScales(from, canonical.segment(), dst);
        return new EncodedTensor(to, out);
    }

    /** The spec of a layout-0 tensor in layout 1; an error names a tensor that has no packed layout. */
    public static TensorSpec packedSpec(TensorSpec canonical) {
        if (canonical.layout() != TensorSpec.LAYOUT_CANONICAL || !supports(canonical.encoding())) {
            throw new IllegalArgumentException("tensor " + canonical.name() + ": cannot pack " + canonical.encoding()
                    + " in layout " + canonical.layout());
        }
        return canonical.withLayout(TensorSpec.LAYOUT_PACKED);
    }

    /**
     * Rows [r0, r1) of a layout-0 tensor ({@code from}, bytes {@code src}) as layout 1 into {@code dst}, whole rows
     * written. Rows are independent, so threads may take disjoint ranges. Works a plane word (64 values) at a time:
     * bit q of the fields of those values is a 64-bit word too (INT4: plane q; TERNARY, fields t + 1: bit 0 is
     * "not mask", bit 1 "mask and not sign"), and each 8 of its bits spread to the low bits of 8 bytes
     * ({@link Long#expand}, one instruction with BMI2) go to their bytes, shifted to the field's place. Reading each
     * value's bits through {@link Dequantizer#planeCode} took seconds for a 418M model.
     */
    public static void relayoutRows(TensorSpec from, MemorySegment src, MemorySegment dst, long r0, long r1) {
        Encoding e = from.encoding();
        int b = bits(e);
        int v = 256 / b;
        int planes = e.planes;
        long words = from.wordsPerRow();
        long k = from.cols();
        long[] row = new long[Math.toIntExact(rowBytes(from) / 8)];
        long[] fieldBits = new long[b];
        for (long r = r0; r < r1; r++) {
            Arrays.fill(row, 0L);
            for (int w = 0; w < words; w++) {
                long valid = k - 64L * w >= 64 ? -1L : (1L << (k - 64L * w)) - 1; // values past k stay 0 fields
                long first = src.getAtIndex(EncodedTensor.LONG, r * planes * words + w);
                if (e == Encoding.TERNARY) {
                    long sign = src.getAtIndex(EncodedTensor.LONG, (r * planes + 1) * words + w);
                    fieldBits[0] = ~first & valid;
                    fieldBits[1] = first & ~sign & valid;
                } else {
                    fieldBits[0] = first & valid;
                    for (int q = 1; q < b; q++) {
                        fieldBits[q] = src.getAtIndex(EncodedTensor.LONG, (r * planes + q) * words + w) & valid;
                    }
                }
                for (int h = 0; h < 2; h++) { // values 32 h .. 32 h + 31 of the word: one 32-value slice of a block
                    int at = 64 * w + 32 * h;
                    int block = at / v;
                    int shift = at % v / 32 * b;
                    for (int q = 0; q < b; q++) {
                        for (int c = 0; c < 4; c++) {
                            long spread = Long.expand(fieldBits[q] >>> (32 * h + 8 * c) & 0xFF, 0x0101010101010101L);
                            row[block * 4 + c] |= spread << (shift + q);
                        }
                    }
                }
            }
            MemorySegment.copy(row, 0, dst, EncodedTensor.LONG, r * row.length * 8L, row.length);
        }
    }

    /** The scales (and mins) of a layout-0 tensor copied to where layout 1 keeps them in {@code dst}. */
    public static void copyScales(TensorSpec from, MemorySegment src, MemorySegment dst) {
        TensorSpec to = packedSpec(from);
        MemorySegment.copy(src, ValueLayout.JAVA_BYTE, from.scalesOffset(), dst, ValueLayout.JAVA_BYTE,
                to.scalesOffset(), from.scaleBytes());
        if (from.encoding().hasMins()) {
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, from.minsOffset(), dst, ValueLayout.JAVA_BYTE,
                    to.minsOffset(), from.scaleBytes());
        }
    }
}
