#include "cli/gen_opts.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "gen/modelpath.h"
#include "util/error.h"

void gen_opts_usage(void)
{
    printf(
        "usage: vqclip -p PROMPT [-o OUT.png] [options]\n"
        "Generates an image that CLIP sees as PROMPT by optimising a VQGAN latent.\n\n"
        "Prompts:\n"
        "  -p, --prompts TEXT        'text[:weight[:stop]]|...' (negative weight: avoid)\n"
        "  -ip, --image-prompts IMG  image prompt(s) 'path[:weight[:stop]]|...' (repeatable)\n"
        "  --noise-prompt SEED[:W]   random embedding prompt (repeatable); also -nps/-npw\n"
        "Output:\n"
        "  -o, --output FILE         PNG to write (default output.png); written atomically\n"
        "  -s, --size W [H]          image size (default 512x512 on a GPU, 256x256 on the CPU),\n"
        "                            rounded down to the VQGAN's factor\n"
        "  -i, --iterations N        optimisation steps (default 500)\n"
        "  -se, --save-every N       rewrite the output every N steps (default 50); the final\n"
        "                            image is always written\n"
        "  --seed N                  random seed (default: random, printed); alias -sd\n"
        "  --json                    JSON lines on stdout: each saved image, then a summary\n"
        "  -q, --quiet               no progress line\n"
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
    O_THREADS,
    O_SEED,
    O_JSON,
    O_HELP,
    O_DET
};

static const struct option long_opts[] = {{"prompts", required_argument, 0, 'p'},
                                          {"image-prompts", required_argument, 0, O_IP},
                                          {"image_prompts", required_argument, 0, O_IP},
                                          {"ip", required_argument, 0, O_IP},
                                          {"noise-prompt", required_argument, 0, O_NOISE},
                                          {"nps", required_argument, 0, O_NPS},
                                          {"noise_prompt_seeds", required_argument, 0, O_NPS},
                                          {"npw", required_argument, 0, O_NPW},
                                          {"noise_prompt_weights", required_argument, 0, O_NPW},
                                          {"output", required_argument, 0, 'o'},
                                          {"size", required_argument, 0, 's'},
                                          {"iterations", required_argument, 0, 'i'},
                                          {"save-every", required_argument, 0, O_SE},
                                          {"save_every", required_argument, 0, O_SE},
                                          {"se", required_argument, 0, O_SE},
                                          {"vqgan", required_argument, 0, O_VQGAN},
                                          {"vqgan_checkpoint", required_argument, 0, O_VQGAN},
                                          {"ckpt", required_argument, 0, O_VQGAN},
                                          {"vqgan-config", required_argument, 0, O_CONF},
                                          {"vqgan_config", required_argument, 0, O_CONF},
                                          {"conf", required_argument, 0, O_CONF},
                                          {"clip", required_argument, 0, 'm'},
                                          {"clip_model", required_argument, 0, 'm'},
                                          {"bpe", required_argument, 0, O_BPE},
                                          {"init-image", required_argument, 0, O_II},
                                          {"init_image", required_argument, 0, O_II},
                                          {"ii", required_argument, 0, O_II},
                                          {"init-noise", required_argument, 0, O_IN},
                                          {"init_noise", required_argument, 0, O_IN},
                                          {"in", required_argument, 0, O_IN},
                                          {"init-weight", required_argument, 0, O_IW},
                                          {"init_weight", required_argument, 0, O_IW},
                                          {"iw", required_argument, 0, O_IW},
                                          {"init-weight-mode", required_argument, 0, O_MSEMODE},
                                          {"mse-decay-every", required_argument, 0, O_MSEEVERY},
                                          {"mse-epochs", required_argument, 0, O_MSEEPOCHS},
                                          {"learning-rate", required_argument, 0, O_LR},
                                          {"learning_rate", required_argument, 0, O_LR},
                                          {"lr", required_argument, 0, O_LR},
                                          {"optimiser", required_argument, 0, O_OPT},
                                          {"optimizer", required_argument, 0, O_OPT},
                                          {"opt", required_argument, 0, O_OPT},
                                          {"cut-method", required_argument, 0, O_CUTM},
                                          {"cut_method", required_argument, 0, O_CUTM},
                                          {"cutm", required_argument, 0, O_CUTM},
                                          {"cutn", required_argument, 0, O_CUTN},
                                          {"num_cuts", required_argument, 0, O_CUTN},
                                          {"cuts", required_argument, 0, O_CUTN},
                                          {"cut-pow", required_argument, 0, O_CUTP},
                                          {"cut_power", required_argument, 0, O_CUTP},
                                          {"cutp", required_argument, 0, O_CUTP},
                                          {"cut-noise", required_argument, 0, O_CUTNOISE},
                                          {"augments", required_argument, 0, O_AUG},
                                          {"aug", required_argument, 0, O_AUG},
                                          {"device", required_argument, 0, O_DEVICE},
                                          {"cuda_device", required_argument, 0, O_DEVICE},
                                          {"cd", required_argument, 0, O_DEVICE},
                                          {"clip-precision", required_argument, 0, O_PREC},
                                          {"threads", required_argument, 0, O_THREADS},
                                          {"seed", required_argument, 0, O_SEED},
                                          {"sd", required_argument, 0, O_SEED},
                                          {"json", no_argument, 0, O_JSON},
                                          {"quiet", no_argument, 0, 'q'},
                                          {"help", no_argument, 0, O_HELP},
                                          {"deterministic", no_argument, 0, O_DET},
                                          {0, 0, 0, 0}};

static int bad(const char *opt, const char *val, const char *what)
{
    fprintf(stderr, "vqclip: error: %s '%s': %s\n", opt, val, what);
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

static int parse_size(int argc, char **argv, gen_opts *o)
{
    if (parse_int("--size", optarg, 1, 16384, &o->width))
        return 1;
    o->height = o->width;
    /* A second number right after is the height, as generate.py takes "-s 512 384". */
    if (optind < argc && argv[optind][0] >= '0' && argv[optind][0] <= '9')
        return parse_int("--size", argv[optind++], 1, 16384, &o->height);
    return 0;
}

static int add_list(const char **list, int *n, const char *v, const char *opt)
{
    if (*n >= GEN_MAX_LIST)
        return bad(opt, v, "given too many times");
    list[(*n)++] = v;
    return 0;
}

static void defaults(gen_opts *o)
{
    memset(o, 0, sizeof *o);
    o->output = "output.png";
    o->iterations = 500;
    o->save_every = 50;
    o->lr = 0.1;
    o->cut_pow = 1.0;
    o->cut_noise = 0.1;
    o->cutn = 32;
    o->mse_decay_every = 50;
    o->mse_epochs = 5;
}

/* Handles one option; returns 0, 1 (error) or -1 (help printed). */
static int handle(int c, int argc, char **argv, gen_opts *o)
{
    switch (c) {
    case 'p': o->prompts = optarg; return 0;
    case O_IP: return add_list(o->image_prompts, &o->n_image_prompts, optarg, "-ip");
    case O_NOISE: return add_list(o->noise_prompts, &o->n_noise_prompts, optarg, "--noise-prompt");
    case O_NPS: o->nps = optarg; return 0;
    case O_NPW: o->npw = optarg; return 0;
    case 'o': o->output = optarg; return 0;
    case 's': return parse_size(argc, argv, o);
    case 'i': return parse_int("--iterations", optarg, 0, 10000000, &o->iterations);
    case O_SE: return parse_int("--save-every", optarg, 0, INT_MAX, &o->save_every);
    case O_VQGAN: o->vqgan = optarg; return 0;
    case O_CONF: o->vqgan_config = optarg; return 0;
    case 'm': o->clip = optarg; return 0;
    case O_BPE: o->bpe = optarg; return 0;
    case O_II: o->init_image = optarg; return 0;
    case O_IN: o->init_noise = optarg; return 0;
    case O_IW: return parse_double("--init-weight", optarg, -1e6, 1e6, &o->init_weight);
    case O_MSEMODE: o->mse_mode = optarg; return 0;
    case O_MSEEVERY: return parse_int("--mse-decay-every", optarg, 1, INT_MAX, &o->mse_decay_every);
    case O_MSEEPOCHS: return parse_int("--mse-epochs", optarg, 1, 100000, &o->mse_epochs);
    case O_LR: return parse_double("--learning-rate", optarg, 0, 1e6, &o->lr);
    case O_OPT: o->optimiser = optarg; return 0;
    case O_CUTM: o->cut_method = optarg; return 0;
    case O_CUTN: return parse_int("--cutn", optarg, 1, 4096, &o->cutn);
    case O_CUTP: return parse_double("--cut-pow", optarg, 0, 1000, &o->cut_pow);
    case O_CUTNOISE: return parse_double("--cut-noise", optarg, 0, 100, &o->cut_noise);
    case O_AUG: o->augments = optarg; return 0;
    case O_DEVICE: o->device = optarg; return 0;
    case O_PREC: o->clip_precision = optarg; return 0;
    case O_THREADS: return parse_int("--threads", optarg, 1, 4096, &o->threads);
    case O_SEED: {
        char *end;
        errno = 0;
        o->seed = strtoull(optarg, &end, 10);
        o->seed_given = true;
        return (end == optarg || *end || errno || optarg[0] == '-')
                   ? bad("--seed", optarg, "expected a non-negative integer")
                   : 0;
    }
    case O_JSON: o->json = true; return 0;
    case 'q': o->quiet = true; return 0;
    case O_DET: return 0; /* CPU runs are deterministic already */
    case O_HELP: gen_opts_usage(); return -1;
    default:
        cli_option_error("", c, argv);
        fprintf(stderr, "vqclip: error: %s\n", vqc_error_get());
        return 1;
    }
}

int gen_opts_parse(int argc, char **argv, gen_opts *o)
{
    defaults(o);
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long_only(argc, argv, ":p:o:s:i:m:qh", long_opts, NULL)) != -1) {
        int rc = handle(c == 'h' ? O_HELP : c, argc, argv, o);
        if (rc)
            return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "vqclip: error: unexpected argument '%s' (quote prompts with spaces)\n",
                argv[optind]);
        return 1;
    }
    if (!o->prompts && !o->n_image_prompts && !o->n_noise_prompts && !o->nps) {
        fprintf(stderr, "vqclip: error: no prompt: give -p TEXT (see vqclip --help)\n");
        return 1;
    }
    return 0;
}

