/* The generate command's option rows: every option and batch key, declared once (see
 * option_table.h). options.c parses with them, options_text.c writes --help and the
 * regeneration command from them. */
#include "cli/common.h"
#include "cli/option_table.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A row leaves its trailing fields (words) zero unless it needs them. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define GP(f) IN_GP, offsetof(vqc_generate_params, f)
#define CP(f) IN_CP, offsetof(vqc_context_params, f)
#define CLI(f) IN_CLI, offsetof(gen_opts, f)

/* Choice parsers and names, typed for the table. */
static int p_noise(const char *s, void *out)
{
    return vqc_init_noise_parse(s, out);
}
static const char *n_noise(int v)
{
    return vqc_init_noise_name((vqc_init_noise)v);
}
static int p_mse(const char *s, void *out)
{
    return vqc_mse_mode_parse(s, out);
}
static const char *n_mse(int v)
{
    return vqc_mse_mode_name((vqc_mse_mode)v);
}
static int p_optim(const char *s, void *out)
{
    return vqc_optim_parse(s, out);
}
static const char *n_optim(int v)
{
    return vqc_optim_name((vqc_optim_kind)v);
}
static int p_cut(const char *s, void *out)
{
    return vqc_cut_method_parse(s, out);
}
static const char *n_cut(int v)
{
    return vqc_cut_method_name((vqc_cut_method)v);
}
static int p_smooth(const char *s, void *out)
{
    return vqc_smoothness_type_parse(s, out);
}
static const char *n_smooth(int v)
{
    return vqc_smoothness_type_name((vqc_smoothness_type)v);
}
static int p_lr_schedule(const char *s, void *out)
{
    return vqc_lr_schedule_parse(s, out);
}
static const char *n_lr_schedule(int v)
{
    return vqc_lr_schedule_name((vqc_lr_schedule)v);
}
static int p_precision(const char *s, void *out)
{
    return vqc_precision_parse(s, out);
}
static const char *n_precision(int v)
{
    return vqc_precision_name((vqc_precision)v);
}

static int sp_nps(gen_target *t, const char *v);
static int sp_npw(gen_target *t, const char *v);
static int sp_shard(gen_target *t, const char *v);
static int sp_clip_precision(gen_target *t, const char *v);
static int sp_max_memory(gen_target *t, const char *v);
static int sp_width(gen_target *t, const char *v);
static int sp_height(gen_target *t, const char *v);

#define NUM(lo, hi) (lo), (hi), NULL, NULL, NULL
#define NONE 0, 0, NULL, NULL, NULL
#define SPECIAL(f) T_SPECIAL, IN_CLI, 0, 0, 0, NULL, NULL, f

const char *const cli_sections[] = {"Prompts", "Output",       "Batches", "Models",
                                    "Start",   "Optimisation", "Device",  NULL};

