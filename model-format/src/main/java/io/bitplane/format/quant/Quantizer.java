package io.bitplane.format.quant;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.TensorSpec;

import java.util.stream.IntStream;

/**
 * Post-training quantization of one tensor: floats in, the file's bytes out. Rows are independent, so they are
 * quantized in parallel; each encoding's arithmetic lives in its own class.
 */
public final class Quantizer {
    private Quantizer() {
    }

    /**
     * Quantizes {@code values} (row-major, {@code shape}) to {@code spec}. Non-finite weights are rejected with the
     * tensor's name: they would poison every scale they meet.
     */
    public static EncodedTensor quantize(String name, long[] shape, float[] values, QuantSpec spec,
                                         ActivationHint activations) {
        TensorSpec ts = target(name, shape, spec, activations);
        if (!spec.encoding().quantized) {
            return EncodedTensor.ofFloats(ts, values);
        }
        requireFinite(name, values);
        int rows = Math.toIntExact(ts.rows());
        int cols = Math.toIntExact(ts.cols());
        int groups = Math.toIntExact(ts.groupsPerRow());
        int group = Math.toIntExact(ts.effectiveGroupSize());
        int words = Math.toIntExact(ts.wordsPerRow());
        short[] scales = new short[rows * groups];
        if (spec.encoding() == io.bitplane.format.Encoding.INT8) {
            byte[] q = new byte[rows * cols];
            IntStream.range(0, rows).parallel().forEach(r ->
                    Int8Quantizer.quantizeRow(name, values, r * cols, cols, group, q, scales, r * groups));
            return EncodedTensor.ofInt8(ts, q, scales);
        }
        int planes = spec.encoding().planes;
        long[] bits = new long[rows * planes * words];
        short[] mins = spec.encoding().hasMins() ? new short[rows * groups] : null;
        IntStream.range(0, rows).parallel().forEach(r -> {
            PlaneRow out = new PlaneRow(bits, (r * planes) * words, words);
            for (int g = 0; g < groups; g++) {
                int start = g * group;
                int len = Math.min(group, cols - start);
                int gi = r * groups + g;
                switch (spec.encoding()) {
                    case INT4 -> scales[gi] = Int4Quantizer.symmetricGroup(name, values, r * cols + start, len,
                            start, out, spec.method());
                    case INT4_ASYM -> Int4Quantizer.asymmetricGroup(name, values, r * cols + start, len, start, out,
                            spec.method(), scales, mins, gi);
                    case TERNARY -> scales[gi] = TernaryQuantizer.group(name, values, r * cols + start, len, start,
                            out, spec.method());
                    case BINARY -> scales[gi] = BinaryQuantizer.group(name, values, r * cols + start, len, start,
                            out);
                    default -> throw new IllegalStateException(spec.encoding().toString());
                }
            }
        });
        return EncodedTensor.ofPlanes(ts, bits, scales, mins);
    }

    /** The canonical-layout spec of the encoded tensor; an encoding the shape cannot take is named with the tensor. */
    static TensorSpec target(String name, long[] shape, QuantSpec spec, ActivationHint activations) {
        TensorSpec ts = new TensorSpec(name, shape, spec.encoding(), spec.groupSize(), TensorSpec.LAYOUT_CANONICAL,
                activations);
        String problem = ts.problem();
        if (problem != null) {
            throw new IllegalArgumentException("tensor " + name + ": cannot encode as " + spec + ": " + problem);
        }
        return ts;
    }

    /** Non-finite weights are rejected with the tensor's name: they would poison every scale they meet. */
    static void requireFinite(String name, float[] values) {
        for (int i = 0; i < values.length; i++) {
            if (!Float.isFinite(values[i])) {
                throw new IllegalArgumentException("tensor " + name + ": value " + values[i] + " at index " + i
                        + " is not finite");
            }
        }
    }

