/* Fuzz-style robustness test on the reference fixtures under $VQCLIP_FIXTURES: for every
 * checkpoint, TRIALS copies with a few random byte corruptions (deterministic seed) are opened
 * in-process. Each must either open, with every tensor's elements inside the file image, or fail
 * with a non-empty one-line message; nothing may crash, hang or overread (run under ASan).
 * Corruptions target the structures that matter: the pickle (with its zip CRC fixed up half the
 * time, so that the interpreter sees the damage), the zip directory at the end, local headers at
 * the start, and anywhere in the file. */
#include <stdint.h>
#include <time.h>
#include <zlib.h>

#include "io/pickle.h"
#include "io/tensor_map.h"
#include "io/zipread.h"
#include "testhelp.h"
#include "util/dtype.h"
#include "util/error.h"

#define TRIALS 300 /* per file; VQCLIP_FUZZ_TRIALS overrides it for longer local runs */

static const char *const files[] = {
    "vqgan/tiny_vq.ckpt",
    "vqgan/tiny_vq_legacy.ckpt",
    "vqgan/tiny_gumbel.ckpt",
    "vqgan/tiny_transformer.ckpt",
    "clip/tiny_vit.pt",
    "clip/tiny_rn.pt",
    "vqgan/tiny_vq_ref.safetensors",
};

typedef struct image {
    unsigned char *data;
    size_t len;
    size_t pk_off, pk_len; /* the pickle(s) or the safetensors header */
    size_t crc_at;         /* central-directory CRC field of data.pkl, or 0 */
} image;

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---------------------------------------------------------------------------------------------
 * Locating the structures to damage
 * ------------------------------------------------------------------------------------------- */

/* Zip: the data.pkl entry's bytes and its central-directory CRC field. */
static void locate_zip_pickle(image *im)
{
    vqc_zip *z;
    ASSERT_OK(vqc_zip_open(im->data, im->len, "fixture", &z));
    for (size_t i = 0; i < vqc_zip_count(z); i++) {
        const char *name = vqc_zip_name(z, i);
        size_t n = strlen(name);
        const void *p;
        uint64_t size;
        if (n < 9 || strcmp(name + n - 9, "/data.pkl") != 0)
            continue;
        ASSERT_OK(vqc_zip_read(z, i, &p, &size));
        im->pk_off = (size_t)((const unsigned char *)p - im->data);
        im->pk_len = (size_t)size;
        for (size_t at = im->len - 22; at > 0 && !im->crc_at; at--) /* its central record */
            if (rd32(im->data + at) == 0x02014b50 && im->data[at + 28] == n &&
                memcmp(im->data + at + 46, name, n) == 0)
                im->crc_at = at + 16;
    }
    vqc_zip_free(z);
    ASSERT(im->pk_len > 0 && im->crc_at > 0);
}

/* Legacy: the five pickles at the start. */
static void locate_legacy_pickles(image *im)
{
    size_t pos = 0;
    for (int i = 0; i < 5; i++) {
        vqc_pickle *pk;
        ASSERT_OK(vqc_pickle_load(im->data + pos, im->len - pos, "fixture", &pk));
        pos += vqc_pickle_consumed(pk);
        vqc_pickle_free(pk);
    }
    im->pk_off = 0;
    im->pk_len = pos;
}

static image load_image(const char *rel)
{
    image im = {0};
    FILE *f = fopen(fixture_path(rel), "rb");
    ASSERT(f);
    fseek(f, 0, SEEK_END);
    im.len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    im.data = malloc(im.len); /* exact size: ASan flags any read past the end */
    ASSERT(im.data && fread(im.data, 1, im.len, f) == im.len);
    fclose(f);
    if (im.data[0] == 'P')
        locate_zip_pickle(&im);
    else if (im.data[0] == 0x80)
        locate_legacy_pickles(&im);
    else
        im.pk_len = 8 + (size_t)(rd32(im.data) | (uint64_t)rd32(im.data + 4) << 32);
    return im;
}

/* ---------------------------------------------------------------------------------------------
 * One trial
 * ------------------------------------------------------------------------------------------- */

typedef struct change {
    size_t at;
    unsigned char old;
} change;

