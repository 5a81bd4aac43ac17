/* The bad-input matrix: the real binary ($VQCLIP_BIN) fed broken models, images, prompts,
 * numbers and output paths. Every failing case must exit with the documented status and print
 * exactly one line "vqclip: error: ..." on stderr (after any of its own log lines); nothing may
 * crash, hang or lose a file.
 *
 * Exit status of vqclip (what each case asserts):
 *   0    ok (also: a non-UTF-8 prompt, a 100,000-character prompt with a truncation warning)
 *   1    bad usage: unknown or mistyped flag, missing value, non-numeric or non-finite number
 *        (weight 'cat:nan', -lr nan), out-of-range number (-i -5, -s 0, -s 100000 100000),
 *        empty prompt, unknown augment / cut method / optimiser / device name
 *   2    unreadable model or input: missing, empty, truncated or foreign model files, a CLIP
 *        file as --vqgan and the reverse, a directory, corrupt PNG/JPEG (-ii, -ip), a bad BPE or
 *        YAML file, an output directory that is missing, unwritable or a file; a write that fails
 *        (full disk) — 3 is accepted there too
 *   3    runtime or device failure, or a size that cannot fit in memory (refused up front)
 *   130  SIGINT, 143 SIGTERM: the current image is written first
 *
 * The models are the tiny fixtures; successful runs use -s 32 32 --cutn 2 -i 2. */
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <stb/stb_image_write.h>

#include <math.h>

#include "io/image.h"
#include "io/safetensors.h"
#include "io/tensor_map.h"
#include "testcli.h"

static const char *bin;
static const char *tmp;
static char models[2048]; /* --vqgan --clip --bpe of the tiny fixtures */
static const char *fast = "-s 32 32 --cutn 2 -i 2 -q";
static int ncases;

/* ---------------------------------------------------------------------------------------------
 * Running the binary
 * ------------------------------------------------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Runs `prefix vqclip ARGS` through /bin/sh with a hard 60 s limit; stdout goes to tmp/out.txt,
 * stderr to tmp/err.txt. `prefix` (may be "") runs in the same shell first ("ulimit -f 2;").
 * Returns the exit status, 128+N for a signal. */