    /**
     * A tensor from integer codes chosen elsewhere (row-major; a weight is {@code code * scale} of its group, codes
     * within {@link #minCode}..{@link #maxCode}) and its f16 group scales ({@code [rows][groups]}): for quantizers
     * outside this package that pick codes themselves (distillation).
     */
    public static EncodedTensor ofCodes(String name, long[] shape, QuantSpec spec, ActivationHint activations,
                                        int[] codes, short[] scales) {
        if (!GroupRule.supports(spec.encoding())) {
            throw new IllegalArgumentException("tensor " + name + ": " + spec + " has no integer codes here");
        }
        TensorSpec ts = target(name, shape, spec, activations);
        if (codes.length != ts.rows() * ts.cols() || scales.length != ts.rows() * ts.groupsPerRow()) {
            throw new IllegalArgumentException("tensor " + name + ": " + codes.length + " codes and "
                    + scales.length + " scales do not fit " + ts);
        }
        int lo = minCode(spec.encoding());
        int hi = maxCode(spec.encoding());
        for (int i = 0; i < codes.length; i++) {
            if (codes[i] < lo || codes[i] > hi || (spec.encoding() == io.bitplane.format.Encoding.BINARY
                    && codes[i] == 0)) {
                throw new IllegalArgumentException("tensor " + name + ": code " + codes[i] + " at index " + i
                        + " is outside " + spec.encoding() + "'s range");
            }
        }
        return fromCodes(ts, codes, scales);
    }

    /** The least integer code of a symmetric encoding (BINARY's codes are -1 and +1, never 0). */
    public static int minCode(io.bitplane.format.Encoding e) {
        return -maxCode(e) - (e == io.bitplane.format.Encoding.INT4 ? 1 : 0);
    }

    /** The largest integer code of a symmetric encoding. */
    public static int maxCode(io.bitplane.format.Encoding e) {
        return switch (e) {
            case INT8 -> 127;
            case INT4 -> 7;
            case TERNARY, BINARY -> 1;
            default -> throw new IllegalArgumentException(e + " has no integer codes here");
        };
    }

    /**
     * The file's bytes for integer codes chosen elsewhere (row-major; a weight is {@code code * scale} of its
     * group): INT8 q, INT4 u - 8, TERNARY t, BINARY +-1.
     */
    static EncodedTensor fromCodes(TensorSpec ts, int[] codes, short[] scales) {
        int rows = Math.toIntExact(ts.rows());
        int cols = Math.toIntExact(ts.cols());
        if (ts.encoding() == io.bitplane.format.Encoding.INT8) {
            byte[] q = new byte[codes.length];
            for (int i = 0; i < q.length; i++) {
                q[i] = (byte) codes[i];
            }
            return EncodedTensor.ofInt8(ts, q, scales);
        }
        int planes = ts.encoding().planes;
        int words = Math.toIntExact(ts.wordsPerRow());
        long[] bits = new long[rows * planes * words];
        for (int r = 0; r < rows; r++) {
            PlaneRow out = new PlaneRow(bits, r * planes * words, words);
            for (int c = 0; c < cols; c++) {
                int code = codes[r * cols + c];
                switch (ts.encoding()) {
                    case INT4 -> Int4Quantizer.writeNibble(out, c, code + 8);
                    case TERNARY -> TernaryQuantizer.write(out, c, code);
                    case BINARY -> {
                        if (code < 0) {
                            out.set(0, c);
                        }
                    }
                    default -> throw new IllegalArgumentException(ts.encoding() + " has no integer codes here");
                }
            }
        }
        return EncodedTensor.ofPlanes(ts, bits, scales, null);
    }

    /** Write access to the planes of one row: sets bit {@code col} of a plane. */
    record PlaneRow(long[] bits, int base, int words) {
        void set(int plane, int col) {
            bits[base + plane * words + (col >>> 6)] |= 1L << (col & 63);
        }
    }
}
