package io.bitplane.runtime;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Structured outputs: values a JSON Schema accepts, written in the schema's key order. */
class JsonSchemaConstraintTest extends OnStories260K {
    static final ObjectMapper JSON = new ObjectMapper();

    /**
     * A schema as Pydantic writes one: a nested model by $ref, an enum, optional fields, a bounded array, a bounded
     * integer and string.
     */
    static final String PERSON = """
            {"title": "Person", "type": "object", "additionalProperties": false,
             "$defs": {"Pet": {"type": "object", "properties": {"kind": {"enum": ["cat", "dog"]},
                                                                "name": {"type": "string"}},
                               "required": ["kind", "name"]}},
             "properties": {"name": {"type": "string", "description": "full name", "maxLength": 20},
                            "age": {"type": "integer", "minimum": -100, "maximum": 150},
                            "height": {"type": ["number", "null"]},
                            "pets": {"type": "array", "items": {"$ref": "#/$defs/Pet"}, "maxItems": 2},
                            "student": {"type": "boolean"},
                            "notes": {}},
             "required": ["name", "age", "pets"]}""";

    @SuppressWarnings("unchecked")
    static TokenConstraint rule(String schema) throws Exception {
        return JsonSchemaConstraint.compile((Map<String, Object>) JSON.readValue(schema, Map.class)).get();
    }

    static boolean takesWhole(String schema, String text) throws Exception {
        return JsonObjectConstraintTest.takesWhole(rule(schema), text);
    }

    @Test
    void valuesTheSchemaAcceptsAreTaken() throws Exception {
        for (String ok : List.of(
                "{\"name\": \"Ann\", \"age\": 7, \"pets\": []}",
                "{\"name\":\"Ann\",\"age\":-7,\"height\":1.25e2,\"pets\":[{\"kind\":\"cat\",\"name\":\"Tom\"}],"
                        + "\"student\":true,\"notes\":{\"any\":[1,\"x\",null,{\"k\":false}]}}",
                "{\n  \"name\": \"A\\u00e9\\\"\",\n  \"age\": 0,\n  \"height\": null,\n  \"pets\": [\n    "
                        + "{\"kind\": \"dog\", \"name\": \"Rex\"},\n    {\"kind\": \"cat\", \"name\": \"\"}\n  ]\n}",
                "{\"name\": \"Ann\", \"age\": 7, \"pets\": [], \"notes\": \"free text\"}")) {
            assertTrue(takesWhole(PERSON, ok), ok);
            assertTrue(JSON.readTree(ok).isObject(), ok);
        }
    }

    @Test
    void valuesItDoesNotAcceptAreRefused() throws Exception {
        for (String bad : List.of(
                "{\"name\": \"Ann\", \"pets\": []}",                                   // age is required
                "{\"age\": 7, \"name\": \"Ann\", \"pets\": []}",                       // the schema's order
                "{\"name\": \"Ann\", \"age\": 7, \"pets\": [], \"extra\": 1}",         // no other keys
                "{\"name\": \"Ann\", \"age\": 7.5, \"pets\": []}",                     // an integer
                "{\"name\": \"Ann\", \"age\": 7, \"pets\": [{\"kind\": \"cow\", \"name\": \"M\"}]}",
                "{\"name\": \"Ann\", \"age\": 7, \"pets\": [{\"name\": \"M\", \"kind\": \"cat\"}]}",
                "{\"name\": \"Ann\", \"age\": 7, \"pets\": [" + "{\"kind\": \"cat\", \"name\": \"a\"},".repeat(2)
                        + "{\"kind\": \"cat\", \"name\": \"a\"}]}",                    // maxItems 2
                "{\"name\": 5, \"age\": 7, \"pets\": []}",
                "{\"name\": \"Ann\", \"age\": 7, \"pets\": [], \"student\": \"yes\"}",
                "{\"name\": \"Ann\", \"age\": 07, \"pets\": []}",
                " {\"name\": \"Ann\", \"age\": 7, \"pets\": []}",
                "{\"name\": \"Ann\", \"age\": 7, \"pets\": []")) {
            assertFalse(takesWhole(PERSON, bad), bad);
        }
    }

    /** Keys and enum values beyond ASCII are matched byte for byte (UTF-8), not refused. */
    @Test
    void keysAndEnumValuesBeyondAsciiAreTaken() throws Exception {
        String schema = "{\"type\": \"object\", \"properties\": {\"café\": {\"enum\": [\"crème\", \"thé\"]}}, "
                + "\"required\": [\"café\"]}";
        assertTrue(takesWhole(schema, "{\"café\": \"thé\"}"));
        assertFalse(takesWhole(schema, "{\"café\": \"the\"}"));
        assertTrue(JsonObjectConstraintTest.takesWhole(new FunctionCallConstraint("«", List.of("é"), "»", "¶"),
                "«é»{}¶"));
    }

