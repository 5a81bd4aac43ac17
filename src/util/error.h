/* Error text and logging for the C side of vqclip.
 *
 * Functions inside the library return 0 on success and a negative code on failure; before
 * returning a failure they record a one-line, human-readable message with vqc_error_set().
 * The CLI prints it as `vqclip: error: <message>`. The message is thread-local. */
#ifndef VQC_UTIL_ERROR_H
#define VQC_UTIL_ERROR_H

#include <stdarg.h>

/* The error codes (VQC_ERR_*) are the public ones of include/vqclip.h. */
#include "vqclip.h"

/* Records the current thread's error message (printf-style) and returns `code`, so that callers
 * can write `return vqc_error_set(VQC_ERR_IO, "cannot open %s", path);`. The message is kept
 * on one line: line breaks and tabs in what it quotes become spaces, other control bytes '?'
 * (vqc_error_wrap and vqc_log do the same). */
int vqc_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefixes the current message with "<prefix>: " (printf-style) and returns `code`: adds
 * context as an error travels up ("loading model.ckpt: truncated entry"). An allocation
 * failure keeps its kind: when the current message was recorded as VQC_ERR_NOMEM, the result
 * is VQC_ERR_NOMEM whatever `code` says, so the caller can advise on memory. */
int vqc_error_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The current thread's last message; never NULL (empty when none). Valid until the next set. */
const char *vqc_error_get(void);

/* The code recorded with the current message (0 when none). A function that returns a generic
 * code after a callee recorded VQC_ERR_NOMEM leaves it here for the caller to see. */
int vqc_error_code(void);

/* Logs a printf-style message to the sink set with vqc_log_set() (include/vqclip.h). */
void vqc_log(vqc_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
