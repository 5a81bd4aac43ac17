#include "io/image.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "io/fetch.h"
#include "util/error.h"
#include "util/torch_error.h"
#include "util/strbuf.h"

/* ---- JPEG pre-check -------------------------------------------------------------------- */

/* stb_image 2.27 (Debian 12's libstb) writes past its Huffman size table (stbi__build_huffman)
 * when a DHT segment declares more than 256 codes; upstream checks since 2.28. This walks the
 * segments the way stb's decoder does (length-prefixed segments, junk skipped byte by byte to
 * the next marker, entropy-coded data after SOS skipped to the next real marker) and reports
 * such a table before stb sees it. */
int vqc_jpeg_bad_huffman(const unsigned char *d, size_t n)
{
    if (n < 2 || d[0] != 0xFF) /* stb decodes as JPEG only what starts with a marker */
        return 0;
    size_t i = 0;
    while (i + 1 < n) {
        if (d[i] != 0xFF || d[i + 1] == 0xFF || d[i + 1] == 0x00) {
            i++; /* junk or fill byte: look for the next marker */
            continue;
        }
        unsigned m = d[i + 1];
        i += 2;
        if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7))
            continue; /* markers without a length */
        if (m == 0xD9 || i + 2 > n)
            return 0;
        size_t len = (size_t)d[i] << 8 | d[i + 1];
        if (m == 0xC4) {
            size_t t = i + 2, end = i + len;
            while (t < end && t < n) {
                unsigned codes = 0;
                for (size_t k = 1; k <= 16; k++) /* stb reads zeros past the end */
                    codes += t + k < n ? d[t + k] : 0;
                if (codes > 256)
                    return 1;
                t += 17 + codes;
            }
        }
        i += len < 2 ? 2 : len;
        if (m == 0xDA) /* entropy-coded data: FF 00 and RSTn belong to it */
            while (i + 1 < n && !(d[i] == 0xFF && d[i + 1] != 0x00 && d[i + 1] != 0xFF &&
                                  (d[i + 1] < 0xD0 || d[i + 1] > 0xD7)))
                i++;
    }
    return 0;
}

/* The whole file, malloc'ed, or NULL with an error recorded. Images over 1 GiB are refused. */
static unsigned char *read_image_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        vqc_error_set(VQC_ERR_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap || n >= ((size_t)1 << 30))
            break;
        unsigned char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad || n >= ((size_t)1 << 30)) {
        free(buf);
        vqc_error_set(bad ? VQC_ERR_IO : VQC_ERR_FORMAT, "%s: %s", path,
                      bad   ? "read error"
                      : buf ? "image file over 1 GiB"
                            : "out of memory");
        return NULL;
    }
    *len = n;
    return buf;
}

int vqc_image_decode(const unsigned char *file, size_t len, const char *name, vqc_image *out)
{
    memset(out, 0, sizeof *out);
    int w, h, c, rc = 0;
    if (len > INT_MAX)
        rc = vqc_error_set(VQC_ERR_FORMAT, "%s: image file over 2 GiB", name);
    else if (vqc_jpeg_bad_huffman(file, len))
        rc = vqc_error_set(VQC_ERR_FORMAT, "%s: corrupt JPEG (a Huffman table of over 256 codes)",
                           name);
    else if (!stbi_info_from_memory(file, (int)len, &w, &h, &c))
        rc = vqc_error_set(VQC_ERR_FORMAT, "%s: not a readable image (%s)", name,
                           stbi_failure_reason());
    else if (w <= 0 || h <= 0 || w > VQC_IMAGE_MAX_SIDE || h > VQC_IMAGE_MAX_SIDE)
        rc = vqc_error_set(VQC_ERR_FORMAT, "%s: image size %dx%d is out of range (max %d)", name, w,
                           h, VQC_IMAGE_MAX_SIDE);
    if (rc)
        return rc;
    unsigned char *px = stbi_load_from_memory(file, (int)len, &w, &h, &c, 3);
    if (!px)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: cannot decode image (%s)", name,
                             stbi_failure_reason());
    out->rgb = malloc((size_t)w * h * 3 * sizeof(float));
    if (!out->rgb) {
        stbi_image_free(px);
        return vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory for %dx%d image", name, w, h);
    }
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        out->rgb[i] = px[i] / 255.0f;
    out->w = w;
    out->h = h;
    stbi_image_free(px);
    return 0;
}

int vqc_image_load(const char *path, vqc_image *out)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    if (stat(path, &st) != 0)
        return vqc_error_set(VQC_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return vqc_error_set(VQC_ERR_IO, "%s: is a directory, not an image", path);
    size_t len = 0;
    unsigned char *file = read_image_file(path, &len);
    if (!file)
        return VQC_ERR_IO;
    int rc = vqc_image_decode(file, len, path, out);
    free(file);
    return rc;
}

