/* What a run writes, as a user names it: the format from the file name (.png, .jpg/.jpeg,
 * anything else refused before the models load), --skip-existing reading a JPEG's step, -o
 * placeholders and missing folders in a single run, the regeneration command written into
 * the image, which must repeat the picture byte for byte on the CPU, writing off the loop's
 * thread, which must change nothing, and developer switches set to values they do not know. */
#include <sys/stat.h>
#include <unistd.h>

#include "io/image.h"
#include "io/image_text.h"
#include "testcli.h"
#include "vqclip.h"

static char models[2048];
static const char *fast = "-s 32 32 --cutn 4 -i 3 -q";

static const char *tpath(const char *name)
{
    static char buf[4][4096];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", cli_tmp, name);
    return b;
}

static bool starts_with_bytes(const char *path, const unsigned char *magic, size_t n)
{
    unsigned char head[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t got = fread(head, 1, n, f);
    fclose(f);
    return got == n && memcmp(head, magic, n) == 0;
}

static const unsigned char jpeg_magic[3] = {0xFF, 0xD8, 0xFF};
static const unsigned char png_magic[4] = {0x89, 'P', 'N', 'G'};

static void test_formats(void)
{
    /* refused before any model is read (these models do not exist) */
    cli_expect_error(cli_run("-p cat --vqgan /nope.ckpt -o out.gif"), 1, "out.gif");
    ASSERT(strstr(cli_slurp("err.txt"), ".jpg"));
    cli_expect_error(cli_run("-p cat --vqgan /nope.ckpt -o noext"), 1, "noext");
    vqc_image img = {32, 32, calloc(32 * 32 * 3, sizeof(float))};
    ASSERT_OK(vqc_image_save_png(tpath("in.png"), &img, NULL));
    vqc_image_free(&img);
    cli_expect_error(cli_run("reconstruct --vqgan /nope.ckpt -i in.png -o rec.tiff"), 1,
                     "rec.tiff");
    ASSERT(access(tpath("out.gif"), F_OK) != 0 && access(tpath("rec.tiff"), F_OK) != 0);
    /* .jpg and .JPEG write JPEG, .png PNG, each with its step and regeneration text */
    const char *names[] = {"a.jpg", "b.JPEG", "c.png"};
    for (int k = 0; k < 3; k++) {
        cli_expect_ok(cli_run("%s -p 'a red fox' %s --seed 3 -o %s", models, fast, names[k]),
                      names[k]);
        ASSERT(k < 2 ? starts_with_bytes(tpath(names[k]), jpeg_magic, 3)
                     : starts_with_bytes(tpath(names[k]), png_magic, 4));
        int step = 0;
        ASSERT_OK(vqc_image_step(tpath(names[k]), &step));
        ASSERT_EQ(step, 3);
        char text[4096];
        ASSERT_OK(vqc_image_text(tpath(names[k]), "parameters", text, sizeof text));
        ASSERT(strstr(text, "-p 'a red fox'") && strstr(text, "--seed 3"));
    }
    cli_expect_ok(cli_run("reconstruct --vqgan '%s' -i in.png -o rec.jpg",
                          fixture_path("vqgan/tiny_vq.ckpt")),
                  "reconstruct to .jpg");
    ASSERT(starts_with_bytes(tpath("rec.jpg"), jpeg_magic, 3));
    /* a batch of JPEGs: the second run finds them finished */
    cli_write_file("jobs.txt", "a red fox\na blue cat\n");
    cli_expect_ok(cli_run("--batch jobs.txt %s %s -o 'j/{index}.jpg' --json", models, fast),
                  "batch of JPEGs");
    ASSERT(starts_with_bytes(tpath("j/1.jpg"), jpeg_magic, 3));
    cli_expect_ok(
        cli_run("--batch jobs.txt %s %s -o 'j/{index}.jpg' --skip-existing --json", models, fast),
        "batch of JPEGs again");
    const char *js = cli_slurp("out.txt");
    ASSERT(strstr(js, "\"skipped\":2") && strstr(js, "\"ok\":0"));
}

static void test_single_template(void)
{
    cli_expect_ok(cli_run("%s -p 'A Red Fox:2|blur:-1' %s --seed 9 -o 'deep/er/{slug}-{seed}-"
                          "{index:04}.png' --json --save-frames fr",
                          models, fast),
                  "single run with placeholders");
    /* --json reports each frame */
    const char *js = cli_slurp("out.txt");
    for (int step = 1; step <= 3; step++) {
        char line[128];
        snprintf(line, sizeof line, "{\"event\":\"frame\",\"path\":\"fr/%05d.png\",\"step\":%d,",
                 step, step);
        if (!strstr(js, line))
            TEST_FAIL("no JSON line for frame %d: %s", step, js);
    }
    const char *want = "deep/er/a-red-fox-9-0000.png";
    ASSERT(access(tpath(want), F_OK) == 0);
    ASSERT(strstr(cli_slurp("out.txt"), want)); /* the JSON names the file written */
    cli_expect_error(cli_run("%s -p cat %s -o '{bogus}.png'", models, fast), 1, "{bogus}");
    /* a bad parameter makes no folder */
    cli_expect_error(cli_run("%s -p 'cat:heavy' %s -o 'nodir/x.png'", models, fast), 1, "heavy");
    ASSERT(access(tpath("nodir"), F_OK) != 0);
}

/* A picture regenerated from its own "parameters" text is the same file, byte for byte: every
 * setting that shapes it is there, each number written exactly (values that %g would round). */
static void test_regeneration(void)
{
    cli_expect_ok(cli_run("%s -p 'a red fox:1.0000001|blur:-0.3' -s 32 32 --cutn 4 -i 4 -q "
                          "--seed 11 -lr 0.123456789012345 -iw 0.3333333333333333 "
                          "--init-weight-mode stepped --mse-decay-every 2 --mse-epochs 3 "
                          "--cut-noise 0.0123456789 --cut-method original --cut-pow 1.2345678 "
                          "-in pixels -aug Pe,Af,Hf -o orig.png",
                          models),
                  "the original");
    static char text[16384];
    ASSERT_OK(vqc_image_text(tpath("orig.png"), "parameters", text, sizeof text));
    const char *must[] = {"vqclip ",
                          " -lr 0.123456789012345",
                          " -iw 0.3333333333333333",
                          " --init-weight-mode stepped --mse-decay-every 2 --mse-epochs 3",
                          " --cut-noise 0.0123456789",
                          " --cut-pow 1.2345678",
                          " --augments 'Pe,Af,Hf'",
                          " --bpe '",
                          NULL};
    for (int i = 0; must[i]; i++)
        if (!strstr(text, must[i]))
            TEST_FAIL("the regeneration command lacks '%s': %s", must[i], text);
    ASSERT(strncmp(text, "vqclip ", 7) == 0 && !strchr(text, '\n'));
    /* run it as written (the program's name replaced by this build's), in another folder */
    static char cmd[20000];
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/again' && cd '%s/again' && '%s' %s -q >out.txt 2>err.txt", cli_tmp,
             cli_tmp, cli_bin, text + 7);
    if (system(cmd) != 0)
        TEST_FAIL("the regeneration command failed: %s", text);
    snprintf(cmd, sizeof cmd, "cmp '%s/orig.png' '%s/again/output.png'", cli_tmp, cli_tmp);
    if (system(cmd) != 0)
        TEST_FAIL("the regenerated picture differs: %s", text);
}

