/* scripts/slurm-batch.sh on a real one-node Slurm cluster started by this test: munged,
 * slurmctld and slurmd (Debian's slurm-wlm and munge) with a minimal slurm.conf, all on
 * 127.0.0.1 with free ports and their state in a private /tmp folder. The script submits a
 * 3-task job array over a 5-job batch file (tiny fixture models); every image must be made
 * exactly once: 5 files named from the template, and the tasks' JSON lines show each job done
 * once, by the task whose shard it is. The daemons are shut down whatever happens (and are
 * bounded by timeout(1) should this process be killed). Skips (77) only when Slurm or munge
 * is not installed. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testhelp.h"

#define TASKS 3
#define JOBS 5
#define JOB_WAIT_S 120

static char state[64] = "/tmp/vqclip-slurm-XXXXXX"; /* short: it holds the munge socket */
static char conf[160], tmp[4096], outdir[4200], logdir[4200], jobid[32];
static pid_t daemons[3];
static int ndaemons, passed;

static const char *const prompts[JOBS] = {"a red apple", "a blue sky over hills",
                                          "green grass:1|blur:-0.5", "a yellow sun", "purple rain"};
static const char *const slugs[JOBS] = {"a-red-apple", "a-blue-sky-over-hills", "green-grass",
                                        "a-yellow-sun", "purple-rain"};

/* ---- helpers ----------------------------------------------------------------------------- */

/* Runs a shell command bounded by `secs`, stdout to tmp/out.txt, stderr to tmp/err.txt. */
static int sh(int secs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sh(int secs, const char *fmt, ...)
{
    char body[12000], cmd[24576];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "timeout %d sh -c '%s' >'%s/out.txt' 2>'%s/err.txt' </dev/null", secs,
             body, tmp, tmp);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *path)
{
    static char bufs[2][1 << 18];
    static int next;
    char *buf = bufs[next++ % 2];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, sizeof bufs[0] - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = 0;
    return buf;
}

static char *tmp_text(const char *name)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", tmp, name);
    return slurp(p);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fchmod(fileno(f), mode) != 0 || fclose(f) != 0)
        TEST_FAIL("cannot write %s", path);
}

/* A TCP port on 127.0.0.1 that is free right now. */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        TEST_FAIL("cannot find a free port on 127.0.0.1");
    close(fd);
    return ntohs(a.sin_port);
}

/* Starts `argv` in the background under `timeout 300`, output to state/LOG. */
static void spawn(const char *log, const char *const *argv)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", state, log);
    pid_t pid = fork();
    if (pid == 0) {
        const char *args[16] = {"timeout", "300"};
        int n = 2;
        for (int i = 0; argv[i] && n < 15; i++)
            args[n++] = argv[i];
        args[n] = NULL;
        if (!freopen(path, "w", stdout) || dup2(fileno(stdout), 2) < 0)
            _exit(126);
        execvp("timeout", (char *const *)args);
        _exit(127);
    }
    if (pid < 0)
        TEST_FAIL("fork failed");
    daemons[ndaemons++] = pid;
}

static int daemon_died(void)
{
    for (int i = 0; i < ndaemons; i++)
        if (daemons[i] > 0 && waitpid(daemons[i], NULL, WNOHANG) == daemons[i]) {
            daemons[i] = -1;
            return 1;
        }
    return 0;
}

static void print_tail(const char *path)
{
    char cmd[4400];
    fprintf(stderr, "---- %s\n", path);
    fflush(stderr);
    snprintf(cmd, sizeof cmd, "tail -n 25 '%s' >&2 2>/dev/null", path);
    if (system(cmd) != 0)
        fprintf(stderr, "(none)\n");
}

