package io.bitplane.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitplane.runtime.TokenLogprobs;
import io.bitplane.runtime.tokenizer.Tokenizer;

import java.nio.charset.StandardCharsets;

/**
 * Generated tokens' log-probabilities as OpenAI writes them: for chat, {@code {"content": [{"token", "logprob",
 * "bytes", "top_logprobs": [...]}]}}; for completions, parallel arrays {@code tokens}, {@code token_logprobs},
 * {@code top_logprobs} (a map from token text to log-probability; the likelier kept where two tokens write the same
 * text) and {@code text_offset}. A token's text is what it writes after the token before it (its bytes are given
 * too: a token may hold part of a character). Gathers tokens as they come and gives the JSON of those gathered since
 * the last {@link #take}, for a whole response or one stream chunk.
 */
final class OpenAiLogprobs {
    private final ObjectMapper json;
    private final Tokenizer tokenizer;
    private final boolean chat;
    private int previous;
    private int textOffset;
    private ObjectNode gathered;

    /**
     * @param lastPromptToken the prompt's last token (how the first generated token writes depends on it), or -1
     *                        when the prompt's tokens come first (echo)
     */
    OpenAiLogprobs(ObjectMapper json, Tokenizer tokenizer, boolean chat, int lastPromptToken) {
        this.json = json;
        this.tokenizer = tokenizer;
        this.chat = chat;
        this.previous = lastPromptToken;
    }

    /** A token with no log-probability: an echoed prompt's first (completions only). */
    void addUnscored(int token) {
        add(token, null);
    }

    void add(TokenLogprobs step) {
        add(step.token(), step);
    }

    /** {@code token}, with its log-probabilities when {@code step} is not null. */
    private void add(int token, TokenLogprobs step) {
        if (gathered == null) {
            gathered = json.createObjectNode();
        }
        byte[] bytes = tokenizer.piece(previous, token);
        String text = new String(bytes, StandardCharsets.UTF_8);
        int[] top = step == null ? new int[0] : step.topTokens();
        float[] topLogprobs = step == null ? new float[0] : step.topLogprobs();
        if (chat) {
            ObjectNode entry = entry(gathered.withArray("content").addObject(), text, bytes, step.logprob());
            ArrayNode alternatives = entry.putArray("top_logprobs");
            for (int i = 0; i < top.length; i++) {
                byte[] b = tokenizer.piece(previous, top[i]);
                entry(alternatives.addObject(), new String(b, StandardCharsets.UTF_8), b, topLogprobs[i]);
            }
        } else {
            gathered.withArray("tokens").add(text);
            if (step == null) {  // OpenAI's echoed first token: null in both
                gathered.withArray("token_logprobs").addNull();
                gathered.withArray("top_logprobs").addNull();
            } else {
                gathered.withArray("token_logprobs").add(step.logprob());
                ObjectNode alternatives = gathered.withArray("top_logprobs").addObject();
                for (int i = 0; i < top.length; i++) {
                    String t = new String(tokenizer.piece(previous, top[i]), StandardCharsets.UTF_8);
                    if (!alternatives.has(t)) {
                        alternatives.put(t, topLogprobs[i]);
                    }
                }
            }
            gathered.withArray("text_offset").add(textOffset);
            textOffset += text.length();
        }
        previous = token;
    }

    private static ObjectNode entry(ObjectNode entry, String text, byte[] bytes, float logprob) {
        entry.put("token", text);
        entry.put("logprob", logprob);
        ArrayNode b = entry.putArray("bytes");
        for (byte x : bytes) {
            b.add(x & 0xFF);
        }
        return entry;
    }

    /** What was gathered since the last call ({@code content} empty, or empty arrays, when nothing was). */
    ObjectNode take() {
        ObjectNode out = gathered != null ? gathered : json.createObjectNode();
        gathered = null;
        if (chat) {
            out.withArray("content");
            out.putNull("refusal");
        } else {
            for (String field : new String[] {"tokens", "token_logprobs", "top_logprobs", "text_offset"}) {
                out.withArray(field);
            }
        }
        return out;
    }
}
