package io.bitplane.format.importer;

import io.bitplane.format.BpmFormatException;
import io.bitplane.format.Vocabulary;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * SentencePiece's tokenizer.model (Llama 1-2, Mistral, TinyLlama: the file beside a Hugging Face checkpoint), a
 * protocol buffer ModelProto read here by hand, the fields this needs:
 * <pre>
 *   1 pieces (repeated): 1 piece (string), 2 score (float), 3 type (1 normal, 2 unknown, 3 control,
 *                         4 user defined, 5 unused, 6 byte: GGUF's values, which copy these)
 *   2 trainer_spec:      3 model_type (1 unigram, 2 BPE, ...), 40 unk_id, 41 bos_id, 42 eos_id (-1: none)
 *   3 normalizer_spec:   1 name, 3 add_dummy_prefix (default true), 4 remove_extra_whitespaces (default true)
 * </pre>
 * into GGUF's "llama" vocabulary, which llama2.c's encoding merges by score. Only what that encoding reproduces is
 * accepted: BPE models with the identity normalizer, a dummy prefix and whitespace kept as it is (as Llama's own);
 * a unigram model (Viterbi over piece scores) or another normalizer is refused by name. BOS, EOS and the chat
 * template come from tokenizer_config.json beside it when there is one.
 */
public final class SentencePieceModelFile {
    private SentencePieceModelFile() {
    }

    public static Vocabulary read(Path path, int vocabSize) throws IOException {
        Proto p = new Proto(path, Files.readAllBytes(path));
        List<byte[]> tokens = new ArrayList<>();
        List<Float> scores = new ArrayList<>();
        List<Integer> types = new ArrayList<>();
        int modelType = 1;  // SentencePiece's default: unigram
        int unk = 0;
        int bos = 1;
        int eos = 2;
        String normalizer = "nmt_nfkc";
        boolean dummyPrefix = true;
        boolean removeExtraWhitespace = true;
        while (p.more()) {
            int tag = p.tag();
            switch (tag) {
                case 1 << 3 | 2 -> {
                    Proto piece = p.message("piece " + tokens.size());
                    byte[] text = null;
                    float score = 0;
                    int type = Vocabulary.TYPE_NORMAL;
                    while (piece.more()) {
                        int t = piece.tag();
                        switch (t) {
                            case 1 << 3 | 2 -> text = piece.bytes("piece text");
                            case 2 << 3 | 5 -> score = Float.intBitsToFloat(piece.fixed32());
                            case 3 << 3 -> type = (int) piece.varint();
                            default -> piece.skip(t);
                        }
                    }
                    if (text == null) {
                        throw new BpmFormatException(path + ": piece " + tokens.size() + " has no text");
                    }
                    tokens.add(text);
                    scores.add(score);
                    types.add(type);
                }
                case 2 << 3 | 2 -> {
                    Proto spec = p.message("trainer_spec");
                    while (spec.more()) {
                        int t = spec.tag();
                        switch (t) {
                            case 3 << 3 -> modelType = (int) spec.varint();
                            case 40 << 3 -> unk = (int) spec.varint();
                            case 41 << 3 -> bos = (int) spec.varint();
                            case 42 << 3 -> eos = (int) spec.varint();
                            default -> spec.skip(t);
                        }
                    }
                }
                case 3 << 3 | 2 -> {
                    Proto spec = p.message("normalizer_spec");
                    while (spec.more()) {
                        int t = spec.tag();
                        switch (t) {
                            case 1 << 3 | 2 -> normalizer = new String(spec.bytes("normalizer name"),
                                    StandardCharsets.UTF_8);
                            case 3 << 3 -> dummyPrefix = spec.varint() != 0;
                            case 4 << 3 -> removeExtraWhitespace = spec.varint() != 0;
                            default -> spec.skip(t);
                        }
                    }
                }
                default -> p.skip(tag);
            }
        }
        if (tokens.isEmpty()) {  // other files often parse as fields of no known number (Llama 3's tiktoken lines do)
            throw new BpmFormatException(path + ": not a SentencePiece model, or damaged: no pieces");
        }
        if (modelType != 2) {
            throw new BpmFormatException(path + ": SentencePiece model_type " + modelType + " (1 is unigram) is not "
                    + "supported; BPE models (2) are");
        }
        if (!normalizer.equals("identity") || !dummyPrefix || removeExtraWhitespace) {
            throw new BpmFormatException(path + ": SentencePiece normalizer '" + normalizer + "' (add_dummy_prefix "
                    + dummyPrefix + ", remove_extra_whitespaces " + removeExtraWhitespace + ") is not supported; "
                    + "Llama's (identity, true, false) is");
        }
        if (tokens.size() > vocabSize) {
            throw new BpmFormatException(path + ": " + tokens.size() + " pieces for a model of " + vocabSize
                    + " embeddings (config.json vocab_size)");
        }
        int maxLen = 1;
        for (int i = tokens.size(); i < vocabSize; i++) {  // llama.cpp's padding, as for tokenizer.json
            tokens.add(("[PAD" + i + "]").getBytes(StandardCharsets.UTF_8));
            scores.add(-1000f);
            types.add(Vocabulary.TYPE_UNUSED);
        }
        float[] s = new float[vocabSize];
        int[] ty = new int[vocabSize];
        for (int i = 0; i < vocabSize; i++) {
            s[i] = scores.get(i);
            ty[i] = types.get(i);
            maxLen = Math.max(maxLen, tokens.get(i).length);
        }
        String[] texts = tokens.stream().map(t -> new String(t, StandardCharsets.UTF_8)).toArray(String[]::new);
        HfTokenizerJson.Config c = HfTokenizerJson.Config.beside(path, texts);
        Vocabulary v = new Vocabulary(Vocabulary.SENTENCE_PIECE, tokens, s, ty, c.bos() >= 0 ? c.bos() : bos,
                c.eos() >= 0 ? c.eos() : eos, maxLen, c.chatTemplate(), List.of(), null, c.addBosOr(true));
        String problem = v.problem();
        if (problem != null) {
            throw new BpmFormatException(path + ": " + problem);
        }
        return v;
    }

    /** A protocol buffer message: fields as tag (number and wire type), then the value. */
    private static final class Proto {
        private final Path path;
        private final byte[] b;
        private int at;
        private final int end;

        Proto(Path path, byte[] b) {
            this(path, b, 0, b.length);
        }

        private Proto(Path path, byte[] b, int from, int end) {
            this.path = path;
            this.b = b;
            this.at = from;
            this.end = end;
        }

        boolean more() {
            return at < end;
        }

        int tag() throws BpmFormatException {
            long t = varint();
            if (t <= 0 || t > Integer.MAX_VALUE) {
                throw damaged("field tag " + t);
            }
            return (int) t;
        }

        long varint() throws BpmFormatException {
            long v = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                if (at >= end) {
                    throw damaged("a number runs past its message");
                }
                int x = b[at++];
                v |= (long) (x & 0x7F) << shift;
                if ((x & 0x80) == 0) {
                    return v;
                }
            }
            throw damaged("a number longer than ten bytes");
        }

        int fixed32() throws BpmFormatException {
            if (end - at < 4) {
                throw damaged("a float runs past its message");
            }
            int v = (b[at] & 0xFF) | (b[at + 1] & 0xFF) << 8 | (b[at + 2] & 0xFF) << 16 | (b[at + 3] & 0xFF) << 24;
            at += 4;
            return v;
        }

        private int length(String what) throws BpmFormatException {
            long n = varint();
            if (n < 0 || n > end - at) {
                throw damaged(what + " of " + n + " bytes runs past its message");
            }
            return (int) n;
        }

        byte[] bytes(String what) throws BpmFormatException {
            int n = length(what);
            byte[] out = java.util.Arrays.copyOfRange(b, at, at + n);
            at += n;
            return out;
        }

        Proto message(String what) throws BpmFormatException {
            int n = length(what);
            Proto m = new Proto(path, b, at, at + n);
            at += n;
            return m;
        }

        void skip(int tag) throws BpmFormatException {
            switch (tag & 7) {
                case 0 -> varint();
                case 1 -> at = checkedSkip(8);
                case 2 -> at = checkedSkip(length("field " + (tag >>> 3)));
                case 5 -> at = checkedSkip(4);
                default -> throw damaged("field " + (tag >>> 3) + " has wire type " + (tag & 7));
            }
        }

        private int checkedSkip(int n) throws BpmFormatException {
            if (n > end - at) {
                throw damaged("a field runs past its message");
            }
            return at + n;
        }

        private BpmFormatException damaged(String what) {
            return new BpmFormatException(path + ": not a SentencePiece model, or damaged: " + what + " (byte " + at
                    + ")");
        }
    }
}