/* Pictures written off the loop's thread (the CUDA default, VQCLIP_ASYNC_WRITES=1 here) are
 * the files, frames, state and --json events, in their order, of writing in place. */
static void test_async_writes(void)
{
    static char json[2][65536];
    for (int k = 0; k < 2; k++) {
        cli_env = k ? "VQCLIP_ASYNC_WRITES=1" : "VQCLIP_ASYNC_WRITES=0";
        cli_expect_ok(cli_run("%s -p 'a red fox' -s 32 32 --cutn 4 -i 7 -se 2 --seed 5 -o "
                              "w/out.png --save-frames w/fr --save-state w/state.safetensors "
                              "--json",
                              models),
                      k ? "writing off the loop's thread" : "writing in place");
        snprintf(json[k], sizeof json[k], "%s", cli_slurp("out.txt"));
        char *done = strstr(json[k], "{\"event\":\"done\""); /* its times differ */
        ASSERT(done != NULL);
        *done = 0;
        char mv[4200];
        snprintf(mv, sizeof mv, "cd '%s' && mv w w%d", cli_tmp, k);
        ASSERT(system(mv) == 0);
    }
    cli_env = "";
    ASSERT(strstr(json[0], "\"event\":\"image\"") && strstr(json[0], "fr/00007.png"));
    if (strcmp(json[0], json[1]) != 0)
        TEST_FAIL("the --json events differ:\n%s\n---\n%s", json[0], json[1]);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "diff -r '%s/w0' '%s/w1'", cli_tmp, cli_tmp);
    if (system(cmd) != 0)
        TEST_FAIL("the files written differ");
}

/* Developer switches set to a value they do not know (misspelt, or another spelling of on) are
 * each said once and count as unset: the same picture as without them. */
static void test_unknown_switches(void)
{
    char args[4096];
    snprintf(args, sizeof args, "%s %s --seed 9 -o", models, fast);
    cli_expect_ok(cli_run("%s plain.png -p 'a red fox'", args), "without switches");
    cli_env = "VQCLIP_SDPA=yes VQCLIP_GROUPNORM=compose VQCLIP_ASYNC_WRITES=on "
              "VQCLIP_CHANNELS_LAST=true VQCLIP_CUDA_GRAPH=off";
    const char *err =
        cli_expect_ok(cli_run("%s switched.png -p 'a red fox'", args), "with unknown switches");
    cli_env = "";
    static const char *const said[] = {
        "VQCLIP_SDPA='yes' is not one of 0, 1, all: ignored",
        "VQCLIP_GROUPNORM='compose' is not one of native, saved, reduce, composed: ignored",
        "VQCLIP_ASYNC_WRITES='on' is not one of 0, 1: ignored",
        "VQCLIP_CHANNELS_LAST='true' is not one of 0, 1: ignored",
        "VQCLIP_CUDA_GRAPH='off' is not one of 0, 1, emulate: ignored",
    };
    for (size_t i = 0; i < sizeof said / sizeof said[0]; i++) {
        const char *at = strstr(err, said[i]);
        if (!at || strstr(at + 1, said[i]))
            TEST_FAIL("expected the warning '%s' once; stderr: %s", said[i], err);
    }
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", tpath("plain.png"), tpath("switched.png"));
    if (system(cmd) != 0)
        TEST_FAIL("unknown switch values changed the picture");
}

int main(void)
{
    cli_setup("outputs", models, sizeof models);
    test_formats();
    test_single_template();
    test_regeneration();
    test_async_writes();
    test_unknown_switches();
    fprintf(stderr, "test-outputs: ok\n");
    return 0;
}
