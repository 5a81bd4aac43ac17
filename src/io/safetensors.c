/* safetensors parsing and atomic writing: see safetensors.h. */
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/strbuf.h"

#define MAX_EXACT_INT 9007199254740992.0 /* 2^53: larger JSON numbers are not exact doubles */

/* ---------------------------------------------------------------------------------------------
 * Parsing
 * ------------------------------------------------------------------------------------------- */

/* A non-negative integral JSON number, exact as a double. */
static int json_uint(const cJSON *j, int64_t *v)
{
    if (!cJSON_IsNumber(j))
        return -1;
    double d = j->valuedouble;
    if (!(d >= 0 && d <= MAX_EXACT_INT) || d != (double)(int64_t)d)
        return -1;
    *v = (int64_t)d;
    return 0;
}

/* Reads "shape" into t->shape, fills contiguous strides and t->numel. */
static int parse_shape(const cJSON *shape, vqc_tensor_info *t)
{
    int n = cJSON_GetArraySize(shape);
    if (!cJSON_IsArray(shape) || n > VQC_MAX_DIMS)
        return -1;
    t->ndim = n;
    t->numel = 1;
    int d = 0;
    for (const cJSON *e = shape->child; e; e = e->next, d++) {
        if (d >= n || json_uint(e, &t->shape[d]))
            return -1;
        if (__builtin_mul_overflow(t->numel, t->shape[d], &t->numel))
            return -1;
    }
    int64_t stride = 1;
    for (d = n - 1; d >= 0; d--) {
        t->strides[d] = stride;
        if (__builtin_mul_overflow(stride, t->shape[d] ? t->shape[d] : 1, &stride))
            return -1;
    }
    return 0;
}

/* Parses one tensor entry `j` into `t`; `data`/`dlen` is the data area. */
static int parse_tensor(const cJSON *j, const uint8_t *data, uint64_t dlen, const char *label,
                        vqc_tensor_info *t)
{
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    vqc_dtype dtype;
    if (!cJSON_IsString(dt) || vqc_dtype_parse(dt->valuestring, &dtype))
        return vqc_error_set(VQC_ERR_FORMAT, "%s: tensor %s: missing or unsupported dtype", label,
                             j->string);
    t->dtype = dtype;
    if (parse_shape(shape, t))
        return vqc_error_set(VQC_ERR_FORMAT, "%s: tensor %s: bad shape", label, j->string);
    int64_t begin, end, nbytes;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || json_uint(offs->child, &begin) ||
        json_uint(offs->child->next, &end) || begin > end)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: tensor %s: bad data_offsets", label, j->string);
    if (__builtin_mul_overflow(t->numel, (int64_t)vqc_dtype_size(dtype), &nbytes) ||
        end - begin != nbytes)
        return vqc_error_set(VQC_ERR_FORMAT,
                             "%s: tensor %s: data_offsets span %lld bytes, shape needs %lld", label,
                             j->string, (long long)(end - begin), (long long)nbytes);
    if ((uint64_t)end > dlen)
        return vqc_error_set(VQC_ERR_FORMAT,
                             "%s: truncated: tensor %s needs bytes up to %lld, %llu present", label,
                             j->string, (long long)end, (unsigned long long)dlen);
    t->data = data + begin;
    return 0;
}

/* Copies the string entries of __metadata__. */
static int parse_meta(const cJSON *meta, const char *label, vqc_st_index *ix)
{
    if (!cJSON_IsObject(meta))
        return vqc_error_set(VQC_ERR_FORMAT, "%s: __metadata__ is not an object", label);
    size_t n = (size_t)cJSON_GetArraySize(meta);
    ix->meta = calloc(2 * n + 1, sizeof *ix->meta);
    if (!ix->meta)
        return vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory", label);
    for (const cJSON *e = meta->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            continue;
        char **kv = ix->meta + 2 * ix->nmeta;
        if (!(kv[0] = strdup(e->string)) || !(kv[1] = strdup(e->valuestring)))
            return vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory", label);
        ix->nmeta++;
    }
    return 0;
}

