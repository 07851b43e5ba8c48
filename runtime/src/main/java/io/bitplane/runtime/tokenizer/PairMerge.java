package io.bitplane.runtime.tokenizer;

import java.util.Comparator;
import java.util.PriorityQueue;

/**
 * The merge loop both BPE tokenizers share: repeatedly merge the adjacent pair of symbols whose merge comes first
 * (the highest priority, the leftmost on ties) until no adjacent pair has a merge. What merges, and in which order,
 * is the tokenizer's {@link Rule}: SentencePiece's merged piece's score, byte-level BPE's merge rank (negated).
 * Scanning every pair for every merge, as llama2.c does, is quadratic (a 96 KB prompt took 84 s); here the pairs
 * wait in a priority queue and the symbols in a linked list, and a pair is dropped when taken if either of its
 * symbols has changed since it was queued (as llama.cpp's tokenizers do). The queue's order is the scan's, so the
 * result is the same.
 */
final class PairMerge {
    private PairMerge() {
    }

    /** What adjacent symbols merge into. */
    interface Rule {
        /** The merge of {@code left} then {@code right} (token ids; negative: a symbol with no token), or null. */
        Merge of(int left, int right);
    }

    /** A pair's merged token and priority (higher first). */
    record Merge(int id, double priority) {
    }

    /** A queued pair: the positions of its symbols and the ids they had. */
    private record Pair(int left, int right, int leftId, int rightId, Merge merge) {
    }

    private static final Comparator<Pair> FIRST =
            Comparator.comparingDouble((Pair p) -> -p.merge().priority()).thenComparingInt(Pair::left);

    /** A symbol merged into its left neighbour. */
    private static final int DELETED = Integer.MIN_VALUE;

    /** Merges {@code symbols[0 .. n)} in place by {@code rule} and returns their new count. */
    static int merge(int[] symbols, int n, Rule rule) {
        if (n < 2) {
            return n;
        }
        int[] next = new int[n];
        int[] prev = new int[n];
        for (int i = 0; i < n; i++) {
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
        }
        PriorityQueue<Pair> queue = new PriorityQueue<>(FIRST);
        for (int i = 0; i + 1 < n; i++) {
            offer(queue, symbols, i, i + 1, rule);
        }
        while (!queue.isEmpty()) {
            Pair p = queue.poll();
            if (symbols[p.left()] != p.leftId() || symbols[p.right()] != p.rightId() || next[p.left()] != p.right()) {
                continue;  // a symbol of this pair has merged since
            }
            symbols[p.left()] = p.merge().id();
            symbols[p.right()] = DELETED;
            int after = next[p.right()];
            next[p.left()] = after;
            if (after >= 0) {
                prev[after] = p.left();
                offer(queue, symbols, p.left(), after, rule);
            }
            if (prev[p.left()] >= 0) {
                offer(queue, symbols, prev[p.left()], p.left(), rule);
            }
        }
        int count = 0;
        for (int i = 0; i >= 0; i = next[i]) {
            symbols[count++] = symbols[i];
        }
        return count;
    }

    private static void offer(PriorityQueue<Pair> queue, int[] symbols, int left, int right, Rule rule) {
        Merge m = rule.of(symbols[left], symbols[right]);
        if (m != null) {
            queue.add(new Pair(left, right, symbols[left], symbols[right], m));
        }
    }
}
