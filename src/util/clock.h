/* The one monotonic clock of the library. */
#ifndef VQC_UTIL_CLOCK_H
#define VQC_UTIL_CLOCK_H

/* Seconds on CLOCK_MONOTONIC (for durations only). */
double vqc_now(void);

#endif
