package io.bitplane.example;

import io.bitplane.runtime.GenerationRequest;
import io.bitplane.runtime.GenerationResult;
import io.bitplane.runtime.Model;
import io.bitplane.runtime.SamplerSettings;
import io.bitplane.runtime.Session;

import java.nio.file.Path;

/**
 * Loads a model and streams a story to stdout. Run with JDK 25:
 * <pre>
 * java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp ... \
 *      io.bitplane.example.StoryTeller path/to/model.bpm "Once upon a time"
 * </pre>
 */
public final class StoryTeller {
    public static void main(String[] args) throws Exception {
        Path modelPath = Path.of(args.length > 0 ? args[0] : System.getenv("BITPLANE_MODEL"));
        String prompt = args.length > 1 ? args[1] : "Once upon a time";

        // A Model is thread-safe and holds the weights (memory-mapped); a Session holds one conversation's cache.
        try (Model model = Model.open(modelPath);
             Session session = model.newSession()) {
            GenerationRequest request = GenerationRequest.of(prompt, 200)
                    .withSampler(SamplerSettings.of(0.8f, 0.9f, 42));
            System.out.print(prompt);
            GenerationResult result = session.generate(request, token -> System.out.print(token.text()));
            System.out.printf("%n[%d tokens, %.0f tokens/s, %s]%n", result.generatedTokens(),
                    result.tokensPerSecond(), result.finishReason());
        }
    }

    private StoryTeller() {
    }
}
