/* A PNG's tEXt metadata, read without decoding the image. */
#ifndef VQC_IO_PNG_TEXT_H
#define VQC_IO_PNG_TEXT_H

#include <stddef.h>

/* Copies the text stored under `key` in the PNG `path` into out (truncated to len - 1 bytes).
 * Returns 0, VQC_ERR_IO when the file cannot be read, or VQC_ERR_FORMAT when it is not a PNG or
 * has no such text. */
int vqc_png_text(const char *path, const char *key, char *out, size_t len);

#endif
