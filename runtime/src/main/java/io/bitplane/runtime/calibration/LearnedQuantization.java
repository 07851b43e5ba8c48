package io.bitplane.runtime.calibration;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Dequantizer;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.Encoding;
import io.bitplane.format.Halfs;
import io.bitplane.format.TensorSpec;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;

/**
 * One symmetric quantized matrix whose codes and scales are learned by gradient descent (quantization-aware
 * training of a converted model): a float latent weight per value and a float scale per group, the weight used
 * being {@code s * clamp(round(w / s))} (BINARY: {@code s * sign(w)}).
 *
 * <p>Gradients follow LSQ (Esser et al. 2020, "Learned Step Size Quantization"): the rounding is passed straight
 * through to the latent weight inside the code range and stopped outside it, and the scale gets
 * {@code dW * (code - w / s)} inside the range and {@code dW * code} outside. Started from a quantized tensor (codes
 * times scales), the first weights used are exactly that tensor's.
 *
 * <p>Layout: {@code latent} is {@code [rows][cols]} row-major, {@code scales} {@code [rows][groups]}.
 */
final class LearnedQuantization {
    final String name;
    final long[] shape;
    final QuantSpec spec;
    final ActivationHint activations;
    final int rows;
    final int cols;
    final int group;
    final int groups;
    final float[] latent;
    final float[] scales;
    private final int minCode;
    private final int maxCode;
    private final boolean binary;

    private LearnedQuantization(String name, long[] shape, QuantSpec spec, ActivationHint activations, int group,
                                int groups, float[] latent, float[] scales) {
        this.name = name;
        this.shape = shape;
        this.spec = spec;
        this.activations = activations;
        this.rows = Math.toIntExact(shape[0]);
        this.cols = Math.toIntExact(shape[1]);
        this.group = group;
        this.groups = groups;
        this.latent = latent;
        this.scales = scales;
        this.minCode = Quantizer.minCode(spec.encoding());
        this.maxCode = Quantizer.maxCode(spec.encoding());
        this.binary = spec.encoding() == Encoding.BINARY;
    }

    /** Starts from {@code t} (INT8, INT4, TERNARY or BINARY in any layout): its values as latents, its scales. */
    static LearnedQuantization of(EncodedTensor t, QuantSpec spec) {
        TensorSpec s = t.spec();
        if (s.rank() != 2 || s.encoding() != spec.encoding()) {
            throw new IllegalArgumentException("tensor " + s.name() + ": " + s + " cannot start learning " + spec);
        }
        int groups = Math.toIntExact(s.groupsPerRow());
        int group = Math.toIntExact(s.effectiveGroupSize());
        int rows = Math.toIntExact(s.rows());
        float[] values = Dequantizer.toFloats(s, t.segment());
        float[] scales = new float[rows * groups];
        for (int r = 0; r < rows; r++) {
            for (int g = 0; g < groups; g++) {
                scales[r * groups + g] = Dequantizer.scale(s, t.segment(), r, (long) g * group);
            }
        }
        return new LearnedQuantization(s.name(), s.shape(), spec, s.activations(), group, groups, values, scales);
    }

    /** The code of latent {@code w} under scale {@code s}. */
    private int code(float w, float s) {
        if (binary) {
            return (s < 0) == (w < 0) ? 1 : -1;
        }
        if (s == 0) {
            return 0;
        }
        return Math.max(minCode, Math.min(maxCode, Math.round(w / s)));
    }

    /** Writes the weights in use ({@code [rows][cols]}) into {@code out}. */
    void weights(float[] out) {
        for (int r = 0; r < rows; r++) {
            for (int col = 0; col < cols; col++) {
                int i = r * cols + col;
                float s = scales[r * groups + col / group];
                out[i] = code(latent[i], s) * s;
            }
        }
    }

    /**
     * From the gradient {@code dWeights} of the weights in use, writes the latents' gradient into
     * {@code dLatent} (which may be {@code dWeights} itself) and the scales' into {@code dScales}.
     */
    void gradients(float[] dWeights, float[] dLatent, float[] dScales) {
        java.util.Arrays.fill(dScales, 0);
        for (int r = 0; r < rows; r++) {
            for (int col = 0; col < cols; col++) {
                int i = r * cols + col;
                int gi = r * groups + col / group;
                float s = scales[gi];
                float x = s == 0 ? 0 : latent[i] / s;
                int code = code(latent[i], s);
                boolean inside = binary ? Math.abs(x) <= 1 : x >= minCode && x <= maxCode;
                dScales[gi] += dWeights[i] * (inside && !binary ? code - x : code);
                dLatent[i] = inside ? dWeights[i] : 0;  // after the line above: dLatent may be dWeights
            }
        }
    }

    /** The learned codes and scales (rounded to f16, as the file holds them) as the file's tensor. */
    EncodedTensor encoded() {
        int[] codes = new int[rows * cols];
        short[] s16 = new short[scales.length];
        for (int r = 0; r < rows; r++) {
            for (int col = 0; col < cols; col++) {
                int i = r * cols + col;
                codes[i] = code(latent[i], scales[r * groups + col / group]);
            }
        }
        for (int gi = 0; gi < scales.length; gi++) {
            s16[gi] = Halfs.scaleToF16(scales[gi], name);
        }
        return Quantizer.ofCodes(name, shape, spec, activations, codes, s16);
    }
}
