package io.bitplane.cli;

import io.bitplane.format.BpmFile;
import io.bitplane.format.ModelCheck;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code bitplane verify}: structure, checksums and model consistency; exit 0 only for a sound file. */
@Command(name = "verify", mixinStandardHelpOptions = true,
        description = "Check a .bpm file: structure, every checksum, and that its tensors fit its metadata.")
final class VerifyCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, description = "The .bpm file.")
    Path model;

    @Override
    public Integer call() throws Exception {
        try (BpmFile file = BpmFile.open(model)) {
            List<String> problems = new ArrayList<>(file.verifyChecksums());
            problems.addAll(ModelCheck.problems(file));
            if (!problems.isEmpty()) {
                problems.forEach(p -> System.err.println("bitplane verify: " + p));
                return 1;
            }
            System.out.println(model + ": OK (" + file.tensors().size() + " tensors, " + file.fileSize()
                    + " bytes, header and tensor checksums match, tensors fit the metadata)");
            return 0;
        }
    }
}
