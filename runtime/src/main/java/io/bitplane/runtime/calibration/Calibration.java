package io.bitplane.runtime.calibration;

import io.bitplane.format.EncodedTensor;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.ModelOptions;
import io.bitplane.runtime.Perplexity;
import io.bitplane.runtime.Score;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.IntConsumer;
import java.util.function.Predicate;

/**
 * What a calibrated quantizer learns from running the model on unlabeled text: for every matrix, the second
 * moments of its inputs ({@link #hessians}). The text goes through the perplexity protocol's own path (paragraphs,
 * BOS, at most 512 tokens each), so calibration sees what evaluation sees.
 *
 * @param hessians      per tensor name, {@code H = mean_t x_t x_t^T} over the matrix's inputs ([cols][cols])
 * @param tokens        the tokens the model ran
 * @param perplexity    the model's own perplexity on the calibration text (a by-product, for reports)
 */
public record Calibration(Map<String, double[]> hessians, long tokens, double perplexity) {

    /**
     * Runs {@code model} (use the unquantized one) on {@code paragraphs} with {@code threads} sessions;
     * {@code progress} hears each finished paragraph's index.
     */
    public static Calibration run(Path model, ModelOptions options, List<String> paragraphs, int threads,
                                  IntConsumer progress) throws IOException, InterruptedException {
        return run(model, options, Map.of(), t -> true, paragraphs, threads, progress);
    }

    /**
     * As above, with some tensors replaced ({@code substitutes}, by name: for example the layers already
     * quantized) and the statistics kept only for the tensors {@code wanted} accepts.
     */
    public static Calibration run(Path model, ModelOptions options, Map<String, EncodedTensor> substitutes,
                                  Predicate<String> wanted, List<String> paragraphs, int threads,
                                  IntConsumer progress) throws IOException, InterruptedException {
        return run(model, options, substitutes, wanted, t -> false, paragraphs, threads, progress);
    }

    /**
     * As above, skipping the matrix products {@code skipped} accepts (layers after the ones wanted; the perplexity
     * reported is then meaningless).
     */
    public static Calibration run(Path model, ModelOptions options, Map<String, EncodedTensor> substitutes,
                                  Predicate<String> wanted, Predicate<String> skipped, List<String> paragraphs,
                                  int threads, IntConsumer progress) throws IOException, InterruptedException {
        HessianCollector collector = new HessianCollector(wanted);
        try (Model m = Model.open(model, options, b -> new ObservingBackend(b, substitutes, collector, skipped))) {
            Score score = Perplexity.evaluate(m, paragraphs, threads, progress);
            return new Calibration(collector.result(), score.scoredTokens(), score.perplexity());
        }
    }
}
