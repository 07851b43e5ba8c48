package io.bitplane.runtime;

import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Structured outputs on any bytes: what the automaton for {@link JsonSchemaConstraintTest#PERSON} takes whole,
 * Jackson reads as an object that the schema accepts (checked here by hand: the keys a subset of the properties in
 * their order, the required ones present, each value of its type, within its bounds). Taking bytes never throws.
 */
class JsonSchemaConstraintFuzzTest {
    @FuzzTest(maxDuration = "4m")
    void anyText(byte[] bytes) throws Exception {
        String text = new String(bytes, StandardCharsets.UTF_8);
        TokenConstraint c = JsonSchemaConstraintTest.rule(JsonSchemaConstraintTest.PERSON);
        for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
            if (!c.allows(new byte[] {b})) {
                return;
            }
            c.accept(new byte[] {b});
        }
        if (c.complete()) {
            assertTrue(JsonObjectConstraintTest.jacksonReadsAnObject(text), text);
            assertTrue(isPerson(JsonSchemaConstraintTest.JSON.readTree(text)), text);
        }
    }

    private static boolean isPerson(JsonNode n) {
        List<String> keys = new ArrayList<>();
        n.fieldNames().forEachRemaining(keys::add);
        List<String> order = List.of("name", "age", "height", "pets", "student", "notes");
        int last = -1;
        for (String k : keys) {
            int i = order.indexOf(k);
            if (i <= last) {
                return false;
            }
            last = i;
        }
        JsonNode height = n.get("height");
        JsonNode student = n.get("student");
        String name = n.path("name").asText();
        long age = n.path("age").asLong();
        return n.path("name").isTextual() && name.codePointCount(0, name.length()) <= 20
                && n.path("age").isIntegralNumber() && age >= -100 && age <= 150 && n.path("pets").isArray()
                && n.get("pets").size() <= 2 && (height == null || height.isNumber() || height.isNull())
                && (student == null || student.isBoolean()) && isPets(n.get("pets"));
    }

    private static boolean isPets(JsonNode pets) {
        for (JsonNode p : pets) {
            List<String> keys = new ArrayList<>();
            p.fieldNames().forEachRemaining(keys::add);
            if (!keys.equals(List.of("kind", "name")) || !List.of("cat", "dog").contains(p.get("kind").asText())
                    || !p.get("kind").isTextual() || !p.get("name").isTextual()) {
                return false;
            }
        }
        return true;
    }
}
