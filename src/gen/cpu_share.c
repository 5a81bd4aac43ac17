/* The CPUs a run may use and how busy other processes keep them (see cpu_share.h). */
#include "gen/cpu_share.h"

#include <dirent.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "torch/shim.h"

/* The first line of a file into buf; false when it cannot be read. */
static bool read_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(buf, (int)len, f) != NULL;
    fclose(f);
    return ok;
}

/* A cgroup v2 cpu.max ("QUOTA PERIOD" or "max PERIOD") or v1 quota and period as CPUs; 0 when
 * unlimited or unreadable. */
static double quota_v2(const char *path)
{
    char line[128], q[32];
    long long period = 0;
    if (!read_line(path, line, sizeof line) || sscanf(line, "%31s %lld", q, &period) != 2 ||
        period <= 0 || strcmp(q, "max") == 0)
        return 0;
    long long quota = atoll(q);
    return quota > 0 ? (double)quota / (double)period : 0;
}

static double quota_v1(const char *dir)
{
    char path[300], line[64];
    snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
    if (!read_line(path, line, sizeof line))
        return 0;
    long long quota = atoll(line);
    snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
    if (quota <= 0 || !read_line(path, line, sizeof line) || atoll(line) <= 0)
        return 0;
    return (double)quota / (double)atoll(line);
}

/* The quota of this process's cgroup (v2: its own folder, else the root a container sees; v1:
 * the cpu controller's folder as mounted), the smallest found. */
static double cgroup_quota(void)
{
    double best = 0;
    char line[512], path[700];
    FILE *f = fopen("/proc/self/cgroup", "r");
    while (f && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, "0::", 3) == 0) {
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/cpu.max", line + 3);
            double q = quota_v2(path);
            if (q > 0 && (best == 0 || q < best))
                best = q;
        }
    }
    if (f)
        fclose(f);
    const double roots[] = {quota_v2("/sys/fs/cgroup/cpu.max"), quota_v1("/sys/fs/cgroup/cpu"),
                            quota_v1("/sys/fs/cgroup/cpu,cpuacct")};
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++)
        if (roots[i] > 0 && (best == 0 || roots[i] < best))
            best = roots[i];
    return best;
}

/* Runnable threads on the system now (/proc/stat's procs_running), -1 when unknown. */
static int procs_running(void)
{
    char line[256];
    int n = -1;
    FILE *f = fopen("/proc/stat", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "procs_running %d", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

/* The state letter of a /proc .../stat line ("PID (comm) S ...", where comm may hold ')'
 * itself), with comm's start and length; 0 for a line of another shape. */
static char stat_state(const char *line, const char **comm, size_t *comm_len)
{
    const char *l = strchr(line, '('), *r = strrchr(line, ')');
    if (!l || !r || r < l || r[1] != ' ')
        return 0;
    *comm = l + 1;
    *comm_len = (size_t)(r - l - 1);
    return r[2];
}

/* This process's threads that are running now (state R in /proc/self/task/N/stat). */
static int own_running(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 1;
    int n = 0;
    struct dirent *e;
    char path[300], buf[512];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        const char *comm;
        size_t len;
        n += read_line(path, buf, sizeof buf) && stat_state(buf, &comm, &len) == 'R';
    }
    closedir(d);
    return n > 0 ? n : 1;
}

/* Other vqclip processes alive now (not stopped or exited), by /proc/N/stat's command name.
 * Each is a run about to compute on every CPU it may use, whatever it does this millisecond:
 * two runs started together (a script's `&`, xargs -P) sample each other while both sleep
 * between their samples, and the running-thread count alone missed them (docs/benchmarks.md). */
static int other_runs(void)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    long self = (long)getpid();
    int n = 0;
    struct dirent *e;
    char path[300], buf[512];
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || pid == self)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        const char *comm;
        size_t len;
        char state = read_line(path, buf, sizeof buf) ? stat_state(buf, &comm, &len) : 0;
        n += state && !strchr("ZXTt", state) && len == 6 && !strncmp(comm, "vqclip", 6);
    }
    closedir(d);
    return n;
}

/* The CPUs this process may use: the affinity mask, capped by the cgroup's quota. */
static void usable_cpus(vqc_cpu_info *s)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    s->online = online > 0 ? (int)online : 1;
    cpu_set_t set;
    s->affinity = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : s->online;
    s->quota = cgroup_quota();
    s->usable = s->affinity;
    if (s->quota > 0 && (int)ceil(s->quota - 1e-9) < s->usable)
        s->usable = (int)ceil(s->quota - 1e-9);
    if (s->usable < 1)
        s->usable = 1;
}

void vqc_cpu_info_read(vqc_cpu_info *s)
{
    memset(s, 0, sizeof *s);
    usable_cpus(s);
    /* the lowest of a few samples: a process that only starts and ends is not a neighbour */
    s->others_busy = -1;
    for (int i = 0; i < 4; i++) {
        int all = procs_running();
        int others = all < 0 ? 0 : all - own_running();
        if (s->others_busy < 0 || others < s->others_busy)
            s->others_busy = others < 0 ? 0 : others;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    int runs = other_runs();
    if (runs > 0 && runs * s->usable > s->others_busy)
        s->others_busy = runs * s->usable;
    double l[3];
    s->load1 = getloadavg(l, 1) == 1 ? l[0] : -1;
    s->contended = 4.0 * s->others_busy * s->usable / s->online >= s->usable;
}

int vqc_cpu_default_threads(void)
{
    vqc_cpu_info s;
    usable_cpus(&s);
    return s.usable;
}

int vqc_cpu_init_threads(int n_threads)
{
    return vqt_init(n_threads > 0 ? n_threads : vqc_cpu_default_threads());
}
