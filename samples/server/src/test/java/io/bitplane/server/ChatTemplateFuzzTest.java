package io.bitplane.server;

import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;

import java.util.ArrayList;
import java.util.List;

/**
 * A GGUF file's chat template is text from whoever made the model: whatever it holds, loading it either keeps it or
 * sets it aside with a warning, and a conversation (with or without tools, calls and their answers) either renders
 * or is refused with an IllegalArgumentException (HTTP 400).
 */
class ChatTemplateFuzzTest {
    @FuzzTest(maxDuration = "4m")
    void anyTemplateAndConversation(FuzzedDataProvider data) {
        String template = data.consumeString(500);
        List<String> warnings = new ArrayList<>();
        ChatTemplate t = ChatTemplate.forModel(template, "<s>", "</s>", warnings::add);
        List<ChatTemplate.Message> messages = new ArrayList<>();
        int count = data.consumeInt(0, 4);
        for (int i = 0; i < count; i++) {
            messages.add(new ChatTemplate.Message(data.pickValue(new String[] {"system", "user", "assistant"}),
                    data.consumeString(40)));
        }
        // then, from what is left of the input: a tool's answer, an assistant's call (any arguments' text), tools
        List<java.util.Map<String, Object>> tools = new ArrayList<>();
        if (data.remainingBytes() > 0 && data.consumeBoolean()) {
            messages.add(new ChatTemplate.Message("assistant", "", List.of(new ToolCall("call_1", data.consumeString(8),
                    data.consumeString(40))), null, null));
            messages.add(new ChatTemplate.Message("tool", data.consumeString(20), List.of(), "call_1", null));
            tools.add(java.util.Map.of("type", "function", "function", java.util.Map.of("name", data.consumeString(8),
                    "parameters", java.util.Map.of("type", "object", "x", List.of(data.consumeDouble(),
                            data.consumeLong())))));
        }
        try {
            t.render(messages, tools);
        } catch (IllegalArgumentException refused) {
            // the template's raise_exception, or a conversation it cannot render
        }
    }
}
