package io.bitplane.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitplane.runtime.FinishReason;

/**
 * The JSON shapes of OpenAI's completion and chat completion responses and stream chunks, with every field the
 * official clients read (nullable ones present as null).
 */
final class OpenAiResponses {
    private final ObjectMapper json;
    private final String model;

    OpenAiResponses(ObjectMapper json, String model) {
        this.json = json;
        this.model = model;
    }

    /**
     * OpenAI's reasons: {@code stop} (end of sequence or a stop string) and {@code length} (the token limit or the
     * context's end). A generation ended by the server (shutdown) also reports {@code length}: it was cut short.
     */
    static String finishReason(FinishReason reason) {
        return reason == FinishReason.STOP ? "stop" : "length";
    }

    private ObjectNode envelope(String id, long created, String object) {
        ObjectNode root = json.createObjectNode();
        root.put("id", id);
        root.put("object", object);
        root.put("created", created);
        root.put("model", model);
        root.putNull("system_fingerprint");
        return root;
    }

    /** Token counts, with the prompt tokens a session's cache already held as OpenAI's cached_tokens. */
    ObjectNode usage(int promptTokens, int completionTokens, int cachedPromptTokens) {
        ObjectNode u = json.createObjectNode();
        u.put("prompt_tokens", promptTokens);
        u.put("completion_tokens", completionTokens);
        u.put("total_tokens", promptTokens + completionTokens);
        u.putObject("prompt_tokens_details").put("cached_tokens", cachedPromptTokens);
        return u;
    }

    /** A response or chunk of one choice (as {@link #completion} makes them) as choice {@code index}. */
    ObjectNode atIndex(ObjectNode response, int index) {
        ((ObjectNode) response.get("choices").get(0)).put("index", index);
        return response;
    }

    /** Whole responses of one choice each, in order, as one response of them all, with {@code usage}. */
    ObjectNode merge(java.util.List<ObjectNode> responses, ObjectNode usage) {
        com.fasterxml.jackson.databind.node.ArrayNode choices = json.createArrayNode();
        for (int i = 0; i < responses.size(); i++) {
            choices.add(atIndex(responses.get(i), i).get("choices").get(0));
        }
        ObjectNode root = responses.get(0);
        root.set("choices", choices);
        root.set("usage", usage);
        return root;
    }

    /** A whole response (stream false), or one stream chunk when {@code chunk}; finish null while it runs. */
    ObjectNode completion(boolean chat, boolean chunk, String id, long created, String text, boolean withRole,
                          String finish, ObjectNode usage) {
        String object = chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
        ObjectNode root = envelope(id, created, object);
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("index", 0);
        if (!chat) {
            choice.put("text", text);
        } else {
            ObjectNode message = choice.putObject(chunk ? "delta" : "message");
            if (withRole || !chunk) {
                message.put("role", "assistant");
            }
            if (text != null) {
                message.put("content", text);
            }
            if (!chunk) {
                message.putNull("refusal");
            }
        }
        choice.putNull("logprobs");
        choice.put("finish_reason", finish);
        if (usage != null) {
            root.set("usage", usage);
        } else if (chunk) {
            root.putNull("usage");
        }
        return root;
    }

    /**
     * {@code calls} added to a chat response's message, or to a chunk's delta (where each carries its index); the
     * caller gives the finish reason "tool_calls" when the reply ended with them.
     */
    ObjectNode withToolCalls(ObjectNode response, boolean chunk, java.util.List<ToolCall> calls) {
        ObjectNode message = (ObjectNode) response.get("choices").get(0).get(chunk ? "delta" : "message");
        com.fasterxml.jackson.databind.node.ArrayNode list = message.putArray("tool_calls");
        for (int i = 0; i < calls.size(); i++) {
            ObjectNode call = list.addObject();
            if (chunk) {
                call.put("index", i);
            }
            call.put("id", calls.get(i).id());
            call.put("type", "function");
            call.putObject("function").put("name", calls.get(i).name()).put("arguments", calls.get(i).arguments());
        }
        if (!chunk && !message.has("content")) {
            message.putNull("content");
        }
        return response;
    }

    /** {@code logprobs} ({@link OpenAiLogprobs}) as the choice's logprobs. */
    ObjectNode withLogprobs(ObjectNode response, ObjectNode logprobs) {
        ((ObjectNode) response.get("choices").get(0)).set("logprobs", logprobs);
        return response;
    }

    /** {@code reasoning} (a model's thinking) as the message's or delta's reasoning_content, unless null or empty. */
    ObjectNode withReasoning(ObjectNode response, boolean chunk, String reasoning) {
        if (reasoning != null && !reasoning.isEmpty()
                && response.get("choices").get(0).get(chunk ? "delta" : "message") instanceof ObjectNode message) {
            message.put("reasoning_content", reasoning);
        }
        return response;
    }

    /** The last chunk of a stream asked for with {@code stream_options.include_usage}: no choices, the usage. */
    ObjectNode usageChunk(boolean chat, String id, long created, ObjectNode usage) {
        ObjectNode root = envelope(id, created, chat ? "chat.completion.chunk" : "text_completion");
        root.putArray("choices");
        root.set("usage", usage);
        return root;
    }
}
