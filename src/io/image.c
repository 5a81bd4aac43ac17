#include "io/image.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
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

/* What the segment walk has seen: the tables defined so far and the frame's components. */
typedef struct {
    bool dc[4], ac[4], quant[4]; /* Huffman (DC, AC) and quantisation tables defined */
    bool frame, progressive;
    int ncomp;
    unsigned char id[4], tq[4]; /* the frame's components: identifier, quantisation table */
} jpeg_walk;

/* A DHT segment's tables (d[t..end)); 1 when one declares more than 256 codes. */
static int walk_dht(jpeg_walk *w, const unsigned char *d, size_t n, size_t t, size_t end)
{
    while (t < end && t < n) {
        unsigned q = d[t], codes = 0;
        for (size_t k = 1; k <= 16; k++) /* stb reads zeros past the end */
            codes += t + k < n ? d[t + k] : 0;
        if (codes > 256)
            return 1;
        if (q >> 4 <= 1 && (q & 15) <= 3) /* stb refuses the file otherwise */
            (q >> 4 ? w->ac : w->dc)[q & 15] = true;
        t += 17 + codes;
    }
    return 0;
}

/* A DQT segment's tables. */
static void walk_dqt(jpeg_walk *w, const unsigned char *d, size_t n, size_t t, size_t end)
{
    while (t < end && t < n) {
        unsigned q = d[t];
        if ((q & 15) <= 3 && q >> 4 <= 1)
            w->quant[q & 15] = true;
        t += q >> 4 ? 129 : 65;
    }
}

/* A frame header (SOFn at d[t]: precision, height, width, components). */
static void walk_sof(jpeg_walk *w, unsigned m, const unsigned char *d, size_t n, size_t t)
{
    if (w->frame || t + 6 > n)
        return; /* stb reads the first frame header only */
    w->frame = true;
    w->progressive = m == 0xC2;
    w->ncomp = d[t + 5] <= 4 ? d[t + 5] : 0;
    for (int c = 0; c < w->ncomp && t + 8 + 3 * (size_t)c < n; c++) {
        w->id[c] = d[t + 6 + 3 * c];
        w->tq[c] = d[t + 8 + 3 * c] & 3;
    }
}

/* A scan header (SOS at d[t]): 2 when it decodes with a Huffman table, or dequantises with a
 * table, that nothing has defined, as stb decides which it uses (a baseline scan both of its
 * components' tables, a progressive DC scan the DC table unless it refines, an AC scan the AC
 * table). */
static int walk_sos(const jpeg_walk *w, const unsigned char *d, size_t n, size_t t)
{
    if (!w->frame || t >= n)
        return 0; /* stb refuses a scan before the frame */
    unsigned ns = d[t];
    size_t after = t + 1 + 2 * (size_t)ns;
    if (ns < 1 || ns > 4 || after + 3 > n)
        return 0; /* stb refuses it, or stops at the end of the data */
    unsigned ss = d[after], ah = d[after + 2] >> 4;
    for (unsigned k = 0; k < ns; k++) {
        unsigned id = d[t + 1 + 2 * k], td = d[t + 2 + 2 * k] >> 4, ta = d[t + 2 + 2 * k] & 15;
        int c = 0;
        while (c < w->ncomp && w->id[c] != id)
            c++;
        if (c == w->ncomp || td > 3 || ta > 3)
            return 0; /* stb refuses the scan */
        bool dc = !w->progressive || (ss == 0 && ah == 0), ac = !w->progressive || ss != 0;
        if ((dc && !w->dc[td]) || (ac && !w->ac[ta]) || !w->quant[w->tq[c]])
            return 2;
    }
    return 0;
}

