/* Zip central-directory reader over a file image: see zipread.h. */
#include "io/zipread.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "util/error.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u

#define EOCD_LEN 22
#define EOCD64_LEN 56
#define LOC64_LEN 20
#define CENTRAL_LEN 46
#define LOCAL_LEN 30

typedef struct zip_entry {
    const char *name;
    uint64_t csize, usize, local_off;
    uint32_t crc;
    uint16_t method, flags;
} zip_entry;

typedef struct sorted_name {
    const char *name;
    size_t index;
} sorted_name;

struct vqc_zip {
    const uint8_t *img;
    size_t len;
    char *label;
    uint64_t base; /* bytes prepended before the archive proper (usually 0) */
    zip_entry *ent;
    size_t n;
    char *names;         /* all entry names, NUL-separated */
    sorted_name *sorted; /* entries ordered by name, for vqc_zip_find */
    void **inflated;     /* per entry: buffer of a deflated entry, or NULL */
};

typedef struct cd_info {
    uint64_t count, size, offset;
    uint64_t end; /* position of the record that follows the directory */
} cd_info;

/* ---------------------------------------------------------------------------------------------
 * Little-endian field access
 * ------------------------------------------------------------------------------------------- */

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}

/* ---------------------------------------------------------------------------------------------
 * End of central directory (plain and ZIP64)
 * ------------------------------------------------------------------------------------------- */

/* Finds the last end-of-central-directory record whose comment fits in the image. */
static int find_eocd(const vqc_zip *z, uint64_t *pos)
{
    if (z->len < EOCD_LEN)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: not a zip archive (%zu bytes)", z->label, z->len);
    size_t lo = z->len > EOCD_LEN + 0xFFFF ? z->len - EOCD_LEN - 0xFFFF : 0;
    for (size_t p = z->len - EOCD_LEN;; p--) {
        const uint8_t *e = z->img + p;
        if (rd32(e) == SIG_EOCD && p + EOCD_LEN + rd16(e + 20) <= z->len) {
            *pos = p;
            return 0;
        }
        if (p == lo)
            break;
    }
    return vqc_error_set(
        VQC_ERR_FORMAT,
        "%s: no zip end-of-central-directory record (not a zip archive, or truncated)", z->label);
}

/* Reads the ZIP64 end record that the locator at `loc` points to. */
static int read_eocd64(const vqc_zip *z, uint64_t loc, cd_info *cd)
{
    const uint8_t *l = z->img + loc;
    if (rd32(l + 16) > 1)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: multi-disk zip archives are not supported",
                             z->label);
    uint64_t rec = rd64(l + 8);
    /* The record normally sits just before the locator; that position also works when data was
     * prepended to the archive, which shifts every stored offset. */
    if (loc >= EOCD64_LEN && rd32(z->img + loc - EOCD64_LEN) == SIG_EOCD64)
        rec = loc - EOCD64_LEN;
    if (rec > loc || loc - rec < EOCD64_LEN || rd32(z->img + rec) != SIG_EOCD64)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: corrupt ZIP64 end-of-central-directory record",
                             z->label);
    const uint8_t *r = z->img + rec;
    cd->count = rd64(r + 32);
    cd->size = rd64(r + 40);
    cd->offset = rd64(r + 48);
    cd->end = rec;
    return 0;
}

