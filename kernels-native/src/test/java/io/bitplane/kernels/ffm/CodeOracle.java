package io.bitplane.kernels.ffm;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.Halfs;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import io.bitplane.kernels.scalar.ScalarMatmul;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * The reference's result for INT8 codes given to a kernel directly, such as codes of -128, which the quantizer never
 * makes (the reference backend quantizes its own activations from floats): the same integer sums over the decoded
 * codes and the same float steps, y[r] = (0 + sum over groups in order of s_g acc_g) * xScale.
 */
final class CodeOracle {
    private CodeOracle() {
    }

    /** A token's scale for {@link #minus128}: any will do, the codes being given. */
    static final float X_SCALE = 0.01f;

    /** A token of {@code cols} codes of -128, the one code the quantizer never makes (it clamps to +-127). */
    static byte[] minus128(int cols) {
        byte[] q = new byte[cols];
        Arrays.fill(q, (byte) -128);
        return q;
    }

    /**
     * A rows x cols tensor of {@code spec} (INT8 activations) whose every weight is negative: every code -1, every
     * bit of a sign plane set, so that codes of -128 give each run of sums its largest magnitude.
     */
    static EncodedTensor everyWeightNegative(String spec, int rows, int cols) {
        float[] weights = new float[rows * cols];
        Arrays.fill(weights, -0.1f);
        return Quantizer.quantize("w", new long[] {rows, cols}, weights, QuantSpec.parse(spec), ActivationHint.INT8);
    }

    /** The tensor's bytes in native memory of {@code arena}, as the kernels read them. */
    static MemorySegment nativeCopy(Arena arena, EncodedTensor t) {
        MemorySegment w = arena.allocate(t.bytes().length);
        MemorySegment.copy(t.bytes(), 0, w, ValueLayout.JAVA_BYTE, 0, t.bytes().length);
        return w;
    }

    /** y for every row of {@code t} (its bytes {@code w}) and one token's codes {@code q} with scale xScale. */
    static float[] expected(EncodedTensor t, MemorySegment w, byte[] q, float xScale) {
        int rows = (int) t.spec().rows();
        int cols = (int) t.spec().cols();
        long group = t.spec().effectiveGroupSize();
        int groups = (int) t.spec().groupsPerRow();
        float[] y = new float[rows];
        int[] codes = new int[cols];
        for (int r = 0; r < rows; r++) {
            ScalarMatmul.decodeRow(t.spec(), w, r, cols, codes);
            float sum = 0;
            for (int g = 0; g < groups; g++) {
                int acc = 0;
                for (int i = (int) (g * group); i < Math.min(cols, (g + 1) * group); i++) {
                    acc += codes[i] * q[i];
                }
                sum += Halfs.f16ToFloat(w.get(ValueLayout.JAVA_SHORT_UNALIGNED,
                        t.spec().scalesOffset() + 2L * ((long) r * groups + g))) * acc;
            }
            y[r] = sum * xScale;
        }
        return y;
    }
}
