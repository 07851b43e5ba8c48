package io.bitplane.kernels.ffm;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.PackedCodes;
import io.bitplane.format.TensorSpec;
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
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

/**
 * Where the native backend puts tensors whose groups are not a multiple of 32 values, with INT8 or binary
 * activations: the C kernels would sum them value by value, so the Java backend holds and computes them (TERNARY on
 * the AVX-512 build excepted: its base-3 tiles take any group; and there batches of six INT8 tokens or more, over
 * groups of a multiple of 4, run in C's VNNI batch kernel), and their results are the oracle's bit for bit at every
 * batch size. Groups that are a multiple of 32, one group a row and float activations stay in C (float
 * activations within rounding), except BINARY x binary in groups of a multiple of 32, which the Java backend's XNOR
 * tiles take where it has them.
 */
class NativeOddGroupRoutingTest {

    @ParameterizedTest(name = "{0} x {1}, {2} rows, {3} values, on java {4}")
    @CsvSource({"ternary@48, int8, 40, 200, true", "ternary@16, int8, 33, 96, true", "int8@16, int8, 17, 100, true",
        "binary@48, int8, 9, 480, true", "binary@48, binary, 20, 144, true", "int4@8, int8, 12, 64, true",
        "ternary@64, int8, 40, 200, false", "ternary@48, f32, 40, 200, false", "ternary, int8, 40, 200, false",
        "binary@64, binary, 20, 256, false", "binary@32, binary, 17, 200, false", "binary, binary, 20, 256, false"})
    void oddGroupsRunOnTheJavaBackend(String spec, String activations, int rows, int cols, boolean onJava) {
        NativeAvailability.assumeLoaded();
        try (Backend backend = Backends.create("native", 2)) {
            Random rnd = new Random(rows * 31L + cols);
            EncodedTensor t = Quantizer.quantize("w", new long[] {rows, cols},
                    TestTensors.gaussian(rnd, rows * cols, 0.1f), QuantSpec.parse(spec),
                    ActivationHint.valueOf(activations.toUpperCase()));
            if (spec.startsWith("ternary")) {
                t = PackedCodes.relayout(t);
            }
            BpmTensor placed = BackendConformance.placed(t, 3);
            Weights w = backend.upload(placed);
            boolean baseThreeTiles = spec.startsWith("ternary") && !activations.equals("f32")
                    && NativeLibrary.kernels().isa() == NativeKernels.ISA_AVX512;
            if (baseThreeTiles) {
                assertInstanceOf(Base3TileWeights.class, w);
            }
            boolean avx512 = NativeLibrary.kernels().isa() == NativeKernels.ISA_AVX512;
            boolean xnorTiles = onJavaXnorTiles(t.spec());
            for (int batch : new int[] {1, 3, GroupLaneWeights.MAX_BATCH + 1, 17}) {
                boolean vnniBatch = avx512 && activations.equals("int8") && batch > GroupLaneWeights.MAX_BATCH
                        && cols % 4 == 0 && t.spec().effectiveGroupSize() % 4 == 0;
                assertEquals(onJava && !baseThreeTiles && !vnniBatch || xnorTiles,
                        ((NativeBackend) backend).onJava(w, batch),
                        spec + " batch " + batch);
                float[] x = TestTensors.gaussian(rnd, batch * cols, 1f);
                float[] expected = BackendConformance.matmul(new ScalarBackend(), placed, x, batch);
                float[] actual = BackendConformance.matmul(backend, placed, x, batch);
                if (activations.equals("f32")) {
                    assertArrayEquals(expected, actual, 1e-4f, spec + " batch " + batch);
                } else {
                    assertArrayEquals(expected, actual, spec + " batch " + batch);
                }
            }
        }
    }

    /**
     * Whether the native backend hands this BINARY x binary tensor to the Java backend's tiles: in groups (one scale
     * a row stays in C), where that backend tiles it (256-bit vectors or wider).
     */
    private static boolean onJavaXnorTiles(TensorSpec spec) {
        try (Backend java = Backends.create("java", 1)) {
            return spec.groupsPerRow() > 1 && java instanceof TiledProducts tiled && tiled.xnorTilesFor(spec);
        }
    }
}
