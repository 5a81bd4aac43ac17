/* Reading a PNG's tEXt chunks (see png_text.h): the metadata vqclip writes with each image. */
#include "io/png_text.h"

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

int vqc_png_text(const char *path, const char *key, char *out, size_t len)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    FILE *f = fopen(path, "rb");
    if (!f)
        return vqc_error_set(VQC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    unsigned char head[8];
    int rc = VQC_ERR_FORMAT;
    if (fread(head, 1, 8, f) != 8 || memcmp(head, sig, 8) != 0) {
        fclose(f);
        return vqc_error_set(VQC_ERR_FORMAT, "%s is not a PNG file", path);
    }
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
    fclose(f);
    return rc ? vqc_error_set(VQC_ERR_FORMAT, "%s has no \"%s\" text", path, key) : 0;
}
