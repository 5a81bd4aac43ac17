/* The run's picture writer (writer.h): a FIFO of at most two waiting images, one background
 * thread that writes them in order, and the callbacks run on the owner's thread in that order.
 * One thread, not several: the same path (the output, at every snapshot) must be renamed into
 * place in the order it was written, and one thread keeps every file's order without more. */
#include "gen/writer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define MAX_WAITING 2
#define MAX_TEXT 16 /* key/value strings a job keeps (write_image passes up to 8) */

typedef enum { JOB_QUEUED, JOB_WRITING, JOB_DONE } job_state;

typedef struct job {
    struct job *next;
    job_state state;
    char *path;
    vqc_image img;
    char *text[MAX_TEXT + 1];
    vqc_image_callback done;
    void *user;
    int step;
    double loss;
    int rc;         /* the write's result, once JOB_DONE */
    char err[1024]; /* its message: the error text is per thread */
} job;

struct vqc_writer {
    bool async;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a job queued, a job done, or stop */
    job *head, *tail;  /* oldest first; the owner removes jobs, the thread marks them */
    int count;         /* jobs in the list */
    bool stop;
    bool broken; /* a write failed: the thread skips the jobs after it */
    int failed;  /* the first error reported to the owner (later callbacks are skipped) */
    char failed_msg[1024];
};

static void job_free(job *j)
{
    if (!j)
        return;
    free(j->path);
    vqc_image_free(&j->img);
    for (int i = 0; i < MAX_TEXT && j->text[i]; i++)
        free(j->text[i]);
    free(j);
}

static void job_write(job *j)
{
    j->rc = vqc_image_save(j->path, &j->img, (const char *const *)j->text);
    if (j->rc)
        snprintf(j->err, sizeof j->err, "%s", vqc_error_get());
    vqc_image_free(&j->img); /* the memory goes back before the callback, not after */
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
        if (w->broken) { /* as in place: nothing is written after a failure */
            j->rc = VQC_ERR_IO;
            snprintf(j->err, sizeof j->err, "not written after an earlier failure: %s", j->path);
            j->state = JOB_DONE;
            pthread_cond_broadcast(&w->cv);
            continue;
        }
        j->state = JOB_WRITING;
        pthread_mutex_unlock(&w->mu);
        job_write(j);
        pthread_mutex_lock(&w->mu);
        if (j->rc)
            w->broken = true;
        j->state = JOB_DONE;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

bool vqc_writer_async_default(bool cuda)
{
    const char *v = getenv("VQCLIP_ASYNC_WRITES");
    if (v && !strcmp(v, "0"))
        return false;
    if (v && !strcmp(v, "1"))
        return true;
    return cuda;
}

vqc_writer *vqc_writer_new(bool async)
{
    vqc_writer *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->async = async;
    if (!async)
        return w;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, worker, w) != 0) {
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
    if (!w->async) {
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
    while (!rc && w->count > MAX_WAITING) { /* the one being written and two waiting */
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
    if (!w->async)
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
    if (w->async) {
        vqc_writer_flush(w);
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
    }
    free(w);
}
