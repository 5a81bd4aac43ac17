/* vqc_tmap_*: opens PyTorch zip / TorchScript / legacy checkpoints and safetensors files and
 * indexes their tensors by dotted name (see tensor_map.h). The file is mmap'ed; tensor data is
 * never copied. Pickles go through the restricted interpreter in pickle.c, so nothing in the
 * file is ever executed. */
#include "io/tensor_map.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/pickle.h"
#include "io/safetensors.h"
#include "io/zipread.h"
#include "util/error.h"

#define MAX_DEPTH 100       /* nesting of containers and objects */
#define MAX_WORK (1u << 26) /* items examined while flattening (shared subtrees) */
#define MAX_TENSORS (1u << 18)
#define MAX_NAME 4096                      /* bytes in one dotted name */
#define MAX_NAME_BYTES ((size_t)256 << 20) /* all names together */
#define NAME_CHUNK 65536
#define MAX_KEY 256 /* storage key length */

typedef struct name_chunk {
    struct name_chunk *next;
    size_t used, cap;
    char data[];
} name_chunk;

typedef struct sorted_entry {
    const char *name;
    size_t index;
} sorted_entry;

struct vqc_tensor_map {
    const char *format;
    char *label;
    uint64_t file_size;
    void *mapping; /* mmap'ed file, or NULL for vqc_tmap_open_memory */
    size_t mapping_len;
    vqc_zip *zip; /* kept: it owns the buffers of deflated storages */
    vqc_st_index st;
    vqc_tensor_info *t; /* st.tensors for safetensors, else owned */
    size_t n, cap;
    sorted_entry *sorted;
    name_chunk *names;
    size_t name_bytes;
};

/* ---------------------------------------------------------------------------------------------
 * Entries and names
 * ------------------------------------------------------------------------------------------- */

/* Copies `n` bytes of `s` (plus a NUL) into the map's name arena. */
static const char *name_copy(vqc_tensor_map *m, const char *s, size_t n)
{
    if (m->name_bytes + n + 1 > MAX_NAME_BYTES)
        return NULL;
    name_chunk *c = m->names;
    if (!c || c->cap - c->used < n + 1) {
        size_t cap = n + 1 > NAME_CHUNK ? n + 1 : NAME_CHUNK;
        if (!(c = malloc(sizeof *c + cap)))
            return NULL;
        c->next = m->names;
        c->used = 0;
        c->cap = cap;
        m->names = c;
    }
    char *p = c->data + c->used;
    memcpy(p, s, n);
    p[n] = '\0';
    c->used += n + 1;
    m->name_bytes += n + 1;
    return p;
}

/* Appends the tensor `t` under `name` (`len` bytes). */
static int add_tensor(vqc_tensor_map *m, const vqc_pk_tensor *t, const char *name, size_t len)
{
    if (m->n >= MAX_TENSORS)
        return vqc_error_set(VQC_ERR_NOMEM, "%s: more than %u tensors", m->label, MAX_TENSORS);
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 256;
        vqc_tensor_info *p = realloc(m->t, cap * sizeof *p);
        if (!p)
            return vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory", m->label);
        m->t = p;
        m->cap = cap;
    }
    const vqc_pk_storage *st = t->storage->u.storage;
    vqc_tensor_info *e = &m->t[m->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = name_copy(m, name, len)))
        return vqc_error_set(VQC_ERR_NOMEM, "%s: tensor names too long in total", m->label);
    e->dtype = (vqc_dtype)st->dtype;
    e->ndim = t->ndim;
    memcpy(e->shape, t->shape, sizeof t->shape);
    memcpy(e->strides, t->stride, sizeof t->stride);
    e->numel = t->numel;
    e->data = (const uint8_t *)st->data + t->offset * st->elem_size;
    m->n++;
    return 0;
}

