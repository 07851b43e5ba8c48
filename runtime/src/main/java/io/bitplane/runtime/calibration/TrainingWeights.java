package io.bitplane.runtime.calibration;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.LlamaTensors;
import io.bitplane.format.ModelConfig;

/**
 * The float values a {@link TrainingPass} reads, or the gradients it writes, in one fixed numbering: every matrix
 * as a row-major {@code [rows][cols]} array, every norm as a vector.
 *
 * <p>Matrices: layer l's {@code attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down} are
 * {@code 7 l + 0..6}; the token embedding is {@code 7 L}; an untied output matrix is {@code 7 L + 1} (tied models
 * use the embedding as the classifier). Norms: layer l's {@code attn_norm} is {@code 2 l}, its {@code ffn_norm}
 * {@code 2 l + 1}, the output norm {@code 2 L}.
 *
 * <p>As weights, {@link #transposed} also holds each matrix as {@code [cols][rows]} (the forward products read
 * it), and {@link #roundedInputs} says which matrices see their inputs rounded per token the way {@link #rounding}
 * says, as the runtime's kernels do: INT8 for W8A8 and W4A8 matrices, signs times mean |x| for binary activations.
 */
final class TrainingWeights {
    static final int Q = 0;
    static final int K = 1;
    static final int V = 2;
    static final int O = 3;
    static final int GATE = 4;
    static final int UP = 5;
    static final int DOWN = 6;
    static final int PER_LAYER = 7;
    private static final String[] KINDS = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
            "ffn_down"};

    final ModelConfig config;
    final float[][] matrices;
    final float[][] transposed;
    final boolean[] roundedInputs;
    /** How rounded inputs are rounded: INT8 or BINARY per token. */
    ActivationHint rounding = ActivationHint.INT8;
    final float[][] norms;

    private TrainingWeights(ModelConfig c, boolean withTransposes) {
        this.config = c;
        int count = matrixCount(c);
        matrices = new float[count][];
        transposed = withTransposes ? new float[count][] : null;
        roundedInputs = new boolean[count];
        norms = new float[2 * c.nLayers() + 1][];
        for (int m = 0; m < count; m++) {
            matrices[m] = new float[rows(c, m) * cols(c, m)];
            if (withTransposes) {
                transposed[m] = new float[matrices[m].length];
            }
        }
        for (int n = 0; n < norms.length; n++) {
            norms[n] = new float[c.dim()];
        }
    }

    /** Weights for a pass (with transposes), all zero. */
    static TrainingWeights weights(ModelConfig c) {
        return new TrainingWeights(c, true);
    }

    /**
     * Weights (with transposes) from float values by tensor name; a missing tensor or a wrong length is named in
     * the error.
     */
    static TrainingWeights fromFloats(ModelConfig c, java.util.Map<String, float[]> floats) {
        TrainingWeights w = weights(c);
        for (int m = 0; m < w.matrices.length; m++) {
            w.set(m, floats.get(matrixName(c, m)));
        }
        for (int n = 0; n < w.norms.length; n++) {
            copy(floats.get(normName(c, n)), w.norms[n], normName(c, n));
        }
        return w;
    }

    /** Sets matrix {@code m} (row-major) and its transpose. */
    void set(int m, float[] values) {
        copy(values, matrices[m], matrixName(config, m));
        transpose(m);
    }

    private static void copy(float[] from, float[] to, String name) {
        if (from == null) {
            throw new IllegalArgumentException("the model has no tensor " + name);
        }
        if (from.length != to.length) {
            throw new IllegalArgumentException("tensor " + name + " has " + from.length + " values, " + to.length
                    + " expected");
        }
        System.arraycopy(from, 0, to, 0, to.length);
    }

    /** Gradient accumulators in the same numbering, all zero. */
    static TrainingWeights gradients(ModelConfig c) {
        return new TrainingWeights(c, false);
    }

    static int matrixCount(ModelConfig c) {
        return PER_LAYER * c.nLayers() + (c.tiedEmbeddings() ? 1 : 2);
    }

    static int matrix(int layer, int kind) {
        return layer * PER_LAYER + kind;
    }

    static int embedding(ModelConfig c) {
        return PER_LAYER * c.nLayers();
    }

    static int classifier(ModelConfig c) {
        return c.tiedEmbeddings() ? embedding(c) : embedding(c) + 1;
    }

    static int rows(ModelConfig c, int m) {
        if (m >= embedding(c)) {
            return c.vocabSize();
        }
        return switch (m % PER_LAYER) {
            case Q, O, DOWN -> c.dim();
            case K, V -> c.kvDim();
            default -> c.hiddenDim();
        };
    }

    static int cols(ModelConfig c, int m) {
        return m < embedding(c) && m % PER_LAYER == DOWN ? c.hiddenDim() : c.dim();
    }

    /** The file's tensor name of matrix {@code m}. */
    static String matrixName(ModelConfig c, int m) {
        if (m == embedding(c)) {
            return LlamaTensors.TOKEN_EMBD;
        }
        if (m > embedding(c)) {
            return LlamaTensors.OUTPUT;
        }
        return LlamaTensors.block(m / PER_LAYER, KINDS[m % PER_LAYER]);
    }

    /** The file's tensor name of norm {@code n}. */
    static String normName(ModelConfig c, int n) {
        if (n == 2 * c.nLayers()) {
            return LlamaTensors.OUTPUT_NORM;
        }
        return LlamaTensors.block(n / 2, n % 2 == 0 ? "attn_norm" : "ffn_norm");
    }

    /** Rewrites the transpose of matrix {@code m} from its row-major values. */
    void transpose(int m) {
        int rows = rows(config, m);
        int cols = cols(config, m);
        float[] w = matrices[m];
        float[] t = transposed[m];
        for (int r = 0; r < rows; r++) {
            for (int col = 0; col < cols; col++) {
                t[col * rows + r] = w[r * cols + col];
            }
        }
    }

    /** Sets every value to zero (gradient accumulators between steps). */
    void clear() {
        for (float[] a : matrices) {
            java.util.Arrays.fill(a, 0);
        }
        for (float[] a : norms) {
            java.util.Arrays.fill(a, 0);
        }
    }

    /** Adds {@code other}'s values to these. */
    void add(TrainingWeights other) {
        for (int m = 0; m < matrices.length; m++) {
            addInto(matrices[m], other.matrices[m]);
        }
        for (int n = 0; n < norms.length; n++) {
            addInto(norms[n], other.norms[n]);
        }
    }

    private static void addInto(float[] acc, float[] x) {
        for (int i = 0; i < acc.length; i++) {
            acc[i] += x[i];
        }
    }
}
