package io.bitplane.runtime;

/**
 * The outcome of a generation.
 *
 * @param promptNanos     time to process the prompt (and so, about, to the first token)
 * @param generationNanos time from the first new token's forward pass to the end
 * @param cachedPromptTokens prompt tokens the session's cache already held, which were not computed again
 * @param promptLogprobs  when the request asked ({@link GenerationRequest#promptLogprobs}), the log-probabilities of
 *                        the prompt's tokens after the first, in order (fewer when the generation was cancelled
 *                        first); else empty
 */
public record GenerationResult(String text, int promptTokens, int generatedTokens, FinishReason finishReason,
                               long promptNanos, long generationNanos, int cachedPromptTokens,
                               java.util.List<TokenLogprobs> promptLogprobs) {

    public GenerationResult {
        promptLogprobs = java.util.List.copyOf(promptLogprobs);
    }

    /** Decoding speed: generated tokens after the first per second (0 when too few to tell). */
    public double tokensPerSecond() {
        return generatedTokens > 1 && generationNanos > 0 ? (generatedTokens - 1) * 1e9 / generationNanos : 0;
    }
}
