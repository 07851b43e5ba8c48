package io.bitplane.kernels;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class WorkerPoolTest {
    @Test
    void everyRowIsRunExactlyOnceForAnyRowCount() {
        try (WorkerPool pool = new WorkerPool(3)) {
            for (int rows : new int[] {1, 2, 3, 4, 7, 100, 1001}) {
                AtomicIntegerArray hits = new AtomicIntegerArray(rows);
                for (int rep = 0; rep < 50; rep++) {
                    pool.run(rows, (a, b) -> {
                        for (int r = a; r < b; r++) {
                            hits.incrementAndGet(r);
                        }
                    });
                }
                for (int r = 0; r < rows; r++) {
                    assertEquals(50, hits.get(r), "row " + r + " of " + rows);
                }
            }
        }
    }

    @Test
    void aFailureInAnySliceReachesTheCaller() {
        try (WorkerPool pool = new WorkerPool(2)) {
            assertThrows(IllegalStateException.class, () -> pool.run(10, (a, b) -> {
                if (a > 0) {
                    throw new IllegalStateException("worker slice failed");
                }
            }));
            // The pool still works afterwards.
            int[] sum = new int[1];
            pool.run(1, (a, b) -> sum[0] += b - a);
            assertEquals(1, sum[0]);
        }
    }
}
