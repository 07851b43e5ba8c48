package io.bitplane.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** JSON mode (the schema automaton over any object) against Jackson's strict parser, and a generation held to it. */
class JsonObjectConstraintTest extends OnStories260K {
    static final ObjectMapper JSON = new ObjectMapper();

    /** Whether the automaton takes all of {@code text} and finds it complete. */
    static boolean acceptsWhole(String text) {
        return takesWhole(JsonSchemaConstraint.anyObject(), text);
    }

    /** Whether {@code c} takes all of {@code text}, byte by byte (trying each first), and finds it complete. */
    static boolean takesWhole(TokenConstraint c, String text) {
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
            if (!c.allows(new byte[] {b})) {
                return false;
            }
            c.accept(new byte[] {b});
        }
        return c.complete();
    }

    /** Whether Jackson (strict, as it is by default) reads {@code text} as one object and nothing after it. */
    static boolean jacksonReadsAnObject(String text) {
        try (var parser = JSON.getFactory().createParser(text)) {
            JsonNode node = parser.readValueAsTree();
            return node != null && node.isObject() && parser.nextToken() == null;
        } catch (java.io.IOException e) {
            return false;
        }
    }

    @Test
    void objectsAreTakenAndAnythingElseRefused() {
        for (String ok : List.of("{}", "{\"a\": 1}\n", "{\n  \"a\": 1,\n\t\"b\" : [ 2 ]\n}",
                "{\"a\":[1,-2.5e+3,0,0.0,true,false,null,\"x\\u00e9\\n\"],"
                + "\"b\":{\"c\":{}}}", "{\"é\": \"日本\"}", "{\"a\": -0}", "{\"a\": 1E5}",
                "{\"\\u00e9\": 1, \"k\\n\": [\"\\u0041\"]}")) {
            assertTrue(acceptsWhole(ok), ok);
            assertTrue(jacksonReadsAnObject(ok), ok);
        }
        for (String bad : List.of("[]", "1", "\"x\"", "{", "{\"a\"}", "{\"a\": 01}", "{\"a\": 1.}", "{'a': 1}",
                "{\"a\": 1,}", "{\"a\": tru}", "{\"a\": NaN}", "{\"a\": \"\u0001\"}", "{\"a\": \"\\x\"}", "{} {}",
                "{\"a\": [1 2]}", "{\"a\": [}", "{\"a\": -}", "{\"a\": 1e}", "{\"a\": \"\\u12g4\"}",
                "{\"\\u00g9\": 1}", "{\"\\u00e9\"1\": 1}")) {
            assertFalse(acceptsWhole(bad), bad);
            assertFalse(jacksonReadsAnObject(bad), bad);
        }
        for (String spaced : List.of(" {}", "{  }", "{\n\n}", "{ \n}", "{\t}", "{\r\n}",
                "{\n" + " ".repeat(JsonSchemaConstraint.MAX_INDENT + 1) + "}")) {
            assertFalse(acceptsWhole(spaced), "white space as llama.cpp's JSON grammar has it, not " + spaced);
            assertTrue(jacksonReadsAnObject(spaced), spaced);
        }
        assertTrue(acceptsWhole("{\n" + " ".repeat(JsonSchemaConstraint.MAX_INDENT) + "}"));
        assertFalse(acceptsWhole("{\"a\":" + "[".repeat(JsonSchemaConstraint.MAX_DEPTH) + "]".repeat(
                JsonSchemaConstraint.MAX_DEPTH) + "}"), "too deep");
    }

    /** Random strings over JSON's alphabet: the automaton takes exactly those Jackson reads as an object. */
    @Test
    void theAutomatonAgreesWithJacksonOnRandomText() {
        String[] pieces = {"{", "}", "[", "]", "\"", "\"a\"", ":", ",", " ", "1", "0", "-", ".", "e", "+", "true",
            "null", "fals", "\\", "n", "u", "x", "\"k\":", "\"v\"", "9", "E"};
        Random rnd = new Random(3);
        int objects = 0;
        for (int round = 0; round < 200_000; round++) {
            StringBuilder sb = new StringBuilder("{");
            for (int n = rnd.nextInt(10); n > 0; n--) {
                sb.append(pieces[rnd.nextInt(pieces.length)]);
            }
            if (rnd.nextBoolean()) {
                sb.append('}');
            }
            String text = sb.toString();
            if (text.contains("  ")) {
                continue;  // two spaces in a row: JSON, but not white space this mode writes
            }
            boolean jackson = jacksonReadsAnObject(text);
            assertEquals(jackson, acceptsWhole(text), text);
            objects += jackson ? 1 : 0;
        }
        assertTrue(objects > 1000, "the random texts hold objects too: " + objects);
    }

    /** A prefix of an object is taken but not complete; allows() leaves the state as it was. */
    @Test
    void prefixesAreTakenAndAllowsChangesNothing() {
        String doc = "{\"name\": \"Lily\", \"age\": 3, \"pets\": [\"cat\", {\"dog\": null}]}";
        TokenConstraint c = JsonSchemaConstraint.anyObject();
        byte[] bytes = doc.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < bytes.length; i++) {
            assertFalse(c.complete(), doc.substring(0, i));
            assertFalse(c.allows(new byte[] {1}), "a control byte is never JSON");
            assertTrue(c.allows(new byte[] {bytes[i]}));
            c.accept(new byte[] {bytes[i]});
        }
        assertTrue(c.complete());
    }

    /**
     * A generation held to JSON mode writes a prefix of an object at every step and, when it stops of itself, a
     * whole object (stories260K, which knows no JSON, must still write it).
     */
    @Test
    void aGenerationInJsonModeWritesAnObject() {
        for (GenerationResult r : sampled(JsonSchemaConstraint::anyObject, 3, 120)) {
            TokenConstraint check = JsonSchemaConstraint.anyObject();
            check.accept(r.text().getBytes(StandardCharsets.UTF_8));  // throws on any byte that is not JSON
            assertEquals(r.finishReason() == FinishReason.STOP, check.complete(), r.text());
            if (check.complete()) {
                assertTrue(jacksonReadsAnObject(r.text()), r.text());
            }
        }
    }

    /** Generations of stories260K held to {@code rule}, sampled with seeds 1 to {@code seeds}. */
    static List<GenerationResult> sampled(java.util.function.Supplier<TokenConstraint> rule, int seeds,
                                          int maxTokens) {
        List<GenerationResult> out = new java.util.ArrayList<>();
        try (Session s = model.newSession()) {
            for (long seed = 1; seed <= seeds; seed++) {
                out.add(s.generate(GenerationRequest.of("Once upon a time", maxTokens)
                        .withSampler(new SamplerSettings(1f, 0, 1, 0, 1, 64, seed)).withConstraint(rule), t -> { }));
            }
        }
        return out;
    }

    /** A rule that takes three pieces of lower-case letters and spaces: the generation writes three, then stops. */
    static final class ThreeWords implements TokenConstraint {
        int taken;

        @Override
        public boolean allows(byte[] bytes) {
            for (byte b : bytes) {
                if (b != ' ' && (b < 'a' || b > 'z')) {
                    return false;
                }
            }
            return taken < 3;
        }

        @Override
        public void accept(byte[] bytes) {
            taken++;
        }

        @Override
        public boolean complete() {
            return taken == 3;
        }
    }

    @Test
    void aCompleteTextEndsTheGenerationAndRefusedTokensAreResampled() {
        for (GenerationResult r : sampled(ThreeWords::new, 5, 50)) {
            assertEquals(FinishReason.STOP, r.finishReason());
            assertEquals(3, r.generatedTokens());
            assertTrue(r.text().matches("[a-z ]+"), r.text());
        }
    }
}
