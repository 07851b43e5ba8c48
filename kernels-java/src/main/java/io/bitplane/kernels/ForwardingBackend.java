package io.bitplane.kernels;

import io.bitplane.format.BpmTensor;

/**
 * A backend that hands every op to another: subclasses override the ops they change (the native backend its matrix
 * products, calibration's observer the products it watches) and inherit the rest.
 */
public abstract class ForwardingBackend implements Backend {
    protected final Backend inner;

    protected ForwardingBackend(Backend inner) {
        this.inner = inner;
    }

    @Override
    public String name() {
        return inner.name();
    }

    @Override
    public String description() {
        return inner.description();
    }

    @Override
    public Weights upload(BpmTensor tensor) {
        return inner.upload(tensor);
    }

    @Override
    public Buffer allocate(int floats) {
        return inner.allocate(floats);
    }

    @Override
    public void embed(Weights table, int row, Buffer out, int outOffset) {
        inner.embed(table, row, out, outOffset);
    }

    @Override
    public void matmul(Weights w, Buffer x, Buffer y, int batch) {
        inner.matmul(w, x, y, batch);
    }

    @Override
    public void rmsNorm(Buffer out, Buffer x, Weights gamma, int dim, int batch, float eps) {
        inner.rmsNorm(out, x, gamma, dim, batch, eps);
    }

    @Override
    public void rope(Buffer v, int batch, int[] positions, int heads, int headSize, float theta,
                     float[] freqFactors) {
        inner.rope(v, batch, positions, heads, headSize, theta, freqFactors);
    }

    @Override
    public void attention(Buffer out, Buffer q, Buffer keys, Buffer values, int[] positions, int batch,
                          AttentionShape s) {
        inner.attention(out, q, keys, values, positions, batch, s);
    }

    @Override
    public boolean attentionOfRuns(Buffer out, Buffer q, Buffer[] keys, Buffer[] values, int[] positions,
                                   int[] runStarts, int runs, AttentionShape s) {
        return inner.attentionOfRuns(out, q, keys, values, positions, runStarts, runs, s);
    }

    @Override
    public void swiGlu(Buffer gate, Buffer up, int n) {
        inner.swiGlu(gate, up, n);
    }

    @Override
    public void add(Buffer acc, Buffer x, int n) {
        inner.add(acc, x, n);
    }

    @Override
    public void addBias(Buffer acc, Weights bias, int n, int batch) {
        inner.addBias(acc, bias, n, batch);
    }

    @Override
    public void copy(Buffer src, int srcOffset, Buffer dst, int dstOffset, int n) {
        inner.copy(src, srcOffset, dst, dstOffset, n);
    }

    @Override
    public void read(Buffer src, int srcOffset, float[] dst, int dstOffset, int n) {
        inner.read(src, srcOffset, dst, dstOffset, n);
    }

    @Override
    public void write(float[] src, int srcOffset, Buffer dst, int dstOffset, int n) {
        inner.write(src, srcOffset, dst, dstOffset, n);
    }

    @Override
    public void close() {
        inner.close();
    }
}
