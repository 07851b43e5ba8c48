package io.bitplane.runtime.calibration;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The planner's dynamic programme against exhaustive search on small random instances. */
class PlannerTest {

    @Test
    void findsTheCheapestPlanWithinTheBudget() {
        Random rnd = new Random(7);
        for (int trial = 0; trial < 200; trial++) {
            int n = 1 + rnd.nextInt(6);
            List<Planner.Item> items = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                List<Planner.Option> opts = new ArrayList<>();
                int k = 1 + rnd.nextInt(4);
                for (int o = 0; o < k; o++) {
                    opts.add(new Planner.Option("o" + o, 1 + rnd.nextInt(400), rnd.nextDouble()));
                }
                items.add(new Planner.Item("t" + i, 100, opts));
            }
            long budget = 1 + rnd.nextInt(1500);
            double best = bruteForce(items, 0, budget);
            Planner.Plan plan = Planner.plan(items, budget);
            if (best == Double.POSITIVE_INFINITY) {
                assertNull(plan, "trial " + trial);
                continue;
            }
            assertNotNull(plan, "trial " + trial);
            assertTrue(plan.bits() <= budget, "trial " + trial);
            assertEquals(best, plan.cost(), 1e-12, "trial " + trial);
            double sum = 0;
            for (int i = 0; i < n; i++) {
                sum += items.get(i).options().get(plan.choice()[i]).cost();
            }
            assertEquals(plan.cost(), sum, 1e-12);
        }
    }

    @Test
    void theFrontierGrowsInSizeAndFallsInCost() {
        Random rnd = new Random(8);
        List<Planner.Item> items = new ArrayList<>();
        for (int i = 0; i < 30; i++) {
            // Bigger encodings do less damage, as real ones do.
            double damage = rnd.nextDouble();
            items.add(new Planner.Item("t" + i, 4096, List.of(new Planner.Option("binary", 4096 + 2048, damage * 10),
                    new Planner.Option("int4", 4 * 4096 + 2048, damage), new Planner.Option("f16", 16 * 4096, 0))));
        }
        List<Planner.Plan> frontier = Planner.frontier(items, 10);
        assertTrue(frontier.size() >= 5, "distinct plans: " + frontier.size());
        for (int i = 1; i < frontier.size(); i++) {
            assertTrue(frontier.get(i).bits() >= frontier.get(i - 1).bits());
            assertTrue(frontier.get(i).cost() <= frontier.get(i - 1).cost());
        }
        assertEquals(0, frontier.get(frontier.size() - 1).cost(), 0);
    }

    private static double bruteForce(List<Planner.Item> items, int i, long budget) {
        if (i == items.size()) {
            return 0;
        }
        double best = Double.POSITIVE_INFINITY;
        for (Planner.Option o : items.get(i).options()) {
            if (o.bits() <= budget) {
                best = Math.min(best, o.cost() + bruteForce(items, i + 1, budget - o.bits()));
            }
        }
        return best;
    }
}
