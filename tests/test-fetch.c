/* Input images by URL (io/fetch.c, vqc_image_open): against a small HTTP server this test runs
 * on 127.0.0.1 (forked, one process per connection): an image fetched and decoded, and a
 * one-line error for each failure (HTTP status, too big, too slow, not an image, refused
 * connection, plain http not allowed, TLS to a plain server, a limit in the environment that is
 * not one); the command line refuses http without --allow-http and fetches before the models
 * load. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/fetch.h"
#include "io/image.h"
#include "testhelp.h"
#include "vqclip.h"

static int port;
static pid_t server;
static unsigned char *png;
static size_t png_len;

/* ---- the server ------------------------------------------------------------------------- */

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w <= 0)
            return;
        c += w;
        n -= (size_t)w;
    }
}

static void reply(int fd, const char *status, const char *extra, const void *body, size_t n)
{
    char head[512];
    int l =
        snprintf(head, sizeof head, "HTTP/1.1 %s\r\n%sConnection: close\r\n\r\n", status, extra);
    send_all(fd, head, (size_t)l);
    send_all(fd, body, n);
}

/* One request: GET PATH, answered by path. */
static void serve(int fd)
{
    char req[4096] = "", path[256] = "";
    size_t n = 0;
    while (n < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
        ssize_t r = read(fd, req + n, sizeof req - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        req[n] = 0;
    }
    sscanf(req, "GET %255s", path);
    char len[64];
    static char zeros[1 << 16];
    if (!strcmp(path, "/ok.png")) {
        snprintf(len, sizeof len, "Content-Length: %zu\r\n", png_len);
        reply(fd, "200 OK", len, png, png_len);
    } else if (!strcmp(path, "/text")) {
        reply(fd, "200 OK", "Content-Length: 19\r\n", "hello, not an image", 19);
    } else if (!strcmp(path, "/big")) { /* the size announced */
        reply(fd, "200 OK", "Content-Length: 1048576\r\n", NULL, 0);
        for (int i = 0; i < 16; i++)
            send_all(fd, zeros, sizeof zeros);
    } else if (!strcmp(path, "/stream")) { /* no size announced: the cap stops it */
        reply(fd, "200 OK", "", NULL, 0);
        for (int i = 0; i < 16; i++)
            send_all(fd, zeros, sizeof zeros);
    } else if (!strcmp(path, "/slow")) {
        sleep(6);
        reply(fd, "200 OK", "Content-Length: 0\r\n", NULL, 0);
    } else {
        reply(fd, "404 Not Found", "Content-Length: 9\r\n", "not found", 9);
    }
}

static void start_server(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ASSERT_EQ(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ASSERT_EQ(listen(s, 16), 0);
    socklen_t al = sizeof a;
    ASSERT_EQ(getsockname(s, (struct sockaddr *)&a, &al), 0);
    port = ntohs(a.sin_port);
    server = fork();
    ASSERT(server >= 0);
    if (server == 0) {
        setpgid(0, 0);
        signal(SIGCHLD, SIG_IGN); /* no zombies */
        signal(SIGPIPE, SIG_IGN); /* a client that hangs up */
        alarm(300);               /* never outlive a stuck test */
        for (;;) {
            int c = accept(s, NULL, NULL);
            if (c < 0)
                continue;
            if (fork() == 0) {
                serve(c);
                close(c);
                _exit(0);
            }
            close(c);
        }
    }
    close(s);
}

static void stop_server(void)
{
    kill(-server, SIGKILL);
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
}

/* A port nothing listens on: bound, then closed. */
static int closed_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    ASSERT_EQ(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    ASSERT_EQ(getsockname(s, (struct sockaddr *)&a, &al), 0);
    close(s);
    return ntohs(a.sin_port);
}

/* ---- the tests -------------------------------------------------------------------------- */

static const char *url(const char *scheme, const char *path)
{
    static char buf[4][256];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s://127.0.0.1:%d%s", scheme, port, path);
    return b;
}

/* vqc_image_open(u) fails with `code` and one line that mentions `what`. */
static void expect_fail(const char *u, bool allow_http, int code, const char *what)
{
    vqc_image img;
    int rc = vqc_image_open(u, allow_http, &img);
    const char *e = vqc_error_get();
    if (rc != code || !strstr(e, what) || strchr(e, '\n'))
        TEST_FAIL("%s: rc %d (want %d), error '%s' (want '%s')", u, rc, code, e, what);
    ASSERT(img.rgb == NULL);
}

static void test_fetch(void)
{
    vqc_image img;
    ASSERT_OK(vqc_image_open(url("http", "/ok.png"), true, &img));
    ASSERT_EQ(img.w, 20);
    ASSERT_EQ(img.h, 12);
    vqc_image_free(&img);
    ASSERT(vqc_is_url("HTTPS://x/y.png") && !vqc_is_url("/tmp/http://x.png"));
    expect_fail(url("http", "/ok.png"), false, VQC_ERR_USAGE, "plain http");
    expect_fail(url("http", "/missing.png"), true, VQC_ERR_IO, "404");
    expect_fail(url("http", "/big"), true, VQC_ERR_IO, "limit of 100000 bytes");
    expect_fail(url("http", "/stream"), true, VQC_ERR_IO, "limit of 100000 bytes");
    expect_fail(url("http", "/text"), true, VQC_ERR_FORMAT, "not a readable image");
    expect_fail(url("https", "/ok.png"), false, VQC_ERR_IO, url("https", "/ok.png"));
    char refused[128];
    snprintf(refused, sizeof refused, "http://127.0.0.1:%d/x.png", closed_port());
    expect_fail(refused, true, VQC_ERR_IO, "127.0.0.1");
    double t0 = vqc_now();
    expect_fail(url("http", "/slow"), true, VQC_ERR_IO, "timed out");
    ASSERT(vqc_now() - t0 < 5); /* the 1.5 s limit, not the server's 6 s */
}

/* A limit in the environment that is not one fails every URL, before any transfer, and names
 * the variable; a path is not affected. */
static void test_bad_limits(void)
{
    const char *bad_timeout[] = {"abc", "0", "-1", "nan", "inf", "10s"};
    for (size_t i = 0; i < sizeof bad_timeout / sizeof bad_timeout[0]; i++) {
        setenv("VQCLIP_FETCH_TIMEOUT", bad_timeout[i], 1);
        ASSERT_EQ(vqc_fetch_check(url("https", "/ok.png"), false), VQC_ERR_USAGE);
        ASSERT(strstr(vqc_error_get(), "VQCLIP_FETCH_TIMEOUT"));
        expect_fail(url("http", "/ok.png"), true, VQC_ERR_USAGE, "expected seconds above 0");
        ASSERT_OK(vqc_fetch_check("ok.png", false));
    }
    setenv("VQCLIP_FETCH_TIMEOUT", "1.5", 1);
    const char *bad_max[] = {"1G", "0", "-5", "99999999999999999999", " "};
    for (size_t i = 0; i < sizeof bad_max / sizeof bad_max[0]; i++) {
        setenv("VQCLIP_FETCH_MAX_BYTES", bad_max[i], 1);
        expect_fail(url("http", "/ok.png"), true, VQC_ERR_USAGE, "VQCLIP_FETCH_MAX_BYTES");
    }
    setenv("VQCLIP_FETCH_MAX_BYTES", "100000", 1);
    vqc_image img;
    ASSERT_OK(vqc_image_open(url("http", "/ok.png"), true, &img));
    vqc_image_free(&img);
}

/* The command line: http refused without --allow-http, and a URL fetched (and failing) before
 * the models load (the models named here do not exist). */
static void test_cli(void)
{
    const char *bin = getenv("VQCLIP_BIN");
    if (!bin) {
        fprintf(stderr, "test-fetch: VQCLIP_BIN not set, command line not tested\n");
        return;
    }
    const char *dir = test_tmpdir("fetch");
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' -p cat -ii '%s' --vqgan /nope.ckpt -o x.png 2>err1.txt; "
             "test $? -eq 1 && grep -q -- --allow-http err1.txt && test $(wc -l <err1.txt) -eq 1",
             dir, bin, url("http", "/ok.png"));
    ASSERT_EQ(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && '%s' -p cat -ip '%s:0.5' --allow-http --vqgan /nope.ckpt -o x.png "
             "2>err2.txt; test $? -eq 2 && grep -q 'HTTP status 404' err2.txt && "
             "! grep -q nope.ckpt err2.txt && test ! -e x.png",
             dir, bin, url("http", "/missing.png"));
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof cmd, "cat '%s/err2.txt' >&2", dir);
        system(cmd);
        TEST_FAIL("a 404 image prompt should fail before the models load");
    }
}

