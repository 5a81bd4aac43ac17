/* Tests for the gzip-or-plain file reader (src/io/gzfile.c) on files written here: plain and
 * gzip files, several members (one ending exactly where a read ends), bytes after the last
 * member, files cut short anywhere, damaged data, an early stop, the size limit. The files cut
 * short, and the one whose first block is no deflate data, are what zlib 1.3.2's gzread reads as
 * a plain end of file. */
#include <zlib.h>

#include "io/gzfile.h"
#include "testhelp.h"
#include "util/error.h"

#define CHUNK 65536 /* gzfile.c's read size */

/* The files written here are built in vqc_strbuf, the library's byte string. */
static void put(vqc_strbuf *b, const void *p, size_t n)
{
    ASSERT_OK(vqc_strbuf_put(b, p, n));
}

/* Appends one gzip member of data[0..n) at `level` (0: stored blocks, sizes known exactly). */
static void gzip_member(vqc_strbuf *b, const unsigned char *data, size_t n, int level)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    ASSERT_EQ(deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)n) + 64;
    unsigned char *out = malloc(cap);
    ASSERT(out);
    z.next_in = (unsigned char *)data;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    ASSERT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
    put(b, out, cap - z.avail_out);
    deflateEnd(&z);
    free(out);
}

/* n bytes of text-like data from a fixed generator (compressible: a small alphabet). */
static unsigned char *text(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n + 1);
    ASSERT(p);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (seed >> 16) % 9 == 0 ? '\n' : (unsigned char)('a' + (seed >> 16) % 23);
    }
    return p;
}

static const char *path_of(const char *name)
{
    static char buf[4][4096];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 4096, "%s/%s", test_tmpdir("gzfile"), name);
    return p;
}

static const char *write_bytes(const char *name, const void *p, size_t n)
{
    const char *path = path_of(name);
    FILE *f = fopen(path, "wb");
    ASSERT(f && fwrite(p, 1, n, f) == n);
    fclose(f);
    return path;
}

/* Reads path whole and checks it gives want[0..n). */
static void expect_content(const char *path, const void *want, size_t n)
{
    vqc_strbuf out = {0};
    int rc = vqc_gzfile_read(path, (size_t)1 << 30, NULL, NULL, &out);
    if (rc)
        TEST_FAIL("%s: %d (%s)", path, rc, vqc_error_get());
    ASSERT(out.p != NULL);
    ASSERT_EQ(out.n, n);
    ASSERT(memcmp(out.p, want, n) == 0);
    ASSERT_EQ(out.p[n], 0);
    vqc_strbuf_free(&out);
}

static void expect_error(const char *path, size_t max, int code, const char *needle)
{
    vqc_strbuf out = {0};
    int rc = vqc_gzfile_read(path, max, NULL, NULL, &out);
    if (rc != code || !strstr(vqc_error_get(), needle))
        TEST_FAIL("%s: %d (%s), want %d with \"%s\"", path, rc, vqc_error_get(), code, needle);
    ASSERT(strchr(vqc_error_get(), '\n') == NULL);
    vqc_strbuf_free(&out);
}

static void test_plain_and_gzip(void)
{
    size_t n = 5 * CHUNK / 2 + 7; /* several reads, the last one partial */
    unsigned char *t = text(n, 1);
    expect_content(write_bytes("plain.txt", t, n), t, n);
    vqc_strbuf gz = {0};
    gzip_member(&gz, t, n, 6);
    expect_content(write_bytes("one.gz", gz.p, gz.n), t, n);
    /* empty files, and a lone first magic byte, are plain */
    expect_content(write_bytes("empty.txt", "", 0), (const unsigned char *)"", 0);
    expect_content(write_bytes("one-byte.txt", "\x1f", 1), (const unsigned char *)"\x1f", 1);
    vqc_strbuf empty = {0};
    gzip_member(&empty, t, 0, 6);
    expect_content(write_bytes("empty.gz", empty.p, empty.n), t, 0);
    vqc_strbuf_free(&empty);
    vqc_strbuf_free(&gz);
    free(t);
}

/* Members one after another are one stream, including when a member ends exactly at the end of
 * a read, or the next one's magic bytes straddle it. */
static void test_members(void)
{
    unsigned char *a = text(3 * CHUNK, 2), *b = text(CHUNK / 3, 3);
    vqc_strbuf gz = {0}, want = {0};
    gzip_member(&gz, a, CHUNK, 6);
    gzip_member(&gz, b, CHUNK / 3, 9);
    gzip_member(&gz, a, 1000, 1);
    put(&want, a, CHUNK);
    put(&want, b, CHUNK / 3);
    put(&want, a, 1000);
    expect_content(write_bytes("three.gz", gz.p, gz.n), want.p, want.n);
    for (size_t end = CHUNK - 1; end <= CHUNK; end++) {
        /* a stored member whose size is `end`: its length grows one for one with the data's */
        size_t len = CHUNK - 200;
        vqc_strbuf first = {0};
        for (int tries = 0; tries < 4; tries++) {
            vqc_strbuf_clear(&first);
            gzip_member(&first, a, len, 0);
            if (first.n == end)
                break;
            len += end - first.n;
        }
        ASSERT_EQ(first.n, end);
        gzip_member(&first, b, 100, 6);
        vqc_strbuf w = {0};
        put(&w, a, len);
        put(&w, b, 100);
        expect_content(write_bytes("boundary.gz", first.p, first.n), w.p, w.n);
        vqc_strbuf_free(&first);
        vqc_strbuf_free(&w);
    }
    /* bytes after the last member that do not begin another are ignored, as gzip does */
    size_t whole = gz.n;
    put(&gz, "\0\0\0\0trailing", 12);
    expect_content(write_bytes("trailing.gz", gz.p, gz.n), want.p, want.n);
    /* ... but bytes that begin like a member and are not one are damage */
    gz.n = whole;
    put(&gz, "\x1f\x8b\x08\x00garbage", 11);
    expect_error(write_bytes("bad-second.gz", gz.p, gz.n), (size_t)1 << 30, VQC_ERR_FORMAT,
                 "gzip data");
    vqc_strbuf_free(&gz);
    vqc_strbuf_free(&want);
    free(a);
    free(b);
}

