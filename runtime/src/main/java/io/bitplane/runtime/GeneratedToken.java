package io.bitplane.runtime;

/**
 * One step of a generation.
 *
 * @param id    the token id, or {@link #TRAILING} for the last event of a generation that releases text held back
 *              (an incomplete character, or text that could have begun a stop string)
 * @param text  the text released by this step: may be empty while a character or a possible stop string is
 *              incomplete; the texts of all events concatenate to the whole output
 * @param logprobs the model's log-probabilities at this step when the request asked for them
 *              ({@link GenerationRequest#logprobs}), else null (and null for {@link #TRAILING})
 */
public record GeneratedToken(int id, String text, TokenLogprobs logprobs) {
    public static final int TRAILING = -1;

    public GeneratedToken(int id, String text) {
        this(id, text, null);
    }
}
