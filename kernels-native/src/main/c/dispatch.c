/*
 * The exported functions of bitplane_kernels.h: each forwards to the implementation chosen once from the CPU's
 * features: AVX-512 with VNNI where the CPU has it, else AVX2 with FMA and F16C, else the portable C build of the
 * same kernels. build.sh defines BP_WITHOUT_AVX512 where its compiler could not build the AVX-512 kernels.
 */
#include "bitplane_kernels.h"
#include "kernels_impl.h"

typedef struct {
    int64_t (*scratch_bytes)(int64_t, int64_t, int32_t);
    float (*quantize_i8)(const float *, int64_t, int8_t *);
    void (*matmul_float)(const void *, int32_t, int64_t, const float *, float *, int32_t, int64_t, int64_t,
                         int64_t);
    void (*matmul_quantized_f32)(const void *, int32_t, int32_t, int64_t, int64_t, int64_t, int64_t,
                                 const float *, float *, int32_t, int64_t, int64_t, int64_t, void *);
    void (*matmul_quantized_i8)(const void *, int32_t, int32_t, int64_t, int64_t, int64_t, int64_t,
                                const int8_t *, const float *, float *, int32_t, int64_t, int64_t, int64_t, void *);
    void (*matmul_xnor)(const void *, int64_t, int64_t, int64_t, const uint64_t *, const float *, float *, int32_t,
                        int64_t, int64_t, int64_t);
    int64_t (*sign_tiles_bytes)(int64_t, int64_t, int64_t);
    void (*sign_tiles_repack)(const void *, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, void *);
    int64_t (*sign_tables_bytes)(int64_t, int64_t);
    void (*sign_tables)(const int8_t *, int64_t, int64_t, int16_t *, int32_t *);
    void (*matmul_sign_tiles)(const void *, int64_t, int64_t, int64_t, const int16_t *, const int32_t *,
                              const float *, float, float *, int64_t, int64_t);
    int64_t (*base3_tiles_bytes)(int64_t, int64_t, int64_t);
    int64_t (*base3_tiles_repack)(const void *, int32_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                  void *);
    int64_t (*base3_tables_bytes)(int64_t, int64_t);
    void (*base3_tables)(const int8_t *, int64_t, int64_t, int16_t *);
    void (*matmul_base3_tiles)(const void *, int64_t, int64_t, int64_t, const int16_t *, float, float *, int64_t,
                               int64_t);
    int64_t (*group_lanes_bytes)(int32_t, int64_t, int64_t);
    void (*group_lanes_repack)(const void *, int32_t, int32_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                               void *);
    void (*matmul_group_lanes)(const void *, int32_t, int64_t, int64_t, const int8_t *, const float *, float *,
                               int32_t, int64_t, int64_t, void *);
    void (*attention)(const float *, const float *, const float *, float *, const int32_t *, int32_t, int32_t,
                      int64_t, int32_t, int64_t, int64_t, float *);
    int64_t (*stream_read)(const void *, int64_t);
} kernel_table;

/* One implementation's functions, in kernel_table's order. */
#define KERNEL_TABLE(impl)                                                                                      \
    {bp_##impl##_scratch_bytes, bp_##impl##_quantize_i8, bp_##impl##_matmul_float,                            \
     bp_##impl##_matmul_quantized_f32, bp_##impl##_matmul_quantized_i8, bp_##impl##_matmul_xnor,              \
     bp_##impl##_sign_tiles_bytes, bp_##impl##_sign_tiles_repack, bp_##impl##_sign_tables_bytes,               \
     bp_##impl##_sign_tables, bp_##impl##_matmul_sign_tiles, bp_##impl##_base3_tiles_bytes,                  \
     bp_##impl##_base3_tiles_repack, bp_##impl##_base3_tables_bytes, bp_##impl##_base3_tables,               \
     bp_##impl##_matmul_base3_tiles, bp_##impl##_group_lanes_bytes,                                          \
     bp_##impl##_group_lanes_repack, bp_##impl##_matmul_group_lanes, bp_##impl##_attention,                 \
     bp_##impl##_stream_read}

static const kernel_table PORTABLE = KERNEL_TABLE(portable);
#if defined(__x86_64__)
static const kernel_table AVX2 = KERNEL_TABLE(avx2);
#ifndef BP_WITHOUT_AVX512
static const kernel_table AVX512 = KERNEL_TABLE(avx512);
#endif
#endif

static const kernel_table *active;
static int32_t active_isa;

int32_t bp_abi_version(void) {
    return BP_ABI_VERSION;
}

int32_t bp_best_isa(void) {
#if defined(__x86_64__)
    __builtin_cpu_init(); /* its AVX and AVX-512 answers include the OS saving those registers (XCR0) */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
#ifndef BP_WITHOUT_AVX512
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni")) {
            return BP_ISA_AVX512;
        }
#endif
        return BP_ISA_AVX2;
    }
#endif
    return BP_ISA_PORTABLE;
}

int32_t bp_select_isa(int32_t isa) {
    int32_t best = bp_best_isa();
    if (isa > best) {
        isa = best;
    }
#if defined(__x86_64__)
#ifndef BP_WITHOUT_AVX512
    if (isa == BP_ISA_AVX512) {
        active = &AVX512;
        active_isa = BP_ISA_AVX512;
        return active_isa;
    }
#endif
    if (isa == BP_ISA_AVX2) {
        active = &AVX2;
        active_isa = BP_ISA_AVX2;
        return active_isa;
    }
#endif
    active = &PORTABLE;
    active_isa = BP_ISA_PORTABLE;
    return active_isa;
}

static const kernel_table *kernels(void) {
    if (active == 0) {
        bp_select_isa(bp_best_isa());
    }
    return active;
}

