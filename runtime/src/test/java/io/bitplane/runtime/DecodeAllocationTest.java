package io.bitplane.runtime;

import io.bitplane.format.SharedData;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A warm decoding step allocates nothing: stories260K on the Java backend with two threads, token after token
 * through the decoder (norms, products, rotary, attention over a growing cache, the classifier), in rounds until a
 * round allocates no byte on the calling thread nor on the pool's workers. Tagged own-jvm (a JVM of its own, see
 * kernels-java's AllocationConformance and this module's pom).
 */
@Tag("own-jvm")
class DecodeAllocationTest {
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    @Test
    void aWarmDecodingStepAllocatesNothing() throws Exception {
        try (Model m = Model.open(SharedData.stories260K(), ModelOptions.defaults().withBackend("java").withThreads(2));
             Session s = m.newSession()) {
            int vocab = m.config().vocabSize();
            int[] token = {1};
            long fewest = Long.MAX_VALUE;
            for (int round = 0; round < 400 && fewest > 0; round++) {
                long[] ids = Thread.getAllStackTraces().keySet().stream()
                        .filter(t -> t == Thread.currentThread() || t.getName().startsWith("bitplane-worker-"))
                        .mapToLong(Thread::threadId).toArray();
                // Reading the counters allocates their array: count the round past what one reading adds.
                long first = allocatedBytes(ids);
                long before = allocatedBytes(ids);
                for (int i = 0; i < 50; i++) {
                    if (s.position() >= s.contextLength()) {
                        s.reset();
                        token[0] = 1;
                    }
                    float[] logits = s.appendWithoutCopy(token);
                    token[0] = Sampler.argmax(logits, vocab);
                }
                long after = allocatedBytes(ids);
                fewest = Math.min(fewest, (after - before) - (before - first));
            }
            assertEquals(0, fewest, "bytes allocated by the fewest of 400 rounds of 50 decoding steps");
        }
    }

    private static long allocatedBytes(long[] ids) {
        long sum = 0;
        for (long bytes : THREADS.getThreadAllocatedBytes(ids)) {
            sum += Math.max(bytes, 0);
        }
        return sum;
    }
}
