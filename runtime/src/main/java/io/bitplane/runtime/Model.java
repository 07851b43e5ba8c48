package io.bitplane.runtime;

import io.bitplane.format.BpmFile;
import io.bitplane.format.ModelCheck;
import io.bitplane.format.ModelConfig;
import io.bitplane.format.ModelMetadata;
import io.bitplane.format.Vocabulary;
import io.bitplane.format.convert.Converter;
import io.bitplane.format.convert.Recipe;
import io.bitplane.format.importer.TokenizerFiles;
import io.bitplane.format.importer.ModelSource;
import io.bitplane.format.importer.ModelSources;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Backends;
import io.bitplane.runtime.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A loaded model: its weights (used in place from the memory-mapped file), tokenizer and backend.
 *
 * <pre>{@code
 * try (Model model = Model.open(Path.of("stories260K.bin"));
 *      Session session = model.newSession()) {
 *     session.generate(GenerationRequest.of("Once upon a time", 100), token -> System.out.print(token.text()));
 * }
 * }</pre>
 *
 * <p>Thread-safe: any number of threads may create and use their own {@link Session}s at once. {@link #close()}
 * waits for the steps running, closes the sessions still open, frees the backend's copies of the weights and
 * unmaps the file; nothing of the model may be used after.
 */
public final class Model implements AutoCloseable {
    private final BpmFile file;
    private final ModelConfig config;
    private final Tokenizer tokenizer;
    private final Backend backend;
    private final LlamaWeights weights;
    private final Set<Session> sessions = ConcurrentHashMap.newKeySet();
    /** The forward passes running, which {@link #close()} waits for; whether the model is closed. */
    private final ModelUse use = new ModelUse();

    private Model(BpmFile file, Tokenizer tokenizer, Backend backend) throws IOException {
        this.file = file;
        this.config = file.metadata().config();
        this.tokenizer = tokenizer;
        this.backend = backend;
        this.weights = new LlamaWeights(file, config, backend);
    }

    public static Model open(Path path) throws IOException {
        return open(path, ModelOptions.defaults());
    }

    /**
     * Opens a .bpm file, or any format the importers read (llama2.c, GGUF, safetensors), which is converted on load
     * (under {@code options.recipe()}) to a temporary .bpm that is deleted at once: the mapping keeps it alive.
     */
    public static Model open(Path path, ModelOptions options) throws IOException {
        return open(path, options, java.util.function.UnaryOperator.identity());
    }

    /**
     * Opens with the backend passed through {@code wrap} before any weight is uploaded: for tools that observe or
     * substitute what the kernels see (calibration). The wrapper owns the backend it wraps and must close it.
     */
    public static Model open(Path path, ModelOptions options, java.util.function.UnaryOperator<Backend> wrap)
            throws IOException {
        BpmFile file = ModelSources.detect(path) == ModelSources.Format.BPM ? BpmFile.open(path)
                : convertOnLoad(path, options);
        Backend backend = null;
        try {
            List<String> problems = ModelCheck.problems(file);
            if (options.verifyChecksums()) {
                problems = new java.util.ArrayList<>(problems);
                problems.addAll(file.verifyChecksums());
            }
            if (!problems.isEmpty()) {
                throw new ModelException(String.join("; ", problems));
            }
            Vocabulary vocab = options.tokenizer() != null
                    ? TokenizerFiles.read(options.tokenizer(), file.metadata().config().vocabSize())
                    : file.metadata().vocabulary();
            if (vocab == null) {
                throw new ModelException(path + ": the model carries no vocabulary; give a tokenizer "
                        + "(--tokenizer tokenizer.bin)");
            }
            Tokenizer tokenizer;
            try {
                tokenizer = Tokenizer.forVocabulary(vocab);
            } catch (IllegalArgumentException e) {
                throw new ModelException(path + ": tokenizer: " + e.getMessage());
            }
            // A list ("opencl,native") names backends in order of preference: one that cannot start or cannot
            // hold the weights is skipped with one line on stderr. A single name is insisted on: it fails.
            String[] choices = options.backend() == null ? new String[] {"auto"} : options.backend().split(",");
            int threads = options.threads() > 0 ? options.threads() : Runtime.getRuntime().availableProcessors();
            for (int i = 0; ; i++) {
                String choice = choices[i].trim();
                boolean last = i == choices.length - 1;
                try {
                    backend = wrap.apply(Backends.create(choice, threads));
                    return new Model(file, tokenizer, backend);
                } catch (IllegalArgumentException | IllegalStateException e) {
                    String name = backend != null ? backend.name() : choice;
                    if (backend != null) {
                        backend.close();
                        backend = null;
                    }
                    if (!last) {
                        System.err.println("bitplane: not using the " + name + " backend: " + e.getMessage()
                                + "; trying " + choices[i + 1].trim());
                        continue;
                    }
                    if (e instanceof IllegalArgumentException) {
                        throw e; // the backend cannot run here: a usage error
                    }
                    // A backend that cannot hold the weights (a device too small, a failed device call) says why.
                    throw new ModelException(path + ": the " + name + " backend cannot load this model: "
                            + e.getMessage());
                }
            }
        } catch (IOException | RuntimeException e) {
            if (backend != null) {
                backend.close();
            }
            file.close();
            throw e;
        }
    }

    private static BpmFile convertOnLoad(Path path, ModelOptions options) throws IOException {
        Path temp = Files.createTempFile("bitplane-", ".bpm");
        try {
            try (ModelSource source = ModelSources.open(path, options.tokenizer())) {
                Recipe recipe = options.recipe() != null ? options.recipe() : Recipe.auto();
                Converter.convert(source, recipe, temp, Converter.Progress.NONE);
            }
            return BpmFile.open(temp);
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    public ModelConfig config() {
        return config;
    }

    public ModelMetadata metadata() {
        return file.metadata();
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /** The backend in use, in one line (name, vector width, threads). */
    public String backendName() {
        return backend.description();
    }

    /** Bytes of the mapped model file (the weights, used in place). */
    public long fileBytes() {
        return file.fileSize();
    }

    /** A session with a KV cache for the model's whole context. */
    public Session newSession() {
        return newSession(SessionOptions.defaults());
    }

    public Session newSession(SessionOptions options) {
        use.checkOpen();
        int context = options.contextLength() <= 0 ? config.contextLength()
                : Math.min(options.contextLength(), config.contextLength());
        Decoder decoder = new Decoder(config, backend, weights, use, options.batchSize(), options.batchSize());
        Session s = new Session(this, decoder, new KvCache(config, backend, context));
        sessions.add(s);
        return s;
    }

    /** Tokens of the warm-up's prompt (one batch, the prefill path) and single-token steps after it. */
    private static final int WARM_UP_PROMPT = 16;
    private static final int WARM_UP_STEPS = 48;

    /**
     * Runs the model through a throwaway session, a prompt's batch and then single tokens, so that the JIT has
     * compiled the kernels before the first real request. A JVM interprets a method until it is hot, and the
     * Vector API interpreted is very slow: on the synthetic 418M model the first token took 2.1 s and steps
     * reached their steady 5 ms only after about 40 tokens. A server calls this before it listens, as llama.cpp's
     * server makes a warm-up run; a command that runs once gains nothing (the same work moves earlier).
     *
     * @return the nanoseconds it took
     */
    public long warmUp() {
        long start = System.nanoTime();
        int context = Math.min(config.contextLength(), WARM_UP_PROMPT + WARM_UP_STEPS);
        int vocab = config.vocabSize();
        try (Session s = newSession(SessionOptions.ofContext(context))) {
            int[] prompt = new int[Math.min(WARM_UP_PROMPT, context)];
            for (int i = 0; i < prompt.length; i++) {
                prompt[i] = (1 + 7 * i) % vocab;
            }
            s.append(prompt);
            for (int i = 0; s.position() < context; i++) {
                s.append((3 + 11 * i) % vocab);
            }
        }
        return System.nanoTime() - start;
    }

    /** A decoder (scratch only) for batches of up to {@code maxBatch} columns, for schedulers of many sessions. */
    Decoder newDecoder(int maxBatch, int maxLogitRows) {
        use.checkOpen();
        return new Decoder(config, backend, weights, use, maxBatch, maxLogitRows);
    }

    void closed(Session s) {
        sessions.remove(s);
    }

    /**
     * Closes the sessions, frees what the backend made of the weights and unmaps the file, after the forward passes
     * running on other threads (one token or one batch each) have ended: a generation running there then fails with
     * "model is closed" or "session is closed". Closing again does nothing.
     */
    @Override
    public void close() {
        use.close(() -> {
            for (Session s : List.copyOf(sessions)) {
                s.close();
            }
            backend.close();
            file.close();
        });
    }
}