int64_t bp_scratch_bytes(int64_t k, int64_t group, int32_t batch) {
    return kernels()->scratch_bytes(k, group, batch);
}

float bp_quantize_i8(const float *x, int64_t k, int8_t *q) {
    return kernels()->quantize_i8(x, k, q);
}

void bp_matmul_float(const void *w, int32_t encoding, int64_t k, const float *x, float *y, int32_t batch,
                     int64_t n, int64_t row_start, int64_t row_end) {
    kernels()->matmul_float(w, encoding, k, x, y, batch, n, row_start, row_end);
}

void bp_matmul_quantized_f32(const void *w, int32_t encoding, int32_t layout, int64_t k, int64_t group,
                             int64_t scales_offset, int64_t mins_offset, const float *x, float *y, int32_t batch,
                             int64_t n, int64_t row_start, int64_t row_end, void *scratch) {
    kernels()->matmul_quantized_f32(w, encoding, layout, k, group, scales_offset, mins_offset, x, y, batch, n,
                                    row_start, row_end, scratch);
}

void bp_matmul_quantized_i8(const void *w, int32_t encoding, int32_t layout, int64_t k, int64_t group,
                            int64_t scales_offset, int64_t mins_offset, const int8_t *xq, const float *xscales,
                            float *y, int32_t batch, int64_t n, int64_t row_start, int64_t row_end, void *scratch) {
    kernels()->matmul_quantized_i8(w, encoding, layout, k, group, scales_offset, mins_offset, xq, xscales, y, batch, n,
                                   row_start, row_end, scratch);
}

void bp_matmul_xnor(const void *w, int64_t k, int64_t group, int64_t scales_offset, const uint64_t *xbits,
                    const float *xscales, float *y, int32_t batch, int64_t n, int64_t row_start, int64_t row_end) {
    kernels()->matmul_xnor(w, k, group, scales_offset, xbits, xscales, y, batch, n, row_start, row_end);
}

int64_t bp_sign_tiles_bytes(int64_t n, int64_t k, int64_t group) {
    return kernels()->sign_tiles_bytes(n, k, group);
}

void bp_sign_tiles_repack(const void *w, int64_t k, int64_t group, int64_t scales_offset, int64_t n,
                          int64_t tile_start, int64_t tile_end, void *tiles) {
    kernels()->sign_tiles_repack(w, k, group, scales_offset, n, tile_start, tile_end, tiles);
}

int64_t bp_sign_tables_bytes(int64_t k, int64_t group) {
    return kernels()->sign_tables_bytes(k, group);
}

void bp_sign_tables(const int8_t *q, int64_t k, int64_t group, int16_t *tables, int32_t *code_sums) {
    kernels()->sign_tables(q, k, group, tables, code_sums);
}

void bp_matmul_sign_tiles(const void *tiles, int64_t k, int64_t group, int64_t n, const int16_t *tables,
                          const int32_t *code_sums, const float *scales, float xscale, float *y, int64_t tile_start,
                          int64_t tile_end) {
    kernels()->matmul_sign_tiles(tiles, k, group, n, tables, code_sums, scales, xscale, y, tile_start, tile_end);
}

int64_t bp_base3_tiles_bytes(int64_t n, int64_t k, int64_t group) {
    return kernels()->base3_tiles_bytes(n, k, group);
}

int64_t bp_base3_tiles_repack(const void *w, int32_t layout, int64_t k, int64_t group, int64_t scales_offset,
                              int64_t n, int64_t tile_start, int64_t tile_end, void *tiles) {
    return kernels()->base3_tiles_repack(w, layout, k, group, scales_offset, n, tile_start, tile_end, tiles);
}

int64_t bp_base3_tables_bytes(int64_t k, int64_t group) {
    return kernels()->base3_tables_bytes(k, group);
}

void bp_base3_tables(const int8_t *q, int64_t k, int64_t group, int16_t *tables) {
    kernels()->base3_tables(q, k, group, tables);
}

void bp_matmul_base3_tiles(const void *tiles, int64_t k, int64_t group, int64_t n, const int16_t *tables,
                           float xscale, float *y, int64_t tile_start, int64_t tile_end) {
    kernels()->matmul_base3_tiles(tiles, k, group, n, tables, xscale, y, tile_start, tile_end);
}

int64_t bp_group_lanes_bytes(int32_t encoding, int64_t n, int64_t k) {
    return kernels()->group_lanes_bytes(encoding, n, k);
}

void bp_group_lanes_repack(const void *w, int32_t encoding, int32_t layout, int64_t k, int64_t n,
                           int64_t scales_offset, int64_t mins_offset, int64_t block_start, int64_t block_end,
                           void *lanes) {
    kernels()->group_lanes_repack(w, encoding, layout, k, n, scales_offset, mins_offset, block_start, block_end,
                                  lanes);
}

void bp_matmul_group_lanes(const void *lanes, int32_t encoding, int64_t k, int64_t n, const int8_t *xq,
                           const float *xscales, float *y, int32_t batch, int64_t block_start, int64_t block_end,
                           void *scratch) {
    kernels()->matmul_group_lanes(lanes, encoding, k, n, xq, xscales, y, batch, block_start, block_end, scratch);
}

void bp_attention(const float *q, const float *keys, const float *values, float *out, const int32_t *positions,
                  int32_t n_heads, int32_t n_kv_heads, int64_t head_size, int32_t unit_heads, int64_t unit_start,
                  int64_t unit_end, float *scores) {
    kernels()->attention(q, keys, values, out, positions, n_heads, n_kv_heads, head_size, unit_heads, unit_start,
                         unit_end, scores);
}

int64_t bp_stream_read(const void *data, int64_t bytes) {
    return kernels()->stream_read(data, bytes);
}