static int cmp_sorted(const void *a, const void *b)
{
    const sorted_entry *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

static int build_index(vqc_tensor_map *m)
{
    m->sorted = malloc((m->n ? m->n : 1) * sizeof *m->sorted);
    if (!m->sorted)
        return vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory", m->label);
    for (size_t i = 0; i < m->n; i++)
        m->sorted[i] = (sorted_entry){m->t[i].name, i};
    qsort(m->sorted, m->n, sizeof *m->sorted, cmp_sorted);
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Flattening the object tree into dotted names
 * ------------------------------------------------------------------------------------------- */

typedef struct flat_ctx {
    vqc_tensor_map *m;
    size_t work;
    char name[MAX_NAME];
} flat_ctx;

static int flatten(flat_ctx *c, const vqc_pk_value *v, size_t len, int depth);

/* Counts one examined item against the work limit; 1 when `v` may hold tensors (worth a visit).
 * Sets *rc when the limit is hit. */
static int worth_visit(flat_ctx *c, const vqc_pk_value *v, int *rc)
{
    if (++c->work > MAX_WORK) {
        *rc = vqc_error_set(VQC_ERR_NOMEM, "%s: object tree too large to index", c->m->label);
        return 0;
    }
    return v->kind == VQC_PK_TENSOR || v->kind == VQC_PK_DICT || v->kind == VQC_PK_LIST ||
           v->kind == VQC_PK_TUPLE || v->kind == VQC_PK_OBJECT || v->kind == VQC_PK_REDUCE;
}

/* Flattens `v` under the current name (`len` bytes) extended by `part`. */
static int flatten_child(flat_ctx *c, const char *part, size_t plen, const vqc_pk_value *v,
                         size_t len, int depth)
{
    size_t dot = depth > 0, need = len + dot + plen;
    if (need >= MAX_NAME)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: tensor name longer than %d bytes", c->m->label,
                             MAX_NAME);
    if (dot)
        c->name[len] = '.';
    memcpy(c->name + len + dot, part, plen);
    c->name[need] = '\0';
    int rc = flatten(c, v, need, depth + 1);
    c->name[len] = '\0';
    return rc;
}

/* The name part of a dict key: the string, the integer, "<ClassName>" or "<key>". */
static void key_part(const vqc_pk_value *k, char *tmp, size_t tmpsize, const char **part,
                     size_t *plen)
{
    if (k->kind == VQC_PK_STR) {
        *part = k->u.s.ptr;
        *plen = k->u.s.len;
        return;
    }
    if (k->kind == VQC_PK_INT)
        snprintf(tmp, tmpsize, "%lld", (long long)k->u.i);
    else if (k->kind == VQC_PK_GLOBAL)
        snprintf(tmp, tmpsize, "<%.*s>",
                 (int)(k->u.global.name.len < 64 ? k->u.global.name.len : 64),
                 k->u.global.name.ptr);
    else
        snprintf(tmp, tmpsize, "<key>");
    *part = tmp;
    *plen = strlen(tmp);
}

static int flatten_dict(flat_ctx *c, const vqc_pk_value *d, size_t len, int depth)
{
    int rc = 0;
    for (size_t i = 0; i + 1 < d->u.seq.n && !rc; i += 2) {
        char tmp[80];
        const char *part;
        size_t plen;
        if (!worth_visit(c, d->u.seq.items[i + 1], &rc))
            continue;
        key_part(d->u.seq.items[i], tmp, sizeof tmp, &part, &plen);
        rc = flatten_child(c, part, plen, d->u.seq.items[i + 1], len, depth);
    }
    return rc;
}

static int flatten_seq(flat_ctx *c, const vqc_pk_value *s, size_t len, int depth)
{
    int rc = 0;
    for (size_t i = 0; i < s->u.seq.n && !rc; i++) {
        char tmp[32];
        if (!worth_visit(c, s->u.seq.items[i], &rc))
            continue;
        int plen = snprintf(tmp, sizeof tmp, "%zu", i);
        rc = flatten_child(c, tmp, (size_t)plen, s->u.seq.items[i], len, depth);
    }
    return rc;
}

/* An object's attributes: BUILD's state (a dict, or a (dict, slots-dict) pair) and the items a
 * dict or list subclass holds. The same for the inert result of a call (never its arguments):
 * copyreg._reconstructor objects carry their attributes that way. */
static int flatten_object(flat_ctx *c, const vqc_pk_value *o, size_t len, int depth)
{
    const vqc_pk_value *st = o->u.obj.state, *items = o->u.obj.items;
    int rc = 0;
    if (st && st->kind == VQC_PK_DICT)
        rc = flatten_dict(c, st, len, depth);
    else if (st && st->kind == VQC_PK_TUPLE && st->u.seq.n == 2)
        for (size_t i = 0; i < 2 && !rc; i++)
            if (st->u.seq.items[i]->kind == VQC_PK_DICT)
                rc = flatten_dict(c, st->u.seq.items[i], len, depth);
    if (!rc && items && items->kind == VQC_PK_DICT)
        rc = flatten_dict(c, items, len, depth);
    else if (!rc && items && items->kind == VQC_PK_LIST)
        rc = flatten_seq(c, items, len, depth);
    return rc;
}

static int flatten(flat_ctx *c, const vqc_pk_value *v, size_t len, int depth)
{
    if (depth > MAX_DEPTH)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: objects nested deeper than %d levels",
                             c->m->label, MAX_DEPTH);
    switch (v->kind) {
    case VQC_PK_TENSOR: return add_tensor(c->m, v->u.tensor, c->name, len);
    case VQC_PK_DICT: return flatten_dict(c, v, len, depth);
    case VQC_PK_LIST:
    case VQC_PK_TUPLE: return flatten_seq(c, v, len, depth);
    case VQC_PK_OBJECT:
    case VQC_PK_REDUCE: return flatten_object(c, v, len, depth);
    default: return 0;
    }
}

