package io.bitplane.runtime;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A forced function call in Qwen's form: literals, one of the names, a JSON object of arguments. */
class FunctionCallConstraintTest extends OnStories260K {
    static FunctionCallConstraint qwen(String... names) {
        return new FunctionCallConstraint("<tool_call>\n{\"name\": \"", List.of(names), "\", \"arguments\": ",
                "}\n</tool_call>");
    }

    @Test
    void aCallOfAnOfferedFunctionIsTakenAndNothingElse() {
        String call = "<tool_call>\n{\"name\": \"%s\", \"arguments\": %s}\n</tool_call>";
        for (String name : List.of("get_time", "get_timezone", "f")) {
            assertTrue(JsonObjectConstraintTest.takesWhole(qwen("get_time", "get_timezone", "f"),
                    call.formatted(name, "{\"zone\": \"CET\"}")), name);
        }
        assertTrue(JsonObjectConstraintTest.takesWhole(qwen("get_time"), call.formatted("get_time", "{}")));
        for (String bad : List.of(call.formatted("get_tim", "{}"), call.formatted("rm", "{}"),
                call.formatted("get_time", "[]"), call.formatted("get_time", "{\"a\": }"),
                call.formatted("get_time", "{}").replace("arguments", "parameters"), "{\"name\": \"get_time\"",
                call.formatted("get_time", "{}") + " ")) {
            assertFalse(JsonObjectConstraintTest.takesWhole(qwen("get_time", "get_timezone"), bad), bad);
        }
        FunctionCallConstraint c = qwen("get_time");
        c.accept("<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}".getBytes(StandardCharsets.UTF_8));
        assertFalse(c.complete(), "the suffix is still to come");
        assertThrows(IllegalArgumentException.class, () -> qwen());
        assertThrows(IllegalArgumentException.class, () -> new FunctionCallConstraint("{\"name\": \"",
                List.of("a", "a\", \"arguments\": x"), "\", \"arguments\": ", "}"));
    }

    /**
     * With a rule for each function's arguments (a JSON schema of its parameters), the arguments must follow the
     * called function's; a scratch copy that tried one function's arguments does not leak into the next trial.
     */
    @Test
    void argumentsFollowTheCalledFunctionsSchema() throws Exception {
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        @SuppressWarnings("unchecked")
        java.util.Map<String, Object> city = json.readValue("{\"type\": \"object\", \"properties\": {\"city\": "
                + "{\"type\": \"string\"}}, \"required\": [\"city\"]}", java.util.Map.class);
        java.util.function.Supplier<FunctionCallConstraint> rule = () -> new FunctionCallConstraint("{\"name\": \"",
                List.of("get_weather", "get_time"), "\", \"arguments\": ", "}",
                List.of(JsonSchemaConstraint.compile(city), JsonSchemaConstraint::anyObject));
        String call = "{\"name\": \"%s\", \"arguments\": %s}";
        java.util.function.BiPredicate<String, String> takes = (name, arguments) ->
                JsonObjectConstraintTest.takesWhole(rule.get(), call.formatted(name, arguments));
        assertTrue(takes.test("get_weather", "{\"city\": \"Oslo\"}"));
        assertFalse(takes.test("get_weather", "{}"));
        assertFalse(takes.test("get_weather", "{\"town\": \"x\"}"));
        assertTrue(takes.test("get_time", "{\"zone\": 1}"));
        FunctionCallConstraint c = rule.get();
        c.accept("{\"name\": \"get_weather\", \"arguments\": {".getBytes(StandardCharsets.UTF_8));
        assertFalse(c.allows("}".getBytes(StandardCharsets.UTF_8)), "city is required");
        assertTrue(c.allows("\"city\"".getBytes(StandardCharsets.UTF_8)));
        FunctionCallConstraint d = rule.get();
        d.accept("{\"name\": \"get_".getBytes(StandardCharsets.UTF_8));
        assertTrue(d.allows("weather\", \"arguments\": {\"ci".getBytes(StandardCharsets.UTF_8)));
        assertTrue(d.allows("weather\", \"arguments\": {\"ci".getBytes(StandardCharsets.UTF_8)), "trying twice");
        assertTrue(d.allows("time\", \"arguments\": {}}".getBytes(StandardCharsets.UTF_8)));
    }

    /** stories260K, made to call a function: what it writes is always a prefix of a call, and a whole one at STOP. */
    @Test
    void aGenerationMadeToCallWritesACall() {
        for (long seed = 1; seed <= 3; seed++) {
            List<String> names = List.of("get_time", "tell_story");
            GenerationResult r;
            try (Session s = model.newSession()) {
                r = s.generate(GenerationRequest.of("Once upon a time", 150)
                        .withSampler(new SamplerSettings(1f, 0, 1, 0, 1, 64, seed))
                        .withConstraint(() -> qwen(names.toArray(String[]::new))), t -> { });
            }
            FunctionCallConstraint check = qwen(names.toArray(String[]::new));
            check.accept(r.text().getBytes(StandardCharsets.UTF_8));
            assertEquals(r.finishReason() == FinishReason.STOP, check.complete(), r.text());
            assertTrue(r.text().startsWith("<tool_call>\n{\"name\": \""), r.text());
        }
    }
}
