package io.bitplane.runtime.tokenizer;

import io.bitplane.format.Vocabulary;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * The SentencePiece-style BPE of llama2.c's tokenizer.bin and GGUF's "llama" tokenizer, encoding exactly as
 * llama2.c's {@code encode}: a dummy-prefix space before non-empty text, one token per UTF-8 code point where the
 * vocabulary has it (else its bytes as byte tokens, else the unknown token), then repeatedly merge the adjacent pair
 * whose merged piece has the highest score (the leftmost on ties), in time n log n rather than llama2.c's n^2.
 */
public final class SentencePieceBpe implements Tokenizer {
    private final Vocabulary vocab;
    private final Map<Key, Integer> ids = new HashMap<>();
    private final int[] byteTokens = new int[256];
    private final byte[][] pieces;
    /** True when the vocabulary writes spaces as SentencePiece's U+2581 (GGUF), false for llama2.c's spaces. */
    private final boolean wordMarker;
    /**
     * The unknown token, or -1: what a character becomes whose bytes have no byte tokens (llama2.c assumed byte b is
     * token b + 3, as in its own tokenizer.bin, where the {@code <0xXX>} pieces are found anyway).
     */
    private final int unknown;
    private final SpecialTokens specials;

    /** Byte arrays as map keys. */
    private record Key(byte[] b) {
        @Override
        public boolean equals(Object o) {
            return o instanceof Key k && Arrays.equals(b, k.b);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(b);
        }
    }

    public SentencePieceBpe(Vocabulary vocab) {
        this.vocab = vocab;
        this.pieces = new byte[vocab.size()][];
        Arrays.fill(byteTokens, -1);
        for (int i = 0; i < vocab.size(); i++) {
            byte[] t = vocab.tokens().get(i);
            ids.putIfAbsent(new Key(t), i);
            pieces[i] = t;
            int b = byteValue(t);
            if (b >= 0 && vocab.tokenTypes()[i] == Vocabulary.TYPE_BYTE && byteTokens[b] < 0) {
                byteTokens[b] = i;
            }
        }
        wordMarker = lookup(MARKER) >= 0 && lookup(new byte[] {' '}) < 0;
        int unk = -1;
        for (int i = 0; i < vocab.size() && unk < 0; i++) {
            unk = vocab.tokenTypes()[i] == Vocabulary.TYPE_UNKNOWN ? i : -1;
        }
        unknown = unk;
        specials = new SpecialTokens(vocab, i -> new String(pieces[i], StandardCharsets.UTF_8));
    }

    /** The byte a {@code <0xXX>} piece stands for, or -1. */
    static int byteValue(byte[] piece) {
        if (piece.length == 6 && piece[0] == '<' && piece[1] == '0' && piece[2] == 'x' && piece[5] == '>') {
            int hi = Character.digit(piece[3], 16);
            int lo = Character.digit(piece[4], 16);
            if (hi >= 0 && lo >= 0) {
                return hi * 16 + lo;
            }
        }
        return -1;
    }

    @Override
    public Vocabulary vocabulary() {
        return vocab;
    }

    /** llama2.c models delimit stories with BOS as well: generation ends on either. */
    @Override
    public boolean isEndOfSequence(int token) {
        return token == eos() || token == bos();
    }

    private int lookup(byte[] bytes) {
        Integer id = ids.get(new Key(bytes));
        return id == null ? -1 : id;
    }

    /**
     * Special tokens written in the text ({@code </s>} after each turn in TinyLlama's and Zephyr's templates,
     * {@code <s>} before Llama 2's) are split out as themselves, as llama.cpp reads a prompt; the text before the
     * first and after each is encoded as llama2.c encodes a whole text, with its dummy-prefix space.
     */
    @Override
    public int[] encode(String text, boolean addBos, boolean addEos) {
        java.util.List<int[]> parts = new java.util.ArrayList<>();
        if (addBos && vocab.addBos() && bos() >= 0) {
            parts.add(new int[] {bos()});
        }
        for (SpecialTokens.Segment s : specials.split(text)) {
            parts.add(s.text() == null ? new int[] {s.token()} : encodeOrdinary(s.text()));
        }
        if (addEos && eos() >= 0) {
            parts.add(new int[] {eos()});
        }
        return parts.stream().flatMapToInt(java.util.Arrays::stream).toArray();
    }

