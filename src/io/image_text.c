/* Reading the metadata vqclip writes with each image (see image_text.h): a PNG's tEXt chunks, a
 * JPEG's COM segments. */
#include "io/image_text.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Chunks before IDAT hold the text vqclip writes; a text chunk this large is not ours. */
#define MAX_TEXT_CHUNK (1u << 20)

/* The PNG's tEXt chunks, read from after the signature. */
static int png_text(FILE *f, const char *key, char *out, size_t len)
{
    unsigned char head[8];
    int rc = VQC_ERR_FORMAT;
    size_t klen = strlen(key);
    while (fread(head, 1, 8, f) == 8) {
        uint32_t n = be32(head);
        if (!memcmp(head + 4, "IEND", 4))
            break;
        if (memcmp(head + 4, "tEXt", 4) != 0 || n > MAX_TEXT_CHUNK || n < klen + 1) {
            if (n > 0x7fffffffu || fseek(f, (long)n + 4, SEEK_CUR) != 0)
                break;
            continue;
        }
        char *data = malloc((size_t)n + 1);
        if (!data || fread(data, 1, n, f) != n || fseek(f, 4, SEEK_CUR) != 0) {
            free(data);
            break;
        }
        data[n] = 0;
        if (memcmp(data, key, klen) == 0 && data[klen] == 0) {
            snprintf(out, len, "%s", data + klen + 1);
            rc = 0;
        }
        free(data);
        if (!rc)
            break;
    }
    return rc;
}

/* The JPEG's COM segments of `key`, read from after SOI up to the first scan. */
static int jpeg_text(FILE *f, const char *key, char *out, size_t len)
{
    size_t klen = strlen(key), at = 0;
    unsigned char head[4], *seg = malloc(1 << 16);
    int rc = VQC_ERR_FORMAT;
    out[0] = 0;
    while (seg && fread(head, 1, 4, f) == 4 && head[0] == 0xFF && head[1] != 0xDA) {
        size_t n = (size_t)head[2] << 8 | head[3];
        if (n < 2 || fread(seg, 1, n - 2, f) != n - 2)
            break;
        n -= 2;
        if (head[1] != 0xFE || n < klen + 1 || memcmp(seg, key, klen) || seg[klen])
            continue;
        size_t take = n - klen - 1;
        if (at + 1 < len) {
            take = take < len - 1 - at ? take : len - 1 - at;
            memcpy(out + at, seg + klen + 1, take);
            out[at += take] = 0;
        }
        rc = 0;
    }
    free(seg);
    return rc;
}

int vqc_image_text(const char *path, const char *key, char *out, size_t len)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    FILE *f = fopen(path, "rb");
    if (!f)
        return vqc_error_set(VQC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    unsigned char head[8];
    size_t got = fread(head, 1, 8, f);
    int rc;
    if (got == 8 && memcmp(head, sig, 8) == 0) {
        rc = png_text(f, key, out, len);
    } else if (got >= 2 && head[0] == 0xFF && head[1] == 0xD8 && fseek(f, 2, SEEK_SET) == 0) {
        rc = jpeg_text(f, key, out, len);
    } else {
        fclose(f);
        return vqc_error_set(VQC_ERR_FORMAT, "%s is neither a PNG nor a JPEG file", path);
    }
    fclose(f);
    return rc ? vqc_error_set(VQC_ERR_FORMAT, "%s has no \"%s\" text", path, key) : 0;
}