    /** An object type without properties is any object, as in JSON Schema; with properties, only those keys. */
    @Test
    void anObjectWithoutPropertiesIsAnyObject() throws Exception {
        String anyObject = "{\"type\": \"object\", \"properties\": {\"meta\": {\"type\": \"object\"}}, "
                + "\"required\": [\"meta\"]}";
        assertTrue(takesWhole(anyObject, "{\"meta\": {\"x\": [1, {\"y\": \"z\"}], \"w\": null}}"));
        assertFalse(takesWhole(anyObject, "{\"meta\": {}, \"x\": 1}"));
        assertTrue(takesWhole("{\"type\": \"object\"}", "{\"anything\": true}"));
    }

    /**
     * Pydantic's optional and union fields: anyOf (or oneOf) of alternatives of different types, a $ref among them;
     * allOf of one schema is that schema.
     */
    @Test
    void alternativesOfDifferentTypesAreKept() throws Exception {
        String schema = """
                {"type": "object", "$defs": {"Pet": {"type": "object", "properties": {"name": {"type": "string"}},
                                                     "required": ["name"]}},
                 "properties": {"pet": {"anyOf": [{"$ref": "#/$defs/Pet"}, {"type": "null"}], "default": null},
                                "id": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                                "tags": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]},
                                "owner": {"allOf": [{"$ref": "#/$defs/Pet"}], "description": "who"}},
                 "required": ["pet", "id"]}""";
        for (String ok : List.of("{\"pet\": null, \"id\": 3}", "{\"pet\": {\"name\": \"Rex\"}, \"id\": \"a-1\"}",
                "{\"pet\": null, \"id\": -2, \"tags\": [\"x\"], \"owner\": {\"name\": \"Ann\"}}",
                "{\"pet\": null, \"id\": 0, \"tags\": null}")) {
            assertTrue(takesWhole(schema, ok), ok);
        }
        for (String bad : List.of("{\"pet\": 5, \"id\": 3}", "{\"pet\": {}, \"id\": 3}", "{\"pet\": null, \"id\": 1.5}",
                "{\"pet\": null, \"id\": true}", "{\"pet\": null, \"id\": 1, \"owner\": null}")) {
            assertFalse(takesWhole(schema, bad), bad);
        }
    }

    /**
     * Integer bounds (Pydantic's Field(ge=, le=, gt=, lt=)): values inside are taken, outside refused, and no digit
     * is taken that no end within the bounds can follow, so a bounded number never leaves the model stuck.
     */
    @Test
    void integerBoundsAreKeptDigitByDigit() throws Exception {
        String schema = "{\"type\": \"object\", \"properties\": {\"age\": {\"type\": \"integer\", \"minimum\": 0, "
                + "\"maximum\": 120}, \"t\": {\"type\": \"integer\", \"exclusiveMinimum\": -10, \"exclusiveMaximum\": "
                + "10}}, \"required\": [\"age\", \"t\"]}";
        for (String ok : List.of("{\"age\": 0, \"t\": 0}", "{\"age\": 120, \"t\": -9}", "{\"age\": 7, \"t\": 9}",
                "{\"age\": 99, \"t\": -0}")) {
            assertTrue(takesWhole(schema, ok), ok);
        }
        for (String bad : List.of("{\"age\": -1, \"t\": 0}", "{\"age\": 121, \"t\": 0}", "{\"age\": 1000, \"t\": 0}",
                "{\"age\": 1, \"t\": -10}", "{\"age\": 1, \"t\": 10}", "{\"age\": 1.5, \"t\": 0}")) {
            assertFalse(takesWhole(schema, bad), bad);
        }
        // The rule takes exactly the ages 0..120, and takes no digit that would leave no way to end within them.
        for (int v = 0; v <= 2000; v++) {
            TokenConstraint c = rule(schema);
            c.accept("{\"age\": ".getBytes(StandardCharsets.UTF_8));
            byte[] digits = Integer.toString(v).getBytes(StandardCharsets.UTF_8);
            assertEquals(v <= 120, c.allows(digits), "age " + v + ": no digit that cannot end within the bounds");
            assertEquals(v <= 120, c.allows(concat(digits, ", \"t\": 1}")), "age " + v);
        }
        // "1" may begin 10..99 but may not end there.
        String tens = "{\"type\": \"object\", \"properties\": {\"x\": {\"type\": \"integer\", \"minimum\": 10, "
                + "\"maximum\": 99}}}";
        assertFalse(takesWhole(tens, "{\"x\": 1}"));
        assertTrue(takesWhole(tens, "{\"x\": 15}"));
        var e = assertThrows(JsonSchemaConstraint.UnsupportedSchemaException.class, () -> rule(
                "{\"type\": \"object\", \"properties\": {\"x\": {\"type\": \"number\", \"minimum\": 0}}}"));
        assertTrue(e.getMessage().contains("integers only"), e.getMessage());
        e = assertThrows(JsonSchemaConstraint.UnsupportedSchemaException.class, () -> rule(
                "{\"type\": \"object\", \"properties\": {\"x\": {\"type\": \"integer\", \"minimum\": 5, "
                        + "\"maximum\": 4}}}"));
        assertTrue(e.getMessage().contains("no integer"), e.getMessage());
    }

