package io.bitplane.cli;

import io.bitplane.runtime.Model;
import io.bitplane.runtime.ModelOptions;
import io.bitplane.runtime.Sampler;
import io.bitplane.runtime.Session;
import io.bitplane.runtime.SessionOptions;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.function.DoubleToLongFunction;

/**
 * End to end for {@code bitplane bench --model}, one model on one backend:
 * <ul>
 * <li>steady-state decode, one token per step, greedy, the KV cache reset before it holds {@code window} positions
 * (as JMH's {@code DecodeBenchmark} does), against the roofline of the weight bytes one token reads: read bandwidth
 * (measured just before and just after, the higher) / (bytes of every matrix the step multiplies by, scales
 * included). The KV cache's reads and the norms' are left out of that count (at a window of 256 they are about 1%
 * of a 418M model's weights);</li>
 * <li>prompt processing: a prompt of {@code window} tokens into an empty cache, in batches of
 * {@value #PROMPT_BATCH} tokens per pass (as JMH's {@code PromptBenchmark} does), in prompt tokens/s.</li>
 * </ul>
 */
final class EndToEndBench {
    private EndToEndBench() {
    }

    /**
     * @param bandwidth       read bandwidth measured just before and after the decode, the higher, bytes/s
     * @param profile         the ops of a second timed pass, or null when not asked for; their times add two clock
     *                        reads per op, so tokens/s comes from a pass without them
     * @param profiledTokens  tokens of that pass
     * @param profiledSeconds its wall time
     */
    record Result(String backend, String description, String model, double tokensPerSecond, long weightBytesPerToken,
                  double promptTokensPerSecond, double bandwidth, double rooflineTokensPerSecond,
                  List<OpProfile.Op> profile, long profiledTokens, double profiledSeconds) {
        String label() {
            return backend + ": decode " + model;
        }
    }

    /**
     * Measures read bandwidth (this machine's varies from minute to minute, so the roofline is taken in the same
     * minute; before the model opens, whose worker threads would compete, and again after the timed decode, the
     * higher of the two: StreamRead#ofRun), then loads the model, decodes the tokens that bring the ops called
     * once a layer to the JIT's optimizing compiler ({@link WarmUp#callsToC2}), warms up for {@code seconds} and
     * until the JIT is done ({@link WarmUp}: the JIT compiles the decoder's ops; half of that
     * left decode 10-20% slower) and decodes for {@code seconds}; then prompts, warmed up alike and timed for
     * {@code seconds} (at least one prompt each; the batch kernels compile late: stories260K's q4_0 GGUF took
     * prompts at 1,700 tokens/s after 1.5 s, 36,000 after 6).
     */
    static Result measure(Path model, String backend, int threads, int window, double seconds, boolean profile)
            throws IOException, InterruptedException {
        double before = StreamRead.besideRun(threads, seconds);
        OpProfile[] ops = new OpProfile[1];
        try (Model m = Model.open(model, ModelOptions.defaults().withBackend(backend).withThreads(threads),
                b -> ops[0] = new OpProfile(b));
             Session session = m.newSession(new SessionOptions(Math.min(window, m.config().contextLength()),
                     PROMPT_BATCH))) {
            Greedy decode = new Greedy(session);
            // One counted token for the weight bytes a token reads, before the warm-up, not after it: switching the
            // profile on or off traps in OpProfile's compiled matmul (a branch it had never taken) and sends it back
            // to be compiled again, and a timed pass right after that took 21-65% longer a token than the profiled
            // pass after it in 5 of 9 runs (ternary 418M); counted first, never more than 3% longer in 6 runs.
            ops[0].start();
            decode.run(0);
            long bytesPerToken = ops[0].weightBytes();
            ops[0].stop();
            // The ops called once a layer reach C2 after WarmUp.callsToC2 calls (625 tokens of an 8-layer model,
            // 6-9 s here), later than the rate looks settled; their compiling, and recompiling after the traps that
            // followed (one per store site into an interface-typed array; those sites are gone since), then fell in
            // the timed pass: the first model a JVM timed decoded at 80-92 tokens/s where the same model timed after
            // it decoded at 99-106 (418M W4A8, native). So half again as many tokens come first, and untilSettled
            // sees the JIT's work after them.
            decode.tokens(Math.ceilDiv(3 * WarmUp.callsToC2(), 2L * m.config().nLayers()));
            WarmUp.untilSettled(nanos(seconds), nanos(seconds), nanos -> tokensPerSecond(decode::run, nanos));
            double tokensPerSecond = tokensPerSecond(decode::run, nanos(seconds));
            // The model's workers are idle here: the stream's untimed first pass outlasts their spinning.
            double bandwidth = StreamRead.ofRun(before, StreamRead.besideRun(threads, seconds));
            List<OpProfile.Op> profiled = null;
            long profiledTokens = 0;
            double profiledSeconds = 0;
            if (profile) {
                ops[0].start(); // the same trap as above, so a warm-up with clocks before the counted pass
                WarmUp.untilSettled(0, nanos(seconds), nanos -> tokensPerSecond(decode::run, nanos));
                ops[0].start();
                long p0 = System.nanoTime();
                profiledTokens = decode.run(seconds);
                profiledSeconds = (System.nanoTime() - p0) / 1e9;
                ops[0].stop();
                profiled = ops[0].ops();
            }
            Prompts prompts = new Prompts(session, m.config().vocabSize());
            WarmUp.untilSettled(nanos(seconds), nanos(seconds), nanos -> tokensPerSecond(prompts::run, nanos));
            double promptTokensPerSecond = tokensPerSecond(prompts::run, nanos(seconds));
            return new Result(backend, m.backendName(), model.getFileName().toString(), tokensPerSecond, bytesPerToken,
                    promptTokensPerSecond, bandwidth, bandwidth / bytesPerToken, profiled, profiledTokens,
                    profiledSeconds);
        }
    }

