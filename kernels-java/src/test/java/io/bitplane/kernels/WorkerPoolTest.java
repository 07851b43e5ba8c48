package io.bitplane.kernels;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

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

    /** Idle, the workers wait for the next job parked: they spun 2 ms and parked 1 ms in turn, forever, before. */
    @Test
    void anIdlePoolsWorkersStayParked() throws InterruptedException {
        try (WorkerPool pool = new WorkerPool(3)) {
            int[] sum = new int[1];
            pool.run(10, (a, b) -> {
                synchronized (sum) {
                    sum[0] += b - a;
                }
            });
            assertEquals(10, sum[0]);
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (!allParked(pool) && System.nanoTime() < deadline) {
                Thread.sleep(5);
            }
            for (int i = 0; i < 20; i++) {
                assertTrue(allParked(pool), java.util.Arrays.toString(pool.workerStates()));
                Thread.sleep(3);
            }
            // And a job after the idle time still runs on every slice.
            AtomicIntegerArray hits = new AtomicIntegerArray(9);
            pool.run(9, (a, b) -> {
                for (int r = a; r < b; r++) {
                    hits.incrementAndGet(r);
                }
            });
            for (int r = 0; r < 9; r++) {
                assertEquals(1, hits.get(r));
            }
        }
    }

    private static boolean allParked(WorkerPool pool) {
        return java.util.Arrays.stream(pool.workerStates()).allMatch(s -> s == Thread.State.WAITING);
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
