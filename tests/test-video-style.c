/* -vsd (video style transfer) on the fixture models at a tiny size: a folder of frames gives
 * steps/<frame name> for each frame in name order; with the blend weight 0 a frame is
 * byte-identical to a plain -ii run of it, another weight changes it; a rerun resumes (finished
 * frames skipped, a missing or unfinished one made again, the same bytes as an uninterrupted
 * run); a video file is extracted, styled and encoded at its frame rate with its audio; Ctrl-C
 * still encodes the finished frames; bad sources fail with one line before the models load. */
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/image.h"
#include "testcli.h"
#include "vqclip.h"

static char models[8192], fast[8500], noseed[8400];
static bool have_ffmpeg;

#define RUN_OK(...) cli_expect_ok(cli_run(__VA_ARGS__), #__VA_ARGS__)

static void path_of(const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", cli_tmp, name);
}

static bool exists(const char *name)
{
    char p[8400];
    struct stat st;
    path_of(name, p, sizeof p);
    return stat(p, &st) == 0 && st.st_size > 0;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char body[6000], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && { %s ; } >sh-out.txt 2>&1", cli_tmp, body);
    return system(cmd);
}

static bool same(const char *a, const char *b)
{
    return sh("cmp -s '%s' '%s'", a, b) == 0;
}

static int image_side(const char *name)
{
    char p[8400];
    vqc_image img;
    path_of(name, p, sizeof p);
    ASSERT_OK(vqc_image_load(p, &img));
    int w = img.w;
    ASSERT_EQ(img.h, img.w);
    vqc_image_free(&img);
    return w;
}

static bool same_pixels(const char *a, const char *b)
{
    char pa[8400], pb[8400];
    vqc_image ia, ib;
    path_of(a, pa, sizeof pa);
    path_of(b, pb, sizeof pb);
    ASSERT_OK(vqc_image_load(pa, &ia));
    ASSERT_OK(vqc_image_load(pb, &ib));
    bool eq = ia.w == ib.w && ia.h == ib.h &&
              memcmp(ia.rgb, ib.rgb, (size_t)ia.w * (size_t)ia.h * 3 * sizeof(float)) == 0;
    vqc_image_free(&ia);
    vqc_image_free(&ib);
    return eq;
}

static int image_step(const char *name)
{
    char p[8400];
    int step = -1;
    path_of(name, p, sizeof p);
    ASSERT_OK(vqc_image_step(p, &step));
    return step;
}

/* A 40x24 frame: a gradient whose colours depend on k. */
static void write_frame(const char *name, int k)
{
    vqc_image img = {40, 24, calloc(40 * 24 * 3, sizeof(float))};
    ASSERT(img.rgb != NULL);
    for (int y = 0; y < img.h; y++)
        for (int x = 0; x < img.w; x++) {
            float *p = img.rgb + (y * img.w + x) * 3;
            p[0] = (float)x / (float)img.w;
            p[1] = (float)((y + 7 * k) % img.h) / (float)img.h;
            p[2] = 0.2f * (float)k;
        }
    char p[8400];
    path_of(name, p, sizeof p);
    ASSERT_OK(vqc_image_save(p, &img, NULL));
    free(img.rgb);
}

/* Three frames made out of name order, with files that are not frames beside them. */
static void make_frames(void)
{
    ASSERT_EQ(sh("mkdir -p frames empty && echo notes > frames/notes.txt"), 0);
    write_frame("frames/c.png", 2);
    write_frame("frames/a.png", 0);
    write_frame("frames/b.png", 1);
    write_frame("frames/.hidden.png", 3);
}

/* A folder: steps/<name> for each frame, at the size asked for, finished. */
static void test_folder(void)
{
    const char *err = RUN_OK("%s -p x -vsd frames", fast);
    ASSERT(exists("steps/a.png") && exists("steps/b.png") && exists("steps/c.png"));
    ASSERT(!exists("steps/.hidden.png") && !exists("steps/notes.txt") && !exists("output.png"));
    ASSERT_EQ(image_side("steps/a.png"), 32);
    ASSERT_EQ(image_step("steps/c.png"), 2);
    const char *a = strstr(err, "frame 1 of 3: frames/a.png"), *c = strstr(err, "frames/c.png");
    ASSERT(a != NULL && c != NULL && a < c); /* in name order */
}

/* Weight 0 is a plain -ii run of each frame, byte for byte; weight 1 is a plain -ii run of the
 * previous styled frame; another weight changes the frames after the first, not the first, and
 * each is the plain run of -ii with --init-blend-image and --init-blend. */