    private static long nanos(double seconds) {
        return (long) (seconds * 1e9);
    }

    /** Tokens per second of {@code run} (given seconds, returns the tokens it processed) over at least {@code nanos}. */
    private static double tokensPerSecond(DoubleToLongFunction run, long nanos) {
        long t0 = System.nanoTime();
        long tokens = run.applyAsLong(nanos / 1e9);
        return tokens / ((System.nanoTime() - t0) / 1e9);
    }

    /** Tokens per pass through the model while processing a prompt. */
    static final int PROMPT_BATCH = 32;

    /** A whole window's worth of prompt into an empty cache, again and again; ids spread over the vocabulary. */
    private static final class Prompts {
        private final Session session;
        private final int[] prompt;

        Prompts(Session session, int vocab) {
            this.session = session;
            this.prompt = new int[session.contextLength()];
            int spread = Math.min(500, vocab - 1);
            for (int i = 0; i < prompt.length; i++) {
                prompt[i] = 1 + (i * 37) % spread;
            }
        }

        /** Processes prompts for {@code seconds} (at least one); returns the prompt tokens processed. */
        long run(double seconds) {
            long end = System.nanoTime() + (long) (seconds * 1e9);
            long tokens = 0;
            do {
                session.reset();
                session.append(prompt);
                tokens += prompt.length;
            } while (System.nanoTime() < end);
            return tokens;
        }
    }

    /** One token at a time, each the argmax of the last logits, from BOS again whenever the window is full. */
    private static final class Greedy {
        private final Session session;
        private int token = 1;

        Greedy(Session session) {
            this.session = session;
        }

        /** Decodes for {@code seconds} (at least one token); returns the tokens decoded. */
        long run(double seconds) {
            long end = System.nanoTime() + (long) (seconds * 1e9);
            long tokens = 0;
            do {
                next();
                tokens++;
            } while (System.nanoTime() < end);
            return tokens;
        }

        /** Decodes {@code count} tokens. */
        void tokens(long count) {
            for (long i = 0; i < count; i++) {
                next();
            }
        }

        private void next() {
            if (session.position() >= session.contextLength()) {
                session.reset();
                token = 1;
            }
            float[] logits = session.append(token);
            token = Sampler.argmax(logits, logits.length);
        }
    }
}
