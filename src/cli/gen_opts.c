#include "cli/gen_opts.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"

/* Defaults with the demo models (gen_opts_demo_defaults; models/demo/README.md explains them). */
#define DEMO_SIZE 64
#define DEMO_ITERATIONS 200
#define DEMO_CUTN 8
#define DEMO_AUGMENTS "Af,Pe"
#define DEMO_INIT_NOISE VQC_NOISE_GRADIENT
#include "util/error.h"

void gen_opts_usage(void)
{
    printf(
        "usage: vqclip -p PROMPT [-o OUT.png] [options]\n"
        "       vqclip --batch FILE [-o TEMPLATE] [options]\n"
        "Generates an image that CLIP sees as PROMPT by optimising a VQGAN latent.\n\n"
        "Prompts:\n"
        "  -p, --prompts TEXT        'text[:weight[:stop]]|...' (negative weight: avoid);\n"
        "                            story mode: phrases separated by '^'\n"
        "  -ip, --image-prompts IMG  image prompt(s) 'path[:weight[:stop]]|...' (repeatable)\n"
        "  --noise-prompt SEED[:W]   random embedding prompt (repeatable); also -nps/-npw\n"
        "  -cpe, --change-prompt-every N  story mode: next phrase every N steps\n"
        "Output:\n"
        "  -o, --output FILE         PNG to write (default output.png); written atomically;\n"
        "                            may hold {index} {index:04} {slug} {seed} {date}\n"
        "  -s, --size W [H]          image size (default 512x512 on a GPU, 256x256 on the CPU),\n"
        "                            rounded down to the VQGAN's factor\n"
        "  -i, --iterations N        optimisation steps (default 500)\n"
        "  -se, --save-every N       rewrite the output every N steps (default 50); the final\n"
        "                            image is always written\n"
        "  --save-frames DIR         also write every --frame-every'th step (default 1) as\n"
        "                            DIR/NNNNN.png\n"
        "  --seed N                  random seed (default: random, printed); alias -sd\n"
        "  --video FILE.mp4          also encode the frames as a video (needs ffmpeg);\n"
        "                            --video-fps N (default 30)\n"
        "  --zoom-every N            zoom video: every N steps zoom the image by --zoom-scale\n"
        "                            (0.99), shift it by --zoom-shift-x/-y pixels and\n"
        "                            re-encode it, from step --zoom-start (0); aliases -zse,\n"
        "                            -zsc, -zsx, -zsy, -zs\n"
        "  --save-state FILE         write a resumable state with each snapshot\n"
        "  --resume FILE             continue a run from its state (same settings; -i may grow)\n"
        "  --json                    JSON lines on stdout: each saved image, then a summary\n"
        "  -q, --quiet               no progress line\n"
        "Batches:\n"
        "  --batch FILE              one job per line ('-': stdin): a prompt, or a JSON object\n"
        "                            of options ({\"prompts\": \"...\", \"seed\": 3, ...});\n"
        "                            models load once; -o is a template (default\n"
        "                            {index:04}-{slug}.png)\n"
        "  --skip-existing           skip jobs whose output exists\n"
        "  --variations N            N seeds per prompt (default 1)\n"
        "  --shard I/N               run only the jobs with index %% N == I; without it,\n"
        "                            SLURM_ARRAY_TASK_ID/COUNT or JOB_COMPLETION_INDEX and\n"
        "                            --shard-count N are honoured\n"
        "Models:\n"
        "  --vqgan NAME|CKPT         VQGAN checkpoint (default " VQC_DEFAULT_VQGAN "); -ckpt\n"
        "  --vqgan-config YAML       its config (found beside the checkpoint); -conf\n"
        "  -m, --clip NAME|FILE      CLIP model (default " VQC_DEFAULT_CLIP ")\n"
        "  --bpe FILE                CLIP BPE vocabulary (default " VQC_DEFAULT_BPE ")\n"
        "                            names are looked up in $VQCLIP_MODELS, ~/.cache/vqclip\n"
        "Start:\n"
        "  -ii, --init-image IMG     start from this image (resized to the output size)\n"
        "  -in, --init-noise KIND    start from 'pixels' or 'gradient' noise\n"
        "  -iw, --init-weight W      weight of the MSE term (default 0)\n"
        "  --init-weight-mode M      seed (decaying pull to 0), anchor (pull to the start),\n"
        "                            stepped (re-anchored every --mse-decay-every 50 steps,\n"
        "                            --mse-epochs 5 times)\n"
        "Optimisation:\n"
        "  -lr, --learning-rate X    step size (default 0.1)\n"
        "  -opt, --optimiser NAME    Adam, AdamW, Adagrad, Adamax, DiffGrad, AdamP, RAdam,\n"
        "                            RMSprop (default Adam)\n"
        "  -cutm, --cut-method M     pooling (default) or original\n"
        "  -cutn, --cutn N           cutouts per step (default 32)\n"
        "  -cutp, --cut-pow X        cutout size distribution (default 1)\n"
        "  --cut-noise X             noise factor per cutout (default 0.1)\n"
        "  -aug, --augments LIST     Af,Pe,Ji,Er (default), Sh, Gn, Ro, Hf, Cr, Re, or none\n"
        "Device:\n"
        "  --device D                cpu, cuda, cuda:N (default: cuda when available); -cd\n"
        "  --clip-precision P        fp16 (CUDA default) or fp32\n"
        "  --precision P             on CUDA: fast (the default: CLIP in fp16, the decoder\n"
        "                            in bf16), mixed (CLIP in fp16) or exact (float32\n"
        "                            everywhere, no TF32)\n"
        "  --deterministic           on CUDA, cuDNN's deterministic algorithms, so a seed\n"
        "                            repeats a picture up to the last bits (the CPU always\n"
        "                            repeats it exactly)\n"
        "  --low-memory              recompute the decoder's activations in the backward pass:\n"
        "                            the same pictures for much less memory at large sizes,\n"
        "                            about a third slower per step\n"
        "  --profile                 log where a step's time goes, stage by stage\n"
        "  --threads N               CPU threads (default: all cores)\n\n"
        "Exit status: 0 ok, 1 bad usage, 2 unreadable model or input, 3 runtime or device\n"
        "failure, 130/143 interrupted (the current image is written first).\n");
}

