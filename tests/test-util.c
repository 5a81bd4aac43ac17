/* The helpers of src/util that exist once: the string buffer (appends, JSON string literals, a
 * failure that sticks), the atomic file write (pieces, the mode a new file gets, write-through
 * of devices, failures that leave the old file and no temporary file behind) and the developer
 * switches (a value not listed is warned about once and counts as unset). */
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testhelp.h"
#include "util/atomic_file.h"
#include "util/env.h"
#include "util/error.h"
#include "util/strbuf.h"

static char dir[4096];

static const char *path_in_dir(const char *name)
{
    static char buf[2][4400];
    static int next;
    char *p = buf[next++ % 2];
    snprintf(p, 4400, "%s/%s", dir, name);
    return p;
}

/* The file's bytes as a NUL-terminated string (it must exist). */
static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ASSERT(f);
    char *b = malloc(1 << 20);
    ASSERT(b);
    *n = fread(b, 1, (1 << 20) - 1, f);
    b[*n] = '\0';
    fclose(f);
    return b;
}

static void write_raw(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ASSERT(f && fputs(text, f) >= 0);
    ASSERT_EQ(fclose(f), 0);
}

/* No temporary file (".NAME.XXXXXX") or probe may be left in the directory. */
static void assert_no_temp_files(void)
{
    DIR *d = opendir(dir);
    ASSERT(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            TEST_FAIL("temporary file left behind: %s", e->d_name);
    closedir(d);
}

/* ---- the string buffer ------------------------------------------------------------------ */

static void test_strbuf_appends(void)
{
    vqc_strbuf b = {0};
    ASSERT_OK(vqc_strbuf_put(&b, NULL, 0));
    ASSERT(b.p && b.n == 0 && b.p[0] == '\0'); /* an empty append still makes a string */
    ASSERT_OK(vqc_strbuf_puts(&b, "size="));
    ASSERT_OK(vqc_strbuf_printf(&b, "%dx%d", 512, 256));
    ASSERT_OK(vqc_strbuf_put(&b, "\0tail", 5)); /* any bytes */
    ASSERT_EQ(b.n, 5 + 7 + 5);
    ASSERT_STR_EQ(b.p, "size=512x256");
    ASSERT(memcmp(b.p + 12, "\0tail", 6) == 0);
    vqc_strbuf_clear(&b);
    ASSERT(b.n == 0 && b.p[0] == '\0');
    for (int i = 0; i < 10000; i++) /* growth keeps what was there */
        ASSERT_OK(vqc_strbuf_printf(&b, "%04d", i));
    ASSERT_EQ(b.n, 40000);
    ASSERT(memcmp(b.p + 4 * 1234, "1234", 4) == 0 && b.p[b.n] == '\0');
    vqc_strbuf_free(&b);
    ASSERT(b.p == NULL && b.n == 0 && b.cap == 0);
}

static void test_strbuf_json(void)
{
    vqc_strbuf b = {0};
    ASSERT_OK(vqc_strbuf_json(&b, ""));
    ASSERT_STR_EQ(b.p, "\"\"");
    vqc_strbuf_clear(&b);
    ASSERT_OK(vqc_strbuf_json(&b, "a\"b\\c\nd\x01\x1f\x7f caf\xc3\xa9/"));
    ASSERT_STR_EQ(b.p, "\"a\\\"b\\\\c\\u000ad\\u0001\\u001f\x7f caf\xc3\xa9/\"");
    vqc_strbuf_free(&b);
}

/* A failed append leaves the contents, sets `failed`, and makes later appends fail until the
 * buffer is cleared. */
static void test_strbuf_failure_sticks(void)
{
    vqc_strbuf b = {0};
    ASSERT_OK(vqc_strbuf_puts(&b, "kept"));
    ASSERT_EQ(vqc_strbuf_put(&b, "x", SIZE_MAX - 2), VQC_ERR_NOMEM);
    ASSERT(b.failed && *vqc_error_get());
    ASSERT_STR_EQ(b.p, "kept");
    ASSERT_EQ(vqc_strbuf_puts(&b, "more"), VQC_ERR_NOMEM);
    ASSERT_EQ(vqc_strbuf_printf(&b, "%d", 1), VQC_ERR_NOMEM);
    ASSERT_EQ(vqc_strbuf_json(&b, "s"), VQC_ERR_NOMEM);
    ASSERT_STR_EQ(b.p, "kept");
    vqc_strbuf_clear(&b);
    ASSERT(!b.failed);
    ASSERT_OK(vqc_strbuf_puts(&b, "again"));
    ASSERT_STR_EQ(b.p, "again");
    vqc_strbuf_free(&b);
}

/* ---- atomic writes ---------------------------------------------------------------------- */

static void test_atomic_write(void)
{
    const char *path = path_in_dir("out.txt");
    vqc_bytes parts[4] = {{"head", 4}, {NULL, 0}, {"-", 1}, {"tail", 4}};
    mode_t old = umask(027);
    ASSERT_OK(vqc_write_file_atomic(path, parts, 4));
    umask(old);
    size_t n;
    char *got = slurp(path, &n);
    ASSERT_STR_EQ(got, "head-tail");
    free(got);
    struct stat st;
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ(st.st_mode & 0777, 0640); /* 0666 less the umask, as a plain new file */
    /* Replacing an existing file; a bare name is written in the current directory. */
    ASSERT_OK(vqc_write_file_atomic(path, parts, 1));
    got = slurp(path, &n);
    ASSERT_STR_EQ(got, "head");
    free(got);
    ASSERT_EQ(chdir(dir), 0);
    ASSERT_OK(vqc_write_file_atomic("bare.txt", parts + 2, 2));
    got = slurp(path_in_dir("bare.txt"), &n);
    ASSERT_STR_EQ(got, "-tail");
    free(got);
    unlink(path_in_dir("bare.txt"));
    unlink(path);
    assert_no_temp_files();
}

/* A device is written through, never replaced. */
static void test_atomic_device(void)
{
    vqc_bytes part = {"x", 1};
    ASSERT_OK(vqc_write_file_atomic("/dev/null", &part, 1));
    struct stat st;
    ASSERT_EQ(stat("/dev/null", &st), 0);
    ASSERT(S_ISCHR(st.st_mode));
    ASSERT_OK(vqc_check_writable("/dev/null"));
}

static void expect_untouched(const char *path, const char *text)
{
    size_t n;
    char *got = slurp(path, &n);
    ASSERT_STR_EQ(got, text);
    free(got);
}

static void test_atomic_failures(void)
{
    vqc_bytes part = {"new", 3};
    char missing[4500];
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.txt", dir);
    ASSERT_EQ(vqc_write_file_atomic(missing, &part, 1), VQC_ERR_IO);
    ASSERT(strstr(vqc_error_get(), missing));
    ASSERT_EQ(vqc_check_writable(missing), VQC_ERR_IO);

    /* The rename fails (a directory in the way): the directory stays, no temporary file. */
    const char *sub = path_in_dir("sub");
    mkdir(sub, 0755);
    char inner[4500];
    snprintf(inner, sizeof inner, "%s/keep.txt", sub);
    write_raw(inner, "precious");
    ASSERT_EQ(vqc_write_file_atomic(sub, &part, 1), VQC_ERR_IO);
    ASSERT_EQ(vqc_check_writable(sub), VQC_ERR_IO);
    expect_untouched(inner, "precious");
    assert_no_temp_files();

    /* A write that runs out of room (the file size limit, as a full disk): the old file stays. */
    const char *path = path_in_dir("keep.txt");
    write_raw(path, "precious");
    static char big[1 << 16];
    memset(big, 'b', sizeof big);
    vqc_bytes large[2] = {{"x", 1}, {big, sizeof big}};
    struct rlimit lim, small;
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &lim), 0);
    small = lim;
    small.rlim_cur = 4096;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = vqc_write_file_atomic(path, large, 2);
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
    signal(SIGXFSZ, prev);
    ASSERT_EQ(rc, VQC_ERR_IO);
    ASSERT(strstr(vqc_error_get(), path) && !strchr(vqc_error_get(), '\n'));
    expect_untouched(path, "precious");
    assert_no_temp_files();

    ASSERT_OK(vqc_check_writable(path)); /* an existing file: fine, and not touched */
    expect_untouched(path, "precious");
    assert_no_temp_files();
    unlink(path);
    unlink(inner);
    rmdir(sub);
}

