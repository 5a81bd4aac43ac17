/* libFuzzer target: one line of a batch file (gen_opts_job_params in src/cli/options.c; the CLI's
 * files but main.c are compiled into this target): a prompt, or a JSON object of options read
 * through the option rows. A line either fails with a negative code and a message, or leaves
 * parameters that keep the types' promises. */
#include <math.h>

#include "cli/options.h"
#include "fuzzhelp.h"

static void check_params(const vqc_generate_params *gp)
{
    FUZZ_CHECK(gp->n_image_prompts >= 0 && gp->n_noise_prompts >= 0);
    for (int i = 0; i < gp->n_image_prompts; i++)
        FUZZ_CHECK(gp->image_prompts[i] && strlen(gp->image_prompts[i]) < (1u << 30));
    for (int i = 0; i < gp->n_noise_prompts; i++)
        FUZZ_CHECK(gp->noise_prompts[i] != NULL);
    FUZZ_CHECK(gp->width >= 0 && gp->height >= 0 && gp->iterations >= 0);
    FUZZ_CHECK(isfinite(gp->lr) && isfinite(gp->init_weight) && isfinite(gp->cut_pow) &&
               isfinite(gp->cut_noise));
    FUZZ_CHECK((unsigned)gp->init_noise < VQC_NOISE_COUNT &&
               (unsigned)gp->optimiser < VQC_OPT_COUNT && (unsigned)gp->cut_method < VQC_CUT_COUNT);
    FUZZ_CHECK(gp->n_augments >= 0 && gp->n_augments <= VQC_MAX_AUGMENTS);
    const char *const strings[] = {gp->prompts, gp->output, gp->init_image};
    for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
        if (strings[i])
            FUZZ_CHECK(strlen(strings[i]) < (1u << 30));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = fuzz_cstr(data, size);
    vqc_generate_params gp = vqc_generate_default_params();
    vqc_context_params cp = vqc_context_default_params();
    cJSON *json = NULL;
    bool seeded = false;
    int rc = gen_opts_job_params(line, &gp, &cp, &json, &seeded);
    FUZZ_CHECK(rc <= 0); /* 1 would read as "skipped" to the batch runner */
    fuzz_check_error(rc, data, size);
    FUZZ_CHECK(rc == 0 || strstr(line, "(null)") || !strstr(vqc_error_get(), "(null)"));
    if (rc == 0)
        check_params(&gp);
    cJSON_Delete(json);
    free(line);
    return 0;
}
