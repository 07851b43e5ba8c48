package io.bitplane.kernels.ffm;

import io.bitplane.kernels.scalar.RepackedWeights;

/**
 * Weights this backend re-laid at upload for one of its own C kernels ({@link SignTileWeights},
 * {@link Base3TileWeights}, {@link GroupLaneWeights}), as opposed to the Java backend's tiles, whose products it
 * hands back to that backend.
 */
sealed interface NativeRepackedWeights extends RepackedWeights
        permits SignTileWeights, Base3TileWeights, GroupLaneWeights {
}
