package io.bitplane.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.bitplane.format.BpmFile;
import io.bitplane.format.BpmTensor;
import io.bitplane.format.MetadataJson;
import io.bitplane.format.ModelConfig;
import io.bitplane.format.TensorSpec;
import io.bitplane.format.Vocabulary;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.StringJoiner;
import java.util.TreeMap;
import java.util.concurrent.Callable;

/** {@code bitplane inspect}: the tensor table of a .bpm file with bits per weight and totals. */
@Command(name = "inspect", mixinStandardHelpOptions = true, description = "Show the tensors of a .bpm file.")
final class InspectCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, description = "The .bpm file.")
    Path model;

    @Option(names = "--json", description = "Print JSON instead of a table.")
    boolean json;

    @Override
    public Integer call() throws Exception {
        try (BpmFile file = BpmFile.open(model)) {
            ObjectNode report = report(file);
            if (json) {
                System.out.println(MetadataJson.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(report));
            } else {
                printTable(file, report);
            }
        }
        return 0;
    }

    static ObjectNode report(BpmFile file) {
        ObjectNode r = MetadataJson.newObject();
        r.put("file", file.path().toString());
        r.put("file_bytes", file.fileSize());
        ModelConfig c = file.metadata().config();
        r.set("config", MetadataJson.mapper().valueToTree(c));
        r.set("source", file.metadata().source());
        r.set("quantization_recipe", file.metadata().quantization().deepCopy().without("tensors"));
        Vocabulary v = file.metadata().vocabulary();
        if (v != null) {  // what a tokenizer is, not its tokens
            ObjectNode tok = r.putObject("tokenizer");
            tok.put("model", v.model());
            if (v.preTokenizer() != null) {
                tok.put("pre_tokenizer", v.preTokenizer());
            }
            tok.put("tokens", v.size());
            tok.put("merges", v.merges().size());
            tok.put("bos_id", v.bosId());
            tok.put("eos_id", v.eosId());
            tok.put("add_bos", v.addBos());
            tok.put("chat_template", v.chatTemplate() != null);
        }
        ArrayNode tensors = r.putArray("tensors");
        long weights = 0;
        long bytes = 0;
        long matrixWeights = 0;
        long matrixBytes = 0;
        for (BpmTensor t : file.tensors()) {
            TensorSpec s = t.spec();
            ObjectNode o = tensors.addObject();
            o.put("name", s.name());
            ArrayNode shape = o.putArray("shape");
            Arrays.stream(s.shape()).forEach(shape::add);
            o.put("encoding", s.encoding().name());
            o.put("group", s.groupSize());
            o.put("layout", s.layout() == TensorSpec.LAYOUT_PACKED ? "packed"
                    : s.encoding().isBitPlanes() ? "planes" : "-");
            o.put("activations", s.activations().name());
            o.put("bits_per_weight", s.bitsPerWeight());
            o.put("bytes", s.byteLength());
            JsonNode quantizer = file.metadata().quantization().path("tensors").path(s.name()).path("quantizer");
            if (quantizer.isTextual()) {  // how the conversion made it: "lossless", "clip_search", "gptq", ...
                o.put("quantizer", quantizer.asText());
            }
            weights += s.elementCount();
            bytes += s.byteLength();
            if (s.rank() == 2) {
                matrixWeights += s.elementCount();
                matrixBytes += s.byteLength();
            }
        }
        ObjectNode totals = r.putObject("totals");
        totals.put("tensors", file.tensors().size());
        totals.put("weights", weights);
        totals.put("tensor_bytes", bytes);
        totals.put("bits_per_weight", weights == 0 ? 0 : bytes * 8.0 / weights);
        totals.put("matrix_bits_per_weight", matrixWeights == 0 ? 0 : matrixBytes * 8.0 / matrixWeights);
        return r;
    }

    private static void printTable(BpmFile file, ObjectNode r) {
        System.out.printf(Locale.ROOT, "%s: %s model, %s%n", file.path(), file.metadata().architecture(),
                file.metadata().config());
        System.out.printf(Locale.ROOT, "source: %s; recipe: %s%n", r.get("source"), r.get("quantization_recipe"));
        JsonNode tok = r.path("tokenizer");
        if (!tok.isMissingNode()) {
            StringBuilder line = new StringBuilder("tokenizer: ").append(tok.get("model").asText());
            if (tok.has("pre_tokenizer")) {
                line.append(" (pre-tokenizer ").append(tok.get("pre_tokenizer").asText()).append(')');
            }
            line.append(", ").append(tok.get("tokens").asInt()).append(" tokens");
            if (tok.get("merges").asInt() > 0) {
                line.append(", ").append(tok.get("merges").asInt()).append(" merges");
            }
            line.append(", BOS ").append(tok.get("bos_id").asInt())
                    .append(tok.get("add_bos").asBoolean() ? "" : " (not added)")
                    .append(", EOS ").append(tok.get("eos_id").asInt())
                    .append(tok.get("chat_template").asBoolean() ? ", chat template" : "");
            System.out.println(line);
        }
        System.out.printf(Locale.ROOT, "%-28s %-14s %-10s %6s %-6s %5s %8s %12s%n", "tensor", "shape", "encoding",
                "group", "layout", "act", "bits/w", "bytes");
        for (var t : r.get("tensors")) {
            System.out.printf(Locale.ROOT, "%-28s %-14s %-10s %6s %-6s %5s %8.3f %12d%n", t.get("name").asText(),
                    t.get("shape").toString(), t.get("encoding").asText(),
                    t.get("group").asInt() == 0 ? "row" : t.get("group").asText(), t.get("layout").asText(),
                    t.get("activations").asText(),
                    t.get("bits_per_weight").asDouble(), t.get("bytes").asLong());
        }
        var totals = r.get("totals");
        System.out.printf(Locale.ROOT, "total: %d tensors, %d weights, %d tensor bytes, %.3f bits/weight "
                        + "(matrices %.3f), file %d bytes%n", totals.get("tensors").asInt(),
                totals.get("weights").asLong(), totals.get("tensor_bytes").asLong(),
                totals.get("bits_per_weight").asDouble(), totals.get("matrix_bits_per_weight").asDouble(),
                file.fileSize());
        Map<String, Integer> quantizers = new TreeMap<>();
        for (var t : r.get("tensors")) {
            if (t.has("quantizer")) {
                quantizers.merge(t.get("quantizer").asText(), 1, Integer::sum);
            }
        }
        if (!quantizers.isEmpty()) {  // one line: which tensors were copied, rounded or calibrated, and how many
            StringJoiner line = new StringJoiner("; ", "quantizers: ", "");
            quantizers.forEach((q, n) -> line.add(q + " x" + n));
            System.out.println(line);
        }
    }
}