int vqc_image_open(const char *src, bool allow_http, vqc_image *out)
{
    memset(out, 0, sizeof *out);
    if (!vqc_is_url(src))
        return vqc_image_load(src, out);
    unsigned char *data;
    size_t len;
    int rc = vqc_fetch(src, allow_http, &data, &len);
    if (rc)
        return rc;
    rc = vqc_image_decode(data, len, src, out);
    free(data);
    return rc;
}

void vqc_image_free(vqc_image *img)
{
    if (!img)
        return;
    free(img->rgb);
    img->rgb = NULL;
    img->w = img->h = 0;
}

/* ---- PNG writing ---------------------------------------------------------------------- */

static void stb_sink(void *ctx, void *data, int size)
{
    vqc_strbuf_put(ctx, data, (size_t)size);
}

static void put_be32(vqc_strbuf *b, uint32_t v)
{
    unsigned char c[4] = {v >> 24, v >> 16, v >> 8, v};
    vqc_strbuf_put(b, c, 4);
}

/* Appends a tEXt chunk: keyword (1-79 Latin-1 chars), NUL, text. */
static void put_text_chunk(vqc_strbuf *b, const char *key, const char *val)
{
    size_t kl = strnlen(key, 79), vl = strlen(val);
    put_be32(b, (uint32_t)(kl + 1 + vl));
    size_t start = b->n;
    vqc_strbuf_put(b, "tEXt", 4);
    vqc_strbuf_put(b, key, kl);
    vqc_strbuf_put(b, "", 1);
    vqc_strbuf_put(b, val, vl);
    if (b->failed)
        return;
    put_be32(b, (uint32_t)crc32(0, (const Bytef *)b->p + start, (uInt)(b->n - start)));
}

/* The image as 8-bit RGB, malloc'ed (pixel = round(clamp(v, 0, 1) * 255)), or NULL. */
static unsigned char *to_bytes(const vqc_image *img)
{
    size_t n = (size_t)img->w * img->h * 3;
    unsigned char *px = malloc(n ? n : 1);
    for (size_t i = 0; px && i < n; i++) {
        float v = img->rgb[i];
        v = isnan(v) ? 0.0f : v < 0 ? 0 : v > 1 ? 1 : v;
        px[i] = (unsigned char)lrintf(v * 255.0f);
    }
    return px;
}

int vqc_image_save_png(const char *path, const vqc_image *img, const char *const *text_kv)
{
    unsigned char *px = to_bytes(img);
    if (!px)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory writing %s", path);
    vqc_strbuf raw = {0}, text = {0};
    int ok = stbi_write_png_to_func(stb_sink, &raw, img->w, img->h, 3, px, img->w * 3);
    free(px);
    /* PNG signature (8) + IHDR chunk (4 len + 4 type + 13 data + 4 crc) = 33 bytes: the text
     * chunks go right after it. */
    if (!ok || raw.failed || raw.n < 33) {
        vqc_strbuf_free(&raw);
        return vqc_error_set(VQC_ERR_IO, "%s: PNG encoding failed", path);
    }
    for (int i = 0; text_kv && text_kv[i] && text_kv[i + 1]; i += 2)
        put_text_chunk(&text, text_kv[i], text_kv[i + 1]);
    vqc_bytes parts[3] = {{raw.p, 33}, {text.p, text.n}, {raw.p + 33, raw.n - 33}};
    int rc = text.failed ? vqc_error_set(VQC_ERR_NOMEM, "out of memory writing %s", path)
                         : vqc_write_file_atomic(path, parts, 3);
    vqc_strbuf_free(&raw);
    vqc_strbuf_free(&text);
    return rc;
}

/* ---- JPEG writing ---------------------------------------------------------------------- */

/* A COM segment's payload is at most 65533 bytes (its length field counts itself). */
#define COM_MAX 65533

/* Appends COM segments holding key, NUL, value: as many as the value needs. */
static void put_com_segments(vqc_strbuf *b, const char *key, const char *val)
{
    size_t kl = strlen(key), vl = strlen(val), room = COM_MAX - kl - 1;
    if (kl + 1 >= COM_MAX)
        return;
    do {
        size_t take = vl < room ? vl : room;
        size_t len = 2 + kl + 1 + take;
        unsigned char head[4] = {0xFF, 0xFE, (unsigned char)(len >> 8), (unsigned char)len};
        vqc_strbuf_put(b, head, 4);
        vqc_strbuf_put(b, key, kl + 1);
        vqc_strbuf_put(b, val, take);
        val += take;
        vl -= take;
    } while (vl > 0);
}

