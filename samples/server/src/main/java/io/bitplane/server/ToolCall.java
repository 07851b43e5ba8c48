package io.bitplane.server;

/**
 * A function call, as OpenAI's {@code tool_calls} carry it: an id the tool's answer refers to, the function's name
 * and its arguments as a JSON object's text.
 */
public record ToolCall(String id, String name, String arguments) {

    /** A fresh id in OpenAI's form ({@code call_} and 24 letters and digits). */
    static String newId() {
        return "call_" + java.util.UUID.randomUUID().toString().replace("-", "").substring(0, 24);
    }
}