/* atexit: cancels the job, shuts the cluster down, stops what is left, removes the state. */
static void stop_cluster(void)
{
    char cmd[512];
    if (!passed) {
        static const char *const logs[] = {"munged.log", "slurmctld.log", "slurmd.log"};
        for (int i = 0; i < 3; i++) {
            char p[256];
            snprintf(p, sizeof p, "%s/%s", state, logs[i]);
            print_tail(p);
        }
    }
    if (*jobid) {
        snprintf(cmd, sizeof cmd, "timeout 15 scancel %s >/dev/null 2>&1", jobid);
        (void)!system(cmd);
    }
    (void)!system("timeout 15 scontrol shutdown >/dev/null 2>&1");
    for (int round = 0; round < 3; round++) {
        int alive = 0;
        for (int t = 0; t < 50; t++) { /* 5 s */
            alive = 0;
            for (int i = 0; i < ndaemons; i++)
                if (daemons[i] > 0) {
                    if (waitpid(daemons[i], NULL, WNOHANG) == daemons[i])
                        daemons[i] = -1;
                    else
                        alive++;
                }
            if (!alive)
                break;
            usleep(100000);
        }
        if (!alive)
            break;
        for (int i = 0; i < ndaemons; i++) /* timeout(1) passes the signal on */
            if (daemons[i] > 0)
                kill(daemons[i], round == 0 ? SIGTERM : SIGKILL);
        if (round == 1) { /* the daemons themselves, should timeout(1) be gone */
            snprintf(cmd, sizeof cmd,
                     "for p in '%s'/*.pid; do [ -f \"$p\" ] && kill -9 $(cat \"$p\"); done "
                     ">/dev/null 2>&1",
                     state);
            (void)!system(cmd);
        }
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", state);
    (void)!system(cmd);
}

/* ---- the cluster ------------------------------------------------------------------------- */

static void write_conf(const char *host, const char *user)
{
    char text[4096];
    int ctld_port = free_port(), slurmd_port = free_port();
    while (slurmd_port == ctld_port)
        slurmd_port = free_port();
    snprintf(text, sizeof text,
             "ClusterName=vqctest\n"
             "SlurmctldHost=%s(127.0.0.1)\n"
             "SlurmctldPort=%d\n"
             "SlurmdPort=%d\n"
             "SlurmUser=%s\n"
             "SlurmdUser=%s\n"
             "AuthType=auth/munge\n"
             "AuthInfo=socket=%s/munge.sock\n"
             "CredType=cred/munge\n"
             "StateSaveLocation=%s/ctld\n"
             "SlurmdSpoolDir=%s/spool\n"
             "SlurmctldPidFile=%s/slurmctld.pid\n"
             "SlurmdPidFile=%s/slurmd.pid\n"
             "SlurmctldLogFile=%s/slurmctld.log\n"
             "SlurmdLogFile=%s/slurmd.log\n"
             "ProctrackType=proctrack/linuxproc\n"
             "TaskPlugin=task/none\n"
             "SelectType=select/cons_tres\n"
             "SelectTypeParameters=CR_CPU\n"
             "SlurmdParameters=config_overrides\n"
             "MpiDefault=none\n"
             "JobCompType=jobcomp/none\n"
             "JobAcctGatherType=jobacct_gather/none\n"
             "AccountingStorageType=accounting_storage/none\n"
             "MailProg=/bin/true\n"
             "ReturnToService=2\n"
             "NodeName=%s NodeAddr=127.0.0.1 CPUs=%ld State=UNKNOWN\n"
             "PartitionName=vqctest Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
             host, ctld_port, slurmd_port, user, user, state, state, state, state, state, state,
             state, host, sysconf(_SC_NPROCESSORS_ONLN));
    write_text(conf, text, 0644);
}

/* Removes SLURM_* / SBATCH_* settings inherited from an outer job, which sbatch would obey. */
static void clean_env(void)
{
    extern char **environ;
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; *e; e++)
            if ((!strncmp(*e, "SLURM_", 6) || !strncmp(*e, "SBATCH_", 7)) &&
                strncmp(*e, "SLURM_CONF=", 11) != 0) {
                char name[256];
                snprintf(name, sizeof name, "%.*s", (int)strcspn(*e, "="), *e);
                unsetenv(name);
                again = 1;
                break;
            }
    }
}

