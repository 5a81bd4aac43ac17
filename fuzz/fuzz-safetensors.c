/* libFuzzer target: the safetensors parser (vqc_safetensors_parse) on arbitrary bytes. Each
 * tensor of an index that parses must lie inside the data area: the target reads its first and
 * last byte (safetensors tensors are C-contiguous). */
#include "fuzzhelp.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vqc_st_index ix;
    memset(&ix, 0, sizeof ix);
    int rc = vqc_safetensors_parse(data, size, "fuzz.safetensors", &ix);
    fuzz_check_error(rc, data, size);
    for (size_t i = 0; rc == 0 && i < ix.count; i++) {
        const vqc_tensor_info *t = &ix.tensors[i];
        FUZZ_CHECK(t->name && t->numel >= 0 && t->ndim >= 0 && t->ndim <= VQC_MAX_DIMS);
        size_t bytes = (size_t)t->numel * vqc_dtype_size(t->dtype);
        if (bytes == 0)
            continue;
        const uint8_t *p = t->data;
        FUZZ_CHECK(p >= data && p + bytes <= data + size);
        volatile uint8_t a = p[0], b = p[bytes - 1];
        (void)a, (void)b;
    }
    for (size_t i = 0; rc == 0 && i < 2 * ix.nmeta; i++)
        FUZZ_CHECK(ix.meta[i] != NULL);
    vqc_st_index_free(&ix);
    return 0;
}
