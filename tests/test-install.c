/* `cmake --install` of this build into a scratch prefix: the binary, the man page, the bash
 * completion, the models README and URL table and the download script land where they should;
 * the man page renders without a groff warning; the completion parses and completes; the
 * installed programs run; and every long option that `vqclip --help` (and each command's
 * --help) prints is documented in the man page and known to the completion. */
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testhelp.h"

static char build[4096], prefix[4200], tmp[4096];

/* Runs a shell command (bounded by timeout(1)) with stdout in tmp/out.txt and stderr in
 * tmp/err.txt; returns its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char body[12000], cmd[24576];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "timeout 120 sh -c '%s' >'%s/out.txt' 2>'%s/err.txt' </dev/null",
             body, tmp, tmp);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *path)
{
    static char bufs[3][1 << 18];
    static int next;
    char *buf = bufs[next++ % 3];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, sizeof bufs[0] - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return buf;
}

static char *out_text(const char *name)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", tmp, name);
    return slurp(p);
}

static void expect_installed(const char *rel, int exec)
{
    char p[8400];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", prefix, rel);
    if (stat(p, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
        TEST_FAIL("not installed: %s", p);
    if (exec && !(st.st_mode & S_IXUSR))
        TEST_FAIL("not executable: %s", p);
}

static void test_layout(void)
{
    ASSERT_EQ(sh("rm -rf \"%s\" && cmake --install \"%s\" --prefix \"%s\"", prefix, build, prefix),
              0);
    expect_installed("bin/vqclip", 1);
    expect_installed("bin/vqclip-download-models", 1);
    expect_installed("share/man/man1/vqclip.1", 0);
    expect_installed("share/bash-completion/completions/vqclip", 0);
    expect_installed("share/vqclip/models/README.md", 0);
    expect_installed("share/vqclip/models/urls.tsv", 0);
    /* the demo set, which vqclip falls back to when no model is downloaded */
    expect_installed("share/vqclip/models/demo/vqgan_demo.ckpt", 0);
    expect_installed("share/vqclip/models/demo/vqgan_demo.yaml", 0);
    expect_installed("share/vqclip/models/demo/clip_demo.safetensors", 0);
    expect_installed("share/vqclip/models/demo/vocab.json", 0);
    expect_installed("share/vqclip/models/demo/merges.txt", 0);
    expect_installed("share/vqclip/models/demo/README.md", 0);
}

/* The man page renders with every groff warning on (-ww) and man-db's check, silently. */
static void test_man_page(void)
{
    if (sh("command -v groff") != 0)
        TEST_FAIL("groff is needed to check the man page: apt-get install groff-base");
    ASSERT_EQ(sh("groff -man -ww -z \"%s/share/man/man1/vqclip.1\"", prefix), 0);
    if (*out_text("err.txt"))
        TEST_FAIL("groff warnings: %s", out_text("err.txt"));
    if (sh("command -v man") == 0) {
        ASSERT_EQ(sh("LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l \"%s/share/man/man1/vqclip.1\"",
                     prefix),
                  0);
        if (*out_text("err.txt"))
            TEST_FAIL("man --warnings: %s", out_text("err.txt"));
        ASSERT(strstr(out_text("out.txt"), "EXIT STATUS"));
    }
}

/* bash -n, then the completion function itself on a few command lines. */
static void test_completion(void)
{
    char comp[8400];
    snprintf(comp, sizeof comp, "%s/share/bash-completion/completions/vqclip", prefix);
    ASSERT_EQ(sh("bash -n \"%s\"", comp), 0);
    ASSERT_EQ(sh("bash -c \"source \\\"%s\\\"; "
                 "t() { COMP_WORDS=(\\\"\\$@\\\"); COMP_CWORD=\\$((\\$# - 1)); _vqclip; "
                 "echo \\\"\\${COMPREPLY[*]}\\\"; }; "
                 "t vqclip do; t vqclip --device c; t vqclip -opt RA; t vqclip -aug Af,P; "
                 "t vqclip doctor --n\"",
                 comp),
              0);
    const char *o = out_text("out.txt");
    ASSERT(strstr(o, "doctor\n") && strstr(o, "cpu cuda cuda:0\n") && strstr(o, "RAdam\n"));
    ASSERT(strstr(o, "Af,Pe\n") && strstr(o, "--no-bench\n"));
}

