/* The shim-error bridge (see torch_error.h). */
#include "util/torch_error.h"

#include <stdarg.h>
#include <stdio.h>

#include "util/error.h"

static int fail_v(const char *fmt, va_list ap)
{
    char context[512];
    vsnprintf(context, sizeof context, fmt, ap);
    return vqc_error_set(vqt_last_error_oom() ? VQC_ERR_NOMEM : VQC_ERR_RUNTIME, "%s: %s", context,
                         vqt_last_error());
}

int vqc_torch_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = fail_v(fmt, ap);
    va_end(ap);
    return rc;
}

vqt_tensor *vqc_torch_scope_end(vqt_tensor *t, const char *fmt, ...)
{
    vqt_tensor *kept = vqt_keep(t);
    vqt_scope_end();
    if (!kept) {
        va_list ap;
        va_start(ap, fmt);
        fail_v(fmt, ap);
        va_end(ap);
    }
    return kept;
}