    /** Text without special tokens, as llama2.c encodes it. */
    private int[] encodeOrdinary(String text) {
        byte[] utf8 = (wordMarker ? text.replace(' ', '\u2581') : text).getBytes(StandardCharsets.UTF_8);
        int[] tokens = new int[utf8.length + 1];
        int n = 0;
        if (utf8.length > 0) {
            int space = lookup(wordMarker ? MARKER : new byte[] {' '});
            if (space >= 0) {
                tokens[n++] = space;
            }
        }
        int i = 0;
        while (i < utf8.length) {
            // One code point: a lead byte and up to three continuation bytes (llama2.c's 4-byte cap).
            int start = i++;
            while (i < utf8.length && (utf8[i] & 0xC0) == 0x80 && i - start < 4) {
                i++;
            }
            byte[] cp = Arrays.copyOfRange(utf8, start, i);
            int id = lookup(cp);
            if (id >= 0) {
                tokens[n++] = id;
            } else if (hasByteTokens(cp)) {
                for (byte b : cp) {
                    tokens[n++] = byteTokens[b & 0xFF];
                }
            } else if (unknown >= 0) {
                tokens[n++] = unknown;
            } else {
                throw new IllegalArgumentException("the vocabulary has no token for '"
                        + new String(cp, StandardCharsets.UTF_8) + "' (no byte tokens and no unknown token)");
            }
        }
        n = merge(tokens, n);
        return Arrays.copyOf(tokens, n);
    }

    private boolean hasByteTokens(byte[] bytes) {
        for (byte b : bytes) {
            if (byteTokens[b & 0xFF] < 0) {
                return false;
            }
        }
        return true;
    }

    /** Where llama2.c stops looking: a merge must score above this (so a NaN score never merges). */
    private static final float NO_MERGE = -1e10f;

    /**
     * Merges {@code tokens[0 .. n)} as llama2.c does (repeatedly the adjacent pair whose merged piece scores
     * highest, the leftmost on ties) and returns the new count.
     */
    private int merge(int[] tokens, int n) {
        return PairMerge.merge(tokens, n, this::pieceOf);
    }

    /** The piece two tokens' bytes make together, if it is in the vocabulary and scores above NO_MERGE. */
    private PairMerge.Merge pieceOf(int left, int right) {
        byte[] a = pieces[left];
        byte[] b = pieces[right];
        byte[] merged = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, merged, a.length, b.length);
        int id = lookup(merged);
        if (id < 0) {
            return null;
        }
        float score = vocab.scores()[id] + 0f;  // + 0f: -0 and 0 tie, as they do for llama2.c's >
        return score > NO_MERGE ? new PairMerge.Merge(id, score) : null;
    }

    @Override
    public byte[] piece(int previous, int token) {
        if (token < 0 || token >= pieces.length) {
            throw new IllegalArgumentException("token id " + token + " is outside the vocabulary of "
                    + pieces.length);
        }
        int type = vocab.tokenTypes()[token];
        if (type == Vocabulary.TYPE_CONTROL || type == Vocabulary.TYPE_UNKNOWN) {
            return new byte[0];
        }
        byte[] p = pieces[token];
        int b = byteValue(p);
        if (b >= 0) {
            return new byte[] {(byte) b};
        }
        if (wordMarker) {
            p = new String(p, StandardCharsets.UTF_8).replace('\u2581', ' ').getBytes(StandardCharsets.UTF_8);
        }
        // SentencePiece's decoder drops the leading space of the first piece after BOS.
        if (previous == bos() && p.length > 0 && p[0] == ' ') {
            return Arrays.copyOfRange(p, 1, p.length);
        }
        return p;
    }

    private static final byte[] MARKER = "\u2581".getBytes(StandardCharsets.UTF_8);
}
