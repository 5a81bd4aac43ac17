/* libFuzzer target: vqc_tmap_open_memory, the weight-file front end, on arbitrary bytes: torch
 * zip archives, TorchScript archives, legacy torch.save files and safetensors (the seeds cover
 * each). Every tensor of a map that opens must address only bytes inside the input image or
 * inside buffers the map owns: the target reads the first and last byte of each one. */
#include "fuzzhelp.h"
#include "io/tensor_map.h"
#include "util/dtype.h"

/* Offset in bytes, from element [0,...,0], of the last element (numel > 0). */
static int64_t last_offset(const vqc_tensor_info *t)
{
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++)
        off += (t->shape[d] - 1) * t->strides[d];
    return off * (int64_t)vqc_dtype_size(t->dtype);
}

static void touch(const vqc_tensor_map *m, size_t i)
{
    const vqc_tensor_info *t = vqc_tmap_at(m, i);
    FUZZ_CHECK(t && t->name && t->ndim >= 0 && t->ndim <= VQC_MAX_DIMS && t->numel >= 0);
    FUZZ_CHECK(vqc_dtype_size(t->dtype) > 0);
    const vqc_tensor_info *g = vqc_tmap_get(m, t->name);
    FUZZ_CHECK(g && strcmp(g->name, t->name) == 0);
    if (t->numel == 0)
        return;
    const unsigned char *p = t->data;
    int64_t last = last_offset(t) + (int64_t)vqc_dtype_size(t->dtype) - 1;
    volatile unsigned char a = p[0], b = p[last];
    (void)a, (void)b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vqc_tensor_map *m = NULL;
    int rc = vqc_tmap_open_memory(data, size, "fuzz.ckpt", &m);
    fuzz_check_error(rc, NULL, 0);
    if (rc)
        return 0;
    for (size_t i = 0; i < vqc_tmap_count(m); i++)
        touch(m, i);
    FUZZ_CHECK(vqc_tmap_at(m, vqc_tmap_count(m)) == NULL);
    FUZZ_CHECK(vqc_tmap_format(m) != NULL);
    FUZZ_CHECK(vqc_tmap_file_size(m) == size);
    (void)vqc_tmap_meta(m, "format");
    vqc_tmap_free(m);
    return 0;
}
