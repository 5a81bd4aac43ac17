/* vqclip doctor: what this machine gives vqclip (libtorch, BLAS, threads, GPUs, models).
 *
 * Everything is read from the running process: the BLAS is the library that provides the
 * `sgemm_` libtorch calls (and every BLAS-like library in /proc/self/maps), checked and timed by
 * the library's vqc_system_check(); GPUs come from its CUDA device count plus NVML, which the
 * NVIDIA driver installs and which is opened with dlopen (no link-time dependency). */
#include "cli/cmd_doctor.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"
#include "vqclip.h"

/* ---- the report: text rows and a JSON tree built side by side ------------------------------ */

typedef struct {
    int json;           /* --json: print only the JSON object */
    cJSON *root;        /* the JSON report */
    cJSON *warns;       /* root.warnings */
    int matmul_ok;      /* libtorch computed a correct product */
    int cuda0_fails;    /* cuda:0, the default device, does not compute correctly */
    vqc_system_info si; /* threads, CUDA devices and the correctness check */
} report;

/* Prints "label       text" in text mode. */
static void row(const report *r, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void row(const report *r, const char *label, const char *fmt, ...)
{
    if (r->json)
        return;
    va_list ap;
    va_start(ap, fmt);
    printf("%-12s ", label);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

/* Records a warning (printed after the report in text mode). */
static void warn(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(report *r, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON_AddItemToArray(r->warns, cJSON_CreateString(msg));
}

static void add_str_or_null(cJSON *o, const char *key, const char *s)
{
    if (s)
        cJSON_AddStringToObject(o, key, s);
    else
        cJSON_AddNullToObject(o, key);
}

/* "980.1 MB" (decimal units, as download sizes are quoted). */
static const char *fmt_bytes(double b, char *buf, size_t len)
{
    if (b >= 1e9)
        snprintf(buf, len, "%.1f GB", b / 1e9);
    else if (b >= 1e6)
        snprintf(buf, len, "%.1f MB", b / 1e6);
    else if (b >= 1e3)
        snprintf(buf, len, "%.1f kB", b / 1e3);
    else
        snprintf(buf, len, "%.0f B", b);
    return buf;
}

/* ---- threads ---------------------------------------------------------------------------- */

static void check_threads(report *r)
{
    int threads = r->si.n_threads;
    vqc_cpu_info ci;
    vqc_cpu_info_read(&ci);
    const char *omp = getenv("OMP_NUM_THREADS"), *wait = getenv("OMP_WAIT_POLICY");
    cJSON *t = cJSON_AddObjectToObject(r->root, "threads");
    cJSON_AddNumberToObject(t, "intra_op", threads);
    cJSON_AddNumberToObject(t, "cores_online", ci.online);
    cJSON_AddNumberToObject(t, "cores_allowed", ci.affinity);
    cJSON_AddNumberToObject(t, "cgroup_quota", ci.quota);
    cJSON_AddNumberToObject(t, "cores_usable", ci.usable);
    cJSON_AddNumberToObject(t, "others_running", ci.others_busy);
    cJSON_AddNumberToObject(t, "load1", ci.load1);
    cJSON_AddBoolToObject(t, "contended", ci.contended);
    add_str_or_null(t, "OMP_NUM_THREADS", omp);
    add_str_or_null(t, "OMP_WAIT_POLICY", wait);
    char quota[48] = "";
    if (ci.quota > 0)
        snprintf(quota, sizeof quota, ", a cgroup quota of %.2g", ci.quota);
    row(r, "threads", "%d (cores: %d online, %d allowed to this process%s%s%s)", threads, ci.online,
        ci.affinity, quota, omp ? "; OMP_NUM_THREADS=" : "", omp ? omp : "");
    row(r, "cpu load", "%d threads of other processes running now, load average %.2f%s",
        ci.others_busy, ci.load1,
        ci.contended ? ": contended (runs wait passively, as OMP_WAIT_POLICY=PASSIVE)" : "");
    if (threads > ci.usable)
        warn(r,
             "%d threads on %d usable cores (a job scheduler's CPU set or a container's quota?) "
             "oversubscribes them: pass --threads %d",
             threads, ci.usable, ci.usable);
    if (ci.contended)
        warn(r,
             "other work keeps %d of the %d usable cores busy: a run takes longer; vqclip waits "
             "passively instead of spinning (keep your own choice with OMP_WAIT_POLICY)",
             ci.others_busy < ci.usable ? ci.others_busy : ci.usable, ci.usable);
}

/* ---- BLAS --------------------------------------------------------------------------------- */

/* The implementation a BLAS library path belongs to; sets *reference for netlib's. */
static const char *blas_kind(const char *path, int *reference)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    *reference = 0;
    if (strstr(path, "openblas"))
        return "OpenBLAS";
    if (strstr(path, "mkl"))
        return "Intel MKL";
    if (strstr(path, "blis"))
        return "BLIS";
    if (strstr(path, "flexiblas"))
        return "FlexiBLAS";
    if (strstr(path, "atlas"))
        return "ATLAS";
    if (strstr(path, "armpl"))
        return "Arm Performance Libraries";
    if (strncmp(base, "libblas.", 8) == 0 && strstr(path, "/blas/")) {
        *reference = 1; /* Debian's netlib package: /usr/lib/<triplet>/blas/libblas.so.3 */
        return "reference BLAS (netlib)";
    }
    return "unknown BLAS";
}

static int is_blas_name(const char *base)
{
    static const char *const prefixes[] = {"libblas.", "libopenblas", "libmkl_",   "libblis",
                                           "libatlas", "libsatlas",   "libtatlas", "libflexiblas",
                                           "libcblas", "libarmpl",    NULL};
    for (int i = 0; prefixes[i]; i++)
        if (strncmp(base, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    return 0;
}

/* Adds every BLAS-like shared library mapped into this process (from /proc/self/maps). */
static void list_mapped_blas(cJSON *arr)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[PATH_MAX + 256];
    while (f && fgets(line, sizeof line, f)) {
        char *path = strchr(line, '/');
        if (!path)
            continue;
        path[strcspn(path, "\n")] = 0;
        const char *base = strrchr(path, '/') + 1;
        if (!is_blas_name(base))
            continue;
        int seen = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, arr) seen |= strcmp(it->valuestring, path) == 0;
        if (!seen)
            cJSON_AddItemToArray(arr, cJSON_CreateString(path));
    }
    if (f)
        fclose(f);
}

/* The file of the library that provides `sym` in the global scope, resolved through links
 * (Debian's alternatives); NULL when no loaded library exports it. */
static const char *provider_of(const char *sym, char *buf)
{
    Dl_info info;
    void *addr = dlsym(RTLD_DEFAULT, sym);
    if (!addr || !dladdr(addr, &info) || !info.dli_fname)
        return NULL;
    if (!realpath(info.dli_fname, buf))
        snprintf(buf, PATH_MAX, "%s", info.dli_fname);
    return buf;
}

/* The library's own description, where the active `kind` has one (OpenBLAS, MKL, BLIS):
 * another BLAS can be loaded beside it (LAPACK's), so the kind decides whose is asked. */
static void blas_config(const char *kind, char *out, size_t len)
{
    char *(*ob_config)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "openblas_get_config");
    int (*ob_par)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "openblas_get_parallel");
    void (*mkl_version)(char *, int) =
        (void (*)(char *, int))dlsym(RTLD_DEFAULT, "mkl_get_version_string");
    const char *(*blis_version)(void) =
        (const char *(*)(void))dlsym(RTLD_DEFAULT, "bli_info_get_version_str");
    static const char *const par[] = {"sequential", "pthreads", "OpenMP"};
    *out = 0;
    if (!kind)
        return;
    if (ob_config && strcmp(kind, "OpenBLAS") == 0) {
        int p = ob_par ? ob_par() : -1;
        snprintf(out, len, "%s%s%s", ob_config(), p >= 0 && p <= 2 ? ", " : "",
                 p >= 0 && p <= 2 ? par[p] : "");
    } else if (mkl_version && strcmp(kind, "Intel MKL") == 0) {
        mkl_version(out, (int)len);
    } else if (blis_version && strcmp(kind, "BLIS") == 0) {
        snprintf(out, len, "BLIS %s", blis_version());
    }
}

