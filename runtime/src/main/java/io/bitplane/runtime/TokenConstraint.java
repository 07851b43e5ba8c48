package io.bitplane.runtime;

/**
 * A rule on what a generation may write (a grammar), applied token by token: a sampled token whose bytes the rule
 * refuses is replaced by a token sampled among those it allows, and end of sequence is allowed only once the text
 * is complete, where the generation then stops ({@link JsonSchemaConstraint}: OpenAI's JSON mode and structured
 * outputs). One instance follows one generation ({@link GenerationRequest#withConstraint} takes a factory).
 */
public interface TokenConstraint {
    /** Whether the text may go on with {@code bytes}; does not change the state. */
    boolean allows(byte[] bytes);

    /** Takes {@code bytes}, which {@link #allows} accepted, into the state. */
    void accept(byte[] bytes);

    /** Whether the text so far is complete: the generation ends here. */
    boolean complete();
}
