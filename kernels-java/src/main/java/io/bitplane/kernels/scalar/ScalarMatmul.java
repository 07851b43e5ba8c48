package io.bitplane.kernels.scalar;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Dequantizer;
import io.bitplane.format.Encoding;
import io.bitplane.format.Halfs;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.ActivationQuantizer;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The reference matrix product for every encoding: the oracle that faster kernels are tested against, and the
 * path that runs where nothing faster is available. Written for clarity, not speed.
 *
 * <pre>
 * Memory layout read (FORMAT.md section 4), for W = [N rows, K columns], P planes, Wd = ceil(K / 64) words:
 *   F32/F16/BF16  row n at element n*K
 *   INT8          int8 q at byte n*K + k;           scales: f16 at scalesOffset + 2*(n*groups + g)
 *   bit planes    word (n*P + p)*Wd + k/64, bit k%64 = bit p of value k's code
 *                 INT4 / INT4_ASYM: code u = sum_p bit_p << p; TERNARY: mask (p0), sign (p1); BINARY: sign (p0)
 *                 scales (and INT4_ASYM mins) as for INT8
 *   packed codes  layout 1 (INT4, INT4_ASYM, TERNARY): PackedCodes.decodeRow
 * </pre>
 * Each row is decoded once into integer codes, then multiplied with every token of the batch. With INT8 or binary
 * activations, each group's integer sum of code products is multiplied by the group's scale, the groups' terms are
 * added in order, and the total is multiplied by the token's scale.
 */
public final class ScalarMatmul {
    private ScalarMatmul() {
    }

    private static final ValueLayout.OfFloat FLOAT =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Per-thread scratch, grown as needed, so steady-state calls do not allocate. */
    private static final class Scratch {
        float[] row = new float[0];
        int[] codes = new int[0];
        float[] scales = new float[0];
        float[] mins = new float[0];
        byte[] q = new byte[0];
        float[] tokenScales = new float[0];
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    /** y[b*N + n] for rows n in [rowStart, rowEnd): the unit a thread pool can split. */
    public static void matmul(TensorSpec spec, MemorySegment w, float[] x, float[] y, int batch, int rowStart,
                              int rowEnd) {
        int k = Math.toIntExact(spec.cols());
        int n = Math.toIntExact(spec.rows());
        Scratch s = SCRATCH.get();
        if (!spec.encoding().quantized) {
            if (s.row.length < k) {
                s.row = new float[k];
            }
            for (int r = rowStart; r < rowEnd; r++) {
                floatRow(spec, w, r, k, s.row);
                for (int b = 0; b < batch; b++) {
                    float sum = 0;
                    int xo = b * k;
                    for (int i = 0; i < k; i++) {
                        sum += s.row[i] * x[xo + i];
                    }
                    y[b * n + r] = sum;
                }
            }
            return;
        }
        int groups = Math.toIntExact(spec.groupsPerRow());
        int group = Math.toIntExact(spec.effectiveGroupSize());
        if (s.codes.length < k) {
            s.codes = new int[k];
        }
        if (s.scales.length < groups) {
            s.scales = new float[groups];
            s.mins = new float[groups];
        }
        // Integer activation codes: INT8 per token, or binary signs (XNOR-Net) whose products with binary weights
        // are the same integer sums of code products.
        boolean int8Activations = spec.activations() == ActivationHint.INT8
                || spec.activations() == ActivationHint.BINARY;
        if (int8Activations) {
            if (s.q.length < batch * k) {
                s.q = new byte[batch * k];
            }
            if (s.tokenScales.length < batch) {
                s.tokenScales = new float[batch];
            }
            for (int b = 0; b < batch; b++) {
                s.tokenScales[b] = spec.activations() == ActivationHint.BINARY
                        ? ActivationQuantizer.binarize(x, b * k, k, s.q, b * k)
                        : ActivationQuantizer.quantizeInt8(x, b * k, k, s.q, b * k);
            }
        }
        boolean asym = spec.encoding() == Encoding.INT4_ASYM;
        for (int r = rowStart; r < rowEnd; r++) {
            decodeRow(spec, w, r, k, s.codes);
            for (int g = 0; g < groups; g++) {
                long gi = (long) r * groups + g;
                s.scales[g] = Halfs.f16ToFloat(w.get(SHORT, spec.scalesOffset() + 2 * gi));
                if (asym) {
                    s.mins[g] = Halfs.f16ToFloat(w.get(SHORT, spec.minsOffset() + 2 * gi));
                }
            }
            for (int b = 0; b < batch; b++) {
                float sum = 0;
                int xo = b * k;
                for (int g = 0; g < groups; g++) {
                    int start = g * group;
                    int end = Math.min(k, start + group);
                    if (int8Activations) {
                        int acc = 0;
                        int qsum = 0;
                        for (int i = start; i < end; i++) {
                            acc += s.codes[i] * s.q[xo + i];
                            qsum += s.q[xo + i];
                        }
                        sum += s.scales[g] * acc + (asym ? s.mins[g] * qsum : 0f);
                    } else {
                        float acc = 0;
                        float xsum = 0;
                        for (int i = start; i < end; i++) {
                            acc += s.codes[i] * x[xo + i];
                            xsum += x[xo + i];
                        }
                        sum += s.scales[g] * acc + (asym ? s.mins[g] * xsum : 0f);
                    }
                }
                y[b * n + r] = int8Activations ? sum * s.tokenScales[b] : sum;
            }
        }
    }

    private static void floatRow(TensorSpec spec, MemorySegment w, int r, int k, float[] out) {
        if (spec.encoding() == Encoding.F32) {
            MemorySegment.copy(w, FLOAT, (long) r * k * 4, out, 0, k);
        } else {
            Dequantizer.row(spec, w, r, out, 0);
        }
    }

    /**
     * The integer code of every value of row r into {@code codes[0 .. k)} (see the class comment): the reference's
     * decoding, which kernels that repack rows at load reuse.
     */
    public static void decodeRow(TensorSpec spec, MemorySegment w, int r, int k, int[] codes) {
        if (spec.encoding() == Encoding.INT8) {
            for (int i = 0; i < k; i++) {
                codes[i] = w.get(ValueLayout.JAVA_BYTE, (long) r * k + i);
            }
            return;
        }
        if (spec.layout() == TensorSpec.LAYOUT_PACKED) {
            PackedCodes.decodeRow(spec, w, r, codes);
            return;
        }
        int planes = spec.encoding().planes;
        long words = spec.wordsPerRow();
        long base = (long) r * planes * words;
        long[] p = new long[planes];
        for (int word = 0; word < words; word++) {
            for (int j = 0; j < planes; j++) {
                p[j] = w.getAtIndex(LONG, base + j * words + word);
            }
            int end = Math.min(k, word * 64 + 64);
            for (int i = word * 64; i < end; i++) {
                int bit = i & 63;
                codes[i] = switch (spec.encoding()) {
                    case BINARY -> (p[0] >>> bit & 1) == 1 ? -1 : 1;
                    case TERNARY -> (p[0] >>> bit & 1) == 0 ? 0 : (p[1] >>> bit & 1) == 1 ? -1 : 1;
                    case INT4, INT4_ASYM -> {
                        int u = 0;
                        for (int j = 0; j < 4; j++) {
                            u |= (int) (p[j] >>> bit & 1) << j;
                        }
                        yield spec.encoding() == Encoding.INT4 ? u - 8 : u;
                    }
                    default -> throw new IllegalStateException(spec.encoding().toString());
                };
            }
        }
    }
}
