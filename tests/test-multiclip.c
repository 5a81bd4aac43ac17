/* Several CLIP models guiding one picture (pixray's -m A,B:0.5): the model list's syntax, the
 * loop's weighted sum (its loss and dL/dpicture equal the weighted sums of the single-model runs
 * on the two fixture CLIPs, a ViT at 32 px and a ResNet at 64 px; dL/dz too but for the clamp's
 * sign rule), each model's part of the loss, and the command line (the picture's regeneration
 * command carries the list; a bad list fails in one line before any model is read; a state
 * file resumes it; a batch job may name its own). */
#include <math.h>

#include "gen/clipspec.h"
#include "gen/loop_internal.h"
#include "io/image_text.h"
#include "testcli.h"
#include "testref.h"

static const vqt_device cpu = {VQT_DEVICE_CPU, 0};

/* ---- the list's syntax ------------------------------------------------------------------- */

static void expect_bad(const char *spec, const char *words)
{
    vqc_clip_entry e[VQC_MAX_CLIPS];
    int n = -1;
    ASSERT_EQ(vqc_clip_spec_parse(spec, e, &n), VQC_ERR_USAGE);
    const char *m = vqc_error_get();
    fprintf(stderr, "  %-16s -> %s\n", spec, m);
    ASSERT(strstr(m, words) != NULL && strchr(m, '\n') == NULL);
    ASSERT_EQ(n, 0);
}

static void test_spec(void)
{
    vqc_clip_entry e[VQC_MAX_CLIPS];
    int n;
    ASSERT_OK(vqc_clip_spec_parse("ViT-B/32", e, &n));
    ASSERT_EQ(n, 1);
    ASSERT_STR_EQ(e[0].name, "ViT-B/32");
    ASSERT_NEAR(e[0].weight, 1, 0);
    ASSERT_OK(vqc_clip_spec_parse("ViT-B/32, ViT-B/16:0.5 ,RN50:2e0", e, &n));
    ASSERT_EQ(n, 3);
    ASSERT_STR_EQ(e[1].name, "ViT-B/16");
    ASSERT_NEAR(e[1].weight, 0.5, 0);
    ASSERT_STR_EQ(e[2].name, "RN50");
    ASSERT_NEAR(e[2].weight, 2, 0);
    /* colons that are not weights stay in the name */
    ASSERT_OK(vqc_clip_spec_parse("C:\\m\\clip.pt,hf:org/model,/a:b/c.pt:0.25", e, &n));
    ASSERT_EQ(n, 3);
    ASSERT_STR_EQ(e[0].name, "C:\\m\\clip.pt");
    ASSERT_STR_EQ(e[1].name, "hf:org/model");
    ASSERT_STR_EQ(e[2].name, "/a:b/c.pt");
    ASSERT_NEAR(e[2].weight, 0.25, 0);
    /* a whole text that is a file is that file */
    const char *vit = fixture_path("clip/tiny_vit.pt");
    ASSERT_OK(vqc_clip_spec_parse(vit, e, &n));
    ASSERT_EQ(n, 1);
    expect_bad("x.pt:abc", "'abc'");
    expect_bad(":0.5", "model 1 has no name");
    expect_bad("a,,b", "model 2 has no name");
    expect_bad("a,b:-1", "not a number above 0");
    expect_bad("a:0", "not a number above 0");
    expect_bad("a:inf", "not a number above 0");
    expect_bad("a,b,a:2", "named twice");
    expect_bad("", "empty");
    expect_bad("a,b,c,d,e,f,g,h,i", "more than 8");
    /* the resolved list reads back to the same models and weights, and one model of weight 1
     * is its path alone */
    const char *paths[3] = {"/m/vit.pt", "/m/odd:name.pt", "/m/rn.pt"};
    double w[3] = {1, 1, 0.1 + 0.2};
    char buf[1024];
    ASSERT_OK(vqc_clip_spec_format(paths, w, 1, buf, sizeof buf));
    ASSERT_STR_EQ(buf, "/m/vit.pt");
    ASSERT_OK(vqc_clip_spec_format(paths, w, 3, buf, sizeof buf));
    ASSERT_STR_EQ(buf, "/m/vit.pt,/m/odd:name.pt:1,/m/rn.pt:0.30000000000000004");
    ASSERT_OK(vqc_clip_spec_parse(buf, e, &n));
    ASSERT_EQ(n, 3);
    ASSERT_STR_EQ(e[1].name, "/m/odd:name.pt");
    ASSERT(e[2].weight == w[2]);
    const char *comma[2] = {"/m/a,b.pt", "/m/c.pt"};
    ASSERT_EQ(vqc_clip_spec_format(comma, w, 2, buf, sizeof buf), VQC_ERR_USAGE);
}