int main(void)
{
#ifndef VQCLIP_HAVE_CURL
    ASSERT_EQ(vqc_fetch_check("https://example.org/a.png", false), VQC_ERR_USAGE);
    ASSERT(strstr(vqc_error_get(), "without URL support"));
    ASSERT_OK(vqc_fetch_check("a.png", false));
    fprintf(stderr, "test-fetch: ok (built without URL support)\n");
    return 0;
#endif
    vqc_image img = {20, 12, calloc(20 * 12 * 3, sizeof(float))};
    const char *dir = test_tmpdir("fetch");
    char path[4096];
    snprintf(path, sizeof path, "%s/ok.png", dir);
    ASSERT_OK(vqc_image_save_png(path, &img, NULL));
    vqc_image_free(&img);
    FILE *f = fopen(path, "rb");
    png = malloc(1 << 16);
    png_len = fread(png, 1, 1 << 16, f);
    fclose(f);
    setenv("VQCLIP_FETCH_TIMEOUT", "1.5", 1);
    setenv("VQCLIP_FETCH_MAX_BYTES", "100000", 1);
    start_server();
    test_fetch();
    test_bad_limits();
    test_cli();
    stop_server();
    free(png);
    fprintf(stderr, "test-fetch: ok\n");
    return 0;
}