enum {
    O_IP = 256,
    O_NOISE,
    O_NPS,
    O_NPW,
    O_SE,
    O_VQGAN,
    O_CONF,
    O_BPE,
    O_II,
    O_IN,
    O_IW,
    O_MSEMODE,
    O_MSEEVERY,
    O_MSEEPOCHS,
    O_LR,
    O_OPT,
    O_CUTM,
    O_CUTN,
    O_CUTP,
    O_CUTNOISE,
    O_AUG,
    O_DEVICE,
    O_PREC,
    O_PRECISION,
    O_THREADS,
    O_SEED,
    O_JSON,
    O_HELP,
    O_DET,
    O_LOWMEM,
    O_PROFILE,
    O_CPE,
    O_FRAMES,
    O_FRAME_EVERY,
    O_STATE,
    O_RESUME,
    O_BATCH,
    O_SKIP,
    O_VARIATIONS,
    O_SHARD,
    O_SHARD_COUNT,
    O_VIDEO,
    O_FPS,
    O_ZOOM_EVERY,
    O_ZOOM_START,
    O_ZOOM_SCALE,
    O_ZOOM_X,
    O_ZOOM_Y
};

#define REQ(name, val)                  \
    {                                   \
        name, required_argument, 0, val \
    }
static const struct option long_opts[] = {REQ("prompts", 'p'),
                                          REQ("image-prompts", O_IP),
                                          REQ("image_prompts", O_IP),
                                          REQ("ip", O_IP),
                                          REQ("noise-prompt", O_NOISE),
                                          REQ("nps", O_NPS),
                                          REQ("noise_prompt_seeds", O_NPS),
                                          REQ("npw", O_NPW),
                                          REQ("noise_prompt_weights", O_NPW),
                                          REQ("output", 'o'),
                                          REQ("size", 's'),
                                          REQ("iterations", 'i'),
                                          REQ("save-every", O_SE),
                                          REQ("save_every", O_SE),
                                          REQ("se", O_SE),
                                          REQ("vqgan", O_VQGAN),
                                          REQ("vqgan_checkpoint", O_VQGAN),
                                          REQ("ckpt", O_VQGAN),
                                          REQ("vqgan-config", O_CONF),
                                          REQ("vqgan_config", O_CONF),
                                          REQ("conf", O_CONF),
                                          REQ("clip", 'm'),
                                          REQ("clip_model", 'm'),
                                          REQ("bpe", O_BPE),
                                          REQ("init-image", O_II),
                                          REQ("init_image", O_II),
                                          REQ("ii", O_II),
                                          REQ("init-noise", O_IN),
                                          REQ("init_noise", O_IN),
                                          REQ("in", O_IN),
                                          REQ("init-weight", O_IW),
                                          REQ("init_weight", O_IW),
                                          REQ("iw", O_IW),
                                          REQ("init-weight-mode", O_MSEMODE),
                                          REQ("mse-decay-every", O_MSEEVERY),
                                          REQ("mse-epochs", O_MSEEPOCHS),
                                          REQ("learning-rate", O_LR),
                                          REQ("learning_rate", O_LR),
                                          REQ("lr", O_LR),
                                          REQ("optimiser", O_OPT),
                                          REQ("optimizer", O_OPT),
                                          REQ("opt", O_OPT),
                                          REQ("cut-method", O_CUTM),
                                          REQ("cut_method", O_CUTM),
                                          REQ("cutm", O_CUTM),
                                          REQ("cutn", O_CUTN),
                                          REQ("num_cuts", O_CUTN),
                                          REQ("cuts", O_CUTN),
                                          REQ("cut-pow", O_CUTP),
                                          REQ("cut_power", O_CUTP),
                                          REQ("cutp", O_CUTP),
                                          REQ("cut-noise", O_CUTNOISE),
                                          REQ("augments", O_AUG),
                                          REQ("aug", O_AUG),
                                          REQ("device", O_DEVICE),
                                          REQ("cuda_device", O_DEVICE),
                                          REQ("cd", O_DEVICE),
                                          REQ("clip-precision", O_PREC),
                                          REQ("precision", O_PRECISION),
                                          REQ("threads", O_THREADS),
                                          REQ("seed", O_SEED),
                                          REQ("sd", O_SEED),
                                          REQ("change-prompt-every", O_CPE),
                                          REQ("change_prompt_every", O_CPE),
                                          REQ("cpe", O_CPE),
                                          REQ("save-frames", O_FRAMES),
                                          REQ("frame-every", O_FRAME_EVERY),
                                          REQ("save-state", O_STATE),
                                          REQ("resume", O_RESUME),
                                          REQ("batch", O_BATCH),
                                          REQ("variations", O_VARIATIONS),
                                          REQ("shard", O_SHARD),
                                          REQ("shard-count", O_SHARD_COUNT),
                                          REQ("video", O_VIDEO),
                                          REQ("video-fps", O_FPS),
                                          REQ("zoom-every", O_ZOOM_EVERY),
                                          REQ("zse", O_ZOOM_EVERY),
                                          REQ("zoom-start", O_ZOOM_START),
                                          REQ("zs", O_ZOOM_START),
                                          REQ("zoom-scale", O_ZOOM_SCALE),
                                          REQ("zsc", O_ZOOM_SCALE),
                                          REQ("zoom-shift-x", O_ZOOM_X),
                                          REQ("zsx", O_ZOOM_X),
                                          REQ("zoom-shift-y", O_ZOOM_Y),
                                          REQ("zsy", O_ZOOM_Y),
                                          {"skip-existing", no_argument, 0, O_SKIP},
                                          {"json", no_argument, 0, O_JSON},
                                          {"quiet", no_argument, 0, 'q'},
                                          {"help", no_argument, 0, O_HELP},
                                          {"deterministic", no_argument, 0, O_DET},
                                          {"low-memory", no_argument, 0, O_LOWMEM},
                                          {"profile", no_argument, 0, O_PROFILE},
                                          {0, 0, 0, 0}};
