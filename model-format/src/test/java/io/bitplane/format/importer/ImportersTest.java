package io.bitplane.format.importer;

import io.bitplane.format.BpmFormatException;
import io.bitplane.format.Encoding;
import io.bitplane.format.LlamaTensors;
import io.bitplane.format.ModelConfig;
import io.bitplane.format.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.RandomAccessFile;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every importer of stories260K yields the same tensors (bit for bit) and vocabulary. */
class ImportersTest {
    @TempDir
    Path dir;

    static final ModelConfig STORIES = new ModelConfig(64, 172, 5, 8, 4, 512, 512, 10000f, 1e-5f, true);

    static void assertSameTensors(ModelSource expected, ModelSource actual) throws Exception {
        List<SourceTensor> a = expected.tensors();
        List<SourceTensor> b = actual.tensors();
        assertEquals(a.size(), b.size());
        for (int i = 0; i < a.size(); i++) {
            assertEquals(a.get(i).name(), b.get(i).name());
            assertArrayEquals(a.get(i).shape(), b.get(i).shape(), a.get(i).name());
            assertArrayEquals(a.get(i).floats(), b.get(i).floats(), a.get(i).name());
        }
    }

    @Test
    void llama2cLegacyReadsTheHeaderAndTheTokenizerBesideIt() throws Exception {
        try (ModelSource s = ModelSources.open(SharedData.stories260K(), null)) {
            assertEquals(STORIES, s.metadata().config());
            assertEquals(512, s.metadata().vocabulary().size());
            assertEquals(1 + 5 * 9 + 1, s.tensors().size());
            assertEquals("llama2c-legacy", s.metadata().sourceField("format"));
            // The first float of the file after the 28-byte header is the first embedding weight.
            float first = java.nio.ByteBuffer.wrap(Files.readAllBytes(SharedData.stories260K()), 28, 4)
                    .order(ByteOrder.LITTLE_ENDIAN).getFloat();
            assertEquals(first, s.tensors().get(0).floats()[0]);
        }
    }

    @Test
    void llama2cVersion1HoldsTheSameModel() throws Exception {
        try (ModelSource legacy = ModelSources.open(SharedData.stories260K(), null);
             ModelSource v1 = ModelSources.open(SharedData.file("models/stories260K_v1.bin"), SharedData.tok512())) {
            assertEquals("llama2c-v1", v1.metadata().sourceField("format"));
            assertEquals(legacy.metadata().config(), v1.metadata().config());
            assertSameTensors(legacy, v1);
        }
    }

    @Test
    void ggufF32HoldsTheSameModelAndVocabulary() throws Exception {
        try (ModelSource legacy = ModelSources.open(SharedData.stories260K(), null);
             ModelSource gguf = ModelSources.open(SharedData.file("fixtures/gguf/stories260K-f32.gguf"), null)) {
            ModelConfig c = gguf.metadata().config();
            assertEquals(STORIES.dim(), c.dim());
            assertEquals(STORIES.nKvHeads(), c.nKvHeads());
            assertTrue(c.tiedEmbeddings());
            assertSameTensors(legacy, gguf);
            var a = legacy.metadata().vocabulary();
            var b = gguf.metadata().vocabulary();
            for (int i = 0; i < a.size(); i++) {
                assertArrayEquals(a.tokens().get(i), b.tokens().get(i), "token " + i);
                assertEquals(a.scores()[i], b.scores()[i], "score " + i);
            }
            assertEquals(1, b.bosId());
            assertEquals(2, b.eosId());
        }
    }

    @Test
    void ggufLowBitTensorsKeepTheirEncodingAndFloatTensorsStayFloat() throws Exception {
        try (ModelSource q4 = ModelSources.open(SharedData.file("fixtures/gguf/stories260K-q4_0.gguf"), null)) {
            for (SourceTensor t : q4.tensors()) {
                Encoding e = t.nativeSpec().encoding();
                if (t.shape().length == 1 || t.name().endsWith("ffn_down.weight")) {
                    assertEquals(Encoding.F32, e, t.name());
                } else {
                    assertEquals(Encoding.INT4, e, t.name());
                    assertEquals(32, t.nativeSpec().groupSize());
                }
            }
        }
    }

