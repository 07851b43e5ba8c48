package io.bitplane.runtime;

import io.bitplane.runtime.tokenizer.TextDecoder;
import io.bitplane.runtime.tokenizer.Tokenizer;

import java.util.Iterator;
import java.util.NoSuchElementException;

/**
 * A generation in progress, run one token per {@link #next()} (no threads of its own): process the prompt, then
 * sample, release text, feed the token back. Ends on end-of-sequence, a stop string, the token limit, the context's
 * end or cancellation; {@link #result()} then says which.
 */
public final class Generation implements Iterator<GeneratedToken> {
    private final Session session;
    private final GenerationRequest request;
    private final Tokenizer tokenizer;
    private final Sampler sampler;
    private final TextDecoder decoder = new TextDecoder();
    private final int[] prompt;
    private final int cachedPromptTokens;
    /** The rule the output follows, or null. */
    private final TokenConstraint constraint;
    private final StringBuilder released = new StringBuilder();
    private final StringBuilder pending = new StringBuilder();
    private int generated;
    private int lastToken = -1;
    private boolean started;
    private FinishReason finish;
    private boolean trailingSent;
    private long startNanos;
    private long promptNanos;
    private long firstTokenNanos;
    private long endNanos;
    private final int maxStopLength;
    /** The last token as the next step's input, and the logits the sampler may change: reused every step. */
    private final int[] nextToken = new int[1];
    /** The scored prompt tokens' log-probabilities, when the request asks for them. */
    private final java.util.List<TokenLogprobs> promptLogprobs = new java.util.ArrayList<>();
    private final float[] logits;

    Generation(Session session, GenerationRequest request) {
        this.session = session;
        this.request = request;
        this.tokenizer = session.model().tokenizer();
        this.sampler = new Sampler(request.sampler());
        int[] given = request.promptTokens();
        this.prompt = given != null ? given : tokenizer.encode(request.prompt(), request.addBos(), false);
        // Checked here: the batch scheduler feeds these tokens to the decoder without Session.append and its check.
        Session.checkTokens(prompt, session.model().config().vocabSize(), "prompt token id");
        Session.checkTokens(request.sampler().logitBias().keySet().stream().mapToInt(Integer::intValue).toArray(),
                session.model().config().vocabSize(), "logit bias token id");
        this.maxStopLength = request.stop().stream().mapToInt(String::length).max().orElse(0);
        this.logits = new float[session.model().config().vocabSize()];
        if (prompt.length == 0) {
            throw new IllegalArgumentException("empty prompt without BOS: nothing to condition on");
        }
        if (prompt.length >= session.contextLength()) {
            throw new IllegalArgumentException("the prompt has " + prompt.length + " tokens; the context holds "
                    + session.contextLength() + " and needs room for at least one more");
        }
        this.constraint = request.constraint() == null ? null : request.constraint().get();
        // A scored prompt is computed whole: the cache holds no logits for what it kept.
        this.cachedPromptTokens = request.promptLogprobs() >= 0 ? session.keepPrefix(prompt, 0)
                : session.keepPrefix(prompt, prompt.length);
    }

    /** Prompt tokens the session's cache already held (not computed again; see {@link Session#start}). */
    public int cachedPromptTokens() {
        return cachedPromptTokens;
    }

    public int promptTokens() {
        return prompt.length;
    }

    @Override
    public boolean hasNext() {
        if (finish == null) {
            step();
        }
        return pendingEvent != null;
    }

    private GeneratedToken pendingEvent;

    @Override
    public GeneratedToken next() {
        if (!hasNext()) {
            throw new NoSuchElementException("the generation has finished: " + finish);
        }
        GeneratedToken e = pendingEvent;
        pendingEvent = null;
        return e;
    }

    /** Produces the next event into {@link #pendingEvent}, or finishes. */
    private void step() {
        int[] input = nextInput();
        if (input == null) {
            return;
        }
        if (scoresPromptRows()) {
            session.appendWithRows(input, (index, all, offset) -> {
                if (index < input.length - 1) {
                    acceptPromptRow(all, offset);
                } else {
                    accept(all, offset);
                }
            });
        } else {
            accept(session.appendWithoutCopy(input), 0);
        }
    }

    /**
     * Whether the prompt tokens being fed now need the logits after each of them (the request scores its prompt):
     * the caller hands them, in order, to {@link #acceptPromptRow}, all but the last input token's.
     */
    boolean scoresPromptRows() {
        return request.promptLogprobs() >= 0 && promptNanos == 0;  // (set once the prompt's last token ran)
    }