#undef REQ

static int bad(const char *opt, const char *val, const char *what)
{
    fprintf(stderr, "vqclip: error: %s '%s': %s\n", opt, val, what);
    return 1;
}

/* A choice's parser result: its message printed on failure. */
static int choice(int rc)
{
    if (!rc)
        return 0;
    fprintf(stderr, "vqclip: error: %s\n", vqc_last_error());
    return 1;
}

static int parse_int(const char *opt, const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi) {
        char what[96];
        snprintf(what, sizeof what, "expected an integer from %d to %d", lo, hi);
        return bad(opt, s, what);
    }
    *out = (int)v;
    return 0;
}

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < lo || v > hi) {
        char what[96];
        snprintf(what, sizeof what, "expected a number from %g to %g", lo, hi);
        return bad(opt, s, what);
    }
    *out = v;
    return 0;
}

static int parse_seed(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno || s[0] == '-' || s[0] == '+')
        return bad("--seed", s, "expected a non-negative integer");
    *out = v;
    return 0;
}

static int parse_size(int argc, char **argv, gen_opts *o)
{
    if (parse_int("--size", optarg, 1, 100000, &o->gp.width))
        return 1;
    o->gp.height = o->gp.width;
    o->size_given = true;
    /* A second number right after is the height, as generate.py takes "-s 512 384". */
    if (optind < argc && argv[optind][0] >= '0' && argv[optind][0] <= '9')
        return parse_int("--size", argv[optind++], 1, 100000, &o->gp.height);
    return 0;
}