/* ---- the loop: weighted sums --------------------------------------------------------------- */

typedef struct {
    vqc_vqgan *vq;
    vqc_clip *vit, *rn;
    vqc_tokenizer *tok;
} models_t;

/* Boxes inside a 48x32 picture; each model resamples them to its own side (32 and 64). */
static const int boxes[] = {0, 0, 32, 16, 0, 32, 8, 4, 24, 30, 14, 18};

/* A loop over `clips` (n of them, weights w) with the same prompts every time: the image prompt
 * img0, two texts and a noise prompt. */
static vqc_loop *make_loop(const models_t *m, vqc_clip *const *clips, const double *w, int n,
                           const vqc_image *img0)
{
    vqc_loop_params p = vqc_loop_default_params();
    p.width = 48;
    p.height = 32;
    p.cut.cut_size = 0; /* each model's own input resolution */
    p.cut.method = VQC_CUT_ORIGINAL;
    p.cut.boxes = boxes;
    p.cut.nboxes = 4;
    p.clip_weight = w[0];
    p.seed = 3;
    vqc_loop *L;
    ASSERT_OK(vqc_loop_create(&p, m->vq, clips[0], &L));
    for (int k = 1; k < n; k++)
        ASSERT_OK(vqc_loop_add_clip(L, clips[k], w[k]));
    ASSERT_EQ(vqc_loop_clip_count(L), n);
    ASSERT_OK(vqc_loop_add_image_prompt(L, img0, 0.7, -INFINITY));
    ASSERT_OK(vqc_loop_add_text_prompt(L, m->tok, "a red circle on blue", 1, -INFINITY));
    ASSERT_OK(vqc_loop_add_text_prompt(L, m->tok, "blurry", -0.5, -2));
    ASSERT_OK(vqc_loop_add_noise_prompt(L, 7, 0.3));
    if (n > 1) { /* models come before prompts */
        ASSERT_EQ(vqc_loop_add_clip(L, clips[0], 1), VQC_ERR_USAGE);
    }
    return L;
}

/* One step from z0: losses gets 1 + 4 values; returns dL/dz. */
static vqt_tensor *one_step(const models_t *m, vqc_clip *const *clips, const double *w, int n,
                            const vqt_tensor *z0, const vqc_image *img0, float *losses)
{
    vqc_loop *L = make_loop(m, clips, w, n, img0);
    ASSERT_OK(vqc_loop_set_z(L, z0));
    ASSERT_OK(vqc_loop_step(L, losses));
    /* each model's part of the loss: they add up to the prompts' losses */
    float share[VQC_MAX_CLIPS];
    ASSERT_EQ(vqc_loop_clip_losses(L, share), n > 1 ? n : 0);
    double parts = 0, prompts = losses[1] + losses[2] + losses[3] + losses[4];
    for (int k = 0; k < n && n > 1; k++)
        parts += share[k];
    if (n > 1)
        ASSERT_NEAR(parts, prompts, 1e-5 * fabs(prompts));
    vqt_tensor *g = vqt_clone(vqc_loop_last_grad(L));
    vqc_loop_free(L);
    return g;
}

/* The prompts' loss of the picture x01 [1, 3, H, W] and its gradient there (the step's CLIP
 * part, through loop_internal.h: no VQGAN, no clamp). */
static vqt_tensor *image_grad(const models_t *m, vqc_clip *const *clips, const double *w, int n,
                              const vqt_tensor *x01, const vqc_image *img0, double *loss)
{
    vqc_loop *L = make_loop(m, clips, w, n, img0);
    vqt_tensor *img = vqt_clone(x01);
    ASSERT_OK(vqt_set_requires_grad(img, true));
    vqt_scope_begin();
    vqt_tensor *fn[VQC_MAX_CLIPS], *cuts = NULL, *sum = NULL;
    ASSERT_OK(vqc_loop_encode_cutouts(L, img, fn, &cuts));
    for (int i = 0; i < vqc_loop_prompt_count(L); i++) {
        vqt_tensor *t = vqc_loop_prompt_term(L, i, fn, NULL);
        sum = sum ? vqt_binary(VQT_ADD, sum, t) : t;
    }
    *loss = vqt_item(sum);
    ASSERT_OK(vqt_backward(sum));
    vqt_scope_end();
    vqt_tensor *g = vqt_grad(img);
    ASSERT(g != NULL);
    vqt_free(img);
    vqc_loop_free(L);
    return g;
}

