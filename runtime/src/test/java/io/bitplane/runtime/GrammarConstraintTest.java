package io.bitplane.runtime;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** llama.cpp's GBNF grammars: texts the grammar derives are taken, others refused, on llama.cpp's own grammars. */
class GrammarConstraintTest extends OnStories260K {
    /** llama.cpp's grammars/json.gbnf, as it ships (multi-line rules, comments, {m,n}, classes with escapes). */
    static final String JSON_GBNF = """
            root   ::= object
            value  ::= object | array | string | number | ("true" | "false" | "null") ws

            object ::=
              "{" ws (
                        string ":" ws value
                ("," ws string ":" ws value)*
              )? "}" ws

            array  ::=
              "[" ws (
                        value
                ("," ws value)*
              )? "]" ws

            string ::=
              "\\"" (
                [^"\\\\\\x7F\\x00-\\x1F] |
                "\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4}) # escapes
              )* "\\"" ws

            number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws

            # Optional space: by convention, applied in this grammar after literal chars when allowed
            ws ::= | " " | "\\n" [ \\t]{0,20}
            """;

    /** llama.cpp's grammars/arithmetic.gbnf. */
    static final String ARITHMETIC = """
            root  ::= (expr "=" ws term "\\n")+
            expr  ::= term ([-+*/] term)*
            term  ::= ident | num | "(" ws expr ")" ws
            ident ::= [a-z] [a-z0-9_]* ws
            num   ::= [0-9]+ ws
            ws    ::= [ \\t\\n]*
            """;

    static TokenConstraint rule(String grammar) {
        return GrammarConstraint.compile(grammar).get();
    }

    static boolean takes(String grammar, String text) {
        return JsonObjectConstraintTest.takesWhole(rule(grammar), text);
    }

    @Test
    void alternativesAndRepetitionsDeriveTheirTexts() {
        String yesNo = "root ::= \"yes\" | \"no\"";
        assertTrue(takes(yesNo, "yes"));
        assertTrue(takes(yesNo, "no"));
        assertFalse(takes(yesNo, "ye"));
        assertFalse(takes(yesNo, "maybe"));
        TokenConstraint done = rule(yesNo);
        done.accept("no".getBytes(StandardCharsets.UTF_8));
        assertTrue(done.atEnd(), "nothing may follow a complete yes or no");
        String word = "root ::= [a-z]+";
        TokenConstraint letters = rule(word);
        letters.accept("a".getBytes(StandardCharsets.UTF_8));
        assertTrue(letters.complete());
        assertFalse(letters.atEnd(), "more letters may follow");
        assertFalse(takes(word, "ab1"));
        assertFalse(takes(word, ""));
        String counted = "root ::= \"x\"{2,3} \"y\"{2} \"z\"{1,} \"w\"?";
        assertTrue(takes(counted, "xxyyz"));
        assertTrue(takes(counted, "xxxyyzzzw"));
        assertFalse(takes(counted, "xyyz"));
        assertFalse(takes(counted, "xxxxyyz"));
        assertFalse(takes(counted, "xxyyyz"));
        assertTrue(takes("root ::= (\"ab\")* \"c\"", "ababc"));
        assertFalse(takes("root ::= (\"ab\")* \"c\"", "abac"));
        assertTrue(takes("root ::= \"ab\"+ \"c\"", "ababc"), "a literal repeats as a whole");
    }

    @Test
    void llamaCppsArithmeticGrammar() {
        for (String ok : List.of("a=1\n", "(x +y)*2= z_1\nb=c\n", "10/5=2\n")) {
            assertTrue(takes(ARITHMETIC, ok), ok);
        }
        for (String bad : List.of("a=1", "=1\n", "(a=1\n", "A=1\n", "x+ y=1\n")) {  // no space before a term
            assertFalse(takes(ARITHMETIC, bad), bad);
        }
    }

    /** llama.cpp's JSON grammar against Jackson: the same verdict on valid JSON objects and on broken ones. */
    @Test
    void llamaCppsJsonGrammarAgreesWithJackson() {
        for (String ok : List.of("{}", "{\"a\": 1}", "{\"a\": [1, -2.5e+3, true, null, \"x\\u00e9\\n\"]}",
                "{\"é\": \"日本\", \"b\": {\"c\": {}}}", "{\n  \"k\": 0.5\n}")) {
            assertTrue(takes(JSON_GBNF, ok), ok);
            assertTrue(JsonObjectConstraintTest.jacksonReadsAnObject(ok), ok);
        }
        Random rnd = new Random(3);
        String alphabet = "{}[]\":,. -+eE0123456789truefalsnl\\u\n";
        int agreed = 0;
        for (int i = 0; i < 20_000; i++) {
            StringBuilder sb = new StringBuilder("{\"a\":");
            for (int n = rnd.nextInt(12); n > 0; n--) {
                sb.append(alphabet.charAt(rnd.nextInt(alphabet.length())));
            }
            sb.append('}');
            String text = sb.toString();
            boolean grammar = takes(JSON_GBNF, text);
            if (grammar) {  // the grammar is stricter on white space and numbers than JSON, never looser
                assertTrue(JsonObjectConstraintTest.jacksonReadsAnObject(text), text);
                agreed++;
            }
        }
        assertTrue(agreed > 100, "random texts the grammar took: " + agreed);
    }