static int parse_shard(const char *s, gen_opts *o)
{
    int i, n, used = 0;
    if (sscanf(s, "%d/%d%n", &i, &n, &used) != 2 || s[used] || n < 1 || i < 0 || i >= n)
        return bad("--shard", s, "expected I/N with 0 <= I < N");
    o->shard_index = i;
    o->shard_count = n;
    return 0;
}

static int add_list(const char **list, int *n, const char *v, const char *opt)
{
    if (*n >= GEN_MAX_LIST)
        return bad(opt, v, "given too many times");
    list[(*n)++] = v;
    return 0;
}

/* Turns the peer's "-nps 1|2 -npw 0.5|1" into "SEED:W" noise prompts. */
static int peer_noise_prompts(gen_opts *o, const char *nps, const char *npw)
{
    const char *s = nps, *w = npw;
    while (s && *s) {
        char *end, *wend = NULL;
        unsigned long long seed = strtoull(s, &end, 10);
        double weight = w && *w ? strtod(w, &wend) : 1.0;
        if (end == s || (*end && *end != '|') || (wend && (wend == w || !isfinite(weight))))
            return bad("-nps/-npw", nps, "expected SEED|SEED... and W|W...");
        int k = o->gp.n_noise_prompts;
        if (k >= GEN_MAX_LIST || !(o->noise_owned[k] = malloc(64)))
            return bad("-nps", nps, "too many noise prompts");
        snprintf(o->noise_owned[k], 64, "%llu:%.17g", seed, weight);
        o->noise_prompts[o->gp.n_noise_prompts++] = o->noise_owned[k];
        s = *end == '|' ? end + 1 : end;
        w = wend && *wend == '|' ? wend + 1 : wend;
    }
    return 0;
}

static void defaults(gen_opts *o)
{
    memset(o, 0, sizeof *o);
    o->cp = vqc_context_default_params();
    o->gp = vqc_generate_default_params();
    o->gp.image_prompts = o->image_prompts;
    o->gp.noise_prompts = o->noise_prompts;
    o->variations = 1;
    o->video_fps = 30;
}

