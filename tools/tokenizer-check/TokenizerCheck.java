import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.bitplane.format.Vocabulary;
import io.bitplane.format.importer.HfTokenizerJson;
import io.bitplane.format.importer.Llama2cTokenizerFile;
import io.bitplane.format.importer.SentencePieceModelFile;
import io.bitplane.format.importer.SentencePieceModelFileTest;
import io.bitplane.format.importer.SentencePieceModelWriter;
import io.bitplane.runtime.tokenizer.Tokenizer;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Bitplane's tokenizers against the reference ids reference-ids.cjs wrote (see README.md here):
 *   write-model FOLDER   writes FOLDER/tok512.model, tok512.bin as the SentencePiece model it was exported from
 *   compare FOLDER       encodes every text and counts the texts whose ids differ
 */
public class TokenizerCheck {
    public static void main(String[] args) throws Exception {
        Path folder = Path.of(args[1]);
        if (args[0].equals("write-model")) {
            SentencePieceModelFileTest.tok512AsModel(folder.resolve("tok512.model"), 2,
                    SentencePieceModelWriter.Normalizer.LLAMA);
            return;
        }
        ObjectMapper json = new ObjectMapper();
        JsonNode v = json.readTree(Files.readAllBytes(folder.resolve("llama3-vocab.json")));
        List<byte[]> tokens = new ArrayList<>();
        v.get("vocab").forEach(t -> tokens.add(t.asText().getBytes(StandardCharsets.UTF_8)));
        int[] types = new int[tokens.size()];
        Arrays.fill(types, Vocabulary.TYPE_NORMAL);
        Arrays.fill(types, 128000, types.length, Vocabulary.TYPE_CONTROL);
        List<String> merges = new ArrayList<>();
        v.get("merges").forEach(m -> merges.add(m.asText()));
        Vocabulary gguf = new Vocabulary(Vocabulary.BYTE_LEVEL_BPE, tokens, new float[tokens.size()], types, 128000,
                128001, 256, null, merges, "llama-bpe", true);
        Path cases = folder.resolve("llama3-cases.json");
        compare("Llama 3, GGUF-style vocabulary", Tokenizer.forVocabulary(gguf), cases);
        compare("Llama 3, tokenizer.json", Tokenizer.forVocabulary(
                HfTokenizerJson.read(folder.resolve("llama3-hf/tokenizer.json"), tokens.size())), cases);
        Path sp = folder.resolve("sp-cases.json");
        if (Files.exists(sp)) {
            compare("SentencePiece, tok512.model", Tokenizer.forVocabulary(
                    SentencePieceModelFile.read(folder.resolve("tok512.model"), 512)), sp);
        }
    }

    private static void compare(String what, Tokenizer tokenizer, Path casesFile) throws Exception {
        JsonNode cases = new ObjectMapper().readTree(Files.readAllBytes(casesFile));
        int differ = 0;
        long ids = 0;
        for (JsonNode c : cases) {
            int[] want = new int[c.get("ids").size()];
            for (int i = 0; i < want.length; i++) {
                want[i] = c.get("ids").get(i).asInt();
            }
            ids += want.length;
            int[] got = tokenizer.encode(c.get("text").asText(), false, false);
            if (!Arrays.equals(want, got)) {
                differ++;
                System.out.println("  differs: " + c.get("text") + "\n    reference " + Arrays.toString(want)
                        + "\n    bitplane  " + Arrays.toString(got));
            }
        }
        System.out.println(what + ": " + cases.size() + " texts, " + ids + " tokens, " + differ + " differ");
    }
}
