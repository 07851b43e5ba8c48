package io.bitplane.runtime.calibration;

import io.bitplane.format.ModelConfig;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The training pass's gradients against finite differences of its own forward pass, for every kind of matrix and
 * norm, on a tiny random model (tied and untied, grouped-query attention). That its forward pass is the runtime's
 * is checked on a real model in {@code DistillationTest}.
 */
class TrainingPassTest {

    private static ModelConfig tiny(boolean tied) {
        return new ModelConfig(8, 12, 2, 4, 2, 11, 16, 10000f, 1e-5f, tied);
    }

    private static TrainingWeights random(ModelConfig c, long seed) {
        Random rnd = new Random(seed);
        TrainingWeights w = TrainingWeights.weights(c);
        for (int m = 0; m < w.matrices.length; m++) {
            for (int i = 0; i < w.matrices[m].length; i++) {
                w.matrices[m][i] = (float) (rnd.nextGaussian() * 0.5);
            }
            w.transpose(m);
        }
        for (float[] n : w.norms) {
            for (int i = 0; i < n.length; i++) {
                n[i] = 0.5f + rnd.nextFloat();
            }
        }
        return w;
    }

    /** A loss with a known gradient: the logits dotted with fixed random weights. */
    private static double loss(TrainingPass pass, TrainingWeights w, int[] tokens, float[] projection) {
        pass.forward(w, tokens);
        double sum = 0;
        float[] logits = pass.logits();
        for (int i = 0; i < projection.length; i++) {
            sum += (double) logits[i] * projection[i];
        }
        return sum;
    }

    @Test
    void gradientsMatchFiniteDifferencesTied() {
        checkGradients(tiny(true), 3);
    }

    @Test
    void gradientsMatchFiniteDifferencesUntied() {
        checkGradients(tiny(false), 4);
    }

    private void checkGradients(ModelConfig c, long seed) {
        TrainingWeights w = random(c, seed);
        Random rnd = new Random(seed + 100);
        int[] tokens = new int[7];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = rnd.nextInt(c.vocabSize());
        }
        float[] projection = new float[(tokens.length - 1) * c.vocabSize()];
        for (int i = 0; i < projection.length; i++) {
            projection[i] = (float) rnd.nextGaussian();
        }
        TrainingPass pass = new TrainingPass(c);
        TrainingWeights grads = TrainingWeights.gradients(c);
        loss(pass, w, tokens, projection);
        pass.backward(w, projection, grads);

        int checked = 0;
        for (int m = 0; m < w.matrices.length; m++) {
            for (int trial = 0; trial < 6; trial++) {
                int i = rnd.nextInt(w.matrices[m].length);
                if (m == TrainingWeights.embedding(c) && trial < 3) {
                    // Make sure rows that are looked up are checked too.
                    i = tokens[trial] * c.dim() + rnd.nextInt(c.dim());
                }
                double numeric = numeric(pass, w, tokens, projection, w.matrices[m], i, m);
                assertClose(numeric, grads.matrices[m][i], TrainingWeights.matrixName(c, m) + "[" + i + "]");
                checked++;
            }
        }
        for (int n = 0; n < w.norms.length; n++) {
            for (int trial = 0; trial < 4; trial++) {
                int i = rnd.nextInt(c.dim());
                double numeric = numeric(pass, w, tokens, projection, w.norms[n], i, -1);
                assertClose(numeric, grads.norms[n][i], TrainingWeights.normName(c, n) + "[" + i + "]");
                checked++;
            }
        }
        assertTrue(checked > 50);
    }

    private static double numeric(TrainingPass pass, TrainingWeights w, int[] tokens, float[] projection,
                                  float[] array, int i, int matrix) {
        float saved = array[i];
        // Small enough that curvature does not matter, large enough that float rounding does not either.
        float h = 2e-3f * Math.max(1, Math.abs(saved));
        array[i] = saved + h;
        refresh(w, matrix);
        double up = loss(pass, w, tokens, projection);
        array[i] = saved - h;
        refresh(w, matrix);
        double down = loss(pass, w, tokens, projection);
        array[i] = saved;
        refresh(w, matrix);
        return (up - down) / (2 * h);
    }

    private static void refresh(TrainingWeights w, int matrix) {
        if (matrix >= 0) {
            w.transpose(matrix);
        }
    }

    private static void assertClose(double expected, double actual, String what) {
        double tolerance = 2e-2 * Math.max(1, Math.abs(expected));
        assertEquals(expected, actual, tolerance, what + ": finite difference " + expected + ", backward " + actual);
    }

    @Test
    void gradientsAccumulateOverCalls() {
        ModelConfig c = tiny(true);
        TrainingWeights w = random(c, 5);
        int[] tokens = {1, 4, 2, 9};
        float[] dLogits = new float[3 * c.vocabSize()];
        java.util.Arrays.fill(dLogits, 0.1f);
        TrainingPass pass = new TrainingPass(c);
        TrainingWeights once = TrainingWeights.gradients(c);
        pass.forward(w, tokens);
        pass.backward(w, dLogits, once);
        TrainingWeights twice = TrainingWeights.gradients(c);
        for (int r = 0; r < 2; r++) {
            pass.forward(w, tokens);
            pass.backward(w, dLogits, twice);
        }
        int m = TrainingWeights.matrix(1, TrainingWeights.UP);
        for (int i = 0; i < once.matrices[m].length; i++) {
            assertEquals(2 * once.matrices[m][i], twice.matrices[m][i], 1e-4f * Math.max(1, Math.abs(once.matrices[m][i])));
        }
    }
}
