/*
 * The functions each implementation of kernels.c and sign_tiles.c defines. Both are compiled once per instruction set
 * (build.sh), with BP_IMPL naming the set; dispatch.c picks one set at load time and forwards the public
 * functions of bitplane_kernels.h to it.
 */
#ifndef BITPLANE_KERNELS_IMPL_H
#define BITPLANE_KERNELS_IMPL_H

#include "bitplane_kernels.h"

#define BP_CAT3(a, b, c) a##b##c
#define BP_IMPL_NAME(impl, f) BP_CAT3(bp_, impl, f)

/* In a kernel source, compiled once per implementation with -DBP_IMPL=portable, avx2 or avx512 (build.sh),
   BP_FN(f) names that implementation's f; dispatch.c, which includes this file without BP_IMPL, names them all. */
#ifdef BP_IMPL
#define BP_FN(f) BP_IMPL_NAME(BP_IMPL, f)
#endif

#define BP_DECLARE_IMPL(impl)                                                                                   \
    void BP_IMPL_NAME(impl, _matmul_float)(const void *w, int32_t encoding, int64_t k, const float *x, float *y,\
                                           int32_t batch, int64_t n, int64_t row_start, int64_t row_end);       \
    int64_t BP_IMPL_NAME(impl, _scratch_bytes)(int64_t k, int64_t group, int32_t batch);                        \
    float BP_IMPL_NAME(impl, _quantize_i8)(const float *x, int64_t k, int8_t *q);                               \
    void BP_IMPL_NAME(impl, _matmul_quantized_f32)(const void *w, int32_t encoding, int32_t layout, int64_t k,   \
                                                   int64_t group, int64_t scales_offset, int64_t mins_offset,    \
                                                   const float *x, float *y, int32_t batch, int64_t n,          \
                                                   int64_t row_start, int64_t row_end, void *scratch);          \
    void BP_IMPL_NAME(impl, _matmul_quantized_i8)(const void *w, int32_t encoding, int32_t layout, int64_t k,    \
                                                  int64_t group, int64_t scales_offset, int64_t mins_offset,     \
                                                  const int8_t *xq, const float *xscales, float *y,             \
                                                  int32_t batch, int64_t n, int64_t row_start, int64_t row_end, \
                                                  void *scratch);                                               \
    void BP_IMPL_NAME(impl, _matmul_xnor)(const void *w, int64_t k, int64_t group, int64_t scales_offset,      \
                                          const uint64_t *xbits, const float *xscales, float *y, int32_t batch, \
                                          int64_t n, int64_t row_start, int64_t row_end);                      \
    int64_t BP_IMPL_NAME(impl, _sign_tiles_bytes)(int64_t n, int64_t k);                                        \
    void BP_IMPL_NAME(impl, _sign_tiles_repack)(const void *w, int64_t k, int64_t n, int64_t tile_start,       \
                                                int64_t tile_end, void *tiles);                                 \
    int64_t BP_IMPL_NAME(impl, _sign_tables_bytes)(int64_t k);                                                  \
    int32_t BP_IMPL_NAME(impl, _sign_tables)(const int8_t *q, int64_t k, int16_t *tables);                      \
    void BP_IMPL_NAME(impl, _matmul_sign_tiles)(const void *tiles, int64_t k, int64_t n, const int16_t *tables,\
                                                int32_t code_sum, const float *scales, float xscale, float *y,  \
                                                int64_t tile_start, int64_t tile_end);

BP_DECLARE_IMPL(portable)
#if defined(__x86_64__)
BP_DECLARE_IMPL(avx2)
BP_DECLARE_IMPL(avx512)
#endif

#endif
