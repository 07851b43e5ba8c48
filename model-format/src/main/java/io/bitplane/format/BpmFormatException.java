package io.bitplane.format;

import java.io.IOException;

/** A model file (any format Bitplane reads) is malformed; the message names the file and what is wrong. */
public class BpmFormatException extends IOException {
    public BpmFormatException(String message) {
        super(message);
    }

    public BpmFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