static void test_blend(void)
{
    RUN_OK("%s -p x -ii frames/b.png -o plain/b.png", fast);
    ASSERT(same("plain/b.png", "steps/b.png"));
    RUN_OK("%s -p x -vsd frames --video-style-blend 0.5 --save-frames blend", fast);
    ASSERT(same("blend/a.png", "steps/a.png"));
    ASSERT(!same("blend/b.png", "steps/b.png") && !same("blend/c.png", "steps/c.png"));
    /* a blended frame is what its recorded command makes: -ii and the blend options */
    RUN_OK("%s -p x -ii frames/b.png --init-blend-image blend/a.png --init-blend 0.5 -o "
           "plain/b-blend.png",
           fast);
    ASSERT(same("plain/b-blend.png", "blend/b.png"));
    RUN_OK("%s -p x -vsd frames/ --video-style-blend 0 --save-frames blend0/", fast);
    ASSERT(same("blend0/c.png", "steps/c.png"));
    /* weight 1: frame b starts from the previous styled frame alone, as a plain -ii run of it
     * does (the same pixels; the recorded -ii differs) */
    RUN_OK("%s -p x -vsd frames --video-style-blend 1 --save-frames blend1", fast);
    RUN_OK("%s -p x -ii blend1/a.png -o plain/from-a.png", fast);
    ASSERT(same_pixels("blend1/b.png", "plain/from-a.png"));
}

/* A rerun skips finished frames and makes a missing or unfinished one again: the same bytes as
 * the uninterrupted run (with its seed, recorded in the folder, when none is given), the blended
 * one starting from the frame before it as it was. */
static void test_resume(void)
{
    ASSERT_EQ(sh("cp -r blend blend-ref && rm blend/b.png && cp steps/c.png c-ref.png && "
                 "touch -d @978307200 steps/a.png blend/a.png"),
              0);
    /* steps/c.png: an unfinished frame (1 step of 2) */
    RUN_OK("%s -p x -ii frames/c.png -i 1 -o steps/c.png", fast);
    ASSERT_EQ(image_step("steps/c.png"), 1);
    const char *err = RUN_OK("%s -p x -vsd frames", noseed);
    ASSERT(strstr(err, "steps/a.png is finished: skipped") != NULL && strstr(err, "seed 5"));
    ASSERT(same("steps/c.png", "c-ref.png"));
    ASSERT_EQ(sh("test \"$(stat -c %%Y steps/a.png)\" = 978307200"), 0); /* not rewritten */
    RUN_OK("%s -p x -vsd frames --video-style-blend 0.5 --save-frames blend", fast);
    ASSERT(same("blend/b.png", "blend-ref/b.png") && same("blend/c.png", "blend-ref/c.png"));
}

/* Bad sources and foreign files: one line, before the models load (the models named here do
 * not exist, so reaching them would fail otherwise). */
static void test_bad_input(void)
{
    const char *nomodels = "--vqgan /nope.ckpt --clip /nope.pt -s 32 32";
    cli_expect_error(cli_run("%s -p x -vsd missing", nomodels), 2, "missing");
    cli_expect_error(cli_run("%s -p x -vsd empty", nomodels), 1, "no frames");
    cli_expect_error(cli_run("%s -p x -vsd frames -ii frames/a.png", nomodels), 1, "-ii");
    cli_write_file("fake.mp4", "not a video\n");
    if (have_ffmpeg) {
        cli_expect_error(cli_run("%s -p x -vsd fake.mp4", nomodels), 2, "fake.mp4");
        ASSERT(!exists("output-frames") && !exists("output-frames.part"));
    }
    const char *env = cli_env;
    cli_env = "PATH=/nonexistent";
    cli_expect_error(cli_run("%s -p x -vsd fake.mp4", nomodels), 1, "ffmpeg");
    cli_env = env;
    /* a file vqclip did not write is never overwritten */
    ASSERT_EQ(sh("mkdir -p foreign && cp frames/a.png foreign/a.png"), 0);
    cli_expect_error(cli_run("%s -p x -vsd frames --save-frames foreign", nomodels), 1,
                     "foreign/a.png");
    ASSERT(same("foreign/a.png", "frames/a.png") && !exists("foreign/b.png"));
    /* nor is another source's frame taken for this one's, or a source replaced */
    ASSERT_EQ(sh("cp -r frames frames2"), 0);
    cli_expect_error(cli_run("%s -p x -vsd frames2", nomodels), 1, "another source");
    cli_expect_error(cli_run("%s -p x -vsd frames --save-frames frames/", nomodels), 1, "replace");
    ASSERT_EQ(sh("cp -r steps steps-norecord && rm steps-norecord/.vqclip-style"), 0);
    cli_expect_error(cli_run("%s -p x -vsd frames --save-frames steps-norecord", nomodels), 1,
                     "another run");
}

/* A video file: its frames extracted into OUTPUT-frames/, styled into steps/, encoded as
 * OUTPUT.mp4 at its frame rate with its audio; a folder with -vid at --video-fps. */
