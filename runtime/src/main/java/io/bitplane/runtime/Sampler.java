package io.bitplane.runtime;

import io.bitplane.kernels.FloatRows;

import java.util.Arrays;
import java.util.SplittableRandom;

/** Picks tokens under {@link SamplerSettings}. One per generation (it holds the random state); not thread-safe. */
public final class Sampler {
    /** FloatRows where it runs in vectors, else null (see {@link #exp}). */
    private static final FloatRows VECTOR_ROWS = FloatRows.vectorizedOrNull();
    private final SamplerSettings settings;
    private final SplittableRandom random;
    private float[] probs = new float[0];
    private long[] keys = new long[0];
    /** Each token's count in the penalties' window, zero between steps; grown to the vocabulary. */
    private int[] counts = new int[0];
    /** The logit bias as arrays: a map lookup per entry each step would box. */
    private final int[] biasedTokens;
    private final float[] biases;

    public Sampler(SamplerSettings settings) {
        this.settings = settings;
        this.random = new SplittableRandom(settings.seed());
        this.biasedTokens = settings.logitBias().keySet().stream().mapToInt(Integer::intValue).toArray();
        this.biases = new float[biasedTokens.length];
        for (int i = 0; i < biases.length; i++) {
            biases[i] = settings.logitBias().get(biasedTokens[i]);
        }
    }

    /**
     * The penalties over the last {@code repeatWindow} tokens, as llama.cpp applies them: each token in the window
     * once, its logit divided (if positive; else multiplied) by the repetition penalty, then lowered by the
     * frequency penalty times its count and by the presence penalty.
     */
    private void penalize(float[] logits, int vocab, int[] history, int historyLength) {
        if (counts.length < vocab) {
            counts = new int[vocab];
        }
        int from = Math.max(0, historyLength - settings.repeatWindow());
        for (int i = from; i < historyLength; i++) {
            int t = history[i];
            if (t >= 0 && t < vocab) {
                counts[t]++;
            }
        }
        for (int i = from; i < historyLength; i++) {
            int t = history[i];
            if (t >= 0 && t < vocab && counts[t] > 0) {
                float l = logits[t];
                l = l > 0 ? l / settings.repetitionPenalty() : l * settings.repetitionPenalty();
                logits[t] = l - counts[t] * settings.frequencyPenalty() - settings.presencePenalty();
                counts[t] = 0;  // each token once
            }
        }
    }

    /**
     * The next token given {@code logits} (modified in place by the bias and the penalties) and the tokens so far
     * ({@code history[0 .. historyLength)}).
     */
    public int sample(float[] logits, int vocab, int[] history, int historyLength) {
        for (int i = 0; i < biasedTokens.length; i++) {
            if (biasedTokens[i] < vocab) {
                logits[biasedTokens[i]] += biases[i];
            }
        }
        if (settings.penalizes()) {
            penalize(logits, vocab, history, historyLength);
        }
        if (settings.temperature() == 0) {
            return argmax(logits, vocab);
        }
        if (probs.length < vocab) {
            probs = new float[vocab];
            keys = new long[vocab];
        }
        // Softmax at the temperature, in id order.
        float max = logits[argmax(logits, vocab)];
        for (int i = 0; i < vocab; i++) {
            probs[i] = (logits[i] - max) / settings.temperature();
        }
        exp(probs, vocab);
        double sum = sum(probs, vocab);
        boolean filtered = settings.topK() > 0 || settings.topP() < 1 || settings.minP() > 0;
        if (!filtered) {
            return draw(probs, null, vocab, sum);
        }
        // Candidates, sorted by logit (highest first, ties by id). Without top-k only tokens a filter can keep are
        // sorted: min-p keeps none below minP x the best token's weight (1 here), top-p none below (1 - p) / (vocab
        // - 1) of the total (they cannot reach the nucleus, as llama2.c argues); so a draw costs little more than
        // the softmax. Top-k needs its whole set, since its total normalizes the later filters.
        boolean prefilter = settings.topK() == 0;
        double floor = prefilter ? Math.max(settings.minP(),
                settings.topP() < 1 ? (1 - settings.topP()) / (vocab - 1) * sum : 0) : 0;
        int n = 0;
        for (int i = 0; i < vocab; i++) {
            if (probs[i] >= floor) {
                keys[n++] = sortKey(logits[i], i);
            }
        }
        Arrays.sort(keys, 0, n);
        double norm = sum;
        if (settings.topK() > 0) {
            n = Math.min(n, settings.topK());
            norm = 0;
            for (int i = 0; i < n; i++) {
                norm += probs[(int) keys[i]];
            }
        }
        if (settings.minP() > 0) {
            int keep = 1;
            while (keep < n && probs[(int) keys[keep]] >= settings.minP()) {
                keep++;
            }
            n = keep;
        }
        if (settings.topP() < 1) {
            double cumulative = 0;
            int keep = 0;
            while (keep < n) {
                cumulative += probs[(int) keys[keep++]] / norm;
                if (cumulative >= settings.topP()) {
                    break;
                }
            }
            n = keep;
        }
        double total = 0;
        for (int i = 0; i < n; i++) {
            total += probs[(int) keys[i]];
        }
        return draw(probs, keys, n, total);
    }

