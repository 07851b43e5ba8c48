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
 * @param logprobs  -1 for none; else each generated token comes with its log-probability and those of this many
 *                  most likely tokens ({@link TokenLogprobs}; at most {@link #MAX_LOGPROBS})
 * @param constraint makes the rule the output must follow, one per generation ({@link TokenConstraint}), or null
 * @param promptLogprobs -1 for none; else every prompt token after the first comes with its log-probability given
 *                  those before it and those of this many most likely tokens ({@link GenerationResult#promptLogprobs}:
 *                  OpenAI's {@code echo} with {@code logprobs}, as evaluation harnesses score texts). The whole
 *                  prompt is then computed, none of it taken from the session's cache, and {@code maxTokens} may be
 *                  0 (the prompt is scored, nothing generated)
 */
public record GenerationRequest(String prompt, int maxTokens, SamplerSettings sampler, List<String> stop,
                                boolean addBos, int[] promptTokens, int logprobs,
                                java.util.function.Supplier<TokenConstraint> constraint, int promptLogprobs) {

    /** The most alternatives a step reports (OpenAI's limit for top_logprobs). */
    public static final int MAX_LOGPROBS = 20;

    public GenerationRequest(String prompt, int maxTokens, SamplerSettings sampler, List<String> stop,
                             boolean addBos) {
        this(prompt, maxTokens, sampler, stop, addBos, null, -1, null, -1);
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
        for (int top : new int[] {logprobs, promptLogprobs}) {
            if (top < -1 || top > MAX_LOGPROBS) {
                throw new IllegalArgumentException("logprobs must be -1 (none) or 0.." + MAX_LOGPROBS + ", not "
                        + top);
            }
        }
    }

    /** This request with its prompt already encoded (the caller vouches they are {@code prompt}'s tokens). */
    public GenerationRequest withPromptTokens(int[] tokens) {
        return new GenerationRequest(prompt, maxTokens, sampler, stop, addBos, tokens, logprobs, constraint,
                promptLogprobs);
    }

    /** This request reporting each token's log-probability and those of the {@code top} most likely (-1: none). */
    public GenerationRequest withLogprobs(int top) {
        return new GenerationRequest(prompt, maxTokens, sampler, stop, addBos, promptTokens, top, constraint,
                promptLogprobs);
    }

    /** This request with its output held to the rule each {@code rule.get()} makes (null: none). */
    public GenerationRequest withConstraint(java.util.function.Supplier<TokenConstraint> rule) {
        return new GenerationRequest(prompt, maxTokens, sampler, stop, addBos, promptTokens, logprobs, rule,
                promptLogprobs);
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
        return new GenerationRequest(prompt, maxTokens, s, stop, addBos, promptTokens, logprobs, constraint,
                promptLogprobs);
    }

    public GenerationRequest withStop(List<String> strings) {
        return new GenerationRequest(prompt, maxTokens, sampler, strings, addBos, promptTokens, logprobs,
                constraint, promptLogprobs);
    }

    /** This request scoring its prompt's tokens, each with the {@code top} most likely (-1: not scored). */
    public GenerationRequest withPromptLogprobs(int top) {
        return new GenerationRequest(prompt, maxTokens, sampler, stop, addBos, promptTokens, logprobs, constraint,
                top);
    }
}
