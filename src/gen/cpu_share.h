/* The CPUs a run may use, and whether other processes are using them (vqc_cpu_info_read of
 * include/vqclip.h), for the default thread count and the wait policy.
 *
 * The default team is the CPUs this process may use: its affinity mask and its cgroup's quota,
 * not every core the machine has. The team size is fixed for the run because libtorch's CPU
 * reductions split their work by it, so a picture is reproducible only at one thread count;
 * contention is therefore met with the OpenMP wait policy (the command line restarts itself
 * with it, as libgomp reads it before any of vqclip's code runs), not with a smaller team. */
#ifndef VQC_GEN_CPU_SHARE_H
#define VQC_GEN_CPU_SHARE_H

#include "vqclip.h"

/* The thread count for n_threads = 0: vqc_cpu_info's `usable` (at least 1). */
int vqc_cpu_default_threads(void);

/* vqt_init() with n_threads, or with vqc_cpu_default_threads() when it is 0. Returns the count
 * set (or -1 with the shim's error). */
int vqc_cpu_init_threads(int n_threads);

#endif
