/* Input images named by URL (-ii/-ip https://...), fetched over libcurl with a time limit and a
 * size cap. Builds configured with -DVQCLIP_URLS=OFF have no libcurl: every fetch then fails
 * with a message saying so. */
#ifndef VQC_IO_FETCH_H
#define VQC_IO_FETCH_H

#include <stdbool.h>
#include <stddef.h>

/* Defaults of the limits, which $VQCLIP_FETCH_TIMEOUT (seconds above 0, may have a fraction, at
 * most 1e6) and $VQCLIP_FETCH_MAX_BYTES (bytes, at least 1) replace; another value set there is
 * an error of every URL. */
#define VQC_FETCH_TIMEOUT_S 60.0
#define VQC_FETCH_MAX_BYTES (64LL << 20)

/* Whether s is a URL this module fetches: it starts with "https://" or "http://" (any case). */
bool vqc_is_url(const char *s);

/* Whether vqc_fetch could try `url` (a path that is no URL passes): 0, or VQC_ERR_USAGE when it
 * is a plain http URL not allowed, this build has no URL support, or a limit in the environment
 * is not one. Touches no network. */
int vqc_fetch_check(const char *src, bool allow_http);

/* Downloads `url` (redirects followed, over https only unless allow_http) into *data (malloc'ed,
 * the caller frees) and *len. Returns 0, or a one-line error: VQC_ERR_USAGE for what
 * vqc_fetch_check refuses, VQC_ERR_IO naming the URL for a failure to resolve, connect or
 * transfer, an HTTP status of 400 or more, a time-out or a body over the cap (VQC_ERR_NOMEM when
 * out of memory). */
int vqc_fetch(const char *url, bool allow_http, unsigned char **data, size_t *len);

#endif
