package io.bitplane.runtime.calibration;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Dequantizer;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.LlamaTensors;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;

import java.util.List;
import java.util.Map;

/**
 * Activation-aware weight scaling in the style of AWQ (Lin et al. 2023): input channels that carry large
 * activations matter more, so before quantizing, each matrix's columns are multiplied by {@code s_i = a_i^alpha}
 * ({@code a_i} the RMS of input channel i) and the inverse is folded into what produces that input, so the float
 * model computes the same thing while its important weights get more of the quantization grid.
 *
 * <p>Per layer, three groups of matrices share an input whose producer can absorb {@code 1/s} exactly:
 * <ul>
 *   <li>q, k, v read the attention norm's output: {@code attn_norm /= s};</li>
 *   <li>gate and up read the feed-forward norm's output: {@code ffn_norm /= s};</li>
 *   <li>down reads {@code silu(gate x) * (up x)}: row i of up is divided by {@code s_i}.</li>
 * </ul>
 * (The attention output matrix is left alone: its input channels come from shared key-value heads.) For each group,
 * alpha is searched on a grid in [0, 1] for the least output error {@code sum_rows d^T H d}, {@code d} the error of
 * the round-to-nearest quantization under the recipe's own spec; alpha = 0 is plain round-to-nearest, so the search
 * never does worse than that by this measure. The Hessians of the scaled matrices are rescaled to their new inputs
 * ({@code H' = S^-1 H S^-1}), so GPTQ can follow without another calibration run.
 */
final class Awq {
    private Awq() {
    }

    static final int GRID = 20;

    /** A tensor to scale: its floats (changed in place), shape and the spec it will be quantized to. */
    record Matrix(String name, float[] values, long[] shape, QuantSpec spec, ActivationHint activations) {
        int rows() {
            return (int) shape[0];
        }

        int cols() {
            return (int) shape[1];
        }
    }

    /** What scaling one group chose. */
    record Choice(String group, double alpha, double errorBefore, double errorAfter) {
    }

    /**
     * Scales the group {@code matrices} (all reading the same input, whose second moments are {@code h}) and folds
     * the inverse into {@code producer}: a norm vector (length cols) when {@code producerRows} is false, else the
     * rows of a matrix. Rescales the matrices' Hessians in {@code hessians}.
     */
    static Choice scaleGroup(String group, List<Matrix> matrices, double[] h, float[] producer, boolean producerRows,
                             Map<String, double[]> hessians) {
        int n = matrices.get(0).cols();
        double[] rms = new double[n];
        for (int i = 0; i < n; i++) {
            rms[i] = Math.sqrt(Math.max(h[i * n + i], 1e-12));
        }
        double before = error(matrices, h, ones(n));
        double bestAlpha = 0;
        double best = before;
        double[] bestScales = ones(n);
        for (int step = 1; step <= GRID; step++) {
            double alpha = (double) step / GRID;
            double[] s = scales(rms, alpha);
            double err = error(matrices, h, s);
            if (err < best) {
                best = err;
                bestAlpha = alpha;
                bestScales = s;
            }
        }
        if (bestAlpha > 0) {
            // Matrices reading one input may share one Hessian array: rescale each array once.
            java.util.Set<double[]> rescaled = java.util.Collections.newSetFromMap(new java.util.IdentityHashMap<>());
            for (Matrix m : matrices) {
                for (int r = 0; r < m.rows(); r++) {
                    for (int c = 0; c < n; c++) {
                        m.values()[r * n + c] *= (float) bestScales[c];
                    }
                }
                double[] hm = hessians.get(m.name());
                if (hm != null && rescaled.add(hm)) {
                    for (int i = 0; i < n; i++) {
                        for (int j = 0; j < n; j++) {
                            hm[i * n + j] /= bestScales[i] * bestScales[j];
                        }
                    }
                }
            }
            if (producerRows) {
                int cols = producer.length / n;
                for (int r = 0; r < n; r++) {
                    for (int c = 0; c < cols; c++) {
                        producer[r * cols + c] /= (float) bestScales[r];
                    }
                }
            } else {
                for (int i = 0; i < n; i++) {
                    producer[i] /= (float) bestScales[i];
                }
            }
        }
        return new Choice(group, bestAlpha, before, best);
    }

    /** {@code a^alpha}, normalised so that the largest and smallest scale are reciprocal (as AWQ does). */
    static double[] scales(double[] rms, double alpha) {
        double[] s = new double[rms.length];
        double max = 0;
        double min = Double.MAX_VALUE;
        for (int i = 0; i < s.length; i++) {
            s[i] = Math.pow(rms[i], alpha);
            max = Math.max(max, s[i]);
            min = Math.min(min, s[i]);
        }
        double norm = Math.sqrt(max * min);
        for (int i = 0; i < s.length; i++) {
            s[i] /= norm;
        }
        return s;
    }

    private static double[] ones(int n) {
        double[] s = new double[n];
        java.util.Arrays.fill(s, 1);
        return s;
    }

    /** The summed output error of quantizing the scaled matrices to nearest, measured in the original basis. */
    static double error(List<Matrix> matrices, double[] h, double[] s) {
        double total = 0;
        for (Matrix m : matrices) {
            int rows = m.rows();
            int n = m.cols();
            float[] scaled = new float[rows * n];
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < n; c++) {
                    scaled[r * n + c] = (float) (m.values()[r * n + c] * s[c]);
                }
            }
            EncodedTensor q = Quantizer.quantize(m.name(), m.shape(), scaled, m.spec(), m.activations());
            float[] back = Dequantizer.toFloats(q.spec(), q.segment());
            double[] d = new double[n];
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < n; c++) {
                    d[c] = m.values()[r * n + c] - back[r * n + c] / s[c];
                }
                for (int i = 0; i < n; i++) {
                    if (d[i] == 0) {
                        continue;
                    }
                    double acc = 0;
                    for (int j = 0; j < n; j++) {
                        acc += h[i * n + j] * d[j];
                    }
                    total += d[i] * acc;
                }
            }
        }
        return total;
    }

    /** The three groups of layer {@code l}: [input-sharing matrix kinds..., producer kind]. */
    static List<List<String>> groups() {
        return List.of(withProducer(LlamaTensors.ATTENTION_INPUT_KINDS, "attn_norm"),
                withProducer(LlamaTensors.FFN_INPUT_KINDS, "ffn_norm"), List.of("ffn_down", "ffn_up"));
    }

    private static List<String> withProducer(List<String> kinds, String producer) {
        List<String> group = new java.util.ArrayList<>(kinds);
        group.add(producer);
        return List.copyOf(group);
    }

    static String name(int layer, String kind) {
        return LlamaTensors.block(layer, kind);
    }
}
