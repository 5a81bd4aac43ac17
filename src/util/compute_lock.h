/* The library's computations, one at a time in a process (include/vqclip.h, "Threads"):
 * libtorch's CPU thread count, its cuDNN and TF32 switches, its default random generators and
 * the recording of CUDA graphs belong to the whole process, so two generations at once would
 * draw each other's random numbers and could break each other's graph recording. */
#ifndef VQC_UTIL_COMPUTE_LOCK_H
#define VQC_UTIL_COMPUTE_LOCK_H

/* Waits until no other thread is inside a computation, then enters. Recursive: the thread
 * inside may enter again (a callback that calls the library). */
void vqc_compute_begin(void);

/* Leaves what vqc_compute_begin entered. */
void vqc_compute_end(void);

#endif
