/* Keyframed schedules (see schedule.h). */
#include "gen/schedule.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "util/error.h"

/* Spaces and tabs only: a schedule is one line (of the run's settings, too). */
static const char *blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

int vqc_schedule_parse(const char *text, const char *what, vqc_schedule *out)
{
    out->n = 0;
    const char *p = blanks(text ? text : "");
    if (!*p)
        return vqc_error_set(VQC_ERR_USAGE, "%s: empty schedule; expected 'FRAME:(VALUE), ...'",
                             what);
    while (*p) {
        const char *start = p;
        char *end;
        errno = 0;
        long frame = strtol(p, &end, 10);
        p = blanks(end);
        bool ok = end != start && isdigit((unsigned char)*start) && errno == 0 &&
                  frame <= 100000000 && *p == ':';
        double v = 0;
        if (ok) {
            p = blanks(p + 1);
            bool paren = *p == '(';
            p = blanks(p + paren);
            const char *vs = p;
            v = strtod(vs, &end);
            p = blanks(end);
            ok = end != vs && isfinite(v) && (!paren || *p == ')');
            p = blanks(p + (ok && paren));
        }
        if (ok && out->n > 0 && frame <= out->frame[out->n - 1])
            return vqc_error_set(VQC_ERR_USAGE,
                                 "%s: frame %ld after frame %.0f; keys go in "
                                 "increasing frame order",
                                 what, frame, out->frame[out->n - 1]);
        if (!ok || (*p && *p != ','))
            return vqc_error_set(VQC_ERR_USAGE,
                                 "%s: cannot read '%.24s'; expected 'FRAME:(VALUE), ...', e.g. "
                                 "'0:(1.0), 60:(1.05)'",
                                 what, start);
        if (out->n == VQC_SCHEDULE_MAX_KEYS)
            return vqc_error_set(VQC_ERR_USAGE, "%s: more than %d keys", what,
                                 VQC_SCHEDULE_MAX_KEYS);
        out->frame[out->n] = (double)frame;
        out->value[out->n++] = v;
        if (*p == ',') {
            p = blanks(p + 1);
            if (!*p)
                return vqc_error_set(VQC_ERR_USAGE, "%s: a ',' with no key after it", what);
        }
    }
    return 0;
}

double vqc_schedule_at(const vqc_schedule *s, double frame)
{
    if (s->n == 0)
        return 0;
    if (frame <= s->frame[0])
        return s->value[0];
    for (int i = 1; i < s->n; i++)
        if (frame <= s->frame[i]) {
            double t = (frame - s->frame[i - 1]) / (s->frame[i] - s->frame[i - 1]);
            return s->value[i - 1] + t * (s->value[i] - s->value[i - 1]);
        }
    return s->value[s->n - 1];
}