/* stb_image 2.27 (Debian 12's libstb) has two faults on malformed JPEGs that upstream fixed
 * later: a DHT segment that declares more than 256 codes makes it write past its Huffman size
 * table (stbi__build_huffman), and a scan that uses a Huffman table no DHT defined makes it
 * decode with the uninitialised table (reads at indices taken from uninitialised memory;
 * fuzz-image found it). This walks the segments the way stb's decoder does (length-prefixed
 * segments, junk skipped byte by byte to the next marker, entropy-coded data after SOS skipped
 * to the next real marker) and reports either, and a scan whose quantisation table is undefined
 * (its pixels would come from uninitialised memory), before stb sees the file. A progressive
 * frame also dequantises, at its end, every component with its table.
 *
 * It also reports a JPEG (one that starts with SOI, as stb requires) whose data ends before its
 * end-of-image marker, or that has no scan at all. What stb makes of those depends on its
 * version: 2.27 refuses a file cut inside its tables, but Debian 13's (2024) reads zeros past
 * the end and returns a picture with no image data in it, and both return a partly grey picture
 * for a file cut inside its scan, as a partial download is. A user would start from a picture
 * that is not theirs without a word; the peers' PIL refuses such files ("image file is
 * truncated"). */
int vqc_jpeg_unsafe(const unsigned char *d, size_t n)
{
    if (n < 2 || d[0] != 0xFF) /* stb decodes as JPEG only what starts with a marker */
        return 0;
    jpeg_walk w = {0};
    size_t i = 0;
    bool soi = d[1] == 0xD8, scan = false, eoi = false;
    while (i + 1 < n) {
        if (d[i] != 0xFF || d[i + 1] == 0xFF || d[i + 1] == 0x00) {
            i++; /* junk or fill byte: look for the next marker */
            continue;
        }
        unsigned m = d[i + 1];
        i += 2;
        if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7))
            continue; /* markers without a length */
        if (m == 0xD9) {
            eoi = true;
            break;
        }
        if (i + 2 > n)
            break;
        size_t len = (size_t)d[i] << 8 | d[i + 1];
        int bad = 0;
        if (m == 0xC4)
            bad = walk_dht(&w, d, n, i + 2, i + len);
        else if (m == 0xDB)
            walk_dqt(&w, d, n, i + 2, i + len);
        else if (m == 0xC0 || m == 0xC1 || m == 0xC2)
            walk_sof(&w, m, d, n, i + 2);
        else if (m == 0xDA)
            bad = walk_sos(&w, d, n, i + 2);
        if (bad)
            return bad;
        scan = scan || m == 0xDA;
        i += len < 2 ? 2 : len;
        if (m == 0xDA) /* entropy-coded data: FF 00 and RSTn belong to it */
            while (i + 1 < n && !(d[i] == 0xFF && d[i + 1] != 0x00 && d[i + 1] != 0xFF &&
                                  (d[i + 1] < 0xD0 || d[i + 1] > 0xD7)))
                i++;
    }
    for (int c = 0; w.progressive && c < w.ncomp; c++)
        if (!w.quant[w.tq[c]])
            return 2;
    if (soi && !eoi)
        return 3;
    return soi && !scan ? 4 : 0;
}

/* Whether the bytes are a PNG with a chunk whose data runs past the end of the file. stb_image
 * sizes its buffer for the compressed data from the chunks' declared lengths (up to 1 GiB each)
 * before it reads them, so a few hundred bytes could make it allocate a gigabyte and then fail
 * on the missing data anyway (fuzz-image: 30 s under AddressSanitizer). */
static bool png_chunk_overruns(const unsigned char *d, size_t n)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (n < 8 || memcmp(d, sig, 8) != 0)
        return false;
    for (size_t i = 8; i + 8 <= n;) {
        size_t len = (size_t)d[i] << 24 | (size_t)d[i + 1] << 16 | (size_t)d[i + 2] << 8 | d[i + 3];
        if (len > n - i - 8)
            return true;
        if (memcmp(d + i + 4, "IEND", 4) == 0)
            break;
        i += 12 + len;
    }
    return false;
}

/* Whether the bytes are a binary PNM (P5 or P6, the kinds stb reads) whose header holds a
 * number over 10^8. stb 2.27 parses the width, the height and the largest value into an int
 * digit by digit with no bound, so a long run of digits overflows it (undefined behaviour;
 * fuzz-image, 2026-12-07: "P66666666666..."); stb 2.30, Debian 13's, checks it. No side over
 * VQC_IMAGE_MAX_SIDE or largest value over 65535 is valid anyway. The walk skips whitespace and
 * '#' comments as stb does, and reads each number up to the end of the file, where stb stops
 * one digit short: it refuses at least what would overflow. */
