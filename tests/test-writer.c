/* The run's picture writer (src/gen/writer.c): off the caller's thread it writes the same
 * bytes as in place, runs the callbacks on the caller's thread in the order the pictures were
 * put, keeps a path's last picture last, bounds what waits, and after a failure reports the
 * first error's message, writes nothing more and calls no further callback. */
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gen/writer.h"
#include "testhelp.h"

static char dir[512];
static pthread_t owner;

typedef struct {
    int n;
    int steps[64];
    char paths[64][600];
} calls_t;

static void record(const char *path, int step, double loss, void *user)
{
    calls_t *c = user;
    ASSERT(pthread_equal(pthread_self(), owner)); /* the caller's thread */
    ASSERT(c->n < 64);
    ASSERT_NEAR(loss, step * 0.5, 0);
    c->steps[c->n] = step;
    snprintf(c->paths[c->n], sizeof c->paths[0], "%s", path);
    c->n++;
}

/* A w x h picture that differs with k. */
static vqc_image picture(int k, int w, int h)
{
    vqc_image img = {.w = w, .h = h, .rgb = malloc((size_t)w * h * 3 * sizeof(float))};
    ASSERT(img.rgb);
    for (int i = 0; i < w * h * 3; i++)
        img.rgb[i] = (float)((i * 7 + k * 13) % 256) / 255.0f;
    return img;
}

static void assert_same_file(const char *a, const char *b)
{
    size_t na, nb;
    char *x = read_file(a, &na), *y = read_file(b, &nb);
    if (na != nb || memcmp(x, y, na) != 0)
        TEST_FAIL("%s and %s differ", a, b);
    free(x);
    free(y);
}

static const char *meta[] = {"parameters", "-p test", "vqclip:step", "1", NULL};

/* Twelve pictures, every third also to one shared path and larger (slower to encode than the
 * next ones, which other threads may finish first): the same files as in place, the callbacks
 * in order on this thread, and the shared path holding the last of its pictures. */
static void check_order(int threads)
{
    calls_t got = {0}, want = {0};
    vqc_writer *a = vqc_writer_new(threads), *s = vqc_writer_new(0);
    ASSERT(a && s);
    char pa[600], ps[600], shared_a[600], shared_s[600];
    snprintf(shared_a, sizeof shared_a, "%s/shared-async.png", dir);
    snprintf(shared_s, sizeof shared_s, "%s/shared-inplace.png", dir);
    for (int k = 1; k <= 12; k++) {
        snprintf(pa, sizeof pa, "%s/async-%02d.png", dir, k);
        snprintf(ps, sizeof ps, "%s/inplace-%02d.png", dir, k);
        vqc_image ia = picture(k, 96 + k, 64), is = picture(k, 96 + k, 64);
        ASSERT_OK(vqc_writer_put(a, pa, &ia, meta, record, &got, k, k * 0.5));
        ASSERT(ia.rgb == NULL); /* taken over */
        ASSERT_OK(vqc_writer_put(s, ps, &is, meta, record, &want, k, k * 0.5));
        if (k % 3 == 0) {
            ia = picture(100 + k, 200, 150);
            is = picture(100 + k, 200, 150);
            ASSERT_OK(vqc_writer_put(a, shared_a, &ia, meta, record, &got, k, k * 0.5));
            ASSERT_OK(vqc_writer_put(s, shared_s, &is, meta, record, &want, k, k * 0.5));
        }
        ASSERT_OK(vqc_writer_poll(a));
        ASSERT_OK(vqc_writer_poll(s));
    }
    ASSERT_OK(vqc_writer_flush(a));
    ASSERT_OK(vqc_writer_flush(s));
    ASSERT_EQ(got.n, want.n);
    ASSERT_EQ(got.n, 16);
    for (int i = 0; i < got.n; i++) {
        ASSERT_EQ(got.steps[i], want.steps[i]);
        assert_same_file(got.paths[i], want.paths[i]);
    }
    assert_same_file(shared_a, shared_s); /* k = 12's picture in both */
    vqc_writer_free(a);
    vqc_writer_free(s);
    fprintf(stderr, "  16 pictures, %d threads: same bytes and callback order as in place\n",
            threads);
}

/* A picture that cannot be written: its error (naming the path) comes back from a later put,
 * poll or flush, nothing after it is written, no later callback runs, and the earlier ones did. */
static void check_failure(int threads)
{
    calls_t got = {0};
    vqc_writer *w = vqc_writer_new(threads);
    ASSERT(w);
    char ok1[600], bad[600], after[600];
    snprintf(ok1, sizeof ok1, "%s/before.png", dir);
    snprintf(bad, sizeof bad, "%s/no-such-dir/bad.png", dir);
    snprintf(after, sizeof after, "%s/after.png", dir);
    vqc_image i1 = picture(1, 64, 64), i2 = picture(2, 64, 64), i3 = picture(3, 64, 64);
    ASSERT_OK(vqc_writer_put(w, ok1, &i1, meta, record, &got, 1, 0.5));
    ASSERT_OK(vqc_writer_put(w, bad, &i2, meta, record, &got, 2, 1.0));
    int rc = vqc_writer_put(w, after, &i3, meta, record, &got, 3, 1.5);
    if (rc == 0) /* the failing one may not have been written yet */
        rc = vqc_writer_flush(w);
    ASSERT(rc != 0);
    ASSERT(strstr(vqc_error_get(), "no-such-dir") != NULL);
    fprintf(stderr, "  failure: %s\n", vqc_error_get());
    ASSERT(vqc_writer_flush(w) == rc); /* still the first error */
    ASSERT(strstr(vqc_error_get(), "no-such-dir") != NULL);
    ASSERT_EQ(got.n, 1);
    ASSERT_EQ(got.steps[0], 1);
    ASSERT(access(after, F_OK) != 0);
    vqc_writer_free(w);
}

/* Freed with pictures still waiting: they are written, no callback runs after free. */
static void check_free_waits(void)
{
    calls_t got = {0};
    vqc_writer *w = vqc_writer_new(VQC_WRITER_AUTO);
    ASSERT(w);
    char p[600];
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "%s/free-%d.png", dir, k);
        vqc_image img = picture(k, 256, 256);
        ASSERT_OK(vqc_writer_put(w, p, &img, meta, NULL, &got, k, k * 0.5));
    }
    vqc_writer_free(w);
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "%s/free-%d.png", dir, k);
        ASSERT(access(p, F_OK) == 0);
    }
}

int main(void)
{
    owner = pthread_self();
    const char *tmp = getenv("VQCLIP_TMP");
    snprintf(dir, sizeof dir, "%s/test-writer-%d", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    mkdir(tmp && *tmp ? tmp : "/tmp", 0755);
    ASSERT(mkdir(dir, 0755) == 0);
    ASSERT(vqc_writer_async_default(true));
    for (int threads = 1; threads <= 4; threads += 3) {
        check_order(threads);
        check_failure(threads);
    }
    check_free_waits();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ASSERT(system(cmd) == 0);
    fprintf(stderr, "test-writer: ok\n");
    return 0;
}
