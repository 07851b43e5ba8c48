package io.bitplane.server;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Finds the function calls in a model's reply, in the form its chat template taught it:
 * <ul>
 *   <li>{@link Format#TAGGED} (Qwen2.5, Qwen3, Hermes):
 *       {@code <tool_call>{"name": ..., "arguments": {...}}</tool_call>} blocks anywhere in the reply, text around
 *       them being content;
 *   <li>{@link Format#JSON} (Llama 3.x, and {@link GenericTools}): the whole reply is JSON: a call
 *       {@code {"name": ..., "parameters"|"arguments": {...}}}, several separated by new lines or {@code ;}, an array
 *       of calls, or such a call under {@code "tool_call"}/{@code "tool_calls"}; a Markdown code fence around it is
 *       allowed.
 * </ul>
 * A call must name one of the request's functions and carry a JSON object of arguments; anything else stays text,
 * so a reply that merely looks like a call is never lost. For streams, {@link #releasable} says how much of the reply
 * so far cannot be part of a call and may be sent as content before the reply ends.
 */
final class ToolCallParser {
    enum Format { TAGGED, JSON }

    /** A reply split into its content (null when nothing but calls) and its calls (empty when none). */
    record Parsed(String content, List<ToolCall> calls) {
    }

    static final String OPEN = "<tool_call>";
    static final String CLOSE = "</tool_call>";

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Format format;
    private final Set<String> functions;

    ToolCallParser(Format format, Set<String> functions) {
        this.format = format;
        this.functions = functions;
    }

    /**
     * The reply's calls, and its content: the text itself when it has no call, else the text outside the calls
     * without trailing white space (null when that is empty).
     */
    Parsed parse(String text) {
        List<ToolCall> calls = new ArrayList<>();
        String outside = format == Format.TAGGED ? taggedCalls(text, calls) : jsonCalls(text, calls) ? "" : text;
        if (calls.isEmpty()) {
            return new Parsed(text, List.of());
        }
        String content = outside.stripTrailing();
        return new Parsed(content.isEmpty() ? null : content, List.copyOf(calls));
    }

    /**
     * How many characters from the start of {@code text} (the reply so far) are content whatever follows: up to where a
     * call may begin, and never a trailing run of white space (which the content of a reply with calls drops).
     */
    int releasable(String text) {
        int end;
        if (format == Format.TAGGED) {
            int open = text.indexOf(OPEN);
            end = open >= 0 ? open : text.length() - partialSuffix(text, OPEN);
        } else {
            String lead = text.stripLeading();
            end = lead.isEmpty() || "{[`".indexOf(lead.charAt(0)) >= 0 ? 0 : text.length();
        }
        return beforeTrailingSpace(text, end);
    }

    /** {@code end}, moved back over the white space that ends {@code text[0, end)}. */
    static int beforeTrailingSpace(String text, int end) {
        while (end > 0 && Character.isWhitespace(text.charAt(end - 1))) {
            end--;
        }
        return end;
    }

    /** The length of the longest end of {@code text} that begins {@code marker}. */
    static int partialSuffix(String text, String marker) {
        for (int n = Math.min(marker.length() - 1, text.length()); n > 0; n--) {
            if (text.regionMatches(text.length() - n, marker, 0, n)) {
                return n;
            }
        }
        return 0;
    }

    /** Adds the calls of each well-formed block to {@code calls}; returns the text outside them. */
    private String taggedCalls(String text, List<ToolCall> calls) {
        StringBuilder outside = new StringBuilder();
        int from = 0;
        for (int open = text.indexOf(OPEN); open >= 0; open = text.indexOf(OPEN, from)) {
            int close = text.indexOf(CLOSE, open);
            int bodyEnd = close < 0 ? text.length() : close;
            int next = close < 0 ? text.length() : close + CLOSE.length();
            ToolCall call = call(readJson(text.substring(open + OPEN.length(), bodyEnd).strip()));
            outside.append(text, from, call == null ? next : open);
            if (call != null) {
                calls.add(call);
            }
            from = next;
        }
        return outside.append(text.substring(from)).toString();
    }

    /** Adds the calls to {@code calls} when the whole of {@code text} is calls; else adds none and returns false. */
    private boolean jsonCalls(String text, List<ToolCall> calls) {
        String body = withoutFence(text.strip());
        if (body.isEmpty() || body.charAt(0) != '{' && body.charAt(0) != '[') {
            return false;  // releasable() sends such a reply as it comes
        }
        List<ToolCall> found = new ArrayList<>();
        int at = 0;
        while (true) {
            while (at < body.length() && (Character.isWhitespace(body.charAt(at)) || body.charAt(at) == ';')) {
                at++;
            }
            if (at == body.length()) {
                break;
            }
            // one JSON value at a time: the ';' Llama 3 may put between calls is not JSON
            try (JsonParser p = JSON.getFactory().createParser(body.substring(at))) {
                JsonNode value = p.readValueAsTree();
                if (value == null || !addCalls(value, found)) {
                    return false;
                }
                at += (int) p.currentLocation().getCharOffset();
            } catch (IOException malformed) {
                return false;
            }
        }
        calls.addAll(found);
        return !found.isEmpty();
    }

    /** A call, an array of calls, or {"tool_call": call} / {"tool_calls": [calls]}: added; false for anything else. */
    private boolean addCalls(JsonNode value, List<ToolCall> out) {
        if (value.isArray()) {
            for (JsonNode v : value) {
                if (!addCalls(v, out)) {
                    return false;
                }
            }
            return !value.isEmpty();
        }
        if (value.isObject() && value.size() == 1 && (value.has("tool_call") || value.has("tool_calls"))) {
            return addCalls(value.elements().next(), out);
        }
        ToolCall call = call(value);
        return call != null && out.add(call);
    }

    /** {@code {"name": f, "arguments"|"parameters": {...}}} (or that under "function") of a known f, else null. */
    private ToolCall call(JsonNode node) {
        if (node != null && node.isObject() && node.path("function").isObject()) {
            node = node.get("function");
        }
        if (node == null || !node.isObject() || !node.path("name").isTextual()
                || !functions.contains(node.get("name").asText())) {
            return null;
        }
        JsonNode arguments = node.has("arguments") ? node.get("arguments") : node.get("parameters");
        if (arguments != null && arguments.isTextual()) {
            arguments = readJson(arguments.asText());
        }
        if (arguments == null || arguments.isNull()) {
            arguments = JSON.createObjectNode();
        }
        if (!arguments.isObject()) {
            return null;
        }
        return new ToolCall(ToolCall.newId(), node.get("name").asText(), arguments.toString());
    }

    private static JsonNode readJson(String s) {
        try {
            return JSON.readTree(s);
        } catch (IOException malformed) {
            return null;
        }
    }

    /** The inside of a Markdown code fence ({@code ```json ... ```}) around the whole text, else the text. */
    private static String withoutFence(String s) {
        if (!s.startsWith("```") || !s.endsWith("```") || s.length() < 6) {
            return s;
        }
        String inner = s.substring(3, s.length() - 3);
        int line = inner.indexOf('\n');
        return (line >= 0 && inner.substring(0, line).strip().matches("[A-Za-z]*") ? inner.substring(line + 1)
                : inner).strip();
    }
}