const cli_option cli_options[] = {
    /* Prompts */
    {"-p --prompts", "prompts", T_STR, GP(prompts), NONE, S_PROMPTS, "TEXT",
     "'text[:weight[:stop]]|...' (negative weight: avoid); story mode: phrases separated by '^'",
     10, R_SET, "-p"},
    {"-ip --image-prompts --image_prompts", "image_prompts", T_LIST, GP(image_prompts), NONE,
     S_PROMPTS, "IMG", "image prompt(s) 'path[:weight[:stop]]|...' (repeatable)", 20, R_EACH,
     "-ip"},
    {"--noise-prompt", "noise_prompts", T_LIST, GP(noise_prompts), NONE, S_PROMPTS, "SEED[:W]",
     "random embedding prompt (repeatable)", 30, R_EACH, "--noise-prompt"},
    {"-nps --noise_prompt_seeds", NULL, SPECIAL(sp_nps), S_PROMPTS, "S [S...]",
     "generate.py's noise prompt seeds, with -npw W [W...] their weights ('|' also separates)", 0,
     R_NEVER, NULL, '|'},
    {"-npw --noise_prompt_weights", NULL, SPECIAL(sp_npw), S_HIDDEN, "W [W...]", NULL, 0, R_NEVER,
     NULL, '|'},
    {"-cpe --change-prompt-every --change_prompt_every", "change_prompt_every", T_INT,
     GP(change_prompt_every), NUM(0, INT_MAX), S_PROMPTS, "N",
     "story mode: next phrase every N steps", 40, R_SET, "--change-prompt-every"},
    /* Output */
    {"-o --output", "output", T_STR, GP(output), NONE, S_OUTPUT, "FILE",
     "image to write (default {D}): .png, or .jpg/.jpeg for JPEG; written atomically; folders "
     "are made; may hold {index} {index:04} {slug} {seed} {date}",
     0, R_NEVER, NULL},
    {"-s --size", "size", T_SIZE, GP(width), NUM(1, VQC_MAX_SIDE), S_OUTPUT, "W [H]",
     "image size (default 512x512 on a GPU, 256x256 on the CPU), rounded down to the VQGAN's "
     "factor",
     50, R_ALWAYS, "-s"},
    {"-i --iterations", "iterations", T_INT, GP(iterations), NUM(0, 10000000), S_OUTPUT, "N",
     "optimisation steps (default {D})", 60, R_ALWAYS, "-i"},
    {"-se --save-every --save_every", "save_every", T_INT, GP(save_every), NUM(0, INT_MAX),
     S_OUTPUT, "N",
     "rewrite the output every N steps (default {D}); the final image is always written", 0,
     R_NEVER, NULL},
    {"--save-frames", NULL, T_STR, GP(save_frames), NONE, S_OUTPUT, "DIR",
     "also write every --frame-every'th step as DIR/NNNNN.png", 0, R_NEVER, NULL},
    {"--frame-every", NULL, T_INT, GP(frame_every), NUM(1, INT_MAX), S_OUTPUT, "N",
     "with --save-frames: every N steps (default {D})", 0, R_NEVER, NULL},
    {"-sd --seed", "seed", T_SEED, GP(seed), NONE, S_OUTPUT, "N",
     "random seed (default: random, printed)", 70, R_ALWAYS, "--seed"},
    {"--video", NULL, T_STR, CLI(video), NONE, S_OUTPUT, "FILE.mp4",
     "also encode the frames as a video (needs ffmpeg)", 0, R_NEVER, NULL},
    {"--video-fps", NULL, T_INT, CLI(video_fps), NUM(1, 240), S_OUTPUT, "N",
     "the video's frame rate (default {D})", 0, R_NEVER, NULL},
    {"-vid", NULL, T_FLAG, CLI(peer_video), NONE, S_OUTPUT, NULL,
     "as generate.py: every step as steps/N.png, then the video OUTPUT.mp4 (needs ffmpeg)", 0,
     R_NEVER, NULL},
    {"-zvid --zoom_video", NULL, T_FLAG, CLI(peer_zoom_video), NONE, S_OUTPUT, NULL,
     "as generate.py: a zoom video (-zse default 10): each zoom's frame as steps/N.png, then "
     "OUTPUT.mp4",
     0, R_NEVER, NULL},
    {"-vl --video_length", NULL, T_DOUBLE, CLI(video_length), NUM(0.01, 1e6), S_OUTPUT, "S",
     "-vid/-zvid: the video's length in seconds, its rate kept within 10-60 fps (default {D})", 0,
     R_NEVER, NULL},
    {"-ofps --output_video_fps", NULL, T_DOUBLE, CLI(output_fps), NUM(0, 1000), S_OUTPUT, "FPS",
     "-vid/-zvid: 10 or more interpolates the frames to this rate (ffmpeg's minterpolate)", 0,
     R_NEVER, NULL},
    {"-ifps --input_video_fps", NULL, T_DOUBLE, CLI(input_fps), NUM(0.01, 1000), S_OUTPUT, "FPS",
     "with -ofps: the frames' own rate (default {D})", 0, R_NEVER, NULL},
    {"--upscale", NULL, T_STR, CLI(upscale), NONE, S_OUTPUT, "MODEL",
     "also write each finished picture upscaled by this Real-ESRGAN model (a name such as "
     "RealESRGAN_x4plus, or a .pth) as OUTPUT-upscaled.png",
     0, R_NEVER, NULL},
    {"--upscale-tile", NULL, T_INT, CLI(upscale_tile), NUM(0, 1 << 20), S_OUTPUT, "N",
     "with --upscale: tiles of N pixels, so memory follows the tile, not the picture (default "
     "{D}: whole)",
     0, R_NEVER, NULL},
    {"-zse --zoom-every --zoom_save_every", NULL, T_INT, GP(zoom_every), NUM(0, INT_MAX), S_OUTPUT,
     "N",
     "zoom video: every N steps zoom the image by --zoom-scale, shift it by --zoom-shift-x/-y "
     "pixels and re-encode it, from step --zoom-start",
     200, R_SET, "--zoom-every"},
    {"-zs --zoom-start --zoom_start", NULL, T_INT, GP(zoom_start), NUM(0, INT_MAX), S_OUTPUT, "N",
     "the first step that zooms (default {D})", 201, R_ALWAYS, "--zoom-start"},
    {"-zsc --zoom-scale --zoom_scale", NULL, T_DOUBLE, GP(zoom_scale), NUM(0.01, 100), S_OUTPUT,
     "X", "zoom factor per zoom, as generate.py's: above 1 zooms in, below 1 out (default {D})",
     202, R_ALWAYS, "--zoom-scale"},
    {"-zsx --zoom-shift-x --zoom_shift_x", NULL, T_INT, GP(zoom_shift_x), NUM(-100000, 100000),
     S_OUTPUT, "N", "pixels to the right per zoom, wrapping around (default {D})", 203, R_ALWAYS,
     "--zoom-shift-x"},
    {"-zsy --zoom-shift-y --zoom_shift_y", NULL, T_INT, GP(zoom_shift_y), NUM(-100000, 100000),
     S_OUTPUT, "N", "pixels down per zoom, wrapping around (default {D})", 204, R_ALWAYS,
     "--zoom-shift-y"},
    {"--zoom-schedule", "zoom_schedule", T_STR, GP(zoom_schedule), NONE, S_OUTPUT, "KEYS",
     "zoom video: the zoom per frame, keyframed as 'FRAME:(VALUE), ...' (e.g. '0:(1.0), "
     "60:(1.05)'), linear between keys; replaces --zoom-scale",
     205, R_SET, "--zoom-schedule"},
    {"--angle-schedule", "angle_schedule", T_STR, GP(angle_schedule), NONE, S_OUTPUT, "KEYS",
     "zoom video: degrees to rotate counter-clockwise per frame, keyframed", 206, R_SET,
     "--angle-schedule"},
    {"--shift-x-schedule", "shift_x_schedule", T_STR, GP(shift_x_schedule), NONE, S_OUTPUT, "KEYS",
     "zoom video: pixels to the right per frame, keyframed; replaces --zoom-shift-x", 207, R_SET,
     "--shift-x-schedule"},
    {"--shift-y-schedule", "shift_y_schedule", T_STR, GP(shift_y_schedule), NONE, S_OUTPUT, "KEYS",
     "zoom video: pixels down per frame, keyframed; replaces --zoom-shift-y", 208, R_SET,
     "--shift-y-schedule"},
    {"--save-state", NULL, T_STR, GP(save_state), NONE, S_OUTPUT, "FILE",
     "write a resumable state with each snapshot", 0, R_NEVER, NULL},
    {"--resume", NULL, T_STR, GP(resume), NONE, S_OUTPUT, "FILE",
     "continue a run from its state (same settings; -i may grow)", 0, R_NEVER, NULL},
    {"--json", NULL, T_FLAG, CLI(json), NONE, S_OUTPUT, NULL,
     "JSON lines on stdout: each saved image and frame, then a summary", 0, R_NEVER, NULL},
    {"-q --quiet", NULL, T_FLAG, CLI(quiet), NONE, S_OUTPUT, NULL, "no progress line", 0, R_NEVER,
     NULL},
    /* Batches */
    {"--batch", NULL, T_STR, CLI(batch), NONE, S_BATCH, "FILE",
     "one job per line ('-': stdin): a prompt, or a JSON object of options ({\"prompts\": "
     "\"...\", \"seed\": 3, ...}, the keys are listed in the man page); models load once; -o "
     "is a template (default {index:04}-{slug}.png)",
     0, R_NEVER, NULL},
    {"--skip-existing", NULL, T_FLAG, CLI(skip_existing), NONE, S_BATCH, NULL,
     "skip jobs whose output exists", 0, R_NEVER, NULL},
    {"--variations", NULL, T_INT, CLI(variations), NUM(1, 100000), S_BATCH, "N",
     "N seeds per prompt (default {D})", 0, R_NEVER, NULL},
    {"--shard", NULL, SPECIAL(sp_shard), S_BATCH, "I/N",
     "run only the jobs with index % N == I; without it, SLURM_ARRAY_TASK_ID/COUNT or "
     "JOB_COMPLETION_INDEX and --shard-count N are honoured",
     0, R_NEVER, NULL},
    {"--shard-count", NULL, T_INT, CLI(shard_count_opt), NUM(1, 1000000), S_BATCH, "N",
     "the number of shards, with JOB_COMPLETION_INDEX", 0, R_NEVER, NULL},
    /* Models */
    {"-ckpt --vqgan --vqgan_checkpoint", NULL, T_STR, CP(vqgan), NONE, S_MODELS, "NAME|CKPT",
     "VQGAN checkpoint (default " VQC_DEFAULT_VQGAN ")", 80, R_QUOTED, "--vqgan"},
    {"-conf --vqgan-config --vqgan_config", NULL, T_STR, CP(vqgan_config), NONE, S_MODELS, "YAML",
     "its config (found beside the checkpoint)", 0, R_NEVER, NULL},
    {"-m --clip --clip_model", "clip", T_STR, CP(clip), NONE, S_MODELS, "NAME[,...]",
     "CLIP model (default " VQC_DEFAULT_CLIP "); several, as pixray lists them (ViT-B/32,RN50:0.5: "
     "NAME[:WEIGHT], weight above 0, default 1), each score their own cutouts and their "
     "weighted losses are summed (a batch job's own reloads the models)",
     90, R_QUOTED, "--clip"},
    {"--bpe", NULL, T_STR, CP(bpe), NONE, S_MODELS, "FILE",
     "CLIP BPE vocabulary (default " VQC_DEFAULT_BPE "); names are looked up in "
     "$VQCLIP_MODELS, ~/.cache/vqclip",
     95, R_QUOTED, "--bpe"},
    /* Start */
    {"-ii --init-image --init_image", "init_image", T_STR, GP(init_image), NONE, S_START, "IMG",
     "start from this image (resized to the output size)", 170, R_SET, "-ii"},
    {"--init-blend-image", "init_blend_image", T_STR, GP(init_blend_image), NONE, S_START, "IMG",
     "with -ii and --init-blend W: start from z = W * z_blend + (1 - W) * z_init, the encodings "
     "of IMG and of the init image (-vsd's smoothing, which writes it into each frame)",
     171, R_SET, "--init-blend-image"},
    {"--init-blend", "init_blend", T_DOUBLE, GP(init_blend), NUM(0, 1), S_START, "W",
     "the blend image's share, in [0, 1] (default {D}: the init image alone)", 172, R_SET,
     "--init-blend"},
    {"-in --init-noise --init_noise", "init_noise", T_CHOICE, GP(init_noise), 0, 0, p_noise,
     n_noise, NULL, S_START, "KIND", "start from 'pixels' or 'gradient' noise", 180, R_SET, "-in"},
    {"-iw --init-weight --init_weight", "init_weight", T_DOUBLE, GP(init_weight), NUM(-1e6, 1e6),
     S_START, "W", "weight of the MSE term (default {D})", 190, R_SET, "-iw"},
    {"--init-weight-mode", "init_weight_mode", T_CHOICE, GP(init_weight_mode), 0, 0, p_mse, n_mse,
     NULL, S_START, "M",
     "seed (decaying pull to 0; the default), anchor (pull to the start), stepped (the MSE "
     "regularised notebook: a pull to 0 or the init image, re-anchored on a moving average of z "
     "every --mse-decay-every steps, --mse-epochs times, the optimiser reset each time)",
     191, R_ALWAYS, "--init-weight-mode"},
    {"--mse-decay-every", NULL, T_INT, GP(mse_decay_every), NUM(1, INT_MAX), S_START, "N",
     "stepped mode: steps between re-anchoring (default {D})", 192, R_ALWAYS, "--mse-decay-every"},
    {"--mse-epochs", NULL, T_INT, GP(mse_epochs), NUM(1, 100000), S_START, "N",
     "stepped mode: how many times (default {D})", 193, R_ALWAYS, "--mse-epochs"},
    /* Optimisation */
    {"-lr --learning-rate --learning_rate", "lr", T_DOUBLE, GP(lr), NUM(0, 1e6), S_OPTIM, "X",
     "step size (default {D})", 100, R_ALWAYS, "-lr"},
    {"-opt --optimiser --optimizer", "optimiser", T_CHOICE, GP(optimiser), 0, 0, p_optim, n_optim,
     NULL, S_OPTIM, "NAME",
     "Adam, AdamW, Adagrad, Adamax, DiffGrad, AdamP, RAdam, RMSprop (default {D})", 110, R_ALWAYS,
     "-opt"},
    {NULL, "optimizer", T_CHOICE, GP(optimiser), 0, 0, p_optim, n_optim, NULL, S_HIDDEN, NULL, NULL,
     0, R_NEVER, NULL},
    {"-cutm --cut-method --cut_method", "cut_method", T_CHOICE, GP(cut_method), 0, 0, p_cut, n_cut,
     NULL, S_OPTIM, "M",
     "pooling or original (as generate.py's -cutm original: no augmentations or cut noise unless "
     "given) (default {D})",
     120, R_ALWAYS, "--cut-method"},
    {"-cutn --cutn --num_cuts --cuts", "cutn", T_INT, GP(cutn), NUM(1, VQC_MAX_CUTN), S_OPTIM, "N",
     "cutouts per step (default {D})", 130, R_ALWAYS, "--cutn"},
    {"-cutp --cut-pow --cut_power", "cut_pow", T_DOUBLE, GP(cut_pow), NUM(0, 1000), S_OPTIM, "X",
     "cutout size distribution (default {D})", 140, R_ALWAYS, "--cut-pow"},
    {"--cut-noise", "cut_noise", T_DOUBLE, GP(cut_noise), NUM(0, 100), S_OPTIM, "X",
     "noise factor per cutout (default {D})", 150, R_ALWAYS, "--cut-noise"},
    {"-aug --augments", "augments", T_AUGMENTS, GP(augments), NONE, S_OPTIM, "LIST",
     "Af, Pe, Ji, Er, Sh, Gn, Ro, Hf, Cr, Re, Et, Ts, or none (default {D}), applied in the order "
     "given; several words or a repeated -aug add to the list",
     160, R_QUOTED, "--augments", ' '},
    /* Device */
    {"-cd --device --cuda_device", NULL, T_STR, CP(device), NONE, S_DEVICE, "D",
     "cpu, cuda, cuda:N (default: cuda when available)", 0, R_NEVER, NULL},
    {"--clip-precision", NULL, SPECIAL(sp_clip_precision), S_DEVICE, "P",
     "fp16 (the CUDA default) or fp32", 0, R_NEVER, NULL},
    {"--precision", NULL, T_CHOICE, CP(precision), 0, 0, p_precision, n_precision, NULL, S_DEVICE,
     "P",
     "on CUDA: fast (CLIP in fp16, the decoder in bf16: the default from Ampere GPUs on), "
     "mixed (CLIP in fp16: the default on older GPUs) or exact (float32 everywhere, no TF32)",
     0, R_NEVER, NULL},
    {"-d --deterministic", NULL, T_FLAG, CP(deterministic), NONE, S_DEVICE, NULL,
     "on CUDA, deterministic kernels and the atomic-adding gradients taken on the CPU, so a "
     "seed repeats a picture bit for bit (slower; the CPU always repeats it exactly)",
     0, R_NEVER, NULL},
    {"--low-memory", NULL, T_FLAG, CP(low_memory), NONE, S_DEVICE, NULL,
     "recompute the decoder's activations in the backward pass: the same pictures for much "
     "less memory at large sizes, about a third slower per step (without it, turned on by "
     "itself, with a notice, for a size that would not fit otherwise)",
     0, R_NEVER, NULL},
    {"--no-auto-low-memory", NULL, T_FLAG, CLI(no_auto_low_memory), NONE, S_DEVICE, NULL,
     "fail with the memory advice when a size does not fit, instead of turning --low-memory "
     "on by itself",
     0, R_NEVER, NULL},
    {"--max-memory", NULL, SPECIAL(sp_max_memory), S_DEVICE, "GIB",
     "hold the tensors on the device to GIB gibibytes, the models' included: each run plans "
     "within it and an allocation beyond it fails (so jobs can share a GPU)",
     0, R_NEVER, NULL},
    {"--profile", NULL, T_FLAG, GP(profile), NONE, S_DEVICE, NULL,
     "log where a step's time and memory go, stage by stage", 0, R_NEVER, NULL},
    {"--threads", NULL, T_INT, CP(n_threads), NUM(1, 4096), S_DEVICE, "N",
     "CPU threads (default: the CPUs this process may use: its affinity mask and cgroup quota)", 0,
     R_NEVER, NULL},
    /* Batch-only keys */
    {NULL, "width", SPECIAL(sp_width), S_HIDDEN, NULL, NULL, 0, R_NEVER, NULL},
    {NULL, "height", SPECIAL(sp_height), S_HIDDEN, NULL, NULL, 0, R_NEVER, NULL},
    /* Start (appended) */
    {"--allow-http", NULL, T_FLAG, GP(allow_http), NONE, S_START, NULL,
     "-ii and -ip may be URLs, fetched over https; this allows plain http too (limits: "
     "$VQCLIP_FETCH_TIMEOUT seconds, $VQCLIP_FETCH_MAX_BYTES)",
     210, R_SET, "--allow-http"},
    /* Optimisation: pixray's shaping losses (docs/losses.md) */
    {"-smo --smoothness", "smoothness", T_DOUBLE, GP(smoothness), NUM(-1e6, 1e6), S_OPTIM, "W",
     "weight of pixray's smoothness (total variation) loss on the cutouts (default {D})", 300,
     R_SET, "--smoothness"},
    {"-est --smoothness-type --smoothness_type", "smoothness_type", T_CHOICE, GP(smoothness_type),
     0, 0, p_smooth, n_smooth, NULL, S_OPTIM, "T",
     "default, clipped (at 0.5) or log (log(1 + s)) (default {D})", 301, R_ALWAYS,
     "--smoothness-type"},
    {"-sat --saturation", "saturation", T_DOUBLE, GP(saturation), NUM(-1e6, 1e6), S_OPTIM, "W",
     "weight of pixray's saturation (colourfulness) reward (default {D})", 310, R_SET,
     "--saturation"},
    {"--symmetry --symmetry_weight", "symmetry", T_DOUBLE, GP(symmetry), NUM(-1e6, 1e6), S_OPTIM,
     "W", "weight of the left-right mirror symmetry loss (default {D})", 320, R_SET, "--symmetry"},
    {"--symmetry-ud", "symmetry_ud", T_DOUBLE, GP(symmetry_ud), NUM(-1e6, 1e6), S_OPTIM, "W",
     "weight of the up-down mirror symmetry loss (default {D})", 330, R_SET, "--symmetry-ud"},
    {"--palette", "palette", T_STR, GP(palette), NONE, S_OPTIM, "COLOURS",
     "pull every pixel towards the nearest of these colours ('#ff0000,#00ff00,...')", 340, R_SET,
     "--palette"},
    {"--palette-weight --palette_weight", "palette_weight", T_DOUBLE, GP(palette_weight),
     NUM(-1e6, 1e6), S_OPTIM, "W", "weight of the palette loss (default {D})", 341, R_ALWAYS,
     "--palette-weight"},
    /* Optimisation: schedules */
    {"--lr-schedule", "lr_schedule", T_CHOICE, GP(lr_schedule), 0, 0, p_lr_schedule, n_lr_schedule,
     NULL, S_OPTIM, "S",
     "constant (the default), step (times --lr-step-factor every --lr-step-every steps) or "
     "cosine (down to --lr-floor at the last step)",
     350, R_SET, "--lr-schedule"},
    {"--lr-step-every", "lr_step_every", T_INT, GP(lr_step_every), NUM(1, INT_MAX), S_OPTIM, "N",
     "step schedule: steps between decays (default {D})", 351, R_ALWAYS, "--lr-step-every"},
    {"--lr-step-factor", "lr_step_factor", T_DOUBLE, GP(lr_step_factor), NUM(0, 1e6), S_OPTIM, "X",
     "step schedule: factor per decay (default {D})", 352, R_ALWAYS, "--lr-step-factor"},
    {"--lr-floor", "lr_floor", T_DOUBLE, GP(lr_floor), NUM(0, 1e6), S_OPTIM, "X",
     "cosine schedule: the rate at the last step (default {D})", 353, R_ALWAYS, "--lr-floor"},
    {"--stop-window", "stop_window", T_INT, GP(stop_window), NUM(0, 1000000), S_OPTIM, "N",
     "stop early when the mean loss of the last N steps is not --stop-fraction below that of "
     "the N steps before (default {D}: off)",
     360, R_SET, "--stop-window"},
    {"--stop-fraction", "stop_fraction", T_DOUBLE, GP(stop_fraction), NUM(0, 1), S_OPTIM, "F",
     "with --stop-window: the least improvement, a fraction of the loss (default {D})", 361,
     R_ALWAYS, "--stop-fraction"},
    {"--ema", "ema", T_DOUBLE, GP(ema), NUM(0, 0.999999999), S_OPTIM, "DECAY",
     "write the picture of an exponential moving average of z with this decay (e.g. 0.99; "
     "default {D}: z itself)",
     370, R_SET, "--ema"},
    /* Start: video style transfer (video_style.c) */
    {"-vsd --video-style --video_style_dir", NULL, T_STR, CLI(video_style), NONE, S_START,
     "DIR|VIDEO",
     "as generate.py: each frame of DIR (*.jpg, *.jpeg, *.png, sorted by name) or of a video "
     "file (extracted by ffmpeg into OUTPUT-frames/) is in turn the init image of an -i step run "
     "with the same seed, written as steps/NAME (or into --save-frames DIR); finished frames are "
     "skipped, so rerunning resumes; a video file's result is encoded as OUTPUT.mp4 (or --video "
     "FILE) at its frame rate with its audio, a folder's with -vid or --video at --video-fps",
     0, R_NEVER, NULL},
    {"--video-style-blend", NULL, T_DOUBLE, CLI(video_style_blend), NUM(0, 1), S_START, "W",
     "with -vsd: each frame after the first starts from z = W * z_prev + (1 - W) * z_frame, the "
     "encodings of the previous styled frame and of the frame (default {D}: each frame on its "
     "own, as generate.py)",
     0, R_NEVER, NULL},
};
const int cli_n_options = (int)(sizeof cli_options / sizeof cli_options[0]);

