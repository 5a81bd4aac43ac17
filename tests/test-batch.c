/* Batches, sharding, skip-existing, variations, story mode and resumable state, driven through
 * the real binary as scripts and cron jobs use it. */
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testcli.h"

static char models[2200];

static int count_substr(const char *s, const char *sub)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, sub)); p += strlen(sub))
        n++;
    return n;
}

/* Number of .png files in cli_tmp/dir. */
static int count_png(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", cli_tmp, dir);
    DIR *d = opendir(path);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, ".png") != NULL && e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static int same_files(const char *a, const char *b)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd '%s' && cmp -s '%s' '%s'", cli_tmp, a, b);
    return system(cmd) == 0;
}

static const char *jobs =
    "a red fox\n"
    "# a comment, then a blank line\n"
    "\n"
    "{\"prompts\": \"a blue whale:1|waves:0.5\", \"seed\": 3, \"iterations\": 2}\n"
    "a green tree^a grey city\n"
    "{\"prompts\": \"a yellow sun\", \"size\": [32, 16]}\n";

static void test_batch_and_skip(void)
{
    cli_write_file("jobs.txt", jobs);
    ASSERT_EQ(
        cli_run("--batch jobs.txt %s -i 3 -o 'b/{index:04}-{slug}-{seed}.png' --json", models), 0);
    ASSERT_EQ(count_png("b"), 4);
    ASSERT_EQ(count_substr(cli_slurp("err.txt"), "models loaded"), 1); /* once for the batch */
    ASSERT(strstr(cli_slurp("out.txt"), "0001-a-blue-whale-3.png"));
    ASSERT_EQ(count_substr(cli_slurp("out.txt"), "\"status\":\"ok\""), 4);
    /* A killed batch: remove two results, keep a copy of one that stays. */
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && cp b/0001-a-blue-whale-3.png keep.png && "
             "rm b/0000-* b/0003-*",
             cli_tmp);
    ASSERT_EQ(system(cmd), 0);
    ASSERT_EQ(
        cli_run("--batch jobs.txt %s -i 3 -o 'b/{index:04}-{slug}-{seed}.png' --skip-existing "
                "--json",
                models),
        0);
    ASSERT_EQ(count_png("b"), 4);
    ASSERT_EQ(count_substr(cli_slurp("out.txt"), "\"status\":\"skipped\""), 2);
    ASSERT_EQ(count_substr(cli_slurp("out.txt"), "\"status\":\"ok\""), 2);
    ASSERT(same_files("keep.png", "b/0001-a-blue-whale-3.png"));
}

static void test_failures_continue(void)
{
    cli_write_file("bad.txt", "a cat\n{\"prompts\": \"x\", \"bogus\": 1}\n{\"prompts\": \"y\", "
                              "\"image_prompts\": \"/missing.png\"}\na dog\n");
    int st = cli_run("--batch bad.txt %s -i 1 -o 'f/{index}.png' --json", models);
    ASSERT(st == 1 || st == 2);
    ASSERT_EQ(count_png("f"), 2);
    ASSERT_EQ(count_substr(cli_slurp("out.txt"), "\"status\":\"failed\""), 2);
}

