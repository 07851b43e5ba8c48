package io.bitplane.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.Pooling;
import io.bitplane.runtime.Session;
import io.bitplane.runtime.SessionOptions;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/**
 * OpenAI's {@code POST /v1/embeddings}: {@code input} a string, token ids, or an array of either (at most
 * {@value #MAX_INPUTS}); {@code encoding_format} "float" or "base64" (little-endian float32s, what OpenAI's Python
 * client asks for by default); {@code dimensions} keeps the first so many values, at unit length again. Each input
 * is one pass of the model, pooled as the server is told ({@link ServerConfig#pooling}) or else as the model file
 * says (a GGUF's pooling_type: Qwen3-Embedding's is the last token), else by the mean, in a session of its own
 * beside the decoding scheduler's, one input at a time.
 */
final class EmbeddingRoutes {
    static final int MAX_INPUTS = 2048;

    private final ObjectMapper json;
    private final Model model;
    private final ServerConfig config;
    private final int context;
    /** How a text's states are pooled, or null when the model file asks for a pooling not supported (named). */
    private final Pooling pooling;
    private final String modelPooling;
    private Session session;

    EmbeddingRoutes(ObjectMapper json, Model model, ServerConfig config, int context) {
        this.json = json;
        this.model = model;
        this.config = config;
        this.context = context;
        this.modelPooling = model.metadata().sourceField("pooling");
        this.pooling = config.pooling() != null ? config.pooling() : switch (modelPooling) {
            case "last" -> Pooling.LAST;
            case "", "none", "mean" -> Pooling.MEAN;
            default -> null;
        };
    }

    ObjectNode embeddings(JsonNode body, String modelId) {
        if (pooling == null) {
            throw new ApiError(400, "invalid_request_error", null, "unsupported_pooling", "the model's pooling ("
                    + modelPooling + ") is not supported; start the server with --pooling mean or last");
        }
        List<int[]> inputs = inputs(body.get("input"));
        String format = OpenAiRequest.optionalText(body, "encoding_format");
        format = format == null ? "float" : format;
        if (!format.equals("float") && !format.equals("base64")) {
            throw ApiError.invalid("encoding_format", "`encoding_format` must be \"float\" or \"base64\"");
        }
        Integer asked = OpenAiRequest.optionalInt(body, "dimensions", 1, model.config().dim());
        int dimensions = asked == null ? model.config().dim() : asked;
        ObjectNode out = json.createObjectNode();
        out.put("object", "list");
        ArrayNode data = out.putArray("data");
        int tokens = 0;
        for (int i = 0; i < inputs.size(); i++) {
            float[] e = truncated(embed(inputs.get(i)), dimensions);
            tokens += inputs.get(i).length;
            ObjectNode item = data.addObject();
            item.put("object", "embedding");
            item.put("index", i);
            if (format.equals("base64")) {
                ByteBuffer b = ByteBuffer.allocate(4 * e.length).order(ByteOrder.LITTLE_ENDIAN);
                for (float v : e) {
                    b.putFloat(v);
                }
                item.put("embedding", Base64.getEncoder().encodeToString(b.array()));
            } else {
                ArrayNode values = item.putArray("embedding");
                for (float v : e) {
                    values.add(v);
                }
            }
        }
        out.put("model", modelId);
        out.putObject("usage").put("prompt_tokens", tokens).put("total_tokens", tokens);
        return out;
    }

    /** One input's embedding, in this route's session (made on first use: a KV cache of the server's context). */
    private synchronized float[] embed(int[] tokens) {
        if (session == null) {
            session = model.newSession(new SessionOptions(context, 32));
        }
        return session.embed(tokens, pooling);
    }

    /** The first {@code n} values, at unit length again (as OpenAI's shortened embeddings are). */
    private static float[] truncated(float[] e, int n) {
        if (n == e.length) {
            return e;
        }
        double norm = 0;
        for (int i = 0; i < n; i++) {
            norm += (double) e[i] * e[i];
        }
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = norm == 0 ? 0 : (float) (e[i] / Math.sqrt(norm));
        }
        return out;
    }

    /** {@code input}: a string, token ids, or an array of strings or of token id arrays; each checked. */
    private List<int[]> inputs(JsonNode input) {
        String shape = "`input` must be a string, token ids, or an array of strings or of token id arrays";
        if (input == null || input.isNull()) {
            throw ApiError.invalid("input", "`input` is required");
        }
        List<JsonNode> items = new ArrayList<>();
        if (input.isTextual() || input.isArray() && !input.isEmpty() && input.get(0).isIntegralNumber()) {
            items.add(input);
        } else if (input.isArray() && !input.isEmpty() && input.size() <= MAX_INPUTS) {
            input.forEach(items::add);
        } else {
            throw ApiError.invalid("input", input.isArray() && input.size() > MAX_INPUTS
                    ? "`input` may hold at most " + MAX_INPUTS + " inputs" : shape);
        }
        List<int[]> out = new ArrayList<>();
        for (int i = 0; i < items.size(); i++) {
            out.add(tokens(items.get(i), items.size() == 1 && items.get(0) == input ? "input" : "input[" + i + "]",
                    shape));
        }
        return out;
    }

    private int[] tokens(JsonNode item, String where, String shape) {
        int[] ids;
        if (item.isTextual()) {
            if (item.asText().isEmpty()) {
                throw ApiError.invalid("input", "`" + where + "` is empty");
            }
            try {
                ids = model.tokenizer().encode(item.asText(), true, false);
            } catch (IllegalArgumentException e) {  // a character the vocabulary cannot write
                throw ApiError.invalid("input", "`" + where + "`: " + e.getMessage());
            }
        } else if (item.isArray() && !item.isEmpty()) {
            ids = OpenAiRequest.tokenIds(item, "input", where);
            OpenAiRequest.inVocabulary(ids, model.config().vocabSize(), "input", where);
        } else {
            throw ApiError.invalid("input", shape);
        }
        if (ids.length > config.maxPromptTokens() || ids.length > context) {
            throw ApiError.invalid("input", "`" + where + "` has " + ids.length + " tokens; the limit is "
                    + Math.min(config.maxPromptTokens(), context));
        }
        return ids;
    }

    /** Frees the session, if one was made. */
    synchronized void close() {
        if (session != null) {
            session.close();
            session = null;
        }
    }
}
