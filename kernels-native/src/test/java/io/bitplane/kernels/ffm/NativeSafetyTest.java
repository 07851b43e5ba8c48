package io.bitplane.kernels.ffm;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.TestTensors;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import io.bitplane.kernels.AttentionShape;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.BackendConformance;
import io.bitplane.kernels.Backends;
import io.bitplane.kernels.Buffer;
import io.bitplane.kernels.Weights;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Wrong shapes never reach C: buffers too small, weights shorter than their spec, odd batches. Every call either
 * runs (when everything fits) or throws IllegalArgumentException naming the problem; the JVM never crashes.
 */
class NativeSafetyTest {
    static Backend backend;
    static final Arena ARENA = Arena.ofShared();
    static final String[] SPECS = {"f32", "f16", "bf16", "int8@32", "int4@32", "int4-asym@64", "ternary", "binary",
        "ternary@48", "int8@16", "binary@48", "binary@64"};

    @BeforeAll
    static void create() {
        NativeAvailability.assumeLoaded();
        backend = Backends.create("native", 2);
    }

    @AfterAll
    static void close() {
        if (backend != null) {
            backend.close();
        }
    }

    static EncodedTensor tensor(Random rnd, String spec, int rows, int cols, ActivationHint hint) {
        return Quantizer.quantize("w." + spec, new long[] {rows, cols}, TestTensors.gaussian(rnd, rows * cols, 0.1f),
                QuantSpec.parse(spec), hint);
    }

    /** The tensor's first {@code bytes} bytes in native memory, under its full spec. */
    static BpmTensor truncated(EncodedTensor t, int bytes) {
        MemorySegment seg = ARENA.allocate(Math.max(1, bytes));
        MemorySegment.copy(t.bytes(), 0, seg, ValueLayout.JAVA_BYTE, 0, bytes);
        return new BpmTensor(t.spec(), seg.asSlice(0, bytes), 0, 0);
    }

    /**
     * Attention's C kernel indexes the KV cache by position and the queries and outputs by token and head: a
     * position past the cache, a negative one, too few positions, short queries or outputs, or heads that KV heads
     * do not divide are refused naming the problem, and nothing was written; the same call in range runs.
     */
    @Test
    void attentionOutOfRangeIsRefusedBeforeTheKernel() {
        AttentionShape s = new AttentionShape(4, 2, 16);
        int cached = 10;
        Buffer q = backend.allocate(2 * s.queryDim());
        Buffer out = backend.allocate(2 * s.queryDim());
        Buffer keys = backend.allocate(cached * s.kvDim());
        Buffer values = backend.allocate(cached * s.kvDim());
        Buffer shortQ = backend.allocate(2 * s.queryDim() - 1);
        backend.write(TestTensors.gaussian(new Random(3), cached * s.kvDim(), 1f), 0, keys, 0, cached * s.kvDim());
        String[] messages = {
            message(() -> backend.attention(out, q, keys, values, new int[] {0, cached}, 2, s)),
            message(() -> backend.attention(out, q, keys, values, new int[] {-1, 0}, 2, s)),
            message(() -> backend.attention(out, q, keys, values, new int[] {0}, 2, s)),
            message(() -> backend.attention(out, shortQ, keys, values, new int[] {0, 1}, 2, s)),
            message(() -> backend.attention(shortQ, q, keys, values, new int[] {0, 1}, 2, s)),
            message(() -> backend.attention(out, q, keys, values, new int[] {0, 1}, 2, new AttentionShape(3, 2, 16))),
        };
        assertTrue(messages[0].contains("position " + cached) && messages[0].contains("0 to " + (cached - 1)),
                messages[0]);
        assertTrue(messages[1].contains("position -1"), messages[1]);
        assertTrue(messages[2].contains("1 positions"), messages[2]);
        assertTrue(messages[3].contains("queries and output"), messages[3]);
        assertTrue(messages[4].contains("queries and output"), messages[4]);
        assertTrue(messages[5].contains("multiple of KV heads"), messages[5]);
        float[] written = new float[2 * s.queryDim()];
        backend.read(out, 0, written, 0, written.length);
        assertArrayEquals(new float[written.length], written, "nothing written by a refused call");
        backend.attention(out, q, keys, values, new int[] {cached - 1, 0}, 2, s); // in range: runs
    }

    private static String message(Runnable call) {
        return assertThrows(IllegalArgumentException.class, call::run).getMessage();
    }

    @Test
    void weightsShorterThanTheirSpecAreRefusedByName() {
        EncodedTensor t = tensor(new Random(1), "ternary", 8, 100, ActivationHint.INT8);
        Weights w = backend.upload(truncated(t, t.bytes().length - 1));
        var e = assertThrows(IllegalArgumentException.class,
                () -> backend.matmul(w, backend.allocate(100), backend.allocate(8), 1));
        assertTrue(e.getMessage().contains("w.ternary") && e.getMessage().contains("bytes"), e.getMessage());
    }

    @Test
    void randomWrongShapesNeverCrash() {
        Random rnd = new Random(42);
        int refused = 0;
        int ran = 0;
        for (int i = 0; i < 400; i++) {
            String spec = SPECS[rnd.nextInt(SPECS.length)];
            int rows = 1 + rnd.nextInt(40);
            int cols = 1 + rnd.nextInt(300);
            ActivationHint hint = rnd.nextBoolean() ? ActivationHint.INT8 : ActivationHint.F32;
            EncodedTensor t = tensor(rnd, spec, rows, cols, hint);
            int bytes = rnd.nextInt(4) == 0 ? rnd.nextInt(t.bytes().length) : t.bytes().length;
            int batch = rnd.nextInt(5) - 1;
            int xLength = Math.max(0, Math.max(1, batch) * cols + rnd.nextInt(3) - 1);
            int yLength = Math.max(0, Math.max(1, batch) * rows + rnd.nextInt(3) - 1);
            Weights w = backend.upload(truncated(t, bytes));
            Buffer x = backend.allocate(xLength);
            Buffer y = backend.allocate(yLength);
            boolean fits = bytes == t.bytes().length && batch >= 1 && xLength >= batch * cols
                    && yLength >= batch * rows;
            if (fits) {
                backend.matmul(w, x, y, batch);
                ran++;
            } else {
                assertThrows(IllegalArgumentException.class, () -> backend.matmul(w, x, y, batch),
                        spec + " " + rows + "x" + cols + " bytes " + bytes + " batch " + batch);
                refused++;
            }
        }
        assertTrue(ran > 50 && refused > 50, "both kinds covered: ran " + ran + ", refused " + refused);
    }

    @Test
    void heapWeightsAreCopiedToNativeMemory() {
        Random rnd = new Random(3);
        EncodedTensor t = tensor(rnd, "int4@32", 300, 1000, ActivationHint.INT8);
        BpmTensor onHeap = new BpmTensor(t.spec(), MemorySegment.ofArray(t.bytes()), 0, 0);
        float[] x = TestTensors.gaussian(rnd, 2 * 1000, 1f);
        float[] viaHeap = BackendConformance.matmul(backend, onHeap, x, 2);
        float[] viaNative = BackendConformance.matmul(backend, truncated(t, t.bytes().length), x, 2);
        org.junit.jupiter.api.Assertions.assertArrayEquals(viaNative, viaHeap);
    }
}