static void test_shards(void)
{
    cli_write_file("six.txt", "one\ntwo\nthree\nfour\nfive\nsix\n");
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(cli_run("--batch six.txt %s -i 1 -o 's/{index}.png' --shard %d/3", models, i), 0);
    ASSERT_EQ(count_png("s"), 6);
    /* Slurm's array variables (task ids from 5) and a Kubernetes indexed Job pick shards too. */
    const char *slurm[3] = {
        "SLURM_ARRAY_TASK_ID=5 SLURM_ARRAY_TASK_MIN=5 SLURM_ARRAY_TASK_COUNT=3",
        "SLURM_ARRAY_TASK_ID=6 SLURM_ARRAY_TASK_MIN=5 SLURM_ARRAY_TASK_COUNT=3",
        "SLURM_ARRAY_TASK_ID=7 SLURM_ARRAY_TASK_MIN=5 SLURM_ARRAY_TASK_COUNT=3"};
    for (int i = 0; i < 3; i++) {
        cli_env = slurm[i];
        ASSERT_EQ(cli_run("--batch six.txt %s -i 1 -o 'slurm/{index}.png'", models), 0);
    }
    ASSERT_EQ(count_png("slurm"), 6);
    cli_env = "JOB_COMPLETION_INDEX=1";
    ASSERT_EQ(cli_run("--batch six.txt %s -i 1 -o 'k/{index}.png' --shard-count 3", models), 0);
    ASSERT_EQ(count_png("k"), 2);
    ASSERT_EQ(cli_run("--batch six.txt %s -i 1 -o 'k/{index}.png'", models), 1); /* no count */
    /* A scheduler's variable that does not parse is an error naming it, not "no shard": every
     * task would run the whole batch. Nothing is written. */
    static const struct {
        const char *env, *named;
    } bad[] = {
        {"SLURM_ARRAY_TASK_ID=five SLURM_ARRAY_TASK_COUNT=3", "SLURM_ARRAY_TASK_ID='five'"},
        {"SLURM_ARRAY_TASK_ID=5 SLURM_ARRAY_TASK_COUNT=3x", "SLURM_ARRAY_TASK_COUNT='3x'"},
        {"SLURM_ARRAY_TASK_ID=5 SLURM_ARRAY_TASK_COUNT=3 SLURM_ARRAY_TASK_MIN=-1",
         "SLURM_ARRAY_TASK_MIN='-1'"},
        {"JOB_COMPLETION_INDEX=one", "JOB_COMPLETION_INDEX='one'"},
        {"JOB_COMPLETION_INDEX=1 VQCLIP_SHARD_COUNT=three", "VQCLIP_SHARD_COUNT='three'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cli_env = bad[i].env;
        cli_expect_error(cli_run("--batch six.txt %s -i 1 -o 'bad/{index}.png'", models), 1,
                         bad[i].named);
    }
    ASSERT_EQ(count_png("bad"), 0);
    cli_env = "";
    ASSERT_EQ(cli_run("--batch six.txt %s --shard 3/3", models), 1);
}

static void test_variations_and_story(void)
{
    cli_write_file("one.txt", "a lighthouse^a storm at sea\n");
    ASSERT_EQ(cli_run("--batch one.txt %s -i 4 -cpe 2 --variations 3 --seed 10 -o 'v/{seed}.png'",
                      models),
              0);
    ASSERT_EQ(count_png("v"), 3);
    char p[4096];
    snprintf(p, sizeof p, "%s/v/12.png", cli_tmp);
    ASSERT(access(p, F_OK) == 0);
}

static void test_resume(void)
{
    const char *base = "-p 'a lighthouse^a storm' -cpe 3 -s 32 32 --cutn 2 --seed 9 -q";
    ASSERT_EQ(cli_run("%s %s -i 10 -o full.png", models, base), 0);
    ASSERT_EQ(cli_run("%s %s -i 5 -o part.png --save-state st.safetensors", models, base), 0);
    ASSERT_EQ(cli_run("%s %s -i 10 -o resumed.png --resume st.safetensors", models, base), 0);
    ASSERT(same_files("full.png", "resumed.png"));
    /* Other settings are refused, naming what differs. */
    ASSERT_EQ(cli_run("%s -p 'a lighthouse' -s 32 32 --cutn 2 --seed 9 -i 10 -o x.png --resume "
                      "st.safetensors",
                      models),
              1);
    ASSERT(strstr(cli_slurp("err.txt"), "prompts="));
    ASSERT_EQ(cli_run("%s %s -i 10 -o x.png --resume jobs.txt", models, base), 2);
}

/* --video with ffmpeg encodes the frames; without it, a clear error before any work. */
static void test_video(void)
{
    /* A zoom video's frames: every step, the image zoomed and re-encoded every 2. */
    ASSERT_EQ(cli_run("%s -p fox -i 4 -zse 2 -zsc 0.9 -zsx 3 -o z.png --save-frames zf", models),
              0);
    ASSERT_EQ(count_png("zf"), 4);
    if (system("command -v ffmpeg >/dev/null 2>&1") != 0) {
        ASSERT_EQ(cli_run("%s -p fox -i 2 -o v.png --video v.mp4", models), 1);
        ASSERT(strstr(cli_slurp("err.txt"), "ffmpeg"));
        return;
    }
    ASSERT_EQ(cli_run("%s -p fox -i 3 -o v.png --video v.mp4", models), 0);
    char p[4096];
    snprintf(p, sizeof p, "%s/v.mp4", cli_tmp);
    struct stat st;
    ASSERT(stat(p, &st) == 0 && st.st_size > 0);
    ASSERT_EQ(cli_run("--batch jobs.txt %s --video v.mp4", models), 1);
}

static void test_new_user_errors(void)
{
    ASSERT_EQ(cli_run("%s -p cat --iteratoins 5", models), 1);
    ASSERT_EQ(cli_run("%s -p 'cat:heavy'", models), 1);
    ASSERT_EQ(cli_run("%s -p cat -ip /no/such.png", models), 2);
    ASSERT_EQ(cli_run("-p cat --vqgan '%s'", fixture_path("clip/tiny_vit.pt")), 2);
    ASSERT_EQ(cli_run("-p cat --vqgan /no/model.ckpt"), 2);
    ASSERT(strstr(cli_slurp("err.txt"), "/no/model.ckpt"));
}

int main(void)
{
    char base[2048];
    cli_setup("batch", base, sizeof base);
    snprintf(models, sizeof models, "%s -s 32 32 --cutn 2 -q", base);
    TEST_PART(test_batch_and_skip());
    TEST_PART(test_failures_continue());
    TEST_PART(test_shards());
    TEST_PART(test_variations_and_story());
    TEST_PART(test_resume());
    TEST_PART(test_video());
    TEST_PART(test_new_user_errors());
    fprintf(stderr, "test-batch: ok\n");
    return 0;
}