    /** The logits after prompt token {@code promptLogprobs.size()}, which score the token after it. */
    void acceptPromptRow(float[] all, int offset) {
        int scored = promptLogprobs.size() + 1;
        promptLogprobs.add(TokenLogprobs.of(all, offset, logits.length, prompt[scored], request.promptLogprobs()));
    }

    /**
     * The tokens the model must take next (the prompt first, then the last sampled token), or null when no model
     * step is due: an event is waiting, or the generation has finished (which it may do here: token limit,
     * cancellation). The caller appends them to this generation's session, or to a batch step over several
     * sessions, and hands the logits after them to {@link #accept}.
     */
    int[] nextInput() {
        if (pendingEvent != null || finish != null) {
            return null;
        }
        if (generated >= request.maxTokens() && (started || request.promptLogprobs() < 0)) {
            finish(FinishReason.LENGTH);  // (a prompt to score is computed even when no token is asked for)
            return null;
        }
        if (session.isCancelled()) {
            finish(FinishReason.CANCELLED);
            return null;
        }
        if (!started) {
            started = true;
            startNanos = System.nanoTime();
            return cachedPromptTokens == 0 ? prompt
                    : java.util.Arrays.copyOfRange(prompt, cachedPromptTokens, prompt.length);
        }
        nextToken[0] = lastToken;
        return nextToken;
    }

    /**
     * Samples from the logits after {@link #nextInput()}'s tokens ({@code all[offset ..]}, which this copies, since
     * the sampler changes them), releases text, and may finish. Log-probabilities, when asked for, are read from
     * {@code all}: the model's own, untouched by the sampler's settings.
     */
    void accept(float[] all, int offset) {
        if (promptNanos == 0) {
            promptNanos = Math.max(1, System.nanoTime() - startNanos);
        }
        if (generated >= request.maxTokens()) {
            finish(FinishReason.LENGTH);  // the prompt was only to be scored
            return;
        }
        System.arraycopy(all, offset, logits, 0, logits.length);
        int previous = lastToken < 0 ? prompt[prompt.length - 1] : lastToken;
        int token = sampler.sample(logits, session.model().config().vocabSize(), session.history(),
                session.position());
        if (constraint != null && !permitted(previous, token)) {
            // Sample again among the tokens the rule allows, from the model's logits (the sampler changed the copy).
            System.arraycopy(all, offset, logits, 0, logits.length);
            java.util.BitSet allowed = allowedTokens(previous);
            int likeliest = -1;
            for (int t = 0; t < logits.length; t++) {
                if (!allowed.get(t)) {
                    logits[t] = Float.NEGATIVE_INFINITY;
                } else if (likeliest < 0 || logits[t] > logits[likeliest]) {
                    likeliest = t;
                }
            }
            if (likeliest < 0) {
                finish(FinishReason.STOP);  // no token continues the text (a vocabulary that cannot write it)
                return;
            }
            token = sampler.sample(logits, session.model().config().vocabSize(), session.history(),
                    session.position());
            if (!permitted(previous, token)) {
                token = likeliest;  // the allowed tokens' probabilities all rounded to 0: take the likeliest
            }
        }
        if (firstTokenNanos == 0) {
            firstTokenNanos = System.nanoTime();
        }
        if (tokenizer.isEndOfSequence(token)) {
            finish(FinishReason.STOP);
            return;
        }
        generated++;
        lastToken = token;
        byte[] piece = tokenizer.piece(previous, token);
        if (constraint != null) {
            constraint.accept(piece);
        }
        pending.append(decoder.append(piece));
        TokenLogprobs logprobs = request.logprobs() < 0 ? null
                : TokenLogprobs.of(all, offset, logits.length, token, request.logprobs());
        pendingEvent = new GeneratedToken(token, releaseText(), logprobs);
        if (constraint != null && constraint.atEnd()) {
            finish(FinishReason.STOP);
        }
        if (finish == null && session.position() >= session.contextLength()) {
            // No room to feed this token back: the context is full.
            finish(FinishReason.LENGTH);
        }
    }

