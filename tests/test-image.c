/* Output images by file name (io/image.c): .png writes PNG, .jpg/.jpeg JPEG of quality 75 with
 * the metadata in COM segments, anything else is refused; the metadata reads back from both
 * (io/image_text.c), and so does the step vqc_image_step reports. The JPEG pre-check refuses a
 * scan whose tables no segment defines (stb 2.27 would read uninitialised memory), and a PNG
 * whose chunk runs past the end of the file (stb would first allocate what it declares). */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/image.h"
#include "io/image_text.h"
#include "testhelp.h"
#include "util/error.h"
#include "vqclip.h"

static const char *dir;

static const char *tpath(const char *name)
{
    static char buf[4][4096];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", dir, name);
    return b;
}

/* A smooth 48x40 picture (JPEG keeps it within a few levels). */
static vqc_image smooth_image(void)
{
    vqc_image img = {48, 40, malloc(48 * 40 * 3 * sizeof(float))};
    for (int y = 0; y < img.h; y++)
        for (int x = 0; x < img.w; x++)
            for (int c = 0; c < 3; c++)
                img.rgb[(y * img.w + x) * 3 + c] = (float)(x + 2 * y + 20 * c) / 200.0f;
    return img;
}

static void read_head(const char *path, unsigned char *head, size_t n)
{
    FILE *f = fopen(path, "rb");
    ASSERT(f != NULL);
    ASSERT_EQ(fread(head, 1, n, f), n);
    fclose(f);
}

static void test_names(void)
{
    ASSERT_EQ(vqc_image_format_of("a.png"), VQC_IMAGE_PNG);
    ASSERT_EQ(vqc_image_format_of("dir.x/A.PNG"), VQC_IMAGE_PNG);
    ASSERT_EQ(vqc_image_format_of("a.jpg"), VQC_IMAGE_JPEG);
    ASSERT_EQ(vqc_image_format_of("a.JPeG"), VQC_IMAGE_JPEG);
    ASSERT_EQ(vqc_image_format_of("a.gif"), VQC_IMAGE_UNKNOWN);
    ASSERT_EQ(vqc_image_format_of("out.png/noext"), VQC_IMAGE_UNKNOWN);
    ASSERT_EQ(vqc_image_format_of(".png"), VQC_IMAGE_UNKNOWN);
    ASSERT_EQ(vqc_image_format_of("/dev/null"), VQC_IMAGE_PNG); /* written through */
    ASSERT_EQ(vqc_image_check_name("x.webp", "output"), VQC_ERR_USAGE);
    ASSERT(strstr(vqc_error_get(), "x.webp") && strstr(vqc_error_get(), ".jpg"));
    ASSERT(!strchr(vqc_error_get(), '\n'));
}

