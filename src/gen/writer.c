/* The run's picture writer (writer.h): a FIFO of waiting images, a few background threads that
 * encode them at the same time, and one write at a time in the order they were put: the same
 * path (the output, at every snapshot) must be renamed into place in that order, and the
 * callbacks run on the owner's thread in it. Whichever thread finishes encoding the oldest
 * image not yet written writes it, and then every later one already encoded. */
#include "gen/writer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/cpu_share.h"
#include "util/env.h"
#include "util/error.h"

#define MAX_WAITING 2 /* images waiting beyond those being encoded */
#define MAX_THREADS 4 /* 512x512 takes ~70 ms to encode: four keep up with ~50 steps/s */
#define MAX_TEXT 16   /* key/value strings a job keeps (write_image passes up to 8) */

typedef enum { JOB_QUEUED, JOB_ENCODING, JOB_ENCODED, JOB_DONE } job_state;

typedef struct job {
    struct job *next;
    job_state state;
    char *path;
    vqc_image img;
    vqc_encoded enc; /* once JOB_ENCODED, until written */
    char *text[MAX_TEXT + 1];
    vqc_image_callback done;
    void *user;
    int step;
    double loss;
    int rc;         /* the encoding's result, then the write's, once JOB_DONE */
    char err[1024]; /* its message: the error text is per thread */
} job;

