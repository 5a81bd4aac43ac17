/* Real-ESRGAN upscaling against the original code's outputs (fixtures/esrgan, README there):
 * the networks' float outputs within 1e-5, every RealESRGANer.enhance run of cases.json within
 * 1 per sample (2 for 16-bit), the Lanczos resize, the command line and its bad inputs. */
#include <cjson/cJSON.h>
#include <sys/stat.h>

#include "gen/lanczos.h"
#include "io/image.h"
#include "io/tensor_map.h"
#include "models/esrgan.h"
#include "testcli.h"
#include "vqclip.h"

static const vqt_device cpu = {VQT_DEVICE_CPU, 0};

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    ASSERT(f != NULL);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    ASSERT(s && fread(s, 1, (size_t)n, f) == (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

static const char *esr(const char *name)
{
    char rel[512];
    snprintf(rel, sizeof rel, "esrgan/%.400s", name);
    return fixture_path(rel);
}

/* The network alone: model(input) against the reference's output. */
static void check_forward(const char *model, const cJSON *c)
{
    char rel[256];
    snprintf(rel, sizeof rel, "%s.pth", model);
    vqc_esrgan *m;
    ASSERT_OK(vqc_esrgan_load(esr(rel), cpu, VQC_DTYPE_F32, &m));
    const vqc_esrgan_info *info = vqc_esrgan_get_info(m);
    ASSERT_EQ(info->scale, cJSON_GetObjectItem(c, "netscale")->valueint);
    ASSERT_STR_EQ(info->key, cJSON_GetObjectItem(c, "key")->valuestring);
    snprintf(rel, sizeof rel, "%s_ref.safetensors", model);
    vqc_tensor_map *ref;
    ASSERT_OK(vqc_tmap_open(esr(rel), &ref));
    const vqc_tensor_info *in = vqc_tmap_get(ref, "input"), *want = vqc_tmap_get(ref, "output");
    ASSERT(in && want && in->dtype == VQC_DTYPE_F32 && want->dtype == VQC_DTYPE_F32);
    vqt_tensor *x =
        vqt_from_data(in->data, in->dtype, in->ndim, in->shape, NULL, cpu, VQC_DTYPE_F32);
    vqt_tensor *y = vqc_esrgan_forward(m, x);
    if (!y)
        TEST_FAIL("%s forward: %s", model, vqc_error_get());
    ASSERT_EQ(vqt_numel(y), want->numel);
    for (int d = 0; d < 4; d++)
        ASSERT_EQ(vqt_size(y, d), want->shape[d]);
    float *got = malloc((size_t)want->numel * sizeof *got);
    ASSERT_EQ(vqt_to_host(y, got, VQC_DTYPE_F32, want->numel), want->numel);
    double worst = 0;
    for (int64_t i = 0; i < want->numel; i++) {
        float w;
        memcpy(&w, (const char *)want->data + i * 4, 4);
        worst = fmax(worst, fabs(got[i] - w));
    }
    printf("%s: forward max |diff| %.3g (scale %d, %d blocks, %d features)\n", model, worst,
           info->scale, info->num_block, info->num_feat);
    ASSERT(worst <= 1e-5);
    free(got);
    vqt_free(x);
    vqt_free(y);
    vqc_tmap_free(ref);
    vqc_esrgan_free(m);
}

/* The largest difference between two pictures of the same shape. */
static int max_diff(const vqc_pixels *a, const vqc_raw_image *b)
{
    ASSERT_EQ(a->w, b->w);
    ASSERT_EQ(a->h, b->h);
    ASSERT_EQ(a->channels, b->channels);
    ASSERT_EQ(a->depth, b->depth);
    int worst = 0;
    for (size_t i = 0; i < (size_t)a->w * a->h * a->channels; i++) {
        int d = abs((int)a->data[i] - (int)b->px[i]);
        worst = d > worst ? d : worst;
    }
    return worst;
}

/* One RealESRGANer.enhance run of cases.json. */
static void check_run(const char *model, const char *out, const cJSON *run)
{
    char rel[256];
    snprintf(rel, sizeof rel, "%s.pth", model);
    vqc_upscale_params p = vqc_upscale_default_params();
    p.model = esr(rel);
    p.device = "cpu";
    p.tile = cJSON_GetObjectItem(run, "tile")->valueint;
    p.tile_pad = cJSON_GetObjectItem(run, "tile_pad")->valueint;
    p.pre_pad = cJSON_GetObjectItem(run, "pre_pad")->valueint;
    p.outscale = cJSON_GetObjectItem(run, "outscale")->valuedouble;
    vqc_upscaler *u;
    ASSERT_OK(vqc_upscaler_load(&p, &u));
    vqc_raw_image img, want;
    ASSERT_OK(vqc_raw_image_load(esr(cJSON_GetObjectItem(run, "input")->valuestring), &img));
    ASSERT_OK(vqc_raw_image_load(esr(out), &want));
    const char *mode = cJSON_GetObjectItem(run, "mode")->valuestring;
    ASSERT_EQ(want.channels, strcmp(mode, "L") == 0 ? 1 : strcmp(mode, "RGB") == 0 ? 3 : 4);
    vqc_pixels in = {img.w, img.h, img.channels, img.depth, img.px}, got;
    ASSERT_OK(vqc_upscale_pixels(u, &in, &got));
    int d = max_diff(&got, &want);
    printf("%s: max |diff| %d (%dx%d, %d channels, %d-bit)\n", out, d, got.w, got.h, got.channels,
           got.depth);
    ASSERT(d <= (got.depth == 16 ? 2 : 1));
    free(got.data);
    vqc_raw_image_free(&img);
    vqc_raw_image_free(&want);
    vqc_upscaler_free(u);
}

static void test_cases(void)
{
    char *text = slurp(esr("cases.json"));
    cJSON *root = cJSON_Parse(text);
    ASSERT(root != NULL);
    int runs = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        check_forward(c->string, c);
        for (const cJSON *r = cJSON_GetObjectItem(c, "runs")->child; r; r = r->next, runs++)
            check_run(c->string, r->string, r);
    }
    ASSERT_EQ(runs, 24);
    cJSON_Delete(root);
    free(text);
}

/* Lanczos: sizes, a flat picture stays flat, an upscale keeps the samples' range. */
static void test_lanczos(void)
{
    uint16_t px[5 * 4 * 3];
    for (int i = 0; i < 60; i++)
        px[i] = i % 3 == 0 ? 200 : i % 3 == 1 ? 17 : 0;
    vqc_raw_image in = {5, 4, 3, 8, px}, out;
    ASSERT_OK(vqc_lanczos_resize(&in, 13, 7, &out));
    ASSERT_EQ(out.w, 13);
    ASSERT_EQ(out.h, 7);
    for (int i = 0; i < 13 * 7 * 3; i++)
        ASSERT_EQ(out.px[i], i % 3 == 0 ? 200 : i % 3 == 1 ? 17 : 0);
    vqc_raw_image_free(&out);
    ASSERT_OK(vqc_lanczos_resize(&in, 2, 2, &out)); /* shrinking: the widened kernel */
    ASSERT_EQ(out.px[0], 200);
    vqc_raw_image_free(&out);
    for (int i = 0; i < 60; i++)
        px[i] = (i / 3) % 2 ? 255 : 0; /* a checkerboard-ish line pattern: ringing clamps */
    ASSERT_OK(vqc_lanczos_resize(&in, 17, 11, &out));
    for (int i = 0; i < 17 * 11 * 3; i++)
        ASSERT(out.px[i] <= 255);
    vqc_raw_image_free(&out);
    ASSERT_EQ(vqc_lanczos_resize(&in, 0, 3, &out), VQC_ERR_USAGE);
}

/* The PNG writer at every channel count and depth, read back by the reader. */
static void test_png_round_trip(void)
{
    const char *dir = test_tmpdir("esrgan-png");
    for (int c = 1; c <= 4; c++)
        for (int depth = 8; depth <= 16; depth += 8) {
            uint16_t px[7 * 5 * 4];
            for (int i = 0; i < 7 * 5 * c; i++)
                px[i] = (uint16_t)((i * 7919u + c) & ((1u << depth) - 1));
            vqc_raw_image img = {7, 5, c, depth, px}, back;
            char path[4200];
            snprintf(path, sizeof path, "%s/c%d_%d.png", dir, c, depth);
            const char *kv[] = {"Comment", "round trip", NULL};
            ASSERT_OK(vqc_raw_image_save_png(path, &img, kv));
            ASSERT_OK(vqc_raw_image_load(path, &back));
            ASSERT_EQ(back.w, 7);
            ASSERT_EQ(back.h, 5);
            ASSERT_EQ(back.channels, c);
            ASSERT_EQ(back.depth, depth);
            ASSERT(memcmp(back.px, px, sizeof(uint16_t) * 7 * 5 * c) == 0);
            vqc_raw_image_free(&back);
        }
    vqc_raw_image bad = {2, 2, 5, 8, NULL};
    ASSERT_EQ(vqc_raw_image_save_png("/nonexistent/x.png", &bad, NULL), VQC_ERR_USAGE);
}

/* --outscale other than the network's scale: int(w * s) x int(h * s). */
static void test_outscale(void)
{
    vqc_upscale_params p = vqc_upscale_default_params();
    p.model = esr("tiny_srvgg_x4.pth");
    p.device = "cpu";
    p.outscale = 2.5;
    vqc_upscaler *u;
    ASSERT_OK(vqc_upscaler_load(&p, &u));
    ASSERT_EQ(vqc_upscaler_scale(u), 4);
    vqc_raw_image img;
    ASSERT_OK(vqc_raw_image_load(esr("input_rgba.png"), &img));
    vqc_pixels in = {img.w, img.h, img.channels, img.depth, img.px}, got;
    ASSERT_OK(vqc_upscale_pixels(u, &in, &got));
    ASSERT_EQ(got.w, (int)(img.w * 2.5));
    ASSERT_EQ(got.h, (int)(img.h * 2.5));
    ASSERT_EQ(got.channels, 4);
    free(got.data);
    vqc_raw_image_free(&img);
    vqc_upscaler_free(u);
}

static void test_bad_inputs(void)
{
    vqc_tensor_map *map;
    ASSERT_OK(vqc_tmap_open(fixture_path("vqgan/tiny_vq.ckpt"), &map));
    vqc_esrgan_info info;
    ASSERT_EQ(vqc_esrgan_inspect(map, &info), VQC_ERR_MODEL);
    vqc_tmap_free(map);
    /* a SRVGGNetCompact whose first conv takes no channels: refused, not divided by */
    static const char hdr[] = "{\"body.0.weight\":{\"dtype\":\"F32\",\"shape\":[4,0,3,3],"
                              "\"data_offsets\":[0,0]},\"body.1.weight\":{\"dtype\":\"F32\","
                              "\"shape\":[4],\"data_offsets\":[0,16]},\"body.2.weight\":{"
                              "\"dtype\":\"F32\",\"shape\":[1,4,3,3],\"data_offsets\":[16,160]}}";
    unsigned char file[8 + sizeof hdr - 1 + 160] = {0};
    file[0] = (unsigned char)(sizeof hdr - 1);
    memcpy(file + 8, hdr, sizeof hdr - 1);
    ASSERT_OK(vqc_tmap_open_memory(file, sizeof file, "hostile", &map));
    ASSERT_EQ(vqc_esrgan_inspect(map, &info), VQC_ERR_MODEL);
    vqc_tmap_free(map);

    vqc_upscale_params p = vqc_upscale_default_params();
    vqc_upscaler *u;
    p.device = "cpu";
    p.model = "no-such-upscaler";
    ASSERT_EQ(vqc_upscaler_load(&p, &u), VQC_ERR_IO);
    p.model = esr("tiny_rrdb_x4.pth");
    p.tile = -1;
    ASSERT_EQ(vqc_upscaler_load(&p, &u), VQC_ERR_USAGE);
    /* x2 unshuffles by 2: odd tiles cannot be computed */
    p.model = esr("tiny_rrdb_x2.pth");
    p.tile = 7;
    ASSERT_EQ(vqc_upscaler_load(&p, &u), VQC_ERR_USAGE);
    p.tile = 8;
    p.tile_pad = 3;
    ASSERT_EQ(vqc_upscaler_load(&p, &u), VQC_ERR_USAGE);
    p.tile = 0;
    p.pre_pad = 3;
    ASSERT_OK(vqc_upscaler_load(&p, &u));
    uint16_t px[4 * 3 * 5] = {0};
    vqc_pixels in = {3, 4, 4, 8, px}, out;
    ASSERT_EQ(vqc_upscale_pixels(u, &in, &out), VQC_ERR_USAGE); /* pre-pad 3 on 3 columns */
    in = (vqc_pixels){1, 1, 3, 8, px};
    ASSERT_EQ(vqc_upscale_pixels(u, &in, &out), VQC_ERR_USAGE); /* too small to reflect */
    in = (vqc_pixels){5, 4, 5, 8, px};
    ASSERT_EQ(vqc_upscale_pixels(u, &in, &out), VQC_ERR_USAGE); /* 5 channels */
    in = (vqc_pixels){5, 4, 3, 12, px};
    ASSERT_EQ(vqc_upscale_pixels(u, &in, &out), VQC_ERR_USAGE); /* 12 bits */
    in = (vqc_pixels){5, 4, 3, 8, px};
    ASSERT_OK(vqc_upscale_pixels(u, &in, &out));
    ASSERT_EQ(out.w, 10);
    ASSERT_EQ(out.h, 8);
    free(out.data);
    vqc_upscaler_free(u);
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

static void test_cli(void)
{
    char models[8192];
    cli_setup("esrgan", models, sizeof models);
    const char *model = esr("tiny_rrdb_x2.pth"), *in = esr("input_rgb16.png");
    cli_expect_ok(cli_run("upscale -m '%s' -i '%s' -o up.png --tile 8 --tile-pad 4 --pre-pad 4 "
                          "--device cpu",
                          model, in),
                  "upscale");
    char out[4200];
    snprintf(out, sizeof out, "%s/up.png", cli_tmp);
    vqc_raw_image got, want;
    ASSERT_OK(vqc_raw_image_load(out, &got));
    ASSERT_OK(vqc_raw_image_load(esr("tiny_rrdb_x2_rgb16_tile8.png"), &want));
    vqc_pixels g = {got.w, got.h, got.channels, got.depth, got.px};
    ASSERT(max_diff(&g, &want) <= 2);
    vqc_raw_image_free(&got);
    vqc_raw_image_free(&want);

    /* bad inputs: one line, non-zero exit, nothing lost */
    cli_expect_error(cli_run("upscale -m '%s' -i missing.png -o up2.png --device cpu", model), 2,
                     "missing.png");
    cli_write_file("notimage.png", "hello");
    cli_expect_error(cli_run("upscale -m '%s' -i notimage.png -o up2.png --device cpu", model), 2,
                     "notimage.png");
    long long before = file_size(out);
    cli_expect_error(cli_run("upscale -m '%s' -i up.png -o up.png --device cpu", model), 1,
                     "input");
    ASSERT_EQ(file_size(out), before);
    cli_expect_error(cli_run("upscale -m '%s' -i '%s' -o up3.png --tile x8", model, in), 1,
                     "--tile");
    cli_expect_error(cli_run("upscale -m '%s' -i '%s' -o up3.png --outscale 0", model, in), 1,
                     "--outscale");
    cli_expect_error(cli_run("upscale -m no-such-upscaler -i '%s' -o up3.png --device cpu", in), 2,
                     "no-such-upscaler");
    cli_expect_error(cli_run("upscale -m '%s' -i '%s' -o up3.png --device cpu",
                             fixture_path("vqgan/tiny_vq.ckpt"), in),
                     2, "Real-ESRGAN");
    snprintf(out, sizeof out, "%s/up3.png", cli_tmp);
    ASSERT(file_size(out) < 0);
}

/* --upscale after generation: OUTPUT-upscaled.png at the network's scale beside the picture,
 * which stays as written; each batch job's too; a bad model fails before any picture. */
static void test_generate_upscale(void)
{
    char models[8192];
    cli_setup("esrgan-generate", models, sizeof models);
    const char *x4 = esr("tiny_srvgg_x4.pth");
    cli_expect_ok(
        cli_run("%s -p x -s 32 32 --cutn 2 -i 2 --seed 4 --upscale '%s' -o a.png", models, x4),
        "generation with --upscale");
    char path[4200];
    vqc_raw_image img;
    snprintf(path, sizeof path, "%s/a-upscaled.png", cli_tmp);
    ASSERT_OK(vqc_raw_image_load(path, &img));
    ASSERT(img.w == 128 && img.h == 128);
    vqc_raw_image_free(&img);
    snprintf(path, sizeof path, "%s/a.png", cli_tmp);
    ASSERT_OK(vqc_raw_image_load(path, &img));
    ASSERT(img.w == 32 && img.h == 32);
    vqc_raw_image_free(&img);
    cli_write_file("jobs.txt", "a fox\na cat\n");
    cli_expect_ok(
        cli_run("%s --batch jobs.txt -s 32 32 --cutn 2 -i 1 --upscale '%s' --upscale-tile "
                "16 -o 'b/{index}.jpg'",
                models, x4),
        "batch with --upscale");
    snprintf(path, sizeof path, "%s/b/1-upscaled.png", cli_tmp);
    ASSERT(file_size(path) > 0);
    cli_expect_error(cli_run("%s -p x -s 32 32 -i 1 --upscale no-such-upscaler -o c.png", models),
                     2, "no-such-upscaler");
    snprintf(path, sizeof path, "%s/c.png", cli_tmp);
    ASSERT(file_size(path) < 0);
}

int main(void)
{
    vqt_init(0);
    test_png_round_trip();
    test_lanczos();
    test_cases();
    test_outscale();
    test_bad_inputs();
    test_cli();
    test_generate_upscale();
    printf("ok\n");
    return 0;
}
