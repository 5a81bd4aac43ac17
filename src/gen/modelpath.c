#include "gen/modelpath.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/error.h"
#include "vqclip.h"

#ifndef VQCLIP_DATADIR
#define VQCLIP_DATADIR "/usr/local/share/vqclip/models"
#endif
#ifndef VQCLIP_DEMO_DIR
#define VQCLIP_DEMO_DIR "" /* the source tree's models/demo, set by CMakeLists.txt */
#endif

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int vqc_model_dirs(const char **dirs, int max)
{
    static char cache[4096];
    int n = 0;
    const char *env = getenv("VQCLIP_MODELS"), *home = getenv("HOME");
    if (env && *env && n < max)
        dirs[n++] = env;
    if (home && *home && n < max) {
        snprintf(cache, sizeof cache, "%s/.cache/vqclip", home);
        dirs[n++] = cache;
    }
    if (n < max)
        dirs[n++] = VQCLIP_DATADIR;
    return n;
}

static const char *const suffixes[3][4] = {
    [VQC_MODEL_VQGAN] = {"", ".ckpt", ".safetensors", NULL},
    [VQC_MODEL_CLIP] = {"", ".pt", ".safetensors", NULL},
    [VQC_MODEL_BPE] = {"", NULL},
};

/* Whether a name is meant as a file path rather than a model name: VQGAN and vocabulary names
 * never hold a '/', CLIP names do ("ViT-B/32"), so for CLIP only an explicit path counts (a
 * leading '/', '.' or '~', or a weight file's extension). */
static bool is_path(vqc_model_kind kind, const char *name)
{
    static const char *const exts[] = {".pt", ".pth", ".safetensors", ".bin", ".ckpt"};
    if (name[0] == '/' || name[0] == '.' || name[0] == '~')
        return true;
    if (kind != VQC_MODEL_CLIP)
        return strchr(name, '/') != NULL;
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        size_t e = strlen(exts[i]);
        if (n > e && strcmp(name + n - e, exts[i]) == 0)
            return true;
    }
    return false;
}

int vqc_model_find(vqc_model_kind kind, const char *name, char *out, size_t len)
{
    static const char *const what[] = {"VQGAN model", "CLIP model", "CLIP BPE vocabulary"};
    if (is_file(name)) {
        snprintf(out, len, "%s", name);
        return 0;
    }
    struct stat st;
    if (is_path(kind, name))
        return vqc_error_set(VQC_ERR_IO, "%s file %s %s", what[kind], name,
                             stat(name, &st) == 0 ? "is not a regular file" : "does not exist");
    char base[512];
    snprintf(base, sizeof base, "%s", name);
    if (kind == VQC_MODEL_CLIP)
        for (char *p = base; *p; p++)
            *p = *p == '/' || *p == '@' ? '-' : *p; /* "ViT-L/14@336px" -> "ViT-L-14-336px" */
    const char *dirs[4];
    int nd = vqc_model_dirs(dirs, 4);
    char tried[2048] = "";
    size_t at = 0;
    for (int d = 0; d < nd; d++) {
        for (int s = 0; suffixes[kind][s]; s++) {
            snprintf(out, len, "%s/%s%s", dirs[d], base, suffixes[kind][s]);
            if (is_file(out))
                return 0;
            if (at < sizeof tried)
                at += (size_t)snprintf(tried + at, sizeof tried - at, "%s%s", at ? ", " : "", out);
        }
    }
    return vqc_error_set(VQC_ERR_IO,
                         "%s '%s' not found (tried %s, %s); put the file in one of those "
                         "folders or pass its path (see models/README.md)",
                         what[kind], name, name, tried);
}

int vqc_model_find_yaml(const char *ckpt, char *out, size_t len)
{
    const char *dot = strrchr(ckpt, '.'), *slash = strrchr(ckpt, '/');
    size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - ckpt) : strlen(ckpt);
    snprintf(out, len, "%.*s.yaml", (int)stem, ckpt);
    return is_file(out) ? 0 : -1;
}

/* ---- the demo set ---------------------------------------------------------------------- */

/* Whether `dir` holds all files of the demo set. */
static int demo_complete(const char *dir)
{
    static const char *const files[] = {VQC_DEMO_VQGAN, VQC_DEMO_CLIP, VQC_DEMO_BPE, "merges.txt"};
    char path[4200];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (!is_file(path))
            return 0;
    }
    return 1;
}

int vqc_demo_dir(char *out, size_t len)
{
    const char *const dirs[] = {VQCLIP_DATADIR "/demo", VQCLIP_DEMO_DIR};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        if (dirs[i][0] && demo_complete(dirs[i]) && (size_t)snprintf(out, len, "%s", dirs[i]) < len)
            return 0;
    }
    return -1;
}

int vqc_demo_fallback(char *dir, size_t len)
{
    char path[4200];
    if (vqc_model_find(VQC_MODEL_VQGAN, VQC_DEFAULT_VQGAN, path, sizeof path) == 0 ||
        vqc_model_find(VQC_MODEL_CLIP, VQC_DEFAULT_CLIP, path, sizeof path) == 0)
        return 0;
    return vqc_demo_dir(dir, len) == 0;
}

bool vqc_uses_demo_models(const vqc_context_params *p)
{
    char dir[4200];
    return p && !p->vqgan && !p->clip && !p->bpe && vqc_demo_fallback(dir, sizeof dir);
}

int vqc_model_find_bpe(const char *bpe, const char *clip_path, char *out, size_t len)
{
    if (bpe)
        return vqc_model_find(VQC_MODEL_BPE, bpe, out, len);
    if (clip_path) {
        const char *slash = strrchr(clip_path, '/');
        int dirlen = slash ? (int)(slash - clip_path) : 1;
        const char *dir = slash ? clip_path : ".";
        char merges[4200];
        if (dirlen < 4000) {
            snprintf(merges, sizeof merges, "%.*s/merges.txt", dirlen, dir);
            if ((size_t)snprintf(out, len, "%.*s/%s", dirlen, dir, VQC_DEMO_BPE) < len &&
                is_file(out) && is_file(merges))
                return 0;
        }
    }
    int rc = vqc_model_find(VQC_MODEL_BPE, VQC_DEFAULT_BPE, out, len);
    char demo[4000];
    if (rc && !clip_path && vqc_demo_dir(demo, sizeof demo) == 0 &&
        (size_t)snprintf(out, len, "%s/%s", demo, VQC_DEMO_BPE) < len) {
        vqc_log(VQC_LOG_WARN,
                "no downloaded vocabulary found: using the demo models' vocabulary in %s; "
                "scripts/download-models.sh fetches the real one",
                demo);
        return 0;
    }
    return rc;
}
