/* vqc_fetch (see fetch.h): one libcurl easy transfer into memory, limited in time and size. */
#include "io/fetch.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/error.h"

bool vqc_is_url(const char *s)
{
    return !strncasecmp(s, "https://", 8) || !strncasecmp(s, "http://", 7);
}

#ifdef VQCLIP_HAVE_CURL
static int limits(double *timeout, long long *max);
#endif

int vqc_fetch_check(const char *src, bool allow_http)
{
    if (!vqc_is_url(src))
        return 0;
#ifndef VQCLIP_HAVE_CURL
    (void)allow_http;
    return vqc_error_set(VQC_ERR_USAGE,
                         "%s: this vqclip was built without URL support (libcurl; "
                         "VQCLIP_URLS=OFF): download the image and give its path",
                         src);
#else
    if (strncasecmp(src, "https://", 8) && !allow_http)
        return vqc_error_set(VQC_ERR_USAGE,
                             "%s: plain http is refused (https only, unless http is allowed)", src);
    double timeout;
    long long max;
    return limits(&timeout, &max);
#endif
}

#ifndef VQCLIP_HAVE_CURL

int vqc_fetch(const char *url, bool allow_http, unsigned char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    return vqc_is_url(url) ? vqc_fetch_check(url, allow_http)
                           : vqc_error_set(VQC_ERR_USAGE, "%s: not an http(s) URL", url);
}

#else

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>

/* The limits: the defaults, or the environment's. A value that is not a limit is an error, not
 * the default in silence: a user who set it wants it. */
static int limits(double *timeout, long long *max)
{
    *timeout = VQC_FETCH_TIMEOUT_S;
    *max = VQC_FETCH_MAX_BYTES;
    const char *t = getenv("VQCLIP_FETCH_TIMEOUT"), *m = getenv("VQCLIP_FETCH_MAX_BYTES");
    char *end;
    if (t && *t) {
        double v = strtod(t, &end);
        if (*end || !isfinite(v) || !(v > 0) || v > 1e6)
            return vqc_error_set(VQC_ERR_USAGE,
                                 "VQCLIP_FETCH_TIMEOUT '%.64s': expected seconds above 0", t);
        *timeout = v;
    }
    if (m && *m) {
        errno = 0;
        long long v = strtoll(m, &end, 10);
        if (*end || errno || v < 1)
            return vqc_error_set(VQC_ERR_USAGE,
                                 "VQCLIP_FETCH_MAX_BYTES '%.64s': expected a number of bytes "
                                 "above 0",
                                 m);
        *max = v;
    }
    return 0;
}

typedef struct {
    unsigned char *p;
    size_t n, cap;
    long long max;
    bool too_big, no_memory;
} sink;

static size_t on_data(char *data, size_t size, size_t count, void *user)
{
    sink *s = user;
    size_t n = size * count;
    if ((long long)(s->n + n) > s->max) {
        s->too_big = true;
        return 0; /* ends the transfer with CURLE_WRITE_ERROR */
    }
    if (s->n + n > s->cap) {
        size_t cap = s->cap ? s->cap : 1 << 16;
        while (cap < s->n + n)
            cap *= 2;
        unsigned char *p = realloc(s->p, cap);
        if (!p) {
            s->no_memory = true;
            return 0;
        }
        s->p = p;
        s->cap = cap;
    }
    memcpy(s->p + s->n, data, n);
    s->n += n;
    return n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void init_curl(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* The transfer's options: limits, redirects within the allowed schemes, no signals. */
static void set_options(CURL *c, const char *url, bool allow_http, sink *s, char *err, double t)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(t * 1000));
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)s->max);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "vqclip/" VQCLIP_VERSION);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85 */
    const char *schemes = allow_http ? "https,http" : "https";
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, schemes);
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, schemes);
#else
    long schemes = CURLPROTO_HTTPS | (allow_http ? CURLPROTO_HTTP : 0);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, schemes);
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, schemes);
#endif
}

/* The error of a finished transfer (rc, HTTP status), or 0. */
static int transfer_error(const char *url, CURLcode rc, long status, const sink *s, const char *err,
                          double t)
{
    if (s->no_memory)
        return vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory", url);
    if (s->too_big || rc == CURLE_FILESIZE_EXCEEDED)
        return vqc_error_set(VQC_ERR_IO,
                             "%s: larger than the limit of %lld bytes "
                             "(VQCLIP_FETCH_MAX_BYTES)",
                             url, s->max);
    if (rc == CURLE_OPERATION_TIMEDOUT)
        return vqc_error_set(VQC_ERR_IO, "%s: timed out after %g s (VQCLIP_FETCH_TIMEOUT)", url, t);
    if (rc == CURLE_UNSUPPORTED_PROTOCOL)
        return vqc_error_set(VQC_ERR_USAGE, "%s: a redirect to a scheme not allowed (%s)", url,
                             *err ? err : curl_easy_strerror(rc));
    if (rc != CURLE_OK)
        return vqc_error_set(VQC_ERR_IO, "%s: %s", url, *err ? err : curl_easy_strerror(rc));
    if (status >= 400)
        return vqc_error_set(VQC_ERR_IO, "%s: HTTP status %ld", url, status);
    return 0;
}

int vqc_fetch(const char *url, bool allow_http, unsigned char **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (!vqc_is_url(url))
        return vqc_error_set(VQC_ERR_USAGE, "%s: not an http(s) URL", url);
    int bad = vqc_fetch_check(url, allow_http);
    if (bad)
        return bad;
    double t;
    long long max;
    if ((bad = limits(&t, &max)) != 0)
        return bad;
    pthread_once(&curl_once, init_curl);
    CURL *c = curl_init_rc == CURLE_OK ? curl_easy_init() : NULL;
    if (!c)
        return vqc_error_set(VQC_ERR_NOMEM, "%s: libcurl did not start", url);
    char err[CURL_ERROR_SIZE] = "";
    sink s = {.max = max};
    set_options(c, url, allow_http, &s, err, t);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    int e = transfer_error(url, rc, status, &s, err, t);
    if (e) {
        free(s.p);
        return e;
    }
    *data = s.p ? s.p : malloc(1);
    *len = s.n;
    return *data ? 0 : vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory", url);
}

#endif
