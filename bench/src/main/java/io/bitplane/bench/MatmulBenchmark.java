package io.bitplane.bench;

import io.bitplane.format.BpmTensor;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Backends;
import io.bitplane.kernels.Buffer;
import io.bitplane.kernels.WeightMemory;
import io.bitplane.kernels.Weights;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

/**
 * Matrix-vector (batch 1) and matrix-matrix products per encoding, backend, shape and thread count. Weights live
 * in native memory, as they do when mapped from a file; {@code copies} > 1 cycles through several copies so that
 * the weights are read from DRAM, not from the caches. Weights per second = rows x cols x batch / time. Each
 * call ends with the product finished, also on a device that runs asynchronously.
 */
@State(Scope.Benchmark)
public class MatmulBenchmark {
    @Param({"f32", "f16", "int8@32", "int4@32", "ternary", "binary"})
    public String encoding;

    /** f32, int8, or binary (XNOR, with binary weights only). */
    @Param({"f32", "int8"})
    public String activations;

    @Param({"4096x4096"})
    public String shape;

    /** opencl runs on the device `-Dbitplane.opencl.device=N` names (default 0). */
    @Param({"java", "native", "opencl"})
    public String backend;

    /** planes (layout 0) or packed (layout 1, INT4 and TERNARY only; other encodings stay in layout 0). */
    @Param({"planes"})
    public String layout;

    @Param({"2"})
    public int threads;

    @Param({"1"})
    public int batch;

    @Param({"4"})
    public int copies;

    private Backend be;
    private Weights[] weights;
    private Buffer x;
    private Buffer y;
    private int next;
    private Arena arena;
    private final float[] done = new float[1];

    @Setup(Level.Trial)
    public void setUp() {
        String[] rc = shape.split("x");
        int rows = Integer.parseInt(rc[0]);
        int cols = Integer.parseInt(rc[1]);
        Random rnd = new Random(1);
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) rnd.nextGaussian() * 0.02f;
        }
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols}, w, QuantSpec.parse(encoding),
                io.bitplane.format.convert.Recipe.parseActivations(activations, "activations"));
        if (layout.equals("packed") && PackedCodes.supports(t.spec().encoding())) {
            t = PackedCodes.relayout(t);
        }
        be = Backends.create(backend, threads);
        arena = Arena.ofShared();
        weights = new Weights[copies];
        for (int c = 0; c < copies; c++) {
            MemorySegment seg = WeightMemory.allocate(arena, t.bytes().length);
            MemorySegment.copy(t.bytes(), 0, seg, ValueLayout.JAVA_BYTE, 0, t.bytes().length);
            weights[c] = be.upload(new BpmTensor(t.spec(), seg, 0, 0));
        }
        float[] xs = new float[batch * cols];
        for (int i = 0; i < xs.length; i++) {
            xs[i] = (float) rnd.nextGaussian();
        }
        x = be.allocate(xs.length);
        be.write(xs, 0, x, 0, xs.length);
        y = be.allocate(batch * rows);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        be.close();
        arena.close();
    }

    @Benchmark
    public Buffer matmul() {
        Weights w = weights[next];
        next = (next + 1) % weights.length;
        be.matmul(w, x, y, batch);
        // A device backend only enqueues the product: reading one float waits for it (free on the CPU backends).
        be.read(y, 0, done, 0, 1);
        return y;
    }
}