static bool pnm_number_overflows(const unsigned char *d, size_t n)
{
    if (n < 2 || d[0] != 'P' || (d[1] != '5' && d[1] != '6'))
        return false;
    size_t i = 2;
    for (int k = 0; k < 3; k++) { /* width, height, largest value */
        for (;;) {
            while (i < n && (d[i] == ' ' || (d[i] >= '\t' && d[i] <= '\r')))
                i++;
            if (i >= n || d[i] != '#')
                break;
            while (i < n && d[i] != '\n' && d[i] != '\r')
                i++;
        }
        long long v = 0;
        for (; i < n && d[i] >= '0' && d[i] <= '9'; i++)
            if ((v = v * 10 + (d[i] - '0')) > 100000000)
                return true;
    }
    return false;
}

const char *vqc_image_unsafe(const unsigned char *d, size_t n)
{
    static const char *const jpeg_faults[] = {
        NULL, "corrupt JPEG (a Huffman table of over 256 codes)",
        "corrupt JPEG (a scan uses a table that no segment defines)",
        "truncated JPEG (the data ends before its end-of-image marker)",
        "corrupt JPEG (no scan: it holds no image data)"};
    int jpeg = vqc_jpeg_unsafe(d, n);
    if (jpeg)
        return jpeg_faults[jpeg];
    if (png_chunk_overruns(d, n))
        return "truncated PNG (a chunk runs past the end)";
    if (pnm_number_overflows(d, n))
        return "corrupt PNM (a header number out of range)";
    return NULL;
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

/* The checks every decoder shares: stb can read the bytes, at a sane size. */
static int check_bytes(const unsigned char *file, size_t len, const char *name)
{
    int w, h, c;
    if (len > INT_MAX)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: image file over 2 GiB", name);
    const char *fault = vqc_image_unsafe(file, len);
    if (fault)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: %s", name, fault);
    if (!stbi_info_from_memory(file, (int)len, &w, &h, &c))
        return vqc_error_set(VQC_ERR_FORMAT, "%s: not a readable image (%s)", name,
                             stbi_failure_reason());
    if (w <= 0 || h <= 0 || w > VQC_IMAGE_MAX_SIDE || h > VQC_IMAGE_MAX_SIDE)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: image size %dx%d is out of range (max %d)", name,
                             w, h, VQC_IMAGE_MAX_SIDE);
    return 0;
}

/* Reads `path` into memory (*file, malloc'ed); with `check`, also that stb can decode it at a
 * sane size. Returns 0, VQC_ERR_IO (missing, a folder, unreadable) or VQC_ERR_FORMAT, with a
 * message. */