/* Options that take numbers; returns 0, 1 (error) or 2 (not one of them). */
static int handle_number(int c, gen_opts *o)
{
    vqc_generate_params *g = &o->gp;
    switch (c) {
    case 'i': return parse_int("--iterations", optarg, 0, 10000000, &g->iterations);
    case O_SE: return parse_int("--save-every", optarg, 0, INT_MAX, &g->save_every);
    case O_IW: return parse_double("--init-weight", optarg, -1e6, 1e6, &g->init_weight);
    case O_MSEEVERY: return parse_int("--mse-decay-every", optarg, 1, INT_MAX, &g->mse_decay_every);
    case O_MSEEPOCHS: return parse_int("--mse-epochs", optarg, 1, 100000, &g->mse_epochs);
    case O_LR: return parse_double("--learning-rate", optarg, 0, 1e6, &g->lr);
    case O_CUTN: return parse_int("--cutn", optarg, 1, 4096, &g->cutn);
    case O_CUTP: return parse_double("--cut-pow", optarg, 0, 1000, &g->cut_pow);
    case O_CUTNOISE: return parse_double("--cut-noise", optarg, 0, 100, &g->cut_noise);
    case O_THREADS: return parse_int("--threads", optarg, 1, 4096, &o->cp.n_threads);
    case O_CPE:
        return parse_int("--change-prompt-every", optarg, 0, INT_MAX, &g->change_prompt_every);
    case O_FRAME_EVERY: return parse_int("--frame-every", optarg, 1, INT_MAX, &g->frame_every);
    case O_VARIATIONS: return parse_int("--variations", optarg, 1, 100000, &o->variations);
    case O_SHARD_COUNT: return parse_int("--shard-count", optarg, 1, 1000000, &o->shard_count_opt);
    case O_SHARD: return parse_shard(optarg, o);
    case O_FPS: return parse_int("--video-fps", optarg, 1, 240, &o->video_fps);
    case O_ZOOM_EVERY: return parse_int("--zoom-every", optarg, 0, INT_MAX, &g->zoom_every);
    case O_ZOOM_START: return parse_int("--zoom-start", optarg, 0, INT_MAX, &g->zoom_start);
    case O_ZOOM_SCALE: return parse_double("--zoom-scale", optarg, 0.01, 100, &g->zoom_scale);
    case O_ZOOM_X: return parse_int("--zoom-shift-x", optarg, -100000, 100000, &g->zoom_shift_x);
    case O_ZOOM_Y: return parse_int("--zoom-shift-y", optarg, -100000, 100000, &g->zoom_shift_y);
    case O_SEED: o->seed_given = true; return parse_seed(optarg, &g->seed);
    default: return 2;
    }
}

/* Handles one option; returns 0, 1 (error) or -1 (help printed). */
static int handle(int c, int argc, char **argv, gen_opts *o, const char **nps, const char **npw)
{
    vqc_generate_params *g = &o->gp;
    int rc = handle_number(c, o);
    if (rc != 2)
        return rc;
    switch (c) {
    case 'p': g->prompts = optarg; return 0;
    case O_IP: return add_list(o->image_prompts, &g->n_image_prompts, optarg, "-ip");
    case O_NOISE: return add_list(o->noise_prompts, &g->n_noise_prompts, optarg, "--noise-prompt");
    case O_NPS: *nps = optarg; return 0;
    case O_NPW: *npw = optarg; return 0;
    case 'o':
        g->output = optarg;
        o->output_given = true;
        return 0;
    case 's': return parse_size(argc, argv, o);
    case O_VQGAN: o->cp.vqgan = optarg; return 0;
    case O_CONF: o->cp.vqgan_config = optarg; return 0;
    case 'm': o->cp.clip = optarg; return 0;
    case O_BPE: o->cp.bpe = optarg; return 0;
    case O_II: g->init_image = optarg; return 0;
    case O_IN: return choice(vqc_init_noise_parse(optarg, &g->init_noise));
    case O_MSEMODE: return choice(vqc_mse_mode_parse(optarg, &g->init_weight_mode));
    case O_OPT: return choice(vqc_optim_parse(optarg, &g->optimiser));
    case O_CUTM: return choice(vqc_cut_method_parse(optarg, &g->cut_method));
    case O_AUG: return choice(vqc_augments_parse(optarg, g->augments, &g->n_augments));
    case O_DEVICE: o->cp.device = optarg; return 0;
    case O_PREC:
        if (strcmp(optarg, "fp16") && strcmp(optarg, "fp32"))
            return bad("--clip-precision", optarg, "expected fp16 or fp32");
        o->cp.clip_fp32 = strcmp(optarg, "fp32") == 0;
        return 0;
    case O_PRECISION:
        if (vqc_precision_parse(optarg, &o->cp.precision))
            return bad("--precision", optarg, "expected exact, mixed or fast");
        return 0;
    case O_FRAMES: g->save_frames = optarg; return 0;
    case O_STATE: g->save_state = optarg; return 0;
    case O_RESUME: g->resume = optarg; return 0;
    case O_BATCH: o->batch = optarg; return 0;
    case O_VIDEO: o->video = optarg; return 0;
    case O_SKIP: o->skip_existing = true; return 0;
    case O_JSON: o->json = true; return 0;
    case 'q': o->quiet = true; return 0;
    case O_DET: o->cp.deterministic = true; return 0; /* CPU runs are deterministic already */
    case O_LOWMEM: o->cp.low_memory = true; return 0;
    case O_PROFILE: g->profile = true; return 0;
    case O_HELP: gen_opts_usage(); return -1;
    default:
        cli_option_error("", c, argv);
        fprintf(stderr, "vqclip: error: %s\n", vqc_error_get());
        return 1;
    }
}

