package io.bitplane.server;

import jinjava.javax.el.ELContext;
import jinjava.javax.el.ELResolver;

import java.beans.FeatureDescriptor;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;

/**
 * Python's string methods for Jinjava, which otherwise calls Java's: chat templates are written for Hugging Face's
 * Jinja (Python), and Qwen3's calls {@code content.startswith(...)}, {@code .split('</think>')[-1].lstrip('\n')}.
 * Java has no {@code startswith} or {@code lstrip}, and its {@code split} takes a regular expression and drops
 * trailing empty strings, so {@code '<think>x</think>'.split('</think>')[-1]} would be {@code '<think>x'} where
 * Python gives {@code ''}. Resolved before Jinjava's own resolver, for String bases only.
 */
final class PythonStringMethods extends ELResolver {
    private static final String WHITESPACE = " \t\n\r\u000b\f";

    @Override
    public Object invoke(ELContext context, Object base, Object method, Class<?>[] types, Object[] params) {
        if (!(base instanceof String s) || method == null) {
            return null;
        }
        Object[] p = params == null ? new Object[0] : params;
        Object result = switch (method.toString()) {
            case "startswith" -> p.length == 1 ? s.startsWith(String.valueOf(p[0])) : null;
            case "endswith" -> p.length == 1 ? s.endsWith(String.valueOf(p[0])) : null;
            case "strip" -> strip(s, p, true, true);
            case "lstrip" -> strip(s, p, true, false);
            case "rstrip" -> strip(s, p, false, true);
            case "split" -> split(s, p);
            case "upper" -> p.length == 0 ? s.toUpperCase(Locale.ROOT) : null;
            case "lower" -> p.length == 0 ? s.toLowerCase(Locale.ROOT) : null;
            default -> null;
        };
        if (result != null) {
            context.setPropertyResolved(true);
        }
        return result;
    }

    /** Python's strip family: the given characters (or whitespace) removed from one end or both. */
    static String strip(String s, Object[] p, boolean left, boolean right) {
        if (p.length > 1) {
            return null;
        }
        String chars = p.length == 0 || p[0] == null ? WHITESPACE : String.valueOf(p[0]);
        int a = 0;
        int b = s.length();
        while (left && a < b && chars.indexOf(s.charAt(a)) >= 0) {
            a++;
        }
        while (right && b > a && chars.indexOf(s.charAt(b - 1)) >= 0) {
            b--;
        }
        return s.substring(a, b);
    }

    /** Python's split: by a literal separator keeping empty pieces, or with none by runs of whitespace. */
    static List<String> split(String s, Object[] p) {
        List<String> out = new ArrayList<>();
        if (p.length == 0 || p[0] == null) {
            for (String piece : s.trim().split("\\s+")) {
                if (!piece.isEmpty()) {
                    out.add(piece);
                }
            }
            return out;
        }
        if (p.length > 1) {
            return null;
        }
        String sep = String.valueOf(p[0]);
        if (sep.isEmpty()) {
            return null;  // Python raises; Jinjava's own split then reports the call
        }
        int from = 0;
        for (int at = s.indexOf(sep); at >= 0; at = s.indexOf(sep, from)) {
            out.add(s.substring(from, at));
            from = at + sep.length();
        }
        out.add(s.substring(from));
        return out;
    }

    @Override
    public Object getValue(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public Class<?> getType(ELContext context, Object base, Object property) {
        return null;
    }

    @Override
    public void setValue(ELContext context, Object base, Object property, Object value) {
    }

    @Override
    public boolean isReadOnly(ELContext context, Object base, Object property) {
        return true;
    }

    @Override
    public Iterator<FeatureDescriptor> getFeatureDescriptors(ELContext context, Object base) {
        return null;
    }

    @Override
    public Class<?> getCommonPropertyType(ELContext context, Object base) {
        return null;
    }
}
