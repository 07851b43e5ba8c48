package io.bitplane.server;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Tools for a chat template that does not write them (the default template, Llama 2's, most base models'), as
 * llama.cpp's generic tool format does it: the functions and how to call one are written into the system message,
 * the model answers a call with a JSON object alone ({@link ToolCallParser.Format#JSON}), and the turns of an earlier
 * call are written as text the template can place: an assistant's calls as that JSON, a tool's answer as a user
 * message naming the call.
 */
final class GenericTools {
    private GenericTools() {
    }

    static final String INSTRUCTIONS = "You can call the following functions. To call one, reply with only a JSON "
            + "object {\"name\": <function name>, \"arguments\": <arguments as an object>} (one per line to call "
            + "several); otherwise reply as usual.";

    /** {@code messages} with the tools described in the system message (one is added first when there is none). */
    static List<ChatTemplate.Message> describe(List<ChatTemplate.Message> messages, List<Map<String, Object>> tools) {
        StringBuilder description = new StringBuilder(INSTRUCTIONS).append("\n\n");
        for (Map<String, Object> tool : tools) {
            description.append(PythonJson.dumps(tool.get("function"), -1)).append('\n');
        }
        List<ChatTemplate.Message> out = new ArrayList<>();
        boolean hasSystem = !messages.isEmpty() && messages.get(0).role().equals("system");
        String offer = description.toString().strip();
        out.add(new ChatTemplate.Message("system", hasSystem ? messages.get(0).content() + "\n\n" + offer : offer));
        for (ChatTemplate.Message m : messages.subList(hasSystem ? 1 : 0, messages.size())) {
            out.add(plain(m));
        }
        return out;
    }

    /** A message without tool fields: calls written as the JSON the model was asked for, answers as user turns. */
    private static ChatTemplate.Message plain(ChatTemplate.Message m) {
        if (m.role().equals("tool")) {
            String call = m.name() != null ? m.name() : m.toolCallId() != null ? m.toolCallId() : "the function";
            return new ChatTemplate.Message("user", "Result of " + call + ": " + m.content());
        }
        if (m.toolCalls().isEmpty()) {
            return m;
        }
        StringBuilder content = new StringBuilder(m.content());
        for (ToolCall c : m.toolCalls()) {
            content.append(content.isEmpty() ? "" : "\n").append(PythonJson.dumps(ChatTemplate.functionMap(c), -1));
        }
        return new ChatTemplate.Message(m.role(), content.toString());
    }
}
