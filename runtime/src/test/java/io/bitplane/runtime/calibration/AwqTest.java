package io.bitplane.runtime.calibration;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.quant.QuantSpec;
import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** AWQ's scaling must leave the float model's function unchanged and never raise the measured output error. */
class AwqTest {

    @Test
    void scalingFoldedIntoANormKeepsTheProductAndLowersTheError() {
        Random rnd = new Random(9);
        int rows = 24;
        int cols = 64;
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (rnd.nextGaussian() * 0.1);
        }
        float[] norm = new float[cols];
        double[] h = new double[cols * cols];
        for (int i = 0; i < cols; i++) {
            norm[i] = 0.5f + rnd.nextFloat();
            // A few channels carry most of the activation energy, as in real models.
            h[i * cols + i] = i % 9 == 0 ? 40 : 0.2 + rnd.nextDouble();
        }
        float[] w0 = w.clone();
        float[] norm0 = norm.clone();
        Map<String, double[]> hessians = new HashMap<>(Map.of("m", h.clone()));
        Awq.Choice c = Awq.scaleGroup("g", List.of(new Awq.Matrix("m", w, new long[] {rows, cols},
                QuantSpec.parse("int4@32"), ActivationHint.F32)), h, norm, false, hessians);
        assertTrue(c.alpha() > 0, "these activations should call for scaling");
        assertTrue(c.errorAfter() < c.errorBefore(), c.toString());
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < cols; i++) {
                assertEquals(w0[r * cols + i] * norm0[i], w[r * cols + i] * norm[i], 1e-6, r + "," + i);
            }
        }
        // The Hessian follows the scaled inputs: H'_ii = H_ii / s_i^2, and s_i = norm0_i / norm_i.
        for (int i = 0; i < cols; i++) {
            double s = norm0[i] / norm[i];
            assertEquals(h[i * cols + i] / (s * s), hessians.get("m")[i * cols + i], 1e-6 * h[i * cols + i]);
        }
    }

    @Test
    void scalingFoldedIntoProducerRowsKeepsTheProduct() {
        Random rnd = new Random(10);
        int hidden = 40;
        int dim = 16;
        float[] down = new float[dim * hidden];
        float[] up = new float[hidden * dim];
        for (int i = 0; i < down.length; i++) {
            down[i] = (float) rnd.nextGaussian();
            up[i] = (float) rnd.nextGaussian();
        }
        double[] h = new double[hidden * hidden];
        for (int i = 0; i < hidden; i++) {
            h[i * hidden + i] = i % 5 == 0 ? 50 : 0.1;
        }
        float[] down0 = down.clone();
        float[] up0 = up.clone();
        Awq.scaleGroup("g", List.of(new Awq.Matrix("down", down, new long[] {dim, hidden},
                QuantSpec.parse("int4@32"), ActivationHint.F32)), h, up, true, new HashMap<>());
        // down[o][j] * up[j][k] summed over j is the product the float model computes.
        for (int o = 0; o < dim; o++) {
            for (int k = 0; k < dim; k++) {
                double before = 0;
                double after = 0;
                for (int j = 0; j < hidden; j++) {
                    before += (double) down0[o * hidden + j] * up0[j * dim + k];
                    after += (double) down[o * hidden + j] * up[j * dim + k];
                }
                assertEquals(before, after, 1e-4 * (1 + Math.abs(before)));
            }
        }
    }
}
