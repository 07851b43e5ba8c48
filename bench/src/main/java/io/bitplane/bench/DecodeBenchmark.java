package io.bitplane.bench;

import io.bitplane.runtime.Model;
import io.bitplane.runtime.ModelOptions;
import io.bitplane.runtime.Sampler;
import io.bitplane.runtime.Session;
import io.bitplane.runtime.SessionOptions;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.nio.file.Path;

/**
 * Steady-state decoding: one token through the whole model per call (ops/s = tokens/s). The KV cache is reset
 * before it fills, so every call attends over at most {@code window} positions, as a short story does.
 * The model is {@code -Dbitplane.bench.model=PATH} (default ../shared/models/stories260K.bin).
 */
@State(Scope.Thread)
public class DecodeBenchmark {
    @Param({"native", "java", "opencl", "scalar"})
    public String backend;

    @Param({"1"})
    public int threads;

    @Param({"256"})
    public int window;

    private Model model;
    private Session session;
    private int token = 1;

    @Setup(Level.Trial)
    public void setUp() throws Exception {
        Path path = Path.of(System.getProperty("bitplane.bench.model", "../shared/models/stories260K.bin"));
        model = Model.open(path, ModelOptions.defaults().withBackend(backend).withThreads(threads));
        session = model.newSession(SessionOptions.ofContext(window));
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        model.close();
    }

    @Benchmark
    public float decodeOneToken() {
        if (session.position() >= window) {
            session.reset();
        }
        float[] logits = session.append(token);
        token = Sampler.argmax(logits, logits.length);
        return logits[token];
    }
}