static void test_png_and_jpeg(void)
{
    vqc_image img = smooth_image(), back;
    /* a value longer than one COM segment, to be joined on reading */
    size_t big = 150000;
    char *long_text = malloc(big + 1);
    for (size_t i = 0; i < big; i++)
        long_text[i] = (char)('a' + i % 26);
    long_text[big] = 0;
    const char *meta[] = {
        "parameters", "vqclip -p 'x' -lr 0.1", "vqclip:step", "7", "long", long_text, NULL};
    ASSERT_OK(vqc_image_save(tpath("o.png"), &img, meta));
    ASSERT_OK(vqc_image_save(tpath("o.jpg"), &img, meta));
    ASSERT_OK(vqc_image_save(tpath("o.jpeg"), &img, meta));
    unsigned char h[4];
    read_head(tpath("o.png"), h, 4);
    ASSERT(h[0] == 0x89 && h[1] == 'P');
    read_head(tpath("o.jpg"), h, 4);
    ASSERT(h[0] == 0xFF && h[1] == 0xD8 && h[2] == 0xFF);
    const char *names[] = {"o.png", "o.jpg", "o.jpeg"};
    char *text = malloc(big + 16);
    for (int k = 0; k < 3; k++) {
        ASSERT_OK(vqc_image_text(tpath(names[k]), "parameters", text, big + 16));
        ASSERT_STR_EQ(text, "vqclip -p 'x' -lr 0.1");
        ASSERT_OK(vqc_image_text(tpath(names[k]), "long", text, big + 16));
        ASSERT_STR_EQ(text, long_text);
        ASSERT_EQ(vqc_image_text(tpath(names[k]), "nope", text, 64), VQC_ERR_FORMAT);
        ASSERT_OK(vqc_image_text(tpath(names[k]), "long", text, 10)); /* truncated */
        ASSERT_STR_EQ(text, "abcdefghi");
        int step = 0;
        ASSERT_OK(vqc_image_step(tpath(names[k]), &step));
        ASSERT_EQ(step, 7);
        /* the pixels decode: exact in PNG, close in JPEG */
        ASSERT_OK(vqc_image_load(tpath(names[k]), &back));
        ASSERT_EQ(back.w, img.w);
        ASSERT_EQ(back.h, img.h);
        double worst = 0;
        for (int i = 0; i < img.w * img.h * 3; i++) {
            double d = fabs(back.rgb[i] - img.rgb[i]);
            worst = d > worst ? d : worst;
        }
        ASSERT(k == 0 ? worst <= 0.5 / 255 + 1e-6 : worst < 0.06);
        vqc_image_free(&back);
    }
    free(text);
    free(long_text);
    /* an unknown name writes nothing */
    ASSERT_EQ(vqc_image_save(tpath("o.bmp"), &img, meta), VQC_ERR_USAGE);
    ASSERT(access(tpath("o.bmp"), F_OK) != 0);
    /* nor does a folder's name (it stays a folder) */
    ASSERT(mkdir(tpath("out"), 0755) == 0 || errno == EEXIST);
    ASSERT_EQ(vqc_image_save(tpath("out"), &img, meta), VQC_ERR_USAGE);
    ASSERT(strstr(vqc_error_get(), "folder"));
    struct stat st;
    ASSERT(stat(tpath("out"), &st) == 0 && S_ISDIR(st.st_mode));
    /* a JPEG vqclip did not write has no step */
    const char *none[] = {NULL};
    ASSERT_OK(vqc_image_save(tpath("plain.jpg"), &img, none));
    int step;
    ASSERT_EQ(vqc_image_step(tpath("plain.jpg"), &step), VQC_ERR_FORMAT);
    vqc_image_free(&img);
}

/* smooth_image() saved as `name` (its type by the name), read back into d (cap bytes); returns
 * the length. */
static size_t saved_bytes(const char *name, unsigned char *d, size_t cap)
{
    vqc_image img = smooth_image();
    const char *none[] = {NULL};
    ASSERT_OK(vqc_image_save(tpath(name), &img, none));
    vqc_image_free(&img);
    FILE *f = fopen(tpath(name), "rb");
    ASSERT(f != NULL);
    size_t n = fread(d, 1, cap, f);
    fclose(f);
    ASSERT(n > 60 && n < cap);
    return n;
}

static void write_file(const char *name, const unsigned char *d, size_t n)
{
    FILE *f = fopen(tpath(name), "wb");
    ASSERT(f && fwrite(d, 1, n, f) == n && fclose(f) == 0);
}

/* The JPEG `in` (n bytes) without its segments of marker m before the first scan, into out;
 * returns the new length. */
static size_t strip_segments(const unsigned char *in, size_t n, unsigned m, unsigned char *out)
{
    size_t i = 2, o = 2;
    memcpy(out, in, 2);
    while (i + 4 <= n && in[i] == 0xFF && in[i + 1] != 0xDA) {
        size_t len = 2 + ((size_t)in[i + 2] << 8 | in[i + 3]);
        if (in[i + 1] != m) {
            memcpy(out + o, in + i, len);
            o += len;
        }
        i += len;
    }
    memcpy(out + o, in + i, n - i);
    return o + n - i;
}

