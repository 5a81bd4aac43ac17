/* The vqclip command line as users and scripts drive it: exit codes, one-line errors, files
 * that are written whole or not at all, snapshots, signals, reproducible seeds. */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/image.h"
#include "models/vqgan.h"
#include "testhelp.h"

static const char *bin;
static const char *tmp;
static char models[2048];

/* Runs a shell command line; returns the exit status (128+N for a signal). stderr goes to
 * tmp/err.txt, stdout to tmp/out.txt. */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char args[6000], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s >'%s/out.txt' 2>'%s/err.txt'", bin, args, tmp, tmp);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *name)
{
    static char buf[65536];
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return buf;
}

/* The error output is exactly one line starting with "vqclip: error: ". */
static void expect_error(int status, int want, const char *must_contain)
{
    const char *err = slurp("err.txt");
    if (status != want)
        TEST_FAIL("exit %d, expected %d; stderr: %s", status, want, err);
    const char *line = strstr(err, "vqclip: error: ");
    if (!line || strchr(line, '\n') != line + strlen(line) - 1)
        TEST_FAIL("expected one 'vqclip: error:' line, got: %s", err);
    if (must_contain && !strstr(line, must_contain))
        TEST_FAIL("error should mention '%s': %s", must_contain, line);
}

static void write_test_png(const char *path, int w, int h)
{
    vqc_image img = {w, h, malloc((size_t)w * h * 3 * sizeof(float))};
    for (int i = 0; i < w * h * 3; i++)
        img.rgb[i] = (float)((i * 37 % 255) / 255.0);
    ASSERT_OK(vqc_image_save_png(path, &img, NULL));
    vqc_image_free(&img);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static void test_reconstruct(void)
{
    const char *ckpt = fixture_path("vqgan/tiny_vq.ckpt");
    char in[4096], out[4096], odd[4096];
    snprintf(in, sizeof in, "%s/in.png", tmp);
    snprintf(out, sizeof out, "%s/rec.png", tmp);
    snprintf(odd, sizeof odd, "%s/odd.png", tmp);
    write_test_png(in, 32, 24);
    write_test_png(odd, 30, 24);
    ASSERT_EQ(run("reconstruct --vqgan '%s' -i '%s' -o '%s'", ckpt, in, out), 0);
    vqc_image img;
    ASSERT_OK(vqc_image_load(out, &img));
    ASSERT_EQ(img.w, 32);
    ASSERT_EQ(img.h, 24);
    vqc_image_free(&img);
    expect_error(run("reconstruct --vqgan '%s' -i '%s' -o '%s'", ckpt, odd, out), 1,
                 "multiples of 4");
    ASSERT_EQ(run("reconstruct --vqgan '%s' -i '%s' -o '%s' --resize", ckpt, odd, out), 0);
    ASSERT_OK(vqc_image_load(out, &img));
    ASSERT_EQ(img.w, 28);
    vqc_image_free(&img);
    expect_error(
        run("reconstruct --vqgan '%s' -i '%s' -o '%s'", fixture_path("clip/tiny_vit.pt"), in, out),
        2, "CLIP");
    expect_error(run("reconstruct --vqgan /nonexistent.ckpt -i '%s' -o '%s'", in, out), 2,
                 "nonexistent");
    expect_error(run("reconstruct --vqgan '%s' -i /no/such.png -o '%s'", ckpt, out), 2, "such.png");
    expect_error(run("reconstruct --vqgan '%s' -i '%s' -o /no/such/dir/x.png", ckpt, in), 2,
                 "/no/such/dir");
    expect_error(run("reconstruct --vqgan '%s' -i '%s' -o '%s'", ckpt, in, tmp), 2, "directory");
    expect_error(run("reconstruct -i '%s'", in), 1, NULL);
    /* A failure never touches an existing output. */
    off_t before = file_size(out);
    expect_error(run("reconstruct --vqgan '%s' -i '%s' -o '%s'", ckpt, odd, out), 1, NULL);
    ASSERT_EQ(file_size(out), before);
}

static void test_generate(void)
{
    char out[4096], out2[4096];
    snprintf(out, sizeof out, "%s/gen.png", tmp);
    snprintf(out2, sizeof out2, "%s/gen2.png", tmp);
    const char *common = "-s 32 32 --cutn 4 --seed 5 -q";
    /* -i 7 -se 5: the final image (step 7) is written, not only the step-5 snapshot. */
    ASSERT_EQ(
        run("%s -p 'a red fox:1|blur:-0.3' %s -i 7 -se 5 -o '%s' --json", models, common, out), 0);
    const char *js = slurp("out.txt");
    ASSERT(strstr(js, "\"step\":5") && strstr(js, "\"step\":7") &&
           strstr(js, "\"event\":\"done\""));
    ASSERT_EQ(run("%s -p 'a red fox:1|blur:-0.3' %s -i 7 -se 5 -o '%s'", models, common, out2), 0);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", out, out2);
    ASSERT_EQ(system(cmd), 0); /* same seed, same bytes */
    /* Bad usage exits 1 with one line; a missing input exits 2. */
    expect_error(run("%s -p 'cat:heavy' -o '%s'", models, out), 1, "heavy");
    expect_error(run("%s -p cat --no-such-flag -o '%s'", models, out), 1, NULL);
    expect_error(run("%s -p cat -ip /missing.png -o '%s'", models, out), 2, "missing.png");
    expect_error(run("%s -p cat -s 0 -o '%s'", models, out), 1, "size");
    /* An unwritable output fails before any model is read (the models here do not exist). */
    expect_error(run("-p cat --vqgan /nope.ckpt -o /no/such/dir/x.png"), 2, "/no/such/dir");
}

static void test_interrupt(void)
{
    char out[4096];
    snprintf(out, sizeof out, "%s/int.png", tmp);
    unlink(out);
    pid_t pid = fork();
    if (pid == 0) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd,
                 "exec %s %s -p 'a lighthouse' -s 32 32 --cutn 4 -i 100000 -q "
                 "-o '%s' 2>/dev/null",
                 bin, models, out);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    sleep(4);
    kill(pid, SIGINT);
    int st;
    waitpid(pid, &st, 0);
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 130);
    vqc_image img;
    ASSERT_OK(vqc_image_load(out, &img));
    ASSERT_EQ(img.w, 32);
    vqc_image_free(&img);
}

int main(void)
{
    bin = getenv("VQCLIP_BIN");
    if (!bin)
        TEST_SKIP("VQCLIP_BIN is not set");
    tmp = test_tmpdir("cli");
    snprintf(models, sizeof models, "--vqgan '%s' --clip '%s' --bpe '%s'",
             fixture_path("vqgan/tiny_vq.ckpt"), fixture_path("clip/tiny_vit.pt"),
             fixture_path("clip/bpe_simple_vocab_16e6.txt.gz"));
    test_reconstruct();
    test_generate();
    test_interrupt();
    fprintf(stderr, "test-cli: ok\n");
    return 0;
}
