/* The process's computation lock (see compute_lock.h). */
#include "util/compute_lock.h"

#include <pthread.h>

static pthread_mutex_t lock;
static pthread_once_t made = PTHREAD_ONCE_INIT;

static void make_lock(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&lock, &a);
    pthread_mutexattr_destroy(&a);
}

void vqc_compute_begin(void)
{
    pthread_once(&made, make_lock);
    pthread_mutex_lock(&lock);
}

void vqc_compute_end(void)
{
    pthread_mutex_unlock(&lock);
}