static void start_cluster(void)
{
    char host[256], key[256], sock[256], path[300];
    struct passwd *pw = getpwuid(getuid());
    if (!mkdtemp(state))
        TEST_FAIL("mkdtemp failed");
    atexit(stop_cluster);
    gethostname(host, sizeof host);
    host[sizeof host - 1] = 0;
    host[strcspn(host, ".")] = 0;
    snprintf(conf, sizeof conf, "%s/slurm.conf", state);
    snprintf(key, sizeof key, "%s/munge.key", state);
    snprintf(sock, sizeof sock, "%s/munge.sock", state);
    ASSERT_EQ(sh(20, "mkdir -p %s/ctld %s/spool && head -c 1024 /dev/urandom >%s && chmod 600 %s",
                 state, state, key, key),
              0);
    clean_env();
    setenv("SLURM_CONF", conf, 1);
    write_conf(host, pw ? pw->pw_name : "root");

    char a_sock[300], a_key[300], a_pid[300], a_seed[300];
    snprintf(a_sock, sizeof a_sock, "--socket=%s", sock);
    snprintf(a_key, sizeof a_key, "--key-file=%s", key);
    snprintf(a_pid, sizeof a_pid, "--pid-file=%s/munged.pid", state);
    snprintf(a_seed, sizeof a_seed, "--seed-file=%s/munged.seed", state);
    spawn("munged.log", (const char *[]){"munged", "-F", "-f", a_sock, a_key, a_pid, a_seed, NULL});
    for (int i = 0; i < 100 && access(sock, F_OK) != 0; i++) /* 10 s */
        usleep(100000);
    if (access(sock, F_OK) != 0)
        TEST_FAIL("munged did not start");
    spawn("slurmctld.out", (const char *[]){"slurmctld", "-D", "-f", conf, NULL});
    spawn("slurmd.out", (const char *[]){"slurmd", "-D", "-f", conf, "-N", host, NULL});
    for (int i = 0; i < 60; i++) { /* 30 s */
        if (daemon_died())
            break;
        if (sh(10, "sinfo -h -N -o %%t") == 0 && strstr(tmp_text("out.txt"), "idle"))
            return;
        usleep(500000);
    }
    snprintf(path, sizeof path, "%s/slurmctld.out", state);
    print_tail(path);
    snprintf(path, sizeof path, "%s/slurmd.out", state);
    print_tail(path);
    TEST_FAIL("the Slurm node did not become idle; sinfo: %s %s", tmp_text("out.txt"),
              tmp_text("err.txt"));
}

/* ---- the job array ----------------------------------------------------------------------- */

static void submit(void)
{
    char script[4096], batch[4300],
        text[1024] = "# five prompts; blank lines and comments "
                     "are not jobs\n";
    snprintf(script, sizeof script, "%s", __FILE__); /* tests/test-slurm.c */
    *strrchr(script, '/') = 0;
    *strrchr(script, '/') = 0;
    strcat(script, "/scripts/slurm-batch.sh");
    for (int i = 0; i < JOBS; i++) {
        strcat(text, prompts[i]);
        strcat(text, i == 2 ? "\n\n" : "\n");
    }
    snprintf(batch, sizeof batch, "%s/prompts.txt", tmp);
    write_text(batch, text, 0644);
    int rc = sh(60,
                "bash \"%s\" --tasks %d --partition vqctest --time 10 --job-name vqctest "
                "--vqclip \"%s\" --log-dir \"%s\" \"%s\" -o \"%s/{index:04}-{slug}-{seed}.png\" "
                "--vqgan \"%s\" --clip \"%s\" --bpe \"%s\" -s 32 32 --cutn 2 -i 2 --json",
                script, TASKS, getenv("VQCLIP_BIN"), logdir, batch, outdir,
                fixture_path("vqgan/tiny_vq.ckpt"), fixture_path("clip/tiny_vit.pt"),
                fixture_path("clip/bpe_simple_vocab_16e6.txt.gz"));
    snprintf(jobid, sizeof jobid, "%.*s", (int)strspn(tmp_text("out.txt"), "0123456789"),
             tmp_text("out.txt"));
    if (rc != 0 || !*jobid)
        TEST_FAIL("slurm-batch.sh exit %d, stdout '%s', stderr: %s", rc, tmp_text("out.txt"),
                  tmp_text("err.txt"));
}

/* Waits until the array has left the queue; then every task must have COMPLETED with 0. */
static void wait_for_job(void)
{
    time_t end = time(NULL) + JOB_WAIT_S;
    for (;;) {
        if (sh(15, "squeue -h -j %s -o %%T", jobid) == 0 && !*tmp_text("out.txt"))
            break;
        if (time(NULL) > end)
            TEST_FAIL("job %s still queued or running after %d s: %s", jobid, JOB_WAIT_S,
                      tmp_text("out.txt"));
        if (daemon_died())
            TEST_FAIL("a Slurm daemon died while job %s ran", jobid);
        sleep(1);
    }
    ASSERT_EQ(sh(15, "scontrol -o show job %s", jobid), 0);
    char summary[1024] = "";
    int done = 0, lines = 0;
    for (const char *l = tmp_text("out.txt"); *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : "") {
        int task = -1;
        char st[32] = "?", code[32] = "?";
        const char *a = strstr(l, "ArrayTaskId="), *b = strstr(l, "JobState="),
                   *c = strstr(l, "ExitCode=");
        if (a)
            sscanf(a, "ArrayTaskId=%d", &task);
        if (b)
            sscanf(b, "JobState=%31s", st);
        if (c)
            sscanf(c, "ExitCode=%31s", code);
        lines++;
        done += strcmp(st, "COMPLETED") == 0 && strcmp(code, "0:0") == 0;
        size_t at = strlen(summary);
        snprintf(summary + at, sizeof summary - at, " [task %d: %s, exit %s]", task, st, code);
    }
    if (done != TASKS || lines != TASKS) {
        for (int t = 0; t < TASKS; t++) {
            char log[4400];
            snprintf(log, sizeof log, "%s/vqclip-%s_%d.log", logdir, jobid, t);
            print_tail(log);
        }
        TEST_FAIL("expected %d tasks COMPLETED with exit 0:0, got%s", TASKS, summary);
    }
}

