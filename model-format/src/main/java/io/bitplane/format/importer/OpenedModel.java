package io.bitplane.format.importer;

import io.bitplane.format.ModelMetadata;

import java.util.List;

/** What every importer hands out: the metadata, the tensors, and what to release (the mapped files) on close. */
record OpenedModel(ModelMetadata metadata, List<SourceTensor> tensors, Runnable release) implements ModelSource {
    OpenedModel {
        tensors = List.copyOf(tensors);
    }

    @Override
    public void close() {
        release.run();
    }
}
