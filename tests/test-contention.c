/* A run on a machine that other work keeps busy: vqc_cpu_info sees the other work and the CPUs
 * this process may use; the command line then restarts itself with a passive OpenMP wait
 * policy (its idle threads sleep instead of spinning on a core the neighbour needs), keeps a
 * policy the user chose, and writes the same picture either way. The thread count is not
 * touched: pictures depend on it. */
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include "testcli.h"
#include "vqclip.h"

#define MAX_SPINNERS 64
static pid_t spinners[MAX_SPINNERS];
static int n_spinners;

/* Starts processes that only spin: enough to make a quarter of the CPUs busy, and one more. */
static void start_neighbours(void)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int n = (int)(online / 4) + 1;
    for (n_spinners = 0; n_spinners < n && n_spinners < MAX_SPINNERS; n_spinners++) {
        pid_t p = fork();
        ASSERT(p >= 0);
        if (p == 0) {
            alarm(120); /* never outlive a crashed test */
            for (volatile unsigned long i = 0;; i++)
                ;
        }
        spinners[n_spinners] = p;
    }
    usleep(200000); /* let them reach the run queue */
}

static void stop_neighbours(void)
{
    for (int i = 0; i < n_spinners; i++) {
        kill(spinners[i], SIGKILL);
        waitpid(spinners[i], NULL, 0);
    }
    n_spinners = 0;
}

/* The library's view: the usable CPUs within the online ones, the neighbours counted, and an
 * affinity mask of one CPU making one usable CPU. */
static void test_cpu_info(void)
{
    vqc_cpu_info ci;
    start_neighbours();
    vqc_cpu_info_read(&ci);
    stop_neighbours();
    fprintf(stderr, "  busy: online %d, affinity %d, quota %.2f, usable %d, others %d, load %.2f\n",
            ci.online, ci.affinity, ci.quota, ci.usable, ci.others_busy, ci.load1);
    ASSERT(ci.online >= 1);
    ASSERT(ci.usable >= 1 && ci.usable <= ci.affinity && ci.affinity <= ci.online);
    ASSERT(ci.others_busy >= n_spinners || ci.others_busy >= 1);
    ASSERT(ci.contended);

    pid_t p = fork();
    ASSERT(p >= 0);
    if (p == 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0)
            _exit(3);
        vqc_cpu_info_read(&ci);
        _exit(ci.affinity == 1 && ci.usable == 1 ? 0 : 1);
    }
    int st;
    ASSERT_EQ(waitpid(p, &st, 0), p);
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* The command line under a busy neighbour: restarted with OMP_WAIT_POLICY=PASSIVE (its log says
 * so), the same bytes as a run that keeps the user's ACTIVE policy, and a user's
 * GOMP_SPINCOUNT is left alone. */
static void test_cli_restart(void)
{
    char models[8192];
    cli_setup("test-contention", models, sizeof models);
    const char *args = "-p 'a red square' -s 32 -i 4 --cutn 4 --seed 11 -q";

    start_neighbours();
    int passive = cli_run("%s %s -o passive.png", models, args);
    const char *err = cli_expect_ok(passive, "the run beside a busy neighbour");
    bool restarted = strstr(err, "OpenMP wait policy PASSIVE") != NULL;
    if (!restarted)
        fprintf(stderr, "  stderr: %s\n", err);
    cli_env = "OMP_WAIT_POLICY=ACTIVE";
    err = cli_expect_ok(cli_run("%s %s -o active.png", models, args), "the ACTIVE run");
    ASSERT(strstr(err, "OpenMP wait policy ACTIVE"));
    cli_env = "GOMP_SPINCOUNT=1000";
    err = cli_expect_ok(cli_run("%s %s -o spin.png", models, args), "the GOMP_SPINCOUNT run");
    ASSERT(!strstr(err, "OpenMP wait policy"));
    cli_env = "";
    stop_neighbours();
    ASSERT(restarted);

    char cmd[8400];
    snprintf(cmd, sizeof cmd, "cd '%s' && cmp passive.png active.png && cmp passive.png spin.png",
             cli_tmp);
    ASSERT_EQ(system(cmd), 0);
}

/* Another vqclip process counts as a busy neighbour whatever it is doing at the moment of the
 * samples: here one that only sleeps (sleep(1) run under the name vqclip, through a link). */
static void test_sibling_run(void)
{
    char dir[4096], link[4200];
    snprintf(dir, sizeof dir, "%s", test_tmpdir("contention-sibling"));
    snprintf(link, sizeof link, "%s/vqclip", dir);
    unlink(link);
    const char *sleeper = access("/bin/sleep", X_OK) == 0 ? "/bin/sleep" : "/usr/bin/sleep";
    ASSERT_EQ(symlink(sleeper, link), 0);
    pid_t p = fork();
    ASSERT(p >= 0);
    if (p == 0) {
        execl(link, "vqclip", "30", (char *)NULL);
        _exit(127);
    }
    usleep(100000); /* let it exec */
    vqc_cpu_info ci;
    vqc_cpu_info_read(&ci);
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
    fprintf(stderr, "  a sleeping sibling: others %d of usable %d\n", ci.others_busy, ci.usable);
    ASSERT(ci.others_busy >= ci.usable);
    ASSERT(ci.contended);
}

/* Two runs started together, as a script's `&` or xargs -P start them: both restart passive.
 * Until 2026-12-07 each sampled the other while both slept between samples; both kept
 * spinning, and the demo's pair took 23 times as long as a lone run (docs/benchmarks.md). */
static void test_cli_pair(void)
{
    char models[8192], cmd[20000];
    cli_setup("test-contention-pair", models, sizeof models);
    const char *args = "-p 'a red square' -s 32 -i 2 --cutn 4 --seed 11";
    snprintf(cmd, sizeof cmd,
             "cd '%s' && { %s %s %s -o a.png 2>a.err & %s %s %s -o b.png 2>b.err & wait; }",
             cli_tmp, cli_bin, models, args, cli_bin, models, args);
    ASSERT_EQ(system(cmd), 0);
    const char *a = cli_slurp("a.err");
    ASSERT(strstr(a, "OpenMP wait policy PASSIVE"));
    ASSERT(strstr(cli_slurp("b.err"), "OpenMP wait policy PASSIVE"));
}

/* doctor names the contention it sees, in its table and its JSON. */
static void test_doctor(void)
{
    start_neighbours();
    int st = cli_run("doctor --json --no-bench");
    stop_neighbours();
    const char *out = cli_slurp("out.txt");
    ASSERT_EQ(st, 0); /* a warning is not a failure */
    ASSERT(strstr(out, "\"contended\":true"));
    ASSERT(strstr(out, "\"cores_usable\":"));
}

int main(void)
{
    /* the policy is what the command line decides here: none may come from outside */
    unsetenv("OMP_WAIT_POLICY");
    unsetenv("GOMP_SPINCOUNT");
    TEST_PART(test_cpu_info());
    TEST_PART(test_cli_restart());
    TEST_PART(test_sibling_run());
    TEST_PART(test_cli_pair());
    TEST_PART(test_doctor());
    fprintf(stderr, "test-contention: ok\n");
    return 0;
}