/* The product was checked by vqc_system_check() (r->si); the speed is measured by a second
 * call, after the BLAS is named, so that a failure of either is reported where it happened. */
static void check_blas(report *r, int threads, int bench)
{
    char lib[PATH_MAX], config[512];
    cJSON *b = cJSON_AddObjectToObject(r->root, "blas");
    r->matmul_ok = r->si.matmul_ok;
    cJSON_AddBoolToObject(b, "matmul_ok", r->matmul_ok);
    if (!r->matmul_ok) {
        row(r, "matmul", "FAILED: %s", r->si.matmul_error);
        cJSON_AddStringToObject(b, "error", r->si.matmul_error);
    }
    /* After the product, so that a lazily loaded BLAS is mapped too. */
    const char *path = provider_of("sgemm_", lib);
    if (!path)
        path = provider_of("cblas_sgemm", lib);
    cJSON *mapped = cJSON_AddArrayToObject(b, "mapped");
    list_mapped_blas(mapped);
    int reference = 0;
    const char *kind = path ? blas_kind(path, &reference) : NULL;
    blas_config(kind, config, sizeof config);
    add_str_or_null(b, "library", path);
    add_str_or_null(b, "kind", kind);
    cJSON_AddBoolToObject(b, "reference", reference);
    add_str_or_null(b, "config", *config ? config : NULL);
    if (path)
        row(r, "BLAS", "%s: %s", kind, path);
    else
        row(r, "BLAS", "no sgemm_ exported by a loaded library (built into libtorch?)");
    if (*config)
        row(r, "", "%s", config);
    if (reference)
        warn(r, "CPU matrix products use the reference BLAS (netlib), many times slower than "
                "OpenBLAS: apt-get install libopenblas0-openmp (Debian selects it), or "
                "update-alternatives --config libblas.so.3-$(gcc -dumpmachine)");
    if (!bench || !r->matmul_ok)
        return;
    vqc_system_info timed;
    int rc = vqc_system_check(threads, true, &timed);
    if (rc == 0 && timed.matmul_ok) {
        cJSON_AddNumberToObject(b, "gflops_1024", timed.matmul_gflops);
        row(r, "matmul", "%.1f GFLOP/s (1024x1024 float32 on the CPU)", timed.matmul_gflops);
    } else {
        const char *why = rc ? vqc_last_error() : timed.matmul_error;
        r->matmul_ok = 0;
        row(r, "matmul", "FAILED: %s", why);
        cJSON_ReplaceItemInObject(b, "matmul_ok", cJSON_CreateBool(0));
        cJSON_AddStringToObject(b, "error", why);
    }
}

