package io.bitplane.opencl;

import io.bitplane.format.ActivationHint;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.SharedData;
import io.bitplane.format.TestTensors;
import io.bitplane.format.quant.QuantSpec;
import io.bitplane.format.quant.Quantizer;
import io.bitplane.kernels.AttentionShape;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.BackendConformance;
import io.bitplane.kernels.BackendProbe;
import io.bitplane.kernels.Backends;
import io.bitplane.kernels.Buffer;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.ModelException;
import io.bitplane.runtime.ModelOptions;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What a user sees when OpenCL cannot do what was asked: each case is a message that says why, and the CPU backends
 * go on working; never a crash of the JVM.
 */
class OpenClErrorsTest {

    @Test
    void withoutAnOpenClLibraryTheCpuRunsAndAskingForOpenClSaysWhatToInstall() throws Exception {
        BackendProbe.Result r = BackendProbe.run("opencl", "-Dorg.lwjgl.opencl.libname=/nonexistent/libOpenCL.so");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("auto=") && !r.out().contains("auto=opencl"), r.out());
        assertTrue(r.out().contains("opencl refused: backend 'opencl' cannot run here: the OpenCL library could not "
                + "be loaded") && r.out().contains("apt-get install"), r.out());
    }

    @Test
    void aKernelThatDoesNotBuildIsReportedWithTheBuildLog() {
        OpenClAvailability.assumePlatform();
        int before = OpenClBackend.LIVE_BACKENDS.get();
        OpenClException e = assertThrows(OpenClException.class, () -> new OpenClBackend(OpenClDevice.pick(0),
                "kernel void broken(global float *x) { x[0] = undeclared_name; }"));
        assertTrue(e.getMessage().contains("failed to build") && e.getMessage().contains("build log")
                && e.getMessage().contains("undeclared_name"), e.getMessage());
        assertEquals(before, OpenClBackend.LIVE_BACKENDS.get());
    }

    @Test
    void aModelLargerThanTheDeviceIsRefusedWithItsSize() {
        OpenClAvailability.assumePlatform();
        OpenClDevice real = OpenClDevice.pick(0);
        OpenClDevice small = new OpenClDevice(real.index(), real.platform(), real.id(), real.platformName(),
                real.name(), real.vendor(), real.version(), real.driverVersion(), real.type(), 3L << 20,
                real.maxAllocationBytes(), real.computeUnits());
        try (OpenClBackend b = new OpenClBackend(small)) {
            EncodedTensor big = Quantizer.quantize("blk.0.ffn_up.weight", new long[] {1024, 1024},
                    TestTensors.gaussian(new Random(1), 1024 * 1024, 0.1f), QuantSpec.parse("f32"),
                    ActivationHint.F32);
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> b.upload(BackendConformance.placed(big, 0)));
            assertTrue(e.getMessage().contains("has 3.0 MiB") && e.getMessage().contains("blk.0.ffn_up.weight")
                    && e.getMessage().contains("needs 4.0 MiB"), e.getMessage());
            assertEquals(0, b.deviceBytes(), "nothing is held after the refusal");
        }
    }

    /**
     * A model that does not fit the memory Bitplane may use on the device: named alone, OpenCL is insisted on and
     * the load fails with the sizes; in a list, the next backend runs instead.
     */
    @Test
    void aModelTooLargeForTheDeviceFailsAloneAndFallsBackInAList() throws Exception {
        OpenClAvailability.assumePlatform();
        System.setProperty("bitplane.opencl.memory", "0.5");
        try {
            ModelOptions options = ModelOptions.defaults().withTokenizer(SharedData.tok512());
            ModelException e = assertThrows(ModelException.class,
                    () -> Model.open(SharedData.stories260K(), options.withBackend("opencl")));
            assertTrue(e.getMessage().contains("the opencl backend cannot load this model")
                    && e.getMessage().contains("has 0.5 MiB for Bitplane"), e.getMessage());
            try (Model m = Model.open(SharedData.stories260K(), options.withBackend("opencl,java"))) {
                assertTrue(m.backendName().startsWith("java") || m.backendName().startsWith("scalar"),
                        m.backendName());
            }
            assertEquals(0, DeviceMemory.LIVE_BUFFERS.get(), "the refused upload left nothing on the device");
        } finally {
            System.clearProperty("bitplane.opencl.memory");
        }
    }

    @Test
    void badPositionsAndForeignBuffersAreRefusedBeforeAnyKernelRuns() {
        OpenClAvailability.assumePlatform();
        try (Backend b = Backends.create("opencl", 1); Backend other = Backends.create("scalar", 1)) {
            AttentionShape s = new AttentionShape(2, 1, 8);
            Buffer q = b.allocate(16);
            Buffer cache = b.allocate(4 * 8);
            Buffer out = b.allocate(16);
            var e = assertThrows(IllegalArgumentException.class,
                    () -> b.attention(out, q, cache, cache, new int[] {4}, 1, s));
            assertTrue(e.getMessage().contains("position 4") && e.getMessage().contains("4 positions"),
                    e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> b.add(q, other.allocate(16), 16));
            assertTrue(e.getMessage().contains("not allocated by this OpenCL backend"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> b.copy(q, 10, out, 0, 10));
            assertTrue(e.getMessage().contains("outside a buffer of 16"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> b.read(q, 0, new float[4], 0, 17));
            assertTrue(e.getMessage().contains("outside a buffer of 16"), e.getMessage());
        }
    }
}