static int flatten_root(vqc_tensor_map *m, const vqc_pk_value *root)
{
    flat_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory", m->label);
    c->m = m;
    int rc = flatten(c, root, 0, 0);
    free(c);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * torch.save zip archives and TorchScript archives
 * ------------------------------------------------------------------------------------------- */

/* Finds the `<prefix>/data.pkl` entry (prefix without a slash, or none); sets *plen to the
 * length of "<prefix>/". */
static long find_data_pkl(const vqc_tensor_map *m, size_t *plen)
{
    for (size_t i = 0; i < vqc_zip_count(m->zip); i++) {
        const char *name = vqc_zip_name(m->zip, i);
        size_t n = strlen(name);
        if (n < 8 || strcmp(name + n - 8, "data.pkl") != 0)
            continue;
        const char *slash = memchr(name, '/', n - 8);
        if (n == 8 || (slash && slash == name + n - 9)) {
            *plen = n - 8;
            return (long)i;
        }
    }
    return -1;
}

/* 1 when the archive has `<prefix>code/` entries or `<prefix>constants.pkl`. */
static int is_torchscript(const vqc_tensor_map *m, const char *prefix, size_t plen)
{
    for (size_t i = 0; i < vqc_zip_count(m->zip); i++) {
        const char *name = vqc_zip_name(m->zip, i);
        if (strncmp(name, prefix, plen) == 0 &&
            (strncmp(name + plen, "code/", 5) == 0 || strcmp(name + plen, "constants.pkl") == 0))
            return 1;
    }
    return 0;
}

/* Rejects archives whose `<prefix>byteorder` entry says "big". */
static int check_byteorder(vqc_tensor_map *m, const char *prefix, size_t plen)
{
    char name[MAX_NAME];
    snprintf(name, sizeof name, "%.*sbyteorder", (int)plen, prefix);
    long i = vqc_zip_find(m->zip, name);
    const void *p;
    uint64_t n;
    if (i < 0)
        return 0;
    int rc = vqc_zip_read(m->zip, (size_t)i, &p, &n);
    if (!rc && n >= 3 && memcmp(p, "big", 3) == 0)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: big-endian checkpoints are not supported",
                             m->label);
    return rc;
}

