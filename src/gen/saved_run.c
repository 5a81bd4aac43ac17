/* The settings of a state file read back into generation parameters (include/vqclip.h's
 * vqc_saved_run): the "settings" text gen_state.c writes, one key=value per line, and the run's
 * step and iterations. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/tensor_map.h"
#include "util/error.h"
#include "vqclip.h"

#define MAX_SAVED_LIST 64

struct vqc_saved_run {
    char *text; /* the settings, its lines cut into strings the fields point to */
    vqc_generate_params gp;
    const char *images[MAX_SAVED_LIST], *noise[MAX_SAVED_LIST];
    const char *vqgan, *clip;
    int step;
};

/* Parses "N" / "X" values; false when malformed. */
static bool to_int(const char *v, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno || x < INT32_MIN || x > INT32_MAX)
        return false;
    *out = (int)x;
    return true;
}

static bool to_double(const char *v, double *out)
{
    char *end;
    *out = strtod(v, &end);
    return end != v && !*end;
}

/* One "key=value" line into s; false when it cannot be read. Unknown keys are ignored (a later
 * version's). */
static bool apply_line(vqc_saved_run *s, const char *key, const char *v)
{
    vqc_generate_params *g = &s->gp;
    if (!strcmp(key, "prompts")) {
        g->prompts = *v ? v : NULL;
    } else if (!strcmp(key, "image_prompt") || !strcmp(key, "noise_prompt")) {
        bool img = key[0] == 'i';
        int *n = img ? &g->n_image_prompts : &g->n_noise_prompts;
        if (*n >= MAX_SAVED_LIST)
            return false;
        (img ? s->images : s->noise)[(*n)++] = v;
    } else if (!strcmp(key, "change_prompt_every")) {
        return to_int(v, &g->change_prompt_every);
    } else if (!strcmp(key, "size")) {
        return sscanf(v, "%dx%d", &g->width, &g->height) == 2;
    } else if (!strcmp(key, "seed")) {
        char *end;
        g->seed = strtoull(v, &end, 10);
        return end != v && !*end;
    } else if (!strcmp(key, "init_image")) {
        g->init_image = *v ? v : NULL;
    } else if (!strcmp(key, "init_noise")) {
        return !*v || vqc_init_noise_parse(v, &g->init_noise) == 0;
    } else if (!strcmp(key, "init_weight")) {
        return to_double(v, &g->init_weight);
    } else if (!strcmp(key, "init_weight_mode")) {
        return vqc_mse_mode_parse(v, &g->init_weight_mode) == 0;
    } else if (!strcmp(key, "mse_decay_every")) {
        return to_int(v, &g->mse_decay_every);
    } else if (!strcmp(key, "mse_epochs")) {
        return to_int(v, &g->mse_epochs);
    } else if (!strcmp(key, "lr")) {
        return to_double(v, &g->lr);
    } else if (!strcmp(key, "optimiser")) {
        return vqc_optim_parse(v, &g->optimiser) == 0;
    } else if (!strcmp(key, "cut_method")) {
        return vqc_cut_method_parse(v, &g->cut_method) == 0;
    } else if (!strcmp(key, "cutn")) {
        return to_int(v, &g->cutn);
    } else if (!strcmp(key, "cut_pow")) {
        return to_double(v, &g->cut_pow);
    } else if (!strcmp(key, "cut_noise")) {
        return to_double(v, &g->cut_noise);
    } else if (!strcmp(key, "augments")) {
        return vqc_augments_parse(v, g->augments, &g->n_augments) == 0;
    } else if (!strcmp(key, "zoom")) {
        return sscanf(v, "%d,%d,%lf,%d,%d", &g->zoom_every, &g->zoom_start, &g->zoom_scale,
                      &g->zoom_shift_x, &g->zoom_shift_y) == 5;
    } else if (!strcmp(key, "zoom_schedule")) {
        g->zoom_schedule = v;
    } else if (!strcmp(key, "angle_schedule")) {
        g->angle_schedule = v;
    } else if (!strcmp(key, "shift_x_schedule")) {
        g->shift_x_schedule = v;
    } else if (!strcmp(key, "shift_y_schedule")) {
        g->shift_y_schedule = v;
    } else if (!strcmp(key, "smoothness")) {
        return to_double(v, &g->smoothness);
    } else if (!strcmp(key, "smoothness_type")) {
        return vqc_smoothness_type_parse(v, &g->smoothness_type) == 0;
    } else if (!strcmp(key, "saturation")) {
        return to_double(v, &g->saturation);
    } else if (!strcmp(key, "symmetry")) {
        return to_double(v, &g->symmetry);
    } else if (!strcmp(key, "symmetry_ud")) {
        return to_double(v, &g->symmetry_ud);
    } else if (!strcmp(key, "palette")) {
        g->palette = v;
    } else if (!strcmp(key, "palette_weight")) {
        return to_double(v, &g->palette_weight);
    } else if (!strcmp(key, "lr_schedule")) {
        return vqc_lr_schedule_parse(v, &g->lr_schedule) == 0;
    } else if (!strcmp(key, "lr_step_every")) {
        return to_int(v, &g->lr_step_every);
    } else if (!strcmp(key, "lr_step_factor")) {
        return to_double(v, &g->lr_step_factor);
    } else if (!strcmp(key, "lr_floor")) {
        return to_double(v, &g->lr_floor);
    } else if (!strcmp(key, "stop_window")) {
        return to_int(v, &g->stop_window);
    } else if (!strcmp(key, "stop_fraction")) {
        return to_double(v, &g->stop_fraction);
    } else if (!strcmp(key, "ema")) {
        return to_double(v, &g->ema);
    } else if (!strcmp(key, "vqgan")) {
        s->vqgan = v;
    } else if (!strcmp(key, "clip")) {
        s->clip = v;
    }
    return true;
}

