#include "gen/prompts.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

/* Trims whitespace in place between [*b, *e). */
static void trim(const char **b, const char **e)
{
    while (*b < *e && isspace((unsigned char)**b))
        (*b)++;
    while (*e > *b && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

bool vqc_weight_like(const char *b, const char *e)
{
    if (e <= b || e - b > 32)
        return false;
    for (const char *p = b; p < e; p++)
        if (isspace((unsigned char)*p) || *p == '/' || *p == '\\')
            return false;
    return true;
}

/* Parses [b, e) as a finite double. */
static int parse_number(const char *b, const char *e, double *out)
{
    char buf[40];
    size_t n = (size_t)(e - b);
    memcpy(buf, b, n);
    buf[n] = 0;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (end == buf || *end || errno == ERANGE || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

/* Splits the trailing numeric fields off one part [b, e) into p. */
static int parse_part(const char *b, const char *e, vqc_prompt *p)
{
    double nums[2];
    int nnum = 0;
    trim(&b, &e);
    while (nnum < 2) {
        const char *colon = NULL;
        for (const char *q = e; q > b; q--)
            if (q[-1] == ':') {
                colon = q - 1;
                break;
            }
        if (!colon)
            break;
        const char *fb = colon + 1, *fe = e;
        trim(&fb, &fe);
        if (!vqc_weight_like(fb, fe))
            break;
        if (parse_number(fb, fe, &nums[nnum]) != 0)
            return vqc_error_set(VQC_ERR_USAGE, "prompt '%.*s': '%.*s' is not a number",
                                 (int)(e - b), b, (int)(fe - fb), fb);
        nnum++;
        e = colon;
        trim(&b, &e);
    }
    if (e == b)
        return vqc_error_set(VQC_ERR_USAGE, "empty prompt text");
    p->weight = nnum == 2 ? nums[1] : nnum == 1 ? nums[0] : 1.0;
    p->stop = nnum == 2 ? nums[0] : -INFINITY;
    p->text = strndup(b, (size_t)(e - b));
    return p->text ? 0 : vqc_error_set(VQC_ERR_NOMEM, "out of memory");
}

int vqc_prompts_parse(const char *spec, vqc_prompt_list *list)
{
    int count = 1;
    for (const char *p = spec; *p; p++)
        count += *p == '|';
    vqc_prompt *items = realloc(list->items, (size_t)(list->n + count) * sizeof *items);
    if (!items)
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    list->items = items;
    int n = list->n;
    const char *b = spec;
    for (;;) {
        const char *e = strchr(b, '|');
        if (!e)
            e = b + strlen(b);
        int rc = parse_part(b, e, &items[n]);
        if (rc) {
            while (n > list->n)
                free(items[--n].text);
            return rc;
        }
        n++;
        if (!*e)
            break;
        b = e + 1;
    }
    list->n = n;
    return 0;
}

void vqc_prompt_list_clear(vqc_prompt_list *list)
{
    for (int i = 0; i < list->n; i++)
        free(list->items[i].text);
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

void vqc_story_free(vqc_prompt_list *lists, int n)
{
    for (int i = 0; lists && i < n; i++)
        vqc_prompt_list_clear(&lists[i]);
    free(lists);
}

int vqc_story_parse(const char *spec, vqc_prompt_list **out, int *n)
{
    int count = 1;
    for (const char *p = spec; *p; p++)
        count += *p == '^';
    vqc_prompt_list *lists = calloc((size_t)count, sizeof *lists);
    char *copy = strdup(spec);
    if (!lists || !copy) {
        free(lists);
        free(copy);
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory");
    }
    char *phrase = copy;
    int i = 0, rc = 0;
    for (; i < count && !rc; i++) {
        char *hat = strchr(phrase, '^');
        if (hat)
            *hat = 0;
        rc = vqc_prompts_parse(phrase, &lists[i]);
        phrase = hat ? hat + 1 : phrase;
    }
    free(copy);
    if (rc) {
        vqc_story_free(lists, count);
        return rc;
    }
    *out = lists;
    *n = count;
    return 0;
}

int vqc_noise_prompt_parse(const char *spec, unsigned long long *seed, double *weight)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)*spec))
        return vqc_error_set(VQC_ERR_USAGE, "noise prompt '%s': expected SEED[:WEIGHT]", spec);
    *seed = strtoull(spec, &end, 10);
    *weight = 1.0;
    if (errno == ERANGE)
        return vqc_error_set(VQC_ERR_USAGE, "noise prompt '%s': seed out of range", spec);
    if (*end == ':' && parse_number(end + 1, end + 1 + strnlen(end + 1, 33), weight) == 0 &&
        strlen(end + 1) <= 32)
        return 0;
    if (*end == 0)
        return 0;
    return vqc_error_set(VQC_ERR_USAGE, "noise prompt '%s': expected SEED[:WEIGHT]", spec);
}
