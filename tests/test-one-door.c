/* One door between the command line and the library (issue 18): src/cli reaches the library
 * through include/vqclip.h alone. Fails, with one line per violation, when
 *   - a file in src/cli includes anything but <vqclip.h> ("vqclip.h"), its own "cli/..."
 *     headers, libc/POSIX headers, <stb/...> and <cjson/cJSON.h>;
 *   - an object file of the CLI (CMake's OBJECT library vqclip_cli, listed in
 *     $VQCLIP_CLI_OBJECTS) leaves undefined a symbol starting with vqt_ (the shim), one starting
 *     with vqc_ that include/vqclip.h does not declare VQC_API, or any other symbol that the
 *     library ($VQCLIP_CORE_LIB) defines and the header does not declare. Symbols the CLI's
 *     own objects define are its own business.
 * ctest passes VQCLIP_SOURCE_DIR, VQCLIP_CLI_OBJECTS, VQCLIP_CORE_LIB and VQCLIP_NM. */
#include <ctype.h>
#include <dirent.h>
#include <stdbool.h>

#include "testhelp.h"

/* ---- names ------------------------------------------------------------------------------- */

typedef struct {
    char **v;
    size_t n, cap;
} names;

static void names_add(names *s, const char *name, size_t len)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->v = realloc(s->v, s->cap * sizeof *s->v);
        ASSERT(s->v);
    }
    s->v[s->n] = strndup(name, len);
    ASSERT(s->v[s->n]);
    s->n++;
}

static bool names_has(const names *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], name) == 0)
            return true;
    return false;
}

