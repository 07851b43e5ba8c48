package io.bitplane.server;

import io.bitplane.runtime.BatchScheduler;
import io.bitplane.runtime.GeneratedToken;
import io.bitplane.runtime.GenerationResult;

import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * Carries one request's events from the scheduler thread (which must never block) to the HTTP thread that writes
 * them, and records the request's latencies as the scheduler produces its tokens.
 */
final class RequestEvents implements BatchScheduler.Listener {
    private final BlockingQueue<Object> events = new LinkedBlockingQueue<>();
    private final Metrics metrics;
    private final long acceptedNanos;
    private long lastTokenNanos;

    RequestEvents(Metrics metrics) {
        this.metrics = metrics;
        this.acceptedNanos = System.nanoTime();
    }

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
        events.add(token);
    }

    @Override
    public void done(GenerationResult result) {
        metrics.promptTokens(result.promptTokens(), result.cachedPromptTokens());
        events.add(result);
    }

    @Override
    public void failed(Exception error) {
        events.add(error);
    }

    /** The next event: a {@link GeneratedToken}, then a {@link GenerationResult} or an {@link Exception}. */
    Object next() throws InterruptedException {
        return events.take();
    }
}
