package io.bitplane.runtime.calibration;

import io.bitplane.format.BpmTensor;
import io.bitplane.format.EncodedTensor;
import io.bitplane.format.TensorSpec;
import io.bitplane.kernels.Backend;
import io.bitplane.kernels.Buffer;
import io.bitplane.kernels.ForwardingBackend;
import io.bitplane.kernels.Weights;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Map;

/**
 * A backend around another that lets calibration tools see and change what the decoder computes, without the
 * decoder knowing: it can hand the decoder other encodings of some tensors (to measure a model with one layer
 * quantized, without writing a file), and it shows each matrix product's input activations to an observer (to
 * collect the layer-input statistics that GPTQ needs). Every operation runs on the wrapped backend.
 */
final class ObservingBackend extends ForwardingBackend {

    /** Sees the input of every matrix product: {@code batch} rows of {@code cols} floats in {@code x}. */
    interface InputObserver {
        void observe(String tensor, float[] x, int batch, int cols);
    }

    /** The wrapped backend's weights, with the tensor name the observer is told. */
    private record Named(String name, Weights inner) implements Weights {
        @Override
        public TensorSpec spec() {
            return inner.spec();
        }
    }

    private final Map<String, EncodedTensor> substitutes;
    private final InputObserver observer;
    private final java.util.function.Predicate<String> skipped;
    private final Arena arena = Arena.ofShared();
    private final ThreadLocal<float[]> inputs = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * @param substitutes tensors to use instead of the file's, by name (same shape; any encoding)
     * @param observer    told every matrix product's input, or null
     */
    ObservingBackend(Backend inner, Map<String, EncodedTensor> substitutes, InputObserver observer) {
        this(inner, substitutes, observer, t -> false);
    }

    /**
     * @param skipped matrix products not computed at all (their outputs keep stale values): for calibration runs
     *                that only need the inputs of earlier layers, so the rest of the step is wasted work
     */
    ObservingBackend(Backend inner, Map<String, EncodedTensor> substitutes, InputObserver observer,
                     java.util.function.Predicate<String> skipped) {
        super(inner);
        this.substitutes = Map.copyOf(substitutes);
        this.observer = observer;
        this.skipped = skipped;
    }

    @Override
    public String description() {
        return inner.description() + " (observed)";
    }

    @Override
    public Weights upload(BpmTensor tensor) {
        EncodedTensor sub = substitutes.get(tensor.name());
        if (sub == null) {
            return new Named(tensor.name(), inner.upload(tensor));
        }
        if (!java.util.Arrays.equals(sub.spec().shape(), tensor.spec().shape())) {
            throw new IllegalArgumentException("tensor " + tensor.name() + ": substitute has shape "
                    + java.util.Arrays.toString(sub.spec().shape()) + ", the model's is "
                    + java.util.Arrays.toString(tensor.spec().shape()));
        }
        // Kernels stream weights fastest from native memory, as from the mapped file.
        MemorySegment data = arena.allocate(sub.bytes().length, 64).copyFrom(sub.segment());
        return new Named(tensor.name(), inner.upload(new BpmTensor(sub.spec(), data, 0, 0)));
    }

    @Override
    public void embed(Weights table, int row, Buffer out, int outOffset) {
        inner.embed(unwrap(table), row, out, outOffset);
    }

    @Override
    public void matmul(Weights w, Buffer x, Buffer y, int batch) {
        if (w instanceof Named n && skipped.test(n.name())) {
            return;
        }
        if (observer != null) {
            int cols = Math.toIntExact(w.spec().cols());
            float[] in = inputs.get();
            if (in.length < batch * cols) {
                in = new float[batch * cols];
                inputs.set(in);
            }
            inner.read(x, 0, in, 0, batch * cols);
            observer.observe(((Named) w).name(), in, batch, cols);
        }
        inner.matmul(unwrap(w), x, y, batch);
    }

    @Override
    public void rmsNorm(Buffer out, Buffer x, Weights gamma, int dim, int batch, float eps) {
        inner.rmsNorm(out, x, unwrap(gamma), dim, batch, eps);
    }

    @Override
    public void close() {
        inner.close();
        arena.close();
    }

    private static Weights unwrap(Weights w) {
        return w instanceof Named n ? n.inner() : w;
    }
}