/* Points every storage of the pickle at its `<prefix>data/<key>` entry. */
static int resolve_zip_storages(vqc_tensor_map *m, vqc_pickle *pk, const char *prefix, size_t plen)
{
    for (size_t i = 0; i < vqc_pickle_storage_count(pk); i++) {
        vqc_pk_storage *st = vqc_pickle_storage_at(pk, i)->u.storage;
        if (st->key.len > MAX_KEY)
            return vqc_error_set(VQC_ERR_FORMAT, "%s: storage key too long", m->label);
        char name[MAX_NAME];
        snprintf(name, sizeof name, "%.*sdata/%.*s", (int)plen, prefix, (int)st->key.len,
                 st->key.ptr);
        long e = vqc_zip_find(m->zip, name);
        if (e < 0)
            return vqc_error_set(VQC_ERR_FORMAT,
                                 "%s: truncated or corrupt: storage entry %s is missing", m->label,
                                 name);
        const void *p;
        uint64_t size, need = (uint64_t)st->numel * (uint64_t)st->elem_size;
        int rc = vqc_zip_read(m->zip, (size_t)e, &p, &size);
        if (rc)
            return rc;
        if (size < need)
            return vqc_error_set(
                VQC_ERR_FORMAT, "%s: truncated: storage %s needs %llu bytes, %llu present",
                m->label, name + plen, (unsigned long long)need, (unsigned long long)size);
        st->data = (const uint8_t *)p + (st->has_view ? st->view_offset * st->elem_size : 0);
    }
    return 0;
}

/* Unpickles `<prefix>data.pkl`, resolves its storages and flattens it. */
static int load_zip_pickle(vqc_tensor_map *m, long entry, const char *prefix, size_t plen)
{
    const void *data;
    uint64_t size;
    int rc = vqc_zip_read_verified(m->zip, (size_t)entry, &data, &size);
    if (rc)
        return rc;
    char label[MAX_NAME];
    snprintf(label, sizeof label, "%s: %s", m->label, vqc_zip_name(m->zip, (size_t)entry));
    vqc_pickle *pk;
    if ((rc = vqc_pickle_load(data, (size_t)size, label, &pk)))
        return rc;
    rc = resolve_zip_storages(m, pk, prefix, plen);
    if (!rc)
        rc = flatten_root(m, vqc_pickle_root(pk));
    vqc_pickle_free(pk);
    return rc;
}

static int load_zip(vqc_tensor_map *m, const uint8_t *d, size_t len)
{
    int rc = vqc_zip_open(d, len, m->label, &m->zip);
    if (rc)
        return rc;
    size_t plen = 0;
    long entry = find_data_pkl(m, &plen);
    if (entry < 0)
        return vqc_error_set(VQC_ERR_FORMAT,
                             "%s: zip archive without a data.pkl entry (not a PyTorch checkpoint)",
                             m->label);
    const char *prefix = vqc_zip_name(m->zip, (size_t)entry);
    m->format = is_torchscript(m, prefix, plen) ? "torchscript" : "zip";
    if ((rc = check_byteorder(m, prefix, plen)))
        return rc;
    return load_zip_pickle(m, entry, prefix, plen);
}

/* ---------------------------------------------------------------------------------------------
 * Legacy (pre-1.6) torch.save: magic, protocol, sys_info, object, storage keys, storage data
 * ------------------------------------------------------------------------------------------- */

static const uint8_t legacy_magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                         0x20, 0x6a, 0xa8, 0x50, 0x19};

/* The first pickle must be the legacy magic number. */
static int check_legacy_magic(vqc_tensor_map *m, const vqc_pickle *pk)
{
    const vqc_pk_value *magic = vqc_pickle_root(pk);
    if (magic->kind != VQC_PK_BIGINT || magic->u.s.len != 10 ||
        memcmp(magic->u.s.ptr, legacy_magic, 10) != 0)
        return vqc_error_set(VQC_ERR_FORMAT,
                             "%s: not a PyTorch checkpoint (a pickle without the magic number)",
                             m->label);
    return 0;
}

