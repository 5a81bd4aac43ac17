/* safetensors parsing and atomic writing: see safetensors.h. */
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"

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

typedef struct strbuf {
    char *s;
    size_t len, cap;
    int oom;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_printf(strbuf *b, const char *fmt, long long a, long long c)
{
    char tmp[64];
    int n = snprintf(tmp, sizeof tmp, fmt, a, c);
    sb_add(b, tmp, (size_t)n);
}

/* Appends `s` as a JSON string literal. */
static void sb_json_str(strbuf *b, const char *s)
{
    sb_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            sb_add(b, esc, 2);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_add(b, esc, 6);
        } else {
            sb_add(b, s, 1);
        }
    }
    sb_add(b, "\"", 1);
}

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
                        const char *const *meta_kv, strbuf *b)
{
    sb_add(b, "{", 1);
    if (meta_kv && meta_kv[0]) {
        sb_add(b, "\"__metadata__\":{", 16);
        for (size_t i = 0; meta_kv[i]; i += 2) {
            if (!meta_kv[i + 1])
                return vqc_error_set(VQC_ERR_USAGE, "safetensors: metadata key %s has no value",
                                     meta_kv[i]);
            sb_add(b, i ? "," : "", i ? 1 : 0);
            sb_json_str(b, meta_kv[i]);
            sb_add(b, ":", 1);
            sb_json_str(b, meta_kv[i + 1]);
        }
        sb_add(b, n ? "}," : "}", n ? 2 : 1);
    }
    int64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        sb_add(b, i ? "," : "", i ? 1 : 0);
        sb_json_str(b, t[i].name);
        sb_add(b, ":{\"dtype\":", 10);
        sb_json_str(b, vqc_dtype_name(t[i].dtype));
        sb_add(b, ",\"shape\":[", 10);
        for (int d = 0; d < t[i].ndim; d++)
            sb_printf(b, d ? ",%lld" : "%lld", (long long)t[i].shape[d], 0);
        sb_printf(b, "],\"data_offsets\":[%lld,%lld]}", (long long)off,
                  (long long)(off + nbytes[i]));
        off += nbytes[i];
    }
    sb_add(b, "}", 1);
    while (b->len % 8)
        sb_add(b, " ", 1);
    return b->oom ? vqc_error_set(VQC_ERR_NOMEM, "safetensors: out of memory") : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Writing: the file
 * ------------------------------------------------------------------------------------------- */

static int write_all(int fd, const void *data, uint64_t n)
{
    const char *p = data;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t w = write(fd, p, chunk);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (uint64_t)w;
    }
    return 0;
}

/* Writes header and data to `fd`; 0 or -1 with errno set. */
static int write_body(int fd, const strbuf *hdr, const vqc_st_tensor *t, size_t n,
                      const int64_t *nbytes)
{
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)hdr->len >> (8 * i));
    if (write_all(fd, len8, 8) || write_all(fd, hdr->s, hdr->len))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (write_all(fd, t[i].data, (uint64_t)nbytes[i]))
            return -1;
    return fsync(fd);
}

/* Writes to a temporary file next to `path`, then renames it over `path`. */
static int write_atomic(const char *path, const strbuf *hdr, const vqc_st_tensor *t, size_t n,
                        const int64_t *nbytes)
{
    char *d1 = strdup(path), *d2 = strdup(path), *tmp = malloc(strlen(path) + 32);
    int rc, fd;
    if (!d1 || !d2 || !tmp) {
        rc = vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    const char *dir = dirname(d1), *base = basename(d2);
    sprintf(tmp, "%s/.%s.XXXXXX", dir, base);
    if ((fd = mkstemp(tmp)) < 0) {
        rc = vqc_error_set(VQC_ERR_IO, "%s: cannot create a temporary file: %s", path,
                           strerror(errno));
        goto done;
    }
    int ok = fchmod(fd, 0644) == 0 && write_body(fd, hdr, t, n, nbytes) == 0;
    int err = errno;
    if (close(fd) != 0 && ok)
        ok = 0, err = errno;
    if (ok && rename(tmp, path) != 0)
        ok = 0, err = errno;
    if (!ok) {
        unlink(tmp);
        rc = vqc_error_set(VQC_ERR_IO, "%s: cannot write: %s", path, strerror(err));
        goto done;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) { /* make the rename durable; best effort */
        fsync(dfd);
        close(dfd);
    }
    rc = 0;
done:
    free(d1);
    free(d2);
    free(tmp);
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
    strbuf hdr = {0};
    int rc = validate(tensors, n, nbytes);
    if (!rc)
        rc = build_header(tensors, n, nbytes, meta_kv, &hdr);
    if (!rc)
        rc = write_atomic(path, &hdr, tensors, n, nbytes);
    free(hdr.s);
    free(nbytes);
    return rc;
}