/* The warnings the log sink was given, and the last one's text. */
static int warnings;
static char last_warning[512];

static void count_warnings(vqc_log_level level, const char *text, void *user)
{
    (void)user;
    if (level == VQC_LOG_WARN) {
        warnings++;
        snprintf(last_warning, sizeof last_warning, "%s", text);
    }
}

static void test_env_switches(void)
{
    static const char *const values[] = {"0", "1", "all", NULL};
    vqc_log_set(count_warnings, NULL, VQC_LOG_DEBUG);
    unsetenv("VQCLIP_TEST_SWITCH");
    ASSERT_EQ(vqc_env_choice("VQCLIP_TEST_SWITCH", values), -1);
    setenv("VQCLIP_TEST_SWITCH", "", 1);
    ASSERT_EQ(vqc_env_choice("VQCLIP_TEST_SWITCH", values), -1);
    setenv("VQCLIP_TEST_SWITCH", "all", 1);
    ASSERT_EQ(vqc_env_choice("VQCLIP_TEST_SWITCH", values), 2);
    setenv("VQCLIP_TEST_SWITCH", "0", 1);
    ASSERT_EQ(vqc_env_choice("VQCLIP_TEST_SWITCH", values), 0);
    ASSERT_EQ(warnings, 0);
    /* a misspelt value: the default, said once with the valid values, not again */
    setenv("VQCLIP_TEST_SWITCH", "All", 1);
    ASSERT_EQ(vqc_env_choice("VQCLIP_TEST_SWITCH", values), -1);
    ASSERT_EQ(warnings, 1);
    ASSERT(strstr(last_warning, "VQCLIP_TEST_SWITCH='All' is not one of 0, 1, all: ignored"));
    ASSERT_EQ(vqc_env_choice("VQCLIP_TEST_SWITCH", values), -1);
    ASSERT_EQ(warnings, 1);
    /* counts: in range, out of range, not a number, trailing text */
    setenv("VQCLIP_TEST_COUNT", "25", 1);
    ASSERT_EQ(vqc_env_count("VQCLIP_TEST_COUNT", 1, 1000, 0), 25);
    ASSERT_EQ(warnings, 1);
    const char *bad[] = {"0", "1001", "x", "25rows", "99999999999999999999"};
    static char names[5][64]; /* kept for the process, as the contract asks */
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(names[i], sizeof names[i], "VQCLIP_TEST_COUNT_%zu", i);
        setenv(names[i], bad[i], 1);
        ASSERT_EQ(vqc_env_count(names[i], 1, 1000, 7), 7);
        ASSERT_EQ(warnings, 2 + (int)i);
        ASSERT(strstr(last_warning, "is not a whole number from 1 to 1000: ignored"));
    }
    unsetenv("VQCLIP_TEST_COUNT");
    ASSERT_EQ(vqc_env_count("VQCLIP_TEST_COUNT", 1, 1000, 3), 3);
    vqc_log_set(NULL, NULL, VQC_LOG_INFO);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s", test_tmpdir("util"));
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'/* '%s'/.[!.]*", dir, dir);
    ASSERT_EQ(system(cmd), 0);
    test_strbuf_appends();
    test_strbuf_json();
    test_strbuf_failure_sticks();
    test_atomic_write();
    test_atomic_device();
    test_atomic_failures();
    test_env_switches();
    fprintf(stderr, "test-util: ok\n");
    return 0;
}
