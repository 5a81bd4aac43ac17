#include "util/error.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char err_buf[1024];
static _Thread_local int err_code;

/* Keeps a message on one line whatever text it quotes (a prompt, a JSON key, a file's bytes):
 * line breaks and tabs become spaces, other control bytes '?'. */
static void one_line(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
        else if (*p < 0x20 || *p == 0x7f)
            *p = '?';
}

int vqc_error_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    one_line(err_buf);
    err_code = code;
    return code;
}

int vqc_error_wrap(int code, const char *fmt, ...)
{
    char prefix[512], old[sizeof err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err_buf, sizeof old);
    snprintf(err_buf, sizeof err_buf, "%.500s: %.520s", prefix, old);
    one_line(err_buf);
    if (err_code == VQC_ERR_NOMEM) /* the caller's generic code must not hide it */
        code = VQC_ERR_NOMEM;
    err_code = code;
    return code;
}

int vqc_error_code(void)
{
    return err_code;
}

const char *vqc_error_get(void)
{
    return err_buf;
}

static vqc_log_callback log_cb;
static void *log_user;
static vqc_log_level log_threshold = VQC_LOG_INFO;

void vqc_log_set(vqc_log_callback cb, void *user, vqc_log_level threshold)
{
    log_cb = cb;
    log_user = user;
    log_threshold = threshold;
}

void vqc_log(vqc_log_level level, const char *fmt, ...)
{
    if (level < log_threshold)
        return;
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    one_line(text);
    if (log_cb) {
        log_cb(level, text, log_user);
        return;
    }
    const char *tag = level == VQC_LOG_WARN ? "warning: " : level == VQC_LOG_ERROR ? "error: " : "";
    fprintf(stderr, "vqclip: %s%s\n", tag, text);
}