/* Writes n bytes to name; vqc_image_load and vqc_raw_image_load must both refuse it, naming
 * an undefined table. */
static void expect_undefined_table(const unsigned char *d, size_t n, const char *name)
{
    ASSERT_EQ(vqc_jpeg_unsafe(d, n), 2);
    write_file(name, d, n);
    vqc_image img;
    vqc_raw_image raw;
    ASSERT_EQ(vqc_image_load(tpath(name), &img), VQC_ERR_FORMAT);
    ASSERT(strstr(vqc_error_get(), "no segment defines") != NULL);
    ASSERT_EQ(vqc_raw_image_load(tpath(name), &raw), VQC_ERR_FORMAT);
    fprintf(stderr, "  %s: %s\n", name, vqc_error_get());
}

static void test_jpeg_precheck(void)
{
    static unsigned char d[1 << 16], e[1 << 16];
    size_t n = saved_bytes("pre.jpg", d, sizeof d);
    vqc_image img;
    ASSERT_EQ(vqc_jpeg_unsafe(d, n), 0);
    ASSERT_OK(vqc_image_load(tpath("pre.jpg"), &img));
    vqc_image_free(&img);
    /* no Huffman tables, no quantisation tables */
    size_t m = strip_segments(d, n, 0xC4, e);
    ASSERT(m < n);
    expect_undefined_table(e, m, "no-dht.jpg");
    m = strip_segments(d, n, 0xDB, e);
    ASSERT(m < n);
    expect_undefined_table(e, m, "no-dqt.jpg");
    /* every table defined but the scan's last AC table, which moves to slot 3 */
    memcpy(e, d, n);
    size_t last_ac = 0;
    for (size_t i = 2; i + 4 <= n && e[i] == 0xFF && e[i + 1] != 0xDA;) {
        size_t end = i + 2 + ((size_t)e[i + 2] << 8 | e[i + 3]);
        for (size_t t = i + 4; e[i + 1] == 0xC4 && t < end;) { /* each table of a DHT */
            unsigned codes = 0;
            for (int k = 1; k <= 16; k++)
                codes += e[t + k];
            if (e[t] >> 4 == 1)
                last_ac = t;
            t += 17 + codes;
        }
        i = end;
    }
    ASSERT(last_ac > 0 && (e[last_ac] & 15) != 3);
    e[last_ac] = 0x13;
    expect_undefined_table(e, n, "ac-moved.jpg");
}

/* n bytes written to name must be refused by both loaders with `code` and `words`. */
static void expect_refused(const unsigned char *d, size_t n, const char *name, int code,
                           const char *words)
{
    ASSERT_EQ(vqc_jpeg_unsafe(d, n), code);
    write_file(name, d, n);
    vqc_image img;
    vqc_raw_image raw;
    ASSERT_EQ(vqc_image_load(tpath(name), &img), VQC_ERR_FORMAT);
    ASSERT(strstr(vqc_error_get(), words) != NULL && !strchr(vqc_error_get(), '\n'));
    ASSERT_EQ(vqc_raw_image_load(tpath(name), &raw), VQC_ERR_FORMAT);
    fprintf(stderr, "  %s: %s\n", name, vqc_error_get());
}

/* JPEGs cut short, wherever the cut falls, and one with no scan, are refused whatever the
 * system's stb makes of them; bytes after the end-of-image marker (as cameras append) are not
 * a fault. */
