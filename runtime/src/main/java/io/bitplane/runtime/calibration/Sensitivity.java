package io.bitplane.runtime.calibration;

import io.bitplane.format.EncodedTensor;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.ModelOptions;
import io.bitplane.runtime.Perplexity;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * How much quantizing some tensors damages the model, label-free (as in myQASR and PD-Quant): the mean KL
 * divergence of the quantized model's next-token distribution from the unquantized model's, over every position of
 * some paragraphs. The reference distributions are computed once and kept in memory ({@code tokens x vocab}
 * floats), so each measurement runs only the quantized model.
 */
public final class Sensitivity {
    private final Path model;
    private final ModelOptions options;
    private final List<int[]> sequences;
    private final List<float[]> referenceLogProbs;
    private final int vocab;
    private final int threads;
    private final double referenceNll;
    private final long positions;

    private Sensitivity(Path model, ModelOptions options, List<int[]> sequences, List<float[]> referenceLogProbs,
                        int vocab, int threads, double referenceNll, long positions) {
        this.model = model;
        this.options = options;
        this.sequences = sequences;
        this.referenceLogProbs = referenceLogProbs;
        this.vocab = vocab;
        this.threads = threads;
        this.referenceNll = referenceNll;
        this.positions = positions;
    }

    /** Runs the unquantized model at {@code model} on {@code paragraphs} and keeps its distributions. */
    public static Sensitivity reference(Path model, ModelOptions options, List<String> paragraphs, int threads)
            throws IOException, InterruptedException {
        try (Model m = Model.open(model, options)) {
            int vocab = m.config().vocabSize();
            List<int[]> sequences = new ArrayList<>();
            for (String p : paragraphs) {
                sequences.add(Perplexity.tokens(m, p, Math.min(Perplexity.MAX_TOKENS, m.config().contextLength())));
            }
            float[][] logProbs = new float[sequences.size()][];
            double[] nll = new double[sequences.size()];
            Perplexity.onSessions(m, sequences.size(), threads, (s, i) -> {
                int[] seq = sequences.get(i);
                float[] out = new float[Math.max(0, seq.length - 1) * vocab];
                s.predict(seq, (index, logits, offset) -> {
                    logSoftmax(logits, offset, vocab, out, index * vocab);
                    nll[i] -= out[index * vocab + seq[index + 1]];
                });
                logProbs[i] = out;
            });
            long positions = 0;
            double total = 0;
            for (int i = 0; i < sequences.size(); i++) {
                positions += Math.max(0, sequences.get(i).length - 1);
                total += nll[i];
            }
            return new Sensitivity(model, options, sequences, List.of(logProbs), vocab, threads,
                    total / Math.max(1, positions), positions);
        }
    }

    /** The unquantized model's mean negative log-likelihood per position of these paragraphs. */
    public double referenceNll() {
        return referenceNll;
    }

    public long positions() {
        return positions;
    }

    /** Mean KL(reference || model with {@code substitutes}) per position, in nats. */
    public double divergence(Map<String, EncodedTensor> substitutes) throws IOException, InterruptedException {
        try (Model m = ModelVariant.open(model, options, substitutes)) {
            double[] kl = new double[sequences.size()];
            Perplexity.onSessions(m, sequences.size(), threads, (s, i) -> {
                float[] ref = referenceLogProbs.get(i);
                float[] q = new float[vocab];
                s.predict(sequences.get(i), (index, logits, offset) -> {
                    logSoftmax(logits, offset, vocab, q, 0);
                    double sum = 0;
                    int base = index * vocab;
                    for (int v = 0; v < vocab; v++) {
                        double lp = ref[base + v];
                        sum += Math.exp(lp) * (lp - q[v]);
                    }
                    kl[i] += Math.max(0, sum);
                });
            });
            double total = 0;
            for (double k : kl) {
                total += k;
            }
            return total / Math.max(1, positions);
        }
    }

    private static void logSoftmax(float[] logits, int offset, int n, float[] out, int outOffset) {
        double log = Perplexity.logSumExp(logits, offset, n);
        for (int i = 0; i < n; i++) {
            out[outOffset + i] = (float) (logits[offset + i] - log);
        }
    }
}