/* ---- GPUs ----------------------------------------------------------------------------------- */

/* NVML's C ABI (stable since driver R319); only what is used here. */
typedef struct nvml_device_st *nvml_device;
typedef struct {
    unsigned long long total, free, used;
} nvml_memory;

typedef struct {
    void *lib;
    int (*init)(void);
    int (*shutdown)(void);
    int (*count)(unsigned *);
    int (*handle)(unsigned, nvml_device *);
    int (*name)(nvml_device, char *, unsigned);
    int (*memory)(nvml_device, nvml_memory *);
    int (*driver)(char *, unsigned);
} nvml_api;

static int nvml_open(nvml_api *n)
{
    memset(n, 0, sizeof *n);
    n->lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!n->lib)
        return -1;
    *(void **)&n->init = dlsym(n->lib, "nvmlInit_v2");
    *(void **)&n->shutdown = dlsym(n->lib, "nvmlShutdown");
    *(void **)&n->count = dlsym(n->lib, "nvmlDeviceGetCount_v2");
    *(void **)&n->handle = dlsym(n->lib, "nvmlDeviceGetHandleByIndex_v2");
    *(void **)&n->name = dlsym(n->lib, "nvmlDeviceGetName");
    *(void **)&n->memory = dlsym(n->lib, "nvmlDeviceGetMemoryInfo");
    *(void **)&n->driver = dlsym(n->lib, "nvmlSystemGetDriverVersion");
    if (!n->init || !n->shutdown || !n->count || !n->handle || !n->name || !n->memory ||
        n->init() != 0) {
        dlclose(n->lib);
        return -1;
    }
    return 0;
}