static double sum_sq(const vqt_tensor *t)
{
    return vqt_item(vqt_reduce(VQT_SUM, vqt_unary(VQT_SQUARE, t), 0, NULL, false));
}

static void test_weighted_sum(const models_t *m)
{
    /* z0 and an image prompt from a random start */
    vqc_loop_params p = vqc_loop_default_params();
    p.width = 48;
    p.height = 32;
    p.seed = 11;
    vqc_loop *L;
    ASSERT_OK(vqc_loop_create(&p, m->vq, m->vit, &L));
    ASSERT_EQ(vqc_loop_add_clip(L, m->rn, -1), VQC_ERR_USAGE);
    ASSERT_EQ(vqc_loop_add_clip(L, m->rn, NAN), VQC_ERR_USAGE);
    ASSERT_OK(vqc_loop_init_random(L));
    vqt_tensor *z0 = vqt_clone(vqc_loop_z(L));
    vqt_tensor *x0 = vqc_loop_image(L);
    vqc_image img0 = {0};
    ASSERT_OK(vqc_image_from_tensor(x0, &img0));
    vqc_loop_free(L);

    float l_vit[5], l_rn[5], l_two[5], l_half[5];
    vqc_clip *vit_only[1] = {m->vit}, *rn_only[1] = {m->rn}, *both[2] = {m->vit, m->rn};
    double one[1] = {1}, half[1] = {0.5}, w[2] = {1.5, 0.5};
    vqt_tensor *g_vit = one_step(m, vit_only, one, 1, z0, &img0, l_vit);
    vqt_tensor *g_rn = one_step(m, rn_only, one, 1, z0, &img0, l_rn);
    vqt_tensor *g_two = one_step(m, both, w, 2, z0, &img0, l_two);
    vqt_tensor *g_half = one_step(m, rn_only, half, 1, z0, &img0, l_half);
    /* no MSE term: the first value is 0 in every run; each prompt's loss is the weighted sum */
    for (int i = 0; i < 5; i++) {
        double want = i ? w[0] * l_vit[i] + w[1] * l_rn[i] : 0;
        fprintf(stderr, "  loss %d: vit %.6f rn %.6f two %.6f (want %.6f)\n", i, l_vit[i], l_rn[i],
                l_two[i], want);
        ASSERT_NEAR(l_two[i], want, 1e-5 * fabs(want) + 1e-7);
        ASSERT_NEAR(l_half[i], 0.5 * l_rn[i], 1e-6 * fabs(l_rn[i]) + 1e-8);
    }
    ASSERT(fabs(l_vit[2] - l_rn[2]) > 1e-4); /* the two models really differ */
    vqt_scope_begin();
    vqt_tensor *want =
        vqt_binary(VQT_ADD, vqt_binary_s(VQT_MUL, g_vit, w[0]), vqt_binary_s(VQT_MUL, g_rn, w[1]));
    double scale = vqt_item(vqt_reduce(VQT_AMAX, vqt_unary(VQT_ABS, want), 0, NULL, false));
    ASSERT(scale > 0);
    /* dL/dz is the weighted sum as well, but for the notebook's clamp_with_grad on the decoded
     * picture: a pixel outside [0, 1] passes its gradient only when that points back inward,
     * decided on the summed gradient, so where the two models pull such a pixel in opposite
     * directions the sum of the single runs differs (this VQGAN decodes every code partly
     * outside [0, 1]). Everything else is linear: a small relative L2 error, and a single
     * model's weight scales its gradient exactly (same signs). */
    double err = sqrt(sum_sq(vqt_binary(VQT_SUB, g_two, want)) / sum_sq(want));
    fprintf(stderr, "  dL/dz (two models): relative L2 error %.3g\n", err);
    ASSERT(err < 1e-3);
    assert_close(g_half, vqt_binary_s(VQT_MUL, g_rn, 0.5), "dL/dz (weight 0.5)", 1e-6 * scale,
                 1e-6);
    /* dL/dpicture, before the clamp: exactly linear in the models */
    double e_vit, e_rn, e_two;
    vqt_tensor *x_vit = image_grad(m, vit_only, one, 1, x0, &img0, &e_vit);
    vqt_tensor *x_rn = image_grad(m, rn_only, one, 1, x0, &img0, &e_rn);
    vqt_tensor *x_two = image_grad(m, both, w, 2, x0, &img0, &e_two);
    ASSERT_NEAR(e_two, w[0] * e_vit + w[1] * e_rn, 1e-5 * fabs(e_two));
    vqt_tensor *x_want =
        vqt_binary(VQT_ADD, vqt_binary_s(VQT_MUL, x_vit, w[0]), vqt_binary_s(VQT_MUL, x_rn, w[1]));
    double x_scale = vqt_item(vqt_reduce(VQT_AMAX, vqt_unary(VQT_ABS, x_want), 0, NULL, false));
    assert_close(x_two, x_want, "dL/dpicture (two models)", 1e-5 * x_scale, 1e-5);
    vqt_free(x_vit);
    vqt_free(x_rn);
    vqt_free(x_two);
    vqt_scope_end();
    vqt_free(g_vit);
    vqt_free(g_rn);
    vqt_free(g_two);
    vqt_free(g_half);
    vqt_free(x0);
    vqt_free(z0);
    vqc_image_free(&img0);
}

