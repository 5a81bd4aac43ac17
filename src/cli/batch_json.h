/* Batch lines: a prompt in the -p syntax, or a JSON object of options. */
#ifndef VQC_CLI_BATCH_JSON_H
#define VQC_CLI_BATCH_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "vqclip.h"

/* Applies one batch line to gp (which starts as the command line's parameters). A line that
 * starts with '{' is a JSON object whose keys are option names ("prompts", "image_prompts",
 * "noise_prompts", "seed", "iterations", "save_every", "size" [w, h], "width", "height",
 * "output", "init_image", "init_noise", "init_weight", "init_weight_mode", "lr", "optimiser",
 * "cut_method", "cutn", "cut_pow", "cut_noise", "augments", "change_prompt_every"); any other
 * line is the prompt. *json receives the parsed object (free with cJSON_Delete after the job:
 * gp's strings point into it); *seeded is set when the line gives a seed. Returns 0 or
 * VQC_ERR_USAGE naming the bad key or value. */
int batch_job_params(const char *line, vqc_generate_params *gp, cJSON **json, bool *seeded);

#endif