    /** Characters beyond ASCII arrive as UTF-8 bytes: a lead byte no class can continue is refused at once. */
    @Test
    void charactersAreCodePointsReadFromTheirBytes() {
        String accents = "root ::= [à-ÿ]+ \"!\"";
        assertTrue(takes(accents, "éü!"));
        TokenConstraint c = rule(accents);
        assertFalse(c.allows(new byte[] {(byte) 0xE2}), "€ begins with E2: no class holds U+2000..U+2FFF");
        assertTrue(c.allows(new byte[] {(byte) 0xC3}), "é begins with C3");
        assertFalse(c.allows(new byte[] {(byte) 0xC3, 0x41}), "a continuation byte must follow");
        assertFalse(c.allows(new byte[] {(byte) 0x80}), "a continuation byte first");
        assertTrue(takes("root ::= [^a]+", "b€日"));
        assertFalse(takes("root ::= [^a]+", "ba"));
        assertTrue(takes("root ::= \"\\u00e9\\x41\\U0001F600\"", "éA😀"));
        assertTrue(takes("root ::= . .", "a😀"));
        TokenConstraint any = rule("root ::= .+");
        assertFalse(any.allows(new byte[] {(byte) 0xE0, (byte) 0x80, (byte) 0x80}), "an overlong form of U+0000");
        assertFalse(any.allows(new byte[] {(byte) 0xED, (byte) 0xA0, (byte) 0x80}), "a surrogate");
        assertFalse(any.allows(new byte[] {(byte) 0xF4, (byte) 0x90, (byte) 0x80, (byte) 0x80}), "past U+10FFFF");
    }

    /** A long repetition keeps its stacks shallow (finished frames are dropped), so it neither slows nor overflows. */
    @Test
    void aLongRepetitionRunsInConstantDepth() {
        TokenConstraint c = rule("root ::= ([a-z] | \" \")* \".\"");
        byte[] text = "the quick brown fox ".repeat(5_000).getBytes(StandardCharsets.UTF_8);
        for (byte b : text) {
            c.accept(new byte[] {b});
        }
        c.accept(new byte[] {'.'});
        assertTrue(c.complete());
        assertFalse(c.allows(new byte[] {'!'}));
    }

    @Test
    void badGrammarsAreRefusedWithTheirPlace() {
        String[][] cases = {
            {"root ::= thing", "'thing' is used but not defined"},
            {"start ::= \"a\"", "no 'root'"},
            {"root ::= root \"a\" | \"b\"", "left-recursive"},
            {"root ::= x \"a\"\nx ::= \"b\"? root", "left-recursive"},
            {"root ::= \"a", "line 1"},
            {"root ::= \"\\q\"", "unknown escape"},
            {"root ::= \"a\"{3,1}", "maximum below its minimum"},
            {"root ::= [z-a]", "range ends below"},
            {"root ::= \"a\"\nroot ::= \"b\"", "defined twice"},
            {"root ::= \"a\" )", "line 1, column 14"},
            {"root := \"a\"", "expected '::='"},
            {"root ::= " + "(".repeat(100) + "\"a\"" + ")".repeat(100), "nest more than 64"},
        };
        for (String[] c : cases) {
            var e = assertThrows(Gbnf.GrammarException.class, () -> GrammarConstraint.compile(c[0]), c[0]);
            assertTrue(e.getMessage().contains(c[1]), c[0] + " -> " + e.getMessage());
        }
    }

    /** The same rule without a state to remember: every token tried at every step. */
    record Forgetful(TokenConstraint rule) implements TokenConstraint {
        @Override
        public boolean allows(byte[] bytes) {
            return rule.allows(bytes);
        }

        @Override
        public void accept(byte[] bytes) {
            rule.accept(bytes);
        }

        @Override
        public boolean complete() {
            return rule.complete();
        }

        @Override
        public boolean atEnd() {
            return rule.atEnd();
        }
    }

    /** Remembering which tokens a state allows changes no text: the same stories as trying every token each step. */
    @Test
    void rememberedStatesGiveTheSameText() {
        String grammar = "root ::= (\"Once upon a time, \" [a-z ,]+ \". \")+";
        var rule = GrammarConstraint.compile(grammar);
        List<GenerationResult> remembered = JsonObjectConstraintTest.sampled(rule, 3, 80);
        List<GenerationResult> tried = JsonObjectConstraintTest.sampled(() -> new Forgetful(rule.get()), 3, 80);
        for (int i = 0; i < 3; i++) {
            assertEquals(tried.get(i).text(), remembered.get(i).text());
        }
        assertTrue(remembered.stream().anyMatch(r -> r.text().length() > 40), remembered.toString());
    }

    /** stories260K held to a grammar writes a text it derives; at STOP a complete one. */
    @Test
    void aGenerationHeldToAGrammarWritesWhatItDerives() {
        String grammar = "root ::= (\"Once\" | \"One day\") \" \" [a-z]+ (\" \" [a-z]+){2,6} \".\"";
        for (GenerationResult r : JsonObjectConstraintTest.sampled(GrammarConstraint.compile(grammar), 4, 40)) {
            TokenConstraint check = rule(grammar);
            assertTrue(check.allows(r.text().getBytes(StandardCharsets.UTF_8)), r.text());
            check.accept(r.text().getBytes(StandardCharsets.UTF_8));
            assertEquals(r.finishReason() == FinishReason.STOP, check.complete(), r.text());
            assertTrue(r.text().startsWith("Once ") || r.text().startsWith("One day "), r.text());
        }
    }
}
