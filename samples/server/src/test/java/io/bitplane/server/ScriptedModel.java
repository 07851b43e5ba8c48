package io.bitplane.server;

import io.bitplane.format.ModelConfig;
import io.bitplane.format.Vocabulary;
import io.bitplane.format.importer.GgufWriter;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A tiny Llama GGUF that answers every chat with the same reply, for testing what the server makes of a reply (a
 * real model's words cannot be chosen). Its vocabulary is byte-level BPE with one merge no text meets (the prompt
 * is written byte by byte), the chat specials of Qwen and Llama 3, and one token per piece of the reply. Its one
 * layer adds nothing to the residual (zero output projections), the embeddings are one-hot, and the classifier
 * maps each token to the next piece of the reply with a logit near 160 against 0: whatever the prompt and the
 * sampler, the token after a prompt ending in a new line is the first piece, and each piece is followed by the next.
 */
final class ScriptedModel {
    private ScriptedModel() {
    }

    static final List<String> CONTROL = List.of("<|begin_of_text|>", "<|im_start|>", "<|im_end|>", "<|eot_id|>",
            "<|start_header_id|>", "<|end_header_id|>");
    static final List<String> USER_DEFINED = List.of("<tool_call>", "</tool_call>", "<think>", "</think>");

    /**
     * Writes the model to {@code file}: chat template {@code template}, replying {@code reply} (pieces; one that is a
     * special token's text is that token, and the last should end the turn).
     */
    static Path write(Path file, String template, List<String> reply) throws IOException {
        List<String> tokens = new ArrayList<>();
        List<Integer> types = new ArrayList<>();
        for (int b = 0; b < 256; b++) {
            tokens.add(String.valueOf(byteChar(b)));
            types.add(Vocabulary.TYPE_NORMAL);
        }
        String merge = byteChar(0) + " " + byteChar(1);  // one merge (a vocabulary needs some) no prompt meets
        tokens.add(merge.replace(" ", ""));
        types.add(Vocabulary.TYPE_NORMAL);
        CONTROL.forEach(t -> { tokens.add(t); types.add(Vocabulary.TYPE_CONTROL); });
        USER_DEFINED.forEach(t -> { tokens.add(t); types.add(Vocabulary.TYPE_USER_DEFINED); });
        int[] chain = new int[reply.size() + 1];
        chain[0] = '\n';  // the byte token that ends both templates' generation prompts
        for (int i = 0; i < reply.size(); i++) {
            String piece = reply.get(i);
            int special = tokens.indexOf(piece);
            if (special >= 256) {
                chain[i + 1] = special;
            } else {
                chain[i + 1] = tokens.size();
                tokens.add(bytesAsChars(piece));
                types.add(Vocabulary.TYPE_NORMAL);
            }
        }
        int dim = (tokens.size() + 7) / 8 * 8;
        while (tokens.size() < dim) {
            tokens.add("<unused" + tokens.size() + ">");
            types.add(Vocabulary.TYPE_UNUSED);
        }
        ModelConfig config = new ModelConfig(dim, 32, 1, 4, 4, dim, 2048, 10000f, 1e-5f, false);
        float[] embeddings = new float[dim * dim];
        float[] classifier = new float[dim * dim];
        for (int t = 0; t < dim; t++) {
            embeddings[t * dim + t] = 1;
        }
        for (int i = 0; i + 1 < chain.length; i++) {
            classifier[chain[i + 1] * dim + chain[i]] = 10;  // row: the next token; column: this one
        }
        GgufWriter w = GgufWriter.llama(config, 1)
                .tensor("token_embd.weight", new long[] {dim, dim}, embeddings)
                .tensor("output.weight", new long[] {dim, dim}, classifier)
                .tensor("blk.0.attn_output.weight", new long[] {dim, dim}, new float[dim * dim])
                .tensor("blk.0.ffn_down.weight", new long[] {dim, 32}, new float[dim * 32])
                .put("tokenizer.ggml.model", Vocabulary.BYTE_LEVEL_BPE)
                .put("tokenizer.ggml.pre", "qwen2")
                .put("tokenizer.ggml.tokens", tokens)
                .put("tokenizer.ggml.token_type", types)
                .put("tokenizer.ggml.merges", List.of(merge))
                .put("tokenizer.ggml.bos_token_id", tokens.indexOf("<|begin_of_text|>"))
                .put("tokenizer.ggml.eos_token_id", tokens.indexOf("<|im_end|>"))
                .put("tokenizer.chat_template", template);
        w.write(file);
        return file;
    }

    /** GPT-2's printable character for a byte (the byte-level alphabet). */
    private static char byteChar(int b) {
        if (b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF) {
            return (char) b;
        }
        int extra = 0;
        for (int i = 0; i < b; i++) {
            if (!(i >= '!' && i <= '~' || i >= 0xA1 && i <= 0xAC || i >= 0xAE && i <= 0xFF)) {
                extra++;
            }
        }
        return (char) (256 + extra);
    }

    private static String bytesAsChars(String text) {
        StringBuilder sb = new StringBuilder();
        for (byte b : text.getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
            sb.append(byteChar(b & 0xFF));
        }
        return sb.toString();
    }
}
