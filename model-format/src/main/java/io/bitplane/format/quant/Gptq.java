package io.bitplane.format.quant;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.Halfs;
import io.bitplane.format.TensorSpec;

import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * Error-compensating quantization in the style of GPTQ (Frantar et al. 2022, "Accurate Post-Training Quantization
 * for Generative Pre-trained Transformers"). For a linear layer {@code y = W x}, with {@code H = sum x x^T} over
 * calibration inputs, it quantizes W one input column at a time and spreads each column's rounding error over the
 * columns not yet quantized, weighted by the inverse Hessian, so that the layer's output error {@code
 * sum ||(W - Q) x||^2} stays small rather than each weight's own error.
 *
 * <p>Rows are independent (each row's updates touch only that row), so they run in parallel. With act-order the
 * columns go in order of decreasing {@code H[i][i]} (the inputs with the most energy first, while there is most
 * freedom left to compensate); the group scales are then fixed from the original weights before the pass ("static
 * groups"), since a group's columns are no longer visited together. Without it, each group's scale is chosen from
 * its compensated weights when the pass reaches it, as the reference implementation does.
 *
 * <p>Memory: the K x K inverse-Hessian factor in doubles (K = the layer's input width) plus one row per thread.
 */
public final class Gptq {
    private Gptq() {
    }

    /**
     * @param damping  added to H's diagonal as a fraction of its mean, so that H is safely invertible
     * @param actOrder visit columns in order of decreasing H[i][i], with static group scales
     * @param refinements rounds of refitting the group scales to the codes (least squares under H) and running
     *                    the pass again with them. The last round is kept, even where its layer output error is
     *                    higher: keeping the round with the least error measured worse on the whole model (INT4
     *                    stories260K perplexity 4.4505 against 4.4387)
     */
    public record Options(double damping, boolean actOrder, int refinements) {
        /**
         * Damping 0.003 of the mean diagonal. GPTQ's reference uses 0.01; on held-out paragraphs 2000:2500 of the
         * TinyStories validation text, INT4 stories260K scored 7.675 with 0.003, against 7.680 with 0.001, 7.684
         * with 0.03 and 7.690 with 0.01.
         */
        public static final Options DEFAULT = new Options(0.003, true, 3);
    }

    /** Whether GPTQ can produce this encoding (the symmetric integer ones). */
    public static boolean supports(QuantSpec spec) {
        return GroupRule.supports(spec.encoding());
    }

    /**
     * Quantizes {@code values} ([rows][cols], row-major) to {@code spec}, minimising the output error under the
     * input second moments {@code hessian} ([cols][cols], row-major, symmetric).
     */
    public static EncodedTensor quantize(String name, long[] shape, float[] values, double[] hessian, QuantSpec spec,
                                         ActivationHint activations, Options options) {
        TensorSpec ts = Quantizer.target(name, shape, spec, activations);
        if (shape.length != 2) {
            throw new IllegalArgumentException("tensor " + name + ": cannot encode as " + spec + ": not a matrix");
        }
        GroupRule rule = GroupRule.of(spec);
        int rows = Math.toIntExact(ts.rows());
        int cols = Math.toIntExact(ts.cols());
        if (hessian.length != (long) cols * cols) {
            throw new IllegalArgumentException("tensor " + name + ": Hessian has " + hessian.length
                    + " entries, " + cols + " x " + cols + " expected");
        }
        Quantizer.requireFinite(name, values);
        int group = Math.toIntExact(ts.effectiveGroupSize());
        int groups = Math.toIntExact(ts.groupsPerRow());
        int[] order = columnOrder(hessian, cols, options.actOrder());
        double[] u = inverseFactor(name, hessian, cols, order, options.damping());
        short[] scales = new short[rows * groups];
        int[] codes = new int[rows * cols];
        IntStream.range(0, rows).parallel().forEach(r -> {
            float[] row = Arrays.copyOfRange(values, r * cols, (r + 1) * cols);
            short[] rowScales = new short[groups];
            int[] rowCodes = new int[cols];
            boolean dynamic = !options.actOrder();
            if (!dynamic) {
                for (int g = 0; g < groups; g++) {
                    rowScales[g] = rule.scale(name, row, g * group, Math.min(group, cols - g * group));
                }
            }
            pass(name, rule, row, order, u, group, rowScales, rowCodes, dynamic);
            for (int round = 0; round < options.refinements(); round++) {
                if (!refitScales(name, row, hessian, group, rowScales, rowCodes)) {
                    break;
                }
                pass(name, rule, row, order, u, group, rowScales, rowCodes, false);
            }
            System.arraycopy(rowScales, 0, scales, r * groups, groups);
            System.arraycopy(rowCodes, 0, codes, r * cols, cols);
        });
        return Quantizer.fromCodes(ts, codes, scales);
    }

    /**
     * One GPTQ pass over a row: each column in visiting order gets the nearest code under its group's scale, and
     * its error is spread over the columns after it. With {@code dynamic} each group's scale is chosen from the
     * compensated weights when the pass reaches the group (natural order only); else {@code scales} are used.
     */
    private static void pass(String name, GroupRule rule, float[] row, int[] order, double[] u, int group,
                             short[] scales, int[] codes, boolean dynamic) {
        int cols = row.length;
        double[] w = new double[cols];
        for (int k = 0; k < cols; k++) {
            w[k] = row[order[k]];
        }
        float[] current = dynamic ? new float[cols] : null;
        for (int k = 0; k < cols; k++) {
            int c = order[k];
            int g = c / group;
            if (dynamic && k % group == 0) {
                int len = Math.min(group, cols - k);
                for (int i = 0; i < len; i++) {
                    current[k + i] = (float) w[k + i];
                }
                scales[g] = rule.scale(name, current, k, len);
            }
            float s = Halfs.f16ToFloat(scales[g]);
            int code = rule.code((float) w[k], s);
            codes[c] = code;
            double err = (w[k] - (double) code * s) / u[k * cols + k];
            for (int j = k + 1; j < cols; j++) {
                w[j] -= err * u[k * cols + j];
            }
        }
    }

    /**
     * For fixed codes, the group scales that minimise the row's output error {@code (w - q)^T H (w - q)} with
     * {@code q = sum_g s_g t_g}: the normal equations {@code A s = b}, {@code A_gh = t_g^T H t_h},
     * {@code b_g = t_g^T H w}. Round-to-nearest scales are chosen for the weights alone; these are chosen for the
     * outputs, which matters most where there are few levels (ternary, binary). Returns false (and keeps the
     * scales) when the system is singular or a scale would not fit f16.
     */
    static boolean refitScales(String name, float[] row, double[] h, int group, short[] scales, int[] codes) {
        int cols = row.length;
        int groups = scales.length;
        // ht[g][i] = (H t_g)[i]
        double[][] ht = new double[groups][cols];
        for (int j = 0; j < cols; j++) {
            if (codes[j] == 0) {
                continue;
            }
            int g = j / group;
            double t = codes[j];
            for (int i = 0; i < cols; i++) {
                ht[g][i] += h[i * cols + j] * t;
            }
        }
        double[] a = new double[groups * groups];
        double[] b = new double[groups];
        for (int g = 0; g < groups; g++) {
            for (int i = 0; i < cols; i++) {
                b[g] += ht[g][i] * row[i];
            }
            for (int k = 0; k < groups; k++) {
                double sum = 0;
                for (int j = k * group; j < Math.min(cols, (k + 1) * group); j++) {
                    sum += ht[g][j] * codes[j];
                }
                a[g * groups + k] = sum;
            }
        }
        double[] l = cholesky(a, groups);
        if (l == null) {
            return false;
        }
        double[] solved = solve(l, b, groups);
        short[] out = new short[groups];
        for (int g = 0; g < groups; g++) {
            if (!Double.isFinite(solved[g]) || Math.abs(solved[g]) > 65000) {
                return false;
            }
            out[g] = Halfs.scaleToF16((float) solved[g], name);
        }
        System.arraycopy(out, 0, scales, 0, groups);
        return true;
    }

    /** Solves {@code L L^T x = b}. */
    private static double[] solve(double[] l, double[] b, int n) {
        double[] y = new double[n];
        for (int i = 0; i < n; i++) {
            double sum = b[i];
            for (int k = 0; k < i; k++) {
                sum -= l[i * n + k] * y[k];
            }
            y[i] = sum / l[i * n + i];
        }
        double[] x = new double[n];
        for (int i = n - 1; i >= 0; i--) {
            double sum = y[i];
            for (int k = i + 1; k < n; k++) {
                sum -= l[k * n + i] * x[k];
            }
            x[i] = sum / l[i * n + i];
        }
        return x;
    }

    /** The visiting order: by decreasing H[i][i] with act-order (ties by index), else the natural one. */
    static int[] columnOrder(double[] h, int n, boolean actOrder) {
        Integer[] idx = new Integer[n];
        for (int i = 0; i < n; i++) {
            idx[i] = i;
        }
        if (actOrder) {
            Arrays.sort(idx, (a, b) -> Double.compare(h[b * n + b], h[a * n + a]));
        }
        return Arrays.stream(idx).mapToInt(Integer::intValue).toArray();
    }

    /**
     * The upper Cholesky factor U of the inverse of the damped, permuted H ({@code H^-1 = U^T U}): row k of U holds
     * how column k's error spreads over the later columns. Inputs no calibration token touched (H[i][i] = 0) get
     * a unit diagonal, so their weights are rounded without compensation. Retries with ten times the damping when
     * H is not positive definite.
     */
    static double[] inverseFactor(String name, double[] hessian, int n, int[] order, double damping) {
        double[] h = new double[n * n];
        double meanDiag = 0;
        for (int a = 0; a < n; a++) {
            for (int b = 0; b < n; b++) {
                h[a * n + b] = hessian[order[a] * n + order[b]];
            }
            if (!Double.isFinite(h[a * n + a])) {
                throw new IllegalArgumentException("tensor " + name + ": the calibration Hessian is not finite");
            }
            if (h[a * n + a] == 0) {
                h[a * n + a] = 1;
            }
            meanDiag += h[a * n + a] / n;
        }
        for (double damp = damping; damp < 1e6; damp *= 10) {
            double[] damped = h.clone();
            for (int a = 0; a < n; a++) {
                damped[a * n + a] += damp * meanDiag;
            }
            double[] l = cholesky(damped, n);
            if (l == null) {
                continue;
            }
            double[] inv = cholesky(inverseFromCholesky(l, n), n);
            if (inv == null) {
                continue;
            }
            double[] upper = new double[n * n];
            for (int a = 0; a < n; a++) {
                for (int b = a; b < n; b++) {
                    upper[a * n + b] = inv[b * n + a];
                }
            }
            return upper;
        }
        throw new IllegalArgumentException("tensor " + name + ": the calibration Hessian is not positive definite "
                + "even with heavy damping");
    }

    /** The lower Cholesky factor L of a symmetric matrix (A = L L^T), or null if A is not positive definite. */
    static double[] cholesky(double[] a, int n) {
        double[] l = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double sum = a[i * n + j];
                for (int k = 0; k < j; k++) {
                    sum -= l[i * n + k] * l[j * n + k];
                }
                if (i == j) {
                    if (!(sum > 0)) {
                        return null;
                    }
                    l[i * n + i] = Math.sqrt(sum);
                } else {
                    l[i * n + j] = sum / l[j * n + j];
                }
            }
        }
        return l;
    }

    /** {@code (L L^T)^-1 = L^-T L^-1} from the lower factor L. */
    static double[] inverseFromCholesky(double[] l, int n) {
        // Invert L (lower triangular) column by column by forward substitution.
        double[] li = new double[n * n];
        for (int c = 0; c < n; c++) {
            li[c * n + c] = 1 / l[c * n + c];
            for (int i = c + 1; i < n; i++) {
                double sum = 0;
                for (int k = c; k < i; k++) {
                    sum -= l[i * n + k] * li[k * n + c];
                }
                li[i * n + c] = sum / l[i * n + i];
            }
        }
        double[] inv = new double[n * n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double sum = 0;
                for (int k = i; k < n; k++) {
                    sum += li[k * n + i] * li[k * n + j];
                }
                inv[i * n + j] = sum;
                inv[j * n + i] = sum;
            }
        }
        return inv;
    }
}
