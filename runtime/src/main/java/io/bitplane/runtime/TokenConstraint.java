package io.bitplane.runtime;

/**
 * A rule on what a generation may write (a grammar), applied token by token: a sampled token whose bytes the rule
 * refuses is replaced by a token sampled among those it allows, and end of sequence is allowed only once the text
 * is complete, and the generation stops where nothing may follow ({@link JsonSchemaConstraint}: OpenAI's JSON mode
 * and structured outputs; {@link GrammarConstraint}: llama.cpp's GBNF grammars). One instance follows one
 * generation ({@link GenerationRequest#withConstraint} takes a factory).
 */
public interface TokenConstraint {
    /** Whether the text may go on with {@code bytes}; does not change the state. */
    boolean allows(byte[] bytes);

    /** Takes {@code bytes}, which {@link #allows} accepted, into the state. */
    void accept(byte[] bytes);

    /** Whether the text so far is complete: end of sequence may come now. */
    boolean complete();

    /**
     * Whether nothing may follow the text: the generation ends here. By default as soon as it is complete (a JSON
     * value); a grammar whose text may go on after a complete one ({@code [a-z]+}) overrides it.
     */
    default boolean atEnd() {
        return complete();
    }

    /**
     * The state, as a value equal (and of equal hash) for states that allow the same continuations, for a
     * generation to remember which tokens a state allows; null (the default) when the rule cannot tell.
     */
    default Object state() {
        return null;
    }
}
