package io.bitplane.format.importer;

import io.bitplane.format.BpmFormatException;
import io.bitplane.format.Vocabulary;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * llama2.c's tokenizer.bin: int32 max_token_length, then per token a float score, an int32 byte length and the
 * bytes. The vocabulary size is not in the file; it comes from the model.
 */
public final class Llama2cTokenizerFile {
    private Llama2cTokenizerFile() {
    }

    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public static Vocabulary read(Path path, int vocabSize) throws IOException {
        try (MappedFile f = new MappedFile(path)) {
            MemorySegment s = f.segment;
            long pos = 0;
            f.slice(0, 4, "max_token_length");
            int maxLen = s.get(INT, 0);
            pos += 4;
            if (maxLen <= 0 || maxLen > 1 << 16) {
                throw new BpmFormatException(path + ": max_token_length " + maxLen + " is not plausible; "
                        + "is this a llama2.c tokenizer.bin?");
            }
            List<byte[]> tokens = new ArrayList<>(vocabSize);
            float[] scores = new float[vocabSize];
            for (int i = 0; i < vocabSize; i++) {
                f.slice(pos, 8, "token " + i + " of " + vocabSize);
                scores[i] = s.get(FLOAT, pos);
                int len = s.get(INT, pos + 4);
                pos += 8;
                if (len < 0 || len > maxLen) {
                    throw new BpmFormatException(path + ": token " + i + " has length " + len + " (max_token_length "
                            + maxLen + ")");
                }
                tokens.add(f.slice(pos, len, "token " + i + " bytes").toArray(ValueLayout.JAVA_BYTE));
                pos += len;
            }
            if (pos != f.size()) {
                throw new BpmFormatException(path + ": " + (f.size() - pos) + " bytes left after " + vocabSize
                        + " tokens: the tokenizer does not match the model's vocabulary size");
            }
            return new Vocabulary("llama", tokens, scores, Vocabulary.llama2cTypes(tokens), 1, 2, maxLen, null);
        }
    }
}