/* ---- the command line ---------------------------------------------------------------------- */

static void test_cli(void)
{
    char models[2048];
    cli_setup("multiclip", models, sizeof models);
    const char *vq = fixture_path("vqgan/tiny_vq.ckpt");
    const char *bpe = fixture_path("clip/bpe_simple_vocab_16e6.txt.gz");
    char vit[4096], rn[4096];
    snprintf(vit, sizeof vit, "%s", fixture_path("clip/tiny_vit.pt"));
    snprintf(rn, sizeof rn, "%s", fixture_path("clip/tiny_rn.pt"));
    const char *common = "-s 32 32 --cutn 2 -i 3 -se 0 --seed 5 -q";
    int st = cli_run("--vqgan '%s' --bpe '%s' -m '%s,%s:0.5' -p 'a red fox' %s -o two.png --json",
                     vq, bpe, vit, rn, common);
    cli_expect_ok(st, "two CLIP models");
    /* --json's image event gives each model's part of the loss; the progress line too */
    const char *js = cli_slurp("out.txt");
    fprintf(stderr, "  %s", js);
    ASSERT(strstr(js, "\"clip_losses\":[") != NULL);
    st = cli_run("--vqgan '%s' --bpe '%s' -m '%s,%s:0.5' -p 'a red fox' -s 32 32 --cutn 2 -i 2 "
                 "-o progress.png",
                 vq, bpe, vit, rn);
    ASSERT(strstr(cli_expect_ok(st, "progress"), "(CLIP models ") != NULL);
    st = cli_run("--vqgan '%s' --bpe '%s' -m '%s' -p 'a red fox' %s -o one.png --json", vq, bpe,
                 vit, common);
    cli_expect_ok(st, "one CLIP model");
    ASSERT(strstr(cli_slurp("out.txt"), "clip_losses") == NULL);
    char path[4200], text[8192], want[9000];
    snprintf(path, sizeof path, "%s/two.png", cli_tmp);
    ASSERT_OK(vqc_image_text(path, "parameters", text, sizeof text));
    fprintf(stderr, "  regeneration: %s\n", text);
    snprintf(want, sizeof want, "--clip '%s,%s:0.5'", vit, rn);
    ASSERT(strstr(text, want) != NULL);
    /* the regeneration command makes the same picture */
    char *cmd = strstr(text, "vqclip ");
    ASSERT(cmd != NULL);
    char *nl = strchr(cmd, '\n');
    if (nl)
        *nl = 0;
    st = cli_run("%s -o again.png -q", cmd + strlen("vqclip "));
    cli_expect_ok(st, "the regeneration command");
    char cmp[9000];
    snprintf(cmp, sizeof cmp, "cmp -s '%s/two.png' '%s/again.png'", cli_tmp, cli_tmp);
    ASSERT_EQ(system(cmp), 0);
    /* a state file keeps the list: --resume alone continues with both models, and ends on the
     * picture of the uninterrupted run */
    st = cli_run("--vqgan '%s' --bpe '%s' -m '%s,%s:0.5' -p 'a red fox' %s -o part.png "
                 "--save-state run.st",
                 vq, bpe, vit, rn, common);
    cli_expect_ok(st, "two models, saving the state");
    st = cli_run("--resume run.st --bpe '%s' -i 5 -q -o resumed.png", bpe);
    cli_expect_ok(st, "resuming two models");
    st = cli_run("--vqgan '%s' --bpe '%s' -m '%s,%s:0.5' -p 'a red fox' %s -o whole.png", vq, bpe,
                 vit, rn, "-s 32 32 --cutn 2 -i 5 -se 0 --seed 5 -q");
    cli_expect_ok(st, "two models, five steps");
    snprintf(path, sizeof path, "%s/resumed.png", cli_tmp);
    ASSERT_OK(vqc_image_text(path, "parameters", text, sizeof text));
    ASSERT(strstr(text, want) != NULL);
    snprintf(cmp, sizeof cmp, "cmp -s '%s/resumed.png' '%s/whole.png'", cli_tmp, cli_tmp);
    ASSERT_EQ(system(cmp), 0);
    /* a bad list fails in one line, before any model is read (the VQGAN does not exist) */
    static const char *const bad[] = {"x.pt:abc", ":0.5", "a,,b", "a.pt:-1"};
    for (int i = 0; i < 4; i++) {
        st = cli_run("--vqgan /nonexistent.ckpt -m '%s' -p 'a fox' -o bad.png -q", bad[i]);
        const char *err = cli_slurp("err.txt");
        fprintf(stderr, "  -m '%s': %d %s", bad[i], st, err);
        ASSERT_EQ(st, 1);
        ASSERT(strstr(err, "CLIP models") && !strstr(err, "nonexistent"));
        ASSERT(strchr(err, '\n') == err + strlen(err) - 1);
    }
    /* the same file twice is refused when the names are found */
    st = cli_run(
        "--vqgan '%s' --bpe '%s' -m '%s,%s/clip/../clip/tiny_vit.pt' -p 'a fox' %s -o d.png", vq,
        bpe, vit, fixture_dir(), common);
    ASSERT_EQ(st, 1);
    ASSERT(strstr(cli_slurp("err.txt"), "same file"));
}

