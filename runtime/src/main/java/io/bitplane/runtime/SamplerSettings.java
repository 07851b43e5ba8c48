package io.bitplane.runtime;

import java.util.Map;
import java.util.TreeMap;

/**
 * How the next token is chosen from the logits, in llama.cpp's order: logit bias, then the penalties over the last
 * {@code repeatWindow} tokens (the prompt's included: repetition, then frequency and presence); at temperature 0 the
 * greedy choice (the first highest logit, as llama2.c), else top-k, temperature, softmax, min-p, top-p, then a draw
 * from a generator seeded with {@code seed}: the same seed gives the same text.
 *
 * @param topK              keep the k most likely tokens (0: all)
 * @param topP              keep the smallest set whose probability reaches p (1: all)
 * @param minP              drop tokens less likely than minP times the most likely (0: none)
 * @param repetitionPenalty divide positive (multiply negative) logits of recent tokens by this (1: off)
 * @param frequencyPenalty  subtract this times its count in the window from a recent token's logit (0: off;
 *                          OpenAI's {@code frequency_penalty}, -2..2)
 * @param presencePenalty   subtract this from the logit of each token in the window (0: off; OpenAI's
 *                          {@code presence_penalty}, -2..2)
 * @param logitBias         added to the logits of these token ids before anything else (OpenAI's
 *                          {@code logit_bias}: -100 all but bans a token, 100 all but forces it); ids are checked
 *                          against the vocabulary when a generation starts
 */
public record SamplerSettings(float temperature, int topK, float topP, float minP, float repetitionPenalty,
                              int repeatWindow, long seed, float frequencyPenalty, float presencePenalty,
                              Map<Integer, Float> logitBias) {

    public static final SamplerSettings GREEDY = new SamplerSettings(0, 0, 1, 0, 1, 64, 0);

    /** Settings without frequency or presence penalty or logit bias. */
    public SamplerSettings(float temperature, int topK, float topP, float minP, float repetitionPenalty,
                           int repeatWindow, long seed) {
        this(temperature, topK, topP, minP, repetitionPenalty, repeatWindow, seed, 0, 0, Map.of());
    }

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
        if (!Float.isFinite(frequencyPenalty) || !Float.isFinite(presencePenalty)) {
            throw new IllegalArgumentException("frequency and presence penalties must be finite");
        }
        logitBias = logitBias == null ? Map.of() : java.util.Collections.unmodifiableMap(new TreeMap<>(logitBias));
        for (Map.Entry<Integer, Float> e : logitBias.entrySet()) {
            if (e.getKey() < 0 || !Float.isFinite(e.getValue())) {
                throw new IllegalArgumentException("logit bias " + e.getValue() + " for token " + e.getKey()
                        + ": the id must be >= 0 and the bias finite");
            }
        }
    }

    /** Sampling at {@code temperature} with nucleus {@code topP} and a seed; other filters off. */
    public static SamplerSettings of(float temperature, float topP, long seed) {
        return new SamplerSettings(temperature, 0, topP, 0, 1, 64, seed);
    }

    public SamplerSettings withTopK(int k) {
        return new SamplerSettings(temperature, k, topP, minP, repetitionPenalty, repeatWindow, seed,
                frequencyPenalty, presencePenalty, logitBias);
    }

    public SamplerSettings withMinP(float p) {
        return new SamplerSettings(temperature, topK, topP, p, repetitionPenalty, repeatWindow, seed,
                frequencyPenalty, presencePenalty, logitBias);
    }

    public SamplerSettings withRepetitionPenalty(float penalty) {
        return new SamplerSettings(temperature, topK, topP, minP, penalty, repeatWindow, seed, frequencyPenalty,
                presencePenalty, logitBias);
    }

    public SamplerSettings withSeed(long s) {
        return new SamplerSettings(temperature, topK, topP, minP, repetitionPenalty, repeatWindow, s,
                frequencyPenalty, presencePenalty, logitBias);
    }

    /** These settings with OpenAI's frequency and presence penalties. */
    public SamplerSettings withPenalties(float frequency, float presence) {
        return new SamplerSettings(temperature, topK, topP, minP, repetitionPenalty, repeatWindow, seed, frequency,
                presence, logitBias);
    }

    /** These settings adding {@code bias} to the logits of its token ids. */
    public SamplerSettings withLogitBias(Map<Integer, Float> bias) {
        return new SamplerSettings(temperature, topK, topP, minP, repetitionPenalty, repeatWindow, seed,
                frequencyPenalty, presencePenalty, bias);
    }

    /** Whether any setting looks at the tokens so far. */
    boolean penalizes() {
        return repetitionPenalty != 1f || frequencyPenalty != 0f || presencePenalty != 0f;
    }
}
