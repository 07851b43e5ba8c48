package io.bitplane.runtime.calibration;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.Dequantizer;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.ModelConfig;
import io.bitplane.format.quant.QuantSpec;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadFactory;

/**
 * Label-free distillation of a quantized model into its own float original (quantization-aware fine-tuning in
 * the style of BitDistiller and EfficientQAT's end-to-end step, with LSQ scales): the quantized model (the
 * student) runs the calibration paragraphs beside the float model (the teacher), and its codes, scales and norm
 * gains are moved by Adam to lower the KL divergence of its next-token distributions from the teacher's, at every
 * position. No label is read: the teacher's distribution is the target, as in the sensitivity measure.
 *
 * <p>Started from the calibrated (GPTQ) tensors, step 0's student is exactly that model, so distillation starts
 * where GPTQ ends. Matrices not quantized with integer codes (float, INT4_ASYM, lossless copies) stay fixed.
 *
 * <p>Determinism: each step's paragraphs are split into {@link #SHARDS} fixed shards whose gradients are summed
 * in shard order, so the result does not depend on the thread count; exponentials, logarithms and cosines are the
 * same in every JIT tier ({@code FloatRows.exp}, {@code StrictMath}), so a run repeats bit for bit.
 */
public final class Distillation {
    private static final int SHARDS = 4;
    private static final io.bitplane.kernels.FloatRows ROWS = io.bitplane.kernels.FloatRows.get();

    /**
     * @param steps      Adam steps (0: off)
     * @param batch      paragraphs per step
     * @param rate       step size, as a fraction of each tensor's mean absolute scale (norms: of their mean
     *                   absolute gain); decays along a cosine to zero. 0.02 was chosen on held-out paragraphs
     *                   2000:2500 of the TinyStories validation text (stories260K, 200 steps): ternary 38.1 / 22.9
     *                   / 18.2 / 18.7 and INT4 7.51 / 7.48 / 7.40 / 7.52 at 0.005 / 0.01 / 0.02 / 0.04
     * @param tuneNorms  also learn the RMSNorm gains (kept float in the file)
     * @param seed       order of the paragraphs
     * @param required   asked for by name: where it cannot run (too little heap), fail rather than skip it
     */
    public record Options(int steps, int batch, double rate, boolean tuneNorms, long seed, boolean required) {
        public static final Options DEFAULT = new Options(200, 16, 0.02, true, 1, false);

        public Options {
            if (steps < 0 || batch < 1 || !(rate > 0)) {
                throw new IllegalArgumentException("distillation needs steps >= 0, batch >= 1 and rate > 0");
            }
        }
    }

    /**
     * Heap bytes a distillation of this model needs, with sequences up to {@code longest} tokens: teacher and
     * student weights with their transposes, latents, two Adam moments, the summed gradients and one gradient
     * per shard (about 11 floats per weight), plus each shard's activations and distributions. The teacher's
     * kept distributions are not counted: they are kept only where they fit.
     */
    public static long heapBytes(ModelConfig c, int longest) {
        long weights = 0;
        for (int m = 0; m < TrainingWeights.matrixCount(c); m++) {
            weights += (long) TrainingWeights.rows(c, m) * TrainingWeights.cols(c, m);
        }
        weights += (2L * c.nLayers() + 1) * c.dim();
        long perShard = TrainingPass.floatsFor(c, longest) + 2L * longest * c.vocabSize();
        return 4 * (11 * weights + SHARDS * perShard);
    }

    /** Hears each step: its number, the steps in all and the mean KL (nats per position) of its paragraphs. */
    public interface Listener {
        void step(int step, int steps, double meanKl);
    }

    /** What distillation changed: learned tensors by name and, with norm tuning, the new norm gains. */
    public record Result(Map<String, EncodedTensor> tensors, Map<String, float[]> norms, double firstKl,
                         double lastKl) {
    }

    private final ModelConfig c;
    private final TrainingWeights teacher;
    private final TrainingWeights student;
    private final LearnedQuantization[] learned;
    private final Options options;

    /**
     * @param floats    the float values of every matrix and norm by tensor name (the teacher, and the student's
     *                  fixed matrices and starting norms)
     * @param fixed     the tensors the converted file will hold for matrices that are not learned (float, INT4_ASYM),
     *                  by name; absent ones (lossless copies) use {@code floats}
     * @param quantized the starting tensors of the learned matrices, by name
     * @param specs     every matrix's encoding in the converted file, by name
     * @param activations the converted file's activations for its matrices
     */
    Distillation(ModelConfig c, Map<String, float[]> floats, Map<String, EncodedTensor> fixed,
                 Map<String, EncodedTensor> quantized, Map<String, QuantSpec> specs, ActivationHint activations,
                 Options options) {
        this.c = c;
        this.options = options;
        teacher = TrainingWeights.fromFloats(c, floats);
        student = TrainingWeights.fromFloats(c, floats);
        learned = new LearnedQuantization[TrainingWeights.matrixCount(c)];
        student.rounding = activations;
        for (int m = 0; m < learned.length; m++) {
            String name = TrainingWeights.matrixName(c, m);
            EncodedTensor q = quantized.get(name);
            EncodedTensor f = fixed.get(name);
            if (q != null) {
                learned[m] = LearnedQuantization.of(q, specs.get(name));
                learned[m].weights(student.matrices[m]);
                student.transpose(m);
            } else if (f != null) {
                student.set(m, Dequantizer.toFloats(f.spec(), f.segment()));
            }
            // The kernels quantize the inputs of quantized matrices marked for INT8 activations, and binarize those
            // of binary matrices marked for binary activations; the others multiply floats.
            QuantSpec spec = specs.get(name);
            student.roundedInputs[m] = spec != null
                    && (activations == ActivationHint.INT8 && spec.encoding().quantized
                    || activations == ActivationHint.BINARY && spec.encoding() == io.bitplane.format.Encoding.BINARY);
        }
    }

