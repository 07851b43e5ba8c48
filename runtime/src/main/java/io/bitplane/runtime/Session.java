package io.bitplane.runtime;

import java.util.Arrays;
import java.util.function.Consumer;

/**
 * One conversation with a model: its own KV cache, so sessions never disturb each other. A session is used by one
 * thread at a time; {@link #cancel()} may be called from any thread and ends the running generation or scoring
 * at the next token.
 */
public final class Session implements AutoCloseable {
    private final Model model;
    private final Decoder decoder;
    final KvCache cache;
    private final int vocab;
    private int[] tokens;
    private int position;
    private float[] logits;
    private volatile boolean cancelled;
    private boolean closed;

    Session(Model model, Decoder decoder, KvCache cache) {
        this.model = model;
        this.decoder = decoder;
        this.cache = cache;
        this.vocab = model.config().vocabSize();
        this.tokens = new int[cache.capacity];
        this.logits = new float[decoder.maxBatch * vocab];
    }

    public Model model() {
        return model;
    }

    /** Positions the KV cache holds. */
    public int contextLength() {
        return cache.capacity;
    }

    /** Tokens in the cache now. */
    public int position() {
        return position;
    }

    /** Forgets everything in the cache (and any earlier cancellation). */
    public void reset() {
        position = 0;
        cancelled = false;
    }

    /** Ends the running generation or scoring at the next token, from any thread. */
    public void cancel() {
        cancelled = true;
    }

    boolean isCancelled() {
        return cancelled;
    }

    /** Bytes of the KV cache and scratch buffers of this session. */
    public long allocatedBytes() {
        return decoder.allocatedBytes() + cache.bytes(model.config());
    }

    /**
     * Appends tokens to the cache (in batches) and returns the logits after the last one. Throws, naming the
     * token, for ids outside the vocabulary, and when the context would overflow.
     */
    public float[] append(int... newTokens) {
        return Arrays.copyOf(appendWithoutCopy(newTokens), vocab);
    }

    /**
     * {@link #append}, returning this session's own logits array (the last token's logits first), valid until the
     * next call: a generation copies them once into its own array, which the sampler may change.
     */
    float[] appendWithoutCopy(int... newTokens) {
        feed(newTokens, null);
        return logits;
    }

    /**
     * {@link #appendWithoutCopy}, handing over the logits after every token (the last's too), in order: each
     * {@code rows.accept(i, logits, offset)} call's array is valid during the call.
     */
    void appendWithRows(int[] newTokens, Predictions rows) {
        feed(newTokens, rows);
    }

    /**
     * Appends tokens in batches, recording them; the logits of every token go to {@code rows}, or, when it is null,
     * only the last token's are computed (into {@link #logits}).
     */
    private void feed(int[] newTokens, Predictions rows) {
        checkAppend(newTokens);
        for (int off = 0; off < newTokens.length; off += decoder.maxBatch) {
            int n = Math.min(decoder.maxBatch, newTokens.length - off);
            boolean last = off + n == newTokens.length;
            decoder.forward(newTokens, off, n, cache, position, rows != null ? n : last ? 1 : 0, logits);
            System.arraycopy(newTokens, off, tokens, position, n);
            position += n;
            for (int b = 0; rows != null && b < n; b++) {
                rows.accept(off + b, logits, b * vocab);
            }
        }
    }

    private void checkAppend(int[] newTokens) {
        checkOpen();
        if (newTokens.length == 0) {
            throw new IllegalArgumentException("no tokens to append");
        }
        checkTokens(newTokens);
        if (position + newTokens.length > cache.capacity) {
            throw new IllegalArgumentException(newTokens.length + " tokens after " + position
                    + " do not fit the context of " + cache.capacity + " tokens");
        }
    }

    /** The logits after the last appended token (a copy). */
    public float[] logits() {
        return Arrays.copyOf(logits, vocab);
    }

    /**
     * Starts a generation; iterate it to run it token by token. What the cache already holds of the prompt (the
     * longest run of its first tokens that the cache holds in the same places: a conversation's earlier turns, a
     * shared system prompt) is kept, not computed again, as llama.cpp's prompt cache does: a prompt that extends
     * the last generation's prompt and output costs only its new tokens. The outcome is the same as from an empty
     * cache, within the rounding of a batched against a one-token-at-a-time forward pass.
     */
    public Generation start(GenerationRequest request) {
        checkOpen();
        cancelled = false;
        return new Generation(this, request);
    }

    /** How many first tokens of {@code prompt} the cache holds, short of its last (whose logits are needed). */
    int sharedPrefix(int[] prompt) {
        int limit = Math.min(position, prompt.length - 1);
        int p = 0;
        while (p < limit && tokens[p] == prompt[p]) {
            p++;
        }
        return p;
    }

