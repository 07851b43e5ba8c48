package io.bitplane.runtime;

/**
 * Log-likelihood of a text under the model: every token after the first is scored given those before it.
 *
 * @param negativeLogLikelihood sum over scored tokens of {@code -ln p(token | previous)} (natural log)
 * @param scoredTokens          tokens scored (all but the first)
 */
public record Score(double negativeLogLikelihood, int scoredTokens) {
    public double perplexity() {
        return Math.exp(negativeLogLikelihood / scoredTokens);
    }

    public Score plus(Score o) {
        return new Score(negativeLogLikelihood + o.negativeLogLikelihood, scoredTokens + o.scoredTokens);
    }
}
