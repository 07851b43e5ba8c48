package io.bitplane.cli;

import io.bitplane.runtime.Model;
import io.bitplane.server.DecodingServer;
import io.bitplane.server.ServerConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code bitplane serve}: the OpenAI-compatible decoding server, until Ctrl-C (which shuts it down gracefully). */
@Command(name = "serve", mixinStandardHelpOptions = true,
        description = "Serve the model over an OpenAI-compatible HTTP API (completions and chat, streaming).")
final class ServeCommand implements Callable<Integer> {
    @Mixin
    ModelArgs modelArgs;

    @Option(names = "--host", defaultValue = "127.0.0.1", description = "Address to bind. Default: ${DEFAULT-VALUE}"
            + " (loopback only; bind 0.0.0.0 on purpose).")
    String host;

    @Option(names = "--port", defaultValue = "8080", description = "Port. Default: ${DEFAULT-VALUE}.")
    int port;

    @Option(names = "--api-key", description = "Require Authorization: Bearer KEY (default: BITPLANE_API_KEY, "
            + "else none).")
    String apiKey;

    @Option(names = "--model-id", description = "Name of the model in the API (default: the file name).")
    String modelId;

    @Option(names = "--max-sequences", defaultValue = "16", description = "Sequences decoded together. "
            + "Default: ${DEFAULT-VALUE}.")
    int maxSequences;

    @Option(names = "--max-queue", defaultValue = "64", description = "Requests that may wait; more get 429. "
            + "Default: ${DEFAULT-VALUE}.")
    int maxQueue;

    @Option(names = "--context", defaultValue = "0", description = "KV cache positions per sequence (0: the "
            + "model's).")
    int context;

    @Option(names = "--max-prompt-tokens", defaultValue = "4096", description = "Longest prompt. Default: "
            + "${DEFAULT-VALUE}.")
    int maxPromptTokens;

    @Option(names = "--max-tokens-limit", defaultValue = "4096", description = "Largest max_tokens. Default: "
            + "${DEFAULT-VALUE}.")
    int maxTokensLimit;

    @Option(names = "--max-body-bytes", defaultValue = "1048576", description = "Largest request body. Default: "
            + "${DEFAULT-VALUE}.")
    long maxBodyBytes;

    @Option(names = "--pooling", description = "How /v1/embeddings pools a text's hidden states: mean, or last (the "
            + "last token's: Qwen3-Embedding, gte-Qwen2, e5-mistral). Default: as the model file says (a GGUF's "
            + "pooling_type), else mean.")
    String pooling;

    @Option(names = "--no-warmup", description = "Listen at once, without first running the model through a short "
            + "throwaway prompt and decode (which makes the JIT compile the kernels, so that the first requests "
            + "are not seconds slower).")
    boolean noWarmup;

    @Override
    public Integer call() throws Exception {
        Path path = modelArgs.resolvedModel();
        String id = modelId != null ? modelId : path.getFileName().toString().replaceFirst("\\.[^.]+$", "");
        String key = apiKey != null ? apiKey : System.getenv("BITPLANE_API_KEY");
        ServerConfig config = ServerConfig.defaults(id).withHost(host).withPort(port).withApiKey(key)
                .withContextLength(context)
                .withLimits(maxSequences, maxQueue, maxPromptTokens, maxTokensLimit, maxBodyBytes)
                .withPooling(pooling());
        CountDownLatch stopped = new CountDownLatch(1);
        try (Model model = Model.open(path, modelArgs.options())) {
            if (!noWarmup) {
                System.err.printf(java.util.Locale.ROOT, "bitplane: warmed up in %.1f s%n", model.warmUp() / 1e9);
            }
            DecodingServer server = DecodingServer.start(model, config);
            System.err.println("bitplane: serving " + id + " at http://" + host + ":" + server.port()
                    + "/v1 (Ctrl-C stops)");
            Runtime.getRuntime().addShutdownHook(new Thread(() -> {
                server.close();
                stopped.countDown();
            }, "bitplane-shutdown"));
            stopped.await();
        }
        return 0;
    }

    private io.bitplane.runtime.Pooling pooling() {
        if (pooling == null) {
            return null;  // the model file's
        }
        return switch (pooling) {
            case "mean" -> io.bitplane.runtime.Pooling.MEAN;
            case "last" -> io.bitplane.runtime.Pooling.LAST;
            default -> throw new IllegalArgumentException("--pooling must be mean or last, not " + pooling);
        };
    }
}
