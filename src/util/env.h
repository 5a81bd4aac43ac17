/* Developer switches read from the environment (VQCLIP_SDPA, VQCLIP_GROUPNORM ...: the man
 * page's ENVIRONMENT section). They choose between code paths for comparisons, and
 * scripts/gpu-check.sh names its benchmark rows after the switches it sets, so a misspelt value
 * must not pass silently for the default: it is said, once per process and switch, in a warning
 * that names the valid values, and then counts as unset. */
#ifndef VQC_UTIL_ENV_H
#define VQC_UTIL_ENV_H

#ifdef __cplusplus
extern "C" {
#endif

/* The index in `values` (NULL-terminated) of the value of environment variable `name`, or -1
 * when it is unset, empty, or not one of them (then warned about once). `name` must live as
 * long as the process (a string literal): it is kept to warn only once. */
int vqc_env_choice(const char *name, const char *const *values);

/* The value of environment variable `name` as a whole number from lo to hi, or `dflt` when it
 * is unset, empty or not such a number (then warned about once). */
long vqc_env_count(const char *name, long lo, long hi, long dflt);

#ifdef __cplusplus
}
#endif

#endif