/* Picks a byte position according to the trial's target region. */
static size_t pick_position(const image *im, int target)
{
    size_t tail = im->len < 4096 ? im->len : 4096;
    switch (target) {
    case 0:
    case 1:
    case 2:
    case 3: return im->pk_off + (size_t)(rnd() % im->pk_len);
    case 4:
    case 5: return im->len - tail + (size_t)(rnd() % tail);
    case 6: return (size_t)(rnd() % (im->len < 4096 ? im->len : 4096));
    default: return (size_t)(rnd() % im->len);
    }
}

static unsigned char new_byte(unsigned char old)
{
    switch (rnd() % 4) {
    case 0: return (unsigned char)(old ^ (1u << (rnd() % 8)));
    case 1: return 0xff;
    case 2: return 0x00;
    default: return (unsigned char)rnd();
    }
}

/* Reads the first and last addressed element of every tensor, checking they lie in the image. */
static void touch_tensors(const vqc_tensor_map *m, const image *im)
{
    for (size_t i = 0; i < vqc_tmap_count(m); i++) {
        const vqc_tensor_info *t = vqc_tmap_at(m, i);
        ASSERT(t->name && (unsigned)t->dtype < VQC_DTYPE_COUNT && t->ndim <= VQC_MAX_DIMS);
        if (t->numel == 0)
            continue;
        int64_t last = 0;
        for (int d = 0; d < t->ndim; d++)
            last += (t->shape[d] - 1) * t->strides[d];
        size_t es = vqc_dtype_size(t->dtype);
        const unsigned char *a = t->data, *b = a + last * (int64_t)es;
        if (a < im->data || b + es > im->data + im->len)
            TEST_FAIL("%s: tensor %s lies outside the file image", vqc_tmap_format(m), t->name);
        volatile unsigned char sink = (unsigned char)(a[0] ^ b[es - 1]);
        (void)sink;
    }
}

/* Corrupts, opens, checks, restores. Returns 1 when the damaged image opened. */
static int trial(image *im, const char *label)
{
    change ch[8];
    int target = (int)(rnd() % 8), n = 1 + (int)(rnd() % 4);
    for (int k = 0; k < n; k++) {
        ch[k].at = pick_position(im, target);
        ch[k].old = im->data[ch[k].at];
        im->data[ch[k].at] = new_byte(ch[k].old);
    }
    uint32_t old_crc = 0;
    int fix_crc = im->crc_at && target <= 1;
    if (fix_crc) { /* let the damaged pickle through the CRC check */
        memcpy(&old_crc, im->data + im->crc_at, 4);
        uint32_t crc = (uint32_t)crc32(0, im->data + im->pk_off, (uInt)im->pk_len);
        for (int i = 0; i < 4; i++)
            im->data[im->crc_at + (size_t)i] = (unsigned char)(crc >> (8 * i));
    }
    vqc_tensor_map *m = NULL;
    int rc = vqc_tmap_open_memory(im->data, im->len, label, &m);
    if (rc == 0)
        touch_tensors(m, im);
    else if (!*vqc_error_get() || strchr(vqc_error_get(), '\n'))
        TEST_FAIL("%s: error %d without a one-line message", label, rc);
    vqc_tmap_free(m);
    if (fix_crc)
        memcpy(im->data + im->crc_at, &old_crc, 4);
    for (int k = n - 1; k >= 0; k--)
        im->data[ch[k].at] = ch[k].old;
    return rc == 0;
}

int main(void)
{
    clock_t start = clock();
    const char *env = getenv("VQCLIP_FUZZ_TRIALS");
    int trials = env && atoi(env) > 0 ? atoi(env) : TRIALS;
    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        image im = load_image(files[f]);
        vqc_tensor_map *m;
        ASSERT_OK(vqc_tmap_open_memory(im.data, im.len, files[f], &m)); /* intact: opens */
        vqc_tmap_free(m);
        int opened = 0;
        for (int t = 0; t < trials; t++)
            opened += trial(&im, files[f]);
        printf("%-32s %d trials: %d opened, %d rejected\n", files[f], trials, opened,
               trials - opened);
        free(im.data);
    }
    printf("test-hostile-files: ok (%.1f s CPU)\n", (double)(clock() - start) / CLOCKS_PER_SEC);
    return 0;
}
