package io.bitplane.runtime.tokenizer;

import io.bitplane.format.Vocabulary;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The byte-level BPE of GPT-2, Llama 3 and Qwen2 (GGUF's tokenizer.ggml.model "gpt2"), encoding as Hugging Face's
 * tokenizers and llama.cpp do:
 * <ol>
 *   <li>special tokens (control and user-defined) written in the text are split out as themselves, the longest
 *       first where several match (chat templates write them: {@code <|eot_id|>});
 *   <li>the text between them is cut into words by the pre-tokenizer's regular expression ({@link PreTokenizer});
 *   <li>a word's UTF-8 bytes are written as GPT-2's printable characters ({@link ByteLevelAlphabet}: a space is
 *       U+0120 'Ġ'); with Llama 3's pre-tokenizer a word that is itself a token is that token ("ignore merges");
 *   <li>otherwise its characters are merged, the adjacent pair with the lowest merge rank first (the leftmost on
 *       ties), until no adjacent pair has a merge.
 * </ol>
 * Decoding writes normal tokens' characters back as bytes; user-defined tokens are their own text; control
 * tokens write nothing.
 */
public final class ByteLevelBpe implements Tokenizer {
    private final Vocabulary vocab;
    private final PreTokenizer preTokenizer;
    private final Map<String, Integer> ids = new HashMap<>();
    /** The token of each byte's character, or -1. */
    private final int[] byteTokens = new int[256];
    /** Merged token and priority (the negated rank) of each mergeable pair (left id in the key's high half). */
    private final Map<Long, PairMerge.Merge> merges = new HashMap<>();
    private final SpecialTokens specials;
    private final Set<Integer> endTokens = new java.util.HashSet<>();
    private final int unknown;

    /**
     * Control tokens that end a turn in instruction-tuned models (llama.cpp's list): generation stops on them as on
     * EOS, since the templates end each message with one and not with EOS.
     */
    private static final Set<String> END_OF_TURN = Set.of("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>",
            "<|endoftext|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|return|>", "<|call|>");

    /** @throws IllegalArgumentException when the vocabulary is not a usable byte-level BPE one (names why) */
    public ByteLevelBpe(Vocabulary vocab) {
        String problem = vocab.problem();
        if (!Vocabulary.BYTE_LEVEL_BPE.equals(vocab.model()) || problem != null) {
            throw new IllegalArgumentException(problem != null ? problem
                    : "tokenizer model '" + vocab.model() + "' is not byte-level BPE (gpt2)");
        }
        this.vocab = vocab;
        this.preTokenizer = PreTokenizer.named(vocab.preTokenizer());
        int unk = -1;
        for (int i = 0; i < vocab.size(); i++) {
            String text = text(i);
            ids.putIfAbsent(text, i);
            int type = vocab.tokenTypes()[i];
            if (type == Vocabulary.TYPE_CONTROL && END_OF_TURN.contains(text)) {
                endTokens.add(i);
            }
            if (type == Vocabulary.TYPE_UNKNOWN && unk < 0) {
                unk = i;
            }
        }
        unknown = unk;
        specials = new SpecialTokens(vocab, this::text);
        if (vocab.eosId() >= 0) {
            endTokens.add(vocab.eosId());
        }
        for (int b = 0; b < 256; b++) {
            Integer id = ids.get(String.valueOf(ByteLevelAlphabet.charOf(b)));
            byteTokens[b] = id == null ? -1 : id;
        }
        List<String> list = vocab.merges();
        for (int rank = 0; rank < list.size(); rank++) {
            String m = list.get(rank);
            int space = m.indexOf(' ');
            String left = m.substring(0, space);
            String right = m.substring(space + 1);
            // a pair listed twice keeps its first (lowest) rank, as Hugging Face's table does
            merges.putIfAbsent(key(ids.get(left), ids.get(right)), new PairMerge.Merge(ids.get(left + right), -rank));
        }
    }

    private String text(int token) {
        return new String(vocab.tokens().get(token), StandardCharsets.UTF_8);
    }

    private static long key(int left, int right) {
        return (long) left << 32 | (right & 0xFFFFFFFFL);
    }

    @Override
    public Vocabulary vocabulary() {
        return vocab;
    }

    @Override
    public boolean isEndOfSequence(int token) {
        return endTokens.contains(token);
    }

    @Override
    public int[] encode(String text, boolean addBos, boolean addEos) {
        IntList out = new IntList();
        if (addBos && vocab.addBos() && bos() >= 0) {
            out.add(bos());
        }
        for (SpecialTokens.Segment s : specials.split(text)) {
            if (s.text() == null) {
                out.add(s.token());
            } else {
                encodeOrdinary(s.text(), out);
            }
        }
        if (addEos && eos() >= 0) {
            out.add(eos());
        }
        return out.toArray();
    }

    /** Text with no special tokens in it: its words, each merged on its own. */
    private void encodeOrdinary(String text, IntList out) {
        if (text.isEmpty()) {
            return;
        }
        Matcher m = preTokenizer.pattern().matcher(text);
        int end = 0;
        while (m.find()) {
            if (m.start() > end) {  // text no alternative matched is a word as well (Hugging Face's "isolated")
                encodeWord(text.substring(end, m.start()), out);
            }
            encodeWord(m.group(), out);
            end = m.end();
        }
        if (end < text.length()) {
            encodeWord(text.substring(end), out);
        }
    }

    private void encodeWord(String word, IntList out) {
        byte[] utf8 = word.getBytes(StandardCharsets.UTF_8);
        if (preTokenizer.ignoresMerges()) {
            Integer whole = ids.get(ByteLevelAlphabet.encode(utf8));
            if (whole != null) {
                out.add(whole);
                return;
            }
        }
        int[] symbols = new int[utf8.length];
        for (int i = 0; i < utf8.length; i++) {
            symbols[i] = byteTokens[utf8[i] & 0xFF];
        }
        int n = merge(symbols);
        for (int i = 0; i < n; i++) {
            if (symbols[i] >= 0) {
                out.add(symbols[i]);
            } else if (unknown >= 0) {
                out.add(unknown);
            } else {
                throw new IllegalArgumentException("the vocabulary has no token for the byte of '" + word
                        + "' (no byte-level token and no unknown token)");
            }
        }
    }

    /**
     * Merges {@code symbols} (token ids, -1 for a byte without one) in place and returns their new count: the
     * adjacent pair of lowest rank first, the leftmost on ties. Time n log n for a word of n bytes: a run of a
     * million letters is one word to Llama 3's expression.
     */
    private int merge(int[] symbols) {
        return PairMerge.merge(symbols, symbols.length,
                (left, right) -> left < 0 || right < 0 ? null : merges.get(key(left, right)));
    }

    @Override
    public byte[] piece(int previous, int token) {
        if (token < 0 || token >= vocab.size()) {
            throw new IllegalArgumentException("token id " + token + " is outside the vocabulary of " + vocab.size());
        }
        return switch (vocab.tokenTypes()[token]) {
            case Vocabulary.TYPE_NORMAL -> ByteLevelAlphabet.decode(text(token));
            case Vocabulary.TYPE_USER_DEFINED -> vocab.tokens().get(token).clone();
            default -> new byte[0];  // control, unknown, unused
        };
    }

    /** Growing int array: the tokens of a prompt. */
    private static final class IntList {
        private int[] a = new int[16];
        private int n;

        void add(int v) {
            if (n == a.length) {
                a = Arrays.copyOf(a, 2 * n);
            }
            a[n++] = v;
        }

        int[] toArray() {
            return Arrays.copyOf(a, n);
        }
    }
}
