/* --upscale MODEL after generation (see upscale_after.h). */
#include "cli/upscale_after.h"

#include <stdio.h>
#include <string.h>

#include "cli/common.h"

int cli_upscale_prepare(gen_opts *o)
{
    if (!o->upscale || o->upscaler)
        return 0;
    vqc_upscale_params p = vqc_upscale_default_params();
    p.model = o->upscale;
    p.device = o->cp.device;
    p.tile = o->upscale_tile;
    return vqc_upscaler_load(&p, &o->upscaler);
}

void cli_upscale_name(const char *output, char *out, size_t len)
{
    const char *slash = strrchr(output, '/'), *dot = strrchr(output, '.');
    size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - output) : strlen(output);
    snprintf(out, len, "%.*s-upscaled.png", (int)stem, output);
}

int cli_upscale_output(gen_opts *o, const char *output)
{
    if (!o->upscale)
        return 0;
    int rc = cli_upscale_prepare(o);
    char name[4200];
    cli_upscale_name(output, name, sizeof name);
    rc = rc ? rc : vqc_upscale_file(o->upscaler, output, name);
    if (!rc && !o->quiet)
        cli_log(VQC_LOG_INFO, "wrote %s (upscaled x%d)", name, vqc_upscaler_scale(o->upscaler));
    return rc;
}

void cli_upscale_free(gen_opts *o)
{
    vqc_upscaler_free(o->upscaler);
    o->upscaler = NULL;
}
