/* libFuzzer target: what users type besides files, on arbitrary text: the prompt syntax
 * (vqc_prompts_parse, vqc_story_parse, vqc_noise_prompt_parse) and the option names
 * (vqc_augment_list_parse, vqc_cut_method_parse, vqc_optim_parse). Parsed prompts keep the
 * documented promises: non-empty trimmed text, finite weights, a stop that is finite or -inf; a
 * parsed augment list survives a round trip through vqc_augment_list_str, order and repeats kept. */
#include <math.h>
#include <string.h>

#include "fuzzhelp.h"
#include "gen/augment.h"
#include "gen/cutouts.h"
#include "gen/optim.h"
#include "gen/prompts.h"

static void check_list(const vqc_prompt_list *l)
{
    FUZZ_CHECK(l->n >= 0 && (l->n == 0 || l->items));
    for (int i = 0; i < l->n; i++) {
        const vqc_prompt *p = &l->items[i];
        size_t n = strlen(p->text);
        FUZZ_CHECK(n > 0);
        FUZZ_CHECK(p->text[0] != ' ' && p->text[n - 1] != ' ');
        FUZZ_CHECK(isfinite(p->weight));
        FUZZ_CHECK(isfinite(p->stop) || p->stop == -INFINITY);
    }
}

static void parse_names(const char *s, const uint8_t *data, size_t size)
{
    vqc_augment_list list;
    int rc = vqc_augment_list_parse(s, &list);
    fuzz_check_error(rc, data, size);
    if (rc == 0) {
        FUZZ_CHECK(list.n >= 0 && list.n <= VQC_MAX_AUGMENTS);
        for (int i = 0; i < list.n; i++)
            FUZZ_CHECK(list.code[i] >= 0 && list.code[i] < VQC_AUGMENT_COUNT);
        char buf[128];
        int n = vqc_augment_list_str(&list, buf, sizeof buf);
        FUZZ_CHECK(n > 0 && (size_t)n < sizeof buf);
        vqc_augment_list again;
        FUZZ_CHECK(vqc_augment_list_parse(buf, &again) == 0 && again.n == list.n &&
                   memcmp(again.code, list.code, sizeof *list.code * (size_t)list.n) == 0);
    }
    vqc_cut_method m;
    rc = vqc_cut_method_parse(s, &m);
    fuzz_check_error(rc, data, size);
    FUZZ_CHECK(rc != 0 || strcmp(vqc_cut_method_name(m), "?") != 0);
    vqc_optim_kind k;
    rc = vqc_optim_parse(s, &k);
    fuzz_check_error(rc, data, size);
    FUZZ_CHECK(rc != 0 || (k >= 0 && k < VQC_OPT_COUNT && vqc_optim_name(k)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);
    vqc_prompt_list list = {0};
    int rc = vqc_prompts_parse(s, &list);
    fuzz_check_error(rc, data, size);
    FUZZ_CHECK(rc == 0 || list.n == 0); /* unchanged on failure */
    check_list(&list);
    vqc_prompt_list_clear(&list);

    vqc_prompt_list *story = NULL;
    int n = 0;
    rc = vqc_story_parse(s, &story, &n);
    fuzz_check_error(rc, data, size);
    for (int i = 0; rc == 0 && i < n; i++)
        check_list(&story[i]);
    if (rc == 0)
        vqc_story_free(story, n);

    unsigned long long seed;
    double w;
    rc = vqc_noise_prompt_parse(s, &seed, &w);
    fuzz_check_error(rc, data, size);
    FUZZ_CHECK(rc != 0 || isfinite(w));
    parse_names(s, data, size);
    free(s);
    return 0;
}
