/* scripts/download-models.sh against a web server on 127.0.0.1 (a small Python server that
 * honours byte ranges, so resuming is real): success, --list, unknown names, checksum and size
 * mismatches that leave no file behind, resuming a .part file, a download cut off and resumed,
 * a server without ranges, HTTP errors and HTML pages. Nothing leaves the loopback interface. */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testhelp.h"

static char tmp[4096], www[4200], models[4200], table[4200], script[4096];
static pid_t server = -1;

/* The server: serves www/, answers "Range: bytes=N-" with 206 (416 past the end), logs each
 * request's path and Range to www/../requests.log. Control files in www/: ".noranges" makes
 * it ignore Range (like python3 -m http.server), ".cut" makes it send half of each file and
 * close the connection. It writes its port to the file named by argv[2]. */
static const char *server_py =
    "import http.server, os, re, sys\n"
    "root, portfile = sys.argv[1], sys.argv[2]\n"
    "log = open(os.path.join(root, '..', 'requests.log'), 'a', buffering=1)\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def log_message(self, *a):\n"
    "        pass\n"
    "    def do_GET(self):\n"
    "        rng = self.headers.get('Range') or '-'\n"
    "        log.write('%s %s\\n' % (self.path, rng))\n"
    "        name = os.path.join(root, os.path.basename(self.path.split('?')[0]))\n"
    "        try:\n"
    "            data = open(name, 'rb').read()\n"
    "        except OSError:\n"
    "            self.send_error(404)\n"
    "            return\n"
    "        start, m = 0, re.match(r'bytes=(\\d+)-$', rng)\n"
    "        if m and not os.path.exists(os.path.join(root, '.noranges')):\n"
    "            start = int(m.group(1))\n"
    "            if start >= len(data):\n"
    "                self.send_response(416)\n"
    "                self.send_header('Content-Range', 'bytes */%d' % len(data))\n"
    "                self.send_header('Content-Length', '0')\n"
    "                self.end_headers()\n"
    "                return\n"
    "            self.send_response(206)\n"
    "            self.send_header('Content-Range',\n"
    "                             'bytes %d-%d/%d' % (start, len(data) - 1, len(data)))\n"
    "        else:\n"
    "            self.send_response(200)\n"
    "        self.send_header('Content-Length', str(len(data) - start))\n"
    "        self.end_headers()\n"
    "        if os.path.exists(os.path.join(root, '.cut')):\n"
    "            self.wfile.write(data[start:start + (len(data) - start) // 2])\n"
    "            self.wfile.flush()\n"
    "            self.close_connection = True\n"
    "            return\n"
    "        self.wfile.write(data[start:])\n"
    "srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)\n"
    "with open(portfile + '.tmp', 'w') as f:\n"
    "    f.write(str(srv.server_address[1]))\n"
    "os.rename(portfile + '.tmp', portfile)\n"
    "srv.serve_forever()\n";

static void stop_server(void)
{
    if (server > 0) {
        kill(server, SIGTERM);
        waitpid(server, NULL, 0);
        server = -1;
    }
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0)
        TEST_FAIL("cannot write %s", path);
}

static char *slurp(const char *path, size_t *n)
{
    static char buf[1 << 19];
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[got] = 0;
    if (n)
        *n = got;
    return buf;
}

static int exists(const char *dir, const char *name)
{
    char p[8400];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* Starts the server (bounded to 300 s by timeout(1)) and waits for its port. */
static int start_server(void)
{
    char py[4200], portfile[4200];
    snprintf(py, sizeof py, "%s/server.py", tmp);
    snprintf(portfile, sizeof portfile, "%s/port", tmp);
    write_file(py, server_py, strlen(server_py));
    unlink(portfile);
    server = fork();
    if (server == 0) {
        execlp("timeout", "timeout", "300", "python3", py, www, portfile, (char *)NULL);
        _exit(127);
    }
    atexit(stop_server);
    for (int i = 0; i < 200; i++) { /* 20 s */
        if (access(portfile, F_OK) == 0)
            return atoi(slurp(portfile, NULL));
        if (waitpid(server, NULL, WNOHANG) == server)
            TEST_SKIP("python3 could not start a web server on 127.0.0.1");
        usleep(100000);
    }
    TEST_FAIL("the test web server did not start");
}

/* Runs the script with `args` (bounded to 60 s, no proxies); stdout in tmp/out.txt, stderr in
 * tmp/err.txt. Returns the exit status. */
static int dl(const char *args)
{
    char cmd[32768];
    snprintf(cmd, sizeof cmd,
             "env -u http_proxy -u HTTP_PROXY -u https_proxy -u HTTPS_PROXY -u all_proxy "
             "-u ALL_PROXY VQCLIP_URLS='%s' VQCLIP_CONNECT_TIMEOUT=5 timeout 60 bash '%s' "
             "--dir '%s' %s >'%s/out.txt' 2>'%s/err.txt' </dev/null",
             table, script, models, args, tmp, tmp);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static const char *err_text(void)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/err.txt", tmp);
    return slurp(p, NULL);
}

static void expect_fail(int status, int want, const char *must_contain)
{
    const char *e = err_text();
    if (status != want)
        TEST_FAIL("exit %d, expected %d; stderr: %s", status, want, e);
    if (!strstr(e, "download-models: error: ") || (must_contain && !strstr(e, must_contain)))
        TEST_FAIL("expected an error mentioning '%s', got: %s", must_contain, e);
}

static int requests_with(const char *needle)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/requests.log", tmp);
    int n = 0;
    for (const char *s = slurp(p, NULL); (s = strstr(s, needle)) != NULL; s++)
        n++;
    return n;
}