/* Every "--option" in `vqclip [CMD] --help` appears in the man page (roff: \-\-option) and in
 * the completion, so the hand-written files cannot fall behind the program silently. */
static void check_options_documented(const char *help, const char *man, const char *comp)
{
    for (const char *p = help; (p = strstr(p, "--")) != NULL;) {
        int starts_word = p == help || p[-1] == ' ' || p[-1] == '\n' || p[-1] == '(' ||
                          p[-1] == ',' || p[-1] == '[' || p[-1] == '\'';
        size_t n = 0;
        p += 2;
        while (p[n] == '-' || (p[n] >= 'a' && p[n] <= 'z'))
            n++;
        const char *opt = p;
        p += n;
        if (!starts_word || n < 2 || n > 40 || *p == '_')
            continue; /* "--" alone, or a peer spelling with '_' */
        char roff[200] = "\\-\\-", plain[64];
        size_t r = strlen(roff);
        for (size_t i = 0; i < n; i++) { /* roff writes '-' as "\\-" */
            if (opt[i] == '-')
                roff[r++] = '\\';
            roff[r++] = opt[i];
        }
        roff[r] = 0;
        snprintf(plain, sizeof plain, "--%.*s", (int)n, opt);
        if (!strstr(man, roff))
            TEST_FAIL("%s is in vqclip's --help but not in doc/vqclip.1", plain);
        if (strcmp(plain, "--version") != 0 && !strstr(comp, plain))
            TEST_FAIL("%s is in vqclip's --help but not in completions/vqclip.bash", plain);
    }
}

static void test_programs_and_docs(void)
{
    char man[8400], comp[8400];
    snprintf(man, sizeof man, "%s/share/man/man1/vqclip.1", prefix);
    snprintf(comp, sizeof comp, "%s/share/bash-completion/completions/vqclip", prefix);
    char *man_text = strdup(slurp(man)), *comp_text = strdup(slurp(comp));
    ASSERT_EQ(sh("\"%s/bin/vqclip\" --version", prefix), 0);
    ASSERT(strstr(out_text("out.txt"), "vqclip "));
    ASSERT_EQ(sh("\"%s/bin/vqclip\" --help", prefix), 0);
    check_options_documented(out_text("out.txt"), man_text, comp_text);
    if (!strstr(out_text("out.txt"), "  doctor "))
        TEST_FAIL("vqclip --help lists no 'doctor' command: register cmd_doctor in the command "
                  "table of src/cli/main.c");
    static const char *const cmds[] = {"reconstruct", "info", "tokenize", "score", "doctor"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        ASSERT_EQ(sh("\"%s/bin/vqclip\" %s --help", prefix, cmds[i]), 0);
        check_options_documented(out_text("out.txt"), man_text, comp_text);
        char roff[64];
        snprintf(roff, sizeof roff, ".B %s ", cmds[i]);
        if (!strstr(man_text, roff))
            TEST_FAIL("command %s is not described in doc/vqclip.1", cmds[i]);
    }
    /* The installed doctor runs (no speed measurement: other tests share the CPU). */
    ASSERT_EQ(sh("VQCLIP_MODELS=\"%s/share/vqclip/models\" \"%s/bin/vqclip\" doctor --json "
                 "--no-bench",
                 prefix, prefix),
              0);
    ASSERT(strstr(out_text("out.txt"), "\"libtorch\":") &&
           strstr(out_text("out.txt"), "\"matmul_ok\":true"));
    /* The installed download script finds its URL table without VQCLIP_URLS. */
    ASSERT_EQ(
        sh("env -u VQCLIP_URLS \"%s/bin/vqclip-download-models\" --list --dir \"%s\"", prefix, tmp),
        0);
    ASSERT(strstr(out_text("out.txt"), "ViT-B-32.pt") &&
           strstr(out_text("out.txt"), "vqgan_imagenet_f16_16384.ckpt"));
    free(man_text);
    free(comp_text);
}

int main(void)
{
    const char *bin = getenv("VQCLIP_BIN");
    if (!bin || !*bin)
        TEST_FAIL("VQCLIP_BIN is not set (run through ctest)");
    snprintf(build, sizeof build, "%s", bin);
    *strrchr(build, '/') = 0; /* the vqclip binary sits at the top of its build folder */
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir("install"));
    snprintf(prefix, sizeof prefix, "%s/prefix", tmp);
    test_layout();
    test_man_page();
    test_completion();
    test_programs_and_docs();
    printf("install: ok\n");
    return 0;
}
