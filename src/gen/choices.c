/* The public choices' names (include/vqclip.h) that no module of their own owns: the MSE term's
 * mode, the initial noise, the CUDA precision, the smoothness type and the learning-rate
 * schedule. (The optimiser's names are in optim.c, the cut methods' in cutouts.c, the
 * augmentations' in augment.c.) */
#include <strings.h>

#include "util/error.h"

/* The index of `name` in names[0..n) ignoring case, or -1. */
static int lookup(const char *name, const char *const *names, int n)
{
    for (int i = 0; name && i < n; i++)
        if (names[i] && strcasecmp(name, names[i]) == 0)
            return i;
    return -1;
}

static const char *const mse_modes[VQC_MSE_COUNT] = {"seed", "anchor", "stepped"};

int vqc_mse_mode_parse(const char *name, vqc_mse_mode *out)
{
    int i = lookup(name, mse_modes, VQC_MSE_COUNT);
    if (i < 0)
        return vqc_error_set(VQC_ERR_USAGE,
                             "init weight mode '%s': expected seed, anchor or stepped",
                             name ? name : "");
    *out = (vqc_mse_mode)i;
    return 0;
}

const char *vqc_mse_mode_name(vqc_mse_mode m)
{
    return (unsigned)m < VQC_MSE_COUNT ? mse_modes[m] : "?";
}

/* "none" is the value of no option: the command line leaves -in out. */
static const char *const noises[VQC_NOISE_COUNT] = {"none", "pixels", "gradient"};

int vqc_init_noise_parse(const char *name, vqc_init_noise *out)
{
    int i = lookup(name, noises, VQC_NOISE_COUNT);
    if (i <= 0)
        return vqc_error_set(VQC_ERR_USAGE, "init noise '%s': expected pixels or gradient",
                             name ? name : "");
    *out = (vqc_init_noise)i;
    return 0;
}

const char *vqc_init_noise_name(vqc_init_noise n)
{
    return (unsigned)n < VQC_NOISE_COUNT ? noises[n] : "?";
}

static const char *const precisions[VQC_PRECISION_COUNT] = {"auto", "exact", "mixed", "fast"};

int vqc_precision_parse(const char *name, vqc_precision *out)
{
    int i = lookup(name, precisions, VQC_PRECISION_COUNT);
    if (i < 0)
        return vqc_error_set(VQC_ERR_USAGE, "precision '%s': expected exact, mixed or fast",
                             name ? name : "");
    *out = (vqc_precision)i;
    return 0;
}

const char *vqc_precision_name(vqc_precision p)
{
    return (unsigned)p < VQC_PRECISION_COUNT ? precisions[p] : "?";
}

static const char *const smoothness_types[VQC_SMOOTHNESS_COUNT] = {"default", "clipped", "log"};

int vqc_smoothness_type_parse(const char *name, vqc_smoothness_type *out)
{
    int i = lookup(name, smoothness_types, VQC_SMOOTHNESS_COUNT);
    if (i < 0)
        return vqc_error_set(VQC_ERR_USAGE,
                             "smoothness type '%s': expected default, clipped or log",
                             name ? name : "");
    *out = (vqc_smoothness_type)i;
    return 0;
}

const char *vqc_smoothness_type_name(vqc_smoothness_type t)
{
    return (unsigned)t < VQC_SMOOTHNESS_COUNT ? smoothness_types[t] : "?";
}

static const char *const lr_schedules[VQC_LR_COUNT] = {"constant", "step", "cosine"};

int vqc_lr_schedule_parse(const char *name, vqc_lr_schedule *out)
{
    int i = name && strcasecmp(name, "none") == 0 ? 0 : lookup(name, lr_schedules, VQC_LR_COUNT);
    if (i < 0)
        return vqc_error_set(VQC_ERR_USAGE,
                             "learning-rate schedule '%s': expected constant, "
                             "step or cosine",
                             name ? name : "");
    *out = (vqc_lr_schedule)i;
    return 0;
}

const char *vqc_lr_schedule_name(vqc_lr_schedule s)
{
    return (unsigned)s < VQC_LR_COUNT ? lr_schedules[s] : "?";
}