/* Walks the header object: metadata and tensor entries. */
static int parse_header(const cJSON *root, const uint8_t *data, uint64_t dlen, const char *label,
                        vqc_st_index *ix)
{
    size_t n = (size_t)cJSON_GetArraySize(root);
    if (n > VQC_ST_MAX_TENSORS)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: too many tensors (%zu)", label, n);
    ix->tensors = calloc(n ? n : 1, sizeof *ix->tensors);
    if (!ix->tensors)
        return vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory", label);
    for (const cJSON *e = root->child; e; e = e->next) {
        int rc;
        if (strcmp(e->string, "__metadata__") == 0) {
            if (ix->meta)
                return vqc_error_set(VQC_ERR_FORMAT, "%s: two __metadata__ entries", label);
            rc = parse_meta(e, label, ix);
        } else if (!cJSON_IsObject(e)) {
            rc = vqc_error_set(VQC_ERR_FORMAT, "%s: entry %s is not an object", label, e->string);
        } else {
            vqc_tensor_info *t = &ix->tensors[ix->count];
            rc = parse_tensor(e, data, dlen, label, t);
            if (!rc && !(t->name = strdup(e->string)))
                rc = vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory", label);
            ix->count += rc == 0;
        }
        if (rc)
            return rc;
    }
    return 0;
}

int vqc_safetensors_parse(const void *data, size_t len, const char *label, vqc_st_index *out)
{
    const uint8_t *p = data;
    memset(out, 0, sizeof *out);
    if (len < 8)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: truncated: %zu bytes, no safetensors header",
                             label, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | p[i];
    if (hlen > len - 8)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: truncated: header of %llu bytes, %zu present",
                             label, (unsigned long long)hlen, len - 8);
    if (hlen > VQC_ST_MAX_HEADER || hlen < 2 || p[8] != '{')
        return vqc_error_set(VQC_ERR_FORMAT, "%s: bad safetensors header (%llu bytes)", label,
                             (unsigned long long)hlen);
    cJSON *root = cJSON_ParseWithLength((const char *)p + 8, (size_t)hlen);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return vqc_error_set(VQC_ERR_FORMAT, "%s: safetensors header is not a JSON object", label);
    }
    int rc = parse_header(root, p + 8 + hlen, len - 8 - hlen, label, out);
    cJSON_Delete(root);
    return rc;
}

void vqc_st_index_free(vqc_st_index *ix)
{
    for (size_t i = 0; i < ix->count; i++)
        free((char *)ix->tensors[i].name);
    free(ix->tensors);
    for (size_t i = 0; ix->meta && i < 2 * ix->nmeta; i++)
        free(ix->meta[i]);
    free(ix->meta);
    memset(ix, 0, sizeof *ix);
}

/* ---------------------------------------------------------------------------------------------
 * Writing: header text
 * ------------------------------------------------------------------------------------------- */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Checks names, dtypes and shapes; sets nbytes[i]. */
static int validate(const vqc_st_tensor *t, size_t n, int64_t *nbytes)
{
    const char **names = malloc((n ? n : 1) * sizeof *names);
    if (!names)
        return vqc_error_set(VQC_ERR_NOMEM, "safetensors: out of memory");
    int rc = 0;
    int64_t total = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t es = vqc_dtype_size(t[i].dtype);
        int64_t ne = 1;
        names[i] = t[i].name;
        if (!t[i].name || !strcmp(t[i].name, "__metadata__") || !es || t[i].ndim < 0 ||
            t[i].ndim > VQC_MAX_DIMS || (t[i].ndim && !t[i].shape))
            rc = vqc_error_set(VQC_ERR_USAGE,
                               "safetensors: tensor %zu has a bad name, dtype or rank", i);
        for (int d = 0; !rc && d < t[i].ndim; d++)
            if (t[i].shape[d] < 0 || __builtin_mul_overflow(ne, t[i].shape[d], &ne))
                rc = vqc_error_set(VQC_ERR_USAGE, "safetensors: tensor %s has a bad shape",
                                   t[i].name);
        if (!rc && (__builtin_mul_overflow(ne, (int64_t)es, &nbytes[i]) ||
                    __builtin_add_overflow(total, nbytes[i], &total) || (nbytes[i] && !t[i].data)))
            rc = vqc_error_set(VQC_ERR_USAGE, "safetensors: tensor %s: bad size or no data",
                               t[i].name);
    }
    if (!rc && n > 1) {
        qsort(names, n, sizeof *names, cmp_names);
        for (size_t i = 1; i < n && !rc; i++)
            if (!strcmp(names[i - 1], names[i]))
                rc =
                    vqc_error_set(VQC_ERR_USAGE, "safetensors: duplicate tensor name %s", names[i]);
    }
    free(names);
    return rc;
}

