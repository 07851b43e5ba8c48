package io.bitplane.server;

import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.lib.filter.Filter;

import java.math.BigDecimal;
import java.util.Collection;
import java.util.Map;

/**
 * Values written as Python's {@code json.dumps(x, ensure_ascii=False, indent=indent)} writes them, which is what
 * Hugging Face's {@code tojson} filter does: {@code ", "} and {@code ": "} between items on one line, {@code ","}
 * and a new line per item when indented, keys in their order, non-ASCII text as itself, floats as Python's
 * {@code repr} ({@code 1.0}, {@code 1e-05}). Chat templates write tool definitions and arguments this way, so the
 * model sees the spacing it was trained on (Jinjava's own {@code tojson} writes compact JSON).
 */
final class PythonJson implements Filter {

    @Override
    public String getName() {
        return "tojson";
    }

    /** {@code x | tojson} or {@code x | tojson(indent=4)} (also {@code tojson(4)}). */
    @Override
    public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
        Object indent = kwargs.containsKey("indent") ? kwargs.get("indent") : args.length > 0 ? args[0] : null;
        return dumps(var, indent instanceof Number n ? n.intValue() : -1);
    }

    @Override
    public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
        return dumps(var, -1);
    }

    /** {@code value} as JSON; {@code indent} below 0 writes one line. */
    static String dumps(Object value, int indent) {
        StringBuilder out = new StringBuilder();
        write(value, indent, 0, out);
        return out.toString();
    }

    private static void write(Object v, int indent, int depth, StringBuilder out) {
        if (v == null) {
            out.append("null");
        } else if (v instanceof Boolean b) {
            out.append(b ? "true" : "false");
        } else if (v instanceof Double || v instanceof Float) {
            out.append(pythonFloat(((Number) v).doubleValue()));
        } else if (v instanceof BigDecimal d) {
            out.append(pythonFloat(d.doubleValue()));
        } else if (v instanceof Number n) {
            out.append(n);
        } else if (v instanceof Map<?, ?> map) {
            out.append('{');
            int i = 0;
            for (Map.Entry<?, ?> e : map.entrySet()) {
                separate(i++, indent, depth + 1, out);
                string(String.valueOf(e.getKey()), out);
                out.append(": ");
                write(e.getValue(), indent, depth + 1, out);
            }
            close(i, indent, depth, out).append('}');
        } else if (v instanceof Collection<?> list) {
            out.append('[');
            int i = 0;
            for (Object e : list) {
                separate(i++, indent, depth + 1, out);
                write(e, indent, depth + 1, out);
            }
            close(i, indent, depth, out).append(']');
        } else {
            string(v.toString(), out);
        }
    }

    /** Before item {@code i} of a container at {@code depth}: Python's item separator and indentation. */
    private static void separate(int i, int indent, int depth, StringBuilder out) {
        if (indent < 0) {
            out.append(i == 0 ? "" : ", ");
        } else {
            out.append(i == 0 ? "\n" : ",\n").append(" ".repeat(indent * depth));
        }
    }

    /** Before a container's closing bracket: a new line when indented and not empty. */
    private static StringBuilder close(int items, int indent, int depth, StringBuilder out) {
        if (indent >= 0 && items > 0) {
            out.append('\n').append(" ".repeat(indent * depth));
        }
        return out;
    }

    private static void string(String s, StringBuilder out) {
        out.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                case '\b' -> out.append("\\b");
                case '\f' -> out.append("\\f");
                default -> {
                    if (c < 0x20) {
                        out.append(String.format("\\u%04x", (int) c));
                    } else {
                        out.append(c);
                    }
                }
            }
        }
        out.append('"');
    }

    /**
     * Python's {@code repr} of a float: the shortest digits that read back (as Java's), in positional notation for
     * exponents -4 to 15 and otherwise {@code d.ddde+XX}; {@code NaN} and {@code Infinity} as json.dumps writes them.
     */
    static String pythonFloat(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        if (d == 0) {
            return 1 / d < 0 ? "-0.0" : "0.0";
        }
        BigDecimal shortest = new BigDecimal(Double.toString(d)).stripTrailingZeros();
        int exponent = shortest.precision() - shortest.scale() - 1;  // of the first digit
        if (exponent >= -4 && exponent < 16) {
            String plain = shortest.toPlainString();
            return plain.contains(".") ? plain : plain + ".0";
        }
        String digits = shortest.unscaledValue().abs().toString();
        String mantissa = digits.length() == 1 ? digits : digits.charAt(0) + "." + digits.substring(1);
        return (d < 0 ? "-" : "") + mantissa + (exponent < 0 ? "e-" : "e+")
                + String.format("%02d", Math.abs(exponent));
    }
}
