package io.bitplane.format;

import java.util.ArrayList;
import java.util.List;

/**
 * The tensors of a Llama-family decoder in GGUF naming, with the shape each must have for a config, in the order
 * Bitplane writes them (embedding, then each block, then the final norm and classifier). Importers produce these
 * names; the runtime checks a file against them.
 */
public final class LlamaTensors {
    private LlamaTensors() {
    }

    public static final String TOKEN_EMBD = "token_embd.weight";
    public static final String OUTPUT_NORM = "output_norm.weight";
    public static final String OUTPUT = "output.weight";

    /** The per-block tensor kinds, in file order. */
    public static final List<String> BLOCK_KINDS = List.of("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
            "ffn_norm", "ffn_gate", "ffn_up", "ffn_down");

    /** The block matrices that read the normed input of attention: the decoder multiplies all three by one vector. */
    public static final List<String> ATTENTION_INPUT_KINDS = List.of("attn_q", "attn_k", "attn_v");
    /** The block matrices that read the normed input of the feed-forward network. */
    public static final List<String> FFN_INPUT_KINDS = List.of("ffn_gate", "ffn_up");

    public static String block(int layer, String kind) {
        return "blk." + layer + "." + kind + ".weight";
    }

    /** The bias of a block projection ({@code attn_q}, {@code attn_k}, {@code attn_v}; Qwen2's). */
    public static String blockBias(int layer, String kind) {
        return "blk." + layer + "." + kind + ".bias";
    }

    public record Expected(String name, long[] shape) {
    }

    /**
     * A bias among {@code present} (a file's tensor names, in its own naming) that {@code expected} does not list,
     * or null: importers refuse one, since decoding without it would be wrong.
     *
     * @param naming the file's name of an expected tensor (identity for GGUF)
     */
    public static String unexpectedBias(java.util.Collection<String> present, List<Expected> expected,
                                        java.util.function.UnaryOperator<String> naming) {
        java.util.Set<String> names = new java.util.HashSet<>();
        expected.forEach(e -> names.add(naming.apply(e.name())));
        for (String name : present) {
            if (name.endsWith(".bias") && !names.contains(name)) {
                return name;
            }
        }
        return null;
    }

    public static List<Expected> expected(ModelConfig c) {
        List<Expected> out = new ArrayList<>();
        out.add(new Expected(TOKEN_EMBD, new long[] {c.vocabSize(), c.dim()}));
        for (int l = 0; l < c.nLayers(); l++) {
            for (String kind : BLOCK_KINDS) {
                out.add(new Expected(block(l, kind), shapeOf(c, kind)));
                if (c.attentionBias() && ATTENTION_INPUT_KINDS.contains(kind)) {
                    out.add(new Expected(blockBias(l, kind), new long[] {shapeOf(c, kind)[0]}));
                }
                if (c.qkNorm() && kind.equals("attn_k")) {  // Qwen3's per-head norms, after the q and k products
                    out.add(new Expected(block(l, "attn_q_norm"), new long[] {c.headSize()}));
                    out.add(new Expected(block(l, "attn_k_norm"), new long[] {c.headSize()}));
                }
            }
        }
        out.add(new Expected(OUTPUT_NORM, new long[] {c.dim()}));
        if (!c.tiedEmbeddings()) {
            out.add(new Expected(OUTPUT, new long[] {c.vocabSize(), c.dim()}));
        }
        return out;
    }

    /** The shape of a block tensor kind: [rows (outputs), columns (inputs)] or [n] for norms. */
    public static long[] shapeOf(ModelConfig c, String kind) {
        return switch (kind) {
            case "attn_norm", "ffn_norm" -> new long[] {c.dim()};
            case "attn_q" -> new long[] {c.queryDim(), c.dim()};
            case "attn_output" -> new long[] {c.dim(), c.queryDim()};
            case "attn_k", "attn_v" -> new long[] {c.kvDim(), c.dim()};
            case "ffn_gate", "ffn_up" -> new long[] {c.hiddenDim(), c.dim()};
            case "ffn_down" -> new long[] {c.dim(), c.hiddenDim()};
            default -> throw new IllegalArgumentException("unknown block tensor kind " + kind);
        };
    }
}
