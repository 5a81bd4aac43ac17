/* Output images by file name (io/image.c): .png writes PNG, .jpg/.jpeg JPEG of quality 75 with
 * the metadata in COM segments, anything else is refused; the metadata reads back from both
 * (io/image_text.c), and so does the step vqc_image_step reports. */
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
    /* a JPEG vqclip did not write has no step */
    const char *none[] = {NULL};
    ASSERT_OK(vqc_image_save(tpath("plain.jpg"), &img, none));
    int step;
    ASSERT_EQ(vqc_image_step(tpath("plain.jpg"), &step), VQC_ERR_FORMAT);
    vqc_image_free(&img);
}

int main(void)
{
    dir = test_tmpdir("image");
    test_names();
    test_png_and_jpeg();
    fprintf(stderr, "test-image: ok\n");
    return 0;
}