    /**
     * Distills over {@code sequences} (token ids, BOS first; shorter than 2 tokens are skipped) on
     * {@code threads} threads.
     */
    Result run(List<int[]> sequences, int threads, Listener listener) throws InterruptedException {
        List<int[]> usable = sequences.stream().filter(s -> s.length >= 2).toList();
        if (usable.isEmpty()) {
            throw new IllegalArgumentException("distillation needs calibration paragraphs of 2 tokens or more");
        }
        int count = learned.length;
        TrainingWeights total = TrainingWeights.gradients(c);
        TrainingWeights[] shardGrads = new TrainingWeights[SHARDS];
        TrainingPass[] passes = new TrainingPass[SHARDS];
        for (int s = 0; s < SHARDS; s++) {
            shardGrads[s] = TrainingWeights.gradients(c);
            passes[s] = new TrainingPass(c);
        }
        Adam[] latentAdam = new Adam[count];
        Adam[] scaleAdam = new Adam[count];
        float[] rates = new float[count];
        for (int m = 0; m < count; m++) {
            if (learned[m] != null) {
                latentAdam[m] = new Adam(learned[m].latent.length);
                scaleAdam[m] = new Adam(learned[m].scales.length);
                rates[m] = meanAbs(learned[m].scales);
            }
        }
        Adam[] normAdam = new Adam[student.norms.length];
        float[] normRates = new float[student.norms.length];
        for (int n = 0; n < normAdam.length; n++) {
            normAdam[n] = new Adam(c.dim());
            normRates[n] = meanAbs(student.norms[n]);
        }
        // The teacher's distributions are computed once per paragraph and kept (4 bytes per token and vocabulary
        // entry) where they take at most a quarter of the heap, else recomputed at each use. A step's paragraphs
        // are distinct, so no two threads fill the same entry.
        Target[] targets = new Target[usable.size()];
        long targetBytes = 4L * c.vocabSize() * usable.stream().mapToLong(s -> s.length - 1).sum();
        boolean keepTargets = targetBytes < Runtime.getRuntime().maxMemory() / 4;
        List<Integer> order = new ArrayList<>();
        Random random = new Random(options.seed());
        int cursor = usable.size();
        double firstKl = Double.NaN;
        double lastKl = Double.NaN;
        ExecutorService pool = Executors.newFixedThreadPool(Math.max(1, Math.min(threads, SHARDS)), daemons());
        try {
            for (int step = 1; step <= options.steps(); step++) {
                // The step's paragraphs: the next ones of a shuffled pass over the text, reshuffled each pass.
                List<Integer> batch = new ArrayList<>();
                while (batch.size() < Math.min(options.batch(), usable.size())) {
                    if (cursor == usable.size()) {
                        order.clear();
                        for (int i = 0; i < usable.size(); i++) {
                            order.add(i);
                        }
                        java.util.Collections.shuffle(order, random);
                        cursor = 0;
                    }
                    batch.add(order.get(cursor++));
                }
                int positions = batch.stream().mapToInt(i -> usable.get(i).length - 1).sum();
                double[] kl = new double[SHARDS];
                List<Future<?>> work = new ArrayList<>();
                for (int s = 0; s < SHARDS; s++) {
                    int shard = s;
                    work.add(pool.submit(() -> {
                        shardGrads[shard].clear();
                        for (int i = shard; i < batch.size(); i += SHARDS) {
                            int index = batch.get(i);
                            Target target = targets[index];
                            if (target == null) {
                                target = target(passes[shard], usable.get(index));
                                if (keepTargets) {
                                    targets[index] = target;
                                }
                            }
                            kl[shard] += distill(passes[shard], usable.get(index), target, 1.0f / positions,
                                    shardGrads[shard]);
                        }
                        return null;
                    }));
                }
                for (Future<?> f : work) {
                    try {
                        f.get();
                    } catch (java.util.concurrent.ExecutionException e) {
                        throw new IllegalStateException("distillation failed: " + e.getCause(), e.getCause());
                    }
                }
                total.clear();
                double stepKl = 0;
                for (int s = 0; s < SHARDS; s++) {
                    total.add(shardGrads[s]);
                    stepKl += kl[s];
                }
                stepKl /= positions;
                if (step == 1) {
                    firstKl = stepKl;
                }
                lastKl = stepKl;
                double progress = (step - 1) / (double) options.steps();
                float schedule = (float) (options.rate() * 0.5 * (1 + StrictMath.cos(Math.PI * progress)));
                for (int m = 0; m < count; m++) {
                    LearnedQuantization lq = learned[m];
                    if (lq == null) {
                        continue;
                    }
                    // The summed weight gradient is not needed after this, so it takes the latents' gradient.
                    float[] dLatent = total.matrices[m];
                    float[] dScales = new float[lq.scales.length];
                    lq.gradients(dLatent, dLatent, dScales);
                    latentAdam[m].update(lq.latent, dLatent, schedule * rates[m], step);
                    scaleAdam[m].update(lq.scales, dScales, schedule * rates[m], step);
                    lq.weights(student.matrices[m]);
                    student.transpose(m);
                }
                if (options.tuneNorms()) {
                    for (int n = 0; n < normAdam.length; n++) {
                        normAdam[n].update(student.norms[n], total.norms[n], schedule * normRates[n], step);
                    }
                }
                listener.step(step, options.steps(), stepKl);
            }
        } finally {
            pool.shutdownNow();
        }
        Map<String, EncodedTensor> tensors = new HashMap<>();
        for (LearnedQuantization lq : learned) {
            if (lq != null) {
                tensors.put(lq.name, lq.encoded());
            }
        }
        Map<String, float[]> norms = new HashMap<>();
        if (options.tuneNorms()) {
            for (int n = 0; n < student.norms.length; n++) {
                norms.put(TrainingWeights.normName(c, n), student.norms[n].clone());
            }
        }
        return new Result(tensors, norms, firstKl, lastKl);
    }

