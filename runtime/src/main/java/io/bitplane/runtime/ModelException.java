package io.bitplane.runtime;

import java.io.IOException;

/** A model cannot be opened or used as asked; the message names the file, tensor or setting at fault. */
public class ModelException extends IOException {
    public ModelException(String message) {
        super(message);
    }
}
