package io.bitplane.runtime;

import com.code_intelligence.jazzer.junit.FuzzTest;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * JSON mode against Jackson's strict parser on any bytes: what the automaton takes whole is one JSON object (it
 * never lets through what is not JSON), and every object written in printable ASCII without white space it takes
 * (white space it bounds as llama.cpp's grammar does, so it may refuse spaced JSON). Taking bytes never throws.
 */
class JsonObjectConstraintFuzzTest {
    @FuzzTest(maxDuration = "4m")
    void anyText(byte[] bytes) {
        String text = new String(bytes, StandardCharsets.UTF_8);
        byte[] utf8 = text.getBytes(StandardCharsets.UTF_8);
        TokenConstraint c = JsonSchemaConstraint.anyObject();
        boolean taken = true;
        for (int i = 0; i < utf8.length && taken; i++) {
            taken = c.allows(new byte[] {utf8[i]});
            if (taken) {
                c.accept(new byte[] {utf8[i]});
            }
        }
        boolean whole = taken && c.complete();
        boolean jackson = JsonObjectConstraintTest.jacksonReadsAnObject(text);
        if (whole) {
            assertTrue(jackson, text);
        }
        // Jackson reads the four digits after backslash-u by their low byte, taking U+0464 for 'd': only
        // printable ASCII holds it to the automaton this way (input jackson-reads-a-non-ascii-hex-digit)
        if (jackson && text.chars().allMatch(ch -> ch > ' ' && ch < 0x7F)
                && depth(text) < JsonSchemaConstraint.MAX_DEPTH) {
            assertTrue(whole, text);
        }
    }

    /** The deepest nesting of brackets outside strings. */
    private static int depth(String text) {
        int depth = 0;
        int max = 0;
        boolean inString = false;
        for (int i = 0; i < text.length(); i++) {
            char ch = text.charAt(i);
            if (inString) {
                if (ch == '\\') {
                    i++;
                } else if (ch == '"') {
                    inString = false;
                }
            } else if (ch == '"') {
                inString = true;
            } else if (ch == '{' || ch == '[') {
                max = Math.max(max, ++depth);
            } else if (ch == '}' || ch == ']') {
                depth--;
            }
        }
        return max;
    }
}