    @Test
    void safetensorsInHuggingFaceRotaryOrderDecodesToTheSameTensors() throws Exception {
        Path hf = dir.resolve("hf");
        Files.createDirectories(hf);
        try (ModelSource legacy = ModelSources.open(SharedData.stories260K(), null)) {
            SafetensorsFixture.write(legacy, hf, false, false);
            try (ModelSource st = ModelSources.open(hf, SharedData.tok512())) {
                assertEquals(STORIES.dim(), st.metadata().config().dim());
                assertSameTensors(legacy, st);
                assertEquals(512, st.metadata().vocabulary().size());
            }
            Path sharded = dir.resolve("sharded");
            Files.createDirectories(sharded);
            SafetensorsFixture.write(legacy, sharded, true, false);
            try (ModelSource st = ModelSources.open(sharded, null)) {
                assertSameTensors(legacy, st);
            }
        }
    }

    /** Mistral's sliding window bounds the context: past it the decoder, which attends to all, would differ. */
    @Test
    void aSafetensorsSlidingWindowBoundsTheContext() throws Exception {
        Path hf = SafetensorsFixture.stories(dir.resolve("window"));
        Path config = hf.resolve("config.json");
        var c = (com.fasterxml.jackson.databind.node.ObjectNode) io.bitplane.format.MetadataJson.mapper()
                .readTree(config.toFile());
        c.put("max_position_embeddings", 512).put("sliding_window", 100);
        Files.write(config, io.bitplane.format.MetadataJson.mapper().writeValueAsBytes(c));
        try (ModelSource st = ModelSources.open(hf, SharedData.tok512())) {
            assertEquals(100, st.metadata().config().contextLength());
        }
        c.putNull("sliding_window");  // Llama's configs say null
        Files.write(config, io.bitplane.format.MetadataJson.mapper().writeValueAsBytes(c));
        try (ModelSource st = ModelSources.open(hf, SharedData.tok512())) {
            assertEquals(512, st.metadata().config().contextLength());
        }
    }

