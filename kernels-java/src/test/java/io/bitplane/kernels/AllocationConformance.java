package io.bitplane.kernels;

import io.bitplane.format.EncodedTensor;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TestTensors;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.management.ManagementFactory;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A CPU backend's products and attention allocate nothing once warm (issue: "no allocation per call in steady
 * state"): a server decoding for hours should make no garbage in its kernels. Each check calls the op in rounds and
 * passes when one round allocates no byte on the calling thread nor on the pool's workers (ThreadMXBean); until the
 * JIT has compiled the vector code, the Vector API allocates its vectors, so the first rounds may. Each backend's
 * module extends this with the backend it makes, and runs it in a JVM of its own (tag own-jvm, see the poms).
 * <p>
 * Not covered: a JVM whose kernels have run at two vector widths. C2 then follows profiles of the JDK's vector
 * methods that have seen both, and keeps some loop sums as objects: here, 512-bit attention after attention over
 * heads of 8 (256-bit sums on AVX-512) allocated 768 bytes a call, which is why those cases come last below; and
 * the AVX2 table kernels after the 512-bit ones (the avx2-width executions give them a JVM of 256 bits).
 */
@Tag("own-jvm")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class AllocationConformance {
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    private static final int ROUNDS = 400;
    private static final int CALLS_PER_ROUND = 50;

    protected Backend backend;

    /** The backend under test, with two threads, so that the large shapes here are split over its pool. */
    protected abstract Backend createBackend();

    @BeforeAll
    public void create() {
        backend = createBackend();
    }

    @AfterAll
    public void close() {
        if (backend != null) {
            backend.close();
        }
    }

    /**
     * One product, split over the pool (512 x 1024 and more) or on the calling thread alone (64 x 256), for the
     * encodings and activations a low-bit model decodes with.
     */
    @ParameterizedTest(name = "{0} x {1}, {2}x{3}, batch {4}, {5}")
    @CsvSource({
        "ternary, int8, 512, 1024, 1, packed", "ternary, int8, 512, 1024, 1, planes",
        "ternary, int8, 64, 256, 1, packed", "ternary, int8, 512, 1024, 4, packed",
        "int4@32, int8, 512, 1024, 1, planes", "int4@32, int8, 64, 256, 1, planes",
        "int8@32, int8, 512, 1024, 1, planes", "binary, int8, 512, 1024, 1, planes",
        "binary, int8, 256, 2048, 1, planes",
        "binary, binary, 512, 1024, 1, planes", "binary, binary, 64, 256, 1, planes",
        "f32, f32, 512, 1024, 1, planes", "f32, f32, 64, 256, 1, planes",
        "f16, f32, 512, 1024, 1, planes", "f16, f32, 512, 1024, 4, planes", "bf16, f32, 512, 1024, 1, planes",
        "bf16, f32, 512, 1024, 4, planes",
        "ternary, f32, 512, 1024, 1, planes", "int4@32, f32, 512, 1024, 1, planes",
        "binary, f32, 512, 1024, 1, planes", "int8@32, f32, 512, 1024, 1, planes",
        // groups no vector kernel takes: the reference kernel, split over the pool, with activations to quantize
        "int8@33, int8, 512, 1024, 1, planes"})
    public void aWarmProductAllocatesNothing(String spec, String act, int rows, int cols, int batch, String layout) {
        Random rnd = new Random(rows * 31L + cols);
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols}, TestTensors.gaussian(rnd, rows * cols,
                0.1f), QuantSpec.parse(spec), BackendConformance.hint(act));
        if (layout.equals("packed")) {
            t = PackedCodes.relayout(t);
        }
        Weights w = backend.upload(BackendConformance.placed(t, 0));
        Buffer x = input(rnd, batch * cols);
        Buffer y = backend.allocate(batch * rows);
        assertEventuallyAllocatesNothing(spec + " x " + act, () -> backend.matmul(w, x, y, batch));
    }

    /**
     * Ternary, then binary (as two models loaded in one process would run them), at a model's width: the Java
     * backend's F32 lookup tiles for these had a kernel each, and the second to be compiled kept its loop sums as
     * objects (docs/PERFORMANCE.md, "One float lookup kernel"). Its INT8 lookups still have a kernel each.
     */
    @ParameterizedTest(name = "x {0}")
    @CsvSource({"f32", "int8"})
    public void productsOfTwoEncodingsAllocateNothing(String act) {
        Random rnd = new Random(11);
        int rows = 1024;
        int cols = 4096;
        Buffer x = input(rnd, cols);
        Buffer y = backend.allocate(rows);
        for (String spec : new String[] {"ternary", "binary"}) {
            EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                    TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse(spec),
                    BackendConformance.hint(act));
            Weights w = backend.upload(BackendConformance.placed(t, 0));
            assertEventuallyAllocatesNothing(spec + " x " + act + ", " + rows + "x" + cols,
                    () -> backend.matmul(w, x, y, 1));
        }
    }

    /** Products of one input as one job (a layer's q, k and v), with rows of several sizes. */
    @Test
    public void aWarmJobOfProductsAllocatesNothing() {
        Random rnd = new Random(7);
        int cols = 1024;
        int[] rows = {512, 128, 128};
        Weights[] ws = new Weights[rows.length];
        Buffer[] ys = new Buffer[rows.length];
        for (int i = 0; i < rows.length; i++) {
            EncodedTensor t = Quantizer.quantize("w" + i, new long[] {rows[i], cols},
                    TestTensors.gaussian(rnd, rows[i] * cols, 0.1f), QuantSpec.parse("ternary"),
                    BackendConformance.hint("int8"));
            ws[i] = backend.upload(BackendConformance.placed(PackedCodes.relayout(t), 0));
            ys[i] = backend.allocate(rows[i]);
        }
        Buffer x = input(rnd, cols);
        assertEventuallyAllocatesNothing("q, k and v", () -> backend.matmuls(ws, x, ys, 1));
    }

    /** Attention over a context long enough to be split over the pool, and over a short one that is not. */
    @ParameterizedTest(name = "{0} heads of {2}, {1} KV heads, position {3}")
    @CsvSource({"8, 8, 16, 300", "8, 4, 64, 511", "8, 4, 8, 40"})
    public void warmAttentionAllocatesNothing(int heads, int kvHeads, int headSize, int position) {
        Random rnd = new Random(heads * 31L + position);
        AttentionShape shape = new AttentionShape(heads, kvHeads, headSize);
        int contextLength = position + 1;
        Buffer q = input(rnd, shape.queryDim());
        Buffer keys = input(rnd, contextLength * shape.kvDim());
        Buffer values = input(rnd, contextLength * shape.kvDim());
        Buffer out = backend.allocate(shape.queryDim());
        int[] positions = {position};
        assertEventuallyAllocatesNothing("attention",
                () -> backend.attention(out, q, keys, values, positions, 1, shape));
    }

    /**
     * The calling thread's reused products must not keep a model's weights alive after the model is dropped: the
     * repacked tiles (hundreds of MB in a real model) are freed by the garbage collector.
     */
    @ParameterizedTest(name = "{0} x {1}, {2} rows")
    @CsvSource({"ternary, int8, 512", "ternary, int8, 64", "int8@32, int8, 512", "f32, f32, 512",
        "binary, binary, 512"})
    public void productsKeepNoWeightsAlive(String spec, String act, int rows) throws InterruptedException {
        Random rnd = new Random(rows);
        int cols = 1024;
        Buffer x = input(rnd, cols);
        Buffer y = backend.allocate(rows);
        java.lang.ref.WeakReference<Weights> dropped = multiplyOnce(spec, act, rows, cols, rnd, x, y);
        for (int i = 0; i < 50 && dropped.get() != null; i++) {
            System.gc();
            Thread.sleep(10);
        }
        assertEquals(null, dropped.get(), spec + " x " + act + ": the weights are still reachable after a product");
    }

    private java.lang.ref.WeakReference<Weights> multiplyOnce(String spec, String act, int rows, int cols, Random rnd,
                                                             Buffer x, Buffer y) {
        EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols}, TestTensors.gaussian(rnd, rows * cols,
                0.1f), QuantSpec.parse(spec), BackendConformance.hint(act));
        Weights w = backend.upload(BackendConformance.placed(t, 0));
        backend.matmul(w, x, y, 1);
        backend.matmuls(new Weights[] {w, w}, x, new Buffer[] {y, backend.allocate(rows)}, 1);
        return new java.lang.ref.WeakReference<>(w);
    }

    private Buffer input(Random rnd, int n) {
        float[] values = TestTensors.gaussian(rnd, n, 1f);
        Buffer b = backend.allocate(n);
        backend.write(values, 0, b, 0, n);
        return b;
    }

    /**
     * Runs {@code call} in rounds until a round allocates nothing on this thread and the pool's workers; fails with
     * the fewest bytes a round did. (Also the runtime's check of a whole decoding step.)
     */
    public static void assertEventuallyAllocatesNothing(String what, Runnable call) {
        long fewest = Long.MAX_VALUE;
        for (int round = 0; round < ROUNDS && fewest > 0; round++) {
            long[] ids = callerAndWorkers();
            // Reading the counters allocates on this thread (their array): the round's bytes are counted past what
            // one reading, alone between two, adds.
            long first = allocatedBytes(ids);
            long before = allocatedBytes(ids);
            for (int i = 0; i < CALLS_PER_ROUND; i++) {
                call.run();
            }
            long after = allocatedBytes(ids);
            fewest = Math.min(fewest, (after - before) - (before - first));
        }
        assertEquals(0, fewest, what + ": bytes allocated by the fewest of " + ROUNDS + " rounds of "
                + CALLS_PER_ROUND + " calls");
    }

    /** This thread and every pool worker (other threads, the test runner's among them, allocate as they like). */
    private static long[] callerAndWorkers() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t == Thread.currentThread() || t.getName().startsWith("bitplane-worker-"))
                .mapToLong(Thread::threadId).toArray();
    }

    private static long allocatedBytes(long[] ids) {
        long sum = 0;
        for (long bytes : THREADS.getThreadAllocatedBytes(ids)) {
            sum += Math.max(bytes, 0); // -1: a thread that ended
        }
        return sum;
    }
}