_Static_assert(sizeof cli_options / sizeof cli_options[0] <= sizeof((gen_opts *)0)->given,
               "gen_opts.given needs a slot per row");

/* The peer's "-nps 1|2 -npw 0.5|1", joined into "SEED:W" noise prompts after parsing. */
static int sp_nps(gen_target *t, const char *v)
{
    t->o->peer_seeds = v;
    return 0;
}

static int sp_npw(gen_target *t, const char *v)
{
    t->o->peer_weights = v;
    return 0;
}

static int sp_shard(gen_target *t, const char *v)
{
    int i, n, used = 0;
    if (sscanf(v, "%d/%d%n", &i, &n, &used) != 2 || v[used] || n < 1 || i < 0 || i >= n)
        return cli_option_bad(t, v, "expected I/N with 0 <= I < N");
    t->o->shard_index = i;
    t->o->shard_count = n;
    return 0;
}

static int sp_clip_precision(gen_target *t, const char *v)
{
    if (strcmp(v, "fp16") && strcmp(v, "fp32"))
        return cli_option_bad(t, v, "expected fp16 or fp32");
    t->o->cp.clip_fp32 = strcmp(v, "fp32") == 0;
    return 0;
}

static int sp_max_memory(gen_target *t, const char *v)
{
    char *end;
    double gib = strtod(v, &end);
    /* up to an exbibyte: a limit the long long of bytes holds */
    if (!t->o || end == v || *end || !(gib >= 0.001 && gib <= 1024.0 * 1024 * 1024))
        return cli_option_bad(t, v, "expected a number of GiB, at least 0.001");
    t->o->cp.memory_limit = (long long)(gib * 1024 * 1024 * 1024);
    return 0;
}

static const cli_option side_row = {
    NULL, NULL, T_INT, GP(width), NUM(1, VQC_MAX_SIDE), S_HIDDEN, NULL, NULL, 0, R_NEVER, NULL};

static int sp_width(gen_target *t, const char *v)
{
    return cli_option_set_int(&side_row, t, v, &t->gp->width);
}

static int sp_height(gen_target *t, const char *v)
{
    return cli_option_set_int(&side_row, t, v, &t->gp->height);
}
