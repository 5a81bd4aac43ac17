#include "models/weights.h"

#include <stdio.h>

#include "util/error.h"

const vqc_tensor_info *vqc_weight_info(const vqc_tensor_map *map, const char *prefix,
                                       const char *name)
{
    char full[512];
    snprintf(full, sizeof full, "%s%s", prefix ? prefix : "", name);
    return vqc_tmap_get(map, full);
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

vqt_tensor *vqc_weight(const vqc_tensor_map *map, const char *prefix, const char *name,
                       vqt_device dev, vqc_dtype dt, int ndim, const int64_t *shape)
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
    vqt_tensor *t = vqt_from_data(ti->data, ti->dtype, ti->ndim, ti->shape, ti->strides, dev, dt);
    if (!t)
        vqc_error_set(VQC_ERR_RUNTIME, "weight '%s': %s", ti->name, vqt_last_error());
    return vqt_persist(t);
}