/* Lists the driver's GPUs with free memory; returns how many (0 without NVML). */
static int list_nvml_gpus(report *r, cJSON *gpus, char *driver, size_t dlen)
{
    nvml_api n;
    unsigned count = 0;
    *driver = 0;
    if (nvml_open(&n) != 0)
        return 0;
    if (n.driver && n.driver(driver, (unsigned)dlen) != 0)
        *driver = 0;
    if (n.count(&count) != 0)
        count = 0;
    for (unsigned i = 0; i < count; i++) {
        nvml_device dev;
        char name[96] = "?", fr[32], tot[32];
        nvml_memory mem = {0, 0, 0};
        if (n.handle(i, &dev) != 0)
            continue;
        n.name(dev, name, sizeof name);
        int have_mem = n.memory(dev, &mem) == 0;
        cJSON *g = cJSON_CreateObject();
        cJSON_AddNumberToObject(g, "nvml_index", i);
        cJSON_AddStringToObject(g, "name", name);
        if (have_mem) {
            cJSON_AddNumberToObject(g, "free_bytes", (double)mem.free);
            cJSON_AddNumberToObject(g, "total_bytes", (double)mem.total);
        }
        cJSON_AddItemToArray(gpus, g);
        row(r, i == 0 ? "GPUs" : "", "%u: %s, %s free of %s", i, name,
            have_mem ? fmt_bytes((double)mem.free, fr, sizeof fr) : "?",
            have_mem ? fmt_bytes((double)mem.total, tot, sizeof tot) : "?");
    }
    n.shutdown();
    dlclose(n.lib);
    return (int)count;
}

/* Each device libtorch can use, under the name --device gives it: what it is, the precision a
 * run takes on it, and whether it computes (vqc_cuda_device_check). A libtorch built without a
 * GPU's architecture loads, lists the GPU and fails at its first kernel: the Python tools'
 * users meet that at the first step of a run, doctor meets it here. cuda:0, the default
 * device, failing makes vqclip unable to run here; another one failing is a warning. */
