package io.bitplane.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitplane.format.Vocabulary;
import io.bitplane.runtime.tokenizer.Tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * The tokenizer over HTTP, in both the shapes clients know: vLLM's ({@code POST /tokenize} with {@code prompt} or
 * {@code messages}, {@code POST /detokenize} answering {@code prompt}, {@code GET /tokenizer_info}, which lm-eval's
 * remote tokenizer reads) and llama.cpp's ({@code content}, {@code add_special}, {@code with_pieces}; detokenize
 * answering {@code content}). Answers carry both names where they differ.
 */
final class TokenizerRoutes {
    private final ObjectMapper json;
    private final Tokenizer tokenizer;
    private final ChatTemplate template;
    private final int context;

    TokenizerRoutes(ObjectMapper json, Tokenizer tokenizer, ChatTemplate template, int context) {
        this.json = json;
        this.tokenizer = tokenizer;
        this.template = template;
        this.context = context;
    }

    /**
     * {@code {"prompt" | "content": text}} or {@code {"messages": [...]}} (rendered by the chat template); BOS is
     * added when {@code add_special_tokens} (vLLM, default true) or {@code add_special} (llama.cpp, default false)
     * says so, and to messages always, as the server encodes a chat's prompt. Answers {@code tokens} (with
     * {@code with_pieces}, {@code {"id", "piece"}} objects), {@code count} and {@code max_model_len}.
     */
    ObjectNode tokenize(JsonNode body) {
        String field = body.has("messages") ? "messages" : body.has("content") ? "content" : "prompt";
        boolean bos;
        String text;
        if (field.equals("messages")) {
            try {
                text = template.render(OpenAiRequest.messages(body), List.of(), Map.of());
            } catch (IllegalArgumentException e) {  // the template refused the conversation
                throw ApiError.invalid("messages", e.getMessage());
            }
            bos = true;
        } else {
            JsonNode t = body.get(field);
            if (t == null || !t.isTextual()) {
                throw ApiError.invalid(field, "`prompt` (or `content`, or `messages`) must be a string to tokenize");
            }
            text = t.asText();
            bos = OpenAiRequest.optionalBoolean(body, "add_special_tokens",
                    OpenAiRequest.optionalBoolean(body, "add_special", !field.equals("content")));
        }
        int[] ids;
        try {
            ids = tokenizer.encode(text, bos, false);
        } catch (IllegalArgumentException e) {  // a character the vocabulary cannot write
            throw ApiError.invalid(field, e.getMessage());
        }
        boolean pieces = OpenAiRequest.optionalBoolean(body, "with_pieces", false);
        ObjectNode out = json.createObjectNode();
        ArrayNode tokens = out.putArray("tokens");
        int previous = -1;
        for (int id : ids) {
            if (pieces) {
                tokens.addObject().put("id", id).put("piece", new String(tokenizer.piece(previous, id),
                        StandardCharsets.UTF_8));
            } else {
                tokens.add(id);
            }
            previous = id;
        }
        out.put("count", ids.length);
        out.put("max_model_len", context);
        return out;
    }

    /** {@code {"tokens": [ids]}}: their text, as {@code prompt} (vLLM) and {@code content} (llama.cpp). */
    ObjectNode detokenize(JsonNode body) {
        JsonNode list = body.get("tokens");
        if (list == null || !list.isArray()) {
            throw ApiError.invalid("tokens", "`tokens` must be an array of token ids");
        }
        int[] ids = OpenAiRequest.tokenIds(list, "tokens", "tokens");
        OpenAiRequest.inVocabulary(ids, tokenizer.vocabSize(), "tokens", "tokens");
        String text = tokenizer.decode(ids);
        ObjectNode out = json.createObjectNode();
        out.put("prompt", text);
        out.put("content", text);
        return out;
    }

    /** What vLLM's {@code /tokenizer_info} tells: the special tokens' texts, the chat template, the context. */
    ObjectNode info() {
        Vocabulary v = tokenizer.vocabulary();
        ObjectNode out = json.createObjectNode();
        out.put("tokenizer_class", v.model());
        putToken(out, "bos_token", tokenizer.bos());
        putToken(out, "eos_token", tokenizer.eos());
        out.putNull("pad_token");
        out.put("add_bos_token", tokenizer.bos() >= 0);
        out.put("chat_template", template.source());
        out.put("model_max_length", context);
        out.put("vocab_size", tokenizer.vocabSize());
        return out;
    }

    private void putToken(ObjectNode out, String name, int id) {
        if (id >= 0 && id < tokenizer.vocabSize()) {
            out.put(name, new String(tokenizer.vocabulary().tokens().get(id), StandardCharsets.UTF_8));
        } else {
            out.putNull(name);
        }
    }
}
