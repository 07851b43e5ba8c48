package io.bitplane.bench;

import io.bitplane.runtime.Model;
import io.bitplane.runtime.ModelOptions;
import io.bitplane.runtime.Session;
import io.bitplane.runtime.SessionOptions;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.nio.file.Path;

/**
 * Prompt processing: a prompt of {@value #PROMPT} tokens into an empty session per call, {@code batch} tokens per
 * pass through the model (the session's batch size; the batched matrix products and attention over the prompt so
 * far). Ops/s are prompt tokens/s. The model is {@code -Dbitplane.bench.model=PATH} (default
 * ../shared/models/stories260K.bin); the prompt's token ids are spread over the first 500 of its vocabulary.
 */
@State(Scope.Thread)
public class PromptBenchmark {
    static final int PROMPT = 256;

    @Param({"native", "java", "opencl", "scalar"})
    public String backend;

    @Param({"1"})
    public int threads;

    @Param({"32"})
    public int batch;

    private Model model;
    private Session session;
    private final int[] prompt = new int[PROMPT];

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        Path path = Path.of(System.getProperty("bitplane.bench.model", "../shared/models/stories260K.bin"));
        model = Model.open(path, ModelOptions.defaults().withBackend(backend).withThreads(threads));
        session = model.newSession(new SessionOptions(PROMPT, batch));
        int vocab = Math.min(500, model.config().vocabSize() - 1);
        for (int i = 0; i < PROMPT; i++) {
            prompt[i] = 1 + (i * 37) % vocab;
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        model.close();
    }

    @Benchmark
    @OperationsPerInvocation(PROMPT)
    public float processPrompt() {
        session.reset();
        float[] logits = session.append(prompt);
        return logits[0];
    }
}
