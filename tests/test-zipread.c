/* Tests for the zip reader (src/io/zipread.c) on archives built in memory: stored and deflated
 * entries, ZIP64 records, prepended data, comments, duplicate names, and damaged archives
 * (truncation, bad CRC, bad headers, absurd sizes, unsupported features). */
#include <stdint.h>
#include <zlib.h>

#include "io/tensor_map.h"
#include "io/zipread.h"
#include "testhelp.h"
#include "util/error.h"

/* ---------------------------------------------------------------------------------------------
 * A zip builder
 * ------------------------------------------------------------------------------------------- */

typedef struct zentry {
    const char *name;
    uint64_t local, central; /* offsets of the local and central headers */
    uint64_t csize, usize;
    uint32_t crc;
    int method;
} zentry;

typedef struct zbuild {
    unsigned char *b;
    size_t n, cap;
    zentry e[16];
    int ne;
    int zip64;
} zbuild;

static void put(zbuild *z, const void *p, size_t n)
{
    if (z->n + n > z->cap) {
        z->cap = (z->n + n) * 2 + 256;
        z->b = realloc(z->b, z->cap);
        ASSERT(z->b);
    }
    memcpy(z->b + z->n, p, n);
    z->n += n;
}

static void le(zbuild *z, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) {
        unsigned char c = (unsigned char)(v >> (8 * i));
        put(z, &c, 1);
    }
}

static void patch32(zbuild *z, uint64_t at, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        z->b[at + (uint64_t)i] = (unsigned char)(v >> (8 * i));
}

