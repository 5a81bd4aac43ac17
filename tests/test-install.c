/* `cmake --install` of this build into a scratch prefix: the binary, the man page, the bash
 * completion, the models README and URL table and the download script land where they should;
 * the man page renders without a groff warning; the completion parses and completes; the
 * installed programs run; and every long option that `vqclip --help` (and each command's
 * --help) prints is documented in the man page and known to the completion. The library: the
 * header, libvqclip.so and vqclip.pc are installed, the library exports vqc_* only, and a small
 * C program built with `cc prog.c $(pkg-config --cflags --libs vqclip)` runs. Last, every
 * spelling in `vqclip --list-options` (the option table) is in the man page and the completion.
 * Each part runs in its own process and reports on its own line; the test fails when one
 * does. */
#include <glob.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testhelp.h"
#include "vqclip.h"

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
    /* its CUDA devices, checked one by one (none here), and whether graphs are built */
    ASSERT(strstr(out_text("out.txt"), "\"checked\":[") &&
           strstr(out_text("out.txt"), "\"graphs_built\":"));
    /* The installed download script finds its URL table without VQCLIP_URLS. */
    ASSERT_EQ(
        sh("env -u VQCLIP_URLS \"%s/bin/vqclip-download-models\" --list --dir \"%s\"", prefix, tmp),
        0);
    ASSERT(strstr(out_text("out.txt"), "ViT-B-32.pt") &&
           strstr(out_text("out.txt"), "vqgan_imagenet_f16_16384.ckpt"));
    free(man_text);
    free(comp_text);
}

/* ---- the library ---------------------------------------------------------------------------- */

static char libdir[8400]; /* PREFIX/lib... holding pkgconfig/vqclip.pc */

/* Finds the one vqclip.pc under PREFIX/lib, lib64 or lib/x86_64-linux-gnu (pkgconfig/). */
static void find_libdir(void)
{
    char pattern[8400];
    glob_t g;
    snprintf(pattern, sizeof pattern, "%s/lib*/pkgconfig/vqclip.pc", prefix);
    int rc = glob(pattern, 0, NULL, &g);
    if (rc != 0 || g.gl_pathc == 0) {
        snprintf(pattern, sizeof pattern, "%s/lib*/*/pkgconfig/vqclip.pc", prefix);
        rc = glob(pattern, 0, NULL, &g);
    }
    if (rc != 0 || g.gl_pathc != 1)
        TEST_FAIL("not installed (once): %s/lib*/pkgconfig/vqclip.pc", prefix);
    snprintf(libdir, sizeof libdir, "%s", g.gl_pathv[0]);
    *strstr(libdir, "/pkgconfig/vqclip.pc") = 0;
    globfree(&g);
}