static void check_cuda_devices(report *r, cJSON *c, int ndev)
{
    cJSON *devs = cJSON_AddArrayToObject(c, "checked");
    for (int i = 0; i < ndev; i++) {
        vqc_cuda_device_info d;
        if (vqc_cuda_device_check(i, &d) != 0) {
            warn(r, "cuda:%d: %s", i, vqc_last_error());
            continue;
        }
        char cc[32] = "compute capability unknown", fr[32];
        if (d.cc_major >= 0)
            snprintf(cc, sizeof cc, "compute capability %d.%d", d.cc_major, d.cc_minor);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", i);
        add_str_or_null(o, "name", *d.name ? d.name : NULL);
        if (d.cc_major >= 0) {
            snprintf(fr, sizeof fr, "%d.%d", d.cc_major, d.cc_minor);
            cJSON_AddStringToObject(o, "compute_capability", fr);
        } else {
            cJSON_AddNullToObject(o, "compute_capability");
        }
        if (d.free_bytes >= 0)
            cJSON_AddNumberToObject(o, "free_bytes", (double)d.free_bytes);
        else
            cJSON_AddNullToObject(o, "free_bytes");
        cJSON_AddStringToObject(o, "precision", vqc_precision_name(d.precision));
        cJSON_AddBoolToObject(o, "compute_ok", d.compute_ok);
        add_str_or_null(o, "compute_error", d.compute_ok ? NULL : d.compute_error);
        cJSON_AddItemToArray(devs, o);
        row(r, i == 0 ? "devices" : "", "cuda:%d: %s, %s, %s free; precision %s; %s", i,
            *d.name ? d.name : "(name unknown)", cc,
            d.free_bytes >= 0 ? fmt_bytes((double)d.free_bytes, fr, sizeof fr) : "?",
            vqc_precision_name(d.precision), d.compute_ok ? "computes correctly" : "FAILS");
        if (!d.compute_ok) {
            warn(r, "cuda:%d does not compute correctly: %s", i, d.compute_error);
            if (strstr(d.compute_error, "no kernel image") && d.cc_major >= 0)
                warn(r,
                     "cuda:%d: this libtorch was built without kernels for %s; install a "
                     "PyTorch whose CUDA build lists sm_%d%d (torch.cuda.get_arch_list())",
                     i, cc, d.cc_major, d.cc_minor);
            if (i == 0)
                r->cuda0_fails = 1;
        }
    }
    bool graphs = vqc_cuda_graphs_built();
    cJSON_AddBoolToObject(c, "graphs_built", graphs);
    if (ndev > 0) {
        row(r, "", "CUDA graphs: %s",
            graphs ? "on (the decoder, CLIP and the codebook search replay "
                     "recorded graphs)"
                   : "off in this build");
        if (!graphs)
            warn(r, "this build has no CUDA graphs (its libtorch's graph API did not compile: "
                    "cmake said why); every step's operators are launched one by one, slower on "
                    "a GPU");
    }
}

static void check_gpus(report *r)
{
    cJSON *c = cJSON_AddObjectToObject(r->root, "cuda");
    int ndev = r->si.n_cuda_devices;
    const char *visible = getenv("CUDA_VISIBLE_DEVICES");
    char driver[96];
    cJSON_AddNumberToObject(c, "devices", ndev);
    add_str_or_null(c, "CUDA_VISIBLE_DEVICES", visible);
    row(r, "CUDA", "%d device%s usable by libtorch%s%s", ndev, ndev == 1 ? "" : "s",
        visible ? "; CUDA_VISIBLE_DEVICES=" : "", visible ? visible : "");
    cJSON *gpus = cJSON_AddArrayToObject(c, "gpus");
    int ngpu = list_nvml_gpus(r, gpus, driver, sizeof driver);
    add_str_or_null(c, "driver", *driver ? driver : NULL);
    if (*driver)
        row(r, "", "NVIDIA driver %s (GPUs in NVML order, all of them)", driver);
    if (ngpu > 0 && ndev == 0)
        warn(r,
             "%d NVIDIA GPU%s present, but this libtorch has no CUDA support (Debian's is "
             "CPU-only): vqclip runs on the CPU; build against a CUDA libtorch (README, "
             "'Building by hand')",
             ngpu, ngpu == 1 ? " is" : "s are");
    check_cuda_devices(r, c, ndev);
}

/* The download script as installed (cmake/install.cmake); scripts/download-models.sh in a
 * checkout. */
#define DOWNLOADER "vqclip-download-models"
#define DOWNLOADER_SRC "(scripts/download-models.sh in a checkout)"

/* ---- models --------------------------------------------------------------------------------- */

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