static int read_checked(const char *path, bool check, unsigned char **file, size_t *len)
{
    *file = NULL;
    struct stat st;
    if (stat(path, &st) != 0)
        return vqc_error_set(VQC_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return vqc_error_set(VQC_ERR_IO, "%s: is a directory, not an image", path);
    unsigned char *bytes = read_image_file(path, len);
    if (!bytes)
        return VQC_ERR_IO;
    int rc = check ? check_bytes(bytes, *len, path) : 0;
    if (rc)
        free(bytes);
    else
        *file = bytes;
    return rc;
}

int vqc_image_decode(const unsigned char *file, size_t len, const char *name, vqc_image *out)
{
    memset(out, 0, sizeof *out);
    int w, h, c, rc = check_bytes(file, len, name);
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
    size_t len = 0;
    unsigned char *file;
    int rc = read_checked(path, false, &file, &len); /* vqc_image_decode checks */
    if (rc)
        return rc;
    rc = vqc_image_decode(file, len, path, out);
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

int vqc_raw_image_load(const char *path, vqc_raw_image *out)
{
    memset(out, 0, sizeof *out);
    size_t len = 0;
    unsigned char *file;
    int rc = read_checked(path, true, &file, &len);
    if (rc)
        return rc;
    int w, h, c;
    bool wide = stbi_is_16_bit_from_memory(file, (int)len);
    void *px = wide ? (void *)stbi_load_16_from_memory(file, (int)len, &w, &h, &c, 0)
                    : (void *)stbi_load_from_memory(file, (int)len, &w, &h, &c, 0);
    free(file);
    if (!px)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: cannot decode image (%s)", path,
                             stbi_failure_reason());
    size_t n = (size_t)w * h * c;
    out->px = malloc(n * sizeof *out->px);
    if (!out->px) {
        stbi_image_free(px);
        return vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory for %dx%d image", path, w, h);
    }
    for (size_t i = 0; i < n; i++)
        out->px[i] = wide ? ((const uint16_t *)px)[i] : ((const unsigned char *)px)[i];
    stbi_image_free(px);
    out->w = w;
    out->h = h;
    out->channels = c;
    out->depth = wide ? 16 : 8;
    return 0;
}

void vqc_raw_image_free(vqc_raw_image *img)
{
    if (!img)
        return;
    free(img->px);
    memset(img, 0, sizeof *img);
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

/* The PNG file of img, in memory: stb's stream with the text chunks to go right after its IHDR
 * chunk (signature 8 + IHDR 4 len + 4 type + 13 data + 4 crc = 33 bytes). */
static int encode_png(const char *path, const vqc_image *img, const char *const *text_kv,
                      vqc_encoded *out)
{
    unsigned char *px = to_bytes(img);
    if (!px)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory writing %s", path);
    int ok = stbi_write_png_to_func(stb_sink, &out->raw, img->w, img->h, 3, px, img->w * 3);
    free(px);
    if (!ok || out->raw.failed || out->raw.n < 33)
        return vqc_error_set(VQC_ERR_IO, "%s: PNG encoding failed", path);
    out->head = 33;
    for (int i = 0; text_kv && text_kv[i] && text_kv[i + 1]; i += 2)
        put_text_chunk(&out->text, text_kv[i], text_kv[i + 1]);
    return 0;
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

/* The JPEG file of img, in memory: stb's stream with the comments to go after its JFIF APP0
 * segment, which must come first. */
static int encode_jpeg(const char *path, const vqc_image *img, const char *const *text_kv,
                       vqc_encoded *out)
{
    unsigned char *px = to_bytes(img);
    if (!px)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory writing %s", path);
    vqc_strbuf *raw = &out->raw;
    int ok = stbi_write_jpg_to_func(stb_sink, raw, img->w, img->h, 3, px, VQC_JPEG_QUALITY);
    free(px);
    const unsigned char *d = (const unsigned char *)raw->p;
    size_t head = raw->n >= 6 && d[2] == 0xFF && d[3] == 0xE0 ? 4 + ((size_t)d[4] << 8 | d[5]) : 2;
    if (!ok || raw->failed || raw->n < head + 2)
        return vqc_error_set(VQC_ERR_IO, "%s: JPEG encoding failed", path);
    out->head = head;
    for (int i = 0; text_kv && text_kv[i] && text_kv[i + 1]; i += 2)
        put_com_segments(&out->text, text_kv[i], text_kv[i + 1]);
    return 0;
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

/* vqc_image_encode in the format fmt, whatever the name says. */
static int encode_as(vqc_image_format fmt, const char *path, const vqc_image *img,
                     const char *const *text_kv, vqc_encoded *out)
{
    memset(out, 0, sizeof *out);
    int rc;
    switch (fmt) {
    case VQC_IMAGE_PNG: rc = encode_png(path, img, text_kv, out); break;
    case VQC_IMAGE_JPEG: rc = encode_jpeg(path, img, text_kv, out); break;
    default:
        rc = vqc_image_check_name(path, "image");
        rc = rc ? rc : vqc_error_set(VQC_ERR_USAGE, "image %s: a folder, not a file", path);
    }
    if (!rc && out->text.failed)
        rc = vqc_error_set(VQC_ERR_NOMEM, "out of memory writing %s", path);
    if (rc)
        vqc_encoded_free(out);
    return rc;
}

int vqc_image_encode(const char *path, const vqc_image *img, const char *const *text_kv,
                     vqc_encoded *out)
{
    return encode_as(vqc_image_format_of(path), path, img, text_kv, out);
}

int vqc_encoded_write(const char *path, const vqc_encoded *e)
{
    vqc_bytes parts[3] = {
        {e->raw.p, e->head}, {e->text.p, e->text.n}, {e->raw.p + e->head, e->raw.n - e->head}};
    return vqc_write_file_atomic(path, parts, 3);
}

void vqc_encoded_free(vqc_encoded *e)
{
    if (!e)
        return;
    vqc_strbuf_free(&e->raw);
    vqc_strbuf_free(&e->text);
    e->head = 0;
}

/* The save functions' tail: e (made with status rc) written to path, then freed. */
static int write_encoded(const char *path, int rc, vqc_encoded *e)
{
    rc = rc ? rc : vqc_encoded_write(path, e);
    vqc_encoded_free(e);
    return rc;
}

int vqc_image_save_png(const char *path, const vqc_image *img, const char *const *text_kv)
{
    vqc_encoded e;
    return write_encoded(path, encode_as(VQC_IMAGE_PNG, path, img, text_kv, &e), &e);
}

int vqc_image_save(const char *path, const vqc_image *img, const char *const *text_kv)
{
    vqc_encoded e;
    return write_encoded(path, vqc_image_encode(path, img, text_kv, &e), &e);
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

/* ---- PNG writing at any depth ----------------------------------------------------------- */

/* Appends a chunk: length, type, data, CRC of type and data. */
static void put_chunk(vqc_strbuf *b, const char *type, const void *data, size_t len)
{
    put_be32(b, (uint32_t)len);
    size_t start = b->n;
    vqc_strbuf_put(b, type, 4);
    vqc_strbuf_put(b, data, len);
    if (!b->failed)
        put_be32(b, (uint32_t)crc32(0, (const Bytef *)b->p + start, (uInt)(b->n - start)));
}

/* The scanlines of img, each after filter byte 0 (none), samples big-endian. */
static unsigned char *png_scanlines(const vqc_raw_image *img, size_t *len)
{
    size_t bps = img->depth / 8, row = (size_t)img->w * img->channels * bps;
    *len = (row + 1) * img->h;
    unsigned char *raw = malloc(*len);
    for (size_t y = 0; raw && y < (size_t)img->h; y++) {
        unsigned char *o = raw + y * (row + 1);
        const uint16_t *s = img->px + y * img->w * img->channels;
        *o++ = 0;
        for (size_t i = 0; i < (size_t)img->w * img->channels; i++) {
            if (bps == 2)
                *o++ = (unsigned char)(s[i] >> 8);
            *o++ = (unsigned char)s[i];
        }
    }
    return raw;
}

int vqc_raw_image_save_png(const char *path, const vqc_raw_image *img, const char *const *text_kv)
{
    static const unsigned char color_type[5] = {0, 0, 4, 2, 6};
    if ((img->depth != 8 && img->depth != 16) || img->channels < 1 || img->channels > 4 ||
        img->w <= 0 || img->h <= 0)
        return vqc_error_set(VQC_ERR_USAGE, "%s: cannot write a %d-channel %d-bit PNG", path,
                             img->channels, img->depth);
    size_t rawlen = 0;
    unsigned char *raw = png_scanlines(img, &rawlen);
    uLongf zlen = raw ? compressBound((uLong)rawlen) : 0;
    unsigned char *z = raw ? malloc(zlen) : NULL;
    int zrc = z ? compress2(z, &zlen, raw, (uLong)rawlen, 6) : Z_MEM_ERROR;
    free(raw);
    if (zrc != Z_OK) {
        free(z);
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory writing %s", path);
    }
    vqc_strbuf b = {0};
    vqc_strbuf_put(&b, "\x89PNG\r\n\x1a\n", 8);
    unsigned char ihdr[13] = {0};
    for (int i = 0; i < 4; i++) {
        ihdr[i] = (unsigned char)((uint32_t)img->w >> (24 - 8 * i));
        ihdr[4 + i] = (unsigned char)((uint32_t)img->h >> (24 - 8 * i));
    }
    ihdr[8] = (unsigned char)img->depth;
    ihdr[9] = color_type[img->channels];
    put_chunk(&b, "IHDR", ihdr, sizeof ihdr);
    for (int i = 0; text_kv && text_kv[i] && text_kv[i + 1]; i += 2)
        put_text_chunk(&b, text_kv[i], text_kv[i + 1]);
    put_chunk(&b, "IDAT", z, zlen);
    put_chunk(&b, "IEND", NULL, 0);
    free(z);
    vqc_bytes part = {b.p, b.n};
    int rc = b.failed ? vqc_error_set(VQC_ERR_NOMEM, "out of memory writing %s", path)
                      : vqc_write_file_atomic(path, &part, 1);
    vqc_strbuf_free(&b);
    return rc;
}
