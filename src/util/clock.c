/* The one monotonic clock of the library (see clock.h). */
#include "util/clock.h"

#include <time.h>

double vqc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
