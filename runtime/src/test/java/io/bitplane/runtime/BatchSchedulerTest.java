package io.bitplane.runtime;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.SharedData;
import io.bitplane.format.convert.Recipe;
import io.bitplane.format.quant.QuantSpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Continuous batching gives every request exactly what it gets alone, and sheds load cleanly. */
class BatchSchedulerTest {

    /** Collects one request's events into a future. */
    static final class Collector implements BatchScheduler.Listener {
        final StringBuilder text = new StringBuilder();
        final List<GeneratedToken> events = java.util.Collections.synchronizedList(new ArrayList<>());
        final CompletableFuture<GenerationResult> result = new CompletableFuture<>();
        final CountDownLatch firstToken = new CountDownLatch(1);

        @Override
        public void token(GeneratedToken token) {
            text.append(token.text());
            events.add(token);
            firstToken.countDown();
        }

        @Override
        public void done(GenerationResult r) {
            result.complete(r);
        }

        @Override
        public void failed(Exception error) {
            result.completeExceptionally(error);
        }
    }

    static String alone(Model m, GenerationRequest r) {
        try (Session s = m.newSession()) {
            return s.generate(r, t -> { }).text();
        }
    }

    static List<GenerationRequest> mixedRequests() {
        // One prompt longer than a step's columns, so that it is fed over several steps beside the others.
        String[] prompts = {"", "Once upon a time", "The cat", "Lily and Ben went to the park. They",
                "One day", "", "A big dog", "Lily and Ben went to the park and played with a ball. ".repeat(6)};
        List<GenerationRequest> list = new ArrayList<>();
        for (int i = 0; i < prompts.length; i++) {
            GenerationRequest r = GenerationRequest.of(prompts[i], 20 + 23 * i);
            if (i % 3 == 2) {
                r = r.withSampler(SamplerSettings.of(0.8f, 0.9f, 1000 + i));
            }
            list.add(r);
        }
        return list;
    }

    @ParameterizedTest
    @ValueSource(strings = {"f32", "int8", "ternary"})
    void everyRequestGetsWhatItGetsAlone(String encoding) throws Exception {
        ModelOptions options = ModelOptions.defaults().withRecipe(
                new Recipe(QuantSpec.parse(encoding), encoding.equals("f32") ? ActivationHint.F32 : ActivationHint.INT8,
                        List.of()));
        try (Model m = Model.open(SharedData.stories260K(), options)) {
            List<GenerationRequest> requests = mixedRequests();
            List<String> expected = requests.stream().map(r -> alone(m, r)).toList();
            try (BatchScheduler scheduler = new BatchScheduler(m, new BatchScheduler.Options(5, 16, 0))) {
                List<Collector> collectors = new ArrayList<>();
                for (GenerationRequest r : requests) {
                    Collector c = new Collector();
                    scheduler.submit(r, c);
                    collectors.add(c);
                }
                for (int i = 0; i < requests.size(); i++) {
                    GenerationResult r = collectors.get(i).result.get(60, TimeUnit.SECONDS);
                    assertEquals(expected.get(i), r.text(), "request " + i);
                    assertEquals(expected.get(i), collectors.get(i).text.toString(), "request " + i + " events");
                }
            }
        }
    }

    @Test
    void fullQueueIsRefusedAndCancelledRequestsFreeTheirSequence() throws Exception {
        try (Model m = Model.open(SharedData.stories260K());
             BatchScheduler scheduler = new BatchScheduler(m, new BatchScheduler.Options(1, 1, 0))) {
            Collector running = new Collector();
            BatchScheduler.Ticket t = scheduler.submit(GenerationRequest.of("", 100_000), running);
            assertTrue(running.firstToken.await(30, TimeUnit.SECONDS));
            Collector waiting = new Collector();
            scheduler.submit(GenerationRequest.of("", 5), waiting);
            assertThrows(BatchScheduler.QueueFullException.class,
                    () -> scheduler.submit(GenerationRequest.of("", 5), new Collector()));
            t.cancel();
            assertEquals(FinishReason.CANCELLED, running.result.get(30, TimeUnit.SECONDS).finishReason());
            assertEquals(FinishReason.LENGTH, waiting.result.get(30, TimeUnit.SECONDS).finishReason());
        }
    }

    /** A rule that refuses to go on, by throwing, after a few bytes: a grammar too ambiguous to run, say. */
    static final class Breaks implements TokenConstraint {
        int taken;

        @Override
        public boolean allows(byte[] bytes) {
            if (taken > 6) {
                throw new IllegalArgumentException("the grammar is too ambiguous");
            }
            return true;
        }

        @Override
        public void accept(byte[] bytes) {
            taken += bytes.length;
        }

        @Override
        public boolean complete() {
            return false;
        }
    }

    /**
     * A sequence whose step throws fails alone: the others beside it get what they get alone, and the scheduler
     * goes on serving (it had stopped, failing every running sequence).
     */
    @Test
    void aSequenceThatFailsFailsAlone() throws Exception {
        try (Model m = Model.open(SharedData.stories260K());
             BatchScheduler scheduler = new BatchScheduler(m, new BatchScheduler.Options(3, 8, 0))) {
            Collector broken = new Collector();
            Collector a = new Collector();
            Collector b = new Collector();
            scheduler.submit(GenerationRequest.of("Once upon a time", 40).withConstraint(Breaks::new), broken);
            scheduler.submit(GenerationRequest.of("The cat", 40), a);
            scheduler.submit(GenerationRequest.of("One day", 40), b);
            var e = assertThrows(java.util.concurrent.ExecutionException.class,
                    () -> broken.result.get(30, TimeUnit.SECONDS));
            assertTrue(e.getCause().getMessage().contains("too ambiguous"), e.getCause().toString());
            assertEquals(alone(m, GenerationRequest.of("The cat", 40)), a.result.get(30, TimeUnit.SECONDS).text());
            assertEquals(alone(m, GenerationRequest.of("One day", 40)), b.result.get(30, TimeUnit.SECONDS).text());
            Collector after = new Collector();
            scheduler.submit(GenerationRequest.of("A dog", 10), after);
            assertEquals(alone(m, GenerationRequest.of("A dog", 10)), after.result.get(30, TimeUnit.SECONDS).text());
        }
    }

    @Test
    void closingCancelsRunningRequestsAfterTheGracePeriod() throws Exception {
        try (Model m = Model.open(SharedData.stories260K())) {
            BatchScheduler scheduler = new BatchScheduler(m, new BatchScheduler.Options(2, 4, 0));
            Collector c = new Collector();
            scheduler.submit(GenerationRequest.of("", 100_000), c);
            assertTrue(c.firstToken.await(30, TimeUnit.SECONDS));
            // A short grace: the greedy story ends by itself (EOS) after about 345 tokens, which a fast run
            // reaches within 100 ms.
            scheduler.close(Duration.ofMillis(1));
            assertEquals(FinishReason.CANCELLED, c.result.get(30, TimeUnit.SECONDS).finishReason());
            assertThrows(IllegalStateException.class, () -> scheduler.submit(GenerationRequest.of("", 5), c));
        }
    }
}