    /**
     * The teacher's next-token distributions of one paragraph ([positions][vocab]) and, per position, the sum of
     * {@code p log p} (so that the KL needs no teacher logarithms later). Computed on first use and kept.
     */
    private record Target(float[] probs, double[] plogp) {
    }

    private Target target(TrainingPass pass, int[] tokens) {
        int vocab = c.vocabSize();
        int positions = tokens.length - 1;
        pass.forward(teacher, tokens);
        float[] logits = pass.logits();
        float[] probs = new float[positions * vocab];
        double[] plogp = new double[positions];
        for (int t = 0; t < positions; t++) {
            float log = softmax(logits, t * vocab, vocab, probs);
            double sum = 0;
            for (int i = 0; i < vocab; i++) {
                float p = probs[t * vocab + i];
                if (p > 0) {
                    sum += p * (double) (logits[t * vocab + i] - log);
                }
            }
            plogp[t] = sum;
        }
        return new Target(probs, plogp);
    }

    /**
     * One paragraph: the student's distributions against the teacher's, their KL summed over positions
     * (returned), and the student's gradients of {@code weight} times that sum added to {@code grads}.
     */
    private double distill(TrainingPass pass, int[] tokens, Target target, float weight, TrainingWeights grads) {
        int vocab = c.vocabSize();
        int positions = tokens.length - 1;
        pass.forward(student, tokens);
        float[] logits = pass.logits();
        float[] dLogits = new float[positions * vocab];
        double kl = 0;
        for (int t = 0; t < positions; t++) {
            int o = t * vocab;
            float log = softmax(logits, o, vocab, dLogits);
            // KL = sum p log p - sum p log q; the gradient of the logits is q - p.
            double cross = 0;
            for (int i = 0; i < vocab; i++) {
                float p = target.probs[o + i];
                cross += p * (double) (logits[o + i] - log);
                dLogits[o + i] = weight * (dLogits[o + i] - p);
            }
            kl += target.plogp[t] - cross;
        }
        pass.backward(student, dLogits, grads);
        return kl;
    }

    /**
     * Writes the softmax of {@code logits[offset .. offset+n)} into {@code out} at the same offset; returns its
     * log-normalizer. Exponentials through {@link FloatRows#exp} and {@code StrictMath.log}, so that a run repeats
     * bit for bit however far the JIT has got.
     */
    private static float softmax(float[] logits, int offset, int n, float[] out) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, logits[offset + i]);
        }
        for (int i = 0; i < n; i++) {
            out[offset + i] = logits[offset + i] - max;
        }
        ROWS.exp(out, offset, n);
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += out[offset + i];
        }
        float inv = (float) (1 / sum);
        for (int i = 0; i < n; i++) {
            out[offset + i] *= inv;
        }
        return (float) (max + StrictMath.log(sum));
    }

    private static float meanAbs(float[] a) {
        double sum = 0;
        for (float v : a) {
            sum += Math.abs(v);
        }
        return a.length == 0 ? 0 : (float) (sum / a.length);
    }

    private static ThreadFactory daemons() {
        return r -> {
            Thread t = new Thread(r, "bitplane-distill");
            t.setDaemon(true);
            return t;
        };
    }
}
