#include "util/dtype.h"

#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtype_table[VQC_DTYPE_COUNT] = {
    [VQC_DTYPE_F32] = {"F32", 4},   [VQC_DTYPE_F16] = {"F16", 2}, [VQC_DTYPE_BF16] = {"BF16", 2},
    [VQC_DTYPE_F64] = {"F64", 8},   [VQC_DTYPE_I64] = {"I64", 8}, [VQC_DTYPE_I32] = {"I32", 4},
    [VQC_DTYPE_I16] = {"I16", 2},   [VQC_DTYPE_I8] = {"I8", 1},   [VQC_DTYPE_U8] = {"U8", 1},
    [VQC_DTYPE_BOOL] = {"BOOL", 1},
};

size_t vqc_dtype_size(vqc_dtype dt)
{
    return ((unsigned)dt < VQC_DTYPE_COUNT) ? dtype_table[dt].size : 0;
}

const char *vqc_dtype_name(vqc_dtype dt)
{
    return ((unsigned)dt < VQC_DTYPE_COUNT) ? dtype_table[dt].name : "?";
}

int vqc_dtype_parse(const char *name, vqc_dtype *out)
{
    for (int i = 0; i < VQC_DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_table[i].name) == 0) {
            *out = (vqc_dtype)i;
            return 0;
        }
    }
    return -1;
}