struct vqc_writer {
    int nthreads; /* 0: writes in place */
    pthread_t threads[MAX_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a job queued, a job done, or stop */
    job *head, *tail;  /* oldest first; the owner removes jobs, the threads mark them */
    int count;         /* jobs in the list */
    bool stop;
    bool writing; /* a thread is writing the oldest encoded jobs */
    bool broken;  /* an image failed: the jobs after it are not written */
    int failed;   /* the first error reported to the owner (later callbacks are skipped) */
    char failed_msg[1024];
};

static void job_free(job *j)
{
    if (!j)
        return;
    free(j->path);
    vqc_image_free(&j->img);
    vqc_encoded_free(&j->enc);
    for (int i = 0; i < MAX_TEXT && j->text[i]; i++)
        free(j->text[i]);
    free(j);
}

/* The oldest job not yet done, when it is encoded. Called with the lock held. */
static job *next_to_write(vqc_writer *w)
{
    job *j = w->head;
    while (j && j->state == JOB_DONE)
        j = j->next;
    return j && j->state == JOB_ENCODED ? j : NULL;
}

/* Writes the oldest jobs that are encoded, in order, unless another thread is at it: it will
 * see them when it finishes its own. Called with the lock held; releases it while writing. */
static void write_ready(vqc_writer *w)
{
    job *j;
    while (!w->writing && (j = next_to_write(w)) != NULL) {
        w->writing = true;
        bool skip = w->broken;
        pthread_mutex_unlock(&w->mu);
        if (skip) { /* as in place: nothing is written after a failure */
            j->rc = VQC_ERR_IO;
            snprintf(j->err, sizeof j->err, "not written after an earlier failure: %s", j->path);
        } else if (!j->rc && (j->rc = vqc_encoded_write(j->path, &j->enc)) != 0)
            snprintf(j->err, sizeof j->err, "%s", vqc_error_get());
        vqc_encoded_free(&j->enc);
        pthread_mutex_lock(&w->mu);
        if (j->rc)
            w->broken = true;
        j->state = JOB_DONE;
        w->writing = false;
        pthread_cond_broadcast(&w->cv);
    }
}

static void *worker(void *arg)
{
    vqc_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        job *j = w->head;
        while (j && j->state != JOB_QUEUED)
            j = j->next;
        if (!j) {
            if (w->stop)
                break;
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        j->state = JOB_ENCODING;
        bool skip = w->broken; /* it will not be written: do not encode it */
        pthread_mutex_unlock(&w->mu);
        if (!skip && (j->rc = vqc_image_encode(j->path, &j->img, (const char *const *)j->text,
                                               &j->enc)) != 0)
            snprintf(j->err, sizeof j->err, "%s", vqc_error_get());
        vqc_image_free(&j->img); /* the memory goes back before the callback, not after */
        pthread_mutex_lock(&w->mu);
        j->state = JOB_ENCODED;
        write_ready(w);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Encoding threads: one fewer than the CPUs this process may use (the loop's thread keeps
 * one), at least one and at most MAX_THREADS. */
static int writer_threads(void)
{
    int n = vqc_cpu_default_threads() - 1;
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n;
}

bool vqc_writer_async_default(bool cuda)
{
    static const char *const off_on[] = {"0", "1", NULL};
    int v = vqc_env_choice("VQCLIP_ASYNC_WRITES", off_on);
    return v >= 0 ? v == 1 : cuda;
}

vqc_writer *vqc_writer_new(int threads)
{
    vqc_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    if (threads == 0)
        return w;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    int want = threads < 0 ? writer_threads() : threads > MAX_THREADS ? MAX_THREADS : threads;
    while (w->nthreads < want && pthread_create(&w->threads[w->nthreads], NULL, worker, w) == 0)
        w->nthreads++;
    if (w->nthreads == 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return NULL;
    }
    return w;
}

/* Removes the written jobs at the head, running their callbacks (the lock released meanwhile);
 * with wait, also waits for the rest. Returns the first error. Called with the lock held. */
static int reap(vqc_writer *w, bool wait)
{
    while (w->head) {
        job *j = w->head;
        if (j->state != JOB_DONE) {
            if (!wait)
                break;
            pthread_cond_wait(&w->cv, &w->mu);
            continue;
        }
        w->head = j->next;
        if (!w->head)
            w->tail = NULL;
        w->count--;
        pthread_mutex_unlock(&w->mu);
        if (j->rc && !w->failed) {
            w->failed = j->rc;
            snprintf(w->failed_msg, sizeof w->failed_msg, "%s", j->err);
        } else if (!j->rc && !w->failed && j->done)
            j->done(j->path, j->step, j->loss, j->user);
        job_free(j);
        pthread_mutex_lock(&w->mu);
    }
    return w->failed;
}

/* rc, with the first failure's message set on this thread when rc is that failure. */
static int report(vqc_writer *w, int rc)
{
    if (rc && rc == w->failed)
        vqc_error_set(rc, "%s", w->failed_msg);
    return rc;
}

int vqc_writer_put(vqc_writer *w, const char *path, vqc_image *img, const char *const *text_kv,
                   vqc_image_callback done, void *user, int step, double loss)
{
    if (w->nthreads == 0) {
        int rc = vqc_image_save(path, img, text_kv);
        vqc_image_free(img);
        if (!rc && done)
            done(path, step, loss, user);
        return rc;
    }
    job *j = calloc(1, sizeof *j);
    int n = 0;
    bool ok = j && (j->path = strdup(path)) != NULL;
    for (; ok && text_kv && text_kv[n] && n < MAX_TEXT; n++)
        ok = (j->text[n] = strdup(text_kv[n])) != NULL;
    if (!ok) {
        job_free(j);
        vqc_image_free(img);
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory writing %s", path);
    }
    j->img = *img;
    memset(img, 0, sizeof *img);
    j->done = done;
    j->user = user;
    j->step = step;
    j->loss = loss;
    pthread_mutex_lock(&w->mu);
    int rc = reap(w, false);
    while (!rc && w->count > w->nthreads + MAX_WAITING - 1) { /* one per thread, two waiting */
        pthread_cond_wait(&w->cv, &w->mu);
        rc = reap(w, false);
    }
    if (rc) {
        pthread_mutex_unlock(&w->mu);
        job_free(j);
        return report(w, rc);
    }
    j->state = JOB_QUEUED;
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    w->count++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* reap, taking the lock, for poll (wait false) and flush (true). */
static int collect(vqc_writer *w, bool wait)
{
    if (w->nthreads == 0)
        return 0;
    pthread_mutex_lock(&w->mu);
    int rc = reap(w, wait);
    pthread_mutex_unlock(&w->mu);
    return report(w, rc);
}

int vqc_writer_poll(vqc_writer *w)
{
    return collect(w, false);
}

int vqc_writer_flush(vqc_writer *w)
{
    return collect(w, true);
}

void vqc_writer_free(vqc_writer *w)
{
    if (!w)
        return;
    if (w->nthreads > 0) {
        vqc_writer_flush(w);
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        for (int i = 0; i < w->nthreads; i++)
            pthread_join(w->threads[i], NULL);
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
    }
    free(w);
}