/* Each task's log holds one JSON line per job it ran: every index once, from its own shard. */
static void check_logs(void)
{
    int seen[JOBS] = {0};
    for (int t = 0; t < TASKS; t++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/vqclip-%s_%d.log", logdir, jobid, t);
        const char *log = slurp(path);
        for (const char *p = log; (p = strstr(p, "\"event\":\"job\"")) != NULL; p++) {
            int index = -1;
            const char *ix = strstr(p, "\"index\":");
            if (!ix || sscanf(ix + 8, "%d", &index) != 1 || index < 0 || index >= JOBS)
                TEST_FAIL("bad job line in %s: %.200s", path, p);
            if (!strstr(p, "\"status\":\"ok\"") || strstr(p, "\"status\":\"ok\"") > strchr(p, '\n'))
                TEST_FAIL("job %d did not succeed in %s: %.300s", index, path, p);
            if (index % TASKS != t)
                TEST_FAIL("task %d ran job %d, which is shard %d's", t, index, index % TASKS);
            seen[index]++;
        }
    }
    for (int i = 0; i < JOBS; i++)
        if (seen[i] != 1)
            TEST_FAIL("job %d was made %d times (expected once)", i, seen[i]);
}

/* The output folder holds exactly the 5 images, named {index:04}-{slug}-{seed}.png. */
static void check_images(void)
{
    int seen[JOBS] = {0}, files = 0;
    DIR *d = opendir(outdir);
    struct dirent *e;
    ASSERT(d != NULL);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        files++;
        int index, used = 0;
        unsigned long long seed;
        char slug[128];
        if (sscanf(e->d_name, "%4d-%127[a-z-]%n", &index, slug, &used) != 2 || index < 0 ||
            index >= JOBS)
            TEST_FAIL("unexpected file %s in %s", e->d_name, outdir);
        char *dash = strrchr(slug, '-'); /* the slug ends where "-SEED.png" starts */
        if (dash && dash[1] == 0)
            *dash = 0;
        if (strcmp(slug, slugs[index]) != 0 ||
            sscanf(e->d_name + used, "%llu.png%n", &seed, &used) != 1)
            TEST_FAIL("file %s does not follow {index:04}-{slug}-{seed}.png for '%s'", e->d_name,
                      prompts[index]);
        seen[index]++;
    }
    closedir(d);
    for (int i = 0; i < JOBS; i++)
        if (seen[i] != 1)
            TEST_FAIL("image %d is there %d times", i, seen[i]);
    ASSERT_EQ(files, JOBS);
}

int main(void)
{
    const char *path = getenv("PATH");
    char newpath[8192];
    snprintf(newpath, sizeof newpath, "%s:/usr/sbin:/sbin", path ? path : "/usr/bin:/bin");
    setenv("PATH", newpath, 1);
    if (system("for c in munged slurmctld slurmd sbatch squeue scontrol sinfo scancel; do "
               "command -v $c >/dev/null || exit 1; done") != 0)
        TEST_SKIP("Slurm or munge is not installed (apt-get install slurm-wlm munge)");
    if (!getenv("VQCLIP_BIN"))
        TEST_FAIL("VQCLIP_BIN is not set (run through ctest)");
    fixture_path("vqgan/tiny_vq.ckpt"); /* skips without the fixtures, before any daemon */
    snprintf(tmp, sizeof tmp, "%s", test_tmpdir("slurm"));
    snprintf(outdir, sizeof outdir, "%s/out", tmp);
    snprintf(logdir, sizeof logdir, "%s/logs", tmp);
    ASSERT_EQ(sh(20, "rm -rf \"%s\" \"%s\"", outdir, logdir), 0);

    TEST_PART(start_cluster());
    TEST_PART(submit());
    TEST_PART(wait_for_job());
    TEST_PART(check_images());
    TEST_PART(check_logs());
    passed = 1;
    printf("slurm: job %s made %d images over %d tasks\n", jobid, JOBS, TASKS);
    return 0;
}
