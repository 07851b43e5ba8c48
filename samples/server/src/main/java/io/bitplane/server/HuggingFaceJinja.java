package io.bitplane.server;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import jinjava.javax.el.CompositeELResolver;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Jinjava set up to render chat templates as Hugging Face's Jinja (Python) renders them, which it follows only when
 * told: whitespace control on expressions ({@code {{- x }}}, which every Llama 3 and Qwen template uses: without it
 * the prompt carries the template's newlines and indentation), trim_blocks and lstrip_blocks (Hugging Face's
 * environment has both), filters binding tighter than {@code +} and {@code -}, Python's string methods
 * ({@link PythonStringMethods}), {@code tojson} spaced as Python writes JSON ({@link PythonJson}),
 * {@code strftime_now}, and two spellings its parser lacks, rewritten before parsing ({@link #adapt}).
 */
final class HuggingFaceJinja {
    private HuggingFaceJinja() {
    }

    /** A Jinjava with Hugging Face's settings and strftime_now; unknown variables render empty. */
    static Jinjava newEngine() {
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new PythonStringMethods());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        Jinjava jinjava = new Jinjava(JinjavaConfig.newBuilder().withFailOnUnknownTokens(false)
                .withElResolver(resolver).withTrimBlocks(true).withLstripBlocks(true)
                .withLegacyOverrides(LegacyOverrides.newBuilder().withUseTrimmingForNotesAndExpressions(true)
                        .withUseNaturalOperatorPrecedence(true).build())
                .build());
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now",
                HuggingFaceJinja.class, "strftimeNow", String.class));
        jinjava.getGlobalContext().registerFilter(new PythonJson());
        jinjava.getGlobalContext().registerExpTest(new PythonIterable());
        return jinjava;
    }

    /** Jinja's {@code is iterable}: what Python can iterate, strings included (Llama 3 writes a string tool answer
     * with tojson because of it); Jinjava's counts only collections and arrays. */
    private static final class PythonIterable implements com.hubspot.jinjava.lib.exptest.ExpTest {
        @Override
        public String getName() {
            return "iterable";
        }

        @Override
        public boolean evaluate(Object var, com.hubspot.jinjava.interpret.JinjavaInterpreter interpreter,
                                Object... args) {
            return var instanceof CharSequence || var instanceof Iterable<?> || var instanceof java.util.Map<?, ?>
                    || var != null && var.getClass().isArray();
        }
    }

    /**
     * The template with the Python spellings Jinjava reads otherwise rewritten: {@code [::-1]} as {@code |reverse};
     * each named argument of {@code namespace(...)} in parentheses ({@code namespace(i=messages|length - 1)}
     * otherwise parses as {@code (i=messages|length) - 1}); {@code not x is test} as {@code not (x is test)} (Jinja's
     * {@code not} binds looser than {@code is}, Jinjava's tighter: Llama 3's {@code not tools is defined} was true
     * with tools given); and without its last newline, as Jinja renders it.
     */
    static String adapt(String template) {
        String t = negatedTests(template.replace("[::-1]", "|reverse"));
        // Jinja drops one newline at the end of a template (keep_trailing_newline is off); Jinjava keeps it
        t = t.endsWith("\r\n") ? t.substring(0, t.length() - 2) : t.endsWith("\n") ? t.substring(0, t.length() - 1) : t;
        StringBuilder out = new StringBuilder();
        int from = 0;
        for (int at = t.indexOf("namespace("); at >= 0; at = t.indexOf("namespace(", from)) {
            int open = at + "namespace(".length();
            List<String> args = new ArrayList<>();
            int close = arguments(t, open, args);
            if (close < 0) {
                break;
            }
            out.append(t, from, open);
            for (int i = 0; i < args.size(); i++) {
                Matcher m = NAMED.matcher(args.get(i));
                out.append(i == 0 ? "" : ",").append(m.matches() ? m.group(1) + "=(" + m.group(2) + ")" : args.get(i));
            }
            out.append(')');
            from = close + 1;
        }
        return out.append(t.substring(from)).toString();
    }

    private static final Pattern TAG = Pattern.compile("(?s)\\{[{%].*?[}%]\\}");
    private static final Pattern NEGATED_TEST = Pattern.compile(
            "\\bnot\\s+([A-Za-z_]\\w*(?:\\.[A-Za-z_]\\w*|\\[[^\\]]*\\])*)\\s+is\\s+((?:not\\s+)?[A-Za-z_]\\w*)");

    /** {@code not x is test} as {@code not (x is test)} inside each tag and expression of the template. */
    private static String negatedTests(String t) {
        return TAG.matcher(t).replaceAll(tag -> Matcher.quoteReplacement(
                NEGATED_TEST.matcher(tag.group()).replaceAll("not ($1 is $2)")));
    }

    private static final Pattern NAMED = Pattern.compile("(?s)(\\s*[A-Za-z_][A-Za-z0-9_]*\\s*)=(?!=)(.*)");

    /**
     * The comma-separated arguments of the call whose list starts at {@code open} (split at its top level only,
     * outside quotes and brackets) into {@code args}; returns the index of the closing parenthesis, or -1.
     */
    private static int arguments(String t, int open, List<String> args) {
        int depth = 0;
        char quote = 0;
        int start = open;
        for (int i = open; i < t.length(); i++) {
            char c = t.charAt(i);
            if (quote != 0) {
                if (c == '\\') {
                    i++;
                } else if (c == quote) {
                    quote = 0;
                }
            } else if (c == '\'' || c == '"') {
                quote = c;
            } else if (c == '(' || c == '[' || c == '{') {
                depth++;
            } else if (c == ',' && depth == 0) {
                args.add(t.substring(start, i));
                start = i + 1;
            } else if (c == ')' || c == ']' || c == '}') {
                if (depth == 0) {
                    args.add(t.substring(start, i));
                    return c == ')' ? i : -1;
                }
                depth--;
            }
        }
        return -1;
    }

    /** The template's {@code strftime_now}: today's date in a Python strftime format (Llama 3's "%d %b %Y"). */
    public static String strftimeNow(String format) {
        java.time.ZonedDateTime now = java.time.ZonedDateTime.now();
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                out.append(c);
                continue;
            }
            char f = format.charAt(++i);
            out.append(switch (f) {
                case 'd' -> String.format(java.util.Locale.ROOT, "%02d", now.getDayOfMonth());
                case 'm' -> String.format(java.util.Locale.ROOT, "%02d", now.getMonthValue());
                case 'Y' -> String.valueOf(now.getYear());
                case 'y' -> String.format(java.util.Locale.ROOT, "%02d", now.getYear() % 100);
                case 'b', 'B', 'a', 'A' -> now.format(java.time.format.DateTimeFormatter.ofPattern(
                        f == 'b' ? "MMM" : f == 'B' ? "MMMM" : f == 'a' ? "EEE" : "EEEE", java.util.Locale.ENGLISH));
                case 'H' -> String.format(java.util.Locale.ROOT, "%02d", now.getHour());
                case 'M' -> String.format(java.util.Locale.ROOT, "%02d", now.getMinute());
                case 'S' -> String.format(java.util.Locale.ROOT, "%02d", now.getSecond());
                case '%' -> "%";
                default -> "%" + f;
            });
        }
        return out.toString();
    }
}
