package io.bitplane.format.importer;

import io.bitplane.format.Dequantizer;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.quant.QuantSpec;

import java.io.IOException;

/**
 * A source tensor already held in a .bpm encoding (a .bpm file, or ggml blocks re-laid without loss): its floats
 * are the reference dequantization of those bytes.
 */
record EncodedSourceTensor(String name, long[] shape, QuantSpec nativeSpec, Loader loader) implements SourceTensor {

    interface Loader {
        EncodedTensor load() throws IOException;
    }

    @Override
    public EncodedTensor lossless() throws IOException {
        return loader.load();
    }

    @Override
    public float[] floats() throws IOException {
        EncodedTensor t = loader.load();
        return Dequantizer.toFloats(t.spec(), t.segment());
    }
}
