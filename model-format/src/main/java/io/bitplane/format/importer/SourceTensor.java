package io.bitplane.format.importer;

import io.bitplane.format.EncodedTensor;
import io.bitplane.format.quant.QuantSpec;

import java.io.IOException;

/** One tensor of a model being imported, read lazily so that conversion holds one tensor at a time. */
public interface SourceTensor {
    String name();

    /** Outermost first: [rows, columns] or [n]. */
    long[] shape();

    /** The encoding the source stores this tensor in, as the .bpm spec that holds it without loss. */
    QuantSpec nativeSpec();

    /** The values, dequantized to float where the source is quantized. */
    float[] floats() throws IOException;

    /**
     * The tensor in its {@link #nativeSpec()}: bit for bit what the source holds, except where
     * {@link #nativeQuantizer()} says otherwise.
     */
    EncodedTensor lossless() throws IOException;

    /**
     * How {@link #lossless()} comes from the source, as the conversion records it: "lossless", or what was rounded
     * where the .bpm spec cannot hold the source's encoding exactly (ggml's k-quants).
     */
    default String nativeQuantizer() {
        return "lossless";
    }
}
