/* Images in and out: decoding PNG/JPEG/BMP/... (stb_image), writing PNG with tEXt metadata
 * atomically, and conversion to and from NCHW tensors. */
#ifndef VQC_IO_IMAGE_H
#define VQC_IO_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "torch/shim.h"
/* vqc_check_writable, which callers run before an image is written: */
#include "util/atomic_file.h"
#include "util/strbuf.h"

/* An RGB image: w*h*3 floats in [0, 1], row-major, channels interleaved. */
typedef struct vqc_image {
    int w, h;
    float *rgb; /* owned; free with vqc_image_free */
} vqc_image;

/* Largest side accepted on input (larger images are rejected before decoding). */
#define VQC_IMAGE_MAX_SIDE 16384

/* Decodes the image file at `path` (PNG, JPEG, BMP, TGA, GIF first frame, ...; alpha is
 * dropped, greyscale expanded). Returns 0 and fills *out, or VQC_ERR_IO (unreadable) /
 * VQC_ERR_FORMAT (not a decodable image, or absurd dimensions) with a message. */
int vqc_image_load(const char *path, vqc_image *out);

/* Decodes the image file held in memory (file, len), as vqc_image_load does; `name` is the
 * file's name in messages. */
int vqc_image_decode(const unsigned char *file, size_t len, const char *name, vqc_image *out);

/* An input image named by a path or an http(s) URL (io/fetch.h: fetched with its limits, plain
 * http only when allow_http), decoded as vqc_image_load does. */
int vqc_image_open(const char *src, bool allow_http, vqc_image *out);

/* Whether the bytes are a JPEG (they start with a marker) that stb_image would mishandle or
 * half-read: 1 when a Huffman table declares more than 256 codes (Debian 12's stb 2.27 writes
 * past its table), 2 when a scan uses a Huffman or quantisation table that no segment defined
 * (stb reads uninitialised memory), 3 when a JPEG (starting with SOI) ends before its
 * end-of-image marker (truncated: stb fills the rest with zeros or grey), 4 when it has no scan;
 * 0 otherwise. vqc_image_load and vqc_raw_image_load refuse such files before stb sees them.
 * Exposed for test-image, which checks each code; callers want vqc_image_unsafe, which makes
 * this check and the others. */
int vqc_jpeg_unsafe(const unsigned char *d, size_t n);

/* Every check vqc_image_load and vqc_raw_image_load make before stb sees the bytes: the JPEG
 * faults above, a PNG chunk that runs past the end of the file (stb would allocate its declared
 * size first), a PNM header number that would overflow stb's parser. The fault, as the loaders
 * word it ("truncated JPEG (...)"), or NULL. Exposed for the fuzz target, which calls stb
 * itself only on bytes that pass. */
const char *vqc_image_unsafe(const unsigned char *d, size_t n);

/* Releases the pixels; the struct may be reused. */
void vqc_image_free(vqc_image *img);

/* Writes `img` as an 8-bit RGB PNG (pixel = round(clamp(v, 0, 1) * 255)) with one tEXt chunk
 * per key/value pair of the NULL-terminated list text_kv (may be NULL), right after the IHDR
 * chunk. The file is written with vqc_write_file_atomic's guarantees: an existing file is never
 * left half-written or lost on failure. Returns 0, VQC_ERR_IO or VQC_ERR_NOMEM. */
int vqc_image_save_png(const char *path, const vqc_image *img, const char *const *text_kv);

/* The formats an output image can be written in, chosen by its file name as PIL does. */
typedef enum { VQC_IMAGE_UNKNOWN = 0, VQC_IMAGE_PNG, VQC_IMAGE_JPEG } vqc_image_format;

/* The format a file name asks for: ".png" PNG, ".jpg"/".jpeg" JPEG (any case), else
 * VQC_IMAGE_UNKNOWN. A name without an extension that is an existing FIFO or device (-o
 * /dev/null, a pipe to a viewer) is PNG. */
vqc_image_format vqc_image_format_of(const char *path);

