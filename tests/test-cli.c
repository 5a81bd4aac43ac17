/* The vqclip command line as users and scripts drive it: exit codes, one-line errors, files
 * that are written whole or not at all, snapshots, signals, reproducible seeds. */
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/image.h"
#include "models/vqgan.h"
#include "testcli.h"

static char models[2048];

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
    snprintf(in, sizeof in, "%s/in.png", cli_tmp);
    snprintf(out, sizeof out, "%s/rec.png", cli_tmp);
    snprintf(odd, sizeof odd, "%s/odd.png", cli_tmp);
    write_test_png(in, 32, 24);
    write_test_png(odd, 30, 24);
    ASSERT_EQ(cli_run("reconstruct --vqgan '%s' -i '%s' -o '%s'", ckpt, in, out), 0);
    vqc_image img;
    ASSERT_OK(vqc_image_load(out, &img));
    ASSERT_EQ(img.w, 32);
    ASSERT_EQ(img.h, 24);
    vqc_image_free(&img);
    cli_expect_error(cli_run("reconstruct --vqgan '%s' -i '%s' -o '%s'", ckpt, odd, out), 1,
                     "multiples of 4");
    ASSERT_EQ(cli_run("reconstruct --vqgan '%s' -i '%s' -o '%s' --resize", ckpt, odd, out), 0);
    ASSERT_OK(vqc_image_load(out, &img));
    ASSERT_EQ(img.w, 28);
    vqc_image_free(&img);
    cli_expect_error(cli_run("reconstruct --vqgan '%s' -i '%s' -o '%s'",
                             fixture_path("clip/tiny_vit.pt"), in, out),
                     2, "CLIP");
    cli_expect_error(cli_run("reconstruct --vqgan /nonexistent.ckpt -i '%s' -o '%s'", in, out), 2,
                     "nonexistent");
    cli_expect_error(cli_run("reconstruct --vqgan '%s' -i /no/such.png -o '%s'", ckpt, out), 2,
                     "such.png");
    cli_expect_error(cli_run("reconstruct --vqgan '%s' -i '%s' -o /no/such/dir/x.png", ckpt, in), 2,
                     "/no/such/dir");
    cli_expect_error(cli_run("reconstruct --vqgan '%s' -i '%s' -o '%s'", ckpt, in, cli_tmp), 2,
                     "directory");
    cli_expect_error(cli_run("reconstruct -i '%s'", in), 1, NULL);
    /* A failure never touches an existing output. */
    off_t before = file_size(out);
    cli_expect_error(cli_run("reconstruct --vqgan '%s' -i '%s' -o '%s'", ckpt, odd, out), 1, NULL);
    ASSERT_EQ(file_size(out), before);
}

static void test_generate(void)
{
    char out[4096], out2[4096];
    snprintf(out, sizeof out, "%s/gen.png", cli_tmp);
    snprintf(out2, sizeof out2, "%s/gen2.png", cli_tmp);
    const char *common = "-s 32 32 --cutn 4 --seed 5 -q";
    /* -i 7 -se 5: the final image (step 7) is written, not only the step-5 snapshot. */
    ASSERT_EQ(
        cli_run("%s -p 'a red fox:1|blur:-0.3' %s -i 7 -se 5 -o '%s' --json", models, common, out),
        0);
    const char *js = cli_slurp("out.txt");
    ASSERT(strstr(js, "\"step\":5") && strstr(js, "\"step\":7") &&
           strstr(js, "\"event\":\"done\""));
    ASSERT_EQ(cli_run("%s -p 'a red fox:1|blur:-0.3' %s -i 7 -se 5 -o '%s'", models, common, out2),
              0);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", out, out2);
    ASSERT_EQ(system(cmd), 0); /* same seed, same bytes */
    /* Bad usage exits 1 with one line; a missing input exits 2. */
    cli_expect_error(cli_run("%s -p 'cat:heavy' -o '%s'", models, out), 1, "heavy");
    cli_expect_error(cli_run("%s -p cat --no-such-flag -o '%s'", models, out), 1, NULL);
    cli_expect_error(cli_run("%s -p cat -ip /missing.png -o '%s'", models, out), 2, "missing.png");
    cli_expect_error(cli_run("%s -p cat -s 0 -o '%s'", models, out), 1, "size");
    /* An unwritable output fails before any model is read (the models here do not exist); a
     * missing folder would be made, one under a file cannot (not even by root). */
    cli_expect_error(cli_run("-p cat --vqgan /nope.ckpt -o '%s/x.png'", out), 2, "gen.png");
}

/* Times `needle` occurs in text. */
static int count_of(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

/* Options that would do nothing in this run are said once each, and the run goes on. */
static void test_unused_options_warn(void)
{
    ASSERT_EQ(cli_run("%s -p cat -s 32 32 --cutn 2 -i 2 --seed 1 --precision exact --skip-existing "
                      "--variations 2 -cutp 2 -o warn.png",
                      models),
              0);
    const char *err = cli_slurp("err.txt");
    ASSERT_EQ(count_of(err, "--precision chooses the number formats on CUDA"), 1);
    ASSERT_EQ(count_of(err, "apply to --batch runs only"), 1);
    ASSERT_EQ(count_of(err, "--cut-pow shapes the original cut method"), 1);
    /* said when it applies, and only then: -cutp with the original method, --skip-existing
     * with --batch, no --precision */
    cli_write_file("warn.txt", "cat\ndog\n");
    ASSERT_EQ(cli_run("%s --batch warn.txt -s 32 32 --cutn 2 -i 2 --seed 1 -cutm original "
                      "-cutp 2 --skip-existing -o 'w-{slug}.png'",
                      models),
              0);
    err = cli_slurp("err.txt");
    ASSERT(!strstr(err, "--precision") && !strstr(err, "--batch runs only") &&
           !strstr(err, "--cut-pow"));
}

static void test_interrupt(void)
{
    char out[4096];
    snprintf(out, sizeof out, "%s/int.png", cli_tmp);
    unlink(out);
    pid_t pid = fork();
    if (pid == 0) {
        char cmd[8192];
        snprintf(cmd, sizeof cmd,
                 "exec %s %s -p 'a lighthouse' -s 32 32 --cutn 4 -i 100000 -se 1 -q "
                 "-o '%s' 2>/dev/null",
                 cli_bin, models, out);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    /* Interrupt once the run is under way (its first snapshot exists), however slow the
     * machine; give up after two minutes. */
    for (int i = 0; i < 1200 && access(out, F_OK) != 0; i++)
        usleep(100000);
    ASSERT(access(out, F_OK) == 0);
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
    cli_setup("cli", models, sizeof models);
    TEST_PART(test_reconstruct());
    TEST_PART(test_generate());
    TEST_PART(test_interrupt());
    TEST_PART(test_unused_options_warn());
    fprintf(stderr, "test-cli: ok\n");
    return 0;
}
