package io.bitplane.runtime;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The sampler draws from the distribution its filters leave, and nothing outside it. */
class SamplerTest {
    static final float[] LOGITS = {1.0f, 3.0f, 0.5f, 2.0f, 3.0f, -1.0f};

    static int[] counts(SamplerSettings s, int draws) {
        Sampler sampler = new Sampler(s);
        int[] c = new int[LOGITS.length];
        for (int i = 0; i < draws; i++) {
            c[sampler.sample(LOGITS.clone(), LOGITS.length, new int[0], 0)]++;
        }
        return c;
    }

    @Test
    void unfilteredDrawsFollowTheSoftmax() {
        int draws = 200_000;
        int[] c = counts(SamplerSettings.of(1f, 1f, 42), draws);
        double sum = 0;
        for (float l : LOGITS) {
            sum += Math.exp(l);
        }
        for (int i = 0; i < LOGITS.length; i++) {
            double p = Math.exp(LOGITS[i]) / sum;
            assertEquals(p, c[i] / (double) draws, 0.005, "token " + i);
        }
    }

    /**
     * A vocabulary of 37 (whole vectors of exponentials and a tail) at temperature 0.7, with a large spread of logits:
     * every token's frequency follows its softmax weight, computed here with Math.exp.
     */
    @Test
    void drawsOverWholeVectorsFollowTheSoftmax() {
        float[] logits = new float[37];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (i * 7 % 37) / 6f - 3f;  // -3 .. 3, in no order
        }
        float temperature = 0.7f;
        int draws = 300_000;
        Sampler sampler = new Sampler(SamplerSettings.of(temperature, 1f, 5));
        int[] c = new int[logits.length];
        for (int i = 0; i < draws; i++) {
            c[sampler.sample(logits.clone(), logits.length, new int[0], 0)]++;
        }
        double sum = 0;
        for (float l : logits) {
            sum += Math.exp(l / temperature);
        }
        for (int i = 0; i < logits.length; i++) {
            double p = Math.exp(logits[i] / temperature) / sum;
            assertEquals(p, c[i] / (double) draws, 0.004, "token " + i);
        }
    }

    @Test
    void filtersKeepOnlyTheirTokens() {
        // The two tied best tokens (1 and 4) hold 2 x 0.38 of the mass: a nucleus of 0.7 is exactly them.
        int[] nucleus = counts(SamplerSettings.of(1f, 0.7f, 1), 20_000);
        assertEquals(20_000, nucleus[1] + nucleus[4]);
        assertTrue(nucleus[1] > 9_000 && nucleus[4] > 9_000);
        int[] topK = counts(SamplerSettings.of(1f, 1f, 2).withTopK(3), 20_000);
        assertEquals(20_000, topK[1] + topK[4] + topK[3]);
        assertTrue(topK[3] > 1_000);
        // min-p 0.3: weights relative to the best are e^0 (1, 4), e^-1 = 0.37 (3), e^-2 = 0.14 (0): 1, 3, 4 remain.
        int[] minP = counts(SamplerSettings.of(1f, 1f, 3).withMinP(0.3f), 20_000);
        assertEquals(20_000, minP[1] + minP[4] + minP[3]);
    }

    /**
     * llama.cpp's penalties on the logits the sampler leaves behind: each token of the window once (a token seen
     * twice loses twice the frequency penalty, not four times), repetition first, tokens before the window untouched.
     */
    @Test
    void penaltiesLowerTheWindowsTokensOnce() {
        SamplerSettings s = new SamplerSettings(0, 0, 1, 0, 2f, 4, 0).withPenalties(0.5f, 0.25f);
        float[] logits = LOGITS.clone();
        int[] history = {0, 2, 1, 5, 1, 4};  // the window of 4: 5, 1, 1, 4; tokens 0 and 2 are older
        int token = new Sampler(s).sample(logits, LOGITS.length, history, history.length);
        assertEquals(1.0f, logits[0]);
        assertEquals(0.5f, logits[2]);
        assertEquals(3.0f / 2 - 2 * 0.5f - 0.25f, logits[1]);
        assertEquals(3.0f / 2 - 0.5f - 0.25f, logits[4]);
        assertEquals(-1.0f * 2 - 0.5f - 0.25f, logits[5]);
        assertEquals(2.0f, logits[3]);
        assertEquals(3, token, "the greedy choice after the penalties");
        // The counts are cleared between steps: a second step sees the same window the same way.
        float[] again = LOGITS.clone();
        Sampler reused = new Sampler(s);
        reused.sample(LOGITS.clone(), LOGITS.length, history, history.length);
        reused.sample(again, LOGITS.length, history, history.length);
        assertEquals(logits[1], again[1]);
    }

    /** A negative presence penalty (OpenAI allows -2..2) favours what was said. */
    @Test
    void negativePenaltiesRaiseTheWindowsTokens() {
        float[] logits = LOGITS.clone();
        int token = new Sampler(SamplerSettings.GREEDY.withPenalties(0, -1.5f)).sample(logits, LOGITS.length,
                new int[] {3}, 1);
        assertEquals(3.5f, logits[3]);
        assertEquals(3, token);
    }

    /** Logit bias comes first and goes to the ids named; an id past this vocabulary is skipped here. */
    @Test
    void logitBiasShiftsItsTokens() {
        SamplerSettings banned = SamplerSettings.of(1f, 1f, 9).withLogitBias(java.util.Map.of(1, -100f, 4, -100f,
                99, 5f));
        int[] c = counts(banned, 20_000);
        assertEquals(0, c[1] + c[4]);
        assertTrue(c[3] > 10_000, "token 3 is now the likeliest");
        float[] logits = LOGITS.clone();
        assertEquals(5, new Sampler(SamplerSettings.GREEDY.withLogitBias(java.util.Map.of(5, 10f)))
                .sample(logits, LOGITS.length, new int[0], 0));
        assertEquals(9f, logits[5]);
    }

    @Test
    void settingsRefuseWhatCannotBeApplied() {
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> SamplerSettings.GREEDY.withLogitBias(java.util.Map.of(-1, 1f)));
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> SamplerSettings.GREEDY.withLogitBias(java.util.Map.of(1, Float.NaN)));
        org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> SamplerSettings.GREEDY.withPenalties(Float.POSITIVE_INFINITY, 0));
    }
}