    @Test
    void aTruncatedOrMismatchedLlama2cFileIsNamed() throws Exception {
        Path t = dir.resolve("trunc.bin");
        byte[] all = Files.readAllBytes(SharedData.stories260K());
        Files.write(t, java.util.Arrays.copyOf(all, all.length - 100));
        BpmFormatException e = assertThrows(BpmFormatException.class, () -> ModelSources.open(t, null));
        assertTrue(e.getMessage().contains(t.toString()) && e.getMessage().contains("truncated"), e.getMessage());
        Path junk = dir.resolve("junk.bin");
        Files.write(junk, new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                23, 24, 25, 26, 27, 28, 29, 30});
        e = assertThrows(BpmFormatException.class, () -> ModelSources.open(junk, null));
        assertTrue(e.getMessage().startsWith(junk.toString()), e.getMessage());
    }

    @Test
    void aTokenizerOfTheWrongSizeIsNamed() throws Exception {
        Path bad = dir.resolve("tok.bin");
        Files.write(bad, java.util.Arrays.copyOf(Files.readAllBytes(SharedData.tok512()), 2000));
        var e = assertThrows(BpmFormatException.class, () -> ModelSources.open(SharedData.stories260K(), bad));
        assertTrue(e.getMessage().startsWith(bad.toString()), e.getMessage());
    }

    /** A tensor the model needs in a dtype the importer does not read is named with its dtype (was a NPE). */
    @Test
    void aSafetensorsTensorInAnUnsupportedDtypeIsNamed() throws Exception {
        Path hf = SafetensorsFixture.stories(dir.resolve("f8"));
        Path file = hf.resolve("model.safetensors");
        byte[] b = Files.readAllBytes(file);
        int headerLength = (int) ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        String header = new String(b, 8, headerLength, java.nio.charset.StandardCharsets.UTF_8);
        int norm = header.indexOf("\"model.norm.weight\"");
        int dtype = header.indexOf("\"F32\"", norm);
        // Same length, so that the offsets stay right: only the dtype changes.
        byte[] patched = (header.substring(0, dtype) + "\"F8_\"" + header.substring(dtype + 5))
                .getBytes(java.nio.charset.StandardCharsets.UTF_8);
        assertEquals(headerLength, patched.length);
        System.arraycopy(patched, 0, b, 8, headerLength);
        Files.write(file, b);
        BpmFormatException e = assertThrows(BpmFormatException.class, () -> ModelSources.open(hf, null));
        assertEquals(file + ": tensor model.norm.weight has dtype 'F8_', which is not supported (F32, F16 and BF16 "
                + "are)", e.getMessage());
    }

    /**
     * A GGUF of k-quants (as a Q4_K_M file mixes them): each tensor's nearest .bpm spec, the quantizer a conversion
     * records for it, a block whose scale f16 cannot hold and a type Bitplane does not import, each named.
     */
    @Test
    void ggufKQuantsTakeTheirNearestSpecsAndBadBlocksAreNamed() throws Exception {
        ModelConfig c = new ModelConfig(256, 512, 1, 4, 2, 32, 64, 10000f, 1e-5f, true);
        Random rnd = new Random(2);
        String q = "blk.0.attn_q.weight";
        String v = "blk.0.attn_v.weight";
        String down = "blk.0.ffn_down.weight";
        GgufWriter w = GgufWriter.llama(c, 1)
                .tensor(q, new long[] {256, 256}, GgmlType.Q4_K, RandomGgmlBlocks.of(GgmlType.Q4_K, 65536, 1, rnd))
                .tensor(v, new long[] {128, 256}, GgmlType.Q6_K, RandomGgmlBlocks.of(GgmlType.Q6_K, 32768, 1, rnd))
                .tensor(down, new long[] {256, 512}, GgmlType.Q5_K, RandomGgmlBlocks.of(GgmlType.Q5_K, 131072, 1, rnd));
        Path gguf = dir.resolve("k.gguf");
        w.write(gguf);
        Path bpm = dir.resolve("k.bpm");
        try (ModelSource s = ModelSources.open(gguf, null)) {
            java.util.Map<String, SourceTensor> byName = new java.util.HashMap<>();
            s.tensors().forEach(t -> byName.put(t.name(), t));
            assertEquals("int4-asym-rtn@32", byName.get(q).nativeSpec().toString());
            assertEquals("int8@16", byName.get(v).nativeSpec().toString());
            assertEquals("int8@32", byName.get(down).nativeSpec().toString());
            io.bitplane.format.convert.Converter.convert(s, io.bitplane.format.convert.Recipe.auto(), bpm,
                    io.bitplane.format.convert.Converter.Progress.NONE);
        }
        try (io.bitplane.format.BpmFile f = io.bitplane.format.BpmFile.open(bpm)) {
            var tensors = f.metadata().quantization().get("tensors");
            assertEquals("ggml codes, group scales rounded to f16", tensors.get(q).get("quantizer").asText());
            assertEquals("ggml values rounded to int8", tensors.get(down).get("quantizer").asText());
            assertEquals("lossless", tensors.get("blk.0.attn_k.weight").get("quantizer").asText());
        }

        byte[] blocks = RandomGgmlBlocks.of(GgmlType.Q6_K, 32768, 1, rnd);
        ByteBuffer.wrap(blocks).order(ByteOrder.LITTLE_ENDIAN).putShort(210 * 7 + 208, (short) 0x7c00);  // d = inf
        Path inf = dir.resolve("inf.gguf");
        w.tensor(v, new long[] {128, 256}, GgmlType.Q6_K, blocks).write(inf);
        try (ModelSource s = ModelSources.open(inf, null)) {
            SourceTensor t = s.tensors().stream().filter(x -> x.name().equals(v)).findFirst().orElseThrow();
            BpmFormatException e = assertThrows(BpmFormatException.class, t::lossless);
            assertTrue(e.getMessage().startsWith(inf.toString()) && e.getMessage().contains(v)
                    && e.getMessage().contains("does not fit in f16"), e.getMessage());
        }

        Path iq = dir.resolve("iq2_xxs.gguf");  // IQ2_XXS (type 16): 66 bytes a block of 256
        w.tensor(v, new long[] {128, 256}, GgmlType.F32, new byte[128 * 66]).write(iq);
        byte[] bytes = Files.readAllBytes(iq);
        int at = indexOf(bytes, v.getBytes(java.nio.charset.StandardCharsets.UTF_8)) + v.length() + 4 + 2 * 8;
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putInt(at, 16);
        Files.write(iq, bytes);
        BpmFormatException e = assertThrows(BpmFormatException.class, () -> ModelSources.open(iq, null).close());
        assertTrue(e.getMessage().startsWith(iq.toString())
                && e.getMessage().contains("tensor " + v + ": ggml type 16") && e.getMessage().contains("Q4_K, Q5_K, Q6_K"),
                e.getMessage());
    }

    /** A tokenizer given with a GGUF or .bpm file supplies its vocabulary (convert --tokenizer), as at load. */
    @Test
    void aTokenizerGivenSuppliesTheVocabularyOfAGgufOrBpmFile() throws Exception {
        Path tok = SharedData.file("models/tok512.bin");
        Path gguf = dir.resolve("novocab.gguf");
        GgufWriter.llama(new ModelConfig(64, 128, 1, 2, 2, 512, 32, 10000f, 1e-5f, true), 4).write(gguf);
        Path bpm = dir.resolve("novocab.bpm");
        try (ModelSource s = ModelSources.open(gguf, null)) {
            assertEquals(null, s.metadata().vocabulary());
            io.bitplane.format.convert.Converter.convert(s, io.bitplane.format.convert.Recipe.auto(), bpm,
                    io.bitplane.format.convert.Converter.Progress.NONE);
        }
        for (Path p : List.of(gguf, bpm)) {
            try (ModelSource s = ModelSources.open(p, tok)) {
                assertEquals(512, s.metadata().vocabulary().size(), p.toString());
                assertEquals("llama", s.metadata().vocabulary().model());
            }
        }
        Path small = dir.resolve("small.gguf");
        GgufWriter.llama(new ModelConfig(64, 128, 1, 2, 2, 300, 32, 10000f, 1e-5f, true), 4).write(small);
        Exception e = assertThrows(Exception.class, () -> ModelSources.open(small, tok).close());
        assertTrue(e.getMessage().contains("tok512.bin"), e.getMessage());
    }

    private static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        throw new AssertionError("not found");
    }

    /** GGUF damage gives format errors, never other exceptions. */
    @Test
    void mutatedGgufFilesGiveFormatErrorsOnly() throws Exception {
        byte[] good = Files.readAllBytes(SharedData.file("fixtures/gguf/stories260K-q4_0.gguf"));
        Random rnd = new Random(31);
        Path p = dir.resolve("m.gguf");
        for (int iter = 0; iter < 400; iter++) {
            byte[] b = good.clone();
            // Damage the header region (metadata and tensor infos), where parsing decisions are made.
            int at = rnd.nextInt(Math.min(b.length, 12000));
            if (rnd.nextBoolean()) {
                b[at] ^= (byte) (1 << rnd.nextInt(8));
            } else if (at + 8 <= b.length) {
                ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(at, rnd.nextLong() >>> rnd.nextInt(64));
            }
            Files.write(p, b);
            try (ModelSource s = ModelSources.open(p, null)) {
                for (SourceTensor t : s.tensors()) {
                    t.floats();
                }
            } catch (BpmFormatException expected) {
                assertTrue(expected.getMessage().startsWith(p.toString()), expected.getMessage());
            } catch (Exception | Error e) {
                throw new AssertionError("iteration " + iter + " at " + at + ": " + e, e);
            }
        }
    }

    @Test
    void detectionByFirstBytes() throws Exception {
        assertEquals(ModelSources.Format.GGUF,
                ModelSources.detect(SharedData.file("fixtures/gguf/stories260K-f32.gguf")));
        assertEquals(ModelSources.Format.LLAMA2C_V1,
                ModelSources.detect(SharedData.file("models/stories260K_v1.bin")));
        assertFalse(Files.exists(dir.resolve("none")));
        assertThrows(java.nio.file.NoSuchFileException.class, () -> ModelSources.detect(dir.resolve("none")));
    }
}
