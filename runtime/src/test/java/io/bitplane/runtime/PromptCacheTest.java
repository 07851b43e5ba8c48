package io.bitplane.runtime;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A generation keeps what its session's cache holds of its prompt (Session.start), and the batch scheduler sends a
 * request to the session holding most of it: a conversation's next turn computes only its new tokens, and decodes
 * as it would from an empty cache (the first token's log-probabilities compared with a fresh session's).
 */
class PromptCacheTest extends OnStories260K {
    static int[] opening;

    @BeforeAll
    static void encodeOpening() {
        opening = model.tokenizer().encode("Once upon a time", true, false);
    }

    /** The first generated token and its log-probability, from a fresh session. */
    static GeneratedToken fresh(int[] prompt) {
        List<GeneratedToken> events = new ArrayList<>();
        try (Session s = model.newSession()) {
            s.generate(request(prompt, 1), events::add);
        }
        return events.get(0);
    }

    static GenerationRequest request(int[] prompt, int maxTokens) {
        return GenerationRequest.of("", maxTokens).withPromptTokens(prompt).withLogprobs(0);
    }

    static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    static void assertSameFirstToken(int[] prompt, GeneratedToken got) {
        GeneratedToken want = fresh(prompt);
        assertEquals(want.id(), got.id());
        assertEquals(want.logprobs().logprob(), got.logprobs().logprob(), 1e-4);
    }

    @Test
    void aPromptExtendingTheLastTurnComputesOnlyItsNewTokens() {
        try (Session s = model.newSession()) {
            List<GeneratedToken> first = new ArrayList<>();
            GenerationResult r1 = s.generate(request(opening, 12), first::add);
            assertEquals(0, r1.cachedPromptTokens());
            int[] reply = first.stream().filter(e -> e.id() >= 0).mapToInt(GeneratedToken::id).toArray();
            // The cache holds the prompt and every reply token but the last, which was never fed back.
            int[] next = concat(concat(opening, reply), model.tokenizer().encode(" Then", false, false));
            List<GeneratedToken> second = new ArrayList<>();
            GenerationResult r2 = s.generate(request(next, 3), second::add);
            assertEquals(opening.length + reply.length - 1, r2.cachedPromptTokens());
            assertSameFirstToken(next, second.get(0));
            // A prompt that differs from its second token on keeps only the first (BOS).
            int[] other = model.tokenizer().encode("The dog", true, false);
            List<GeneratedToken> third = new ArrayList<>();
            assertEquals(1, s.generate(request(other, 2), third::add).cachedPromptTokens());
            assertSameFirstToken(other, third.get(0));
            // The same prompt again keeps all but its last token, whose logits are needed.
            assertEquals(other.length - 1, s.generate(request(other, 2), e -> { }).cachedPromptTokens());
        }
    }

    /** Scoring writes the cache too: a generation after it keeps what the scored sequence shares with its prompt. */
    @Test
    void aGenerationAfterScoringKeepsTheScoredTokens() {
        int[] story = model.tokenizer().encode("Once upon a time there was a little girl named Lily.", true, false);
        try (Session s = model.newSession()) {
            s.score(story);
            int[] prompt = concat(story, model.tokenizer().encode(" She", false, false));
            List<GeneratedToken> events = new ArrayList<>();
            // predict() runs every token but the last through the cache
            assertEquals(story.length - 1, s.generate(request(prompt, 1), events::add).cachedPromptTokens());
            assertSameFirstToken(prompt, events.get(0));
        }
    }

    /**
     * Among free sessions, the one that ran a conversation's last turn takes its next; a new conversation, which
     * shares only BOS with it, goes to an unused session instead of evicting it.
     */
    @Test
    void theSchedulerSendsATurnToTheSessionHoldingItsConversation() throws Exception {
        try (BatchScheduler scheduler = new BatchScheduler(model, new BatchScheduler.Options(2, 8, 0))) {
            int[] other = model.tokenizer().encode("The dog", true, false);
            assertEquals(0, run(scheduler, opening, 6).result.get(60, TimeUnit.SECONDS).cachedPromptTokens());
            assertEquals(0, run(scheduler, other, 6).result.get(60, TimeUnit.SECONDS).cachedPromptTokens());
            int[] next = concat(opening, model.tokenizer().encode(" there", false, false));
            BatchSchedulerTest.Collector c = run(scheduler, next, 2);
            assertEquals(opening.length, c.result.get(60, TimeUnit.SECONDS).cachedPromptTokens());
            assertSameFirstToken(next, c.events.get(0));
        }
    }

    static BatchSchedulerTest.Collector run(BatchScheduler scheduler, int[] prompt, int maxTokens) {
        BatchSchedulerTest.Collector c = new BatchSchedulerTest.Collector();
        scheduler.submit(request(prompt, maxTokens), c);
        return c;
    }
}
