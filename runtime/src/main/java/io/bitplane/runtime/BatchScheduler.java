package io.bitplane.runtime;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * Continuous batching: many generations share each decoding step. A single scheduler thread owns a fixed set of
 * sessions (one KV cache per active sequence); every step it admits waiting requests into free sessions (running
 * their prompts), then runs the next token of every active sequence as one batch through the model (one batched
 * matrix product per layer), samples each with its own sampler, and hands the events to each request's listener.
 * A finished or cancelled sequence leaves at once and its session serves the next request. A sequence's tokens do
 * not depend on what runs beside it (the decoder keeps columns independent).
 *
 * <p>Listeners are called on the scheduler thread and must not block (hand the event to another thread).
 */
public final class BatchScheduler implements AutoCloseable {

    /** Receives one request's events, on the scheduler thread. */
    public interface Listener {
        void token(GeneratedToken token);

        void done(GenerationResult result);

        /**
         * The request could not run: {@code IllegalArgumentException} for a bad request (the prompt does not fit),
         * {@code CancellationException} when it was cancelled while queued or the scheduler shut down, anything
         * else for an internal error.
         */
        void failed(Exception error);
    }

    /** Thrown by {@link #submit} when the wait queue is full. */
    public static final class QueueFullException extends RuntimeException {
        QueueFullException(int limit) {
            super("the wait queue is full (" + limit + " requests)");
        }
    }

    /** A submitted request; {@link #cancel()} ends it within one step, queued or running. */
    public static final class Ticket {
        final GenerationRequest request;
        final Listener listener;
        volatile boolean cancelled;

        Ticket(GenerationRequest request, Listener listener) {
            this.request = request;
            this.listener = listener;
        }

        public void cancel() {
            cancelled = true;
        }
    }

    /**
     * @param maxSequences  sequences decoded together (each holds a KV cache of {@code contextLength})
     * @param maxQueue      requests that may wait for a free sequence; more are refused
     * @param contextLength positions per sequence (0: the model's maximum)
     */
    public record Options(int maxSequences, int maxQueue, int contextLength) {
        public Options {
            if (maxSequences < 1 || maxQueue < 1 || contextLength < 0) {
                throw new IllegalArgumentException("max sequences and queue must be >= 1, context >= 0");
            }
        }
    }

    /** A running sequence; {@code input} holds what it must still feed the model (a prompt may take steps). */
    private static final class Active {
        final Ticket ticket;
        final Session session;
        final Generation generation;
        int[] input;
        int fed;
        /** Prompt columns this sequence has in the step being built. */
        int prefixColumns;
        /** What failed this sequence alone (its rule refused to go on, say), or null. */
        RuntimeException failure;

        Active(Ticket ticket, Session session, Generation generation) {
            this.ticket = ticket;
            this.session = session;
            this.generation = generation;
        }
    }

    /** Token columns one step may carry: every sequence's next token plus prompt tokens of new sequences. */
    private final int maxColumns;

    private final Model model;
    private final int vocab;
    private final Decoder batchDecoder;
    private final ArrayDeque<Session> free = new ArrayDeque<>();
    private final List<Active> active = new ArrayList<>();
    private final BlockingQueue<Ticket> queue;
    private final int maxQueue;
    private final Thread thread;
    private volatile boolean accepting = true;
    private volatile boolean stopping;
    private volatile boolean cancelAll;
    private volatile int activeCount;
    private final float[] logits;

    public BatchScheduler(Model model, Options options) {
        this.model = model;
        this.vocab = model.config().vocabSize();
        this.maxQueue = options.maxQueue();
        this.queue = new ArrayBlockingQueue<>(options.maxQueue());
        for (int i = 0; i < options.maxSequences(); i++) {
            free.add(model.newSession(new SessionOptions(options.contextLength(), 32)));
        }
        this.maxColumns = Math.max(16, 2 * options.maxSequences());
        // Logits for every column: a request that scores its prompt needs them for its prompt's columns.
        this.batchDecoder = model.newDecoder(maxColumns, maxColumns);
        this.logits = new float[maxColumns * vocab];
        this.thread = Thread.ofPlatform().name("bitplane-scheduler").daemon().start(this::run);
    }

    /** Queues a request; throws {@link QueueFullException} when the queue is full, or once closed. */
    public Ticket submit(GenerationRequest request, Listener listener) {
        Ticket t = new Ticket(request, listener);
        if (!accepting) {
            throw new IllegalStateException("the scheduler is shutting down");
        }
        if (!queue.offer(t)) {
            throw new QueueFullException(maxQueue);
        }
        return t;
    }

    /** Requests waiting for a sequence. */
    public int queued() {
        return queue.size();
    }

    /** Sequences decoding now. */
    public int active() {
        return activeCount;
    }

