package io.bitplane.runtime;

/**
 * How the next token is chosen from the logits. Temperature 0 is greedy (the first highest logit, as llama2.c).
 * Otherwise, in order: repetition penalty over the last {@code repeatWindow} tokens, top-k, temperature, softmax,
 * min-p, top-p, then a draw from a generator seeded with {@code seed}: the same seed gives the same text.
 *
 * @param topK              keep the k most likely tokens (0: all)
 * @param topP              keep the smallest set whose probability reaches p (1: all)
 * @param minP              drop tokens less likely than minP times the most likely (0: none)
 * @param repetitionPenalty divide positive (multiply negative) logits of recent tokens by this (1: off)
 */
public record SamplerSettings(float temperature, int topK, float topP, float minP, float repetitionPenalty,
                              int repeatWindow, long seed) {

    public static final SamplerSettings GREEDY = new SamplerSettings(0, 0, 1, 0, 1, 64, 0);

    public SamplerSettings {
        if (!(temperature >= 0) || Float.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be >= 0, not " + temperature);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top_k must be >= 0, not " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top_p must be in (0, 1], not " + topP);
        }
        if (!(minP >= 0 && minP <= 1)) {
            throw new IllegalArgumentException("min_p must be in [0, 1], not " + minP);
        }
        if (!(repetitionPenalty > 0) || Float.isInfinite(repetitionPenalty)) {
            throw new IllegalArgumentException("repetition penalty must be > 0, not " + repetitionPenalty);
        }
        if (repeatWindow < 0) {
            throw new IllegalArgumentException("repeat window must be >= 0");
        }
    }

    /** Sampling at {@code temperature} with nucleus {@code topP} and a seed; other filters off. */
    public static SamplerSettings of(float temperature, float topP, long seed) {
        return new SamplerSettings(temperature, 0, topP, 0, 1, 64, seed);
    }

    public SamplerSettings withTopK(int k) {
        return new SamplerSettings(temperature, k, topP, minP, repetitionPenalty, repeatWindow, seed);
    }

    public SamplerSettings withMinP(float p) {
        return new SamplerSettings(temperature, topK, topP, p, repetitionPenalty, repeatWindow, seed);
    }

    public SamplerSettings withRepetitionPenalty(float penalty) {
        return new SamplerSettings(temperature, topK, topP, minP, penalty, repeatWindow, seed);
    }
}
