package io.bitplane.runtime;

/**
 * OpenAI's JSON mode ({@code response_format: {"type": "json_object"}}) as a {@link TokenConstraint}: the text must
 * be one JSON object (RFC 8259, strict: no comments, trailing commas, single quotes, NaN or leading zeros), nested
 * at most {@value #MAX_DEPTH} deep. White space may follow any of its tokens (not come before the first) as
 * llama.cpp's JSON grammar allows it: one space, or a new line and up to {@value #MAX_INDENT} spaces or tabs; a
 * model kept to JSON it does not know otherwise spends its budget on blank lines. Complete once the object closes.
 *
 * <p>A pushdown automaton over bytes: JSON's structure is ASCII, and a string may hold any byte from 0x20 up but
 * '"' and '\' unescaped, so a token that ends inside a UTF-8 character is fine. The state is a few ints and the
 * stack of open containers.
 */
public final class JsonObjectConstraint extends ByteAutomaton<JsonObjectConstraint> {
    static final int MAX_INDENT = 20;
    static final int MAX_DEPTH = 64;

    // What the next byte may be.
    private static final int VALUE = 0;            // a value (the top level: an object only)
    private static final int KEY_OR_CLOSE = 1;     // after '{'
    private static final int KEY = 2;              // after ',' in an object
    private static final int COLON = 3;            // after a key
    private static final int COMMA_OR_CLOSE = 4;   // after a value in a container
    private static final int VALUE_OR_CLOSE = 5;   // after '['
    private static final int STRING = 6;
    private static final int ESCAPE = 7;           // after '\' in a string
    private static final int UNICODE = 8;          // in the 4 hex digits of \\u
    private static final int LITERAL = 9;          // in true, false or null
    private static final int MINUS = 10;           // number: after '-'
    private static final int ZERO = 11;            // number: a leading 0
    private static final int INTEGER = 12;         // number: digits
    private static final int DOT = 13;             // number: after '.'
    private static final int FRACTION = 14;        // number: digits after '.'
    private static final int EXPONENT = 15;        // number: after 'e'
    private static final int EXPONENT_SIGN = 16;   // number: after 'e' and a sign
    private static final int EXPONENT_DIGITS = 17; // number: digits of the exponent
    private static final int DONE = 18;

    private static final byte[][] LITERALS = {"true".getBytes(), "false".getBytes(), "null".getBytes()};

    private int mode = VALUE;
    private boolean key;       // the string being read is a key
    private int count;         // hex digits left in UNICODE; bytes read of the literal in LITERAL
    private int literal;       // which literal
    private int space;         // the run of white space: 0 none, -1 one space (ends it), 1 + n a new line and n more
    private int depth;
    private final boolean[] objects = new boolean[MAX_DEPTH];  // open containers: true for an object

    @Override
    public boolean complete() {
        return mode == DONE;
    }

    @Override
    JsonObjectConstraint twin() {
        return new JsonObjectConstraint();
    }

    @Override
    void copyFrom(JsonObjectConstraint o) {
        mode = o.mode;
        key = o.key;
        count = o.count;
        literal = o.literal;
        space = o.space;
        depth = o.depth;
        System.arraycopy(o.objects, 0, objects, 0, o.depth);
    }

