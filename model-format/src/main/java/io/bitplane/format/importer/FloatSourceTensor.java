package io.bitplane.format.importer;

import io.bitplane.format.EncodedTensor;
import io.bitplane.format.TensorSpec;
import io.bitplane.format.quant.QuantSpec;

import java.io.IOException;

/** A source tensor whose values are computed on demand as floats (F32 sources, or re-ordered rows). */
record FloatSourceTensor(String name, long[] shape, Loader loader) implements SourceTensor {

    interface Loader {
        float[] load() throws IOException;
    }

    @Override
    public QuantSpec nativeSpec() {
        return QuantSpec.parse("f32");
    }

    @Override
    public float[] floats() throws IOException {
        return loader.load();
    }

    @Override
    public EncodedTensor lossless() throws IOException {
        return EncodedTensor.ofFloats(TensorSpec.of(name, io.bitplane.format.Encoding.F32, 0, shape), floats());
    }
}