    /**
     * {@code a[i] = exp(a[i])} below n: in vectors where the Vector API runs ({@link FloatRows}' Panama form, within 2
     * ulp), else by {@link Math#exp}. One at a time, Math.exp took 200 us a token for 32,000 entries, serially on a
     * server's scheduler thread (10% of a 16-sequence step of the 418M model); vectors take 40. The scalar FloatRows
     * is not used: its StrictMath, kept there so that training runs repeat, is 1.6x slower than Math.exp. The
     * vector exponentials give the same bits cold or warm (Math.exp may differ by an ulp between the interpreter
     * and C2); without the vector module the probabilities can differ from them by 2 ulp, so a seed's text can
     * differ there in a rare draw.
     */
    private static void exp(float[] a, int n) {
        if (VECTOR_ROWS != null) {
            VECTOR_ROWS.exp(a, 0, n);
            return;
        }
        for (int i = 0; i < n; i++) {
            a[i] = (float) Math.exp(a[i]);
        }
    }

    /** The sum of {@code a[0 .. n)} in double, four sums side by side (one waited on each add before it). */
    private static double sum(float[] a, int n) {
        double s0 = 0;
        double s1 = 0;
        double s2 = 0;
        double s3 = 0;
        int i = 0;
        for (; i + 3 < n; i += 4) {
            s0 += a[i];
            s1 += a[i + 1];
            s2 += a[i + 2];
            s3 += a[i + 3];
        }
        for (; i < n; i++) {
            s0 += a[i];
        }
        return (s0 + s1) + (s2 + s3);
    }

    /** Draws from {@code probs} over ids {@code 0..n} (keys null) or over the ids in {@code keys[0..n)}. */
    private int draw(float[] probs, long[] keys, int n, double total) {
        double r = random.nextDouble() * total;
        double acc = 0;
        for (int i = 0; i < n; i++) {
            int id = keys == null ? i : (int) keys[i];
            acc += probs[id];
            if (r < acc) {
                return id;
            }
        }
        return keys == null ? n - 1 : (int) keys[n - 1];
    }

    /** Orders by logit, highest first, then by id: the float's bits made monotonic, negated, above the id. */
    private static long sortKey(float logit, int id) {
        int bits = Float.floatToIntBits(logit);
        int monotonic = bits ^ ((bits >> 31) & 0x7fffffff);
        return ((-(long) monotonic - 1) << 32) | id;
    }

    /** The greedy choice: the id of the highest of the first {@code vocab} logits (the lowest id on a tie). */
    public static int argmax(float[] logits, int vocab) {
        int best = 0;
        for (int i = 1; i < vocab; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best;
    }
}
