package io.bitplane.runtime.calibration;

/**
 * Adam (Kingma and Ba 2015) for one parameter vector: first and second moments per value, bias-corrected. The
 * step size is in the parameter's own units, so callers scale it to the parameter's magnitude.
 */
final class Adam {
    private static final float BETA1 = 0.9f;
    private static final float BETA2 = 0.999f;
    private static final float EPSILON = 1e-12f;

    private final float[] m;
    private final float[] v;

    Adam(int size) {
        m = new float[size];
        v = new float[size];
    }

    /** Moves {@code param} against {@code grad} by about {@code rate} per value; {@code step} counts from 1. */
    void update(float[] param, float[] grad, float rate, int step) {
        float c1 = 1 - (float) StrictMath.pow(BETA1, step);
        float c2 = 1 - (float) StrictMath.pow(BETA2, step);
        for (int i = 0; i < param.length; i++) {
            float g = grad[i];
            m[i] = BETA1 * m[i] + (1 - BETA1) * g;
            v[i] = BETA2 * v[i] + (1 - BETA2) * g * g;
            param[i] -= rate * (m[i] / c1) / ((float) Math.sqrt(v[i] / c2) + EPSILON);
        }
    }
}
