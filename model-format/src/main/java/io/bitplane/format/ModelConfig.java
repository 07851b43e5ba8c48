package io.bitplane.format;

/**
 * The hyper-parameters of a Llama-family decoder, as the file's metadata records them ({@code config}).
 *
 * @param tiedEmbeddings true when there is no {@code output.weight}: the classifier is {@code token_embd.weight}
 * @param ropeFreqFactors null, or one divisor per pair of a head ({@code headSize / 2}) of each rotary frequency
 *                        {@code ropeTheta^(-2i / headSize)}: rope scaling, as GGUF's {@code rope_freqs.weight}
 *                        holds it (Llama 3.1's "llama3" scaling; linear scaling is one factor for every pair)
 * @param attentionBias   true when the q, k and v projections add a bias ({@code blk.N.attn_q.bias} ...): Qwen2
 * @param headDim         the size of a head where it is not {@code dim / nHeads} (Qwen3's), else 0
 * @param qkNorm          true when each head of q and k is RMS-normed before the rotation ({@code
 *                        blk.N.attn_q_norm.weight}, {@code attn_k_norm}): Qwen3
 */
public record ModelConfig(int dim, int hiddenDim, int nLayers, int nHeads, int nKvHeads, int vocabSize,
                          int contextLength, float ropeTheta, float rmsNormEps, boolean tiedEmbeddings,
                          float[] ropeFreqFactors, boolean attentionBias, int headDim, boolean qkNorm) {

    /** A config without rope scaling or attention biases. */
    public ModelConfig(int dim, int hiddenDim, int nLayers, int nHeads, int nKvHeads, int vocabSize,
                       int contextLength, float ropeTheta, float rmsNormEps, boolean tiedEmbeddings) {
        this(dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, contextLength, ropeTheta, rmsNormEps,
                tiedEmbeddings, null, false, 0, false);
    }

    public ModelConfig {
        ropeFreqFactors = ropeFreqFactors == null ? null : ropeFreqFactors.clone();
    }

    /** The same config with these rope frequency factors (null: none). */
    public ModelConfig withRopeFreqFactors(float[] factors) {
        return new ModelConfig(dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, contextLength, ropeTheta,
                rmsNormEps, tiedEmbeddings, factors, attentionBias, headDim, qkNorm);
    }

    /** The same config with or without biases on the q, k and v projections. */
    public ModelConfig withAttentionBias(boolean bias) {
        return new ModelConfig(dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, contextLength, ropeTheta,
                rmsNormEps, tiedEmbeddings, ropeFreqFactors, bias, headDim, qkNorm);
    }

    /** The same config with heads of this size (0: dim / nHeads, as Llama's). */
    public ModelConfig withHeadDim(int size) {
        return new ModelConfig(dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, contextLength, ropeTheta,
                rmsNormEps, tiedEmbeddings, ropeFreqFactors, attentionBias, size, qkNorm);
    }

    /** The same config with or without the RMSNorm of each head of q and k. */
    public ModelConfig withQkNorm(boolean norm) {
        return new ModelConfig(dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, contextLength, ropeTheta,
                rmsNormEps, tiedEmbeddings, ropeFreqFactors, attentionBias, headDim, norm);
    }

    @Override
    public float[] ropeFreqFactors() {
        return ropeFreqFactors == null ? null : ropeFreqFactors.clone();
    }

    // by value, factors included (a record compares arrays by identity)
    @Override
    public boolean equals(Object o) {
        return o instanceof ModelConfig c && dim == c.dim && hiddenDim == c.hiddenDim && nLayers == c.nLayers
                && nHeads == c.nHeads && nKvHeads == c.nKvHeads && vocabSize == c.vocabSize
                && contextLength == c.contextLength && Float.compare(ropeTheta, c.ropeTheta) == 0
                && Float.compare(rmsNormEps, c.rmsNormEps) == 0 && tiedEmbeddings == c.tiedEmbeddings
                && java.util.Arrays.equals(ropeFreqFactors, c.ropeFreqFactors) && attentionBias == c.attentionBias
                && headDim == c.headDim && qkNorm == c.qkNorm;
    }

    @Override
    public int hashCode() {
        return java.util.Objects.hash(dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, contextLength,
                ropeTheta, rmsNormEps, tiedEmbeddings, attentionBias, headDim, qkNorm) * 31
                + java.util.Arrays.hashCode(ropeFreqFactors);
    }

    @Override
    public String toString() {
        return "ModelConfig[dim=" + dim + ", hiddenDim=" + hiddenDim + ", nLayers=" + nLayers + ", nHeads=" + nHeads
                + ", nKvHeads=" + nKvHeads + ", vocabSize=" + vocabSize + ", contextLength=" + contextLength
                + ", ropeTheta=" + ropeTheta + ", rmsNormEps=" + rmsNormEps + ", tiedEmbeddings=" + tiedEmbeddings
                + (ropeFreqFactors == null ? "" : ", ropeFreqFactors=" + ropeFreqFactors.length + " values")
                + (attentionBias ? ", attentionBias=true" : "") + (headDim > 0 ? ", headDim=" + headDim : "")
                + (qkNorm ? ", qkNorm=true" : "") + "]";
    }

    public int headSize() {
        return headDim > 0 ? headDim : dim / nHeads;
    }

    /** The length of a token's q (and of the attention's output, attn_output's input): heads x head size. */
    public int queryDim() {
        return nHeads * headSize();
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
        if (headDim < 0 || headDim > 1 << 16) {
            return "head_dim " + headDim + " is out of range";
        }
        if (headDim == 0 && dim % nHeads != 0) {
            return "dim " + dim + " is not a multiple of n_heads " + nHeads + " (and no head_dim is given)";
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
        if (ropeFreqFactors != null) {
            if (ropeFreqFactors.length != headSize() / 2) {
                return ropeFreqFactors.length + " rope frequency factors for a head of " + headSize()
                        + " (one per pair: " + headSize() / 2 + ")";
            }
            for (float f : ropeFreqFactors) {
                if (!(f > 0) || Float.isInfinite(f)) {
                    return "rope frequency factor " + f + " is not a positive finite number";
                }
            }
        }
        return null;
    }
}