int vqc_saved_run_load(const char *path, vqc_saved_run **out)
{
    *out = NULL;
    vqc_tensor_map *m;
    int rc = vqc_tmap_open(path, &m);
    if (rc)
        return rc;
    const char *fmt = vqc_tmap_meta(m, "format"), *settings = vqc_tmap_meta(m, "settings");
    const char *step = vqc_tmap_meta(m, "step"), *iters = vqc_tmap_meta(m, "iterations");
    vqc_saved_run *s = calloc(1, sizeof *s);
    if (!s || !fmt || strcmp(fmt, "vqclip-state-1") != 0 || !settings || !step) {
        rc = s ? vqc_error_set(VQC_ERR_FORMAT, "%s is not a vqclip state file", path)
               : vqc_error_set(VQC_ERR_NOMEM, "out of memory");
        free(s);
        vqc_tmap_free(m);
        return rc;
    }
    s->gp = vqc_generate_default_params();
    s->step = atoi(step);
    if (iters) /* states written before it was saved: the step itself */
        s->gp.iterations = atoi(iters);
    else
        s->gp.iterations = s->step;
    s->text = strdup(settings);
    vqc_tmap_free(m);
    if (!s->text) {
        free(s);
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    }
    for (char *line = s->text; line && *line;) {
        char *next = strchr(line, '\n'), *eq = strchr(line, '=');
        if (next)
            *next++ = 0;
        if (!eq || (*eq = 0, !apply_line(s, line, eq + 1))) {
            rc = vqc_error_set(VQC_ERR_FORMAT, "%s: unreadable setting '%.60s'", path, line);
            vqc_saved_run_free(s);
            return rc;
        }
        line = next;
    }
    *out = s;
    return 0;
}

void vqc_saved_run_apply(const vqc_saved_run *s, vqc_generate_params *gp, vqc_context_params *cp)
{
    const vqc_generate_params *g = &s->gp;
    gp->prompts = g->prompts;
    gp->image_prompts = s->images;
    gp->n_image_prompts = g->n_image_prompts;
    gp->noise_prompts = s->noise;
    gp->n_noise_prompts = g->n_noise_prompts;
    gp->change_prompt_every = g->change_prompt_every;
    gp->width = g->width;
    gp->height = g->height;
    gp->iterations = g->iterations;
    gp->seed = g->seed;
    gp->init_image = g->init_image;
    gp->init_noise = g->init_noise;
    gp->init_weight = g->init_weight;
    gp->init_weight_mode = g->init_weight_mode;
    gp->mse_decay_every = g->mse_decay_every;
    gp->mse_epochs = g->mse_epochs;
    gp->lr = g->lr;
    gp->optimiser = g->optimiser;
    gp->cut_method = g->cut_method;
    gp->cutn = g->cutn;
    gp->cut_pow = g->cut_pow;
    gp->cut_noise = g->cut_noise;
    memcpy(gp->augments, g->augments, sizeof gp->augments);
    gp->n_augments = g->n_augments;
    gp->zoom_every = g->zoom_every;
    gp->zoom_start = g->zoom_start;
    gp->zoom_scale = g->zoom_scale;
    gp->zoom_shift_x = g->zoom_shift_x;
    gp->zoom_shift_y = g->zoom_shift_y;
    gp->zoom_schedule = g->zoom_schedule;
    gp->angle_schedule = g->angle_schedule;
    gp->shift_x_schedule = g->shift_x_schedule;
    gp->shift_y_schedule = g->shift_y_schedule;
    gp->smoothness = g->smoothness;
    gp->smoothness_type = g->smoothness_type;
    gp->saturation = g->saturation;
    gp->symmetry = g->symmetry;
    gp->symmetry_ud = g->symmetry_ud;
    gp->palette = g->palette;
    gp->palette_weight = g->palette_weight;
    gp->lr_schedule = g->lr_schedule;
    gp->lr_step_every = g->lr_step_every;
    gp->lr_step_factor = g->lr_step_factor;
    gp->lr_floor = g->lr_floor;
    gp->stop_window = g->stop_window;
    gp->stop_fraction = g->stop_fraction;
    gp->ema = g->ema;
    if (cp) {
        cp->vqgan = s->vqgan;
        cp->clip = s->clip;
    }
}

int vqc_saved_run_step(const vqc_saved_run *s)
{
    return s->step;
}

void vqc_saved_run_free(vqc_saved_run *s)
{
    if (!s)
        return;
    free(s->text);
    free(s);
}