static void test_jpeg_truncated(void)
{
    static unsigned char d[1 << 16], e[1 << 16];
    size_t n = saved_bytes("whole.jpg", d, sizeof d);
    ASSERT(d[n - 2] == 0xFF && d[n - 1] == 0xD9);
    unsigned char *sos = memmem(d, n, "\xFF\xDA", 2);
    ASSERT(sos != NULL);
    size_t at_sos = (size_t)(sos - d);
    const size_t cuts[] = {4, at_sos / 2, at_sos, at_sos + 8, (at_sos + n) / 2, n - 2, n - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        char name[32];
        snprintf(name, sizeof name, "cut-%zu.jpg", cuts[k]);
        expect_refused(d, cuts[k], name, 3, "truncated JPEG");
    }
    /* SOI, the tables and the frame, then the end-of-image marker: no scan */
    memcpy(e, d, at_sos);
    e[at_sos] = 0xFF;
    e[at_sos + 1] = 0xD9;
    expect_refused(e, at_sos + 2, "no-scan.jpg", 4, "no scan");
    memcpy(e, d, n);
    memcpy(e + n, "trailing bytes after EOI", 24);
    ASSERT_EQ(vqc_jpeg_unsafe(e, n + 24), 0);
    write_file("trailing.jpg", e, n + 24);
    vqc_image img;
    ASSERT_OK(vqc_image_load(tpath("trailing.jpg"), &img));
    vqc_image_free(&img);
}

/* Binary PNM: a small P6 and a P5 with a comment load; a header number that would overflow
 * stb 2.27's int parser (a long run of digits, in any of the three numbers) is refused first. */
static void test_pnm_precheck(void)
{
    static const unsigned char p6[] = "P6\n2 1\n255\n\xff\x00\x00\x00\x00\xff";
    write_file("ok.ppm", p6, sizeof p6 - 1);
    vqc_image img;
    ASSERT_OK(vqc_image_load(tpath("ok.ppm"), &img));
    ASSERT(img.w == 2 && img.h == 1 && img.rgb[0] == 1.0f && img.rgb[5] == 1.0f);
    vqc_image_free(&img);
    static const unsigned char p5[] = "P5 # a comment\n1 1 255 \x80";
    write_file("ok.pgm", p5, sizeof p5 - 1);
    ASSERT_OK(vqc_image_load(tpath("ok.pgm"), &img));
    vqc_image_free(&img);
    static const char *const bad[] = {"P66666666666\x00\x02", "P6 1 1 99999999999 \xff",
                                      "P5\n#c\n4 2147483648 255\n"};
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(bad[k]);
        ASSERT(vqc_image_unsafe((const unsigned char *)bad[k], n) != NULL);
        write_file("bad.ppm", (const unsigned char *)bad[k], n);
        ASSERT_EQ(vqc_image_load(tpath("bad.ppm"), &img), VQC_ERR_FORMAT);
        ASSERT(strstr(vqc_error_get(), "corrupt PNM") != NULL);
    }
    fprintf(stderr, "  %s\n", vqc_error_get());
}

/* A PNG whose IDAT declares 1 GiB is refused as truncated; one cut right after IEND's type (no
 * CRC, which stb does not read) still loads. */
static void test_png_precheck(void)
{
    static unsigned char d[1 << 16];
    size_t n = saved_bytes("pre.png", d, sizeof d);
    vqc_image img;
    ASSERT(memcmp(d + n - 8, "IEND", 4) == 0);
    unsigned char *idat = memmem(d, n, "IDAT", 4);
    ASSERT(idat != NULL);
    unsigned char keep[4];
    memcpy(keep, idat - 4, 4);
    memcpy(idat - 4, "\x40\x00\x00\x00", 4);
    write_file("huge-idat.png", d, n);
    ASSERT_EQ(vqc_image_load(tpath("huge-idat.png"), &img), VQC_ERR_FORMAT);
    ASSERT(strstr(vqc_error_get(), "truncated PNG") != NULL);
    fprintf(stderr, "  %s\n", vqc_error_get());
    memcpy(idat - 4, keep, 4);
    write_file("no-crc.png", d, n - 4);
    ASSERT_OK(vqc_image_load(tpath("no-crc.png"), &img));
    vqc_image_free(&img);
}

int main(void)
{
    dir = test_tmpdir("image");
    test_names();
    test_png_and_jpeg();
    test_jpeg_precheck();
    test_jpeg_truncated();
    test_pnm_precheck();
    test_png_precheck();
    fprintf(stderr, "test-image: ok\n");
    return 0;
}