/* 0 when `path` names a format vqc_image_save writes, or is a folder (which vqc_check_writable
 * reports as such); else VQC_ERR_USAGE with a one-line message naming `what` ("output", ...)
 * and the extensions accepted. */
int vqc_image_check_name(const char *path, const char *what);

/* JPEG quality of vqc_image_save: PIL's default. */
#define VQC_JPEG_QUALITY 75

/* Writes `img` in the format its name asks for (vqc_image_format_of): a PNG as
 * vqc_image_save_png does, or a baseline JPEG of quality VQC_JPEG_QUALITY holding each key/value
 * pair of text_kv in COM segments ("key", NUL, value; a value over 64 KiB spans several segments
 * of the same key), read back with vqc_image_text. Atomic as vqc_image_save_png. Returns 0,
 * VQC_ERR_USAGE (a name of no known format, or a folder), VQC_ERR_IO or VQC_ERR_NOMEM. */
int vqc_image_save(const char *path, const vqc_image *img, const char *const *text_kv);

/* An image file encoded in memory by vqc_image_encode: the encoder's stream, and the text
 * chunks (PNG) or comment segments (JPEG) that go into it at `head`. */
typedef struct vqc_encoded {
    vqc_strbuf raw, text;
    size_t head;
} vqc_encoded;

/* Encodes img into *out as vqc_image_save would write it to `path` (the name picks the format),
 * without touching the file system, so that encoding and writing can happen apart (the run's
 * picture writer encodes on several threads and writes in order). Returns 0, VQC_ERR_USAGE (a
 * name of no known format, or a folder), VQC_ERR_IO (the encoder failed) or VQC_ERR_NOMEM; *out
 * is empty on failure. */
int vqc_image_encode(const char *path, const vqc_image *img, const char *const *text_kv,
                     vqc_encoded *out);
/* Writes an encoded image to path with vqc_write_file_atomic's guarantees and result (0,
 * VQC_ERR_IO or VQC_ERR_NOMEM). */
int vqc_encoded_write(const char *path, const vqc_encoded *e);
/* Releases the bytes; the struct may be reused. */
void vqc_encoded_free(vqc_encoded *e);

/* A new [1, 3, h, w] float32 tensor on dev holding the image (values in [0, 1]). */
vqt_tensor *vqc_image_to_tensor(const vqc_image *img, vqt_device dev);

/* Copies a [1, 3, h, w] (or [3, h, w]) tensor of values in [0, 1] into a new image (out is
 * overwritten; free with vqc_image_free). Returns 0 or a negative code. */
int vqc_image_from_tensor(const vqt_tensor *t, vqc_image *out);

/* ---- pictures as stored: any channel count, 8 or 16 bits ------------------------------ */

/* The samples of an image file as they are: 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA)
 * channels of 8 or 16 bits (16 for 16-bit PNGs), for tools that must give back what they were
 * given (the upscaler). Samples are row-major, channels interleaved, in the low `depth` bits. */
typedef struct vqc_raw_image {
    int w, h, channels, depth;
    uint16_t *px; /* w*h*channels samples; owned, free with vqc_raw_image_free */
} vqc_raw_image;

/* Decodes `path` as vqc_image_load does (same checks and errors), keeping its channels and its
 * bit depth. A palette image comes out as RGB, or RGBA when it has transparency. */
int vqc_raw_image_load(const char *path, vqc_raw_image *out);

/* Writes `img` as a PNG of its channels and depth (colour types 0, 4, 2, 6), with the tEXt
 * pairs of text_kv (may be NULL) after IHDR, atomically as vqc_image_save_png. Returns 0,
 * VQC_ERR_USAGE (a depth other than 8 or 16, or 0 or over 4 channels), VQC_ERR_IO or
 * VQC_ERR_NOMEM. */
int vqc_raw_image_save_png(const char *path, const vqc_raw_image *img, const char *const *text_kv);

void vqc_raw_image_free(vqc_raw_image *img);

#endif
