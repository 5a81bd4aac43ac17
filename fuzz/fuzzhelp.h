/* Helpers shared by the libFuzzer targets in fuzz/ (see docs/fuzzing.md).
 *
 * Each target defines LLVMFuzzerTestOneInput (and, when it needs setup, LLVMFuzzerInitialize).
 * A target must never abort on bad input: the code under test reports errors by return code;
 * the target only checks invariants the code promises (and ASan/UBSan check the rest). A broken
 * promise calls FUZZ_CHECK's abort(), which libFuzzer reports as a crash with the input. */
#ifndef VQC_FUZZHELP_H
#define VQC_FUZZHELP_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/error.h"

/* Aborts (a finding) with file, line and the condition when `cond` is false. */
#define FUZZ_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* A failure must return a negative code and leave a non-empty, one-line message (messages
 * mask the line breaks of the text they quote; see util/error.h). */
static inline void fuzz_check_error(int rc, const uint8_t *input, size_t size)
{
    (void)input, (void)size;
    if (rc == 0)
        return;
    const char *msg = vqc_error_get();
    FUZZ_CHECK(rc < 0);
    FUZZ_CHECK(msg && *msg);
    FUZZ_CHECK(!strchr(msg, '\n') && !strchr(msg, '\r'));
}

static void fuzz_quiet_log(vqc_log_level level, const char *text, void *user)
{
    (void)level, (void)text, (void)user;
}

/* Silences vqclip's log (warnings about the fuzzed input would flood the output). */
static inline void fuzz_silence(void)
{
    vqc_log_set(fuzz_quiet_log, NULL, VQC_LOG_ERROR + 1);
}

/* A malloc'ed NUL-terminated copy of the input (the caller frees it). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* A per-process scratch directory under $TMPDIR (or /tmp), created on the first call. */
static inline const char *fuzz_tmpdir(void)
{
    static char dir[512];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/vqclip-fuzz-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(dir))
            abort();
    }
    return dir;
}

/* Writes `size` bytes to <scratch dir>/<name> (replacing it) and returns the path, in a static
 * buffer. For code under test that only reads files. */
static inline const char *fuzz_write_file(const char *name, const uint8_t *data, size_t size)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", fuzz_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
        abort();
    return path;
}

/* Path of a fixture file (e.g. "clip/bpe_simple_vocab_16e6.txt.gz"): $VQCLIP_FIXTURES/<rel>, or
 * the checkout's ../shared/fixtures/<rel>. Aborts when it does not exist. */
static inline const char *fuzz_fixture(const char *rel)
{
    static char path[1024];
    const char *dir = getenv("VQCLIP_FIXTURES");
    if (dir && *dir)
        snprintf(path, sizeof path, "%s/%s", dir, rel);
    else
        snprintf(path, sizeof path, "%s/../shared/fixtures/%s", VQCLIP_SOURCE_DIR, rel);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "fuzz: fixture %s not found (set VQCLIP_FIXTURES)\n", path);
        abort();
    }
    return path;
}

#endif
