/* The prompt syntax users know from the Python tools:
 *   "a cyberpunk city:1 | neon:0.5 | blurry:-1 | sunset:1:0.8"
 * Parts are separated by '|'; each is TEXT[:WEIGHT[:STOP]]. Only trailing fields that read as a
 * weight count, so "photo: a cat", "C:\x.png" and "http://host:8080/a.png" keep their colons.
 * A trailing field is read as a weight when it has no whitespace, '/' or '\', and is at most
 * 32 bytes; it must then be a finite number, or parsing fails ("cat:heavy" is an error,
 * "cat: heavy" is text). Story mode separates phrases with '^' (vqc_story_parse). */
#ifndef VQC_GEN_PROMPTS_H
#define VQC_GEN_PROMPTS_H

#include <stdbool.h>

typedef struct vqc_prompt {
    char *text;    /* owned; trimmed of surrounding whitespace; never empty */
    double weight; /* default 1 */
    double stop;   /* -INFINITY when not given */
} vqc_prompt;

typedef struct vqc_prompt_list {
    vqc_prompt *items;
    int n;
} vqc_prompt_list;

/* Parses one phrase ("a:1|b:-0.5") and appends its prompts to *list (which may already hold
 * prompts). Returns 0, or VQC_ERR_USAGE with a message naming the bad part (empty text, a weight
 * or stop that is not a finite number). *list is unchanged on failure. */
int vqc_prompts_parse(const char *spec, vqc_prompt_list *list);

/* Splits a story ("a city^a forest:0.5") into phrases on '^' and parses each into lists[i].
 * *out gets a malloc'ed array of *n lists. Returns 0 or VQC_ERR_USAGE. */
int vqc_story_parse(const char *spec, vqc_prompt_list **out, int *n);

/* Frees the prompts of a list and empties it (the struct itself is the caller's). */
void vqc_prompt_list_clear(vqc_prompt_list *list);

/* Frees an array from vqc_story_parse. */
void vqc_story_free(vqc_prompt_list *lists, int n);

/* Whether the field [b, e) after a ':' is to be read as a weight (then it must be a number):
 * 1 to 32 bytes with no white space, '/' or '\\'. So "photo: a cat" and "C:\\x.png" keep
 * their colon, and "cat:heavy" is a bad weight. Shared by the prompt and CLIP-list syntaxes. */
bool vqc_weight_like(const char *b, const char *e);

/* Parses a noise prompt "SEED[:WEIGHT]" (SEED a non-negative integer). Returns 0 or
 * VQC_ERR_USAGE. */
int vqc_noise_prompt_parse(const char *spec, unsigned long long *seed, double *weight);

#endif