/* Raw deflate of `data` into a malloc'ed buffer. */
static unsigned char *deflate_raw(const void *data, size_t n, size_t *out)
{
    z_stream s;
    memset(&s, 0, sizeof s);
    ASSERT(deflateInit2(&s, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t cap = deflateBound(&s, (uLong)n);
    unsigned char *buf = malloc(cap);
    s.next_in = (Bytef *)data;
    s.avail_in = (uInt)n;
    s.next_out = buf;
    s.avail_out = (uInt)cap;
    ASSERT(deflate(&s, Z_FINISH) == Z_STREAM_END);
    *out = s.total_out;
    deflateEnd(&s);
    return buf;
}

static void add(zbuild *z, const char *name, const void *data, size_t n, int method)
{
    zentry *e = &z->e[z->ne++];
    size_t csize = n;
    unsigned char *comp = method == 8 ? deflate_raw(data, n, &csize) : NULL;
    *e = (zentry){name, z->n, 0, csize, n, (uint32_t)crc32(0, data, (uInt)n), method};
    le(z, 0x04034b50, 4), le(z, z->zip64 ? 45 : 20, 2), le(z, 0, 2), le(z, (uint64_t)method, 2);
    le(z, 0, 4), le(z, e->crc, 4);
    le(z, z->zip64 ? 0xffffffffu : csize, 4), le(z, z->zip64 ? 0xffffffffu : n, 4);
    le(z, strlen(name), 2), le(z, z->zip64 ? 20 : 0, 2);
    put(z, name, strlen(name));
    if (z->zip64)
        le(z, 1, 2), le(z, 16, 2), le(z, n, 8), le(z, csize, 8);
    put(z, comp ? comp : data, csize);
    free(comp);
}

static void central(zbuild *z, zentry *e)
{
    int x = z->zip64;
    e->central = z->n;
    le(z, 0x02014b50, 4), le(z, 45, 2), le(z, x ? 45 : 20, 2), le(z, 0, 2),
        le(z, (uint64_t)e->method, 2);
    le(z, 0, 4), le(z, e->crc, 4);
    le(z, x ? 0xffffffffu : e->csize, 4), le(z, x ? 0xffffffffu : e->usize, 4);
    le(z, strlen(e->name), 2), le(z, x ? 28 : 0, 2), le(z, 0, 2), le(z, 0, 2), le(z, 0, 2),
        le(z, 0, 4);
    le(z, x ? 0xffffffffu : e->local, 4);
    put(z, e->name, strlen(e->name));
    if (x)
        le(z, 1, 2), le(z, 24, 2), le(z, e->usize, 8), le(z, e->csize, 8), le(z, e->local, 8);
}

/* Writes the central directory and end records; `base` is the length of any prepended data. */
static void finish(zbuild *z, uint64_t base, const char *comment)
{
    uint64_t cd = z->n;
    for (int i = 0; i < z->ne; i++)
        central(z, &z->e[i]);
    uint64_t cd_size = z->n - cd, n = (uint64_t)z->ne;
    if (z->zip64) {
        uint64_t rec = z->n;
        le(z, 0x06064b50, 4), le(z, 44, 8), le(z, 45, 2), le(z, 45, 2), le(z, 0, 4), le(z, 0, 4);
        le(z, n, 8), le(z, n, 8), le(z, cd_size, 8), le(z, cd - base, 8);
        le(z, 0x07064b50, 4), le(z, 0, 4), le(z, rec - base, 8), le(z, 1, 4);
    }
    le(z, 0x06054b50, 4), le(z, 0, 2), le(z, 0, 2);
    le(z, z->zip64 ? 0xffff : n, 2), le(z, z->zip64 ? 0xffff : n, 2);
    le(z, z->zip64 ? 0xffffffffu : cd_size, 4), le(z, z->zip64 ? 0xffffffffu : cd - base, 4);
    le(z, strlen(comment), 2);
    put(z, comment, strlen(comment));
}

static char big[100000];

/* An archive with a stored, a deflated and an empty entry (and optionally junk in front). */
static zbuild sample(int zip64, size_t junk, const char *comment)
{
    zbuild z = {0};
    z.zip64 = zip64;
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)("abcabd"[i % 6] + (i % 997 == 0));
    for (size_t i = 0; i < junk; i++)
        put(&z, "#", 1);
    add(&z, "archive/data.pkl", "\x80\x02K\x07.", 5, 0);
    add(&z, "archive/data/0", big, sizeof big, 8);
    add(&z, "archive/version", "", 0, 0);
    for (int i = 0; i < z.ne; i++)
        z.e[i].local -= junk; /* offsets are relative to the archive start */
    finish(&z, junk, comment);
    for (int i = 0; i < z.ne; i++)
        z.e[i].local += junk;
    return z;
}

static vqc_zip *open_ok(const zbuild *z)
{
    vqc_zip *zip = NULL;
    ASSERT_OK(vqc_zip_open(z->b, z->n, "t.zip", &zip));
    return zip;
}

/* ---------------------------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------------------------- */

static void check_sample(const zbuild *z)
{
    vqc_zip *zip = open_ok(z);
    ASSERT_EQ(vqc_zip_count(zip), 3);
    ASSERT_STR_EQ(vqc_zip_name(zip, 1), "archive/data/0");
    ASSERT(vqc_zip_name(zip, 3) == NULL && vqc_zip_size(zip, 3) == 0);
    ASSERT_EQ(vqc_zip_find(zip, "archive/data.pkl"), 0);
    ASSERT_EQ(vqc_zip_find(zip, "archive/version"), 2);
    ASSERT_EQ(vqc_zip_find(zip, "archive/data"), -1);
    ASSERT_EQ(vqc_zip_size(zip, 1), sizeof big);
    const void *p, *q;
    uint64_t n;
    ASSERT_OK(vqc_zip_read_verified(zip, 0, &p, &n));
    ASSERT(n == 5 && memcmp(p, "\x80\x02K\x07.", 5) == 0);
    ASSERT((const unsigned char *)p > z->b && (const unsigned char *)p < z->b + z->n); /* no copy */
    ASSERT_OK(vqc_zip_read(zip, 1, &p, &n));
    ASSERT(n == sizeof big && memcmp(p, big, sizeof big) == 0);
    ASSERT_OK(vqc_zip_read_verified(zip, 1, &q, &n));
    ASSERT(p == q); /* inflated once */
    ASSERT_OK(vqc_zip_read(zip, 2, &p, &n));
    ASSERT_EQ(n, 0);
    ASSERT_EQ(vqc_zip_read(zip, 3, &p, &n), VQC_ERR_USAGE);
    vqc_zip_free(zip);
}

static void test_good_archives(void)
{
    for (int zip64 = 0; zip64 < 2; zip64++) {
        zbuild z = sample(zip64, 0, "");
        check_sample(&z);
        free(z.b);
        z = sample(zip64, 1000, "a comment"); /* a stub in front and a comment at the end */
        check_sample(&z);
        free(z.b);
    }
    zbuild z = {0}; /* empty archive */
    finish(&z, 0, "");
    vqc_zip *zip = open_ok(&z);
    ASSERT(vqc_zip_count(zip) == 0 && vqc_zip_find(zip, "x") == -1);
    vqc_zip_free(zip);
    free(z.b);
    z = (zbuild){0}; /* duplicate names: find returns the first */
    add(&z, "b", "1", 1, 0), add(&z, "a", "2", 1, 0), add(&z, "b", "3", 1, 0);
    finish(&z, 0, "");
    zip = open_ok(&z);
    ASSERT_EQ(vqc_zip_find(zip, "b"), 0);
    ASSERT_EQ(vqc_zip_find(zip, "a"), 1);
    vqc_zip_free(zip);
    free(z.b);
}

static void test_truncation(void)
{
    for (int zip64 = 0; zip64 < 2; zip64++) {
        zbuild z = sample(zip64, 0, "");
        for (size_t n = 0; n < z.n; n += (n < 200 || n > z.n - 400) ? 1 : 97) {
            unsigned char *copy = malloc(n ? n : 1);
            memcpy(copy, z.b, n);
            vqc_zip *zip = NULL;
            int rc = vqc_zip_open(copy, n, "t.zip", &zip);
            ASSERT(rc < 0 && zip == NULL && *vqc_error_get());
            free(copy);
        }
        free(z.b);
    }
}

/* Damages one field of the sample archive; open or read of entry `entry` must fail with `code`. */
static void expect_damage(int zip64, uint64_t (*where)(const zbuild *), uint32_t value, int entry,
                          int code, const char *what)
{
    zbuild z = sample(zip64, 0, "");
    patch32(&z, where(&z), value);
    vqc_zip *zip = NULL;
    int rc = vqc_zip_open(z.b, z.n, "t.zip", &zip);
    const void *p;
    uint64_t n;
    if (rc == 0) {
        rc = vqc_zip_read_verified(zip, (size_t)entry, &p, &n);
        vqc_zip_free(zip);
    }
    if (rc != code)
        TEST_FAIL("%s (zip64=%d): expected %d, got %d (%s)", what, zip64, code, rc,
                  vqc_error_get());
    ASSERT(strstr(vqc_error_get(), "t.zip") && !strchr(vqc_error_get(), '\n'));
    free(z.b);
}

static uint64_t crc_of_1(const zbuild *z)
{
    return z->e[1].central + 16;
}
static uint64_t crc_of_0(const zbuild *z)
{
    return z->e[0].central + 16;
}
static uint64_t method_of_1(const zbuild *z)
{
    return z->e[1].central + 8;
} /* flags+method */
static uint64_t flags_of_0(const zbuild *z)
{
    return z->e[0].central + 6;
} /* needed+flags */
static uint64_t local_sig_0(const zbuild *z)
{
    return z->e[0].local;
}
static uint64_t usize_of_0(const zbuild *z)
{
    return z->e[0].central + 24;
}
static uint64_t local_off_2(const zbuild *z)
{
    return z->e[2].central + 42;
}
static uint64_t usize_of_1(const zbuild *z)
{
    return z->e[1].central + 24;
}
static uint64_t inflate_data_1(const zbuild *z)
{
    return z->e[1].local + 30 + 14 + 20 * (uint64_t)z->zip64;
}
static uint64_t eocd_count(const zbuild *z)
{
    return z->n - 22 + 8;
} /* this disk + total */
static uint64_t eocd_cd_off(const zbuild *z)
{
    return z->n - 22 + 16;
}
static uint64_t eocd_disk(const zbuild *z)
{
    return z->n - 22 + 4;
}
static uint64_t eocd64_count(const zbuild *z)
{
    return z->n - 22 - 20 - 56 + 32;
}
static uint64_t extra_id_1(const zbuild *z)
{
    return z->e[1].central + 46 + 14;
}

static void test_damage(void)
{
    for (int x = 0; x < 2; x++) {
        expect_damage(x, crc_of_1, 0x12345678, 1, VQC_ERR_FORMAT, "bad CRC of a deflated entry");
        expect_damage(x, crc_of_0, 0x12345678, 0, VQC_ERR_FORMAT, "bad CRC of a stored entry");
        expect_damage(x, method_of_1, 12u << 16, 1, VQC_ERR_FORMAT, "bzip2 method");
        expect_damage(x, flags_of_0, (1u << 16) | 20, 0, VQC_ERR_FORMAT, "encrypted entry");
        expect_damage(x, local_sig_0, 0x04034b51, 0, VQC_ERR_FORMAT, "bad local header");
        expect_damage(x, inflate_data_1, 0xffffffffu, 1, VQC_ERR_FORMAT, "corrupt deflate stream");
    }
    expect_damage(0, usize_of_0, 6, 0, VQC_ERR_FORMAT, "stored sizes disagree");
    expect_damage(0, local_off_2, 0x7fffffff, 2, VQC_ERR_FORMAT, "local header past the end");
    expect_damage(0, usize_of_1, 0xfffffff0u, 1, VQC_ERR_NOMEM, "absurd inflated size");
    expect_damage(0, eocd_count, 0x00ff00ff, 0, VQC_ERR_FORMAT,
                  "too many entries for the directory");
    expect_damage(0, eocd_cd_off, 0x7fffffff, 0, VQC_ERR_FORMAT, "directory outside the file");
    expect_damage(0, eocd_disk, 0x00010001, 0, VQC_ERR_FORMAT, "multi-disk");
    expect_damage(1, eocd64_count, 0x7fffffff, 0, VQC_ERR_FORMAT, "ZIP64 entry count too large");
    expect_damage(1, extra_id_1, 0x00180007, 1, VQC_ERR_FORMAT, "ZIP64 extra field missing");
}

/* ---------------------------------------------------------------------------------------------
 * torch.save-style archives through vqc_tmap_open_memory
 * ------------------------------------------------------------------------------------------- */

/* {'w': _rebuild_tensor_v2(('storage', torch.FloatStorage, '0', 'cpu', 6), 0, (2, 3), (3, 1),
 *  False, OrderedDict())} as torch.save pickles it (protocol 2). */
static const char weights_pkl[] = "\x80\x02}X\x01\0\0\0w"
                                  "ctorch._utils\n_rebuild_tensor_v2\n"
                                  "((X\x07\0\0\0storage"
                                  "ctorch\nFloatStorage\n"
                                  "X\x01\0\0\0"
                                  "0"
                                  "X\x03\0\0\0cpuK\x06tQK\0K\x02K\x03\x86K\x03K\x01\x86\x89"
                                  "ccollections\nOrderedDict\n"
                                  ")RtRs.";

/* An archive under `prefix` with data.pkl, a deflated storage of `nfloats` floats, and `extra`
 * (an entry name, or NULL) holding `extra_data`. */
static zbuild torch_archive(const char *prefix, int nfloats, const char *extra,
                            const char *extra_data)
{
    static char names[3][256];
    static const float values[6] = {0, 1, 2, 3, 4, 5};
    zbuild z = {0};
    snprintf(names[0], sizeof names[0], "%sdata.pkl", prefix);
    snprintf(names[1], sizeof names[1], "%sdata/0", prefix);
    add(&z, names[0], weights_pkl, sizeof weights_pkl - 1, 0);
    if (nfloats >= 0)
        add(&z, names[1], values, (size_t)nfloats * 4, 8);
    if (extra) {
        snprintf(names[2], sizeof names[2], "%s%s", prefix, extra);
        add(&z, names[2], extra_data, strlen(extra_data), 0);
    }
    finish(&z, 0, "");
    return z;
}

static int open_torch(const zbuild *z, vqc_tensor_map **m)
{
    *m = NULL;
    int rc = vqc_tmap_open_memory(z->b, z->n, "t.ckpt", m);
    free(z->b);
    return rc;
}

static void test_torch_archives(void)
{
    vqc_tensor_map *m;
    zbuild empty = {0};
    ASSERT_EQ(open_torch(&empty, &m), VQC_ERR_FORMAT);
    zbuild z = torch_archive("my model/", 6, "version", "3\n");
    unsigned char *keep = malloc(z.n);
    memcpy(keep, z.b, z.n);
    ASSERT_OK(vqc_tmap_open_memory(keep, z.n, "t.ckpt", &m));
    ASSERT_STR_EQ(vqc_tmap_format(m), "zip");
    const vqc_tensor_info *w = vqc_tmap_get(m, "w");
    ASSERT(vqc_tmap_count(m) == 1 && w && w->ndim == 2 && w->shape[0] == 2 && w->strides[0] == 3);
    float v5;
    memcpy(&v5, (const char *)w->data + 20, 4); /* from the inflated storage */
    ASSERT_NEAR(v5, 5, 0);
    vqc_tmap_free(m);
    free(keep);
    free(z.b);
    z = torch_archive("archive/", 6, "code/__torch__/m.py", "class M: pass\n");
    ASSERT_OK(open_torch(&z, &m));
    ASSERT_STR_EQ(vqc_tmap_format(m), "torchscript");
    vqc_tmap_free(m);
    z = torch_archive("archive/", 6, "constants.pkl", "\x80\x02).");
    ASSERT_OK(open_torch(&z, &m));
    ASSERT_STR_EQ(vqc_tmap_format(m), "torchscript");
    vqc_tmap_free(m);
    z = torch_archive("archive/", 6, "byteorder", "big");
    ASSERT_EQ(open_torch(&z, &m), VQC_ERR_FORMAT);
    ASSERT(strstr(vqc_error_get(), "big-endian"));
    z = torch_archive("archive/", 6, "byteorder", "little");
    ASSERT_OK(open_torch(&z, &m));
    vqc_tmap_free(m);
    z = torch_archive("archive/", -1, NULL, NULL);
    ASSERT_EQ(open_torch(&z, &m), VQC_ERR_FORMAT);
    ASSERT(strstr(vqc_error_get(), "archive/data/0 is missing"));
    z = torch_archive("archive/", 5, NULL, NULL);
    ASSERT_EQ(open_torch(&z, &m), VQC_ERR_FORMAT);
    ASSERT(strstr(vqc_error_get(), "truncated: storage data/0 needs 24 bytes, 20 present"));
    z = torch_archive("a/b/", 6, NULL, NULL); /* torch uses exactly one folder level */
    ASSERT_EQ(open_torch(&z, &m), VQC_ERR_FORMAT);
    ASSERT(strstr(vqc_error_get(), "data.pkl"));
}

int main(void)
{
    test_good_archives();
    test_truncation();
    test_damage();
    test_torch_archives();
    printf("test-zipread: ok\n");
    return 0;
}
