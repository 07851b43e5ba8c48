package io.bitplane.server;

import java.time.Duration;

/**
 * How the server runs and what it refuses.
 *
 * @param host            address to bind (loopback by default: expose it on purpose)
 * @param port            TCP port (0: any free port)
 * @param apiKey          when set, every /v1 request must carry {@code Authorization: Bearer <apiKey>}
 * @param modelId         the name /v1/models lists and requests may name
 * @param maxSequences    sequences decoded together; each holds a KV cache of {@code contextLength}
 * @param maxQueue        requests that may wait for a sequence; past that, 429
 * @param contextLength   positions per sequence (0: the model's)
 * @param maxPromptTokens longest prompt accepted, in tokens
 * @param maxTokens       largest {@code max_tokens} accepted (and the default for chat)
 * @param maxBodyBytes    largest request body; past that, 413
 * @param shutdownGrace   how long running generations may finish at shutdown before they are ended
 * @param pooling         how /v1/embeddings pools a text's hidden states (llama.cpp's --pooling), or null: as the
 *                        model file says (a GGUF's pooling_type), else mean
 */
public record ServerConfig(String host, int port, String apiKey, String modelId, int maxSequences, int maxQueue,
                           int contextLength, int maxPromptTokens, int maxTokens, long maxBodyBytes,
                           Duration shutdownGrace, io.bitplane.runtime.Pooling pooling) {
    public ServerConfig {
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("port must be in 0..65535, not " + port);
        }
        if (maxSequences < 1 || maxQueue < 1) {
            throw new IllegalArgumentException("max sequences and max queue must be >= 1");
        }
        if (maxPromptTokens < 1 || maxTokens < 1 || maxBodyBytes < 1024) {
            throw new IllegalArgumentException("prompt and token limits must be >= 1, the body limit >= 1024");
        }
        if (apiKey != null && apiKey.isEmpty()) {
            apiKey = null;
        }
    }

    public static ServerConfig defaults(String modelId) {
        return new ServerConfig("127.0.0.1", 8080, null, modelId, 16, 64, 0, 4096, 4096, 1 << 20,
                Duration.ofSeconds(10), null);
    }

    public ServerConfig withPort(int p) {
        return new ServerConfig(host, p, apiKey, modelId, maxSequences, maxQueue, contextLength, maxPromptTokens,
                maxTokens, maxBodyBytes, shutdownGrace, pooling);
    }

    public ServerConfig withHost(String h) {
        return new ServerConfig(h, port, apiKey, modelId, maxSequences, maxQueue, contextLength, maxPromptTokens,
                maxTokens, maxBodyBytes, shutdownGrace, pooling);
    }

    public ServerConfig withApiKey(String key) {
        return new ServerConfig(host, port, key, modelId, maxSequences, maxQueue, contextLength, maxPromptTokens,
                maxTokens, maxBodyBytes, shutdownGrace, pooling);
    }

    public ServerConfig withLimits(int sequences, int queue, int promptTokens, int tokens, long bodyBytes) {
        return new ServerConfig(host, port, apiKey, modelId, sequences, queue, contextLength, promptTokens, tokens,
                bodyBytes, shutdownGrace, pooling);
    }

    public ServerConfig withContextLength(int positions) {
        return new ServerConfig(host, port, apiKey, modelId, maxSequences, maxQueue, positions, maxPromptTokens,
                maxTokens, maxBodyBytes, shutdownGrace, pooling);
    }

    public ServerConfig withShutdownGrace(Duration grace) {
        return new ServerConfig(host, port, apiKey, modelId, maxSequences, maxQueue, contextLength, maxPromptTokens,
                maxTokens, maxBodyBytes, grace, pooling);
    }

    public ServerConfig withPooling(io.bitplane.runtime.Pooling p) {
        return new ServerConfig(host, port, apiKey, modelId, maxSequences, maxQueue, contextLength, maxPromptTokens,
                maxTokens, maxBodyBytes, shutdownGrace, p);
    }
}
