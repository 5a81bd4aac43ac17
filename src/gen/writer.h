/* Writing a run's pictures (snapshots, frames) off the loop's thread: encoding a 512x512 PNG
 * takes as long as one or two GPU steps, so on CUDA background threads encode (several at once,
 * so that a frame every step keeps up) and write while the next steps run. The files, their
 * bytes and the callbacks' order are those of writing in place; only when the callbacks run
 * moves (up to the writer's queue later). */
#ifndef VQC_GEN_WRITER_H
#define VQC_GEN_WRITER_H

#include <stdbool.h>

#include "io/image.h"
#include "vqclip.h"

typedef struct vqc_writer vqc_writer;

/* threads for vqc_writer_new: one fewer than the CPUs this process may use, from 1 to 4. */
#define VQC_WRITER_AUTO (-1)

/* A writer with `threads` background threads (VQC_WRITER_AUTO, or 1 to 4) that encode at the
 * same time and write one picture at a time in order, or with 0 one that writes within
 * vqc_writer_put (the CPU's default: the steps there take seconds, and its cores belong to
 * libtorch). Returns NULL when out of memory or when no thread can start (the caller then
 * writes in place). */
vqc_writer *vqc_writer_new(int threads);

/* Whether a run writes off its thread: on CUDA, unless VQCLIP_ASYNC_WRITES=0; on the CPU only
 * with VQCLIP_ASYNC_WRITES=1 (for tests). */
bool vqc_writer_async_default(bool cuda);

/* Writes img to path (vqc_image_save, atomically) with the text chunks text_kv (NULL-ended
 * key/value pairs, copied), then calls done(path, step, loss, user) if done is not NULL, on
 * the caller's thread: for the images in the order they were put, from this or a later put,
 * poll or flush. img is taken over (zeroed here; the writer frees it). Besides one image per
 * thread, at most two wait; a put beyond that waits for the oldest to be written. Returns 0, or the
 * error of this image (in place) or of the first earlier image that failed (its message set on this
 * thread); after an error no later callback runs. */
int vqc_writer_put(vqc_writer *w, const char *path, vqc_image *img, const char *const *text_kv,
                   vqc_image_callback done, void *user, int step, double loss);

/* Runs the callbacks of the images written so far, without waiting. Returns the first error,
 * as vqc_writer_put. */
int vqc_writer_poll(vqc_writer *w);

/* Waits until every image is written and its callback has run. Returns the first error. */
int vqc_writer_flush(vqc_writer *w);

/* Flushes (its error is lost: flush first to see it), stops the thread and frees the writer. */
void vqc_writer_free(vqc_writer *w);

#endif
