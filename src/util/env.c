/* Developer switches (see env.h). */
#include "util/env.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

/* The switches already warned about: a process reads some of them at every model load (each
 * batch job's), and one warning says it. */
static pthread_mutex_t warned_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *warned[32];
static int nwarned;

/* Whether `name` is to be warned about now (the first time only). */
static bool first_warning(const char *name)
{
    bool first = true;
    pthread_mutex_lock(&warned_lock);
    for (int i = 0; i < nwarned && first; i++)
        first = strcmp(warned[i], name) != 0;
    if (first && nwarned < (int)(sizeof warned / sizeof warned[0]))
        warned[nwarned++] = name;
    pthread_mutex_unlock(&warned_lock);
    return first;
}

int vqc_env_choice(const char *name, const char *const *values)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return -1;
    char list[256] = "";
    for (int i = 0; values[i]; i++) {
        if (!strcmp(v, values[i]))
            return i;
        size_t n = strlen(list);
        snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", values[i]);
    }
    if (first_warning(name))
        vqc_log(VQC_LOG_WARN, "%s='%.64s' is not one of %s: ignored", name, v, list);
    return -1;
}

long vqc_env_count(const char *name, long lo, long hi, long dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (!*end && !errno && n >= lo && n <= hi)
        return n;
    if (first_warning(name))
        vqc_log(VQC_LOG_WARN, "%s='%.64s' is not a whole number from %ld to %ld: ignored", name, v,
                lo, hi);
    return dflt;
}
