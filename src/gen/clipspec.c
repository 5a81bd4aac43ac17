/* The CLIP model list (see clipspec.h). */
#include "gen/clipspec.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gen/prompts.h"
#include "util/error.h"

/* The last ':' of [b, e) when what follows it is weight-like; NULL otherwise. */
static const char *weight_colon(const char *b, const char *e)
{
    for (const char *q = e; q > b; q--)
        if (q[-1] == ':')
            return vqc_weight_like(q, e) ? q - 1 : NULL;
    return NULL;
}

/* One model [b, e) of spec (the k-th, 1-based) into *out. */
static int parse_entry(const char *spec, int k, const char *b, const char *e, vqc_clip_entry *out)
{
    while (b < e && isspace((unsigned char)*b))
        b++;
    while (e > b && isspace((unsigned char)e[-1]))
        e--;
    out->weight = 1;
    const char *colon = weight_colon(b, e);
    if (colon) {
        char num[40], *end;
        snprintf(num, sizeof num, "%.*s", (int)(e - colon - 1), colon + 1);
        errno = 0;
        double w = strtod(num, &end);
        if (end == num || *end || errno == ERANGE || !isfinite(w) || !(w > 0))
            return vqc_error_set(VQC_ERR_USAGE,
                                 "CLIP models '%.200s': the weight '%s' of model %d is not a "
                                 "number above 0",
                                 spec, num, k);
        out->weight = w;
        e = colon;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
    }
    if (e == b)
        return vqc_error_set(VQC_ERR_USAGE, "CLIP models '%.200s': model %d has no name", spec, k);
    if ((size_t)(e - b) >= sizeof out->name)
        return vqc_error_set(VQC_ERR_USAGE, "CLIP models '%.200s': model %d's name is too long",
                             spec, k);
    memcpy(out->name, b, (size_t)(e - b));
    out->name[e - b] = 0;
    return 0;
}

int vqc_clip_spec_parse(const char *spec, vqc_clip_entry *out, int *n)
{
    *n = 0;
    if (!*spec)
        return vqc_error_set(VQC_ERR_USAGE, "CLIP model: the name is empty");
    if (strlen(spec) < sizeof out->name && access(spec, F_OK) == 0) { /* one file, as named */
        snprintf(out->name, sizeof out->name, "%s", spec);
        out->weight = 1;
        *n = 1;
        return 0;
    }
    for (const char *b = spec;; (*n)++) {
        const char *e = strchr(b, ',');
        if (!e)
            e = b + strlen(b);
        int rc = *n == VQC_MAX_CLIPS
                     ? vqc_error_set(VQC_ERR_USAGE, "CLIP models '%.200s': more than %d models",
                                     spec, VQC_MAX_CLIPS)
                     : parse_entry(spec, *n + 1, b, e, &out[*n]);
        for (int i = 0; !rc && i < *n; i++)
            if (strcmp(out[i].name, out[*n].name) == 0)
                rc = vqc_error_set(VQC_ERR_USAGE,
                                   "CLIP models '%.200s': '%.200s' is named twice (give it one "
                                   "weight)",
                                   spec, out[i].name);
        if (rc) {
            *n = 0;
            return rc;
        }
        if (!*e) {
            (*n)++;
            return 0;
        }
        b = e + 1;
    }
}

/* The shortest "%.Ng" that strtod reads back to v itself. */
static void exact_double(double v, char *buf, size_t len)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, len, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

int vqc_clip_spec_format(const char *const *paths, const double *weights, int n, char *buf,
                         size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    for (int k = 0; k < n; k++) {
        const char *p = paths[k];
        if ((n > 1 || weights[k] != 1) && strchr(p, ','))
            return vqc_error_set(VQC_ERR_USAGE,
                                 "the CLIP model %s has a ',' in its path: it cannot be listed "
                                 "with a weight or other models",
                                 p);
        char w[40] = "";
        if (weights[k] != 1)
            exact_double(weights[k], w, sizeof w);
        else if (n > 1 && weight_colon(p, p + strlen(p)))
            snprintf(w, sizeof w, "1");
        int m = snprintf(buf + at, len - at, "%s%s%s%s", k ? "," : "", p, *w ? ":" : "", w);
        if (m < 0 || (size_t)m >= len - at)
            return vqc_error_set(VQC_ERR_USAGE, "the CLIP model list is too long");
        at += (size_t)m;
    }
    return 0;
}
