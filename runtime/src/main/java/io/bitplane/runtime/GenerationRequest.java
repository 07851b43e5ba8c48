package io.bitplane.runtime;

import java.util.List;

/**
 * What to generate.
 *
 * @param prompt    the text to continue (encoded with BOS first when {@code addBos})
 * @param maxTokens the most new tokens to generate
 * @param sampler   how to pick tokens
 * @param stop      strings that end the generation when they appear in the output (not included in it)
 * @param promptTokens the prompt already encoded (as {@code prompt} with {@code addBos} encodes), or null: a caller
 *                  that had to count the tokens (a server checking its limits) passes them, so the prompt is not
 *                  encoded twice
 */
public record GenerationRequest(String prompt, int maxTokens, SamplerSettings sampler, List<String> stop,
                                boolean addBos, int[] promptTokens) {

    public GenerationRequest(String prompt, int maxTokens, SamplerSettings sampler, List<String> stop,
                             boolean addBos) {
        this(prompt, maxTokens, sampler, stop, addBos, null);
    }

    public GenerationRequest {
        if (prompt == null) {
            prompt = "";
        }
        if (maxTokens < 0) {
            throw new IllegalArgumentException("max tokens must be >= 0, not " + maxTokens);
        }
        stop = stop == null ? List.of() : List.copyOf(stop);
        if (stop.stream().anyMatch(String::isEmpty)) {
            throw new IllegalArgumentException("stop strings may not be empty");
        }
        if (sampler == null) {
            sampler = SamplerSettings.GREEDY;
        }
        promptTokens = promptTokens == null ? null : promptTokens.clone();
    }

    /** This request with its prompt already encoded (the caller vouches they are {@code prompt}'s tokens). */
    public GenerationRequest withPromptTokens(int[] tokens) {
        return new GenerationRequest(prompt, maxTokens, sampler, stop, addBos, tokens);
    }

    /** A copy of the pre-encoded prompt, or null. */
    @Override
    public int[] promptTokens() {
        return promptTokens == null ? null : promptTokens.clone();
    }

    /** Greedy continuation of {@code prompt} for at most {@code maxTokens} tokens. */
    public static GenerationRequest of(String prompt, int maxTokens) {
        return new GenerationRequest(prompt, maxTokens, SamplerSettings.GREEDY, List.of(), true);
    }

    public GenerationRequest withSampler(SamplerSettings s) {
        return new GenerationRequest(prompt, maxTokens, s, stop, addBos, promptTokens);
    }

    public GenerationRequest withStop(List<String> strings) {
        return new GenerationRequest(prompt, maxTokens, sampler, strings, addBos, promptTokens);
    }
}
