package io.bitplane.runtime;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A grammar in llama.cpp's GBNF, parsed into rules of alternatives of elements (what {@link GrammarConstraint}
 * runs). The syntax is llama.cpp's: {@code name ::= alternatives}, one rule per line (a rule goes on across lines
 * inside parentheses or after {@code |}), {@code root} the start; an alternative is a sequence of string literals
 * ({@code "..."}), character classes ({@code [a-z]}, {@code [^"\\]}), {@code .} (any character), rule names and
 * groups ({@code ( ... )}), each with an optional {@code *}, {@code +}, {@code ?} or {@code {m}}, {@code {m,}},
 * {@code {m,n}}; escapes {@code \n \r \t \\ \" \[ \] \- \xHH \\uHHHH \UHHHHHHHH}; {@code #} comments. Repetitions and
 * groups become rules of their own, as llama.cpp rewrites them. Characters are Unicode code points.
 *
 * <p>Layout: {@code alternatives[a]} is an alternative's elements in order: {@code e >= 0} is character class
 * {@code classes[e]}, {@code e < 0} is a reference to rule {@code -1 - e}; {@code rules[r]} lists rule r's
 * alternatives' indices. A character class is sorted-or-not inclusive ranges {@code [lo0, hi0, lo1, hi1, ...]}, and
 * matches a code point inside one of them, or outside all when negated.
 */
final class Gbnf {
    /** A grammar this parser refuses, with the line and column at fault. */
    static final class GrammarException extends IllegalArgumentException {
        GrammarException(String message) {
            super(message);
        }
    }

    /** A character class: inclusive code point ranges, negated or not. */
    record CharClass(int[] ranges, boolean negated) {
        boolean matches(int c) {
            for (int i = 0; i < ranges.length; i += 2) {
                if (c >= ranges[i] && c <= ranges[i + 1]) {
                    return !negated;
                }
            }
            return negated;
        }

        /** Whether some code point in {@code [lo, hi]} matches (for a character whose first bytes are known). */
        boolean matchesSomeIn(int lo, int hi) {
            if (!negated) {
                for (int i = 0; i < ranges.length; i += 2) {
                    if (ranges[i] <= hi && ranges[i + 1] >= lo) {
                        return true;
                    }
                }
                return false;
            }
            // Negated: some c in [lo, hi] outside every range. Walk c upward past the ranges that cover it.
            int c = lo;
            boolean moved = true;
            while (c <= hi && moved) {
                moved = false;
                for (int i = 0; i < ranges.length; i += 2) {
                    if (c >= ranges[i] && c <= ranges[i + 1]) {
                        c = ranges[i + 1] + 1;
                        moved = true;
                    }
                }
            }
            return c <= hi;
        }
    }

    final List<int[]> alternatives = new ArrayList<>();
    final List<int[]> rules = new ArrayList<>();
    final List<CharClass> classes = new ArrayList<>();
    final int root;

    /** The most rules a grammar may make (repetitions expanded), against grammars that would fill the heap. */
    static final int MAX_RULES = 10_000;

    /** How deep parentheses may nest (the parser recurses into each). */
    static final int MAX_GROUP_DEPTH = 64;

    private final String text;
    private int pos;
    private int groupDepth;
    private final Map<String, Integer> ruleIds = new LinkedHashMap<>();
    private final Map<Integer, Boolean> defined = new HashMap<>();

    /**
     * Parses {@code text}.
     *
     * @throws GrammarException naming the line and column, for bad syntax, an undefined rule, no {@code root}, or
     *                          left recursion (which llama.cpp refuses too)
     */
    static Gbnf parse(String text) {
        return new Gbnf(text);
    }

    private Gbnf(String text) {
        this.text = text;
        skipSpace(true);
        while (pos < text.length()) {
            String name = name();
            skipSpace(false);
            expect("::=");
            skipSpace(true);
            int id = ruleId(name);
            if (Boolean.TRUE.equals(defined.put(id, true))) {
                throw error("the rule '" + name + "' is defined twice");
            }
            rules.set(id, addAll(alternatives(false)));
            if (pos < text.length() && text.charAt(pos) != '\n' && text.charAt(pos) != '\r') {
                throw error("unexpected '" + text.charAt(pos) + "'");
            }
            skipSpace(true);
        }
        for (Map.Entry<String, Integer> e : ruleIds.entrySet()) {
            if (!defined.getOrDefault(e.getValue(), false)) {
                throw new GrammarException("the rule '" + e.getKey() + "' is used but not defined");
            }
        }
        Integer r = ruleIds.get("root");
        if (r == null) {
            throw new GrammarException("the grammar has no 'root' rule");
        }
        root = r;
        checkLeftRecursion();
    }

    private int ruleId(String name) {
        return ruleIds.computeIfAbsent(name, n -> newRule());
    }

    private int newRule() {
        if (rules.size() >= MAX_RULES) {
            throw error("the grammar makes more than " + MAX_RULES + " rules");
        }
        rules.add(new int[0]);
        return rules.size() - 1;
    }

    /** A new rule of its own (a group or repetition) with these alternatives. */
    private int anonymous(List<int[]> alts) {
        int id = newRule();
        defined.put(id, true);
        rules.set(id, addAll(alts));
        return id;
    }

    private int[] addAll(List<int[]> alts) {
        int[] ids = new int[alts.size()];
        for (int i = 0; i < ids.length; i++) {
            alternatives.add(alts.get(i));
            ids[i] = alternatives.size() - 1;
        }
        return ids;
    }

    /** Alternatives separated by '|', up to the end of the rule (a new line) or, nested, a ')'. */
    private List<int[]> alternatives(boolean nested) {
        List<int[]> alts = new ArrayList<>();
        alts.add(sequence(nested));
        while (pos < text.length() && text.charAt(pos) == '|') {
            pos++;
            skipSpace(true);
            alts.add(sequence(nested));
        }
        return alts;
    }

    private int[] sequence(boolean nested) {
        List<Integer> elements = new ArrayList<>();
        while (pos < text.length()) {
            char c = text.charAt(pos);
            List<Integer> item = new ArrayList<>();
            if (c == '"') {
                pos++;
                while (pos < text.length() && text.charAt(pos) != '"') {
                    int cp = character();
                    item.add(addClass(new CharClass(new int[] {cp, cp}, false)));
                }
                expect("\"");
            } else if (c == '[') {
                item.add(charClass());
            } else if (c == '.') {
                pos++;
                item.add(addClass(new CharClass(new int[0], true)));
            } else if (c == '(') {
                if (++groupDepth > MAX_GROUP_DEPTH) {
                    throw error("groups nest more than " + MAX_GROUP_DEPTH + " deep");
                }
                pos++;
                skipSpace(true);
                List<int[]> inner = alternatives(true);
                expect(")");
                groupDepth--;
                item.add(-1 - anonymous(inner));
            } else if (isNameChar(c)) {
                item.add(-1 - ruleId(name()));
            } else {
                break;  // '|', ')', the end of the rule, or something the caller reports
            }
            skipSpace(nested);
            elements.addAll(repeated(item, nested));
        }
        return elements.stream().mapToInt(Integer::intValue).toArray();
    }

    /** An item and its repetition operator, if any, as elements (llama.cpp's rewriting into new rules). */
    private List<Integer> repeated(List<Integer> item, boolean nested) {
        if (pos >= text.length()) {
            return item;
        }
        char op = text.charAt(pos);
        int min;
        int max;
        if (op == '*' || op == '+' || op == '?') {
            pos++;
            min = op == '+' ? 1 : 0;
            max = op == '?' ? 1 : -1;
        } else if (op == '{') {
            pos++;
            skipSpace(nested);
            min = integer();
            skipSpace(nested);
            max = min;
            if (pos < text.length() && text.charAt(pos) == ',') {
                pos++;
                skipSpace(nested);
                max = pos < text.length() && Character.isDigit(text.charAt(pos)) ? integer() : -1;
                skipSpace(nested);
            }
            expect("}");
            if (max >= 0 && max < min) {
                throw error("the repetition {" + min + "," + max + "} has its maximum below its minimum");
            }
        } else {
            return item;
        }
        skipSpace(nested);
        if (item.isEmpty()) {
            return item;  // "" repeated is still nothing
        }
        if (item.size() != 1) {
            // A literal of several characters repeats as a whole: group it first.
            int[] seq = item.stream().mapToInt(Integer::intValue).toArray();
            item = List.of(-1 - anonymous(List.<int[]>of(seq)));
        }
        if (min > 1000 || max > 1000) {
            throw error("repetitions above 1000 are not supported");
        }
        int[] one = item.stream().mapToInt(Integer::intValue).toArray();
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < min; i++) {
            out.addAll(item);
        }
        if (max < 0) {  // x* : star ::= x star | ""
            int star = newRule();
            defined.put(star, true);
            int[] loop = new int[one.length + 1];
            System.arraycopy(one, 0, loop, 0, one.length);
            loop[one.length] = -1 - star;
            rules.set(star, addAll(List.of(loop, new int[0])));
            out.add(-1 - star);
        } else if (max > min) {  // up to (max - min) more, nested: opt ::= x opt' | ""
            int next = -1;
            for (int i = 0; i < max - min; i++) {
                int[] alt = next < 0 ? one : append(one, -1 - next);
                next = anonymous(List.of(alt, new int[0]));
            }
            out.add(-1 - next);
        }
        return out;
    }

    private static int[] append(int[] a, int e) {
        int[] out = java.util.Arrays.copyOf(a, a.length + 1);
        out[a.length] = e;
        return out;
    }

    private int charClass() {
        expect("[");
        boolean negated = pos < text.length() && text.charAt(pos) == '^';
        if (negated) {
            pos++;
        }
        List<Integer> ranges = new ArrayList<>();
        while (pos < text.length() && text.charAt(pos) != ']') {
            int lo = character();
            int hi = lo;
            if (pos + 1 < text.length() && text.charAt(pos) == '-' && text.charAt(pos + 1) != ']') {
                pos++;
                hi = character();
                if (hi < lo) {
                    throw error("the range ends below its start");
                }
            }
            ranges.add(lo);
            ranges.add(hi);
        }
        expect("]");
        return addClass(new CharClass(ranges.stream().mapToInt(Integer::intValue).toArray(), negated));
    }

    private int addClass(CharClass c) {
        classes.add(c);
        return classes.size() - 1;
    }

    /** One character of a literal or class, escapes read. */
    private int character() {
        if (pos >= text.length()) {
            throw error("the text ends inside a literal or class");
        }
        int c = text.codePointAt(pos);
        pos += Character.charCount(c);
        if (c != '\\') {
            return c;
        }
        if (pos >= text.length()) {
            throw error("the text ends inside an escape");
        }
        char e = text.charAt(pos++);
        return switch (e) {
            case 'n' -> '\n';
            case 'r' -> '\r';
            case 't' -> '\t';
            case '\\', '"', '[', ']', '-', '^' -> e;
            case 'x' -> hex(2);
            case 'u' -> hex(4);
            case 'U' -> hex(8);
            default -> throw error("unknown escape '\\" + e + "'");
        };
    }

    private int hex(int digits) {
        if (pos + digits > text.length()) {
            throw error("a \\x, \\u or \\U escape needs " + digits + " hex digits");
        }
        int v;
        try {
            v = Integer.parseUnsignedInt(text.substring(pos, pos + digits), 16);
        } catch (NumberFormatException e) {
            throw error("a \\x, \\u or \\U escape needs " + digits + " hex digits");
        }
        if (v > Character.MAX_CODE_POINT || v < 0) {
            throw error("the escape names no Unicode character");
        }
        pos += digits;
        return v;
    }

    private int integer() {
        int start = pos;
        while (pos < text.length() && Character.isDigit(text.charAt(pos)) && pos - start < 6) {
            pos++;
        }
        if (start == pos) {
            throw error("a number must follow '{' or ','");
        }
        return Integer.parseInt(text.substring(start, pos));
    }

    private String name() {
        int start = pos;
        while (pos < text.length() && isNameChar(text.charAt(pos))) {
            pos++;
        }
        if (start == pos) {
            throw error("a rule name must start here");
        }
        return text.substring(start, pos);
    }

    private static boolean isNameChar(char c) {
        return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_';
    }

    private void expect(String s) {
        if (!text.startsWith(s, pos)) {
            throw error("expected '" + s + "'");
        }
        pos += s.length();
    }

    /** Spaces, tabs and comments; new lines too where a rule goes on ({@code newlines}). */
    private void skipSpace(boolean newlines) {
        while (pos < text.length()) {
            char c = text.charAt(pos);
            if (c == '#') {
                while (pos < text.length() && text.charAt(pos) != '\n') {
                    pos++;
                }
            } else if (c == ' ' || c == '\t' || (newlines && (c == '\n' || c == '\r'))) {
                pos++;
            } else if (!newlines && (c == '\n' || c == '\r')) {
                // A new line ends the rule unless the next line goes on with '|': llama.cpp reads that as one rule.
                int next = pos;
                while (next < text.length() && Character.isWhitespace(text.charAt(next))) {
                    next++;
                }
                if (next < text.length() && text.charAt(next) == '|') {
                    pos = next;
                }
                return;
            } else {
                return;
            }
        }
    }

    private GrammarException error(String message) {
        int line = 1;
        int column = 1;
        for (int i = 0; i < Math.min(pos, text.length()); i++) {
            if (text.charAt(i) == '\n') {
                line++;
                column = 1;
            } else {
                column++;
            }
        }
        return new GrammarException("grammar line " + line + ", column " + column + ": " + message);
    }

    /**
     * Refuses rules that can reach themselves before reading a character (left recursion): the automaton would
     * expand them forever.
     */
    private void checkLeftRecursion() {
        boolean[] nullable = new boolean[rules.size()];
        boolean changed = true;
        while (changed) {
            changed = false;
            for (int r = 0; r < rules.size(); r++) {
                if (!nullable[r] && anyNullable(rules.get(r), nullable)) {
                    nullable[r] = true;
                    changed = true;
                }
            }
        }
        int[] colour = new int[rules.size()];  // 0 new, 1 on the path, 2 done
        for (int r = 0; r < rules.size(); r++) {
            visit(r, nullable, colour);
        }
    }

    private boolean anyNullable(int[] alts, boolean[] nullable) {
        for (int a : alts) {
            boolean all = true;
            for (int e : alternatives.get(a)) {
                if (e >= 0 || !nullable[-1 - e]) {
                    all = false;
                    break;
                }
            }
            if (all) {
                return true;
            }
        }
        return false;
    }

    private void visit(int r, boolean[] nullable, int[] colour) {
        if (colour[r] == 2) {
            return;
        }
        if (colour[r] == 1) {
            throw new GrammarException("the grammar is left-recursive at rule '" + nameOf(r) + "'");
        }
        colour[r] = 1;
        for (int a : rules.get(r)) {
            for (int e : alternatives.get(a)) {
                if (e >= 0) {
                    break;
                }
                visit(-1 - e, nullable, colour);
                if (!nullable[-1 - e]) {
                    break;
                }
            }
        }
        colour[r] = 2;
    }

    private String nameOf(int rule) {
        for (Map.Entry<String, Integer> e : ruleIds.entrySet()) {
            if (e.getValue() == rule) {
                return e.getKey();
            }
        }
        return "(a group or repetition)";
    }
}