/* Content of a served file: deterministic bytes (not text, not HTML). */
static void make_blob(unsigned char *b, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)((i * 2654435761u + seed) >> 13);
}

static void sha256_hex(const char *path, char out[65])
{
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
    FILE *p = popen(cmd, "r");
    if (!p || fscanf(p, "%64s", out) != 1)
        TEST_FAIL("sha256sum %s failed", path);
    pclose(p);
}

#define BIG 300000

static void check_same(const char *name, const unsigned char *want, size_t n)
{
    char p[8400];
    size_t got;
    snprintf(p, sizeof p, "%s/%s", models, name);
    const char *data = slurp(p, &got);
    ASSERT_EQ(got, n);
    ASSERT(memcmp(data, want, n) == 0);
    snprintf(p, sizeof p, "%s.part", name);
    ASSERT(!exists(models, p));
}

int main(void)
{
    if (system("command -v curl >/dev/null && command -v python3 >/dev/null") != 0)
        TEST_SKIP("curl or python3 missing");
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir("download"));
    snprintf(www, sizeof www, "%s/www", tmp);
    snprintf(models, sizeof models, "%s/models", tmp);
    snprintf(table, sizeof table, "%s/urls.tsv", tmp);
    /* This file is tests/test-download.c: the script is ../scripts/download-models.sh. */
    snprintf(script, sizeof script, "%s", __FILE__);
    *strrchr(script, '/') = 0;
    *strrchr(script, '/') = 0;
    strcat(script, "/scripts/download-models.sh");
    char cmd[32768];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s/requests.log' && mkdir -p '%s'", www, models,
             tmp, www);
    ASSERT_EQ(system(cmd), 0);

    static unsigned char big[BIG], small[1000];
    make_blob(big, BIG, 1);
    make_blob(small, sizeof small, 7);
    char p[8400], sha_big[65], sha_small[65];
    snprintf(p, sizeof p, "%s/big.bin", www);
    write_file(p, big, BIG);
    sha256_hex(p, sha_big);
    snprintf(p, sizeof p, "%s/small.yaml", www);
    write_file(p, small, sizeof small);
    sha256_hex(p, sha_small);
    snprintf(p, sizeof p, "%s/page.html", www);
    write_file(p, "\n<!DOCTYPE html><html>moved</html>", 34);

    int port = start_server();
    char rows[8192];
    snprintf(rows, sizeof rows,
             "# test table\n"
             "good\tsmall.yaml\thttp://127.0.0.1:%d/small.yaml?dl=1\t%s\t1000\n"
             "good\tbig.bin\thttp://127.0.0.1:%d/big.bin\t%s\t%d\n"
             "Vi-T/1\tVi-T-1.pt\thttp://127.0.0.1:%d/small.yaml\t-\t-\n"
             "badsum\tbadsum.ckpt\thttp://127.0.0.1:%d/small.yaml\t%064d\t1000\n"
             "badsize\tbadsize.ckpt\thttp://127.0.0.1:%d/small.yaml\t-\t999\n"
             "missing\tmissing.ckpt\thttp://127.0.0.1:%d/nothere.ckpt\t-\t-\n"
             "html\thtml.ckpt\thttp://127.0.0.1:%d/page.html\t-\t-\n",
             port, sha_small, port, sha_big, BIG, port, port, 0, port, port, port);
    write_file(table, rows, strlen(rows));

    /* --list works before anything is downloaded; an unknown name fetches nothing. */
    ASSERT_EQ(dl("--list"), 0);
    snprintf(p, sizeof p, "%s/out.txt", tmp);
    ASSERT(strstr(slurp(p, NULL), "big.bin") && strstr(slurp(p, NULL), "300.0 kB"));
    expect_fail(dl("good nosuchmodel"), 1, "unknown model 'nosuchmodel'");
    ASSERT(!exists(models, "small.yaml"));
    expect_fail(dl("--frobnicate good"), 1, "unknown option");

    /* Success: both files of "good", verified, no .part left; a second run keeps them. */
    ASSERT_EQ(dl("good"), 0);
    check_same("small.yaml", small, sizeof small);
    check_same("big.bin", big, BIG);
    ASSERT(!exists(models, "small.yaml.part"));
    ASSERT_EQ(dl("good"), 0);
    ASSERT(strstr(err_text(), "already in"));
    ASSERT_EQ(dl("--list"), 0);
    snprintf(p, sizeof p, "%s/out.txt", tmp);
    ASSERT(strstr(slurp(p, NULL), "present"));
    /* Names are matched as in vqclip: "Vi-T/1", its file stem and its file name. */
    ASSERT_EQ(dl("Vi-T-1"), 0);
    ASSERT(exists(models, "Vi-T-1.pt"));

    /* Checksum or size mismatch: exit 2, neither the file nor a .part remains. */
    expect_fail(dl("badsum"), 2, "SHA-256 mismatch");
    ASSERT(!exists(models, "badsum.ckpt") && !exists(models, "badsum.ckpt.part"));
    expect_fail(dl("badsize"), 2, "expected 999");
    ASSERT(!exists(models, "badsize.ckpt") && !exists(models, "badsize.ckpt.part"));
    expect_fail(dl("missing"), 2, "HTTP 404");
    ASSERT(!exists(models, "missing.ckpt"));
    expect_fail(dl("html"), 2, "HTML page");
    ASSERT(!exists(models, "html.ckpt") && !exists(models, "html.ckpt.part"));
    /* A failure does not stop the other names. */
    snprintf(p, sizeof p, "%s/small.yaml", models);
    unlink(p);
    expect_fail(dl("badsum good"), 2, "SHA-256");
    check_same("small.yaml", small, sizeof small);

    /* Resume of a .part file: only the rest is requested. */
    snprintf(p, sizeof p, "%s/big.bin", models);
    unlink(p);
    snprintf(p, sizeof p, "%s/big.bin.part", models);
    write_file(p, big, 100000);
    ASSERT_EQ(dl("big.bin"), 0);
    check_same("big.bin", big, BIG);
    ASSERT_EQ(requests_with("/big.bin bytes=100000-"), 1);

    /* A download cut off mid-way keeps its .part (no final file); the next run resumes it. */
    snprintf(p, sizeof p, "%s/big.bin", models);
    unlink(p);
    snprintf(p, sizeof p, "%s/.cut", www);
    write_file(p, "", 0);
    expect_fail(dl("big"), 2, "run again to resume");
    ASSERT(!exists(models, "big.bin") && exists(models, "big.bin.part"));
    unlink(p);
    ASSERT_EQ(dl("big"), 0);
    check_same("big.bin", big, BIG);
    ASSERT(requests_with("/big.bin bytes=150000-") >= 1);

    /* A server without ranges: the script starts the file over. A complete .part (416) is
     * accepted after the checks. */
    snprintf(p, sizeof p, "%s/big.bin", models);
    unlink(p);
    snprintf(p, sizeof p, "%s/big.bin.part", models);
    write_file(p, big, 5000);
    snprintf(p, sizeof p, "%s/.noranges", www);
    write_file(p, "", 0);
    ASSERT_EQ(dl("big.bin"), 0);
    check_same("big.bin", big, BIG);
    unlink(p);
    snprintf(p, sizeof p, "%s/Vi-T-1.pt", models);
    unlink(p);
    snprintf(p, sizeof p, "%s/Vi-T-1.pt.part", models);
    write_file(p, small, sizeof small);
    ASSERT_EQ(dl("Vi-T/1"), 0);
    check_same("Vi-T-1.pt", small, sizeof small);

    /* An existing file that fails the checks is reported and left alone. */
    snprintf(p, sizeof p, "%s/small.yaml", models);
    write_file(p, "tampered", 8);
    expect_fail(dl("good"), 2, "remove it");
    ASSERT_EQ(strcmp(slurp(p, NULL), "tampered"), 0);

    /* A broken table is a clear error. */
    write_file(table, "good\tonly-three\tfields\n", 23);
    expect_fail(dl("good"), 2, "urls.tsv:1");
    printf("download: ok\n");
    return 0;
}
