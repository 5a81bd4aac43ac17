/* Keyframed values for zoom videos: "FRAME:(VALUE), FRAME:(VALUE), ..." as the zooming notebooks
 * and their successors (Deforum) write camera moves, read here for zoom, rotation and shift. */
#ifndef VQC_GEN_SCHEDULE_H
#define VQC_GEN_SCHEDULE_H

#define VQC_SCHEDULE_MAX_KEYS 256

typedef struct vqc_schedule {
    int n;
    double frame[VQC_SCHEDULE_MAX_KEYS], value[VQC_SCHEDULE_MAX_KEYS];
} vqc_schedule;

/* Parses text into *out: keys in increasing frame order (frames are non-negative integers),
 * values finite, ',' between keys, blanks anywhere between tokens. Returns 0, or VQC_ERR_USAGE
 * with a message that names `what` (the option) and the offending part. */
int vqc_schedule_parse(const char *text, const char *what, vqc_schedule *out);

/* The value at `frame`: the first key's before it, the last key's after it, and linear between
 * two keys. */
double vqc_schedule_at(const vqc_schedule *s, double frame);

#endif
