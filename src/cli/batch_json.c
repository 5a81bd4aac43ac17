#include "cli/batch_json.h"

#include <math.h>
#include <string.h>

#include "util/error.h"

#define MAX_JOB_LIST 64

/* String lists of one job (image and noise prompts), alive while the job runs. */
static _Thread_local const char *job_images[MAX_JOB_LIST], *job_noise[MAX_JOB_LIST];

/* key is NULL for an element of an array (the key is the array's, named by the caller). */
static int bad_key(const char *key, const char *what)
{
    return vqc_error_set(VQC_ERR_USAGE, "batch job: \"%s\" %s", key ? key : "size", what);
}

static int get_string(const cJSON *v, const char **out)
{
    if (!cJSON_IsString(v))
        return bad_key(v->string, "must be a string");
    *out = v->valuestring;
    return 0;
}

static int get_number(const cJSON *v, double lo, double hi, double *out)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi)
        return bad_key(v->string, "must be a number in range");
    *out = v->valuedouble;
    return 0;
}

static int get_int(const cJSON *v, int lo, int hi, int *out)
{
    double d = 0;
    int rc = get_number(v, lo, hi, &d);
    if (!rc && d != floor(d))
        return bad_key(v->string, "must be an integer");
    *out = (int)d;
    return rc;
}

/* A string or an array of strings into list; returns the count or a negative code. */
static int get_list(const cJSON *v, const char **list)
{
    if (cJSON_IsString(v)) {
        list[0] = v->valuestring;
        return 1;
    }
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 0 || n > MAX_JOB_LIST)
        return bad_key(v->string, "must be a string or a list of strings");
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        if (!cJSON_IsString(e))
            return bad_key(v->string, "must be a list of strings");
        list[i] = e->valuestring;
    }
    return n;
}

static int get_size(const cJSON *v, vqc_generate_params *gp)
{
    if (cJSON_IsNumber(v)) {
        int rc = get_int(v, 1, 100000, &gp->width);
        return rc ? rc : get_int(v, 1, 100000, &gp->height);
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2)
        return bad_key(v->string, "must be [width, height]");
    int rc = get_int(cJSON_GetArrayItem(v, 0), 1, 100000, &gp->width);
    return rc ? rc : get_int(cJSON_GetArrayItem(v, 1), 1, 100000, &gp->height);
}

/* A choice key: its string through the library's parser. */
static int get_choice(const cJSON *v, vqc_generate_params *gp)
{
    const char *k = v->string, *s = NULL;
    int rc = get_string(v, &s);
    if (rc)
        return rc;
    if (strcmp(k, "init_noise") == 0)
        rc = vqc_init_noise_parse(s, &gp->init_noise);
    else if (strcmp(k, "init_weight_mode") == 0)
        rc = vqc_mse_mode_parse(s, &gp->init_weight_mode);
    else if (strcmp(k, "optimiser") == 0 || strcmp(k, "optimizer") == 0)
        rc = vqc_optim_parse(s, &gp->optimiser);
    else if (strcmp(k, "cut_method") == 0)
        rc = vqc_cut_method_parse(s, &gp->cut_method);
    else
        rc = vqc_augments_parse(s, gp->augments, &gp->n_augments);
    return rc ? vqc_error_set(VQC_ERR_USAGE, "batch job: \"%s\": %s", k, vqc_last_error()) : 0;
}

static int apply_string_key(const cJSON *v, vqc_generate_params *gp)
{
    static const struct {
        const char *key;
        size_t offset;
    } keys[] = {
        {"prompts", offsetof(vqc_generate_params, prompts)},
        {"output", offsetof(vqc_generate_params, output)},
        {"init_image", offsetof(vqc_generate_params, init_image)},
    };
    static const char *const choices[] = {"init_noise", "init_weight_mode", "optimiser",
                                          "optimizer",  "cut_method",       "augments"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (strcmp(v->string, keys[i].key) == 0)
            return get_string(v, (const char **)((char *)gp + keys[i].offset));
    for (size_t i = 0; i < sizeof choices / sizeof *choices; i++)
        if (strcmp(v->string, choices[i]) == 0)
            return get_choice(v, gp);
    return 1; /* not a string key */
}

static int apply_key(const cJSON *v, vqc_generate_params *gp, bool *seeded)
{
    const char *k = v->string;
    int rc = apply_string_key(v, gp);
    if (rc <= 0)
        return rc;
    double seed = 0;
    if (strcmp(k, "seed") == 0) {
        *seeded = true;
        rc = get_number(v, 0, 18446744073709549568.0, &seed);
        gp->seed = (uint64_t)seed;
        return rc;
    }
    if (strcmp(k, "image_prompts") == 0 || strcmp(k, "noise_prompts") == 0) {
        bool img = k[0] == 'i';
        int n = get_list(v, img ? job_images : job_noise);
        if (n < 0)
            return n;
        *(img ? &gp->n_image_prompts : &gp->n_noise_prompts) = n;
        *(img ? &gp->image_prompts : &gp->noise_prompts) = img ? job_images : job_noise;
        return 0;
    }
    if (strcmp(k, "iterations") == 0)
        return get_int(v, 0, 10000000, &gp->iterations);
    if (strcmp(k, "save_every") == 0)
        return get_int(v, 0, 100000000, &gp->save_every);
    if (strcmp(k, "size") == 0)
        return get_size(v, gp);
    if (strcmp(k, "width") == 0)
        return get_int(v, 1, 100000, &gp->width);
    if (strcmp(k, "height") == 0)
        return get_int(v, 1, 100000, &gp->height);
    if (strcmp(k, "init_weight") == 0)
        return get_number(v, -1e6, 1e6, &gp->init_weight);
    if (strcmp(k, "lr") == 0)
        return get_number(v, 0, 1e6, &gp->lr);
    if (strcmp(k, "cutn") == 0)
        return get_int(v, 1, 4096, &gp->cutn);
    if (strcmp(k, "cut_pow") == 0)
        return get_number(v, 0, 1000, &gp->cut_pow);
    if (strcmp(k, "cut_noise") == 0)
        return get_number(v, 0, 100, &gp->cut_noise);
    if (strcmp(k, "change_prompt_every") == 0)
        return get_int(v, 0, 100000000, &gp->change_prompt_every);
    return bad_key(k, "is not an option a batch job can set");
}

int batch_job_params(const char *line, vqc_generate_params *gp, cJSON **json, bool *seeded)
{
    *json = NULL;
    if (line[0] != '{') {
        gp->prompts = line;
        return 0;
    }
    cJSON *obj = cJSON_Parse(line);
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return vqc_error_set(VQC_ERR_USAGE, "batch job: not a valid JSON object");
    }
    *json = obj;
    for (const cJSON *v = obj->child; v; v = v->next) {
        int rc = apply_key(v, gp, seeded);
        if (rc)
            return rc;
    }
    if (!gp->prompts && !gp->n_image_prompts && !gp->n_noise_prompts)
        return vqc_error_set(VQC_ERR_USAGE, "batch job: no \"prompts\"");
    return 0;
}
