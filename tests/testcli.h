/* Helpers for tests that drive the real vqclip binary ($VQCLIP_BIN) as scripts do: run it
 * with a command line, read what it printed, check the one-line error contract. */
#ifndef VQC_TESTCLI_H
#define VQC_TESTCLI_H

#include <stdarg.h>
#include <sys/wait.h>

#include "testhelp.h"

static const char *cli_bin;      /* the binary */
static const char *cli_tmp;      /* the test's scratch folder; commands run there */
static const char *cli_env = ""; /* "NAME=value ..." put before the binary */

/* Sets cli_bin and cli_tmp (a fresh, empty folder tmp/<name>), and writes the options that
 * select the tiny fixture models into models. Skips the test without $VQCLIP_BIN. */
static inline void cli_setup(const char *name, char *models, size_t len)
{
    cli_bin = getenv("VQCLIP_BIN");
    if (!cli_bin)
        TEST_SKIP("VQCLIP_BIN is not set");
    cli_tmp = test_tmpdir(name);
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'/* '%s'/.[!.]*", cli_tmp, cli_tmp);
    ASSERT_EQ(system(cmd), 0);
    snprintf(models, len, "--vqgan '%s' --clip '%s' --bpe '%s'", fixture_path("vqgan/tiny_vq.ckpt"),
             fixture_path("clip/tiny_vit.pt"), fixture_path("clip/bpe_simple_vocab_16e6.txt.gz"));
}

/* Runs `cd tmp && ENV vqclip ARGS >out.txt 2>err.txt`; returns the exit status (128 + N for
 * a signal). */
static inline int cli_run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int cli_run(const char *fmt, ...)
{
    char args[6000], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s %s %s >out.txt 2>err.txt", cli_tmp, cli_env, cli_bin,
             args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The contents of tmp/name (static buffer, truncated at 64 KiB). */
static inline const char *cli_slurp(const char *name)
{
    static char buf[1 << 16];
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", cli_tmp, name);
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return buf;
}

/* Writes text to tmp/name. */
static inline void cli_write_file(const char *name, const char *text)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", cli_tmp, name);
    FILE *f = fopen(path, "w");
    ASSERT(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* The run (`what` names it) exited 0; otherwise fails with its status and stderr. Returns the
 * run's stderr (cli_slurp's buffer). */
static inline const char *cli_expect_ok(int status, const char *what)
{
    const char *err = cli_slurp("err.txt");
    if (status != 0)
        TEST_FAIL("%s failed (%d): %s", what, status, err);
    return err;
}

/* The run exited with `want` and stderr holds exactly one line "vqclip: error: ..." (which
 * mentions must_contain, unless NULL). */
static inline void cli_expect_error(int status, int want, const char *must_contain)
{
    const char *err = cli_slurp("err.txt");
    if (status != want)
        TEST_FAIL("exit %d, expected %d; stderr: %s", status, want, err);
    const char *line = strstr(err, "vqclip: error: ");
    if (!line || strchr(line, '\n') != line + strlen(line) - 1)
        TEST_FAIL("expected one 'vqclip: error:' line, got: %s", err);
    if (must_contain && !strstr(line, must_contain))
        TEST_FAIL("error should mention '%s': %s", must_contain, line);
}

#endif