int gen_opts_loop_params(const gen_opts *o, vqc_loop_params *p)
{
    *p = vqc_loop_default_params();
    p->width = o->width;
    p->height = o->height;
    p->lr = o->lr;
    p->init_weight = o->init_weight;
    p->mse_decay_every = o->mse_decay_every;
    p->mse_epochs = o->mse_epochs;
    p->seed = o->seed;
    p->cut.cutn = o->cutn;
    p->cut.cut_pow = o->cut_pow;
    p->cut.cut_noise = o->cut_noise;
    int rc = 0;
    if (o->optimiser)
        rc = vqc_optim_parse(o->optimiser, &p->optimiser);
    if (!rc && o->cut_method)
        rc = vqc_cut_method_parse(o->cut_method, &p->cut.method);
    if (!rc && o->augments)
        rc = vqc_augments_parse(o->augments, &p->cut.augments);
    if (!rc && o->mse_mode) {
        static const char *const modes[] = {"seed", "anchor", "stepped"};
        rc = VQC_ERR_USAGE;
        for (int i = 0; i < 3; i++)
            if (strcmp(o->mse_mode, modes[i]) == 0) {
                p->mse_mode = (vqc_mse_mode)i;
                rc = 0;
            }
        if (rc)
            vqc_error_set(rc, "--init-weight-mode '%s': expected seed, anchor or stepped",
                          o->mse_mode);
    }
    if (rc) {
        fprintf(stderr, "vqclip: error: %s\n", vqc_error_get());
        return 1;
    }
    return 0;
}