static int run_with(const char *prefix, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run_with(const char *prefix, const char *fmt, ...)
{
    static char args[220000], cmd[230000]; /* room for the 100,000-character prompt */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s exec timeout -s KILL 60 %s %s >'%s/out.txt' 2>'%s/err.txt'",
             prefix, bin, args, tmp, tmp);
    int st = system(cmd);
    ncases++;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#define run(...) run_with("", __VA_ARGS__)

/* The exit status is `want` and stderr (the file tmp/<errfile>) holds exactly one line
 * "vqclip: error: ...", its last line, containing `must_contain` when that is not NULL; any other
 * lines are vqclip's own log lines ("vqclip: ..."). `what` names the case in failure messages. */
static void expect_error_in(const char *errfile, const char *what, int status, int want,
                            const char *must_contain)
{
    const char *err = cli_slurp(errfile);
    if (status != want)
        TEST_FAIL("%s: exit %d, expected %d; stderr: %s", what, status, want, err);
    const char *line = strstr(err, "vqclip: error: ");
    if (!line || (line != err && line[-1] != '\n') || strstr(line + 1, "vqclip: error: ") ||
        strchr(line, '\n') != line + strlen(line) - 1)
        TEST_FAIL("%s: expected exactly one 'vqclip: error:' line, last, got: %s", what, err);
    for (const char *l = err; l < line; l = strchr(l, '\n') + 1)
        if (strncmp(l, "vqclip: ", 8) != 0)
            TEST_FAIL("%s: stray output on stderr: %s", what, err);
    if (must_contain && !strstr(line, must_contain))
        TEST_FAIL("%s: the error should mention '%s': %s", what, must_contain, line);
}

static void expect_error(const char *what, int status, int want, const char *must_contain)
{
    expect_error_in("err.txt", what, status, want, must_contain);
}

/* ---- failing cases, run JOBS at a time (most of the time is libtorch starting up) ---- */

#define MAX_QUEUED 128
#define JOBS 4

typedef struct queued {
    const char *what, *mention; /* static strings */
    int want, status;
    char *cmd;
    pid_t pid;
} queued;

static queued queue[MAX_QUEUED];
static int nqueued;

/* Queues a case: `vqclip ARGS` must exit `want` with one error line that mentions `mention`
 * (NULL: anything). The cases run, in parallel, at the next run_queue(). */
static void fails(int want, const char *mention, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fails(int want, const char *mention, const char *what, const char *fmt, ...)
{
    ASSERT(nqueued < MAX_QUEUED);
    char args[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    queued *q = &queue[nqueued];
    size_t n = strlen(args) + strlen(bin) + strlen(tmp) + 128;
    q->cmd = malloc(n);
    ASSERT(q->cmd);
    snprintf(q->cmd, n, "exec timeout -s KILL 60 %s %s >/dev/null 2>'%s/case%d.err'", bin, args,
             tmp, nqueued);
    q->what = what;
    q->mention = mention;
    q->want = want;
    nqueued++;
}

static pid_t spawn_sh(const char *cmd)
{
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Runs the queued cases, JOBS at a time, then checks each one. */
static void run_queue(void)
{
    int next = 0, running = 0;
    while (next < nqueued || running > 0) {
        if (next < nqueued && running < JOBS) {
            queued *q = &queue[next++];
            q->pid = spawn_sh(q->cmd);
            running++;
            continue;
        }
        int st;
        pid_t pid = wait(&st);
        ASSERT(pid > 0);
        for (int i = 0; i < next; i++)
            if (queue[i].pid == pid)
                queue[i].status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        running--;
    }
    for (int i = 0; i < nqueued; i++) {
        char errfile[64];
        snprintf(errfile, sizeof errfile, "case%d.err", i);
        expect_error_in(errfile, queue[i].what, queue[i].status, queue[i].want, queue[i].mention);
        free(queue[i].cmd);
    }
    ncases += nqueued;
    nqueued = 0;
}

/* Exit 0, a decodable w x h PNG at `path`, and only "vqclip: " lines on stderr. */
static void expect_image(const char *what, int status, const char *path, int w, int h)
{
    const char *err = cli_slurp("err.txt");
    if (status != 0)
        TEST_FAIL("%s: exit %d, expected 0; stderr: %s", what, status, err);
    for (const char *l = err; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l))
        if (strncmp(l, "vqclip: ", 8) != 0)
            TEST_FAIL("%s: stray output on stderr: %s", what, err);
    vqc_image img;
    ASSERT_OK(vqc_image_load(path, &img));
    ASSERT_EQ(img.w, w);
    ASSERT_EQ(img.h, h);
    vqc_image_free(&img);
}

/* Prints the time since the start after each group of cases (for slow CI machines). */
static void lap(const char *group)
{
    static double t0;
    if (t0 == 0)
        t0 = now();
    fprintf(stderr, "test-badinput: %-14s done at %5.1f s\n", group, now() - t0);
}

/* ---------------------------------------------------------------------------------------------
 * Making broken files
 * ------------------------------------------------------------------------------------------- */

/* tmp/<name>, in one of 64 rotating static buffers. */
static const char *tpath(const char *name)
{
    static char buf[64][4096];
    static int next;
    char *p = buf[next++ % 64];
    snprintf(p, 4096, "%s/%s", tmp, name);
    return p;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ASSERT(f);
    ASSERT_EQ(fwrite(data, 1, n, f), n);
    ASSERT_EQ(fclose(f), 0);
}

static unsigned char *read_bytes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ASSERT(f);
    ASSERT_EQ(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    ASSERT(len >= 0);
    rewind(f);
    unsigned char *d = malloc((size_t)len + 1);
    ASSERT(d);
    ASSERT_EQ(fread(d, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return d;
}

/* Writes the first `keep` bytes of `src` to tmp/<name> (keep > size: the whole file). */
static const char *truncated_copy(const char *src, size_t keep, const char *name)
{
    size_t n;
    unsigned char *d = read_bytes(src, &n);
    const char *dst = tpath(name);
    write_bytes(dst, d, keep < n ? keep : n);
    free(d);
    return dst;
}

/* A 32x32 test pattern as PNG (vqclip's writer) and as JPEG (stb_image_write). */
static void make_images(void)
{
    vqc_image img = {32, 32, malloc(32 * 32 * 3 * sizeof(float))};
    unsigned char px[32 * 32 * 3];
    for (int i = 0; i < 32 * 32 * 3; i++) {
        px[i] = (unsigned char)(i * 37 % 255);
        img.rgb[i] = px[i] / 255.0f;
    }
    ASSERT_OK(vqc_image_save_png(tpath("good.png"), &img, NULL));
    vqc_image_free(&img);
    ASSERT(stbi_write_jpg(tpath("good.jpg"), 32, 32, 3, px, 90));
}

/* Copies tmp/<src> to tmp/<dst> with `n` bytes from offset `at` overwritten by 0xA5. */
static const char *corrupt_copy(const char *src, size_t at, size_t n, const char *dst)
{
    size_t len;
    unsigned char *d = read_bytes(tpath(src), &len);
    for (size_t i = at; i < at + n && i < len; i++)
        d[i] = 0xA5;
    const char *out = tpath(dst);
    write_bytes(out, d, len);
    free(d);
    return out;
}

/* ---------------------------------------------------------------------------------------------
 * Models
 * ------------------------------------------------------------------------------------------- */

/* The tiny VQGAN as safetensors at tmp/name, with `value` as the first decoder weight. */
static const char *poisoned_vqgan(const char *name, float value)
{
    vqc_tensor_map *map;
    ASSERT_OK(vqc_tmap_open(fixture_path("vqgan/tiny_vq.ckpt"), &map));
    size_t n = vqc_tmap_count(map);
    vqc_st_tensor *ts = calloc(n, sizeof *ts);
    void **copies = calloc(n, sizeof *copies);
    ASSERT(ts && copies);
    for (size_t i = 0; i < n; i++) {
        const vqc_tensor_info *ti = vqc_tmap_at(map, i);
        size_t bytes = (size_t)ti->numel * vqc_dtype_size(ti->dtype);
        copies[i] = malloc(bytes ? bytes : 1);
        ASSERT(copies[i]);
        memcpy(copies[i], ti->data, bytes); /* the fixture's tensors are contiguous */
        if (strstr(ti->name, "decoder.conv_in.weight") && ti->dtype == VQC_DTYPE_F32)
            ((float *)copies[i])[0] = value;
        ts[i] = (vqc_st_tensor){ti->name, ti->dtype, ti->ndim, ti->shape, copies[i]};
    }
    const char *path = tpath(name);
    ASSERT_OK(vqc_safetensors_write(path, ts, n, NULL));
    for (size_t i = 0; i < n; i++)
        free(copies[i]);
    free(copies);
    free(ts);
    vqc_tmap_free(map);
    return path;
}

static void test_vqgan_files(void)
{
    const char *vq = fixture_path("vqgan/tiny_vq.ckpt"),
               *legacy = fixture_path("vqgan/tiny_vq_legacy.ckpt");
    write_bytes(tpath("notes.txt"), "just some text\n", 15);
    write_bytes(tpath("empty.ckpt"), "", 0);
    const char *cut_zip = truncated_copy(vq, 100000, "cut.ckpt");
    const char *cut_legacy = truncated_copy(legacy, 2000000, "cut_legacy.ckpt");
    const char *out = tpath("x.png");
    fails(2, "not a weight file", "text file as --vqgan", "%s %s -p cat -o '%s' --vqgan '%s'",
          models, fast, out, tpath("notes.txt"));
    fails(2, "empty", "zero-byte --vqgan", "%s %s -p cat -o '%s' --vqgan '%s'", models, fast, out,
          tpath("empty.ckpt"));
    fails(2, "cut.ckpt", "truncated zip --vqgan", "%s %s -p cat -o '%s' --vqgan '%s'", models, fast,
          out, cut_zip);
    fails(2, "cut_legacy.ckpt", "truncated legacy --vqgan", "%s %s -p cat -o '%s' --vqgan '%s'",
          models, fast, out, cut_legacy);
    fails(2, tmp, "directory as --vqgan", "%s %s -p cat -o '%s' --vqgan '%s'", models, fast, out,
          tmp);
    fails(2, "nope.ckpt", "missing --vqgan", "%s %s -p cat -o '%s' --vqgan '%s'", models, fast, out,
          tpath("nope.ckpt"));
    fails(2, "CLIP", "CLIP file as --vqgan", "%s %s -p cat -o '%s' --vqgan '%s'", models, fast, out,
          fixture_path("clip/tiny_vit.pt"));
    /* NaN / infinite weights: the first step's loss is not finite; exit 3, no image */
    const char *nan_out = tpath("nan.png");
    unlink(nan_out);
    fails(3, "weights hold NaN", "NaN weights", "%s %s -p cat -o '%s' --vqgan '%s'", models, fast,
          nan_out, poisoned_vqgan("nan_vq.safetensors", NAN));
    fails(3, "weights hold NaN", "infinite weights", "%s %s -p cat -o '%s' --vqgan '%s'", models,
          fast, nan_out, poisoned_vqgan("inf_vq.safetensors", INFINITY));
}

static void test_clip_and_bpe_files(void)
{
    const char *vit = fixture_path("clip/tiny_vit.pt"),
               *bpe = fixture_path("clip/bpe_simple_vocab_16e6.txt.gz");
    const char *cut_vit = truncated_copy(vit, 1 << 20, "cut_vit.pt");
    const char *cut_bpe = truncated_copy(bpe, 10000, "cut_bpe.txt.gz");
    const char *out = tpath("x.png");
    fails(2, "not a CLIP model", "VQGAN ckpt as --clip", "%s %s -p cat -o '%s' --clip '%s'", models,
          fast, out, fixture_path("vqgan/tiny_vq.ckpt"));
    fails(2, "empty", "zero-byte --clip", "%s %s -p cat -o '%s' --clip '%s'", models, fast, out,
          tpath("empty.ckpt"));
    fails(2, "cut_vit.pt", "truncated TorchScript --clip", "%s %s -p cat -o '%s' --clip '%s'",
          models, fast, out, cut_vit);
    fails(2, "notes.txt", "text file as --bpe", "%s %s -p cat -o '%s' --bpe '%s'", models, fast,
          out, tpath("notes.txt"));
    fails(2, "cut_bpe.txt.gz", "truncated gzip --bpe", "%s %s -p cat -o '%s' --bpe '%s'", models,
          fast, out, cut_bpe);
}

static void test_yaml_files(void)
{
    const char *out = tpath("x.png");
    unsigned char junk[512];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 131 + 7);
    write_bytes(tpath("junk.yaml"), junk, sizeof junk);
    fails(2, "tiny_gumbel.yaml", "YAML of another model",
          "%s %s -p cat -o '%s' --vqgan-config '%s'", models, fast, out,
          fixture_path("vqgan/tiny_gumbel.yaml"));
    fails(2, "junk.yaml", "binary junk as YAML", "%s %s -p cat -o '%s' --vqgan-config '%s'", models,
          fast, out, tpath("junk.yaml"));
}

/* ---------------------------------------------------------------------------------------------
 * Images
 * ------------------------------------------------------------------------------------------- */

/* good.png with the IHDR claiming 100000 x 100000 (stb_image does not check chunk CRCs). */
static void make_huge_png(void)
{
    size_t n;
    unsigned char *d = read_bytes(tpath("good.png"), &n);
    const unsigned char side[4] = {0x00, 0x01, 0x86, 0xA0}; /* 100000, big-endian */
    memcpy(d + 16, side, 4);
    memcpy(d + 20, side, 4);
    write_bytes(tpath("huge.png"), d, n);
    free(d);
}

/* A 53-byte JPEG whose DHT segment declares more than 256 codes: stb_image 2.27 (Debian 12)
 * writes past its huffman.size[257] table while merely probing it (found by fuzz-image; see
 * docs/fuzzing.md). vqclip must refuse it, exit 2. */
static const unsigned char jpeg_bad_dht[53] = {
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x1a, 0x1a,
    0x2f, 0x63, 0x63, 0x63, 0x63, 0x01, 0xff, 0xc4, 0x01, 0xa2, 0x01, 0x00, 0x01, 0x05,
    0x01, 0x7d, 0x7d, 0x7d, 0x7d, 0x7d, 0x7d, 0x48, 0x3c, 0x1d, 0xff, 0x00, 0x00, 0x7f,
    0xfc, 0x2b, 0x35, 0x74, 0xa1, 0xef, 0xfa, 0x00, 0x00, 0x57, 0x63};

static void test_images(void)
{
    make_images();
    make_huge_png();
    size_t png_len, jpg_len;
    free(read_bytes(tpath("good.png"), &png_len));
    free(read_bytes(tpath("good.jpg"), &jpg_len));
    const char *cut_png = truncated_copy(tpath("good.png"), png_len / 3, "cut.png");
    const char *cut_jpg = truncated_copy(tpath("good.jpg"), 200, "cut.jpg");
    const char *bad_png = corrupt_copy("good.png", 8, 64, "bad.png");
    const char *bad_jpg = corrupt_copy("good.jpg", 2, 40, "bad.jpg");
    const char *dht = tpath("dht.jpg");
    write_bytes(dht, jpeg_bad_dht, sizeof jpeg_bad_dht);
    const char *out = tpath("x.png");
    const char *const init[] = {bad_png, cut_png, bad_jpg, cut_jpg, dht};
    for (int i = 0; i < 5; i++)
        fails(2, "init image", "corrupt -ii", "%s %s -p cat -o '%s' -ii '%s'", models, fast, out,
              init[i]);
    const char *const prompt[] = {bad_png, cut_jpg, tpath("huge.png"), tmp};
    for (int i = 0; i < 4; i++)
        fails(2, "image prompt", "corrupt -ip", "%s %s -o '%s' -ip '%s'", models, fast, out,
              prompt[i]);
    fails(1, "nan", "-ip weight nan", "%s %s -o '%s' -ip '%s:nan'", models, fast, out,
          tpath("good.png"));
}

/* ---------------------------------------------------------------------------------------------
 * Prompts and numbers
 * ------------------------------------------------------------------------------------------- */

static void test_prompts(void)
{
    const char *out = tpath("x.png");
    fails(1, "empty", "empty prompt", "%s %s -p '' -o '%s'", models, fast, out);
    fails(1, "empty", "blank prompt", "%s %s -p ' | ' -o '%s'", models, fast, out);
    fails(1, "nan", "weight nan", "%s %s -p 'cat:nan' -o '%s'", models, fast, out);
    fails(1, "inf", "weight inf", "%s %s -p 'cat:inf' -o '%s'", models, fast, out);
    fails(1, "nan", "stop nan", "%s %s -p 'cat:1:nan' -o '%s'", models, fast, out);
    fails(1, "heavy", "non-numeric weight", "%s %s -p 'cat:heavy' -o '%s'", models, fast, out);
    /* an abbreviation of several options names them all */
    fails(1, "--zoom-every, --zoom-start, --zoom-scale", "ambiguous abbreviation",
          "%s %s -p cat -zoom 3 -o '%s'", models, fast, out);
    /* Invalid UTF-8 is repaired (U+FFFD), as CLIP's Python tokenizer does. */
    const char *u8 = tpath("utf8.png");
    expect_image(
        "non-UTF-8 prompt",
        run("%s %s -p \"$(printf 'caf\\351 \\377\\376 na\\303')\" -o '%s'", models, fast, u8), u8,
        32, 32);
}

static void test_long_prompt(void)
{
    static char prompt[100001];
    for (int i = 0; i < 100000; i++)
        prompt[i] = "a red fox in the snow "[i % 22];
    prompt[99999] = 'x';
    const char *out = tpath("long.png");
    expect_image("100,000-character prompt",
                 run("%s %s -p '%s' -o '%s'", models, fast, prompt, out), out, 32, 32);
    const char *err = cli_slurp("err.txt");
    if (!strstr(err, "vqclip: warning: ") || !strstr(err, "too long"))
        TEST_FAIL("100,000-character prompt: expected a truncation warning, got: %s", err);
}

static void test_numbers(void)
{
    const char *out = tpath("x.png");
    static const struct {
        const char *args, *mention;
    } cases[] = {
        {"-s 32 32 --cutn 2 -i -5", "--iterations"},
        {"-s 0 --cutn 2 -i 2", "--size"},
        {"-s 32 0 --cutn 2 -i 2", "--size"},
        {"-s -32 --cutn 2 -i 2", NULL},
        {"-s 32 32 --cutn 0 -i 2", "--cutn"},
        {"-s 32 32 --cutn 2 -i 2 -lr nan", "nan"},
        {"-s 32 32 --cutn 2 -i 2 --seed -3", "seed"},
        {"-s 32 32 --cutn 2 -i 2 --seed 1x", "1x"},
        {"-s 32 32 --cutn 2 -i two", "two"},
        {"-s 32 32 --cutn 2 -i 2 -se -1", "-1"},
        {"-s 32 32 --cutn 2 -i 2 --max-memory 0", "--max-memory"},
        {"-s 32 32 --cutn 2 -i 2 --max-memory 2GB", "2GB"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        fails(1, cases[i].mention, cases[i].args, "%s %s -q -p cat -o '%s'", models, cases[i].args,
              out);
    /* A memory limit below what one step needs, even with low memory: refused before the
     * first step, naming the limit (exit 3) */
    fails(3, "within the memory limit", "--max-memory 0.001",
          "%s -s 32 32 --cutn 2 -i 2 --max-memory 0.001 -q -p cat -o '%s'", models, out);
    /* Absurd sizes are refused while parsing, before anything is allocated. */
    double t0 = now();
    expect_error("-s 100000 100000",
                 run("%s -s 100000 100000 --cutn 2 -i 2 -q -p cat -o '%s'", models, out), 1,
                 "100000");
    if (now() - t0 > 20)
        TEST_FAIL("-s 100000 100000 took %.1f s to be refused", now() - t0);
    /* The largest accepted size must be refused up front where it cannot fit (exit 1 or 3);
     * address space capped at 8 GB so that a regression cannot take the machine down. */
    t0 = now();
    /* (An ASan build reserves terabytes of shadow memory and cannot start under ulimit -v.) */
    int st = run_with(UNDER_ASAN ? "" : "ulimit -v 8000000;",
                      "%s -s 8192 8192 --cutn 2 -i 2 -q -p cat -o '%s'", models, out);
    expect_error("-s 8192 8192", st, st == 3 ? 3 : 1, "8192");
    if (now() - t0 > 20)
        TEST_FAIL("-s 8192 8192 took %.1f s to be refused", now() - t0);
}

static void test_flags(void)
{
    const char *out = tpath("x.png");
    static const struct {
        const char *args, *mention;
    } cases[] = {
        {"-p cat --no-such-flag", "--no-such-flag"},
        {"-p cat -itterations 5", "tterations"}, /* read as -i 'tterations' */
        {"-p cat --iterashuns 5", "iterashuns"},
        {"-p cat --augments Af,Xx", "Xx"},
        {"-p cat --cut-method bogus", "bogus"},
        {"-p cat -opt bogus", "bogus"},
        {"-p cat --init-noise bogus", "bogus"},
        {"-p cat --device bogus", "bogus"},
        {"-p cat stray-argument", "stray-argument"},
        {"-p", "-p"}, /* last on the line: no value */
        {"", "prompt"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        fails(1, cases[i].mention, cases[i].args, "%s %s -o '%s' %s", models, fast, out,
              cases[i].args);
}

/* ---------------------------------------------------------------------------------------------
 * Output paths, full disk, signals
 * ------------------------------------------------------------------------------------------- */

/* An existing directory that this process cannot create files in, or NULL. As root, chmod does
 * not stop writes; /sys (sysfs) refuses new files even to root. */
static const char *unwritable_dir(void)
{
    static char dir[4096];
    if (geteuid() != 0) {
        snprintf(dir, sizeof dir, "%s/ro", tmp);
        mkdir(dir, 0755);
        ASSERT_EQ(chmod(dir, 0555), 0);
    } else {
        snprintf(dir, sizeof dir, "/sys");
    }
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.vqclip-probe", dir);
    FILE *f = fopen(probe, "wb");
    if (f) { /* writable after all: nothing to test here */
        fclose(f);
        unlink(probe);
        return NULL;
    }
    return dir;
}

static void test_output_paths(void)
{
    /* missing folders are made, as for a batch job */
    int st = run("%s %s -p cat -o '%s/made/here/x.png'", models, fast, tmp);
    ncases++;
    if (st != 0 || access(tpath("made/here/x.png"), F_OK) != 0)
        TEST_FAIL("missing directory: exit %d, expected 0 and the file; stderr: %s", st,
                  cli_slurp("err.txt"));
    fails(2, "notes.txt", "file above a missing directory", "%s %s -p cat -o '%s/sub/x.png'",
          models, fast, tpath("notes.txt"));
    fails(2, "directory", "output is a directory", "%s %s -p cat -o '%s'", models, fast, tmp);
    fails(2, "not a directory", "file as a directory", "%s %s -p cat -o '%s/x.png'", models, fast,
          tpath("notes.txt"));
    const char *ro = unwritable_dir();
    if (!ro) {
        fprintf(stderr, "test-badinput: note: no unwritable directory here, case skipped\n");
        return;
    }
    fails(2, ro, "unwritable directory", "%s %s -p cat -o '%s/x.png'", models, fast, ro);
    /* The output is checked before the models load: with a missing model, the output error wins.
     * As root this is /sys, which access(2) would wrongly call writable. */
    fails(2, ro, "unwritable directory, checked first",
          "%s -p cat --vqgan /nope.ckpt -o '%s/x.png'", fast, ro);
}

/* No leftover temporary file (".NAME.XXXXXX") of `name` in tmp. */
static void expect_no_temp(const char *what, const char *name)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "ls -a '%s' | grep -q '^\\.%s\\.'", tmp, name);
    if (system(cmd) == 0)
        TEST_FAIL("%s: a temporary file .%s.* was left behind in %s", what, name, tmp);
}

/* A full disk (ulimit -f): the write fails, exit 2 or 3, the old output is intact. */
static void test_full_disk(const char *what, const char *prefix)
{
    const char *keep = tpath("keep.png");
    size_t n0, n1;
    unsigned char *before = read_bytes(tpath("good.png"), &n0);
    write_bytes(keep, before, n0);
    int st = run_with(prefix, "%s %s -p cat -o '%s'", models, fast, keep);
    if (st != 2 && st != 3)
        TEST_FAIL("%s: exit %d, expected 2 or 3; stderr: %s", what, st, cli_slurp("err.txt"));
    expect_error(what, st, st, NULL);
    unsigned char *after = read_bytes(keep, &n1);
    if (n1 != n0 || memcmp(before, after, n0) != 0)
        TEST_FAIL("%s: the existing output file was changed", what);
    expect_no_temp(what, "keep.png");
    free(before);
    free(after);
}

/* SIGTERM once the first snapshot exists: exit 143 and a valid final image. */
static void test_sigterm(void)
{
    const char *out = tpath("term.png");
    unlink(out);
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "exec %s %s -p 'a lighthouse' -s 32 32 --cutn 2 -i 100000 -se 1 -q "
             "-o '%s' 2>'%s/err.txt'",
             bin, models, out, tmp);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    struct stat sb;
    for (int i = 0; i < 600 && stat(out, &sb) != 0; i++)
        usleep(100000);
    kill(pid, SIGTERM);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    ncases++;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 143)
        TEST_FAIL("SIGTERM: status %#x, expected exit 143; stderr: %s", st, cli_slurp("err.txt"));
    expect_image("SIGTERM", 0, out, 32, 32);
}

/* A model file truncated while a run reads it: one error line and exit 2, not a crash (the
 * weights are views of the mapped file; the next read past the new end raises SIGBUS). */
static void test_truncated_weights(void)
{
    const char *ckpt = tpath("shrinking.ckpt"), *out = tpath("shrink.png");
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", fixture_path("vqgan/tiny_vq.ckpt"), ckpt);
    ASSERT_EQ(system(cmd), 0);
    unlink(out);
    snprintf(cmd, sizeof cmd,
             "exec %s --vqgan '%s' --clip '%s' --bpe '%s' -p 'a lighthouse' -s 32 32 --cutn 2 "
             "-i 100000 -se 1 -q -o '%s' 2>'%s/err.txt'",
             bin, ckpt, fixture_path("clip/tiny_vit.pt"),
             fixture_path("clip/bpe_simple_vocab_16e6.txt.gz"), out, tmp);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    struct stat sb;
    for (int i = 0; i < 600 && stat(out, &sb) != 0; i++)
        usleep(100000);
    ASSERT_EQ(truncate(ckpt, 0), 0);
    int st = 0;
    for (int i = 0; i < 600 && waitpid(pid, &st, WNOHANG) == 0; i++)
        usleep(100000);
    if (waitpid(pid, &st, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        TEST_FAIL("truncated model file: the run went on for a minute");
    }
    ncases++;
    if (!WIFEXITED(st))
        TEST_FAIL("truncated model file: killed by signal %d; stderr: %s",
                  WIFSIGNALED(st) ? WTERMSIG(st) : 0, cli_slurp("err.txt"));
    expect_error("truncated model file", WEXITSTATUS(st), 2, "model file");
}

/* The output onto a FIFO or /dev/null: written through, and the node stays what it was. The
 * reader of the FIFO must receive the whole PNG. */
static void test_special_output(void)
{
    const char *fifo = tpath("fifo.png"), *got = tpath("from-fifo.png");
    unlink(fifo);
    unlink(got);
    ASSERT_EQ(mkfifo(fifo, 0644), 0);
    char reader[8400];
    snprintf(reader, sizeof reader, "(timeout 60 cat '%s' >'%s' &);", fifo, got);
    int st = run_with(reader, "%s %s -p cat -o '%s'", models, fast, fifo);
    ncases++;
    struct stat sb;
    ASSERT_EQ(stat(fifo, &sb), 0);
    if (!S_ISFIFO(sb.st_mode))
        TEST_FAIL("output onto a FIFO: the FIFO was replaced (exit %d)", st);
    if (st != 0)
        TEST_FAIL("output onto a FIFO: exit %d; stderr: %s", st, cli_slurp("err.txt"));
    for (int i = 0; i < 50 && (stat(got, &sb) != 0 || sb.st_size == 0); i++)
        usleep(100000);
    expect_image("output onto a FIFO", 0, got, 32, 32);
    st = run("%s %s -p cat -o /dev/null", models, fast);
    ncases++;
    ASSERT_EQ(stat("/dev/null", &sb), 0);
    if (st != 0 || !S_ISCHR(sb.st_mode))
        TEST_FAIL("-o /dev/null: exit %d, still a device: %d", st, S_ISCHR(sb.st_mode));
}

int main(void)
{
    bin = getenv("VQCLIP_BIN");
    if (!bin)
        TEST_SKIP("VQCLIP_BIN is not set");
    tmp = cli_tmp = test_tmpdir("badinput");
    snprintf(models, sizeof models, "--vqgan '%s' --clip '%s' --bpe '%s'",
             fixture_path("vqgan/tiny_vq.ckpt"), fixture_path("clip/tiny_vit.pt"),
             fixture_path("clip/bpe_simple_vocab_16e6.txt.gz"));
    double t0 = now();
    lap("start");
    test_vqgan_files();
    test_clip_and_bpe_files();
    test_yaml_files();
    test_images();
    test_prompts();
    lap("prompts");
    test_long_prompt();
    lap("long prompt");
    test_numbers();
    test_flags();
    test_output_paths();
    lap("queueing");
    run_queue();
    if (access(tpath("nan.png"), F_OK) == 0)
        TEST_FAIL("NaN weights: an image was written");
    lap("error cases");
    /* With SIGXFSZ ignored (as `trap '' XFSZ` leaves it) the write fails with EFBIG. */
    test_full_disk("full disk, SIGXFSZ ignored", "trap '' XFSZ; ulimit -f 2;");
    test_full_disk("full disk", "ulimit -f 2;");
    lap("full disk");
    test_sigterm();
    lap("SIGTERM");
    test_truncated_weights();
    lap("truncated model");
    test_special_output();
    fprintf(stderr, "test-badinput: ok, %d cases in %.1f s\n", ncases, now() - t0);
    return 0;
}
