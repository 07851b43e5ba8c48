package io.bitplane.runtime;

import io.bitplane.format.BpmFile;
import io.bitplane.format.BpmFormatException;
import io.bitplane.format.LlamaTensors;
import io.bitplane.format.ModelConfig;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Weights;

/** The decoder's tensors, uploaded to one backend. Immutable; shared by every session of a model. */
final class LlamaWeights {
    final Weights tokenEmbedding;
    final Weights outputNorm;
    final Weights output;
    final Layer[] layers;

    /** One block's tensors; the q, k and v biases and the q and k head norms are null where the config has none. */
    record Layer(Weights attnNorm, Weights wq, Weights wk, Weights wv, Weights wo, Weights ffnNorm, Weights gate,
                 Weights up, Weights down, Weights bq, Weights bk, Weights bv, Weights qNorm, Weights kNorm) {
    }

    LlamaWeights(BpmFile file, ModelConfig c, Backend backend) throws BpmFormatException {
        tokenEmbedding = backend.upload(file.tensor(LlamaTensors.TOKEN_EMBD));
        outputNorm = backend.upload(file.tensor(LlamaTensors.OUTPUT_NORM));
        output = c.tiedEmbeddings() ? tokenEmbedding : backend.upload(file.tensor(LlamaTensors.OUTPUT));
        layers = new Layer[c.nLayers()];
        for (int l = 0; l < layers.length; l++) {
            layers[l] = new Layer(up(file, backend, l, "attn_norm"), up(file, backend, l, "attn_q"),
                    up(file, backend, l, "attn_k"), up(file, backend, l, "attn_v"),
                    up(file, backend, l, "attn_output"), up(file, backend, l, "ffn_norm"),
                    up(file, backend, l, "ffn_gate"), up(file, backend, l, "ffn_up"), up(file, backend, l, "ffn_down"),
                    bias(file, backend, c, l, "attn_q"), bias(file, backend, c, l, "attn_k"),
                    bias(file, backend, c, l, "attn_v"), c.qkNorm() ? up(file, backend, l, "attn_q_norm") : null,
                    c.qkNorm() ? up(file, backend, l, "attn_k_norm") : null);
        }
    }

    private static Weights up(BpmFile f, Backend b, int layer, String kind) throws BpmFormatException {
        return b.upload(f.tensor(LlamaTensors.block(layer, kind)));
    }

    private static Weights bias(BpmFile f, Backend b, ModelConfig c, int layer, String kind)
            throws BpmFormatException {
        return c.attentionBias() ? b.upload(f.tensor(LlamaTensors.blockBias(layer, kind))) : null;
    }
}