static void test_video_file(void)
{
    if (!have_ffmpeg) {
        fprintf(stderr, "test-video-style: no ffmpeg: video files not tested\n");
        return;
    }
    ASSERT_EQ(sh("ffmpeg -nostdin -loglevel error -f lavfi -i testsrc=size=48x32:rate=12 -f lavfi "
                 "-i sine=frequency=440 -t 0.25 -c:v libx264 -pix_fmt yuv420p -c:a aac clip.mp4"),
              0);
    cli_expect_error(cli_run("%s -p x -vsd clip.mp4 -o clip.png", fast), 1, "replace its source");
    ASSERT(!exists("clip-frames"));
    RUN_OK("%s -p x -vsd clip.mp4 -o styled.png --save-frames styled", fast);
    ASSERT(exists("styled-frames/000001.jpg") && exists("styled-frames/000003.jpg"));
    ASSERT(exists("styled/000001.jpg") && exists("styled/000003.jpg") && !exists("styled.png"));
    ASSERT_EQ(image_step("styled/000003.jpg"), 2); /* JPEG frames, written as JPEG */
    ASSERT(exists("styled.mp4"));
    ASSERT_EQ(sh("test \"$(ffprobe -v error -select_streams v:0 -show_entries stream=r_frame_rate "
                 "-of csv=p=0 styled.mp4)\" = 12/1"),
              0);
    ASSERT_EQ(sh("test \"$(ffprobe -v error -select_streams a -show_entries stream=codec_type "
                 "-of csv=p=0 styled.mp4)\" = audio"),
              0);
    ASSERT_EQ(sh("test \"$(ffprobe -v error -count_frames -select_streams v:0 -show_entries "
                 "stream=nb_read_frames -of csv=p=0 styled.mp4)\" = 3"),
              0);
    /* a rerun reuses the extracted frames and the finished ones */
    const char *err = RUN_OK("%s -p x -vsd clip.mp4 -o styled.png --save-frames styled", fast);
    ASSERT(strstr(err, "extracting") == NULL && strstr(err, "000003.jpg is finished") != NULL);
    RUN_OK("%s -p x -vsd frames -vid -o fold.png", fast);
    ASSERT_EQ(sh("test \"$(ffprobe -v error -count_frames -select_streams v:0 -show_entries "
                 "stream=nb_read_frames,r_frame_rate -of csv=p=0 fold.mp4)\" = 30/1,3"),
              0);
}

/* The step recorded in tmp/name; -1 when it cannot be read (not there yet). */
static int step_now(const char *name)
{
    char p[8400];
    int step = -1;
    path_of(name, p, sizeof p);
    return vqc_image_step(p, &step) == 0 ? step : -1;
}

/* Ctrl-C during a frame: exit 130, and the video holds the frames finished before it. */
static void test_interrupt(void)
{
    if (!have_ffmpeg)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        char cmd[20000];
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && exec %s %s -p x -cd cpu -s 32 32 -cuts 2 -i 40 -se 1 -q -vsd frames "
                 "--save-frames int -o int.png -vid 2>/dev/null",
                 cli_tmp, cli_bin, models);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    /* once the first frame is finished, however slow the machine (two minutes at most) */
    for (int i = 0; i < 6000 && step_now("int/a.png") != 40; i++)
        usleep(20000);
    ASSERT_EQ(step_now("int/a.png"), 40);
    kill(pid, SIGINT);
    int st;
    waitpid(pid, &st, 0);
    ASSERT(WIFEXITED(st));
    ASSERT_EQ(WEXITSTATUS(st), 130);
    int finished = 1 + (step_now("int/b.png") == 40);
    ASSERT(step_now("int/c.png") != 40);
    ASSERT_EQ(sh("test \"$(ffprobe -v error -count_frames -select_streams v:0 -show_entries "
                 "stream=nb_read_frames -of csv=p=0 int.mp4)\" = %d",
                 finished),
              0);
}

int main(void)
{
    cli_setup("video-style", models, sizeof models);
    /* on the CPU, where a seed repeats a picture to the last bit */
    snprintf(noseed, sizeof noseed, "%s -cd cpu -s 32 32 -cuts 2 -i 2", models);
    snprintf(fast, sizeof fast, "%s -sd 5", noseed);
    have_ffmpeg = system("command -v ffmpeg >/dev/null 2>&1 && command -v ffprobe >/dev/null "
                         "2>&1") == 0;
    make_frames();
    TEST_PART(test_folder());
    TEST_PART(test_blend());
    TEST_PART(test_resume());
    TEST_PART(test_bad_input());
    TEST_PART(test_video_file());
    TEST_PART(test_interrupt());
    fprintf(stderr, "test-video-style: ok\n");
    return 0;
}