/* A batch job's "clip" key: its own models, loaded when they change. */
static void test_batch(void)
{
    char models[2048], line[24000];
    cli_setup("multiclip-batch", models, sizeof models);
    char vit[4096], rn[4096];
    snprintf(vit, sizeof vit, "%s", fixture_path("clip/tiny_vit.pt"));
    snprintf(rn, sizeof rn, "%s", fixture_path("clip/tiny_rn.pt"));
    snprintf(line, sizeof line,
             "a red fox\n{\"prompts\": \"a fox\", \"clip\": \"%s,%s:0.5\"}\n"
             "{\"prompts\": \"a cat\", \"clip\": \"%s,%s:0.5\"}\n"
             "{\"prompts\": \"a dog\", \"clip\": \"%s:abc\"}\n",
             vit, rn, vit, rn, vit);
    cli_write_file("jobs.txt", line);
    int st =
        cli_run("%s --batch jobs.txt -s 32 32 --cutn 2 -i 2 -se 0 -o 'out{index}.png'", models);
    const char *err = cli_slurp("err.txt");
    fprintf(stderr, "%s", err);
    ASSERT_EQ(st, 1); /* the last job's list is malformed: it fails, the others run */
    ASSERT(strstr(err, "job 3") && strstr(err, "'abc'"));
    int loads = 0;
    for (const char *p = err; (p = strstr(p, "models loaded")); p++)
        loads++;
    ASSERT_EQ(loads, 2); /* the command line's models, then the jobs' list once */
    char path[4200], text[8192], want[9000];
    snprintf(want, sizeof want, "--clip '%s,%s:0.5'", vit, rn);
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/out%d.png", cli_tmp, i);
        ASSERT_OK(vqc_image_text(path, "parameters", text, sizeof text));
        ASSERT((strstr(text, want) != NULL) == (i > 0));
    }
}

int main(void)
{
    vqt_init(0);
    TEST_PART(test_spec());
    models_t m;
    ASSERT_OK(vqc_vqgan_load(fixture_path("vqgan/tiny_vq.ckpt"), NULL, cpu, &m.vq));
    ASSERT_OK(vqc_clip_load(fixture_path("clip/tiny_vit.pt"), cpu, VQC_CLIP_FP32, &m.vit));
    ASSERT_OK(vqc_clip_load(fixture_path("clip/tiny_rn.pt"), cpu, VQC_CLIP_FP32, &m.rn));
    ASSERT_OK(vqc_tokenizer_load(fixture_path("clip/bpe_simple_vocab_16e6.txt.gz"), &m.tok));
    TEST_PART(test_weighted_sum(&m));
    vqc_tokenizer_free(m.tok);
    vqc_clip_free(m.vit);
    vqc_clip_free(m.rn);
    vqc_vqgan_free(m.vq);
    TEST_PART(test_cli());
    TEST_PART(test_batch());
    fprintf(stderr, "test-multiclip: ok\n");
    return 0;
}