static bool given(const gen_opts *o, int code)
{
    for (int i = 0; i < o->n_given; i++)
        if (o->given[i] == code)
            return true;
    return false;
}

/* The demo models were trained on 64x64 pictures of flat coloured shapes (models/demo/README.md):
 * at that size every cutout is the whole picture, and colour jitter or erasing in the cutouts
 * would change the very colours the prompt names; a smooth start ('gradient' noise) gives
 * flatter backgrounds than random codes. */
void gen_opts_demo_defaults(gen_opts *o)
{
    vqc_generate_params *g = &o->gp;
    if (!o->size_given)
        g->width = g->height = DEMO_SIZE;
    if (!given(o, 'i'))
        g->iterations = DEMO_ITERATIONS;
    if (!given(o, O_CUTN))
        g->cutn = DEMO_CUTN;
    if (!given(o, O_AUG))
        vqc_augments_parse(DEMO_AUGMENTS, g->augments, &g->n_augments);
    if (!given(o, O_IN) && !given(o, O_II) && !g->init_image && g->init_noise == VQC_NOISE_NONE)
        g->init_noise = DEMO_INIT_NOISE;
}

void gen_opts_free(gen_opts *o)
{
    for (int i = 0; i < GEN_MAX_LIST; i++)
        free(o->noise_owned[i]);
}

int gen_opts_parse(int argc, char **argv, gen_opts *o)
{
    defaults(o);
    optind = 1;
    opterr = 0;
    const char *nps = NULL, *npw = NULL;
    int c;
    while ((c = getopt_long_only(argc, argv, ":p:o:s:i:m:qh", long_opts, NULL)) != -1) {
        if (o->n_given < GEN_MAX_LIST)
            o->given[o->n_given++] = c;
        int rc = handle(c == 'h' ? O_HELP : c, argc, argv, o, &nps, &npw);
        if (rc)
            return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "vqclip: error: unexpected argument '%s' (quote prompts with spaces)\n",
                argv[optind]);
        return 1;
    }
    if (nps && peer_noise_prompts(o, nps, npw))
        return 1;
    if (o->batch && o->video) {
        fprintf(stderr, "vqclip: error: --video makes one video per run; it cannot be used with "
                        "--batch\n");
        return 1;
    }
    if (!o->batch && !o->gp.prompts && !o->gp.n_image_prompts && !o->gp.n_noise_prompts) {
        fprintf(stderr, "vqclip: error: no prompt: give -p TEXT or --batch FILE (see vqclip "
                        "--help)\n");
        return 1;
    }
    return 0;
}
