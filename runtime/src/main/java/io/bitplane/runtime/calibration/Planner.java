package io.bitplane.runtime.calibration;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The mixed-precision planner: one encoding per tensor, minimising the summed sensitivity under a size budget. The
 * sum is a model of the damage (first order: each layer's KL divergence adds to the model's cross-entropy), which
 * the caller checks by measuring the chosen mixes.
 *
 * <p>Dynamic programming over the tensor list (a multiple-choice knapsack), exact when sizes are counted in bits
 * (budgets up to {@code RESOLUTION} bits); above that, sizes are counted in units of {@code budget / RESOLUTION}
 * bits, and the plan returned is always within the true budget.
 */
public final class Planner {
    private Planner() {
    }

    static final int RESOLUTION = 20_000;

    /** One way to store a tensor: its label (the spec), its size in bits and its measured damage. */
    public record Option(String label, long bits, double cost) {
    }

    /** A tensor and its options. */
    public record Item(String tensor, long weights, List<Option> options) {
    }

    /** The chosen option index per item, and the totals. */
    public record Plan(int[] choice, long bits, double cost) {
        public double bitsPerWeight(List<Item> items) {
            long weights = items.stream().mapToLong(Item::weights).sum();
            return (double) bits / weights;
        }
    }

    /** The plan of least cost within {@code budgetBits}, or null when even the smallest options do not fit. */
    public static Plan plan(List<Item> items, long budgetBits) {
        if (items.isEmpty()) {
            return new Plan(new int[0], 0, 0);
        }
        double unit = Math.max(1.0, (double) budgetBits / RESOLUTION);
        // Sizes round to the nearest unit, so a plan's units can exceed its true size over the unit by up to n/2:
        // start with that much room, and tighten while the plan found is over the true budget.
        for (int capacity = (int) Math.floor(budgetBits / unit) + items.size(); capacity >= 0; capacity--) {
            Plan p = plan(items, unit, capacity);
            if (p == null || p.bits() <= budgetBits) {
                return p;
            }
        }
        return null;
    }

    /** The least-cost plan whose sizes, in whole units, sum to at most {@code capacity}. */
    private static Plan plan(List<Item> items, double unit, int capacity) {
        int n = items.size();
        // best[c]: least cost of the items so far within c units; from[i][c]: the option item i took there.
        double[] best = new double[capacity + 1];
        int[][] from = new int[n][capacity + 1];
        double[] next = new double[capacity + 1];
        for (int i = 0; i < n; i++) {
            Arrays.fill(next, Double.POSITIVE_INFINITY);
            List<Option> options = items.get(i).options();
            for (int o = 0; o < options.size(); o++) {
                int units = units(options.get(o), unit);
                double cost = options.get(o).cost();
                for (int c = units; c <= capacity; c++) {
                    double v = best[c - units] + cost;
                    if (v < next[c]) {
                        next[c] = v;
                        from[i][c] = o;
                    }
                }
            }
            double[] t = best;
            best = next;
            next = t;
        }
        if (best[capacity] == Double.POSITIVE_INFINITY) {
            return null;
        }
        int c = capacity;
        int[] choice = new int[n];
        long bits = 0;
        for (int i = n - 1; i >= 0; i--) {
            int o = from[i][c];
            choice[i] = o;
            Option opt = items.get(i).options().get(o);
            bits += opt.bits();
            c -= units(opt, unit);
        }
        return new Plan(choice, bits, best[capacity]);
    }

    private static int units(Option o, double unit) {
        return (int) Math.round(o.bits() / unit);
    }

    /**
     * Plans at {@code points} budgets spread evenly between the smallest and the largest possible size, keeping
     * each distinct plan once: the frontier of size against predicted damage.
     */
    public static List<Plan> frontier(List<Item> items, int points) {
        long min = 0;
        long max = 0;
        for (Item it : items) {
            min += it.options().stream().mapToLong(Option::bits).min().orElse(0);
            max += it.options().stream().mapToLong(Option::bits).max().orElse(0);
        }
        List<Plan> out = new ArrayList<>();
        for (int p = 0; p < points; p++) {
            long budget = points == 1 ? max : min + (max - min) * p / (points - 1);
            Plan plan = plan(items, budget);
            if (plan != null && (out.isEmpty() || !Arrays.equals(out.get(out.size() - 1).choice(), plan.choice()))) {
                out.add(plan);
            }
        }
        return out;
    }
}