    @Override
    boolean feed(int c) {
        switch (mode) {
            case STRING -> {
                if (c == '"') {
                    if (key) {
                        mode = COLON;
                    } else {
                        valueEnded();
                    }
                } else if (c == '\\') {
                    mode = ESCAPE;
                } else {
                    return c >= 0x20;
                }
                return true;
            }
            case ESCAPE -> {
                if (c == 'u') {
                    mode = UNICODE;
                    count = 4;
                    return true;
                }
                mode = STRING;
                return "\"\\/bfnrt".indexOf(c) >= 0;
            }
            case UNICODE -> {
                if (--count == 0) {
                    mode = STRING;
                }
                return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F';
            }
            case LITERAL -> {
                if (c != LITERALS[literal][count]) {
                    return false;
                }
                if (++count == LITERALS[literal].length) {
                    valueEnded();
                }
                return true;
            }
            case MINUS -> {
                mode = c == '0' ? ZERO : INTEGER;
                return isDigit(c);
            }
            case ZERO, INTEGER, FRACTION -> {
                if (isDigit(c) && mode != ZERO) {
                    return true;
                }
                if (c == '.' && mode != FRACTION) {
                    mode = DOT;
                    return true;
                }
                if (c == 'e' || c == 'E') {
                    mode = EXPONENT;
                    return true;
                }
                valueEnded();
                return feed(c);  // the byte after a number belongs to what follows it
            }
            case DOT -> {
                mode = FRACTION;
                return isDigit(c);
            }
            case EXPONENT -> {
                mode = c == '+' || c == '-' ? EXPONENT_SIGN : EXPONENT_DIGITS;
                return c == '+' || c == '-' || isDigit(c);
            }
            case EXPONENT_SIGN -> {
                mode = EXPONENT_DIGITS;
                return isDigit(c);
            }
            case EXPONENT_DIGITS -> {
                if (isDigit(c)) {
                    return true;
                }
                valueEnded();
                return feed(c);
            }
            default -> {
                return structural(c);
            }
        }
    }

    /** Between tokens: white space, or what the mode expects. */
    private boolean structural(int c) {
        if (c == ' ' || c == '\n' || c == '\t') {
            if (mode == VALUE && depth == 0) {
                return false;  // the text starts with its '{'
            }
            if (space == 0) {
                space = c == '\n' ? 1 : -1;
                return c != '\t';
            }
            return space > 0 && c != '\n' && ++space <= 1 + MAX_INDENT;
        }
        space = 0;
        switch (mode) {
            case VALUE, VALUE_OR_CLOSE -> {
                if (mode == VALUE_OR_CLOSE && c == ']') {
                    return close(false);
                }
                return startValue(c);
            }
            case KEY_OR_CLOSE, KEY -> {
                if (mode == KEY_OR_CLOSE && c == '}') {
                    return close(true);
                }
                if (c == '"') {
                    mode = STRING;
                    key = true;
                    return true;
                }
                return false;
            }
            case COLON -> {
                mode = VALUE;
                return c == ':';
            }
            case COMMA_OR_CLOSE -> {
                boolean object = objects[depth - 1];
                if (c == ',') {
                    mode = object ? KEY : VALUE;
                    return true;
                }
                return c == (object ? '}' : ']') && close(object);
            }
            default -> {
                return false;  // DONE: nothing but white space
            }
        }
    }

    private boolean startValue(int c) {
        if (depth == 0 && c != '{') {
            return false;  // JSON mode: the text is an object
        }
        if (c == '{' || c == '[') {
            if (depth == MAX_DEPTH) {
                return false;
            }
            objects[depth++] = c == '{';
            mode = c == '{' ? KEY_OR_CLOSE : VALUE_OR_CLOSE;
            return true;
        }
        if (c == '"') {
            mode = STRING;
            key = false;
            return true;
        }
        if (c == '-') {
            mode = MINUS;
            return true;
        }
        if (isDigit(c)) {
            mode = c == '0' ? ZERO : INTEGER;
            return true;
        }
        for (int i = 0; i < LITERALS.length; i++) {
            if (c == LITERALS[i][0]) {
                mode = LITERAL;
                literal = i;
                count = 1;
                return true;
            }
        }
        return false;
    }

    private boolean close(boolean object) {
        if (depth == 0 || objects[depth - 1] != object) {
            return false;
        }
        depth--;
        valueEnded();
        return true;
    }

    /** After a value: the end of the text at the top level, else a comma or the container's close. */
    private void valueEnded() {
        mode = depth == 0 ? DONE : COMMA_OR_CLOSE;
        space = 0;
    }

    private static boolean isDigit(int c) {
        return c >= '0' && c <= '9';
    }
}
