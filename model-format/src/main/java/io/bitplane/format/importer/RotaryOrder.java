package io.bitplane.format.importer;

import io.bitplane.format.BpmFormatException;
import io.bitplane.format.ModelConfig;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The two orders of the rows of q and k (and of their biases). Bitplane, llama2.c and llama.cpp's llama files rotate
 * adjacent pairs of a head: rows 2j and 2j + 1 turn together. Hugging Face's checkpoints (and llama.cpp's qwen2
 * files, which it rotates "NEOX" style) rotate the two halves of a head: rows j and j + hd/2. Moving the rows changes
 * no value, so a model decodes the same in either order with the matching rotation.
 */
final class RotaryOrder {
    private RotaryOrder() {
    }

    /**
     * How many heads the rows of tensor {@code name} (.bpm naming) hold where they rotate in pairs: q's weights and
     * bias nHeads, k's nKvHeads, a head norm's values one head; 0 for every other tensor.
     */
    static int heads(String name, ModelConfig c) {
        return name.contains(".attn_q.") ? c.nHeads()
                : name.contains(".attn_k.") ? c.nKvHeads()
                : name.endsWith(".attn_q_norm.weight") || name.endsWith(".attn_k_norm.weight") ? 1
                : 0;
    }

    /**
     * The rows of {@code src} ({@code rows} rows of equal bytes, {@code heads} heads of rows / heads rows each) in
     * adjacent-pair order: output row {@code h * hd + r} is input row {@code h * hd + (r % 2) * hd / 2 + r / 2}.
     *
     * @param what the file and tensor, for the error when the rows cannot be heads of pairs
     */
    static byte[] pairsFromHalves(MemorySegment src, long rows, int heads, String what) throws BpmFormatException {
        long bytes = src.byteSize();
        if (rows <= 0 || heads <= 0 || rows % heads != 0 || rows / heads % 2 != 0 || bytes % rows != 0
                || bytes > Integer.MAX_VALUE - 8) {
            throw new BpmFormatException(what + ": " + rows + " rows of " + bytes + " bytes cannot be " + heads
                    + " heads of rotary pairs to reorder");
        }
        int rowBytes = Math.toIntExact(bytes / rows);
        int hd = Math.toIntExact(rows / heads);
        byte[] out = new byte[Math.toIntExact(bytes)];
        for (int o = 0; o < rows; o++) {
            int h = o / hd;
            int r = o % hd;
            long from = h * hd + (r % 2) * (hd / 2) + r / 2;
            MemorySegment.copy(src, ValueLayout.JAVA_BYTE, from * rowBytes, out, o * rowBytes, rowBytes);
        }
        return out;
    }
}
