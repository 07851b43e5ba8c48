package io.bitplane.runtime;

/**
 * One step of a generation.
 *
 * @param id    the token id, or {@link #TRAILING} for the last event of a generation that releases text held back
 *              (an incomplete character, or text that could have begun a stop string)
 * @param text  the text released by this step: may be empty while a character or a possible stop string is
 *              incomplete; the texts of all events concatenate to the whole output
 */
public record GeneratedToken(int id, String text) {
    public static final int TRAILING = -1;
}
