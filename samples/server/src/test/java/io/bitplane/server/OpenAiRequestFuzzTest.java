package io.bitplane.server;

import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * Any JSON body, for either endpoint, is a request or a 400 naming what is wrong: never another exception (which
 * the server would answer with a 500).
 */
class OpenAiRequestFuzzTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @FuzzTest(maxDuration = "4m")
    void anyJsonBody(byte[] body) {
        if (body.length == 0) {
            return;
        }
        JsonNode node;
        try {
            node = JSON.readTree(body, 1, body.length - 1);
        } catch (java.io.IOException notJson) {  // the server answers these with a 400 before parsing
            return;
        }
        try {
            OpenAiRequest r = OpenAiRequest.parse(node, (body[0] & 1) == 1, 4096);
            assertNotNull(r.sampler());
        } catch (ApiError refused) {
            assertEquals(400, refused.status, refused.getMessage());
            assertNotNull(refused.getMessage());
        }
    }
}
