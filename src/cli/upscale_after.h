/* --upscale MODEL: each finished picture also written upscaled by a Real-ESRGAN model, as
 * OUTPUT-upscaled.png beside it (the picture itself, with its regeneration text and step, stays
 * as it is, so --skip-existing and regeneration keep working). */
#ifndef VQC_CLI_UPSCALE_AFTER_H
#define VQC_CLI_UPSCALE_AFTER_H

#include <stddef.h>

#include "cli/options.h"

/* Loads the model once, before any generation, so that a bad name fails at once. Returns 0
 * (also without --upscale) or the library's negative code with its message. */
int cli_upscale_prepare(gen_opts *o);

/* The upscaled picture's name for `output`: its name without the extension, "-upscaled.png". */
void cli_upscale_name(const char *output, char *out, size_t len);

/* Writes the upscaled `output` (no-op without --upscale). Returns 0 or a negative code. */
int cli_upscale_output(gen_opts *o, const char *output);

/* Frees the model. */
void cli_upscale_free(gen_opts *o);

#endif
