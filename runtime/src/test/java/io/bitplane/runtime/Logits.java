package io.bitplane.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A model's logits after each token of a sequence, and their comparison with a reference's, for tests. */
final class Logits {
    private Logits() {
    }

    /** The logits after each of {@code tokens}, appended one at a time to a new session of {@code model}. */
    static float[][] ofEachToken(Model model, int[] tokens) {
        try (Session s = model.newSession()) {
            float[][] out = new float[tokens.length][];
            for (int p = 0; p < tokens.length; p++) {
                out[p] = s.append(tokens[p]).clone();
            }
            assertEquals(tokens.length, s.position());
            return out;
        }
    }

    /**
     * At every position, {@code got} within {@code tolerance} of the largest magnitude of {@code want}'s logits, and
     * that magnitude above {@code least} (logits that small would test nothing).
     */
    static void assertClose(float[][] want, float[][] got, float least, float tolerance) {
        assertEquals(want.length, got.length);
        for (int p = 0; p < want.length; p++) {
            float reach = 0;
            float worst = 0;
            for (int i = 0; i < want[p].length; i++) {
                reach = Math.max(reach, Math.abs(want[p][i]));
                worst = Math.max(worst, Math.abs(got[p][i] - want[p][i]));
            }
            assertTrue(reach > least, "position " + p + ": logits this small test nothing: " + reach);
            assertTrue(worst <= tolerance * reach, "position " + p + ": logits differ by " + worst + " of " + reach);
        }
    }
}
