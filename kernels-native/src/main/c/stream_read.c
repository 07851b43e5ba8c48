/*
 * bp_stream_read: a read of memory as the kernels stream weights, for `bitplane bench`'s roofline.
 *
 * Layout: any bytes at any address; 64 bytes a step (two 32-byte loads), the tail word by word, then byte by byte.
 * The AVX2 and AVX-512 builds prefetch as the weight loops do: into L1 prefetch_distance ahead, into L2 L2_AHEAD
 * times as far. A plain Java loop cannot prefetch, and on the Intel machine (2 threads) it read 27-28 GB/s where this
 * loop reads 33.3-33.6 and the same loop without prefetches 29.3-29.7 (docs/PERFORMANCE.md, "A roofline read as
 * the kernels read"): native kernels that prefetch had passed "100%" of a roofline measured without.
 */
#include <string.h>

#include "bitplane_kernels.h"
#include "kernels_impl.h"

int64_t BP_FN(_stream_read)(const void *data, int64_t bytes) {
    const uint8_t *p = data;
    uint64_t sum = 0;
    int64_t i = 0;
#ifdef __AVX2__
    int64_t ahead = prefetch_distance(2048, 4096);
    __m256i a = _mm256_setzero_si256();
    __m256i b = _mm256_setzero_si256();
    for (; i + 64 <= bytes; i += 64) {
        /* A prefetch past the end of the memory is a hint, never a fault. */
        _mm_prefetch((const char *) p + i + ahead, _MM_HINT_T0);
        _mm_prefetch((const char *) p + i + L2_AHEAD * ahead, _MM_HINT_T2);
        a = _mm256_add_epi64(a, _mm256_loadu_si256((const __m256i *) (p + i)));
        b = _mm256_add_epi64(b, _mm256_loadu_si256((const __m256i *) (p + i + 32)));
    }
    uint64_t lanes[4];
    _mm256_storeu_si256((__m256i *) lanes, _mm256_add_epi64(a, b));
    sum = lanes[0] + lanes[1] + lanes[2] + lanes[3];
#endif
    for (; i + 8 <= bytes; i += 8) {
        uint64_t word;
        memcpy(&word, p + i, 8);
        sum += word;
    }
    for (; i < bytes; i++) {
        sum += p[i];
    }
    return (int64_t) sum;
}
