package io.bitplane.runtime;

import io.bitplane.format.SharedData;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/** Test classes that run stories260K: the model, opened once per class. */
abstract class OnStories260K {
    static Model model;

    @BeforeAll
    static void openStories260K() throws Exception {
        model = Model.open(SharedData.stories260K());
    }

    @AfterAll
    static void closeStories260K() {
        model.close();
    }
}