/* A file under libdir exists (a link is followed). */
static void expect_lib(const char *name)
{
    char p[8800];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", libdir, name);
    if (stat(p, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
        TEST_FAIL("not installed: %s", p);
}

/* The header, the library with its version links, and only vqc_* exported from it; libtorch a
 * NEEDED entry of it. */
static void test_library_layout(void)
{
    expect_installed("include/vqclip.h", 0);
    find_libdir();
    char so[64];
    expect_lib("libvqclip.so");
    snprintf(so, sizeof so, "libvqclip.so.%.*s", (int)strcspn(vqc_version(), "."), vqc_version());
    expect_lib(so); /* the SONAME: the major version */
    snprintf(so, sizeof so, "libvqclip.so.%s", vqc_version());
    expect_lib(so);

    ASSERT_EQ(sh("nm -D --defined-only \"%s/libvqclip.so\"", libdir), 0);
    int exported = 0;
    for (char *line = out_text("out.txt"), *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = 0;
        const char *name = strrchr(line, ' ') ? strrchr(line, ' ') + 1 : line;
        if (strchr(line, ' ') && strstr(line, " A ")) /* version nodes */
            continue;
        if (strncmp(name, "vqc_", 4) != 0)
            TEST_FAIL("libvqclip.so exports %s: only the vqc_* functions of vqclip.h", line);
        exported++;
    }
    ASSERT(exported >= 20);
    ASSERT_EQ(sh("nm -D --defined-only \"%s/libvqclip.so\" | grep -c -w "
                 "-e vqc_init -e vqc_generate -e vqc_log_set",
                 libdir),
              0);
    ASSERT(atoi(out_text("out.txt")) == 3);
    ASSERT_EQ(sh("nm -D --defined-only \"%s/libvqclip.so\" | grep -w -e vqc_log -e vqc_error_get "
                 "-e vqt_init; true",
                 libdir),
              0);
    if (*out_text("out.txt"))
        TEST_FAIL("libvqclip.so exports internal functions: %s", out_text("out.txt"));
    ASSERT_EQ(sh("readelf -d \"%s/libvqclip.so\"", libdir), 0);
    if (!strstr(out_text("out.txt"), "(NEEDED)") || !strstr(out_text("out.txt"), "[libtorch"))
        TEST_FAIL("libvqclip.so does not name libtorch as NEEDED: %s", out_text("out.txt"));
}

static const char *const api_program =
    "#include <stdio.h>\n"
    "#include <vqclip.h>\n"
    "\n"
    "int main(void)\n"
    "{\n"
    "    printf(\"version %s\\n\", vqc_version());\n"
    "    vqc_context_params cp = vqc_context_default_params();\n"
    "    cp.device = \"cpu\";\n"
    "    cp.n_threads = 1;\n"
    "    vqc_context *ctx = NULL;\n"
    "    if (vqc_init(&cp, &ctx) != 0) {\n"
    "        fprintf(stderr, \"init: %s\\n\", vqc_last_error());\n"
    "        return 1;\n"
    "    }\n"
    "    vqc_generate_params gp = vqc_generate_default_params();\n"
    "    gp.prompts = \"a lighthouse at dusk\";\n"
    "    int ok = vqc_generate_check(&gp);\n"
    "    gp.cutn = -1;\n"
    "    int bad = vqc_generate_check(&gp);\n"
    "    printf(\"check %d %d\\n\", ok, bad == VQC_ERR_USAGE);\n"
    "    vqc_free(ctx);\n"
    "    return 0;\n"
    "}\n";

/* pkg-config finds the installed library (its prefix the scratch one), and a program built
 * with `cc prog.c $(pkg-config --cflags --libs vqclip)` links and runs against it. */
static void test_pkg_config(void)
{
    find_libdir();
    char pc_env[8800], real_prefix[4096], got[4096];
    snprintf(pc_env, sizeof pc_env, "PKG_CONFIG_PATH=\"%s/pkgconfig\"", libdir);
    if (sh("command -v pkg-config") != 0)
        TEST_FAIL("pkg-config is needed: apt-get install pkg-config");
    ASSERT_EQ(sh("%s pkg-config --modversion vqclip", pc_env), 0);
    ASSERT_EQ(strcspn(out_text("out.txt"), "\n"), strlen(vqc_version()));
    ASSERT(strncmp(out_text("out.txt"), vqc_version(), strlen(vqc_version())) == 0);
    ASSERT_EQ(sh("%s pkg-config --variable=prefix vqclip", pc_env), 0);
    snprintf(got, sizeof got, "%.*s", (int)strcspn(out_text("out.txt"), "\n"), out_text("out.txt"));
    ASSERT(realpath(prefix, real_prefix));
    char *real_got = realpath(got, NULL);
    if (!real_got || strcmp(real_got, real_prefix) != 0)
        TEST_FAIL("vqclip.pc's prefix is %s, installed into %s", got, prefix);
    free(real_got);
    ASSERT_EQ(sh("%s pkg-config --libs vqclip", pc_env), 0);
    if (!strstr(out_text("out.txt"), "-lvqclip"))
        TEST_FAIL("pkg-config --libs vqclip: %s", out_text("out.txt"));

    char src[4200];
    snprintf(src, sizeof src, "%s/prog.c", tmp);
    FILE *f = fopen(src, "w");
    ASSERT(f && fputs(api_program, f) >= 0 && fclose(f) == 0);
    const char *cc = getenv("VQCLIP_CC"), *flags = getenv("VQCLIP_CC_FLAGS");
    if (sh("cd \"%s\" && export %s && %s %s -std=c11 -Wall -Wextra -Werror prog.c "
           "$(pkg-config --cflags --libs vqclip) "
           "-Wl,-rpath,\"$(pkg-config --variable=libdir vqclip)\" -o prog",
           tmp, pc_env, cc && *cc ? cc : "cc", flags ? flags : "") != 0)
        TEST_FAIL("building prog.c against the installed library failed: %s", out_text("err.txt"));
    ASSERT_EQ(sh("ldd \"%s/prog\"", tmp), 0);
    char *ldd = strstr(out_text("out.txt"), "libvqclip.so");
    if (ldd && strchr(ldd, '\n'))
        *strchr(ldd, '\n') = 0;
    if (!ldd || !strstr(ldd, prefix))
        TEST_FAIL("prog does not load libvqclip.so from %s: %s", libdir, out_text("out.txt"));
    if (sh("env -u LD_LIBRARY_PATH \"%s/prog\"", tmp) != 0)
        TEST_FAIL("prog failed: %s", out_text("err.txt"));
    char want[128];
    snprintf(want, sizeof want, "version %s\ncheck 0 1\n", vqc_version());
    ASSERT_STR_EQ(out_text("out.txt"), want);
}

/* ---- the option table ------------------------------------------------------------------------ */

/* Whether `word` occurs in text and is not the start of a longer option name: not followed by
 * a letter, digit, '_' or '-' (in roff, "\-"). */
static int has_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = text; (p = strstr(p, word)) != NULL; p++) {
        const char *c = p + n;
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '-' || (c[0] == '\\' && c[1] == '-')))
            return 1;
    }
    return 0;
}

