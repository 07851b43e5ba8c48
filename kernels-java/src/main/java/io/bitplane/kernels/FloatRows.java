package io.bitplane.kernels;

/**
 * Dense float products on heap arrays, as sums of scaled contiguous rows: what training a model needs (forward
 * and backward products of small matrices), where decoding's kernels read weights from native memory instead.
 *
 * <pre>
 * x: [n][k], b: [k][m], y: [n][m], a: [n][m], c: [m][k]; all row-major, each starting at index 0
 * </pre>
 * The products' sums run over k (or n) in increasing order per output, so implementations differ there only in
 * rounding (fused multiply-add or not); callers must not rely on bit-identical results between them.
 * {@link #get()} picks the Panama implementation where the Vector API runs, else the scalar one.
 */
public interface FloatRows {

    /** {@code y = x b} ({@code accumulate}: {@code y += x b}). */
    void product(float[] x, int n, int k, float[] b, int m, float[] y, boolean accumulate);

    /** {@code c += a^T x}: {@code c[j][i] += sum_t a[t][j] x[t][i]} over {@code t < n}. */
    void addOuterProducts(float[] a, float[] x, int n, int m, int k, float[] c);

    /** {@code y[yo + i] += alpha x[xo + i]} for i below n. */
    void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n);

    /** {@code sum a[ao + i] b[bo + i]} for i below n (the order of the sum is the implementation's). */
    float dot(float[] a, int ao, float[] b, int bo, int n);

    /** Softmax of {@code a[offset .. offset + n)} in place (the maximum subtracted first). */
    void softmax(float[] a, int offset, int n);

    /**
     * {@code a[i] = exp(a[i])} for i in {@code [offset, offset + n)}. Gives the same bits whether the JIT has
     * compiled it or not ({@code Math.exp} may differ by an ulp between the two), so that training runs repeat.
     */
    void exp(float[] a, int offset, int n);

    /** The implementation for this JVM, chosen once. */
    static FloatRows get() {
        return Holder.INSTANCE;
    }

    /** {@link #get()} where it runs in vectors, else null: for callers with a faster scalar way of their own. */
    static FloatRows vectorizedOrNull() {
        return Holder.INSTANCE instanceof io.bitplane.kernels.scalar.ScalarFloatRows ? null : Holder.INSTANCE;
    }

    /** Chooses once, on first use. */
    final class Holder {
        private Holder() {
        }

        static final FloatRows INSTANCE = choose();

        private static FloatRows choose() {
            if (Backends.vectorUnavailableReason() == null) {
                try {
                    return (FloatRows) Class.forName("io.bitplane.kernels.panama.PanamaFloatRows")
                            .getConstructor().newInstance();
                } catch (ReflectiveOperationException | LinkageError e) {
                    // Fall through to the scalar products; the backends report the Vector API's state.
                }
            }
            return new io.bitplane.kernels.scalar.ScalarFloatRows();
        }
    }
}