/* A member cut anywhere short of its last byte is an error, never a shorter success. */
static void test_truncated(void)
{
    size_t n = 2 * CHUNK;
    unsigned char *t = text(n, 4);
    vqc_strbuf gz = {0};
    gzip_member(&gz, t, n, 6);
    size_t cuts[] = {2, 5, 10, 11, gz.n / 3, gz.n / 2, gz.n - 8, gz.n - 4, gz.n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        const char *p = write_bytes("cut.gz", gz.p, cuts[i]);
        vqc_strbuf out = {0};
        int rc = vqc_gzfile_read(p, (size_t)1 << 30, NULL, NULL, &out);
        if (rc != VQC_ERR_FORMAT || !strstr(vqc_error_get(), "truncated gzip data"))
            TEST_FAIL("cut at %zu of %zu: %d (%s)", cuts[i], gz.n, rc, vqc_error_get());
        ASSERT(out.n <= n && memcmp(out.p, t, out.n) == 0); /* what came before is right */
        vqc_strbuf_free(&out);
    }
    vqc_strbuf_free(&gz);
    free(t);
}

static void test_damaged(void)
{
    /* a gzip header, then bytes that are no deflate block (zlib 1.3.2's gzread: an empty file) */
    const char garbage[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage, not deflate data";
    expect_error(write_bytes("garbage.gz", garbage, sizeof garbage), (size_t)1 << 30,
                 VQC_ERR_FORMAT, "corrupt gzip data (");
    size_t n = CHUNK;
    unsigned char *t = text(n, 5);
    vqc_strbuf gz = {0};
    gzip_member(&gz, t, n, 6);
    gz.p[gz.n - 6] ^= 0x55; /* the check sum */
    expect_error(write_bytes("crc.gz", gz.p, gz.n), (size_t)1 << 30, VQC_ERR_FORMAT,
                 "corrupt gzip data (");
    gz.p[gz.n - 6] ^= 0x55;
    for (size_t i = gz.n / 2; i < gz.n / 2 + 16; i++)
        gz.p[i] ^= 0x5a;
    expect_error(write_bytes("flipped.gz", gz.p, gz.n), (size_t)1 << 30, VQC_ERR_FORMAT,
                 "corrupt gzip data (");
    vqc_strbuf_free(&gz);
    free(t);
}

typedef struct {
    int calls;
    size_t stop_after;
} stopper;

static int stop_at(void *user, const vqc_strbuf *out, size_t from)
{
    stopper *s = user;
    s->calls++;
    ASSERT(from < out->n);
    return out->n >= s->stop_after;
}

/* An early stop is a success, whatever the rest of the file holds; the limit counts what `out`
 * held before. */
static void test_stop_and_limit(void)
{
    size_t n = 4 * CHUNK;
    unsigned char *t = text(n, 6);
    vqc_strbuf gz = {0};
    gzip_member(&gz, t, n, 6);
    const char *cut = write_bytes("stop.gz", gz.p, gz.n / 2);
    stopper s = {0, 1000};
    vqc_strbuf out = {0};
    ASSERT_OK(vqc_gzfile_read(cut, (size_t)1 << 30, stop_at, &s, &out));
    ASSERT_EQ(s.calls, 1);
    ASSERT(out.n >= 1000 && memcmp(out.p, t, out.n) == 0);
    vqc_strbuf_free(&out);
    const char *whole = write_bytes("whole.gz", gz.p, gz.n);
    expect_error(whole, n - 1, VQC_ERR_FORMAT, "larger than");
    expect_content(whole, t, n);
    ASSERT_OK(vqc_strbuf_put(&out, "abc", 3));
    ASSERT_EQ(vqc_gzfile_read(whole, n + 2, NULL, NULL, &out), VQC_ERR_FORMAT);
    vqc_strbuf_clear(&out);
    ASSERT_OK(vqc_strbuf_put(&out, "abc", 3));
    ASSERT_OK(vqc_gzfile_read(whole, n + 3, NULL, NULL, &out));
    ASSERT(out.n == n + 3 && memcmp(out.p + 3, t, n) == 0);
    vqc_strbuf_free(&out);
    expect_error(write_bytes("plain-big.txt", t, n), n / 2, VQC_ERR_FORMAT, "larger than");
    vqc_strbuf_free(&gz);
    free(t);
}

int main(void)
{
    expect_error(path_of("missing.gz"), 100, VQC_ERR_IO, "missing.gz");
    test_plain_and_gzip();
    test_members();
    test_truncated();
    test_damaged();
    test_stop_and_limit();
    fprintf(stderr, "test-gzfile: ok\n");
    return 0;
}
