package io.bitplane.kernels.ffm;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.TestTensors;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.BackendConformance;
import io.bitplane.kernels.Backends;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** Which tensors the native backend lays out as lookup tiles at upload, as the tile tests check it. */
final class TileRouting {
    private TileRouting() {
    }

    /** Whether this run's kernels have tiles of this kind: BINARY from the AVX2 build, base-3 TERNARY from AVX-512. */
    static boolean buildHasTiles(Class<? extends NativeRepackedWeights> tiles) {
        int isa = NativeLibrary.kernels().isa();
        return isa >= (tiles == SignTileWeights.class ? NativeKernels.ISA_AVX2 : NativeKernels.ISA_AVX512);
    }

    /**
     * The backend tiles {@code encoding} of one scale a row with INT8 activations where the build has the tiles,
     * groups of 64 there too where {@code groupsTiled} (else never), and never float activations.
     */
    static void assertBackendTilesOnlyWhatTheKernelTakes(String encoding,
                                                        Class<? extends NativeRepackedWeights> tiles,
                                                        boolean groupsTiled) {
        NativeAvailability.assumeLoaded();
        try (Backend backend = Backends.create("native", 2)) {
            Random rnd = new Random(5);
            float[] values = TestTensors.gaussian(rnd, 40 * 256, 0.1f);
            BpmTensor oneScale = tensor(values, encoding, ActivationHint.INT8);
            BpmTensor groups = tensor(values, encoding + "@64", ActivationHint.INT8);
            BpmTensor floats = tensor(values, encoding, ActivationHint.F32);
            assertEquals(buildHasTiles(tiles), tiles.isInstance(backend.upload(oneScale)), "one scale a row");
            assertEquals(buildHasTiles(tiles) && groupsTiled, tiles.isInstance(backend.upload(groups)), "groups");
            assertFalse(tiles.isInstance(backend.upload(floats)), "float activations");
        }
    }

    private static BpmTensor tensor(float[] values, String spec, ActivationHint activations) {
        return BackendConformance.placed(Quantizer.quantize("w", new long[] {40, 256}, values, QuantSpec.parse(spec),
                activations), 0);
    }
}