    /**
     * Keeps the cache's {@link #sharedPrefix} with {@code prompt}, at most {@code limit} tokens of it, forgetting what
     * follows; returns its length.
     */
    int keepPrefix(int[] prompt, int limit) {
        position = Math.min(limit, sharedPrefix(prompt));
        return position;
    }

    /** Runs a whole generation, handing each step to {@code listener} as it is produced. */
    public GenerationResult generate(GenerationRequest request, Consumer<GeneratedToken> listener) {
        Generation g = start(request);
        while (g.hasNext()) {
            listener.accept(g.next());
        }
        return g.result();
    }

    /** Scores {@code text} encoded with BOS: the log-likelihood of every token after BOS. */
    public Score score(String text) {
        return score(model.tokenizer().encode(text, true, false));
    }

    /** Scores a token sequence from an empty cache (it must fit the context). */
    public Score score(int[] sequence) {
        double[] nll = {0};
        predict(sequence, (index, logits, offset) ->
                nll[0] -= logSoftmax(logits, offset, vocab, sequence[index + 1]));
        return new Score(nll[0], Math.max(0, sequence.length - 1));
    }

    /** Receives the logits that predict token {@code index + 1}: {@code logits[offset .. offset + vocab)}. */
    @FunctionalInterface
    public interface Predictions {
        void accept(int index, float[] logits, int offset);
    }

    /**
     * Runs a token sequence from an empty cache (it must fit the context), in batches, and hands over the logits
     * after every token but the last, in order.
     */
    public void predict(int[] sequence, Predictions predictions) {
        checkOpen();
        reset();
        if (sequence.length > cache.capacity) {
            throw new IllegalArgumentException(sequence.length + " tokens do not fit the context of "
                    + cache.capacity);
        }
        checkTokens(sequence);
        for (int off = 0; off < sequence.length - 1 && !cancelled; off += decoder.maxBatch) {
            int n = Math.min(decoder.maxBatch, sequence.length - 1 - off);
            decoder.forward(sequence, off, n, cache, position, n, logits);
            System.arraycopy(sequence, off, tokens, position, n);  // what the cache holds, for a later start()
            position += n;
            for (int b = 0; b < n; b++) {
                predictions.accept(off + b, logits, b * vocab);
            }
        }
        if (cancelled) {
            throw new java.util.concurrent.CancellationException("scoring cancelled");
        }
    }

    /**
     * The embedding of a token sequence, from an empty cache (it must fit the context): its hidden states after the
     * final norm, pooled, scaled to unit length (as OpenAI's and llama.cpp's are).
     */
    public float[] embed(int[] sequence, Pooling pooling) {
        checkOpen();
        reset();
        if (sequence.length == 0) {
            throw new IllegalArgumentException("nothing to embed");
        }
        checkAppend(sequence);
        int dim = model.config().dim();
        float[] rows = new float[decoder.maxBatch * dim];
        double[] sum = new double[dim];
        for (int off = 0; off < sequence.length && !cancelled; off += decoder.maxBatch) {
            int n = Math.min(decoder.maxBatch, sequence.length - off);
            boolean last = off + n == sequence.length;
            int wanted = pooling == Pooling.MEAN ? n : last ? 1 : 0;
            decoder.hidden(sequence, off, n, cache, position, wanted, rows);
            System.arraycopy(sequence, off, tokens, position, n);
            position += n;
            for (int r = 0; r < wanted * dim; r++) {
                sum[r % dim] += rows[r];
            }
        }
        if (cancelled) {
            throw new java.util.concurrent.CancellationException("embedding cancelled");
        }
        double norm = 0;
        for (double v : sum) {
            norm += v * v;
        }
        norm = Math.sqrt(norm);
        float[] out = new float[dim];
        for (int i = 0; i < dim; i++) {
            out[i] = norm == 0 ? 0 : (float) (sum[i] / norm);
        }
        return out;
    }

    static double logSoftmax(float[] logits, int offset, int n, int target) {
        return logits[offset + target] - Perplexity.logSumExp(logits, offset, n);
    }

    /** Records a token that a batch step over several sessions ran through this session's cache. */
    void appendedByBatch(int token) {
        tokens[position++] = token;
    }

    int[] history() {
        return tokens;
    }

    private void checkTokens(int[] ids) {
        checkTokens(ids, vocab, "token id");
    }

    /** Every id must name a token of the vocabulary; the message names the first that does not ({@code what}). */
    static void checkTokens(int[] ids, int vocab, String what) {
        for (int t : ids) {
            if (t < 0 || t >= vocab) {
                throw new IllegalArgumentException(what + " " + t + " is outside the vocabulary (0.." + (vocab - 1)
                        + ")");
            }
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("session is closed");
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            model.closed(this);
        }
    }
}