/* Locates the central directory: its entry count, size, offset and the archive's base shift. */
static int read_directory_info(vqc_zip *z, cd_info *cd)
{
    uint64_t eocd = 0;
    int rc = find_eocd(z, &eocd);
    if (rc)
        return rc;
    const uint8_t *e = z->img + eocd;
    cd->count = rd16(e + 10);
    cd->size = rd32(e + 12);
    cd->offset = rd32(e + 16);
    cd->end = eocd;
    if (eocd >= LOC64_LEN && rd32(e - LOC64_LEN) == SIG_LOC64) {
        rc = read_eocd64(z, eocd - LOC64_LEN, cd);
        if (rc)
            return rc;
    } else if (rd16(e + 4) != 0 || rd16(e + 6) != 0) {
        return vqc_error_set(VQC_ERR_FORMAT, "%s: multi-disk zip archives are not supported",
                             z->label);
    }
    if (cd->size > cd->end || cd->offset > cd->end - cd->size)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: zip central directory lies outside the file",
                             z->label);
    /* Offsets are relative to the archive start; data prepended to it shows as a gap. */
    z->base = 0;
    if (cd->count > 0 && rd32(z->img + cd->offset) != SIG_CENTRAL)
        z->base = cd->end - cd->size - cd->offset;
    if (cd->count > VQC_ZIP_MAX_ENTRIES || cd->count > cd->size / CENTRAL_LEN)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: zip directory claims %llu entries in %llu bytes",
                             z->label, (unsigned long long)cd->count, (unsigned long long)cd->size);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Central directory entries
 * ------------------------------------------------------------------------------------------- */

/* Takes the 64-bit values that the ZIP64 extra field holds for the saturated 32-bit fields. */
static int apply_zip64_extra(const vqc_zip *z, const uint8_t *x, size_t xlen, zip_entry *e,
                             int need_u, int need_c, int need_o)
{
    while (xlen >= 4) {
        uint16_t id = rd16(x), sz = rd16(x + 2);
        if ((size_t)sz > xlen - 4)
            break;
        if (id == 0x0001) {
            const uint8_t *f = x + 4, *end = x + 4 + sz;
            if (need_u && end - f >= 8)
                e->usize = rd64(f), f += 8, need_u = 0;
            if (need_c && end - f >= 8)
                e->csize = rd64(f), f += 8, need_c = 0;
            if (need_o && end - f >= 8)
                e->local_off = rd64(f), need_o = 0;
            break;
        }
        x += 4 + (size_t)sz;
        xlen -= 4 + (size_t)sz;
    }
    if (need_u || need_c || need_o)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: zip entry %s lacks its ZIP64 extra field",
                             z->label, e->name);
    return 0;
}

/* Parses one central directory record at `p` (`avail` bytes left); copies the name to *names. */
static int parse_entry(const vqc_zip *z, const uint8_t *p, uint64_t avail, zip_entry *e,
                       char **names, uint64_t *used)
{
    if (avail < CENTRAL_LEN || rd32(p) != SIG_CENTRAL)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: corrupt zip central directory", z->label);
    uint32_t csize = rd32(p + 20), usize = rd32(p + 24), off = rd32(p + 42);
    size_t nlen = rd16(p + 28), xlen = rd16(p + 30), clen = rd16(p + 32);
    if (CENTRAL_LEN + nlen + xlen + clen > avail)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: truncated zip central directory", z->label);
    memcpy(*names, p + CENTRAL_LEN, nlen);
    (*names)[nlen] = '\0';
    e->name = *names;
    *names += nlen + 1;
    e->flags = rd16(p + 8);
    e->method = rd16(p + 10);
    e->crc = rd32(p + 16);
    e->csize = csize;
    e->usize = usize;
    e->local_off = off;
    *used = CENTRAL_LEN + nlen + xlen + clen;
    int need_u = usize == UINT32_MAX, need_c = csize == UINT32_MAX, need_o = off == UINT32_MAX;
    if (need_u || need_c || need_o)
        return apply_zip64_extra(z, p + CENTRAL_LEN + nlen, xlen, e, need_u, need_c, need_o);
    return 0;
}