static int save_jpeg(const char *path, const vqc_image *img, const char *const *text_kv)
{
    unsigned char *px = to_bytes(img);
    if (!px)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory writing %s", path);
    vqc_strbuf raw = {0}, text = {0};
    int ok = stbi_write_jpg_to_func(stb_sink, &raw, img->w, img->h, 3, px, VQC_JPEG_QUALITY);
    free(px);
    /* SOI, then the JFIF APP0 segment, which must come first: the comments go after it. */
    const unsigned char *d = (const unsigned char *)raw.p;
    size_t head = raw.n >= 6 && d[2] == 0xFF && d[3] == 0xE0 ? 4 + ((size_t)d[4] << 8 | d[5]) : 2;
    if (!ok || raw.failed || raw.n < head + 2) {
        vqc_strbuf_free(&raw);
        return vqc_error_set(VQC_ERR_IO, "%s: JPEG encoding failed", path);
    }
    for (int i = 0; text_kv && text_kv[i] && text_kv[i + 1]; i += 2)
        put_com_segments(&text, text_kv[i], text_kv[i + 1]);
    vqc_bytes parts[3] = {{raw.p, head}, {text.p, text.n}, {raw.p + head, raw.n - head}};
    int rc = text.failed ? vqc_error_set(VQC_ERR_NOMEM, "out of memory writing %s", path)
                         : vqc_write_file_atomic(path, parts, 3);
    vqc_strbuf_free(&raw);
    vqc_strbuf_free(&text);
    return rc;
}

/* ---- by name --------------------------------------------------------------------------- */

vqc_image_format vqc_image_format_of(const char *path)
{
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    struct stat st;
    if (!dot || dot == base) /* no extension: only a FIFO or a device, written through */
        return stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)
                   ? VQC_IMAGE_PNG
                   : VQC_IMAGE_UNKNOWN;
    if (!strcasecmp(dot, ".png"))
        return VQC_IMAGE_PNG;
    if (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"))
        return VQC_IMAGE_JPEG;
    return VQC_IMAGE_UNKNOWN;
}

int vqc_image_check_name(const char *path, const char *what)
{
    struct stat st;
    if (vqc_image_format_of(path) != VQC_IMAGE_UNKNOWN ||
        (stat(path, &st) == 0 && S_ISDIR(st.st_mode)))
        return 0;
    return vqc_error_set(VQC_ERR_USAGE, "%s %s: unknown image format (name it .png, .jpg or .jpeg)",
                         what, path);
}

int vqc_image_save(const char *path, const vqc_image *img, const char *const *text_kv)
{
    switch (vqc_image_format_of(path)) {
    case VQC_IMAGE_PNG: return vqc_image_save_png(path, img, text_kv);
    case VQC_IMAGE_JPEG: return save_jpeg(path, img, text_kv);
    default: return vqc_image_check_name(path, "image");
    }
}

/* ---- tensors --------------------------------------------------------------------------- */

vqt_tensor *vqc_image_to_tensor(const vqc_image *img, vqt_device dev)
{
    /* The pixels are HWC; present them to libtorch as [1, 3, h, w] through strides. */
    int64_t shape[4] = {1, 3, img->h, img->w};
    int64_t strides[4] = {3LL * img->w * img->h, 1, 3LL * img->w, 3};
    vqt_tensor *t = vqt_from_data(img->rgb, VQC_DTYPE_F32, 4, shape, strides, dev, VQC_DTYPE_F32);
    if (!t)
        vqc_torch_fail("image to tensor");
    return t;
}

int vqc_image_from_tensor(const vqt_tensor *t, vqc_image *out)
{
    memset(out, 0, sizeof *out);
    int64_t shape[8];
    int nd = vqt_shape(t, shape);
    const int64_t *s = nd == 4 ? shape + 1 : shape;
    if ((nd != 4 && nd != 3) || (nd == 4 && shape[0] != 1) || s[0] != 3)
        return vqc_error_set(VQC_ERR_USAGE, "image tensor must be [1, 3, H, W]");
    int64_t perm[3] = {1, 2, 0};
    vqt_tensor *img3 = nd == 4 ? vqt_select(t, 0, 0) : vqt_ref(t);
    vqt_tensor *hwc = img3 ? vqt_permute(img3, 3, perm) : NULL;
    vqt_free(img3);
    if (!hwc)
        return vqc_torch_fail("image from tensor");
    out->h = (int)s[1];
    out->w = (int)s[2];
    int64_t n = 3 * s[1] * s[2];
    out->rgb = malloc((size_t)n * sizeof(float));
    int64_t got = out->rgb ? vqt_to_host(hwc, out->rgb, VQC_DTYPE_F32, n) : -1;
    vqt_free(hwc);
    if (got == n)
        return 0;
    int rc = out->rgb ? vqc_torch_fail("image from tensor")
                      : vqc_error_set(VQC_ERR_NOMEM, "image from tensor: out of memory");
    vqc_image_free(out);
    return rc;
}
