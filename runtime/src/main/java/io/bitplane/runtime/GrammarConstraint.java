package io.bitplane.runtime;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Supplier;

/**
 * llama.cpp's {@code grammar} (GBNF, {@link Gbnf}) as a {@link TokenConstraint}: the text must be one the grammar's
 * {@code root} derives. Run as llama.cpp runs it: the state is the set of parse stacks that the text so far leaves
 * possible, each stack's top a character class the next character must match (a rule reference on top is expanded
 * into its alternatives; an empty stack is a complete parse). A character takes every stack whose top matches it
 * one element on. The text arrives as bytes: a character is matched once its UTF-8 bytes are all in, and a lead
 * byte is taken only when some stack's class holds a character beginning with it.
 *
 * <p>Stacks are persistent linked frames, shared between states, so that trying a token ({@link #allows}) copies
 * one reference: the generation tries every token of the vocabulary when the sampled one is refused.
 */
public final class GrammarConstraint extends ByteAutomaton<GrammarConstraint> {
    private final Gbnf grammar;
    /** The stacks the text leaves possible; null stands for the complete parse (an empty stack). */
    private List<Frame> stacks;
    /** A character being read: its bytes still to come (0: none), and its bits so far. */
    private int pending;
    private int partial;
    private int partialLength;

    /** "Go on with element {@code index} of {@code alternative}, then with {@code next}" (null: the end). */
    private record Frame(int alternative, int index, Frame next) {
    }

    /** The most stacks a state may hold: an ambiguous grammar could otherwise multiply them past memory. */
    static final int MAX_STACKS = 4096;
    /** The most rule references expanded before a character (each a level of recursion here). */
    static final int MAX_NESTING = 1000;

    private GrammarConstraint(Gbnf grammar, List<Frame> stacks) {
        this.grammar = grammar;
        this.stacks = stacks;
    }

    /**
     * A factory of this rule for the GBNF {@code text}.
     *
     * @throws Gbnf.GrammarException naming the line and column at fault
     */
    public static Supplier<TokenConstraint> compile(String text) {
        Gbnf grammar = Gbnf.parse(text);
        Set<Frame> start = new LinkedHashSet<>();
        for (int a : grammar.rules.get(grammar.root)) {
            expand(grammar, new Frame(a, 0, null), start, 0);
        }
        List<Frame> initial = nullable(start);
        return () -> new GrammarConstraint(grammar, initial);
    }

    /** A list that may hold null (List.copyOf may not). */
    private static List<Frame> nullable(Set<Frame> frames) {
        return java.util.Collections.unmodifiableList(new ArrayList<>(frames));
    }

    /**
     * Adds the stacks that {@code f} stands for once rule references on top are expanded: each top a character
     * class, or null for a finished parse.
     */
    private static void expand(Gbnf g, Frame f, Set<Frame> out, int depth) {
        f = unfinished(g, f);
        if (f == null) {
            out.add(null);
            return;
        }
        int e = g.alternatives.get(f.alternative)[f.index];
        if (e >= 0) {
            if (out.size() >= MAX_STACKS) {
                throw new IllegalArgumentException("the grammar is too ambiguous: its parse holds more than "
                        + MAX_STACKS + " stacks");
            }
            out.add(f);
            return;
        }
        if (depth == MAX_NESTING) {
            throw new IllegalArgumentException("the grammar nests more than " + MAX_NESTING + " rules before a "
                    + "character");
        }
        // What follows the reference, without finished frames: a repetition (star ::= x star | "") would otherwise
        // grow its stack by one frame a character.
        Frame after = unfinished(g, new Frame(f.alternative, f.index + 1, f.next));
        for (int a : g.rules.get(-1 - e)) {
            expand(g, new Frame(a, 0, after), out, depth + 1);
        }
    }

    /** {@code f} past the frames whose alternatives are done (null: the parse is). */
    private static Frame unfinished(Gbnf g, Frame f) {
        while (f != null && f.index == g.alternatives.get(f.alternative).length) {
            f = f.next;  // this alternative is done: go on with what follows the reference to its rule
        }
        return f;
    }

    @Override
    public boolean complete() {
        return pending == 0 && stacks.contains(null);
    }

    /** Complete, and no stack can take another character: nothing may follow. */
    @Override
    public boolean atEnd() {
        return complete() && stacks.size() == 1;
    }

    @Override
    boolean feed(int b) {
        if (pending == 0) {
            if (b < 0x80) {
                return step(b);
            }
            int length = b >= 0xF0 && b <= 0xF4 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 && b < 0xE0 ? 2 : 0;
            if (length == 0) {
                return false;  // a continuation byte first, or a lead byte UTF-8 never uses
            }
            pending = length - 1;
            partialLength = length;
            partial = b & (0xFF >> (length + 1));
            return possible();
        }
        if ((b & 0xC0) != 0x80) {
            return false;
        }
        partial = partial << 6 | (b & 0x3F);
        if (--pending == 0) {
            int least = partialLength == 2 ? 0x80 : partialLength == 3 ? 0x800 : 0x10000;
            if (partial < least || partial > Character.MAX_CODE_POINT || partial >= 0xD800 && partial <= 0xDFFF) {
                return false;  // an overlong form, a surrogate or past Unicode: not UTF-8
            }
            return step(partial);
        }
        return possible();
    }

    /** Whether some stack's class holds a character that the bytes read so far begin. */
    private boolean possible() {
        int lo = partial << (6 * pending);
        int hi = lo | ((1 << (6 * pending)) - 1);
        if (partialLength == 2) {
            lo = Math.max(lo, 0x80);
        } else if (partialLength == 3) {
            lo = Math.max(lo, 0x800);
        } else {
            lo = Math.max(lo, 0x10000);
        }
        hi = Math.min(hi, Character.MAX_CODE_POINT);
        for (Frame f : stacks) {
            if (f != null && classOf(f).matchesSomeIn(lo, hi)) {
                return true;
            }
        }
        return false;
    }

    /** Moves every stack whose top matches code point {@code c} one element on. */
    private boolean step(int c) {
        Set<Frame> next = null;  // made on the first match: most tokens a generation tries fail at once
        for (Frame f : stacks) {
            if (f != null && classOf(f).matches(c)) {
                if (next == null) {
                    next = new LinkedHashSet<>();
                }
                expand(grammar, new Frame(f.alternative, f.index + 1, f.next), next, 0);
            }
        }
        if (next == null) {
            return false;
        }
        stacks = nullable(next);
        return !next.isEmpty();
    }

    private Gbnf.CharClass classOf(Frame f) {
        return grammar.classes.get(grammar.alternatives.get(f.alternative)[f.index]);
    }

    /** The parse stacks and the character being read: states equal in these allow the same continuations. */
    @Override
    public Object state() {
        return java.util.Arrays.asList(stacks, pending, partial, partialLength);
    }

    @Override
    GrammarConstraint twin() {
        return new GrammarConstraint(grammar, stacks);
    }

    @Override
    void copyFrom(GrammarConstraint o) {
        stacks = o.stacks;
        pending = o.pending;
        partial = o.partial;
        partialLength = o.partialLength;
    }
}
