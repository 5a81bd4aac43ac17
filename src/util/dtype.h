/* Element types shared by the readers (plain C) and the libtorch shim. */
#ifndef VQC_UTIL_DTYPE_H
#define VQC_UTIL_DTYPE_H

#include <stddef.h>

typedef enum vqc_dtype {
    VQC_DTYPE_F32 = 0,
    VQC_DTYPE_F16,
    VQC_DTYPE_BF16,
    VQC_DTYPE_F64,
    VQC_DTYPE_I64,
    VQC_DTYPE_I32,
    VQC_DTYPE_I16,
    VQC_DTYPE_I8,
    VQC_DTYPE_U8,
    VQC_DTYPE_BOOL,
    VQC_DTYPE_COUNT
} vqc_dtype;

/* Size in bytes of one element of `dt`; 0 for an invalid value. */
size_t vqc_dtype_size(vqc_dtype dt);

/* Short name ("F32", "F16", ... as safetensors spells them); "?" for an invalid value. */
const char *vqc_dtype_name(vqc_dtype dt);

/* Parses a safetensors dtype name ("F32", "BF16", "I64", "BOOL", ...). Returns 0 and sets *out,
 * or -1 when the name is unknown. */
int vqc_dtype_parse(const char *name, vqc_dtype *out);

#endif
