package io.bitplane.format.importer;

import io.bitplane.format.Vocabulary;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes a SentencePiece ModelProto (the fields SentencePieceModelFile documents, as protocol buffers encode them)
 * for tests: the pieces of a vocabulary, a trainer spec and a normalizer spec.
 */
public final class SentencePieceModelWriter {
    private SentencePieceModelWriter() {
    }

    /** The normalizer: its name, add_dummy_prefix, remove_extra_whitespaces. */
    public record Normalizer(String name, boolean dummyPrefix, boolean removeExtraWhitespace) {
        public static final Normalizer LLAMA = new Normalizer("identity", true, false);
    }

    /** A BPE model (type 2; unigram is 1) of these pieces, byte fallback on, BOS 1 and EOS 2. */
    public static void write(Path path, String[] pieces, float[] scores, int[] types, int modelType,
                             Normalizer normalizer) throws IOException {
        Out model = new Out();
        for (int i = 0; i < pieces.length; i++) {
            Out piece = new Out();
            piece.bytes(1, pieces[i].getBytes(StandardCharsets.UTF_8));
            piece.tag(2, 5);
            int bits = Float.floatToIntBits(scores[i]);
            for (int k = 0; k < 4; k++) {
                piece.write(bits >>> 8 * k);
            }
            if (types[i] != Vocabulary.TYPE_NORMAL) {
                piece.varintField(3, types[i]);
            }
            model.bytes(1, piece.toByteArray());
        }
        Out trainer = new Out();
        trainer.varintField(3, modelType);
        trainer.varintField(4, pieces.length);
        trainer.varintField(35, 1);  // byte_fallback
        trainer.varintField(40, 0);
        trainer.varintField(41, 1);
        trainer.varintField(42, 2);
        trainer.varintField(43, -1L & 0xFFFFFFFFFFFFFFFFL);  // pad_id -1, as int32 negatives are: ten bytes
        model.bytes(2, trainer.toByteArray());
        Out norm = new Out();
        norm.bytes(1, normalizer.name().getBytes(StandardCharsets.UTF_8));
        norm.varintField(3, normalizer.dummyPrefix() ? 1 : 0);
        norm.varintField(4, normalizer.removeExtraWhitespace() ? 1 : 0);
        norm.varintField(5, 1);  // escape_whitespaces
        model.bytes(3, norm.toByteArray());
        Files.write(path, model.toByteArray());
    }

    private static final class Out extends ByteArrayOutputStream {
        void varint(long v) {
            while ((v & ~0x7FL) != 0) {
                write((int) (v & 0x7F) | 0x80);
                v >>>= 7;
            }
            write((int) v);
        }

        void tag(int field, int wireType) {
            varint((long) field << 3 | wireType);
        }

        void varintField(int field, long v) {
            tag(field, 0);
            varint(v);
        }

        void bytes(int field, byte[] b) {
            tag(field, 2);
            varint(b.length);
            writeBytes(b);
        }
    }
}
