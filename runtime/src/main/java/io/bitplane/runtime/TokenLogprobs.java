package io.bitplane.runtime;

/**
 * The model's log-probabilities at one generation step, as OpenAI's {@code logprobs} report them: the log-softmax of
 * the raw logits (what the model predicts, before temperature or any other sampler setting) for the token taken and
 * for the {@code topTokens.length} most likely tokens, most likely first (the lower id first on ties).
 */
public record TokenLogprobs(int token, float logprob, int[] topTokens, float[] topLogprobs) {

    public TokenLogprobs {
        topTokens = topTokens.clone();
        topLogprobs = topLogprobs.clone();
    }

    @Override
    public int[] topTokens() {
        return topTokens.clone();
    }

    @Override
    public float[] topLogprobs() {
        return topLogprobs.clone();
    }

    /** The log-probabilities of {@code token} and of the {@code top} most likely of {@code logits[offset, +vocab)}. */
    static TokenLogprobs of(float[] logits, int offset, int vocab, int token, int top) {
        double logZ = Perplexity.logSumExp(logits, offset, vocab);
        int k = Math.min(top, vocab);
        int[] ids = new int[k];
        float[] values = new float[k];
        int kept = 0;
        for (int i = 0; i < vocab; i++) {
            float v = logits[offset + i];
            if (kept == k && (k == 0 || v <= values[k - 1])) {
                continue;  // ties keep the lower id, which came first
            }
            int at = kept < k ? kept++ : k - 1;
            while (at > 0 && values[at - 1] < v) {
                ids[at] = ids[at - 1];
                values[at] = values[at - 1];
                at--;
            }
            ids[at] = i;
            values[at] = v;
        }
        float[] logprobs = new float[k];
        for (int j = 0; j < k; j++) {
            logprobs[j] = (float) (values[j] - logZ);
        }
        return new TokenLogprobs(token, (float) (logits[offset + token] - logZ), ids, logprobs);
    }
}
