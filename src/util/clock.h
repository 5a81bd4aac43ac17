/* The one monotonic clock: vqc_now() of include/vqclip.h, which the library, the shim's profiler
 * (C++) and the command line all read. */
#ifndef VQC_UTIL_CLOCK_H
#define VQC_UTIL_CLOCK_H

#include "vqclip.h"

#endif