static int is_model_file(const char *name)
{
    static const char *const sufs[] = {".ckpt", ".pt", ".safetensors", ".gz", ".part", NULL};
    if (name[0] == '.')
        return 0;
    for (int i = 0; sufs[i]; i++)
        if (has_suffix(name, sufs[i]))
            return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists one models folder: model files with sizes, incomplete downloads flagged. */
static void list_dir(report *r, const char *dir, cJSON *dirs)
{
    cJSON *d = cJSON_CreateObject(), *files = NULL;
    cJSON_AddStringToObject(d, "path", dir);
    cJSON_AddItemToArray(dirs, d);
    DIR *dp = opendir(dir);
    cJSON_AddBoolToObject(d, "exists", dp != NULL);
    if (!dp) {
        row(r, "", "%s: %s", dir, errno == ENOENT ? "(none)" : strerror(errno));
        return;
    }
    char *names[512];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) && n < 512)
        if (is_model_file(e->d_name))
            names[n++] = strdup(e->d_name);
    closedir(dp);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    row(r, "", "%s:%s", dir, n ? "" : " no model files");
    files = cJSON_AddArrayToObject(d, "files");
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX], sz[32];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        double bytes = stat(path, &st) == 0 ? (double)st.st_size : -1;
        int partial = has_suffix(names[i], ".part");
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "name", names[i]);
        cJSON_AddNumberToObject(f, "bytes", bytes);
        cJSON_AddBoolToObject(f, "partial", partial);
        cJSON_AddItemToArray(files, f);
        row(r, "", "  %-36s %10s%s", names[i], fmt_bytes(bytes, sz, sizeof sz),
            partial ? "  (incomplete download)" : "");
        if (partial)
            warn(r,
                 "%s is an incomplete download: run " DOWNLOADER " again " DOWNLOADER_SRC
                 " to resume it",
                 path);
        free(names[i]);
    }
}

/* Resolves one default model name as generation would. */
static void check_default(report *r, cJSON *defs, vqc_model_kind kind, const char *name,
                          const char *option)
{
    static const char *const keys[] = {"vqgan", "clip", "bpe"};
    static const char *const what[] = {"VQGAN model", "CLIP model", "BPE vocabulary"};
    const char *key = keys[kind];
    char path[PATH_MAX], sz[32];
    struct stat st;
    cJSON *o = cJSON_AddObjectToObject(defs, key);
    cJSON_AddStringToObject(o, "name", name);
    if (vqc_model_find(kind, name, path, sizeof path) == 0 && stat(path, &st) == 0) {
        cJSON_AddStringToObject(o, "path", path);
        cJSON_AddNumberToObject(o, "bytes", (double)st.st_size);
        row(r, "", "%-6s %s -> %s (%s)", key, name, path,
            fmt_bytes((double)st.st_size, sz, sizeof sz));
        return;
    }
    cJSON_AddNullToObject(o, "path");
    row(r, "", "%-6s %s: not found", key, name);
    warn(r,
         "the default %s '%s' was not found: download it with '" DOWNLOADER " %s' " DOWNLOADER_SRC
         " or pass %s PATH",
         what[kind], name, kind == VQC_MODEL_BPE ? "bpe" : name, option);
}

static void check_models(report *r)
{
    cJSON *m = cJSON_AddObjectToObject(r->root, "models");
    cJSON *defs = cJSON_AddObjectToObject(m, "defaults");
    row(r, "models", "defaults:");
    check_default(r, defs, VQC_MODEL_VQGAN, VQC_DEFAULT_VQGAN, "--vqgan");
    check_default(r, defs, VQC_MODEL_CLIP, VQC_DEFAULT_CLIP, "--clip");
    check_default(r, defs, VQC_MODEL_BPE, VQC_DEFAULT_BPE, "--bpe");
    char demo[PATH_MAX];
    if (vqc_demo_dir(demo, sizeof demo) == 0) {
        vqc_context_params none = vqc_context_default_params(); /* no model named */
        int used = vqc_uses_demo_models(&none);
        cJSON_AddStringToObject(m, "demo", demo);
        cJSON_AddBoolToObject(m, "demo_used", used);
        row(r, "", "demo   %s%s", demo,
            used ? " (used when no model is named: the defaults are missing)" : "");
    } else {
        cJSON_AddNullToObject(m, "demo");
        cJSON_AddBoolToObject(m, "demo_used", 0);
    }
    const char *dirs[8];
    int nd = vqc_model_dirs(dirs, 8);
    const char *env = getenv("VQCLIP_MODELS");
    row(r, "", "folders searched ($VQCLIP_MODELS %s):", env && *env ? "first" : "is not set");
    cJSON *arr = cJSON_AddArrayToObject(m, "dirs");
    for (int i = 0; i < nd; i++)
        list_dir(r, dirs[i], arr);
}

/* ---- the command ------------------------------------------------------------------------------
 */