static int cmp_sorted(const void *a, const void *b)
{
    const sorted_name *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* Bytes needed for the names of the first `n` records at `p` (each plus a NUL): a superset of
 * what parse_entry copies before it stops. */
static uint64_t names_size(const uint8_t *p, uint64_t avail, size_t n)
{
    uint64_t total = 1;
    for (size_t i = 0; i < n && avail >= CENTRAL_LEN; i++) {
        uint64_t len = CENTRAL_LEN + (uint64_t)rd16(p + 28) + rd16(p + 30) + rd16(p + 32);
        if (len > avail)
            break;
        total += rd16(p + 28) + 1u;
        p += len;
        avail -= len;
    }
    return total;
}

/* Reads every directory record and builds the sorted name index. */
static int parse_directory(vqc_zip *z, const cd_info *cd)
{
    z->n = (size_t)cd->count;
    z->ent = calloc(z->n ? z->n : 1, sizeof *z->ent);
    z->sorted = calloc(z->n ? z->n : 1, sizeof *z->sorted);
    z->inflated = calloc(z->n ? z->n : 1, sizeof *z->inflated);
    const uint8_t *p = z->img + z->base + cd->offset;
    z->names = malloc((size_t)names_size(p, cd->size, z->n));
    if (!z->ent || !z->sorted || !z->inflated || !z->names)
        return vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory reading the zip directory",
                             z->label);
    uint64_t avail = cd->size;
    char *names = z->names;
    for (size_t i = 0; i < z->n; i++) {
        uint64_t used = 0;
        int rc = parse_entry(z, p, avail, &z->ent[i], &names, &used);
        if (rc)
            return rc;
        p += used;
        avail -= used;
        z->sorted[i].name = z->ent[i].name;
        z->sorted[i].index = i;
    }
    qsort(z->sorted, z->n, sizeof *z->sorted, cmp_sorted);
    return 0;
}

int vqc_zip_open(const void *data, size_t len, const char *label, vqc_zip **out)
{
    *out = NULL;
    vqc_zip *z = calloc(1, sizeof *z);
    if (!z || !(z->label = strdup(label ? label : "zip"))) {
        free(z);
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory opening a zip archive");
    }
    z->img = data;
    z->len = len;
    cd_info cd;
    int rc = read_directory_info(z, &cd);
    if (!rc)
        rc = parse_directory(z, &cd);
    if (rc) {
        vqc_zip_free(z);
        return rc;
    }
    *out = z;
    return 0;
}

void vqc_zip_free(vqc_zip *z)
{
    if (!z)
        return;
    if (z->inflated)
        for (size_t i = 0; i < z->n; i++)
            free(z->inflated[i]);
    free(z->inflated);
    free(z->sorted);
    free(z->names);
    free(z->ent);
    free(z->label);
    free(z);
}

size_t vqc_zip_count(const vqc_zip *z)
{
    return z->n;
}

const char *vqc_zip_name(const vqc_zip *z, size_t i)
{
    return i < z->n ? z->ent[i].name : NULL;
}

uint64_t vqc_zip_size(const vqc_zip *z, size_t i)
{
    return i < z->n ? z->ent[i].usize : 0;
}

long vqc_zip_find(const vqc_zip *z, const char *name)
{
    size_t lo = 0, hi = z->n;
    while (lo < hi) { /* first position whose name is >= `name` */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(z->sorted[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < z->n && strcmp(z->sorted[lo].name, name) == 0)
        return (long)z->sorted[lo].index;
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * Entry data
 * ------------------------------------------------------------------------------------------- */

/* Checks the local header of entry `i` and finds its (compressed) data. */
static int locate_data(const vqc_zip *z, size_t i, const uint8_t **p)
{
    const zip_entry *e = &z->ent[i];
    if (e->flags & 1)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: zip entry %s is encrypted", z->label, e->name);
    uint64_t lo = e->local_off + z->base;
    if (lo < e->local_off || lo > z->len || z->len - lo < LOCAL_LEN ||
        rd32(z->img + lo) != SIG_LOCAL)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: zip entry %s: bad local header", z->label,
                             e->name);
    uint64_t start = lo + LOCAL_LEN + rd16(z->img + lo + 26) + rd16(z->img + lo + 28);
    if (start > z->len || z->len - start < e->csize)
        return vqc_error_set(
            VQC_ERR_FORMAT,
            "%s: truncated: zip entry %s needs %llu bytes at offset %llu, file has %zu", z->label,
            e->name, (unsigned long long)e->csize, (unsigned long long)start, z->len);
    *p = z->img + start;
    return 0;
}

static uint32_t crc_of(const void *data, uint64_t n)
{
    const uint8_t *p = data;
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt chunk = n > UINT_MAX ? UINT_MAX : (uInt)n;
        crc = crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)crc;
}

/* Runs zlib over the raw deflate stream `src` into `dst` (exactly e->usize bytes expected). */
static int run_inflate(const vqc_zip *z, const zip_entry *e, const uint8_t *src, uint8_t *dst)
{
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK)
        return vqc_error_set(VQC_ERR_NOMEM, "%s: cannot initialise zlib", z->label);
    uint64_t in_left = e->csize, out_left = e->usize;
    int zrc = Z_OK;
    s.next_in = (Bytef *)src;
    s.next_out = dst;
    while (zrc == Z_OK) {
        if (s.avail_in == 0 && in_left > 0) {
            s.avail_in = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
            in_left -= s.avail_in;
        }
        if (s.avail_out == 0 && out_left > 0) {
            s.avail_out = out_left > UINT_MAX ? UINT_MAX : (uInt)out_left;
            out_left -= s.avail_out;
        }
        zrc = inflate(&s, Z_NO_FLUSH);
    }
    uint64_t produced = (uint64_t)s.total_out;
    inflateEnd(&s);
    if (zrc != Z_STREAM_END || produced != e->usize)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: zip entry %s: corrupt deflate data", z->label,
                             e->name);
    return 0;
}

