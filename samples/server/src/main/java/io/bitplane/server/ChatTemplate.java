package io.bitplane.server;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import jinjava.javax.el.CompositeELResolver;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns chat messages into a prompt with a Jinja chat template, as Hugging Face and llama.cpp do: the model's own
 * ({@code tokenizer.chat_template} of a GGUF file) when it carries one, else {@link #DEFAULT}. The variables are
 * {@code messages} (each with {@code role} and {@code content}), {@code add_generation_prompt}, {@code bos_token}
 * and {@code eos_token}, and {@code raise_exception(message)} and {@code strftime_now(format)} are defined. The
 * tokenizer adds BOS itself, so a BOS the template writes at the very start is dropped (as llama.cpp does).
 *
 * <p>Templates are written for Hugging Face's Jinja (Python), which Jinjava follows only when told: whitespace
 * control on expressions ({@code {{- x }}}, which every Llama 3 and Qwen template uses: without it the prompt
 * carries the template's indentation), filters binding tighter than {@code +} and {@code -}, Python's string
 * methods ({@link PythonStringMethods}), and two spellings its parser lacks, rewritten before parsing: a reversed
 * slice {@code [::-1]} (as {@code |reverse}) and an expression as a named argument of {@code namespace(...)}
 * (parenthesized). Qwen3's, Llama 3.2's and ChatML templates render as Hugging Face renders them (the tests).
 */
final class ChatTemplate {
    /** For models without a template: plain turns a story or base model can continue. */
    static final String DEFAULT = "{% for m in messages %}"
            + "{% if m.role == 'system' %}{{ m.content }}\n\n"
            + "{% elif m.role == 'user' %}User: {{ m.content }}\n"
            + "{% else %}Assistant: {{ m.content }}\n{% endif %}"
            + "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}";

    private final Jinjava jinjava;
    private final String template;
    private final String bos;
    private final String eos;
    private final boolean own;

    /** A message of the conversation. */
    record Message(String role, String content) {
    }

    private ChatTemplate(String template, String bos, String eos, boolean own) {
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new PythonStringMethods());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        this.jinjava = new Jinjava(JinjavaConfig.newBuilder().withFailOnUnknownTokens(false).withElResolver(resolver)
                .withTrimBlocks(true).withLstripBlocks(true)  // Hugging Face's Jinja environment has both
                .withLegacyOverrides(LegacyOverrides.newBuilder().withUseTrimmingForNotesAndExpressions(true)
                        .withUseNaturalOperatorPrecedence(true).withParseWhitespaceControlStrictly(true).build())
                .build());
        this.jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                ChatTemplate.class, "raiseException", String.class));
        this.jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now",
                ChatTemplate.class, "strftimeNow", String.class));
        this.template = adapt(template);
        this.bos = bos;
        this.eos = eos;
        this.own = own;
    }

    /**
     * The model's template if it has one that renders a simple conversation, else the default; {@code warning}
     * receives one line when the model's template had to be set aside.
     */
    static ChatTemplate forModel(String modelTemplate, String bos, String eos, java.util.function.Consumer<String> warning) {
        if (modelTemplate != null && !modelTemplate.isBlank()) {
            ChatTemplate t = new ChatTemplate(modelTemplate, bos, eos, true);
            try {
                t.render(List.of(new Message("system", "s"), new Message("user", "u")));
                return t;
            } catch (IllegalArgumentException e) {
                warning.accept("the model's chat template does not render (" + e.getMessage()
                        + "); using the default template");
            }
        }
        return new ChatTemplate(DEFAULT, bos, eos, false);
    }

    /** Whether the template is the model's own. */
    boolean isModelTemplate() {
        return own;
    }

    /** The prompt for {@code messages}, ending where the assistant's reply begins. */
    String render(List<Message> messages) {
        Map<String, Object> context = new HashMap<>();
        List<Map<String, Object>> list = messages.stream()
                .map(m -> Map.<String, Object>of("role", m.role(), "content", m.content())).toList();
        context.put("messages", list);
        context.put("add_generation_prompt", true);
        context.put("bos_token", bos);
        context.put("eos_token", eos);
        context.put("strftime_now", "strftime_now");  // so that "strftime_now is defined" holds, as in Hugging Face
        RenderResult result = jinjava.renderForResult(template, context);
        for (TemplateError e : result.getErrors()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw new IllegalArgumentException("chat template: " + raisedMessage(e));
            }
        }
        String prompt = result.getOutput();
        return !bos.isEmpty() && prompt.startsWith(bos) ? prompt.substring(bos.length()) : prompt;
    }

    /** What the template's raise_exception said, if that is what failed; else Jinjava's message. */
    private static String raisedMessage(TemplateError e) {
        for (Throwable t = e.getException(); t != null; t = t.getCause()) {
            if (t instanceof IllegalArgumentException && t.getStackTrace().length > 0
                    && t.getStackTrace()[0].getMethodName().equals("raiseException")) {
                return t.getMessage();
            }
        }
        return e.getMessage();
    }

    /**
     * The template with the two Python spellings Jinjava cannot parse rewritten: {@code [::-1]} as {@code |reverse},
     * and each named argument of {@code namespace(...)} in parentheses ({@code namespace(i=messages|length - 1)}
     * otherwise parses as {@code (i=messages|length) - 1}); and without its last newline, as Jinja renders it.
     */
    static String adapt(String template) {
        String t = template.replace("[::-1]", "|reverse");
        // Jinja drops one newline at the end of a template (keep_trailing_newline is off); Jinjava keeps it
        t = t.endsWith("\r\n") ? t.substring(0, t.length() - 2) : t.endsWith("\n") ? t.substring(0, t.length() - 1) : t;
        StringBuilder out = new StringBuilder();
        int from = 0;
        for (int at = t.indexOf("namespace("); at >= 0; at = t.indexOf("namespace(", from)) {
            int open = at + "namespace(".length();
            int close = closing(t, open);
            if (close < 0) {
                break;
            }
            out.append(t, from, open);
            List<String> args = topLevelArguments(t.substring(open, close));
            for (int i = 0; i < args.size(); i++) {
                java.util.regex.Matcher m = NAMED.matcher(args.get(i));
                out.append(i == 0 ? "" : ",").append(m.matches() ? m.group(1) + "=(" + m.group(2) + ")" : args.get(i));
            }
            out.append(')');
            from = close + 1;
        }
        return out.append(t.substring(from)).toString();
    }

    private static final java.util.regex.Pattern NAMED =
            java.util.regex.Pattern.compile("(?s)(\\s*[A-Za-z_][A-Za-z0-9_]*\\s*)=(?!=)(.*)");

    /** The index of the parenthesis that closes the one before {@code from}, outside quotes; -1 if none. */
    private static int closing(String t, int from) {
        int depth = 0;
        char quote = 0;
        for (int i = from; i < t.length(); i++) {
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
            } else if (c == ')' || c == ']' || c == '}') {
                if (depth == 0) {
                    return c == ')' ? i : -1;
                }
                depth--;
            }
        }
        return -1;
    }

    /** The comma-separated arguments of an argument list, split at its top level only. */
    private static List<String> topLevelArguments(String list) {
        List<String> out = new java.util.ArrayList<>();
        int depth = 0;
        char quote = 0;
        int start = 0;
        for (int i = 0; i < list.length(); i++) {
            char c = list.charAt(i);
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
            } else if (c == ')' || c == ']' || c == '}') {
                depth--;
            } else if (c == ',' && depth == 0) {
                out.add(list.substring(start, i));
                start = i + 1;
            }
        }
        out.add(list.substring(start));
        return out;
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

    /** The template's {@code raise_exception}: the conversation is not one the template accepts. */
    public static String raiseException(String message) {
        throw new IllegalArgumentException(message);
    }
}