    /**
     * Whether the rule lets {@code token} come next: end of sequence once the text is complete, else a token whose
     * bytes continue it (one that writes nothing, a control token, would let the text stall).
     */
    private boolean permitted(int previous, int token) {
        if (tokenizer.isEndOfSequence(token)) {
            return constraint.complete();
        }
        byte[] piece = tokenizer.piece(previous, token);
        return piece.length > 0 && constraint.allows(piece);
    }

    /**
     * The tokens the rule lets come next: every token of the vocabulary tried, unless this state of the rule (as
     * {@link TokenConstraint#state} tells it, with whether the last token was BOS, after which a piece may write
     * otherwise) was met before in this generation. A grammar's loops ({@code [a-z]+}, a string's characters) meet
     * the same states again and again: on a 32,000-token vocabulary held to {@code [a-z ]+}, 330 tokens/s against
     * 235 trying every token each step.
     */
    private java.util.BitSet allowedTokens(int previous) {
        Object state = constraint.state();
        Object key = state == null ? null : java.util.List.of(state, previous == tokenizer.bos());
        java.util.BitSet allowed = key == null ? null : allowedByState.get(key);
        if (allowed == null) {
            allowed = new java.util.BitSet(logits.length);
            for (int t = 0; t < logits.length; t++) {
                if (permitted(previous, t)) {
                    allowed.set(t);
                }
            }
            if (key != null) {
                allowedByState.put(key, allowed);
            }
        }
        return allowed;
    }

    /** What {@link #allowedTokens} found, by state: the last {@value #REMEMBERED_STATES} states met. */
    private final java.util.Map<Object, java.util.BitSet> allowedByState = new java.util.LinkedHashMap<>(16, 0.75f,
            true) {
        @Override
        protected boolean removeEldestEntry(java.util.Map.Entry<Object, java.util.BitSet> eldest) {
            return size() > REMEMBERED_STATES;
        }
    };
    private static final int REMEMBERED_STATES = 64;

    /** The event {@link #accept} produced, if any, taken (so the next step can run). */
    GeneratedToken takeEvent() {
        GeneratedToken e = pendingEvent;
        pendingEvent = null;
        return e;
    }

    boolean finished() {
        return finish != null;
    }

    /**
     * Moves text from pending to released, holding back any tail that could begin a stop string; a complete
     * stop string ends the generation, and it and what follows are dropped.
     */
    private String releaseText() {
        if (request.stop().isEmpty()) {
            String out = pending.toString();
            pending.setLength(0);
            released.append(out);
            return out;
        }
        // Only the released text's last (longest stop - 1) characters can take part in a match.
        int before = released.length();
        int from = Math.max(0, before - maxStopLength + 1);
        String window = released.substring(from) + pending;
        for (String stop : request.stop()) {
            int at = window.indexOf(stop);
            if (at >= 0) {
                String out = window.substring(before - from, Math.max(before - from, at));
                released.append(out);
                pending.setLength(0);
                trailingSent = true; // what follows a stop string is dropped, not released
                finish(FinishReason.STOP);
                return out;
            }
        }
        int hold = 0;
        for (String stop : request.stop()) {
            for (int len = Math.min(stop.length() - 1, pending.length()); len > hold; len--) {
                if (stop.startsWith(pending.substring(pending.length() - len))) {
                    hold = len;
                    break;
                }
            }
        }
        String out = pending.substring(0, pending.length() - hold);
        pending.delete(0, pending.length() - hold);
        released.append(out);
        return out;
    }

    private void finish(FinishReason reason) {
        if (finish == null) {
            finish = reason;
            endNanos = System.nanoTime();
        }
        if (!trailingSent) {
            trailingSent = true;
            String tail = pending + decoder.flush();
            pending.setLength(0);
            if (!tail.isEmpty()) {
                released.append(tail);
                if (pendingEvent == null) {
                    pendingEvent = new GeneratedToken(GeneratedToken.TRAILING, tail);
                } else {
                    pendingEvent = new GeneratedToken(pendingEvent.id(), pendingEvent.text() + tail,
                            pendingEvent.logprobs());
                }
            }
        }
    }

    /** The outcome; valid once {@link #hasNext()} has returned false. */
    public GenerationResult result() {
        if (finish == null) {
            throw new IllegalStateException("the generation is still running");
        }
        long genNanos = firstTokenNanos == 0 ? 0 : endNanos - firstTokenNanos;
        return new GenerationResult(released.toString(), prompt.length, generated, finish, promptNanos, genNanos,
                cachedPromptTokens, promptLogprobs);
    }
}
