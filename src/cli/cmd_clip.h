/* CLIP helpers of the CLI that other commands call (implemented in cmd_score.c). */
#ifndef VQC_CLI_CMD_CLIP_H
#define VQC_CLI_CMD_CLIP_H

/* `vqclip info --clip MODEL [--json]`: opens the weight file `path` (a path, or a model name
 * such as "ViT-B/32" resolved with vqc_model_find), infers the CLIP architecture without
 * loading the weights onto a device, and prints it to stdout: human-readable lines, or one JSON
 * object on one line when json is non-zero. Prints nothing on failure. Returns 0, or a negative
 * VQC_ERR_* whose message (prefixed with the path) is in vqc_error_get(); the caller prints it
 * with cli_print_error() and exits with cli_exit_status(). */
int clip_info_cmd(const char *path, int json);

#endif