    private void run() {
        try {
            while (!stopping || !active.isEmpty()) {
                admit();
                if (active.isEmpty()) {
                    Ticket t = stopping ? null : queue.poll(50, TimeUnit.MILLISECONDS);
                    if (t != null) {
                        start(t);
                    }
                    continue;
                }
                step();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (RuntimeException | Error e) {
            for (Active a : active) {
                a.ticket.listener.failed(new IllegalStateException("decoding failed: " + e, e));
            }
            active.clear();
            throw e;
        } finally {
            activeCount = 0;
            Ticket t;
            while ((t = queue.poll()) != null) {
                t.listener.failed(new java.util.concurrent.CancellationException("the scheduler has shut down"));
            }
        }
    }

    private void admit() {
        while (!free.isEmpty() && !stopping) {
            Ticket t = queue.poll();
            if (t == null) {
                return;
            }
            start(t);
        }
    }

    private void start(Ticket t) {
        if (t.cancelled) {
            t.listener.failed(new java.util.concurrent.CancellationException("cancelled while queued"));
            return;
        }
        Session s = sessionFor(t.request);
        try {
            active.add(new Active(t, s, s.start(t.request)));
            activeCount = active.size();
        } catch (IllegalArgumentException e) {
            free.push(s);
            t.listener.failed(e);
        }
    }

    /**
     * The free session for a request, taken from the free ones: the one whose cache holds the most of its prompt
     * when that is at least half of it (a conversation's next turn finds the session that ran its last one), else
     * the least recently used (an unused one while any is left), so that a new conversation, which shares with the
     * others only a template's opening, does not evict a warm one. llama.cpp's server picks its slots so.
     */
    private Session sessionFor(GenerationRequest request) {
        int[] prompt = request.promptTokens();
        Session best = free.peekLast();
        if (prompt != null) {
            int bestShared = 0;
            for (Session s : free) {
                int shared = s.sharedPrefix(prompt);
                if (shared > bestShared && 2 * shared >= prompt.length) {
                    best = s;
                    bestShared = shared;
                }
            }
        }
        free.remove(best);
        return best;
    }

    /**
     * One decoding step, one batch through the model: the next token of every running sequence, plus as many
     * prompt tokens of newly admitted sequences as fit {@link #maxColumns} (a long prompt continues next step), so
     * a new request never stalls the others. A sequence's columns are adjacent and in order; the column that
     * completes a sequence's input comes last in the batch, where the decoder computes logits.
     */
    private void step() {
        List<Active> finals = new ArrayList<>(active.size());
        int[] tokens = new int[maxColumns];
        int[] positions = new int[maxColumns];
        KvCache[] caches = new KvCache[maxColumns];
        Active[] prefixOwner = new Active[maxColumns];
        boolean scoring = false;
        for (Active a : active) {
            if (a.ticket.cancelled || cancelAll) {
                a.session.cancel();
            }
            if (a.input == null) {
                a.input = a.generation.nextInput();
                a.fed = 0;
            }
            if (a.input != null) {
                finals.add(a);
                scoring |= a.generation.scoresPromptRows();
            }
        }
        // Prompt tokens before each sequence's last input token, while room is left for every final column. Those
        // of sequences that score their prompt come last, from column scoredFrom: the decoder gives logits to the
        // last columns of a batch only (sorted only when there are some: a decoding step rarely has any).
        if (scoring) {
            finals.sort(java.util.Comparator.comparing(a -> a.generation.scoresPromptRows()));
        }
        int n = 0;
        int budget = maxColumns - finals.size();
        int scoredFrom = -1;
        List<Active> ready = new ArrayList<>(finals.size());
        for (Active a : finals) {
            int before = a.input.length - 1 - a.fed;
            int take = Math.min(before, budget - n);
            if (take > 0 && scoredFrom < 0 && a.generation.scoresPromptRows()) {
                scoredFrom = n;
            }
            for (int i = 0; i < take; i++) {
                tokens[n] = a.input[a.fed + i];
                positions[n] = a.session.position() + i;
                caches[n] = a.session.cache;
                prefixOwner[n] = a;
                n++;
            }
            a.prefixColumns = take;
            a.fed += take;
            if (a.fed == a.input.length - 1) {
                ready.add(a);
            }
        }
        int prefix = n;
        if (scoredFrom < 0) {
            scoredFrom = prefix;
        }
        for (Active a : ready) {
            tokens[n] = a.input[a.fed];
            positions[n] = a.session.position() + a.prefixColumns;
            caches[n] = a.session.cache;
            n++;
        }
        if (n > 0) {
            batchDecoder.forward(tokens, positions, caches, n, n - scoredFrom, logits);
            for (int c = 0; c < prefix; c++) {
                prefixOwner[c].session.appendedByBatch(tokens[c]);
                if (c >= scoredFrom) {
                    prefixOwner[c].generation.acceptPromptRow(logits, (c - scoredFrom) * vocab);
                }
            }
            for (int b = 0; b < ready.size(); b++) {
                Active a = ready.get(b);
                a.session.appendedByBatch(tokens[prefix + b]);
                a.input = null;
                try {
                    a.generation.accept(logits, (prefix - scoredFrom + b) * vocab);
                } catch (RuntimeException e) {  // this sequence's own (a grammar too ambiguous): it alone fails
                    a.failure = e;
                }
            }
        }
        for (int i = active.size() - 1; i >= 0; i--) {
            Active a = active.get(i);
            if (a.failure != null) {
                active.remove(i);
                free.push(a.session);
                a.ticket.listener.failed(a.failure);
                continue;
            }
            GeneratedToken e = a.generation.takeEvent();
            if (e != null) {
                a.ticket.listener.token(e);
            }
            if (a.generation.finished()) {
                active.remove(i);
                free.push(a.session);  // its cache kept: the conversation's next request may start from it
                a.ticket.listener.done(a.generation.result());
            }
        }
        activeCount = active.size();
    }

    /**
     * Stops taking requests, lets running ones go on for up to {@code grace} and then cancels them (their
     * listeners get a CANCELLED result), fails the queued ones, and closes the sessions.
     */
    public void close(java.time.Duration grace) {
        accepting = false;
        stopping = true;
        try {
            thread.join(Math.max(1, grace.toMillis()));
            if (thread.isAlive()) {
                // Cancel what still runs; each ends at its next step.
                cancelAll = true;
                thread.join(30_000);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (Session s : free) {
            s.close();
        }
    }

    @Override
    public void close() {
        close(java.time.Duration.ofSeconds(30));
    }
}
