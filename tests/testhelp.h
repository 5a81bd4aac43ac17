/* Minimal test macros in the libuv style: each failing check prints file, line and both values,
 * then the test exits 1. A test that cannot run (missing fixtures) exits 77, which ctest reports
 * as skipped (and CI counts as a failure). */
#ifndef VQC_TESTHELP_H
#define VQC_TESTHELP_H

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/error.h"

/* Seconds since the first call (the test's start, when its first part is announced). */
static inline double test_elapsed(void)
{
    static double t0 = -1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double t = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    if (t0 < 0)
        t0 = t;
    return t - t0;
}

/* Runs one part of a long test and says so on stderr first, with the time since the test began:
 * a test that ctest stops at its timeout then shows where it stood (stderr is unbuffered). */
#define TEST_PART(call)                                             \
    do {                                                            \
        fprintf(stderr, "  [%6.1f s] %s\n", test_elapsed(), #call); \
        call;                                                       \
    } while (0)

/* 1 in an AddressSanitizer build (which cannot run under an address-space limit). */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* What the library logged since test_log_clear(), one message a line, while test_log_sink is
 * its sink (vqc_log_set(test_log_sink, NULL, LEVEL)); what does not fit is dropped. */
#define TEST_LOG_BYTES 8192
static inline char *test_log(void)
{
    static char text[TEST_LOG_BYTES];
    return text;
}

static inline void test_log_clear(void)
{
    test_log()[0] = 0;
}

static inline void test_log_sink(vqc_log_level level, const char *msg, void *user)
{
    (void)level, (void)user;
    char *text = test_log();
    size_t n = strlen(text);
    snprintf(text + n, TEST_LOG_BYTES - n, "%s\n", msg);
}

#define TEST_FAIL(...)                                  \
    do {                                                \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                   \
        fprintf(stderr, "\n");                          \
        exit(1);                                        \
    } while (0)

#define ASSERT(cond)                                  \
    do {                                              \
        if (!(cond))                                  \
            TEST_FAIL("assertion failed: %s", #cond); \
    } while (0)

#define ASSERT_EQ(a, b)                                                 \
    do {                                                                \
        long long a_ = (long long)(a), b_ = (long long)(b);             \
        if (a_ != b_)                                                   \
            TEST_FAIL("%s == %s failed: %lld != %lld", #a, #b, a_, b_); \
    } while (0)

#define ASSERT_NE(a, b)                                          \
    do {                                                         \
        long long a_ = (long long)(a), b_ = (long long)(b);      \
        if (a_ == b_)                                            \
            TEST_FAIL("%s != %s failed: both %lld", #a, #b, a_); \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                            \
    do {                                                                               \
        const char *a_ = (a), *b_ = (b);                                               \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                         \
            TEST_FAIL("%s == %s failed: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", \
                      b_ ? b_ : "(null)");                                             \
    } while (0)

#define ASSERT_NEAR(a, b, tol)                                                                \
    do {                                                                                      \
        double a_ = (double)(a), b_ = (double)(b);                                            \
        if (!(fabs(a_ - b_) <= (tol)))                                                        \
            TEST_FAIL("|%s - %s| <= %g failed: %.9g vs %.9g", #a, #b, (double)(tol), a_, b_); \
    } while (0)

/* Calls `expr` (returning 0 / negative) and fails with the library's error text on failure. */
#define ASSERT_OK(expr)                                                   \
    do {                                                                  \
        int rc_ = (expr);                                                 \
        if (rc_ != 0)                                                     \
            TEST_FAIL("%s returned %d: %s", #expr, rc_, vqc_error_get()); \
    } while (0)

#define TEST_SKIP(...)                \
    do {                              \
        fprintf(stderr, "SKIP: ");    \
        fprintf(stderr, __VA_ARGS__); \
        fprintf(stderr, "\n");        \
        exit(77);                     \
    } while (0)

/* The fixtures folder, read when the test runs: $VQCLIP_FIXTURES when set, so that
 * `VQCLIP_FIXTURES=DIR ctest` uses DIR, else $VQCLIP_FIXTURES_DEFAULT (the folder CMake knew at
 * configure time); NULL when neither is set. */
static inline const char *fixture_dir(void)
{
    const char *dir = getenv("VQCLIP_FIXTURES");
    if (!dir || !*dir)
        dir = getenv("VQCLIP_FIXTURES_DEFAULT");
    return dir && *dir ? dir : NULL;
}

/* The whole file at path, malloc'ed and NUL-terminated (its length in *n unless n is NULL);
 * fails the test when it cannot be read. */
static inline char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        TEST_FAIL("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (!b || fread(b, 1, (size_t)len, f) != (size_t)len)
        TEST_FAIL("cannot read %s", path);
    fclose(f);
    b[len] = 0;
    if (n)
        *n = (size_t)len;
    return b;
}

/* Path of a fixture file ("vqgan/tiny_vq.ckpt") under fixture_dir(), in a static buffer; skips
 * the test (exit 77) when the folder or file is missing. */
static inline const char *fixture_path(const char *rel)
{
    static char buf[8][4096];
    static int next;
    const char *dir = fixture_dir();
    if (!dir)
        TEST_SKIP("VQCLIP_FIXTURES is not set");
    char *p = buf[next++ % 8];
    snprintf(p, 4096, "%s/%s", dir, rel);
    FILE *f = fopen(p, "rb");
    if (!f)
        TEST_SKIP("fixture %s not found", p);
    fclose(f);
    return p;
}

/* A scratch directory for this test ($VQCLIP_TMP/<name>, created), in a static buffer. */
static inline const char *test_tmpdir(const char *name)
{
    static char buf[4096];
    const char *base = getenv("VQCLIP_TMP");
    snprintf(buf, sizeof buf, "%s/%s", base && *base ? base : "/tmp/vqclip-test", name);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", buf);
    if (system(cmd) != 0)
        TEST_FAIL("cannot create %s", buf);
    return buf;
}

#endif
