package io.bitplane.runtime;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * OpenAI's structured outputs ({@code response_format: {"type": "json_schema"}}) as a {@link TokenConstraint}: the
 * text must be one JSON value that a JSON Schema accepts, for the schemas that structured outputs and Pydantic
 * write: {@code type} (one, or a list), {@code properties} with {@code required} (written in the schema's order; an
 * optional one may be left out; no other keys), {@code items} with {@code minItems} and {@code maxItems},
 * {@code enum} and {@code const} of strings, booleans and null, local {@code $ref}s to {@code $defs} or
 * {@code definitions} (not recursive), {@code anyOf}/{@code oneOf} of alternatives that begin with different bytes
 * (Pydantic's optional fields: a type or null), {@code minimum}/{@code maximum} (and exclusive) on integers,
 * {@code minLength}/{@code maxLength} on strings, and {@code {}} for any value. Annotations ({@code title},
 * {@code description}, {@code default}, {@code examples}, {@code format}) are ignored; any other keyword, which
 * this rule could not keep, is refused when the schema is read ({@link #compile}), so a schema is never silently
 * half enforced. JSON mode ({@code response_format: {"type": "json_object"}}) is the schema of any object
 * ({@link #anyObject}). JSON is strict (RFC 8259: no comments, trailing commas, single quotes, NaN or leading
 * zeros), nested at most {@value #MAX_DEPTH} values deep. White space may follow any token (not come before the
 * first) as llama.cpp's JSON grammar allows it: one space, or a new line and up to {@value #MAX_INDENT} spaces or
 * tabs; a model kept to JSON it does not know otherwise spends its budget on blank lines.
 *
 * <p>A pushdown automaton over bytes (JSON's structure is ASCII, and a string may hold any byte from 0x20 up but
 * '"' and '\' unescaped, so a token that ends inside a UTF-8 character is fine), whose stack frames are schema
 * nodes being written: an object (which keys remain), an array (how many items), a string, a number, a set of
 * literals still possible. The state is int arrays.
 */
public final class JsonSchemaConstraint extends ByteAutomaton<JsonSchemaConstraint> {
    /** A schema this rule cannot keep, naming the keyword and where it is. */
    public static final class UnsupportedSchemaException extends IllegalArgumentException {
        UnsupportedSchemaException(String message) {
            super(message);
        }
    }

    // Node kinds.
    private static final int OBJECT = 0;   // properties in order (open: any keys, any values)
    private static final int ARRAY = 1;
    private static final int STRING = 2;
    private static final int NUMBER = 3;   // integer: no fraction or exponent
    private static final int LITERALS = 4; // enum/const, true/false, null: JSON texts to match
    private static final int UNION = 5;    // one of several nodes, told apart by their first bytes

    /** Node 0 is any value: a union of an open object and an array of any values, a string, a number, literals. */
    private static final int ANY = 0;
    /** Node 1: any object; node 3: any string. */
    private static final int OPEN_OBJECT = 1;
    private static final int ANY_STRING = 3;

    /** A compiled schema node. */
    /**
     * A compiled schema node: {@code minItems} and {@code maxItems} bound an array's items or a string's characters
     * (-1: no maximum); {@code min} and {@code max} an integer's value (inclusive).
     */
    private record Node(int kind, String[] keys, byte[][] keyTexts, int[] values, boolean[] required, boolean open,
                        int items, int minItems, int maxItems, boolean integer, byte[][] literals, int[] members,
                        long min, long max) {
        Node(int kind, String[] keys, byte[][] keyTexts, int[] values, boolean[] required, boolean open, int items,
             int minItems, int maxItems, boolean integer, byte[][] literals, int[] members) {
            this(kind, keys, keyTexts, values, required, open, items, minItems, maxItems, integer, literals, members,
                    Long.MIN_VALUE, Long.MAX_VALUE);
        }

        boolean bounded() {
            return min != Long.MIN_VALUE || max != Long.MAX_VALUE;
        }
    }

    private static final Set<String> ANNOTATIONS = Set.of("title", "description", "default", "examples", "format",
            "$schema", "$id", "$comment", "$defs", "definitions", "deprecated", "readOnly", "writeOnly");

    private final Node[] nodes;
    private final int root;

    // The stack: per frame its node, its state and two counters, the literal matcher's alive set (a bit per
    // candidate) and, for objects, the keys still possible while a key is being written.
    static final int MAX_DEPTH = 64;
    static final int MAX_INDENT = 20;
    private int depth;
    private final int[] node = new int[MAX_DEPTH];
    private final int[] state = new int[MAX_DEPTH];
    private final int[] count = new int[MAX_DEPTH];
    private final int[] at = new int[MAX_DEPTH];
    private final long[] alive = new long[MAX_DEPTH];
    private int space;
    private boolean done;

    // Frame states.
    private static final int START = 0;        // object/array: after the opening bracket
    private static final int KEY = 1;          // object: in a key
    private static final int COLON = 2;        // object: after a key
    private static final int VALUE = 3;        // object: after ':', array: after '[' or ',' (a value must come)
    private static final int NEXT = 4;         // object/array: after a value
    private static final int AFTER_COMMA = 5;  // object: after ','
    private static final int ESCAPE = 6;       // string: after '\'
    private static final int UNICODE = 7;      // string: in \\u's digits (count: left)
    private static final int IN = 8;           // string, literals, number: inside
    // number sub-states (in count): see feedNumber

    /** Any JSON object: JSON mode's rule (declared after the tables its compiling reads). */
    private static final java.util.function.Supplier<TokenConstraint> ANY_OBJECT = compile(Map.of("type", "object"));

    /** JSON mode ({@code response_format: {"type": "json_object"}}): any one JSON object. */
    public static TokenConstraint anyObject() {
        return ANY_OBJECT.get();
    }

    private JsonSchemaConstraint(Node[] nodes, int root) {
        this.nodes = nodes;
        this.root = root;
    }

    /**
     * A factory of this rule for {@code schema} (a JSON Schema as maps and lists) whose root is an object, as
     * OpenAI's structured outputs require (a bare number would never be known to have ended).
     *
     * @throws UnsupportedSchemaException naming the keyword and where, for what this rule cannot keep
     */
    public static java.util.function.Supplier<TokenConstraint> compile(Map<String, Object> schema) {
        Compiler c = new Compiler(schema);
        int root = c.node(schema, "#", new ArrayList<>());
        if (c.nodes.get(root).kind() != OBJECT) {
            throw new UnsupportedSchemaException("#: the schema's root must be an object");
        }
        Node[] nodes = c.nodes.toArray(Node[]::new);
        return () -> new JsonSchemaConstraint(nodes, root);
    }

    @Override
    public boolean complete() {
        return done;
    }

    @Override
    JsonSchemaConstraint twin() {
        return new JsonSchemaConstraint(nodes, root);
    }

    @Override
    void copyFrom(JsonSchemaConstraint o) {
        depth = o.depth;
        System.arraycopy(o.node, 0, node, 0, depth);
        System.arraycopy(o.state, 0, state, 0, depth);
        System.arraycopy(o.count, 0, count, 0, depth);
        System.arraycopy(o.at, 0, at, 0, depth);
        System.arraycopy(o.alive, 0, alive, 0, depth);
        space = o.space;
        done = o.done;
    }

    @Override
    boolean feed(int c) {
        if (done) {
            return Boolean.TRUE.equals(space(c));  // white space may follow the value too
        }
        if (depth == 0) {
            return start(root, c);  // the text starts with its value: no white space first
        }
        int f = depth - 1;
        Node n = nodes[node[f]];
        return switch (n.kind) {
            case OBJECT -> feedObject(f, n, c);
            case ARRAY -> feedArray(f, n, c);
            case STRING -> feedString(f, n, c);
            case NUMBER -> feedNumber(f, n, c);
            default -> feedLiterals(f, n, c);
        };
    }

    /** Starts a value of {@code id} with its first byte {@code c}. */
    private boolean start(int id, int c) {
        Node n = nodes[id];
        if (n.kind == UNION) {
            for (int m : n.members) {
                if (first(nodes, nodes[m], c)) {
                    return start(m, c);
                }
            }
            return false;
        }
        if (!first(nodes, n, c) || depth == MAX_DEPTH) {
            return false;
        }
        int f = depth++;
        node[f] = id;
        state[f] = n.kind == OBJECT || n.kind == ARRAY ? START : IN;
        count[f] = 0;
        at[f] = 0;
        alive[f] = 0;
        space = 0;
        if (n.kind == LITERALS) {
            alive[f] = (1L << n.literals.length) - 1;
            return feedLiterals(f, n, c);
        }
        if (n.kind == NUMBER) {
            count[f] = N_START;
            return feedNumber(f, n, c);
        }
        return true;  // '{', '[' or '"' taken
    }

    /** Whether a value of {@code n} may begin with {@code c}. */
    private static boolean first(Node[] nodes, Node n, int c) {
        return switch (n.kind) {
            case OBJECT -> c == '{';
            case ARRAY -> c == '[';
            case STRING -> c == '"';
            case NUMBER -> c == '-' || c >= '0' && c <= '9';
            case LITERALS -> Arrays.stream(n.literals).anyMatch(l -> (l[0] & 0xFF) == c);
            default -> Arrays.stream(n.members).anyMatch(m -> first(nodes, nodes[m], c));
        };
    }

    /** The top frame has ended: its parent takes the next byte (after an open object's key, its colon). */
    private void ended() {
        depth--;
        space = 0;
        if (depth == 0) {
            done = true;
            return;
        }
        int parent = depth - 1;
        if (state[parent] == KEY) {
            state[parent] = COLON;
            return;
        }
        state[parent] = NEXT;
        if (nodes[node[parent]].kind == ARRAY) {
            count[parent]++;
        }
    }

    /** White space between tokens (one space, or a new line and up to 20 spaces or tabs); else null. */
    private Boolean space(int c) {
        if (c != ' ' && c != '\n' && c != '\t') {
            space = 0;
            return null;
        }
        if (space == 0) {
            space = c == '\n' ? 1 : -1;
            return c != '\t';
        }
        return space > 0 && c != '\n' && ++space <= 1 + MAX_INDENT;
    }

    private boolean feedObject(int f, Node n, int c) {
        if (state[f] == KEY) {
            return feedKey(f, n, c);
        }
        Boolean ws = space(c);
        if (ws != null) {
            return ws;
        }
        switch (state[f]) {
            case START, AFTER_COMMA -> {
                if (c == '}' && state[f] == START && !requiredLeft(n, 0)) {
                    ended();
                    return true;
                }
                if (c != '"') {
                    return false;
                }
                state[f] = KEY;
                if (n.open) {
                    return start(ANY_STRING, c);  // any key: a string frame, which ends in the colon's state
                }
                at[f] = 0;
                alive[f] = keysFrom(n, count[f]);
                return true;
            }
            case COLON -> {
                if (c != ':') {
                    return false;
                }
                state[f] = VALUE;
                return true;
            }
            case VALUE -> {
                return start(n.open ? ANY : n.values[at[f]], c);
            }
            default -> {  // NEXT
                if (c == '}' && (n.open || !requiredLeft(n, count[f]))) {
                    ended();
                    return true;
                }
                if (c == ',' && (n.open || keysFrom(n, count[f]) != 0)) {
                    state[f] = AFTER_COMMA;
                    return true;
                }
                return false;
            }
        }
    }

    /** In a listed key (after its opening quote): one of the keys still possible. */
    private boolean feedKey(int f, Node n, int c) {
        long still = 0;
        for (int k = 0; k < n.keys.length; k++) {
            if ((alive[f] >> k & 1) != 0 && at[f] < n.keyTexts[k].length
                    && (n.keyTexts[k][at[f]] & 0xFF) == c) {
                if (at[f] + 1 == n.keyTexts[k].length) {  // the key's closing quote: it is this key
                    state[f] = COLON;
                    at[f] = k;       // the key being written: its value's node
                    count[f] = k + 1; // keys after it remain
                    return true;
                }
                still |= 1L << k;
            }
        }
        alive[f] = still;
        at[f]++;
        return still != 0;
    }

    /** The keys that may come next: from {@code from} on, up to and with the first required one. */
    private static long keysFrom(Node n, int from) {
        long set = 0;
        for (int k = from; k < n.keys.length; k++) {
            set |= 1L << k;
            if (n.required[k]) {
                break;
            }
        }
        return set;
    }

    private static boolean requiredLeft(Node n, int from) {
        for (int k = from; k < n.keys.length; k++) {
            if (n.required[k]) {
                return true;
            }
        }
        return false;
    }

    private boolean feedArray(int f, Node n, int c) {
        Boolean ws = space(c);
        if (ws != null) {
            return ws;
        }
        switch (state[f]) {
            case START -> {
                if (c == ']' && n.minItems == 0) {
                    ended();
                    return true;
                }
                return n.maxItems != 0 && start(n.items, c);
            }
            case VALUE -> {
                return start(n.items, c);
            }
            default -> {  // NEXT
                if (c == ']' && count[f] >= n.minItems) {
                    ended();
                    return true;
                }
                if (c == ',' && (n.maxItems < 0 || count[f] < n.maxItems)) {
                    state[f] = VALUE;
                    return true;
                }
                return false;
            }
        }
    }

    /** A string's bytes; {@code at[f]} counts its characters (an escape is one) against minLength and maxLength. */
    private boolean feedString(int f, Node n, int c) {
        switch (state[f]) {
            case ESCAPE -> {
                if (c == 'u') {
                    state[f] = UNICODE;
                    count[f] = 4;
                    return true;
                }
                state[f] = IN;
                return "\"\\/bfnrt".indexOf(c) >= 0;
            }
            case UNICODE -> {
                if (--count[f] == 0) {
                    state[f] = IN;
                }
                return isHex(c);
            }
            default -> {
                if (c == '"') {
                    if (at[f] < n.minItems) {
                        return false;  // shorter than minLength
                    }
                    ended();
                    return true;
                }
                if (c < 0x20) {
                    return false;
                }
                if ((c & 0xC0) != 0x80 && ++at[f] > n.maxItems && n.maxItems >= 0) {
                    return false;  // a character (not a UTF-8 continuation) past maxLength
                }
                if (c == '\\') {
                    state[f] = ESCAPE;
                }
                return true;
            }
        }
    }

    // Number states (in count).
    private static final int N_START = 0;
    private static final int N_MINUS = 1;
    private static final int N_ZERO = 2;
    private static final int N_INTEGER = 3;
    private static final int N_DOT = 4;
    private static final int N_FRACTION = 5;
    private static final int N_EXPONENT = 6;
    private static final int N_EXPONENT_SIGN = 7;
    private static final int N_EXPONENT_DIGITS = 8;

    private boolean feedNumber(int f, Node n, int c) {
        boolean digit = c >= '0' && c <= '9';
        switch (count[f]) {
            case N_START -> {
                count[f] = c == '-' ? N_MINUS : c == '0' ? N_ZERO : N_INTEGER;
                at[f] = c == '-' ? 1 : 0;  // a bounded integer's sign, and its magnitude so far in alive[f]
                alive[f] = digit ? c - '0' : 0;
                return (c == '-' || digit) && (!n.bounded() || reachable(f, n));
            }
            case N_MINUS -> {
                count[f] = c == '0' ? N_ZERO : N_INTEGER;
                alive[f] = c - '0';
                return digit && (!n.bounded() || reachable(f, n));
            }
            case N_DOT, N_EXPONENT_SIGN -> {
                count[f] = count[f] == N_DOT ? N_FRACTION : N_EXPONENT_DIGITS;
                return digit;
            }
            case N_EXPONENT -> {
                count[f] = c == '+' || c == '-' ? N_EXPONENT_SIGN : N_EXPONENT_DIGITS;
                return c == '+' || c == '-' || digit;
            }
            default -> {  // a state the number may end in
                int s = count[f];
                if (digit && s != N_ZERO) {
                    if (n.bounded()) {
                        if (alive[f] > (Long.MAX_VALUE - (c - '0')) / 10) {
                            return false;  // past any bound a long holds
                        }
                        alive[f] = alive[f] * 10 + (c - '0');
                        return reachable(f, n);
                    }
                    return true;
                }
                if (n.bounded() && !within(at[f] == 1 ? -alive[f] : alive[f], n)) {
                    return false;  // the integer may not end here: out of its bounds
                }
                if (c == '.' && !n.integer && (s == N_ZERO || s == N_INTEGER)) {
                    count[f] = N_DOT;
                    return true;
                }
                if ((c == 'e' || c == 'E') && !n.integer && s != N_EXPONENT_DIGITS) {
                    count[f] = N_EXPONENT;
                    return true;
                }
                ended();
                return depth > 0 && feed(c);  // the byte after a number belongs to what follows it
            }
        }
    }

    /**
     * Whether a bounded integer whose text so far is frame f's (sign in at[f], magnitude m in alive[f]) can still
     * end within its bounds: "0" and "-0" are done, "-" may become any negative number or -0, and m's further
     * digits make the magnitudes m x 10^j .. m x 10^j + 10^j - 1.
     */
    private boolean reachable(int f, Node n) {
        boolean negative = at[f] == 1;
        if (count[f] == N_ZERO) {
            return within(0, n);
        }
        if (count[f] == N_MINUS) {
            return n.min <= 0;
        }
        long lo = alive[f];
        long span = 1;
        while (true) {
            long hi = lo + (span - 1);
            if (negative ? -hi <= n.max && -lo >= n.min : lo <= n.max && hi >= n.min) {
                return true;
            }
            if (lo > Long.MAX_VALUE / 10 || span > Long.MAX_VALUE / 10) {
                return false;
            }
            lo *= 10;
            span *= 10;
        }
    }

    private static boolean within(long v, Node n) {
        return v >= n.min && v <= n.max;
    }

    private boolean feedLiterals(int f, Node n, int c) {
        long still = 0;
        for (int k = 0; k < n.literals.length; k++) {
            if ((alive[f] >> k & 1) != 0 && at[f] < n.literals[k].length
                    && (n.literals[k][at[f]] & 0xFF) == c) {
                if (at[f] + 1 == n.literals[k].length) {
                    ended();  // literals are strings, true, false, null: none is another's start
                    return true;
                }
                still |= 1L << k;
            }
        }
        alive[f] = still;
        at[f]++;
        return still != 0;
    }

    private static boolean isHex(int c) {
        return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F';
    }

    /** Builds the node table: "any value" (node 0) and its members first, then the schema's nodes. */
    private static final class Compiler {
        final List<Node> nodes = new ArrayList<>();
        final Map<String, Object> root;

        Compiler(Map<String, Object> root) {
            this.root = root;
            add(new Node(UNION, null, null, null, null, false, -1, 0, -1, false, null, new int[] {1, 2, 3, 4, 5}));
            add(new Node(OBJECT, new String[0], new byte[0][], new int[0], new boolean[0], true, -1, 0, -1, false,
                    null, null));
            add(new Node(ARRAY, null, null, null, null, false, ANY, 0, -1, false, null, null));
            add(new Node(STRING, null, null, null, null, false, -1, 0, -1, false, null, null));
            add(new Node(NUMBER, null, null, null, null, false, -1, 0, -1, false, null, null));
            add(new Node(LITERALS, null, null, null, null, false, -1, 0, -1, false,
                    new byte[][] {bytes("true"), bytes("false"), bytes("null")}, null));
        }

        int node(Object schemaObject, String where, List<String> refs) {
            if (Boolean.TRUE.equals(schemaObject)) {
                return ANY;
            }
            if (!(schemaObject instanceof Map<?, ?> raw)) {
                throw new UnsupportedSchemaException(where + " must be a schema object");
            }
            @SuppressWarnings("unchecked")
            Map<String, Object> schema = (Map<String, Object>) raw;
            if (schema.get("$ref") instanceof String ref) {
                if (schema.size() > 1 && schema.keySet().stream().anyMatch(k -> !k.equals("$ref")
                        && !ANNOTATIONS.contains(k))) {
                    throw new UnsupportedSchemaException(where + ": $ref beside other keywords is not supported");
                }
                if (refs.contains(ref)) {
                    throw new UnsupportedSchemaException(where + ": recursive $ref " + ref + " is not supported");
                }
                List<String> inner = new ArrayList<>(refs);
                inner.add(ref);
                return node(resolve(ref, where), ref, inner);
            }
            for (String key : schema.keySet()) {
                if (!ANNOTATIONS.contains(key) && !Set.of("type", "properties", "required", "items", "minItems",
                        "maxItems", "enum", "const", "additionalProperties", "anyOf", "oneOf", "allOf", "minimum",
                        "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength")
                        .contains(key)) {
                    throw new UnsupportedSchemaException(where + ": the keyword '" + key + "' is not supported");
                }
            }
            for (String key : List.of("anyOf", "oneOf", "allOf")) {
                if (schema.containsKey(key)) {
                    return alternatives(schema, key, where, refs);
                }
            }
            if (schema.containsKey("const") || schema.containsKey("enum")) {
                List<?> values = schema.containsKey("const") ? java.util.Collections.singletonList(schema.get("const"))
                        : schema.get("enum") instanceof List<?> l ? l : List.of();
                if (values.isEmpty() || values.size() > 63) {
                    throw new UnsupportedSchemaException(where + ": 'enum' must list 1 to 63 values");
                }
                byte[][] literals = new byte[values.size()][];
                for (int i = 0; i < literals.length; i++) {
                    literals[i] = literal(values.get(i), where);
                }
                return add(new Node(LITERALS, null, null, null, null, false, -1, 0, -1, false, literals, null));
            }
            Object type = schema.get("type");
            if (type == null) {
                if (schema.containsKey("properties")) {
                    type = "object";
                } else if (schema.containsKey("items")) {
                    type = "array";
                } else {
                    return ANY;
                }
            }
            if (type instanceof List<?> types) {
                int[] members = new int[types.size()];
                for (int i = 0; i < members.length; i++) {
                    Map<String, Object> one = new java.util.LinkedHashMap<>(schema);
                    one.put("type", types.get(i));
                    members[i] = node(one, where, refs);
                }
                return add(new Node(UNION, null, null, null, null, false, -1, 0, -1, false, null, members));
            }
            return switch (String.valueOf(type)) {
                case "object" -> object(schema, where, refs);
                case "array" -> {
                    Object items = schema.getOrDefault("items", Boolean.TRUE);
                    int item = node(items, where + "/items", refs);
                    int min = count(schema, "minItems", 0, where);
                    int max = schema.containsKey("maxItems") ? count(schema, "maxItems", 0, where) : -1;
                    yield add(new Node(ARRAY, null, null, null, null, false, item, min, max, false, null, null));
                }
                case "string" -> add(new Node(STRING, null, null, null, null, false, -1,
                        count(schema, "minLength", 0, where), schema.containsKey("maxLength")
                        ? count(schema, "maxLength", 0, where) : -1, false, null, null));
                case "number", "integer" -> number(schema, type.equals("integer"), where);
                case "boolean" -> add(new Node(LITERALS, null, null, null, null, false, -1, 0, -1, false,
                        new byte[][] {bytes("true"), bytes("false")}, null));
                case "null" -> add(new Node(LITERALS, null, null, null, null, false, -1, 0, -1, false,
                        new byte[][] {bytes("null")}, null));
                default -> throw new UnsupportedSchemaException(where + ": the type '" + type + "' is not supported");
            };
        }

        /**
         * {@code anyOf} or {@code oneOf} whose alternatives begin with different bytes (Pydantic's optional fields,
         * {@code [{...}, {"type": "null"}]}, and unions of different types): a union the first byte decides, which
         * writes a value of exactly one alternative. Alternatives that may begin alike (two objects, say) are
         * refused: the automaton would have to follow both. {@code allOf} of one schema is that schema (Pydantic
         * wrote a described $ref so).
         */
        private int alternatives(Map<String, Object> schema, String key, String where, List<String> refs) {
            if (schema.keySet().stream().anyMatch(k -> !k.equals(key) && !ANNOTATIONS.contains(k))) {
                throw new UnsupportedSchemaException(where + ": '" + key + "' beside other keywords is not supported");
            }
            if (!(schema.get(key) instanceof List<?> list) || list.isEmpty()) {
                throw new UnsupportedSchemaException(where + ": '" + key + "' must be a non-empty list of schemas");
            }
            if (key.equals("allOf")) {
                if (list.size() > 1) {
                    throw new UnsupportedSchemaException(where + ": 'allOf' of more than one schema is not supported");
                }
                return node(list.get(0), where + "/allOf/0", refs);
            }
            int[] members = new int[list.size()];
            for (int i = 0; i < members.length; i++) {
                members[i] = node(list.get(i), where + "/" + key + "/" + i, refs);
            }
            Node[] all = nodes.toArray(Node[]::new);
            for (int c = 0; c < 256; c++) {
                int first = -1;
                for (int i = 0; i < members.length; i++) {
                    if (first(all, all[members[i]], c)) {
                        if (first >= 0) {
                            throw new UnsupportedSchemaException(where + ": the '" + key + "' alternatives " + first
                                    + " and " + i + " may both begin with '" + (char) c + "'; only alternatives of "
                                    + "different types are supported");
                        }
                        first = i;
                    }
                }
            }
            return add(new Node(UNION, null, null, null, null, false, -1, 0, -1, false, null, members));
        }

        /**
         * A number; an integer may be bounded ({@code minimum}, {@code maximum} and their exclusive forms, integers:
         * Pydantic's {@code Field(ge=0)}). Bounds on other numbers are refused: their fractions and exponents would
         * need more than digit-by-digit ranges.
         */
        private int number(Map<String, Object> schema, boolean integer, String where) {
            long min = Long.MIN_VALUE;
            long max = Long.MAX_VALUE;
            for (String key : List.of("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")) {
                if (!schema.containsKey(key)) {
                    continue;
                }
                if (!integer) {
                    throw new UnsupportedSchemaException(where + ": the keyword '" + key + "' is supported on "
                            + "integers only");
                }
                Object v = schema.get(key);
                if (!(v instanceof Integer || v instanceof Long)) {
                    throw new UnsupportedSchemaException(where + ": '" + key + "' must be an integer");
                }
                long bound = ((Number) v).longValue();
                if (key.startsWith("exclusive") && (bound == Long.MIN_VALUE || bound == Long.MAX_VALUE)) {
                    throw new UnsupportedSchemaException(where + ": '" + key + "' is past the integers supported");
                }
                switch (key) {
                    case "minimum" -> min = Math.max(min, bound);
                    case "maximum" -> max = Math.min(max, bound);
                    case "exclusiveMinimum" -> min = Math.max(min, bound + 1);
                    default -> max = Math.min(max, bound - 1);
                }
            }
            if (min > max) {
                throw new UnsupportedSchemaException(where + ": no integer lies within its bounds");
            }
            return add(new Node(NUMBER, null, null, null, null, false, -1, 0, -1, integer, null, null, min, max));
        }

        private int object(Map<String, Object> schema, String where, List<String> refs) {
            Object additional = schema.get("additionalProperties");
            if (!schema.containsKey("properties") && additional == null && !schema.containsKey("required")) {
                return OPEN_OBJECT;  // {"type": "object"} alone: any object
            }
            if (additional != null && !Boolean.FALSE.equals(additional)) {
                throw new UnsupportedSchemaException(where + ": 'additionalProperties' other than false is not "
                        + "supported (an object holds the properties it lists)");
            }
            if (!(schema.getOrDefault("properties", Map.of()) instanceof Map<?, ?> properties)) {
                throw new UnsupportedSchemaException(where + ": 'properties' must be an object");
            }
            List<?> required = schema.get("required") instanceof List<?> l ? l : List.of();
            if (properties.size() > 63) {
                throw new UnsupportedSchemaException(where + ": more than 63 properties are not supported");
            }
            String[] keys = properties.keySet().stream().map(String::valueOf).toArray(String[]::new);
            for (Object r : required) {
                if (!Arrays.asList(keys).contains(String.valueOf(r))) {
                    throw new UnsupportedSchemaException(where + ": the required property '" + r + "' is not "
                            + "among the properties");
                }
            }
            byte[][] keyTexts = new byte[keys.length][];
            int[] values = new int[keys.length];
            boolean[] isRequired = new boolean[keys.length];
            for (int k = 0; k < keys.length; k++) {
                byte[] quoted = literal(keys[k], where);
                keyTexts[k] = Arrays.copyOfRange(quoted, 1, quoted.length);  // the opening quote starts the key
                values[k] = node(properties.get(keys[k]), where + "/properties/" + keys[k], refs);
                isRequired[k] = required.contains(keys[k]);
            }
            return add(new Node(OBJECT, keys, keyTexts, values, isRequired, false, -1, 0, -1, false, null, null));
        }

        private Object resolve(String ref, String where) {
            Object at = root;
            if (!ref.startsWith("#/")) {
                throw new UnsupportedSchemaException(where + ": only local $refs (#/...) are supported, not " + ref);
            }
            for (String part : ref.substring(2).split("/")) {
                if (!(at instanceof Map<?, ?> m) || !m.containsKey(part)) {
                    throw new UnsupportedSchemaException(where + ": $ref " + ref + " names nothing");
                }
                at = m.get(part);
            }
            return at;
        }

        private static int count(Map<String, Object> schema, String key, int dflt, String where) {
            Object v = schema.getOrDefault(key, dflt);
            if (!(v instanceof Integer i) || i < 0) {
                throw new UnsupportedSchemaException(where + ": '" + key + "' must be a non-negative integer");
            }
            return i;
        }

        /** A value's JSON text, for strings, booleans and null (enum and const); keys are strings. */
        private static byte[] literal(Object value, String where) {
            if (value == null) {
                return bytes("null");
            }
            if (value instanceof Boolean b) {
                return bytes(b.toString());
            }
            if (value instanceof String s) {
                return bytes("\"" + new String(com.fasterxml.jackson.core.io.JsonStringEncoder.getInstance()
                        .quoteAsString(s)) + "\"");
            }
            throw new UnsupportedSchemaException(where + ": enum and const values must be strings, booleans or "
                    + "null, not " + value);
        }

        private static byte[] bytes(String s) {
            return s.getBytes(StandardCharsets.UTF_8);
        }

        private int add(Node n) {
            nodes.add(n);
            return nodes.size() - 1;
        }
    }
}
