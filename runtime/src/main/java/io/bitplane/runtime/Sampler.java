package io.bitplane.runtime;

import java.util.Arrays;
import java.util.SplittableRandom;

/** Picks tokens under {@link SamplerSettings}. One per generation (it holds the random state); not thread-safe. */
public final class Sampler {
    private final SamplerSettings settings;
    private final SplittableRandom random;
    private float[] probs = new float[0];
    private Integer[] order = new Integer[0];

    public Sampler(SamplerSettings settings) {
        this.settings = settings;
        this.random = new SplittableRandom(settings.seed());
    }

    /**
     * The next token given {@code logits} (modified in place by the penalty) and the tokens so far
     * ({@code history[0 .. historyLength)}).
     */
    public int sample(float[] logits, int vocab, int[] history, int historyLength) {
        if (settings.repetitionPenalty() != 1f) {
            boolean[] seen = new boolean[vocab];
            for (int i = Math.max(0, historyLength - settings.repeatWindow()); i < historyLength; i++) {
                int t = history[i];
                if (t >= 0 && t < vocab && !seen[t]) {
                    seen[t] = true;
                    logits[t] = logits[t] > 0 ? logits[t] / settings.repetitionPenalty()
                            : logits[t] * settings.repetitionPenalty();
                }
            }
        }
        if (settings.temperature() == 0) {
            return argmax(logits, vocab);
        }
        if (order.length < vocab) {
            order = new Integer[vocab];
            probs = new float[vocab];
        }
        for (int i = 0; i < vocab; i++) {
            order[i] = i;
        }
        // Sort by logit, highest first (ties by id, so the order is deterministic).
        Arrays.sort(order, 0, vocab, (a, b) -> logits[a] != logits[b] ? Float.compare(logits[b], logits[a]) : a - b);
        int n = settings.topK() > 0 ? Math.min(settings.topK(), vocab) : vocab;
        double max = logits[order[0]];
        double sum = 0;
        for (int i = 0; i < n; i++) {
            probs[i] = (float) Math.exp((logits[order[i]] - max) / settings.temperature());
            sum += probs[i];
        }
        for (int i = 0; i < n; i++) {
            probs[i] /= (float) sum;
        }
        if (settings.minP() > 0) {
            float floor = probs[0] * settings.minP();
            int keep = 1;
            while (keep < n && probs[keep] >= floor) {
                keep++;
            }
            n = keep;
        }
        if (settings.topP() < 1) {
            double cumulative = 0;
            int keep = 0;
            while (keep < n) {
                cumulative += probs[keep++];
                if (cumulative >= settings.topP()) {
                    break;
                }
            }
            n = keep;
        }
        double total = 0;
        for (int i = 0; i < n; i++) {
            total += probs[i];
        }
        double r = random.nextDouble() * total;
        double acc = 0;
        for (int i = 0; i < n; i++) {
            acc += probs[i];
            if (r < acc) {
                return order[i];
            }
        }
        return order[n - 1];
    }

    static int argmax(float[] logits, int vocab) {
        int best = 0;
        for (int i = 1; i < vocab; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }
}
