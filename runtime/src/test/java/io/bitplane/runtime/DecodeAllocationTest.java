package io.bitplane.runtime;

import io.bitplane.format.SharedData;
import io.bitplane.kernels.AllocationConformance;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A warm decoding step allocates nothing: stories260K on the Java backend with two threads, token after token
 * through the decoder (norms, products, rotary, attention over a growing cache, the classifier), checked as
 * kernels-java's AllocationConformance checks one op. Tagged own-jvm (a JVM of its own, see this module's pom).
 */
@Tag("own-jvm")
class DecodeAllocationTest {
    @Test
    void aWarmDecodingStepAllocatesNothing() throws Exception {
        try (Model m = Model.open(SharedData.stories260K(), ModelOptions.defaults().withBackend("java").withThreads(2));
             Session s = m.newSession()) {
            int vocab = m.config().vocabSize();
            int[] token = {1};
            AllocationConformance.assertEventuallyAllocatesNothing("a decoding step", () -> {
                if (s.position() >= s.contextLength()) {
                    s.reset();
                    token[0] = 1;
                }
                float[] logits = s.appendWithoutCopy(token);
                token[0] = Sampler.argmax(logits, vocab);
            });
        }
    }
}
