/* Real-ESRGAN upscaling on CUDA (ctest label "gpu"): every run of fixtures/esrgan/cases.json
 *   in float32 (TF32 off)    within 1 per 8-bit sample, 2 per 16-bit sample of the reference
 *                            (test-esrgan's bounds on the CPU);
 *   in float16 (the default) within 3 levels per 8-bit sample and 3 * 257 per 16-bit sample:
 *                            float16 keeps 11 significant bits, so a value in [0, 1] carries an
 *                            error of some 1e-3 after a few layers, about a quarter of an 8-bit
 *                            level but dozens of 16-bit ones.
 * Without a CUDA device it exits 77 (skipped); VQCLIP_GPU_TEST_ON_CPU=1 (ctest's
 * test-gpu-esrgan-on-cpu, with or without a device) runs the same checks on the CPU (where both
 * runs are float32), to check this test's own logic. VQCLIP_GPU_INDEX picks
 * the device (0). */
#include <cjson/cJSON.h>

#include "io/image.h"
#include "testgpu.h"
#include "vqclip.h"

static char device[32] = "cpu";

static const char *esr(const char *name)
{
    char rel[512];
    snprintf(rel, sizeof rel, "esrgan/%.400s", name);
    return fixture_path(rel);
}

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

/* The largest difference between the upscaled run and its reference picture. */
static int run_diff(const char *model, const char *ref, const cJSON *run, bool fp32, int *depth)
{
    char rel[256];
    snprintf(rel, sizeof rel, "%.200s.pth", model);
    vqc_upscale_params p = vqc_upscale_default_params();
    p.model = esr(rel);
    p.device = device;
    p.fp32 = fp32;
    p.tile = cJSON_GetObjectItem(run, "tile")->valueint;
    p.tile_pad = cJSON_GetObjectItem(run, "tile_pad")->valueint;
    p.pre_pad = cJSON_GetObjectItem(run, "pre_pad")->valueint;
    vqc_upscaler *u;
    ASSERT_OK(vqc_upscaler_load(&p, &u));
    vqc_raw_image img, want;
    ASSERT_OK(vqc_raw_image_load(esr(cJSON_GetObjectItem(run, "input")->valuestring), &img));
    ASSERT_OK(vqc_raw_image_load(esr(ref), &want));
    vqc_pixels in = {img.w, img.h, img.channels, img.depth, img.px}, got;
    ASSERT_OK(vqc_upscale_pixels(u, &in, &got));
    ASSERT_EQ(got.w, want.w);
    ASSERT_EQ(got.h, want.h);
    ASSERT_EQ(got.channels, want.channels);
    ASSERT_EQ(got.depth, want.depth);
    int worst = 0;
    for (size_t i = 0; i < (size_t)got.w * got.h * got.channels; i++) {
        int d = abs((int)got.data[i] - (int)want.px[i]);
        worst = d > worst ? d : worst;
    }
    *depth = got.depth;
    free(got.data);
    vqc_raw_image_free(&img);
    vqc_raw_image_free(&want);
    vqc_upscaler_free(u);
    return worst;
}

int main(void)
{
    bool dry;
    vqt_device dev = gpu_test_device(&dry);
    if (!dry)
        snprintf(device, sizeof device, "cuda:%d", dev.index);
    vqt_set_tf32(false);
    char *text = slurp(esr("cases.json"));
    cJSON *root = cJSON_Parse(text);
    ASSERT(root != NULL);
    int runs = 0;
    for (const cJSON *c = root->child; c; c = c->next)
        for (const cJSON *r = cJSON_GetObjectItem(c, "runs")->child; r; r = r->next, runs++) {
            int depth, d32 = run_diff(c->string, r->string, r, true, &depth);
            int d16 = run_diff(c->string, r->string, r, false, &depth);
            printf("%s on %s: max |diff| float32 %d, float16 %d (%d-bit)\n", r->string, device, d32,
                   d16, depth);
            ASSERT(d32 <= (depth == 16 ? 2 : 1));
            ASSERT(d16 <= (depth == 16 ? 3 * 257 : 3));
        }
    ASSERT_EQ(runs, 24);
    cJSON_Delete(root);
    free(text);
    printf("ok\n");
    return 0;
}