    /** minLength and maxLength count characters: a character beyond ASCII or an escape is one. */
    @Test
    void stringLengthsCountCharacters() throws Exception {
        String schema = "{\"type\": \"object\", \"properties\": {\"code\": {\"type\": \"string\", \"minLength\": 2, "
                + "\"maxLength\": 4}}, \"required\": [\"code\"]}";
        for (String ok : List.of("{\"code\": \"ab\"}", "{\"code\": \"abcd\"}", "{\"code\": \"é日本語\"}",
                "{\"code\": \"a\\nb\\u00e9\"}")) {
            assertTrue(takesWhole(schema, ok), ok);
        }
        for (String bad : List.of("{\"code\": \"a\"}", "{\"code\": \"\"}", "{\"code\": \"abcde\"}",
                "{\"code\": \"日本語語語\"}", "{\"code\": \"ab\\n\\t\\\"\"}")) {
            assertFalse(takesWhole(schema, bad), bad);
        }
        String atLeast = "{\"type\": \"object\", \"properties\": {\"s\": {\"type\": \"string\", \"minLength\": 3}}}";
        assertTrue(takesWhole(atLeast, "{\"s\": \"abcdefgh\"}"), "a minimum alone");
        assertFalse(takesWhole(atLeast, "{\"s\": \"ab\"}"));
    }

    private static byte[] concat(byte[] a, String b) {
        byte[] t = b.getBytes(StandardCharsets.UTF_8);
        byte[] out = java.util.Arrays.copyOf(a, a.length + t.length);
        System.arraycopy(t, 0, out, a.length, t.length);
        return out;
    }

    @Test
    void keywordsItCannotKeepAreRefusedByName() {
        for (String[] schema : new String[][] {
            {"{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\", \"pattern\": \"x+\"}}}", "pattern"},
            {"{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\", \"maxLength\": -3}}}", "maxLength"},
            {"{\"type\": \"object\", \"properties\": {\"a\": {\"anyOf\": [{\"type\": \"object\", \"properties\": "
                    + "{\"x\": {}}}, {\"type\": \"object\"}]}}}", "alternatives 0 and 1 may both begin with '{'"},
            {"{\"type\": \"object\", \"properties\": {\"a\": {\"oneOf\": [{\"type\": \"integer\"}, {\"type\": "
                    + "\"number\"}]}}}", "oneOf"},
            {"{\"type\": \"object\", \"properties\": {\"a\": {\"allOf\": [{}, {}]}}}", "allOf"},
            {"{\"type\": \"object\", \"properties\": {\"a\": {\"anyOf\": [{}], \"type\": \"string\"}}}", "beside"},
            {"{\"type\": \"object\", \"additionalProperties\": true}", "additionalProperties"},
            {"{\"type\": \"object\", \"properties\": {\"a\": {\"$ref\": \"#/$defs/A\"}}, \"$defs\": {\"A\": "
                    + "{\"type\": \"object\", \"properties\": {\"a\": {\"$ref\": \"#/$defs/A\"}}}}}", "recursive"},
            {"{\"type\": \"string\"}", "root"},
            {"{\"type\": \"object\", \"properties\": {\"a\": {\"enum\": [1, 2]}}}", "enum"},
            {"{\"type\": \"object\", \"required\": [\"b\"], \"properties\": {\"a\": {}}}", "'b'"}}) {
            var e = assertThrows(JsonSchemaConstraint.UnsupportedSchemaException.class, () -> rule(schema[0]));
            assertTrue(e.getMessage().contains(schema[1]), e.getMessage());
        }
    }

    /** stories260K held to the schema writes a prefix of a value it accepts, and at STOP a whole one. */
    @Test
    void aGenerationHeldToTheSchemaWritesAnAcceptedValue() throws Exception {
        @SuppressWarnings("unchecked")
        Map<String, Object> schema = JSON.readValue(PERSON, Map.class);
        for (GenerationResult r : JsonObjectConstraintTest.sampled(JsonSchemaConstraint.compile(schema), 3, 150)) {
            TokenConstraint check = rule(PERSON);
            check.accept(r.text().getBytes(StandardCharsets.UTF_8));
            assertEquals(r.finishReason() == FinishReason.STOP, check.complete(), r.text());
            assertTrue(r.text().startsWith("{\"name\":") || r.text().startsWith("{\n") || r.text().startsWith("{ "),
                    r.text());
        }
    }
}
