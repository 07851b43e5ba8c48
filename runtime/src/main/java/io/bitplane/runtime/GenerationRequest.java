package io.bitplane.runtime;

import java.util.List;

/**
 * What to generate.
 *
 * @param prompt    the text to continue (encoded with BOS first when {@code addBos})
 * @param maxTokens the most new tokens to generate
 * @param sampler   how to pick tokens
 * @param stop      strings that end the generation when they appear in the output (not included in it)
 */
public record GenerationRequest(String prompt, int maxTokens, SamplerSettings sampler, List<String> stop,
                                boolean addBos) {
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
    }

    /** Greedy continuation of {@code prompt} for at most {@code maxTokens} tokens. */
    public static GenerationRequest of(String prompt, int maxTokens) {
        return new GenerationRequest(prompt, maxTokens, SamplerSettings.GREEDY, List.of(), true);
    }

    public GenerationRequest withSampler(SamplerSettings s) {
        return new GenerationRequest(prompt, maxTokens, s, stop, addBos);
    }

    public GenerationRequest withStop(List<String> strings) {
        return new GenerationRequest(prompt, maxTokens, sampler, strings, addBos);
    }
}
