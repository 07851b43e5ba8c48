package io.bitplane.runtime;

/** Why a generation ended (the names are OpenAI's where it has one). */
public enum FinishReason {
    /** End-of-sequence token or a stop string. */
    STOP,
    /** The token limit or the context's end. */
    LENGTH,
    /** {@link Session#cancel()} was called. */
    CANCELLED
}
