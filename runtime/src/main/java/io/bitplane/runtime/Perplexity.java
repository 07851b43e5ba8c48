package io.bitplane.runtime;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;

/**
 * The project's perplexity protocol (DEVELOPERS.md): split the text on blank lines, drop empty pieces, encode each
 * paragraph alone (BOS + llama2.c encoding), truncate to 512 tokens (or the context, if shorter), score every token
 * after BOS, and report {@code exp(total NLL / scored tokens)}.
 */
public final class Perplexity {
    private Perplexity() {
    }

    public static final int MAX_TOKENS = 512;

    /** Paragraphs: the text split on blank lines, empty pieces dropped. */
    public static List<String> paragraphs(String text) {
        List<String> out = new ArrayList<>();
        for (String p : text.replace("\r\n", "\n").split("\n[ \t]*\n")) {
            if (!p.isBlank()) {
                out.add(p);
            }
        }
        return out;
    }

    /** The token sequence the protocol scores for one paragraph. */
    public static int[] tokens(Model model, String paragraph, int contextLength) {
        int[] t = model.tokenizer().encode(paragraph, true, false);
        return t.length > Math.min(MAX_TOKENS, contextLength) ? Arrays.copyOf(t, Math.min(MAX_TOKENS, contextLength))
                : t;
    }

    /**
     * Scores the paragraphs on {@code threads} sessions in parallel (each paragraph is independent, so the result
     * does not depend on the thread count); {@code progress} hears each finished paragraph's index.
     */
    public static Score evaluate(Model model, List<String> paragraphs, int threads, IntConsumer progress)
            throws InterruptedException {
        Score[] scores = new Score[paragraphs.size()];
        onSessions(model, paragraphs.size(), threads, (s, i) -> {
            scores[i] = s.score(tokens(model, paragraphs.get(i), s.contextLength()));
            progress.accept(i);
        });
        Score total = new Score(0, 0);
        for (Score s : scores) {
            total = total.plus(s);
        }
        return total;
    }

    /** Work on item {@code index} with a session that belongs to the calling thread alone. */
    @FunctionalInterface
    public interface SessionWork {
        void run(Session session, int index);
    }

    /**
     * Runs {@code work} for items 0..count-1 on up to {@code threads} sessions (protocol context and batch), each on
     * its own thread, taking items in order as they free up. The first failure is rethrown.
     */
    public static void onSessions(Model model, int count, int threads, SessionWork work)
            throws InterruptedException {
        int n = Math.max(1, Math.min(threads, count));
        AtomicInteger next = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(n, r -> {
            Thread t = new Thread(r, "bitplane-perplexity");
            t.setDaemon(true);
            return t;
        });
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int w = 0; w < n; w++) {
                futures.add(pool.submit(() -> {
                    try (Session s = model.newSession(new SessionOptions(MAX_TOKENS, 64))) {
                        for (int i = next.getAndIncrement(); i < count; i = next.getAndIncrement()) {
                            work.run(s, i);
                        }
                    }
                    return null;
                }));
            }
            for (Future<?> f : futures) {
                try {
                    f.get();
                } catch (java.util.concurrent.ExecutionException e) {
                    if (e.getCause() instanceof RuntimeException re) {
                        throw re;
                    }
                    throw new IllegalStateException(e.getCause());
                }
            }
        } finally {
            pool.shutdownNow();
        }
    }

    /** {@code log sum_i exp(logits[offset + i])} over n logits, shifted by the maximum so it cannot overflow. */
    public static double logSumExp(float[] logits, int offset, int n) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, logits[offset + i]);
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += Math.exp(logits[offset + i] - max);
        }
        return max + Math.log(sum);
    }
}
