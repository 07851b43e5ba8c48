package io.bitplane.runtime;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A prompt's own log-probabilities (OpenAI's echo with logprobs, what evaluation harnesses score texts with): the
 * same as scoring the prompt, whether the prompt runs in one session or beside other sequences in the scheduler.
 */
class PromptLogprobsTest extends OnStories260K {
    /** Longer than a session's batch of 32 and than a scheduler step's columns, so it is fed in several parts. */
    static final String LONG = "Lily and Ben went to the park. They played with a ball and a kite. ".repeat(4);

    static int[] encode(String text) {
        return model.tokenizer().encode(text, true, false);
    }

    static GenerationRequest scored(String prompt, int maxTokens, int top) {
        return GenerationRequest.of(prompt, maxTokens).withPromptLogprobs(top);
    }

    /** Every prompt token after BOS, in order, with the log-probability that scoring the prompt gives it. */
    static void assertScores(int[] prompt, List<TokenLogprobs> scores, int top) {
        assertEquals(prompt.length - 1, scores.size());
        List<Double> want = new ArrayList<>();
        try (Session s = model.newSession()) {
            s.predict(prompt, (index, logits, offset) ->
                    want.add(Session.logSoftmax(logits, offset, model.config().vocabSize(), prompt[index + 1])));
        }
        for (int i = 0; i < scores.size(); i++) {
            TokenLogprobs t = scores.get(i);
            assertEquals(prompt[i + 1], t.token(), "token " + (i + 1));
            assertEquals(want.get(i), t.logprob(), 1e-3, "token " + (i + 1));
            assertEquals(top, t.topTokens().length);
            assertTrue(top == 0 || t.topLogprobs()[0] >= t.logprob() - 1e-6f, "the likeliest is at least as likely");
        }
    }

    @Test
    void aScoredPromptWithNoTokensToGenerateIsScoredWhole() {
        int[] prompt = encode(LONG);
        GenerationResult r;
        try (Session s = model.newSession()) {
            r = s.generate(scored(LONG, 0, 2), t -> { });
        }
        assertScores(prompt, r.promptLogprobs(), 2);
        assertEquals(0, r.generatedTokens());
        assertEquals("", r.text());
        assertEquals(FinishReason.LENGTH, r.finishReason());
        double nll = -r.promptLogprobs().stream().mapToDouble(TokenLogprobs::logprob).sum();
        try (Session s = model.newSession()) {
            assertEquals(s.score(prompt).negativeLogLikelihood(), nll, 1e-2);
        }
    }

    /** A prompt the cache holds from the last turn is computed again (the cache keeps no logits) and then goes on. */
    @Test
    void aScoredPromptIsComputedAgainAndItsContinuationIsUnchanged() {
        String expected = BatchSchedulerTest.alone(model, GenerationRequest.of("Once upon a time", 12));
        try (Session s = model.newSession()) {
            s.generate(GenerationRequest.of("Once upon a time", 5), t -> { });
            GenerationResult r = s.generate(scored("Once upon a time", 12, 0), t -> { });
            assertEquals(0, r.cachedPromptTokens());
            assertEquals(expected, r.text());
            assertScores(encode("Once upon a time"), r.promptLogprobs(), 0);
        }
        try (Session s = model.newSession()) {
            assertTrue(s.generate(GenerationRequest.of("Once upon a time", 12), t -> { }).promptLogprobs().isEmpty());
        }
    }

    /**
     * In the scheduler, scored prompts (one fed over several steps) run beside sequences that do not score theirs:
     * every request gets what it gets alone, and the scores are the prompt's.
     */
    @Test
    void theSchedulerScoresPromptsBesideOtherSequences() throws Exception {
        List<GenerationRequest> requests = new ArrayList<>(BatchSchedulerTest.mixedRequests().subList(0, 4));
        requests.add(1, scored(LONG, 0, 3));
        requests.add(3, scored("The cat sat on the mat", 15, 1));
        List<String> expected = requests.stream().map(r -> BatchSchedulerTest.alone(model, r)).toList();
        try (BatchScheduler scheduler = new BatchScheduler(model, new BatchScheduler.Options(3, 16, 0))) {
            List<BatchSchedulerTest.Collector> collectors = new ArrayList<>();
            for (GenerationRequest r : requests) {
                BatchSchedulerTest.Collector c = new BatchSchedulerTest.Collector();
                scheduler.submit(r, c);
                collectors.add(c);
            }
            for (int i = 0; i < requests.size(); i++) {
                GenerationResult r = collectors.get(i).result.get(60, TimeUnit.SECONDS);
                assertEquals(expected.get(i), r.text(), "request " + i);
                if (requests.get(i).promptLogprobs() >= 0) {
                    assertScores(encode(requests.get(i).prompt()), r.promptLogprobs(),
                            requests.get(i).promptLogprobs());
                } else {
                    assertTrue(r.promptLogprobs().isEmpty());
                }
            }
        }
    }
}