static void usage(FILE *f)
{
    fprintf(f, "usage: vqclip doctor [--json] [--threads N] [--no-bench]\n\n"
               "Checks what this machine gives vqclip: the libtorch version, the BLAS library\n"
               "doing CPU matrix products (a warning for the slow reference BLAS) and its speed\n"
               "on a 1024x1024 product, the CPU threads, the GPUs with free memory, each CUDA\n"
               "device by its --device name with the precision a run takes there and a check\n"
               "that it computes correctly, and the model files in each models folder.\n\n"
               "  --json        one JSON object on stdout instead of the text report\n"
               "  --threads N   CPU threads to measure with (default: all cores)\n"
               "  --no-bench    skip the speed measurement (a small product still checks\n"
               "                that libtorch computes correctly)\n\n"
               "Exit status: 0 vqclip can run here (warnings included), 1 bad usage,\n"
               "3 libtorch cannot compute a correct matrix product (on the CPU, or on cuda:0,\n"
               "the default device when there is a GPU).\n");
}

/* Parses the options into *json, *threads, *bench. Returns -1 to exit 0 (help), 0 to go on,
 * or 1 after printing a usage error. */
static int parse_args(int argc, char **argv, int *json, int *threads, int *bench)
{
    enum { O_JSON = 256, O_THREADS, O_NOBENCH, O_HELP };
    static const struct option lo[] = {{"json", no_argument, 0, O_JSON},
                                       {"threads", required_argument, 0, O_THREADS},
                                       {"no-bench", no_argument, 0, O_NOBENCH},
                                       {"help", no_argument, 0, O_HELP},
                                       {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        char *end;
        switch (c) {
        case O_JSON: *json = 1; break;
        case O_NOBENCH: *bench = 0; break;
        case O_THREADS:
            errno = 0;
            *threads = (int)strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || *threads < 1 || *threads > 4096) {
                fprintf(stderr,
                        "vqclip: error: doctor: --threads needs a number from 1 to "
                        "4096, not '%s'\n",
                        optarg);
                return 1;
            }
            break;
        case 'h':
        case O_HELP: usage(stdout); return -1;
        default:
            cli_option_error("doctor", c, argv);
            cli_print_error(NULL);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vqclip: error: doctor: unexpected argument '%s'\n", argv[optind]);
        return 1;
    }
    return 0;
}

int cmd_doctor(int argc, char **argv)
{
    int json = 0, threads = 0, bench = 1;
    int rc = parse_args(argc, argv, &json, &threads, &bench);
    if (rc)
        return rc < 0 ? 0 : rc;
    report r = {json, NULL, NULL, 0, 0, {0}};
    if (vqc_system_check(threads, false, &r.si) != 0) {
        cli_print_error(NULL);
        return 3;
    }
    r.root = cJSON_CreateObject();
    cJSON_AddStringToObject(r.root, "vqclip", vqc_version());
    cJSON_AddStringToObject(r.root, "libtorch", vqc_torch_version());
    r.warns = cJSON_AddArrayToObject(r.root, "warnings");
    row(&r, "vqclip", "%s", vqc_version());
    row(&r, "libtorch", "%s", vqc_torch_version());
    check_threads(&r);
    check_blas(&r, threads, bench);
    check_gpus(&r);
    check_models(&r);
    int ok = r.matmul_ok && !r.cuda0_fails;
    cJSON_AddBoolToObject(r.root, "ok", ok);
    if (json) {
        char *s = cJSON_PrintUnformatted(r.root);
        printf("%s\n", s ? s : "{}");
        free(s);
    } else {
        const cJSON *w;
        cJSON_ArrayForEach(w, r.warns) printf("warning: %s\n", w->valuestring);
        printf("%s\n", !ok                               ? "vqclip cannot run here (see above)"
                       : cJSON_GetArraySize(r.warns) > 0 ? "vqclip can run here, with warnings"
                                                         : "vqclip can run here");
    }
    cJSON_Delete(r.root);
    return ok ? 0 : 3;
}