/* Inflates deflated entry `i` into a reader-owned buffer (once) and checks its CRC. */
static int inflate_entry(vqc_zip *z, size_t i, const uint8_t *src)
{
    const zip_entry *e = &z->ent[i];
    /* deflate cannot expand data by more than about 1032:1 */
    if (e->usize > VQC_ZIP_MAX_INFLATE || e->usize / 1032 > e->csize + 1)
        return vqc_error_set(VQC_ERR_NOMEM, "%s: zip entry %s claims an absurd size (%llu bytes)",
                             z->label, e->name, (unsigned long long)e->usize);
    uint8_t *buf = malloc(e->usize ? (size_t)e->usize : 1);
    if (!buf)
        return vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory inflating zip entry %s", z->label,
                             e->name);
    int rc = run_inflate(z, e, src, buf);
    if (!rc && crc_of(buf, e->usize) != e->crc)
        rc = vqc_error_set(VQC_ERR_FORMAT, "%s: zip entry %s: CRC mismatch", z->label, e->name);
    if (rc) {
        free(buf);
        return rc;
    }
    z->inflated[i] = buf;
    return 0;
}

int vqc_zip_read(vqc_zip *z, size_t i, const void **data, uint64_t *size)
{
    if (i >= z->n)
        return vqc_error_set(VQC_ERR_USAGE, "%s: zip entry index %zu out of range", z->label, i);
    const zip_entry *e = &z->ent[i];
    if (!z->inflated[i]) {
        const uint8_t *src = NULL;
        int rc = locate_data(z, i, &src);
        if (rc)
            return rc;
        if (e->method == 0) {
            if (e->csize != e->usize)
                return vqc_error_set(VQC_ERR_FORMAT, "%s: zip entry %s: stored sizes disagree",
                                     z->label, e->name);
            *data = src;
            *size = e->usize;
            return 0;
        }
        if (e->method != 8)
            return vqc_error_set(VQC_ERR_FORMAT,
                                 "%s: zip entry %s: unsupported compression method %u", z->label,
                                 e->name, e->method);
        if ((rc = inflate_entry(z, i, src)))
            return rc;
    }
    *data = z->inflated[i];
    *size = e->usize;
    return 0;
}

int vqc_zip_read_verified(vqc_zip *z, size_t i, const void **data, uint64_t *size)
{
    int rc = vqc_zip_read(z, i, data, size);
    if (rc || z->inflated[i])
        return rc; /* inflated entries were checked already */
    if (crc_of(*data, *size) != z->ent[i].crc)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: zip entry %s: CRC mismatch", z->label,
                             z->ent[i].name);
    return 0;
}
