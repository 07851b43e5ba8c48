package io.bitplane.server;

import io.bitplane.runtime.BatchScheduler;
import io.bitplane.runtime.GeneratedToken;
import io.bitplane.runtime.GenerationResult;

import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * Carries one request's events, from each of its choices' generations, from the scheduler thread (which must never
 * block) to the HTTP thread that writes them, and records each generation's latencies as the scheduler produces
 * its tokens.
 */
final class RequestEvents {
    private final BlockingQueue<Event> events = new LinkedBlockingQueue<>();
    private final Metrics metrics;
    private final long acceptedNanos;

    /** What happened to choice {@code choice}: a {@link GeneratedToken}, {@link GenerationResult} or exception. */
    record Event(int choice, Object payload) {
    }

    RequestEvents(Metrics metrics) {
        this.metrics = metrics;
        this.acceptedNanos = System.nanoTime();
    }

    /** The listener of choice {@code choice}'s generation. */
    BatchScheduler.Listener listener(int choice) {
        return new BatchScheduler.Listener() {
            private long lastTokenNanos;

            @Override
            public void token(GeneratedToken token) {
                long now = System.nanoTime();
                if (token.id() != GeneratedToken.TRAILING) {
                    metrics.token();
                    if (lastTokenNanos == 0) {
                        metrics.timeToFirstToken(now - acceptedNanos);
                    } else {
                        metrics.tokenLatency(now - lastTokenNanos);
                    }
                    lastTokenNanos = now;
                }
                events.add(new Event(choice, token));
            }

            @Override
            public void done(GenerationResult result) {
                metrics.promptTokens(result.promptTokens(), result.cachedPromptTokens());
                events.add(new Event(choice, result));
            }

            @Override
            public void failed(Exception error) {
                events.add(new Event(choice, error));
            }
        };
    }

    /**
     * The next event of any choice; each choice's come in order: {@link GeneratedToken}s, then a
     * {@link GenerationResult} or an exception.
     */
    Event next() throws InterruptedException {
        return events.take();
    }
}