/* The next two: protocol 1001 and a sys_info dict that does not say big-endian. */
static int check_legacy_header(vqc_tensor_map *m, vqc_pickle **pk)
{
    const vqc_pk_value *proto = vqc_pickle_root(pk[1]), *info = vqc_pickle_root(pk[2]);
    if (proto->kind != VQC_PK_INT || proto->u.i != 1001)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: unsupported legacy protocol version", m->label);
    if (info->kind != VQC_PK_DICT)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: corrupt legacy sys_info", m->label);
    for (size_t i = 0; i + 1 < info->u.seq.n; i += 2) {
        const vqc_pk_value *v = info->u.seq.items[i + 1];
        if (vqc_pk_str_eq(info->u.seq.items[i], "little_endian") && v->kind == VQC_PK_BOOL &&
            !v->u.b)
            return vqc_error_set(VQC_ERR_FORMAT, "%s: big-endian checkpoints are not supported",
                                 m->label);
    }
    return 0;
}

static int cmp_bytes(vqc_pk_bytes a, vqc_pk_bytes b)
{
    int c = memcmp(a.ptr, b.ptr, a.len < b.len ? a.len : b.len);
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

static int cmp_storage_key(const void *a, const void *b)
{
    const vqc_pk_value *x = *(vqc_pk_value *const *)a, *y = *(vqc_pk_value *const *)b;
    return cmp_bytes(x->u.storage->key, y->u.storage->key);
}

/* Reads one storage record (int64 element count + bytes) at area[*pos] for the storages
 * s[0..n) that share its key. */
static int read_legacy_record(vqc_tensor_map *m, vqc_pk_value **s, size_t n, const uint8_t *area,
                              uint64_t alen, uint64_t *pos)
{
    const vqc_pk_storage *first = s[0]->u.storage;
    int key_len = (int)first->key.len;
    uint64_t count = 0;
    if (alen - *pos < 8)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: truncated: storage %.*s has no size record",
                             m->label, key_len, first->key.ptr);
    for (int i = 7; i >= 0; i--)
        count = (count << 8) | area[*pos + (uint64_t)i];
    uint64_t need = count * (uint64_t)first->elem_size;
    if (count > (uint64_t)INT64_MAX / 16 || alen - *pos - 8 < need)
        return vqc_error_set(VQC_ERR_FORMAT,
                             "%s: truncated: storage %.*s needs %llu bytes, %llu present", m->label,
                             key_len, first->key.ptr, (unsigned long long)need,
                             (unsigned long long)(alen - *pos - 8));
    for (size_t j = 0; j < n; j++) {
        vqc_pk_storage *st = s[j]->u.storage;
        if (st->elem_size != first->elem_size || (uint64_t)st->numel != count)
            return vqc_error_set(
                VQC_ERR_FORMAT, "%s: storage %.*s: %llu elements in the data, %lld in the pickle",
                m->label, key_len, first->key.ptr, (unsigned long long)count, (long long)st->numel);
        st->data = area + *pos + 8 + (st->has_view ? st->view_offset * st->elem_size : 0);
    }
    *pos += 8 + need;
    return 0;
}

