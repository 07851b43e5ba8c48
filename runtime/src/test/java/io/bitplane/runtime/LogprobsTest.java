package io.bitplane.runtime;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Each generated token's log-probability and its most likely alternatives, as OpenAI's logprobs report them. */
class LogprobsTest extends OnStories260K {

    /** Against a log-softmax in double and a full sort, on logits with ties, at an offset inside a larger array. */
    @Test
    void logSoftmaxAndTheTopTokensMatchABruteForceReading() {
        Random rnd = new Random(5);
        for (int round = 0; round < 200; round++) {
            int vocab = 1 + rnd.nextInt(300);
            int offset = rnd.nextInt(7);
            float[] all = new float[offset + vocab + 3];
            for (int i = 0; i < all.length; i++) {
                all[i] = rnd.nextInt(4) == 0 ? 1.5f : (float) rnd.nextGaussian() * 4;  // many ties at 1.5
            }
            int token = rnd.nextInt(vocab);
            int top = rnd.nextInt(GenerationRequest.MAX_LOGPROBS + 1);
            TokenLogprobs lp = TokenLogprobs.of(all, offset, vocab, token, top);
            double z = 0;
            for (int i = 0; i < vocab; i++) {
                z += Math.exp(all[offset + i]);
            }
            assertEquals(all[offset + token] - Math.log(z), lp.logprob(), 1e-4);
            Integer[] order = IntStream.range(0, vocab).boxed().sorted(Comparator
                    .comparingDouble((Integer i) -> -all[offset + i]).thenComparingInt(i -> i)).toArray(Integer[]::new);
            int k = Math.min(top, vocab);
            assertArrayEquals(Arrays.stream(order).limit(k).mapToInt(i -> i).toArray(), lp.topTokens());
            for (int j = 0; j < k; j++) {
                assertEquals(all[offset + order[j]] - Math.log(z), lp.topLogprobs()[j], 1e-4);
            }
        }
    }

    /**
     * In a generation, greedy picks each step's most likely token, and its log-probability is the first step's
     * log-softmax of the session's own logits; a sampled generation reports the model's, not the sampler's, values.
     */
    @Test
    void generatedTokensCarryTheModelsLogprobs() {
        List<GeneratedToken> events = new ArrayList<>();
        try (Session s = model.newSession()) {
            s.generate(GenerationRequest.of("Once upon a time", 20).withLogprobs(3), events::add);
        }
        for (GeneratedToken e : events) {
            if (e.id() == GeneratedToken.TRAILING) {
                assertNull(e.logprobs());
                continue;
            }
            assertEquals(e.id(), e.logprobs().token());
            assertEquals(e.id(), e.logprobs().topTokens()[0], "greedy takes the most likely");
            assertEquals(3, e.logprobs().topTokens().length);
        }
        float[] first;
        try (Session s = model.newSession()) {
            first = s.append(model.tokenizer().encode("Once upon a time", true, false)).clone();
        }
        TokenLogprobs want = TokenLogprobs.of(first, 0, first.length, events.get(0).id(), 3);
        assertEquals(want.logprob(), events.get(0).logprobs().logprob(), 1e-5);
        List<GeneratedToken> hot = new ArrayList<>();
        try (Session s = model.newSession()) {  // a repetition penalty changes the logits the sampler sees
            s.generate(GenerationRequest.of("Once upon a time", 1).withLogprobs(5)
                    .withSampler(new SamplerSettings(0.5f, 0, 1, 0, 10f, 64, 3)), hot::add);
        }
        TokenLogprobs raw = TokenLogprobs.of(first, 0, first.length, hot.get(0).id(), 5);
        assertEquals(raw.logprob(), hot.get(0).logprobs().logprob(), 1e-5, "the sampler does not change them");
        assertArrayEquals(raw.topTokens(), hot.get(0).logprobs().topTokens());
        assertArrayEquals(raw.topLogprobs(), hot.get(0).logprobs().topLogprobs(), 1e-5f);
    }

    @Test
    void withoutAskingThereAreNoneAndTooManyAreRefused() {
        try (Session s = model.newSession()) {
            s.generate(GenerationRequest.of("Once", 3), e -> assertNull(e.logprobs()));
        }
        assertThrows(IllegalArgumentException.class, () -> GenerationRequest.of("x", 1).withLogprobs(21));
    }
}
