/* The one monotonic clock of the library. */
#ifndef VQC_UTIL_CLOCK_H
#define VQC_UTIL_CLOCK_H

#ifdef __cplusplus
extern "C" {
#endif

/* Seconds on CLOCK_MONOTONIC (for durations only). C and C++ (the shim's profiler) use it. */
double vqc_now(void);

#ifdef __cplusplus
}
#endif

#endif