/* Walks the storage records in the order of the key list; `s` holds all storages sorted by key. */
static int read_legacy_data(vqc_tensor_map *m, const vqc_pk_value *keys, vqc_pk_value **s,
                            size_t ns, const uint8_t *area, uint64_t alen)
{
    uint64_t pos = 0;
    if (keys->kind != VQC_PK_LIST)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: corrupt legacy storage key list", m->label);
    for (size_t i = 0; i < keys->u.seq.n; i++) {
        const vqc_pk_value *k = keys->u.seq.items[i];
        if (k->kind != VQC_PK_STR)
            return vqc_error_set(VQC_ERR_FORMAT, "%s: corrupt legacy storage key list", m->label);
        size_t lo = 0, hi = ns;
        while (lo < hi) { /* first storage with key >= k */
            size_t mid = lo + (hi - lo) / 2;
            if (cmp_bytes(s[mid]->u.storage->key, k->u.s) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        size_t end = lo;
        while (end < ns && cmp_bytes(s[end]->u.storage->key, k->u.s) == 0)
            end++;
        if (end == lo)
            return vqc_error_set(VQC_ERR_FORMAT, "%s: legacy storage %.*s is listed but never used",
                                 m->label, (int)k->u.s.len, k->u.s.ptr);
        int rc = read_legacy_record(m, s + lo, end - lo, area, alen, &pos);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < ns; i++)
        if (!s[i]->u.storage->data)
            return vqc_error_set(VQC_ERR_FORMAT,
                                 "%s: truncated or corrupt: storage %.*s has no data", m->label,
                                 (int)s[i]->u.storage->key.len, s[i]->u.storage->key.ptr);
    return 0;
}

static int resolve_legacy_storages(vqc_tensor_map *m, vqc_pickle *obj, const vqc_pk_value *keys,
                                   const uint8_t *area, uint64_t alen)
{
    size_t ns = vqc_pickle_storage_count(obj);
    vqc_pk_value **s = malloc((ns ? ns : 1) * sizeof *s);
    if (!s)
        return vqc_error_set(VQC_ERR_NOMEM, "%s: out of memory", m->label);
    for (size_t i = 0; i < ns; i++)
        s[i] = vqc_pickle_storage_at(obj, i);
    qsort(s, ns, sizeof *s, cmp_storage_key);
    int rc = read_legacy_data(m, keys, s, ns, area, alen);
    free(s);
    return rc;
}

static int load_legacy(vqc_tensor_map *m, const uint8_t *d, size_t len)
{
    static const char *what[5] = {"magic", "protocol", "sys_info", "object", "storage keys"};
    vqc_pickle *pk[5] = {0};
    size_t pos = 0;
    int rc = 0;
    m->format = "legacy";
    for (int i = 0; i < 5 && !rc; i++) {
        char label[MAX_NAME];
        snprintf(label, sizeof label, "%s: %s pickle", m->label, what[i]);
        rc = vqc_pickle_load(d + pos, len - pos, label, &pk[i]);
        if (!rc)
            pos += vqc_pickle_consumed(pk[i]);
        if (!rc && i == 0)
            rc = check_legacy_magic(m, pk[0]);
        if (!rc && i == 2)
            rc = check_legacy_header(m, pk);
    }
    if (!rc)
        rc = resolve_legacy_storages(m, pk[3], vqc_pickle_root(pk[4]), d + pos, len - pos);
    if (!rc)
        rc = flatten_root(m, vqc_pickle_root(pk[3]));
    for (int i = 0; i < 5; i++)
        vqc_pickle_free(pk[i]);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Format detection, open, accessors
 * ------------------------------------------------------------------------------------------- */

static int load_safetensors(vqc_tensor_map *m, const uint8_t *d, size_t len)
{
    m->format = "safetensors";
    int rc = vqc_safetensors_parse(d, len, m->label, &m->st);
    m->t = m->st.tensors;
    m->n = m->cap = m->st.count;
    return rc;
}

/* Picks the reader by content: zip signature, safetensors header, legacy pickle, zip directory. */
static int load_any(vqc_tensor_map *m, const uint8_t *d, size_t len)
{
    if (len == 0)
        return vqc_error_set(VQC_ERR_FORMAT, "%s: empty file", m->label);
    if (len >= 4 && (memcmp(d, "PK\3\4", 4) == 0 || memcmp(d, "PK\5\6", 4) == 0))
        return load_zip(m, d, len);
    uint64_t hlen = 0;
    for (int i = 7; len >= 9 && i >= 0; i--)
        hlen = (hlen << 8) | d[i];
    if (len >= 9 && d[8] == '{' && (hlen <= len - 8 || d[0] != 0x80))
        return load_safetensors(m, d, len);
    if (d[0] == 0x80)
        return load_legacy(m, d, len);
    if (len >= 262 && memcmp(d + 257, "ustar", 5) == 0)
        return vqc_error_set(VQC_ERR_FORMAT,
                             "%s: tar-format checkpoints (PyTorch < 0.4) are not supported",
                             m->label);
    vqc_zip *z;
    if (vqc_zip_open(d, len, m->label, &z) == 0) { /* a zip with data before it */
        vqc_zip_free(z);
        return load_zip(m, d, len);
    }
    return vqc_error_set(VQC_ERR_FORMAT,
                         "%s: not a weight file (neither zip, legacy PyTorch nor safetensors)",
                         m->label);
}

/* Re-sets the current error message with control characters (from names inside a hostile
 * file) replaced by '?', so that it stays one line. Returns `rc`. */
static int one_line_error(int rc)
{
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", vqc_error_get());
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return vqc_error_set(rc, "%s", msg);
}

int vqc_tmap_open_memory(const void *data, size_t len, const char *label, vqc_tensor_map **out)
{
    *out = NULL;
    vqc_tensor_map *m = calloc(1, sizeof *m);
    if (!m || !(m->label = strdup(label ? label : "(memory)"))) {
        free(m);
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory opening %s", label ? label : "(memory)");
    }
    m->file_size = len;
    int rc = load_any(m, data, len);
    if (!rc)
        rc = build_index(m);
    if (rc) {
        vqc_tmap_free(m);
        return one_line_error(rc);
    }
    *out = m;
    return 0;
}

int vqc_tmap_open(const char *path, vqc_tensor_map **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vqc_error_set(VQC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    int rc = 0;
    if (fstat(fd, &sb) != 0)
        rc = vqc_error_set(VQC_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (S_ISDIR(sb.st_mode))
        rc = vqc_error_set(VQC_ERR_IO, "%s: is a directory, not a weight file", path);
    else if (!S_ISREG(sb.st_mode))
        rc = vqc_error_set(VQC_ERR_IO, "%s: not a regular file", path);
    else if (sb.st_size == 0)
        rc = vqc_error_set(VQC_ERR_FORMAT, "%s: empty file", path);
    void *p = MAP_FAILED;
    if (!rc && (p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED)
        rc = vqc_error_set(VQC_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
    close(fd);
    if (rc)
        return rc;
    if ((rc = vqc_tmap_open_memory(p, (size_t)sb.st_size, path, out))) {
        munmap(p, (size_t)sb.st_size);
        return rc;
    }
    (*out)->mapping = p;
    (*out)->mapping_len = (size_t)sb.st_size;
    return 0;
}

void vqc_tmap_free(vqc_tensor_map *map)
{
    if (!map)
        return;
    if (map->t != map->st.tensors)
        free(map->t);
    vqc_st_index_free(&map->st);
    free(map->sorted);
    while (map->names) {
        name_chunk *next = map->names->next;
        free(map->names);
        map->names = next;
    }
    vqc_zip_free(map->zip);
    if (map->mapping)
        munmap(map->mapping, map->mapping_len);
    free(map->label);
    free(map);
}

size_t vqc_tmap_count(const vqc_tensor_map *map)
{
    return map->n;
}

const vqc_tensor_info *vqc_tmap_at(const vqc_tensor_map *map, size_t i)
{
    return i < map->n ? &map->t[i] : NULL;
}

const vqc_tensor_info *vqc_tmap_get(const vqc_tensor_map *map, const char *name)
{
    size_t lo = 0, hi = map->n;
    while (lo < hi) { /* first entry whose name is >= `name`: the earliest of equal names */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(map->sorted[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < map->n && strcmp(map->sorted[lo].name, name) == 0)
        return &map->t[map->sorted[lo].index];
    return NULL;
}

const char *vqc_tmap_format(const vqc_tensor_map *map)
{
    return map->format;
}

const char *vqc_tmap_meta(const vqc_tensor_map *map, const char *key)
{
    for (size_t i = 0; i < map->st.nmeta; i++)
        if (strcmp(map->st.meta[2 * i], key) == 0)
            return map->st.meta[2 * i + 1];
    return NULL;
}

uint64_t vqc_tmap_file_size(const vqc_tensor_map *map)
{
    return map->file_size;
}