static void names_free(names *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

static bool is_ident(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* The functions include/vqclip.h declares VQC_API: for each VQC_API outside comments and
 * preprocessor lines, the identifier just before the next '('. */
static void public_names(const char *header, names *out)
{
    char *text = read_file(header, NULL);
    for (char *p = text; *p; p++) { /* comments and preprocessor lines become blanks */
        if (p[0] == '/' && p[1] == '*') {
            char *end = strstr(p + 2, "*/");
            end = end ? end + 2 : p + strlen(p);
            memset(p, ' ', (size_t)(end - p));
            p = end - 1;
        } else if (p[0] == '/' && p[1] == '/') {
            while (*p && *p != '\n')
                *p++ = ' ';
            p--;
        } else if (*p == '#' && (p == text || p[-1] == '\n')) {
            char prev = 0;
            while (*p && !(*p == '\n' && prev != '\\')) {
                prev = *p;
                *p++ = ' ';
            }
            p--;
        }
    }
    for (char *p = text; (p = strstr(p, "VQC_API")) != NULL; p += 7) {
        if ((p > text && is_ident(p[-1])) || is_ident(p[7]))
            continue;
        char *paren = strchr(p, '(');
        if (!paren)
            break;
        char *end = paren;
        while (end > p && isspace((unsigned char)end[-1]))
            end--;
        char *start = end;
        while (start > p && is_ident(start[-1]))
            start--;
        if (start < end)
            names_add(out, start, (size_t)(end - start));
    }
    free(text);
}

/* ---- includes ---------------------------------------------------------------------------- */

/* C11's headers, POSIX.1-2017's, and the few glibc ones a command line uses. */
static const char *const system_headers[] = {
    "assert.h", "complex.h", "ctype.h", "errno.h", "fenv.h", "float.h", "inttypes.h", "iso646.h",
    "limits.h", "locale.h", "math.h", "setjmp.h", "signal.h", "stdalign.h", "stdarg.h",
    "stdatomic.h", "stdbool.h", "stddef.h", "stdint.h", "stdio.h", "stdlib.h", "stdnoreturn.h",
    "string.h", "tgmath.h", "threads.h", "time.h", "uchar.h", "wchar.h", "wctype.h",
    /* POSIX */
    "aio.h", "arpa/inet.h", "cpio.h", "dirent.h", "dlfcn.h", "fcntl.h", "fmtmsg.h", "fnmatch.h",
    "ftw.h", "glob.h", "grp.h", "iconv.h", "langinfo.h", "libgen.h", "monetary.h", "mqueue.h",
    "ndbm.h", "net/if.h", "netdb.h", "netinet/in.h", "netinet/tcp.h", "nl_types.h", "poll.h",
    "pthread.h", "pwd.h", "regex.h", "sched.h", "search.h", "semaphore.h", "spawn.h", "strings.h",
    "sys/ipc.h", "sys/mman.h", "sys/msg.h", "sys/resource.h", "sys/select.h", "sys/sem.h",
    "sys/shm.h", "sys/socket.h", "sys/stat.h", "sys/statvfs.h", "sys/time.h", "sys/times.h",
    "sys/types.h", "sys/uio.h", "sys/un.h", "sys/utsname.h", "sys/wait.h", "syslog.h", "tar.h",
    "termios.h", "ulimit.h", "unistd.h", "utime.h", "utmpx.h", "wordexp.h",
    /* glibc */
    "getopt.h", "sys/ioctl.h", "sys/sysinfo.h", "malloc.h", "endian.h", "err.h", "alloca.h",
    "sys/random.h", "sys/file.h"};

/* Why `#include <name>` / `#include "name"` is not allowed in src/cli, or NULL when it is. */
static const char *include_violation(char open, const char *name)
{
    if (strcmp(name, "vqclip.h") == 0)
        return NULL;
    if (open == '"')
        return strncmp(name, "cli/", 4) == 0 && !strstr(name, "..")
                   ? NULL
                   : "a quoted include other than \"vqclip.h\" and \"cli/...\"";
    if ((strncmp(name, "stb/", 4) == 0 && !strstr(name, "..")) ||
        strcmp(name, "cjson/cJSON.h") == 0)
        return NULL;
    for (size_t i = 0; i < sizeof system_headers / sizeof *system_headers; i++)
        if (strcmp(name, system_headers[i]) == 0)
            return NULL;
    return "not <vqclip.h>, libc/POSIX, <stb/...> or <cjson/cJSON.h>";
}

/* Checks the #include lines of one file; returns the number of violations (printed). */
static int check_includes(const char *path, const char *shown)
{
    char *text = read_file(path, NULL);
    int bad = 0, line = 1;
    for (char *p = text; *p; line++) {
        char *eol = strchr(p, '\n');
        if (eol)
            *eol = 0;
        char *q = p;
        while (isspace((unsigned char)*q))
            q++;
        if (*q == '#') {
            q++;
            while (isspace((unsigned char)*q))
                q++;
            if (strncmp(q, "include", 7) == 0) {
                q += 7;
                while (isspace((unsigned char)*q))
                    q++;
                char open = *q, close = open == '<' ? '>' : open == '"' ? '"' : 0;
                char *end = close ? strchr(q + 1, close) : NULL;
                char name[512] = "";
                if (end && end - q - 1 < (long)sizeof name)
                    snprintf(name, sizeof name, "%.*s", (int)(end - q - 1), q + 1);
                const char *why =
                    *name ? include_violation(open, name) : "an include that is not a file name";
                if (why) {
                    printf("%s:%d: includes %s: %s\n", shown, line, *name ? q : p, why);
                    bad++;
                }
            }
        }
        p = eol ? eol + 1 : p + strlen(p);
    }
    free(text);
    return bad;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int check_cli_includes(const char *src)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/src/cli", src);
    DIR *d = opendir(dir);
    if (!d)
        TEST_FAIL("cannot list %s", dir);
    names files = {0};
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t n = strlen(e->d_name);
        if (n > 2 && e->d_name[n - 2] == '.' &&
            (e->d_name[n - 1] == 'c' || e->d_name[n - 1] == 'h'))
            names_add(&files, e->d_name, n);
    }
    closedir(d);
    if (files.n < 2)
        TEST_FAIL("no C files found in %s", dir);
    qsort(files.v, files.n, sizeof *files.v, cmp_str);
    int bad = 0;
    for (size_t i = 0; i < files.n; i++) {
        char path[8400], shown[600];
        snprintf(path, sizeof path, "%s/%s", dir, files.v[i]);
        snprintf(shown, sizeof shown, "src/cli/%s", files.v[i]);
        bad += check_includes(path, shown);
    }
    names_free(&files);
    return bad;
}

/* ---- symbols ----------------------------------------------------------------------------- */

/* Adds the symbols `nm OPTIONS FILE` lists (POSIX format: the name comes first). */
static void nm_symbols(const char *nm, const char *options, const char *file, names *out)
{
    char cmd[8400], line[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s -P '%s'", nm, options, file);
    FILE *p = popen(cmd, "r");
    if (!p)
        TEST_FAIL("cannot run %s", cmd);
    while (fgets(line, sizeof line, p)) {
        size_t n = strcspn(line, " \n");
        if (n > 0 && line[n - 1] != ':') /* "archive[member.o]:" headers */
            names_add(out, line, n);
    }
    if (pclose(p) != 0)
        TEST_FAIL("%s failed", cmd);
}

static int check_cli_symbols(const names *objects, const names *public, const char *nm,
                             const char *core)
{
    names library = {0}, cli_defined = {0};
    nm_symbols(nm, "-g --defined-only", core, &library);
    for (size_t i = 0; i < objects->n; i++)
        nm_symbols(nm, "-g --defined-only", objects->v[i], &cli_defined);
    if (!names_has(&library, "vqc_init") || !names_has(&library, "vqt_init"))
        TEST_FAIL("%s does not define vqc_init and vqt_init: not the library?", core);
    int bad = 0;
    for (size_t i = 0; i < objects->n; i++) {
        names undefined = {0};
        nm_symbols(nm, "-u", objects->v[i], &undefined);
        const char *obj = strrchr(objects->v[i], '/') ? strrchr(objects->v[i], '/') + 1 : "";
        for (size_t k = 0; k < undefined.n; k++) {
            const char *s = undefined.v[k], *why = NULL;
            if (names_has(public, s) || names_has(&cli_defined, s))
                continue;
            if (strncmp(s, "vqt_", 4) == 0)
                why = "a shim function (vqt_)";
            else if (strncmp(s, "vqc_", 4) == 0)
                why = "a vqc_ function that include/vqclip.h does not declare VQC_API";
            else if (names_has(&library, s))
                why = "an internal symbol of the library";
            if (why) {
                printf("src/cli/%s uses %s: %s\n", obj, s, why);
                bad++;
            }
        }
        names_free(&undefined);
    }
    names_free(&library);
    names_free(&cli_defined);
    return bad;
}

static const char *need_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        TEST_FAIL("%s is not set (run through ctest)", name);
    return v;
}

int main(void)
{
    const char *src = need_env("VQCLIP_SOURCE_DIR"), *list = need_env("VQCLIP_CLI_OBJECTS");
    const char *core = need_env("VQCLIP_CORE_LIB"), *nm = need_env("VQCLIP_NM");

    char header[4200];
    snprintf(header, sizeof header, "%s/include/vqclip.h", src);
    names public = {0};
    public_names(header, &public);
    if (public.n < 20 || !names_has(&public, "vqc_init") || !names_has(&public, "vqc_generate") ||
        !names_has(&public, "vqc_log_set") || names_has(&public, "VQC_API"))
        TEST_FAIL("reading the VQC_API functions of %s went wrong (%zu found)", header, public.n);

    names objects = {0};
    char *text = read_file(list, NULL);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (*line)
            names_add(&objects, line, strlen(line));
    free(text);
    if (objects.n < 2)
        TEST_FAIL("%s lists %zu object files", list, objects.n);

    int bad = check_cli_includes(src);
    bad += check_cli_symbols(&objects, &public, nm, core);
    printf("one door: %zu public functions, %zu CLI object files, %d violation(s)\n", public.n,
           objects.n, bad);
    names_free(&public);
    names_free(&objects);
    return bad ? 1 : 0;
}
