package io.bitplane.runtime;

import com.code_intelligence.jazzer.junit.FuzzTest;

import java.nio.charset.StandardCharsets;

/**
 * Any text as a grammar, any bytes as what a generation writes: the parser refuses a grammar only with a
 * {@link Gbnf.GrammarException} (or, for one nesting too deep to run, an IllegalArgumentException), and the
 * automaton takes or refuses every byte without throwing anything else; a text it calls complete is taken again
 * whole by a fresh automaton.
 */
class GrammarConstraintFuzzTest {
    @FuzzTest(maxDuration = "4m")
    void anyGrammarAnyText(byte[] input) {
        int cut = input.length == 0 ? 0 : (input[0] & 0xFF) % (input.length);
        String grammar = new String(input, 1 < input.length ? 1 : 0, Math.max(0, cut - 1), StandardCharsets.UTF_8);
        java.util.function.Supplier<TokenConstraint> rule;
        try {
            rule = GrammarConstraint.compile(grammar);
        } catch (IllegalArgumentException refused) {  // GrammarException, or nesting too deep
            return;
        }
        TokenConstraint c = rule.get();
        java.io.ByteArrayOutputStream taken = new java.io.ByteArrayOutputStream();
        for (int i = Math.max(cut, 1); i < input.length; i++) {
            byte[] b = {input[i]};
            try {
                if (!c.allows(b)) {
                    break;
                }
                c.accept(b);
                taken.write(b[0]);
            } catch (IllegalArgumentException tooAmbiguous) {
                return;
            }
        }
        if (c.complete()) {
            TokenConstraint again = rule.get();
            again.accept(taken.toByteArray());
            org.junit.jupiter.api.Assertions.assertTrue(again.complete());
        }
    }
}