/* `vqclip --list-options` prints one line per generate option: its spellings separated by
 * single spaces, a TAB, its batch JSON key or "-", a TAB, its value type word. Every spelling
 * that starts with "--" is in the man page (roff: \-\-name) and the bash completion. */
static void test_list_options(void)
{
    char man[8400], comp[8400];
    snprintf(man, sizeof man, "%s/share/man/man1/vqclip.1", prefix);
    snprintf(comp, sizeof comp, "%s/share/bash-completion/completions/vqclip", prefix);
    char *man_text = strdup(slurp(man)), *comp_text = strdup(slurp(comp));
    int rc = sh("\"%s/bin/vqclip\" --list-options", prefix);
    if (rc != 0)
        TEST_FAIL("vqclip --list-options exited %d (the option table's listing, issue 18): %s", rc,
                  out_text("err.txt"));
    char *list = strdup(out_text("out.txt"));
    int rows = 0, bad = 0;
    for (char *line = list, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            TEST_FAIL("--list-options: the last line has no newline: %s", line);
        *nl = 0;
        rows++;
        char *tab1 = strchr(line, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        if (!tab1 || !tab2 || strchr(tab2 + 1, '\t') || tab1 == line || tab2 == tab1 + 1 ||
            !tab2[1] || line[0] != '-' || tab1[-1] == ' ' || strstr(line, "  ")) {
            fprintf(stderr, "--list-options line %d is not \"SPELLINGS<TAB>KEY<TAB>TYPE\": %s\n",
                    rows, line);
            bad++;
            continue;
        }
        *tab1 = 0;
        for (const char *t = tab2 + 1; *t; t++)
            if (!((*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9') || *t == '_'))
                TEST_FAIL("--list-options line %d: type '%s' is not a word", rows, tab2 + 1);
        for (char *sp = strtok(line, " "); sp; sp = strtok(NULL, " ")) {
            if (sp[0] != '-')
                TEST_FAIL("--list-options line %d: spelling '%s' does not start with '-'", rows,
                          sp);
            if (sp[1] != '-')
                continue;
            char roff[256];
            size_t r = 0;
            for (const char *c = sp; *c && r < sizeof roff - 3; c++) {
                if (*c == '-')
                    roff[r++] = '\\';
                roff[r++] = *c;
            }
            roff[r] = 0;
            if (!has_word(man_text, roff)) {
                fprintf(stderr, "%s (vqclip --list-options) is not in doc/vqclip.1\n", sp);
                bad++;
            }
            if (!has_word(comp_text, sp)) {
                fprintf(stderr, "%s (vqclip --list-options) is not in completions/vqclip.bash\n",
                        sp);
                bad++;
            }
        }
    }
    if (rows < 20)
        TEST_FAIL("vqclip --list-options printed %d line(s)", rows);
    if (bad)
        TEST_FAIL("vqclip --list-options: %d problem(s), listed above", bad);
    free(list);
    free(man_text);
    free(comp_text);
}

/* Runs one part in a child process, so that a failing part does not hide the others; prints
 * "install: PART: ok" or "... FAILED" and returns 0 or 1. */
static int part(const char *name, void (*fn)(void))
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        TEST_FAIL("fork failed");
    if (pid == 0) {
        fn();
        fflush(stdout);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    printf("install: %s: %s\n", name, ok ? "ok" : "FAILED");
    fflush(stdout);
    return !ok;
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* each line as it comes, also under ctest */
    const char *bin = getenv("VQCLIP_BIN");
    if (!bin || !*bin)
        TEST_FAIL("VQCLIP_BIN is not set (run through ctest)");
    snprintf(build, sizeof build, "%s", bin);
    *strrchr(build, '/') = 0; /* the vqclip binary sits at the top of its build folder */
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir("install"));
    snprintf(prefix, sizeof prefix, "%s/prefix", tmp);
    int failed = part("layout", test_layout);
    failed += part("man page", test_man_page);
    failed += part("completion", test_completion);
    failed += part("programs and docs", test_programs_and_docs);
    failed += part("library and header", test_library_layout);
    failed += part("pkg-config program", test_pkg_config);
    /* last: needs the option table's --list-options (issue 18) */
    failed += part("--list-options in man page and completion", test_list_options);
    if (failed)
        printf("install: %d part(s) failed\n", failed);
    else
        printf("install: ok\n");
    return failed ? 1 : 0;
}
