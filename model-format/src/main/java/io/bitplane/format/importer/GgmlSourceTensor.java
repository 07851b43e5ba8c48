package io.bitplane.format.importer;

import io.bitplane.format.BpmFormatException;
import io.bitplane.format.Dequantizer;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.quant.QuantSpec;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * A tensor of a GGUF file: its floats are ggml's own dequantization of its blocks, its native form the .bpm
 * re-laying of {@link GgmlToBpm} (exact for most types; see {@link GgmlType.Fidelity}).
 */
record GgmlSourceTensor(String name, long[] shape, GgmlType type, Path file, Blocks blocks) implements SourceTensor {

    interface Blocks {
        MemorySegment read() throws IOException;
    }

    @Override
    public QuantSpec nativeSpec() {
        return type.bpmSpec;
    }

    @Override
    public String nativeQuantizer() {
        return type.fidelity.description;
    }

    @Override
    public EncodedTensor lossless() throws IOException {
        try {
            return GgmlToBpm.convert(name, shape, type, blocks.read());
        } catch (IllegalArgumentException e) {  // a scale that f16 cannot hold, a value that is not finite
            throw new BpmFormatException(file + ": " + e.getMessage());
        }
    }

    @Override
    public float[] floats() throws IOException {
        if (type.fidelity == GgmlType.Fidelity.EXACT) {  // the re-laid tensor dequantizes to ggml's values
            EncodedTensor t = lossless();
            return Dequantizer.toFloats(t.spec(), t.segment());
        }
        long count = 1;
        for (long d : shape) {
            count *= d;
        }
        return GgmlSubBlocks.dequantize(type, blocks.read(), count);
    }
}
