/* The metadata vqclip writes with each image (vqc_image_save): a PNG's tEXt chunks or a JPEG's
 * COM segments, read without decoding the image. */
#ifndef VQC_IO_IMAGE_TEXT_H
#define VQC_IO_IMAGE_TEXT_H

#include <stddef.h>

/* Copies the text stored under `key` in the PNG or JPEG `path` into out (truncated to len - 1
 * bytes); in a JPEG, every COM segment "key", NUL, text of that key, joined in order. Returns 0,
 * VQC_ERR_IO when the file cannot be read, or VQC_ERR_FORMAT when it is neither a PNG nor a
 * JPEG, or has no such text. */
int vqc_image_text(const char *path, const char *key, char *out, size_t len);

#endif
