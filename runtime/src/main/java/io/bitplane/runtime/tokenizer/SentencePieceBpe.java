package io.bitplane.runtime.tokenizer;

import io.bitplane.format.Vocabulary;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * The SentencePiece-style BPE of llama2.c's tokenizer.bin and GGUF's "llama" tokenizer, encoding exactly as
 * llama2.c's {@code encode}: a dummy-prefix space before non-empty text, one token per UTF-8 code point where the
 * vocabulary has it (else its bytes as byte tokens), then repeatedly merge the adjacent pair whose merged piece has
 * the highest score (the leftmost on ties).
 */
public final class SentencePieceBpe implements Tokenizer {
    private final Vocabulary vocab;
    private final Map<Key, Integer> ids = new HashMap<>();
    private final int[] byteTokens = new int[256];
    private final byte[][] pieces;
    /** True when the vocabulary writes spaces as SentencePiece's U+2581 (GGUF), false for llama2.c's spaces. */
    private final boolean wordMarker;

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
        for (int b = 0; b < 256; b++) {
            // llama2.c's fallback: byte b is token b + 3 (after <unk>, <s>, </s>).
            if (byteTokens[b] < 0 && b + 3 < vocab.size()) {
                byteTokens[b] = b + 3;
            }
        }
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
    public int vocabSize() {
        return vocab.size();
    }

    @Override
    public int bos() {
        return vocab.bosId();
    }

    @Override
    public int eos() {
        return vocab.eosId();
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

    @Override
    public int[] encode(String text, boolean addBos, boolean addEos) {
        byte[] utf8 = (wordMarker ? text.replace(' ', '\u2581') : text).getBytes(StandardCharsets.UTF_8);
        int[] tokens = new int[utf8.length * 1 + 3];
        int n = 0;
        if (addBos && bos() >= 0) {
            tokens[n++] = bos();
        }
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
            } else {
                for (byte b : cp) {
                    tokens[n++] = byteTokens[b & 0xFF];
                }
            }
        }
        while (true) {
            float bestScore = -1e10f;
            int bestId = -1;
            int bestIdx = -1;
            for (int t = 0; t < n - 1; t++) {
                byte[] a = pieces[tokens[t]];
                byte[] b = pieces[tokens[t + 1]];
                byte[] merged = Arrays.copyOf(a, a.length + b.length);
                System.arraycopy(b, 0, merged, a.length, b.length);
                int id = lookup(merged);
                if (id >= 0 && vocab.scores()[id] > bestScore) {
                    bestScore = vocab.scores()[id];
                    bestId = id;
                    bestIdx = t;
                }
            }
            if (bestIdx < 0) {
                break;
            }
            tokens[bestIdx] = bestId;
            System.arraycopy(tokens, bestIdx + 2, tokens, bestIdx + 1, n - bestIdx - 2);
            n--;
        }
        if (addEos && eos() >= 0) {
            tokens[n++] = eos();
        }
        return Arrays.copyOf(tokens, n);
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
