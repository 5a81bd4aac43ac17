/* Unattended batches (issue 21): a batch killed at random moments (SIGKILL, SIGINT, SIGTERM) and
 * run again with --skip-existing ends with every picture finished, byte for byte the pictures of
 * an uninterrupted batch; and a template that would give two jobs one file is refused before
 * any job runs. The tiny fixture models (VQCLIP_FIXTURES), 32x32. VQCLIP_KILL_SEED fixes the random
 * moments (the seed used is printed). */
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "testcli.h"

static char models[2048];

static const char *jobs = "a red fox\n"
                          "{\"prompts\": \"a blue whale:1|waves:0.5\", \"seed\": 3}\n"
                          "a green tree^a grey city\n"
                          "{\"prompts\": \"a yellow sun\", \"size\": [32, 16]}\n"
                          "a lighthouse in a storm\n"
                          "a quiet harbour at dawn\n";

static const char *common = "-s 32 32 --cutn 2 -i 8 -se 2 -q --skip-existing";

/* Starts the batch into folder `dir` in the background; returns its pid. */
static pid_t start_batch(const char *dir)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && exec %s --batch jobs.txt %s %s -o '%s/{index}.png' "
             ">/dev/null 2>>kills.log",
             cli_tmp, cli_bin, models, common, dir);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int files_equal(const char *a, const char *b)
{
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "cd '%s' && cmp -s '%s' '%s'", cli_tmp, a, b);
    return system(cmd) == 0;
}

static void test_random_kills(void)
{
    cli_write_file("jobs.txt", jobs);
    double t0 = vqc_now();
    ASSERT_EQ(cli_run("--batch jobs.txt %s %s -o 'ref/{index}.png'", models, common), 0);
    double whole = vqc_now() - t0; /* the kills fall inside such a run, however fast it is */
    const char *seed_env = getenv("VQCLIP_KILL_SEED");
    unsigned seed = seed_env ? (unsigned)atoi(seed_env) : (unsigned)time(NULL);
    fprintf(stderr, "random kills with VQCLIP_KILL_SEED=%u\n", seed);
    srand(seed);
    static const int sigs[] = {SIGKILL, SIGINT, SIGTERM};
    int killed = 0;
    for (int round = 0; round < 20; round++) {
        pid_t pid = start_batch("out");
        /* somewhere in a run of the six jobs: start-up, a step, a snapshot being written; the
         * first round within the first 70% of an uninterrupted run, so that it cuts it short */
        usleep((useconds_t)(1e6 * whole * (0.02 + 0.68 * rand() / (double)RAND_MAX)));
        int sig = sigs[rand() % 3], st;
        kill(pid, sig);
        ASSERT_EQ(waitpid(pid, &st, 0), pid);
        if (WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0))
            killed++;
        fprintf(stderr, "  round %2d: signal %d, %s\n", round, sig,
                WIFSIGNALED(st)   ? "killed"
                : WEXITSTATUS(st) ? "stopped"
                                  : "had already finished");
    }
    fprintf(stderr, "  %d of 20 rounds cut the batch short\n", killed);
    ASSERT(killed > 0);
    /* the last run finishes whatever is left */
    ASSERT_EQ(cli_run("--batch jobs.txt %s %s -o 'out/{index}.png'", models, common), 0);
    for (int i = 0; i < 6; i++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "ref/%d.png", i);
        snprintf(b, sizeof b, "out/%d.png", i);
        if (!files_equal(a, b))
            TEST_FAIL("job %d: after the killed runs its picture differs from the uninterrupted "
                      "batch's (%s)",
                      i, cli_slurp("err.txt"));
    }
}

static void test_clashing_names(void)
{
    cli_write_file("dup.txt", "a red fox\na blue cat\na red fox\n");
    /* the same prompt twice: {slug} names them alike */
    cli_expect_error(cli_run("--batch dup.txt %s %s -o 'clash/{slug}.png'", models, common), 1,
                     "would both write");
    char clash[4200], cmd[8600]; /* no job ran: nothing was written */
    snprintf(clash, sizeof clash, "%s/clash", cli_tmp);
    snprintf(cmd, sizeof cmd, "test -z \"$(ls '%s' 2>/dev/null)\"", clash);
    ASSERT_EQ(system(cmd), 0);
    /* variations of one prompt under {slug} alone, as the issue found */
    cli_write_file("one.txt", "a red fox\n");
    cli_expect_error(
        cli_run("--batch one.txt %s %s --variations 2 -o 'v/{slug}.png'", models, common), 1,
        "would both write");
    /* with {seed} they differ */
    ASSERT_EQ(
        cli_run("--batch one.txt %s %s --variations 2 -o 'v/{slug}-{seed}.png'", models, common),
        0);
}

int main(void)
{
    cli_setup("unattended", models, sizeof models);
    TEST_PART(test_clashing_names());
    TEST_PART(test_random_kills());
    fprintf(stderr, "test-unattended: ok\n");
    return 0;
}
