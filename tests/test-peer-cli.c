/* Command lines as nerdyrodent/VQGAN-CLIP's users write them, copied in form from its README and
 * its scripts (zoom.sh, opt_tester.sh, random.sh, local/video_styler.sh), run on the fixture
 * models at a tiny size: each must succeed and write what generate.py would write, under the
 * same names (the output, steps/N.png frames, OUTPUT.mp4). */
#include <sys/stat.h>

#include "testcli.h"

static char models[8192], fast[8400], small[8500];

static bool exists(const char *name)
{
    char p[8400];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", cli_tmp, name);
    return stat(p, &st) == 0 && st.st_size > 0;
}

#define RUN_OK(...) cli_expect_ok(cli_run(__VA_ARGS__), #__VA_ARGS__)

/* The README's examples. */
static void test_readme(void)
{
    RUN_OK("%s -p \"A painting of an apple in a fruit bowl\"", small);
    ASSERT(exists("output.png")); /* generate.py's default name */
    RUN_OK("%s -p \"A painting of an apple in a fruit bowl | psychedelic | surreal:0.5 | "
           "weird:0.25\" -o multi.png",
           small);
    RUN_OK("%s -p \"A painting of an apple in a fruit bowl\" -ip \"output.png\" -o ip.png", small);
    RUN_OK("%s -p \"A painting of an apple in a fruit bowl\" -ii \"output.png\" -o ii.png", small);
    RUN_OK("%s -cpe 1 -p \"A painting of a banana^A painting of an apple\" -o story.png", small);
    RUN_OK("%s -p \"A painting of an apple\" -aug Ji Sh Gn -o aug.png", small);
    /* every code of the README's list, the warps included, kept in the order given */
    RUN_OK(
        "%s -p \"A painting of an apple\" -aug Ts Et Pe -aug Ro Af Cr Er Re Ji Sh Gn -o augw.png",
        small);
    RUN_OK("%s -p \"An apple\" -opt AdamW -lr 0.2 -cutm original -cuts 2 -cutp 1.5 -o opt.png",
           small);
    RUN_OK("%s -p=\"a|b\" -nps 1 2 -npw 0.5 0.5 -o nps.png", small);
    /* -cutm original is generate.py's MakeCutoutsOrig: no augmentations, no cut noise */
    char cmd[8400];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && grep -a -q -- \"--augments 'none'\" opt.png && grep -a -q -- "
             "'--cut-noise 0 ' opt.png",
             cli_tmp);
    ASSERT_EQ(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && grep -a -q -- \"--augments 'Ts,Et,Pe,Ro,Af,Cr,Er,Re,Ji,Sh,Gn'\" augw.png",
             cli_tmp);
    ASSERT_EQ(system(cmd), 0);
    ASSERT(exists("multi.png") && exists("ip.png") && exists("ii.png") && exists("story.png") &&
           exists("aug.png") && exists("opt.png") && exists("nps.png"));
}

/* zoom.sh: '=' forms and a feedback loop on one file. */
static void test_zoom_sh(void)
{
    RUN_OK("%s -p=\"A painting of zooming in to a surreal, alien world\" -opt=\"Adam\" -lr=0.1 "
           "-i=2 -se=2 --seed=123 -o=\"Zoom.png\"",
           fast);
    for (int i = 0; i < 2; i++)
        RUN_OK("%s -p=\"A painting of zooming in to a surreal, alien world\" -opt=\"Adam\" -lr=0.1 "
               "-i=2 -se=2 --seed=123 -ii=\"Zoom.png\" -o=\"Zoom.png\"",
               fast);
    ASSERT(exists("Zoom.png"));
}

/* opt_tester.sh: "-d True" (twice), -nps/-npw, -lr ".1", -s HEIGHT WIDTH. */
static void test_opt_tester(void)
{
    RUN_OK("%s -p \"A painting in the style of Paul Gauguin\" -in pixels -o "
           "\"opt\"/\"000\"-\"Adam\"-\".1\"-\"1\".png -opt \"Adam\" -lr \".1\" -i \"2\" -se \"2\" "
           "-s \"32\" \"32\" --seed \"7\" -d True -iw 1 -nps 666 -npw \"1\" -d True",
           fast);
    ASSERT(exists("opt/000-Adam-.1-1.png"));
}

/* random.sh and local/video_styler.sh (JPEG frames in, JPEG out), and -vsd. */
static void test_random_and_styler(void)
{
    RUN_OK("%s -p \"A painting of a spinning fish and a egg in the style of Picasso and Pop Art\" "
           "-o \"1\".png",
           small);
    ASSERT(exists("1.png"));
    RUN_OK("%s -p x -o frame-0001.jpg", small);
    RUN_OK("%s -p \"Oil painting of a woman in the foreground | pencil art landscape background\" "
           "-ii \"frame-0001.jpg\" -o \"frame-0001.jpg-out.jpg\" -opt \"Adagrad\" -lr \"0.2\" -i "
           "\"2\" "
           "-se \"2\" -s \"32\" \"32\" -sd \"9\" -d True",
           fast);
    ASSERT(exists("frame-0001.jpg-out.jpg"));
    /* the same with generate.py's own -vsd: each frame of the folder as steps/<its name> */
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "cd '%s' && mkdir -p VideoFrames && cp frame-0001.jpg VideoFrames/",
             cli_tmp);
    ASSERT_EQ(system(cmd), 0);
    RUN_OK("%s -p \"Oil painting of a woman in the foreground | pencil art landscape background\" "
           "-vsd VideoFrames -opt \"Adagrad\" -lr \"0.2\" -i \"2\" -se \"2\" -s \"32\" \"32\" -sd "
           "\"9\" "
           "-d True",
           fast);
    ASSERT(exists("steps/frame-0001.jpg"));
}

/* -vid: the start and every step as steps/N.png (0.png first) and the video OUTPUT.mp4 (from
 * 1.png); -zvid: the start and each zoom's frame (every -zse steps, numbered 0, 1, ...), the
 * default zoom scale zooming out. */
static void test_videos(void)
{
    bool ffmpeg = system("command -v ffmpeg >/dev/null 2>&1") == 0;
    int st = cli_run("%s -p \"A painting of an apple\" -i 3 -vid -o vid.png", small);
    if (!ffmpeg) {
        cli_expect_error(st, 1, "ffmpeg");
        return;
    }
    cli_expect_ok(st, "-vid");
    ASSERT(exists("steps/0.png") && exists("steps/1.png") && exists("steps/2.png") &&
           exists("steps/3.png")); /* 0.png: the picture before the first step */
    ASSERT(!exists("steps/00001.png"));
    ASSERT(exists("vid.mp4"));
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/steps'", cli_tmp);
    ASSERT_EQ(system(cmd), 0);
    RUN_OK("%s -p \"zooming\" -i 4 -zvid -zse 2 -vl 1 -ofps 12 -ifps 5 -o zvid.png", small);
    ASSERT(exists("steps/0.png") && exists("steps/1.png") && exists("steps/2.png") &&
           !exists("steps/3.png"));
    ASSERT(exists("zvid.mp4"));
}

int main(void)
{
    cli_setup("peer-cli", models, sizeof models);
    snprintf(fast, sizeof fast, "%s -s 32 32 -cuts 2", models); /* tiny, then the forms */
    snprintf(small, sizeof small, "%s -i 2", fast);
    TEST_PART(test_readme());
    TEST_PART(test_zoom_sh());
    TEST_PART(test_opt_tester());
    TEST_PART(test_random_and_styler());
    TEST_PART(test_videos());
    fprintf(stderr, "test-peer-cli: ok\n");
    return 0;
}
