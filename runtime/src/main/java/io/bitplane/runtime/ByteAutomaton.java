package io.bitplane.runtime;

/**
 * A {@link TokenConstraint} that reads the text a byte at a time ({@link #feed}): {@link #accept} feeds a token's
 * bytes, {@link #allows} feeds them to a scratch copy of the state, so that trying a token changes nothing. The
 * JSON, schema and function-call rules are such automata.
 *
 * @param <A> the automaton's own type, whose state {@link #copyFrom} copies
 */
abstract class ByteAutomaton<A extends ByteAutomaton<A>> implements TokenConstraint {
    private A scratch;

    /** Takes one byte (0-255); false, leaving the state undefined, when the text cannot go on with it. */
    abstract boolean feed(int b);

    /** A new automaton of the same rule, for scratch use. */
    abstract A twin();

    /** Takes {@code other}'s state. */
    abstract void copyFrom(A other);

    /** {@link #copyFrom} for an automaton known to be of this one's type (a twin). */
    @SuppressWarnings("unchecked")
    final void copyStateOf(ByteAutomaton<?> other) {
        copyFrom((A) other);
    }

    @Override
    @SuppressWarnings("unchecked")
    public final boolean allows(byte[] bytes) {
        if (scratch == null) {
            scratch = twin();
        }
        scratch.copyFrom((A) this);
        for (byte b : bytes) {
            if (!scratch.feed(b & 0xFF)) {
                return false;
            }
        }
        return true;
    }

    @Override
    public final void accept(byte[] bytes) {
        for (byte b : bytes) {
            if (!feed(b & 0xFF)) {
                throw new IllegalArgumentException("byte " + (b & 0xFF) + " does not continue the text "
                        + getClass().getSimpleName() + " allows");
            }
        }
    }
}