/* Builds the padded JSON header for tensors whose sizes are nbytes[]. */
static int build_header(const vqc_st_tensor *t, size_t n, const int64_t *nbytes,
                        const char *const *meta_kv, vqc_strbuf *b)
{
    vqc_strbuf_puts(b, "{");
    if (meta_kv && meta_kv[0]) {
        vqc_strbuf_puts(b, "\"__metadata__\":{");
        for (size_t i = 0; meta_kv[i]; i += 2) {
            if (!meta_kv[i + 1])
                return vqc_error_set(VQC_ERR_USAGE, "safetensors: metadata key %s has no value",
                                     meta_kv[i]);
            vqc_strbuf_puts(b, i ? "," : "");
            vqc_strbuf_json(b, meta_kv[i]);
            vqc_strbuf_puts(b, ":");
            vqc_strbuf_json(b, meta_kv[i + 1]);
        }
        vqc_strbuf_puts(b, n ? "}," : "}");
    }
    int64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        vqc_strbuf_puts(b, i ? "," : "");
        vqc_strbuf_json(b, t[i].name);
        vqc_strbuf_puts(b, ":{\"dtype\":");
        vqc_strbuf_json(b, vqc_dtype_name(t[i].dtype));
        vqc_strbuf_puts(b, ",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++)
            vqc_strbuf_printf(b, d ? ",%lld" : "%lld", (long long)t[i].shape[d]);
        vqc_strbuf_printf(b, "],\"data_offsets\":[%lld,%lld]}", (long long)off,
                          (long long)(off + nbytes[i]));
        off += nbytes[i];
    }
    vqc_strbuf_puts(b, "}");
    while (b->n % 8 && !b->failed)
        vqc_strbuf_puts(b, " ");
    return b->failed ? vqc_error_set(VQC_ERR_NOMEM, "safetensors: out of memory") : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Writing: the file
 * ------------------------------------------------------------------------------------------- */

/* Writes the header's length, the header and the tensors' bytes, atomically. */
static int write_file(const char *path, const vqc_strbuf *hdr, const vqc_st_tensor *t, size_t n,
                      const int64_t *nbytes)
{
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)hdr->n >> (8 * i));
    vqc_bytes *parts = malloc((n + 2) * sizeof *parts);
    if (!parts)
        return vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory", path);
    parts[0] = (vqc_bytes){len8, 8};
    parts[1] = (vqc_bytes){hdr->p, hdr->n};
    for (size_t i = 0; i < n; i++)
        parts[i + 2] = (vqc_bytes){t[i].data, (size_t)nbytes[i]};
    int rc = vqc_write_file_atomic(path, parts, n + 2);
    free(parts);
    return rc;
}

int vqc_safetensors_write(const char *path, const vqc_st_tensor *tensors, size_t n,
                          const char *const *meta_kv)
{
    if (!path || (n && !tensors))
        return vqc_error_set(VQC_ERR_USAGE, "safetensors: no path or tensors");
    int64_t *nbytes = calloc(n ? n : 1, sizeof *nbytes);
    if (!nbytes)
        return vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory", path);
    vqc_strbuf hdr = {0};
    int rc = validate(tensors, n, nbytes);
    if (!rc)
        rc = build_header(tensors, n, nbytes, meta_kv, &hdr);
    if (!rc)
        rc = write_file(path, &hdr, tensors, n, nbytes);
    vqc_strbuf_free(&hdr);
    free(nbytes);
    return rc;
}
