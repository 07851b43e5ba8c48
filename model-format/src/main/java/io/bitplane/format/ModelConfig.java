package io.bitplane.format;

/**
 * The hyper-parameters of a Llama-family decoder, as the file's metadata records them ({@code config}).
 *
 * @param tiedEmbeddings true when there is no {@code output.weight}: the classifier is {@code token_embd.weight}
 */
public record ModelConfig(int dim, int hiddenDim, int nLayers, int nHeads, int nKvHeads, int vocabSize,
                          int contextLength, float ropeTheta, float rmsNormEps, boolean tiedEmbeddings) {

    public int headSize() {
        return dim / nHeads;
    }

    public int kvDim() {
        return headSize() * nKvHeads;
    }

    /** More layers than any model has; a count above it is damage (a 32-byte llama2.c file asked for 33 million). */
    public static final int MAX_LAYERS = 4096;

    /** What is inconsistent in these numbers, or null. */
    public String problem() {
        if (dim <= 0 || hiddenDim <= 0 || nLayers <= 0 || nHeads <= 0 || nKvHeads <= 0 || vocabSize <= 0
                || contextLength <= 0) {
            return "every size must be positive: " + this;
        }
        if (nLayers > MAX_LAYERS) {  // importers list a tensor name per layer before they check any size
            return "n_layers " + nLayers + " is more than " + MAX_LAYERS + " (the largest Llama has 126)";
        }
        if (dim % nHeads != 0) {
            return "dim " + dim + " is not a multiple of n_heads " + nHeads;
        }
        if (nHeads % nKvHeads != 0) {
            return "n_heads " + nHeads + " is not a multiple of n_kv_heads " + nKvHeads;
        }
        if (headSize() % 2 != 0) {
            return "head size " + headSize() + " is odd (rotary embeddings rotate pairs)";
        }
        if (!(ropeTheta > 0) || !(rmsNormEps > 0)) {
            return "rope_theta and rms_norm_eps must be positive";
        }
        return null;
    }
}
