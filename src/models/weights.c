/* Weights from a tensor map: copies, zero-copy views and page release (see weights.h). */
#include "models/weights.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/error.h"
#include "util/torch_error.h"

const vqc_tensor_info *vqc_weight_info(const vqc_tensor_map *map, const char *prefix,
                                       const char *name)
{
    char full[512];
    snprintf(full, sizeof full, "%s%s", prefix ? prefix : "", name);
    return vqc_tmap_get(map, full);
}

const vqc_tensor_info *vqc_weight_infof(const vqc_tensor_map *map, const char *prefix,
                                        const char *fmt, ...)
{
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return vqc_weight_info(map, prefix, name);
}

bool vqc_weight_has(const vqc_tensor_map *map, const char *prefix, const char *name)
{
    return vqc_weight_info(map, prefix, name) != NULL;
}

static void shape_str(char *buf, size_t len, int ndim, const int64_t *shape)
{
    size_t at = 0;
    at += (size_t)snprintf(buf + at, len - at, "[");
    for (int i = 0; i < ndim && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (at < len)
        snprintf(buf + at, len - at, "]");
}

/* The entry, checked against ndim/shape; NULL with a message when absent or mismatched. */
static const vqc_tensor_info *checked_info(const vqc_tensor_map *map, const char *prefix,
                                           const char *name, int ndim, const int64_t *shape)
{
    const vqc_tensor_info *ti = vqc_weight_info(map, prefix, name);
    if (!ti) {
        vqc_error_set(VQC_ERR_MODEL, "missing weight '%s%s'", prefix ? prefix : "", name);
        return NULL;
    }
    bool ok = ndim < 0 || ti->ndim == ndim;
    for (int i = 0; ok && ndim >= 0 && i < ndim; i++)
        ok = shape[i] < 0 || shape[i] == ti->shape[i];
    if (!ok) {
        char want[128], have[128];
        shape_str(want, sizeof want, ndim, shape);
        shape_str(have, sizeof have, ti->ndim, ti->shape);
        vqc_error_set(VQC_ERR_MODEL, "weight '%s' has shape %s, expected %s", ti->name, have, want);
        return NULL;
    }
    return ti;
}

/* Every model's weights come through vqc_weight or vqc_weight_view, before the model computes
 * anything: on the CPU the first of them checks libtorch's convolutions there (once per process,
 * vqt_cpu_conv_check), so that no model runs a wrong one and a run on a GPU does not pay. */
static void check_cpu_convs(vqt_device dev)
{
    if (dev.type == VQT_DEVICE_CPU)
        vqt_cpu_conv_check(NULL);
}

vqt_tensor *vqc_weight(const vqc_tensor_map *map, const char *prefix, const char *name,
                       vqt_device dev, vqc_dtype dt, int ndim, const int64_t *shape)
{
    check_cpu_convs(dev);
    const vqc_tensor_info *ti = checked_info(map, prefix, name, ndim, shape);
    if (!ti)
        return NULL;
    vqt_tensor *t = vqt_from_data(ti->data, ti->dtype, ti->ndim, ti->shape, ti->strides, dev, dt);
    if (!t)
        vqc_torch_fail("weight '%s'", ti->name);
    return vqt_persist(t);
}

/* ---- zero-copy views ------------------------------------------------------------------- */

struct vqc_weight_file {
    vqc_tensor_map *map;
    atomic_int refs;
    int views;
};

vqc_weight_file *vqc_weight_file_new(vqc_tensor_map *map)
{
    vqc_weight_file *f = malloc(sizeof *f);
    if (!f)
        return NULL;
    f->map = map;
    atomic_init(&f->refs, 1);
    f->views = 0;
    return f;
}

const vqc_tensor_map *vqc_weight_file_map(const vqc_weight_file *f)
{
    return f->map;
}

int vqc_weight_file_views(const vqc_weight_file *f)
{
    return f->views;
}

void vqc_weight_file_unref(vqc_weight_file *f)
{
    if (!f || atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    vqc_tmap_free(f->map);
    free(f);
}

static void release_view(void *ctx)
{
    vqc_weight_file_unref(ctx);
}

vqt_tensor *vqc_weight_view(vqc_weight_file *f, const char *prefix, const char *name,
                            vqt_device dev, vqc_dtype dt, int ndim, const int64_t *shape)
{
    check_cpu_convs(dev);
    const vqc_tensor_info *ti = checked_info(f->map, prefix, name, ndim, shape);
    if (!ti)
        return NULL;
    size_t esize = vqc_dtype_size(dt);
    if (dev.type != VQT_DEVICE_CPU || ti->dtype != dt || esize == 0 ||
        (uintptr_t)ti->data % esize != 0 || ti->numel == 0)
        return vqc_weight(f->map, prefix, name, dev, dt, ndim, shape);
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    vqt_tensor *t = vqt_from_blob(ti->data, dt, ti->ndim, ti->shape, ti->strides, release_view, f);
    if (!t) /* vqt_from_blob has called release_view */
        vqc_torch_fail("weight '%s'", ti->name);
    else
        f->views++;
    return vqt_persist(t);
}

/* ---- page release ---------------------------------------------------------------------- */

/* Whether some entry of map has its data inside [lo, hi). */
static bool map_has_data_in(const vqc_tensor_map *map, uintptr_t lo, uintptr_t hi)
{
    size_t n = vqc_tmap_count(map);
    for (size_t i = 0; i < n; i++) {
        uintptr_t p = (uintptr_t)vqc_tmap_at(map, i)->data;
        if (p >= lo && p < hi)
            return true;
    }
    return false;
}

size_t vqc_weight_drop_pages(const vqc_tensor_map *map)
{
#ifdef __linux__
    FILE *fp = map && vqc_tmap_count(map) ? fopen("/proc/self/maps", "r") : NULL;
    if (!fp)
        return 0;
    char line[4096], perms[8];
    unsigned long lo, hi, inode;
    size_t dropped = 0;
    while (fgets(line, sizeof line, fp)) {
        /* "lo-hi perms offset dev inode path": a private read-only mapping of a file. */
        if (sscanf(line, "%lx-%lx %7s %*s %*s %lu", &lo, &hi, perms, &inode) != 4 || inode == 0 ||
            strcmp(perms, "r--p") != 0 || !map_has_data_in(map, lo, hi))
            continue;
        if (madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0)
            dropped += hi - lo;
    }
    fclose(fp);
    return dropped;
#else
    (void)map;
    return 0;
#endif
}
