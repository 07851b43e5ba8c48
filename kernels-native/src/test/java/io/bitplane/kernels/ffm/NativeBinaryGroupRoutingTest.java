package io.bitplane.kernels.ffm;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.TestTensors;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.BackendConformance;
import io.bitplane.kernels.Backends;
import io.bitplane.kernels.TiledProducts;
import io.bitplane.kernels.Weights;
import io.bitplane.kernels.scalar.ScalarBackend;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Where the native backend puts BINARY x INT8 in groups: the Java backend's sign tiles hold and compute them where
 * it has them (512-bit vectors), up to {@link GroupLaneWeights#MAX_BATCH} tokens (larger batches read the file's
 * bytes in C, as for every tensor the Java backend tiles); one scale a row and binary activations stay in C. Results
 * are the oracle's bit for bit at every batch size.
 */
class NativeBinaryGroupRoutingTest {

    @ParameterizedTest(name = "{0} x {1}, {2} rows, {3} values, in groups {4}")
    @CsvSource({"binary@64, int8, 40, 256, true", "binary@256, int8, 33, 1030, true", "binary@32, int8, 9, 96, true",
        "binary, int8, 40, 256, false", "binary@64, binary, 20, 256, false"})
    void binaryGroupsWithInt8ActivationsRunOnTheJavaTiles(String spec, String activations, int rows, int cols,
                                                          boolean int8Groups) {
        NativeAvailability.assumeLoaded();
        try (Backend backend = Backends.create("native", 2); Backend java = Backends.create("java", 2)) {
            Random rnd = new Random(rows * 37L + cols);
            EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                    TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse(spec),
                    ActivationHint.valueOf(activations.toUpperCase()));
            boolean javaTiles = java instanceof TiledProducts tiled && tiled.binaryTilesFor(t.spec());
            BpmTensor placed = BackendConformance.placed(t, 3);
            Weights w = backend.upload(placed);
            for (int batch : new int[] {1, 3, GroupLaneWeights.MAX_BATCH + 1, 17}) {
                assertEquals(int8Groups && javaTiles && batch <= GroupLaneWeights.MAX_BATCH,
                        ((NativeBackend) backend).onJava(w, batch), spec + " batch " + batch);
                float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
                assertArrayEquals(BackendConformance.matmul(new ScalarBackend(), placed, x, batch),
                        BackendConformance.matmul(backend, placed, x, batch), spec + " batch " + batch);
            }
        }
    }
}
