/* Restricted pickle interpreter: see pickle.h. Nothing here calls out of the file: globals are
 * names, calls are records, and the few torch rebuild functions are interpreted structurally. */
#include "io/pickle.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/dtype.h"
#include "util/error.h"

#define VALUE_BLOCK 1024

typedef struct value_block {
    struct value_block *next;
    size_t used;
    vqc_pk_value v[VALUE_BLOCK];
} value_block;

typedef struct payload { /* out-of-line storage and tensor records */
    struct payload *next;
    union {
        vqc_pk_storage storage;
        vqc_pk_tensor tensor;
    } u;
} payload;

struct vqc_pickle {
    const uint8_t *buf;
    size_t len, pos;
    char *label;
    vqc_pk_value *root;
    vqc_pk_value **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, mcap;
    vqc_pk_value **memo;
    size_t memo_cap, memo_count, memo_limit;
    value_block *blocks;
    size_t nvalues;
    payload *payloads;
    vqc_pk_value *none, *yes, *no; /* shared singletons */
    vqc_pk_value **storages;
    size_t nstorages, stcap;
};

/* ---------------------------------------------------------------------------------------------
 * Errors, values, growable arrays
 * ------------------------------------------------------------------------------------------- */

#define PK_FAIL(pk, code, ...) pk_fail((pk), (code), __VA_ARGS__)

__attribute__((format(printf, 3, 4))) static int pk_fail(vqc_pickle *pk, int code, const char *fmt,
                                                         ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    vqc_error_set(code, "%s: pickle: %s (at byte %zu)", pk->label, what, pk->pos);
    return code; /* visibly non-zero to the compiler and analyzers */
}

static vqc_pk_value *new_value(vqc_pickle *pk, vqc_pk_kind kind)
{
    if (pk->nvalues >= VQC_PK_MAX_VALUES)
        return NULL;
    if (!pk->blocks || pk->blocks->used == VALUE_BLOCK) {
        value_block *b = malloc(sizeof *b);
        if (!b)
            return NULL;
        b->next = pk->blocks;
        b->used = 0;
        pk->blocks = b;
    }
    vqc_pk_value *v = &pk->blocks->v[pk->blocks->used++];
    memset(v, 0, sizeof *v);
    v->kind = kind;
    pk->nvalues++;
    return v;
}

/* A value of `kind` (VQC_PK_STORAGE or VQC_PK_TENSOR) with its zeroed out-of-line record. */
static vqc_pk_value *new_payload_value(vqc_pickle *pk, vqc_pk_kind kind)
{
    payload *p = calloc(1, sizeof *p);
    vqc_pk_value *v = p ? new_value(pk, kind) : NULL;
    if (!v) {
        free(p);
        return NULL;
    }
    p->next = pk->payloads;
    pk->payloads = p;
    if (kind == VQC_PK_STORAGE)
        v->u.storage = &p->u.storage;
    else
        v->u.tensor = &p->u.tensor;
    return v;
}

/* Returns `arr` (elements of `size` bytes, capacity *cap) grown to hold `need` elements, at
 * most `limit`; NULL (with `arr` untouched) when that is impossible. */
static void *grow(void *arr, size_t *cap, size_t need, size_t size, size_t limit)
{
    if (need <= *cap)
        return arr;
    if (need > limit)
        return NULL;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap *= 2;
    if (ncap > limit)
        ncap = limit;
    void *p = realloc(arr, ncap * size);
    if (p)
        *cap = ncap;
    return p;
}

static int seq_push(vqc_pk_value *seq, vqc_pk_value *item)
{
    vqc_pk_value **items =
        grow(seq->u.seq.items, &seq->u.seq.cap, seq->u.seq.n + 1, sizeof item, SIZE_MAX / 16);
    if (!items)
        return -1;
    seq->u.seq.items = items;
    items[seq->u.seq.n++] = item;
    return 0;
}

static int is_seq(const vqc_pk_value *v)
{
    return v->kind == VQC_PK_TUPLE || v->kind == VQC_PK_LIST || v->kind == VQC_PK_DICT;
}

/* ---------------------------------------------------------------------------------------------
 * Stack, marks, memo
 * ------------------------------------------------------------------------------------------- */

static int push(vqc_pickle *pk, vqc_pk_value *v)
{
    if (!v)
        return PK_FAIL(pk, VQC_ERR_NOMEM, "too many values (limit %u) or out of memory",
                       VQC_PK_MAX_VALUES);
    vqc_pk_value **stack = grow(pk->stack, &pk->scap, pk->sp + 1, sizeof v, VQC_PK_MAX_STACK);
    if (!stack)
        return PK_FAIL(pk, VQC_ERR_NOMEM, "stack deeper than %u", VQC_PK_MAX_STACK);
    pk->stack = stack;
    stack[pk->sp++] = v;
    return 0;
}

/* Pops the top value into *v; fails on an empty stack or when a MARK sits above the value. */
static int pop(vqc_pickle *pk, vqc_pk_value **v)
{
    *v = NULL;
    size_t floor = pk->nmarks ? pk->marks[pk->nmarks - 1] : 0;
    if (pk->sp <= floor)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "stack underflow");
    *v = pk->stack[--pk->sp];
    return 0;
}

static int top(vqc_pickle *pk, vqc_pk_value **v)
{
    *v = NULL;
    size_t floor = pk->nmarks ? pk->marks[pk->nmarks - 1] : 0;
    if (pk->sp <= floor)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "stack underflow");
    *v = pk->stack[pk->sp - 1];
    return 0;
}

static int push_mark(vqc_pickle *pk)
{
    size_t *marks = grow(pk->marks, &pk->mcap, pk->nmarks + 1, sizeof *marks, VQC_PK_MAX_MARKS);
    if (!marks)
        return PK_FAIL(pk, VQC_ERR_NOMEM, "more than %u nested MARKs", VQC_PK_MAX_MARKS);
    pk->marks = marks;
    marks[pk->nmarks++] = pk->sp;
    return 0;
}

/* Pops the topmost MARK: the items above it are stack[*from .. pk->sp) (still on the stack). */
static int pop_mark(vqc_pickle *pk, size_t *from)
{
    *from = 0;
    if (pk->nmarks == 0)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "no MARK on the stack");
    *from = pk->marks[--pk->nmarks];
    return 0;
}

static int memo_put(vqc_pickle *pk, uint64_t idx)
{
    vqc_pk_value *v;
    int rc = top(pk, &v);
    if (rc)
        return rc;
    if (idx >= pk->memo_limit)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "memo index %llu out of range", (unsigned long long)idx);
    size_t old = pk->memo_cap;
    vqc_pk_value **memo = grow(pk->memo, &pk->memo_cap, (size_t)idx + 1, sizeof v, pk->memo_limit);
    if (!memo)
        return PK_FAIL(pk, VQC_ERR_NOMEM, "out of memory for the memo");
    pk->memo = memo;
    if (pk->memo_cap > old)
        memset(pk->memo + old, 0, (pk->memo_cap - old) * sizeof v);
    if (!pk->memo[idx])
        pk->memo_count++;
    pk->memo[idx] = v;
    return 0;
}

static int memo_get(vqc_pickle *pk, uint64_t idx)
{
    if (idx >= pk->memo_cap || !pk->memo[idx])
        return PK_FAIL(pk, VQC_ERR_FORMAT, "memo index %llu is empty", (unsigned long long)idx);
    return push(pk, pk->memo[idx]);
}

/* ---------------------------------------------------------------------------------------------
 * Reading the byte stream
 * ------------------------------------------------------------------------------------------- */

static int take(vqc_pickle *pk, size_t n, const uint8_t **p)
{
    *p = NULL;
    if (pk->len - pk->pos < n)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "truncated: needs %zu more bytes, %zu left", n,
                       pk->len - pk->pos);
    *p = pk->buf + pk->pos;
    pk->pos += n;
    return 0;
}

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Reads an n-byte little-endian unsigned argument. */
static int arg_uint(vqc_pickle *pk, int n, uint64_t *v)
{
    *v = 0;
    const uint8_t *p = NULL;
    int rc = take(pk, (size_t)n, &p);
    if (!rc)
        *v = le(p, n);
    return rc;
}

/* Reads a text line (protocol 0 argument) without its newline. */
static int arg_line(vqc_pickle *pk, const char **s, size_t *n)
{
    *s = NULL;
    *n = 0;
    const uint8_t *start = pk->buf + pk->pos;
    const uint8_t *nl = memchr(start, '\n', pk->len - pk->pos);
    if (!nl)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "truncated: unterminated text argument");
    *s = (const char *)start;
    *n = (size_t)(nl - start);
    pk->pos += *n + 1;
    return 0;
}

/* Reads a text line holding a decimal integer (INT, LONG, GET, PUT). */
static int arg_line_int(vqc_pickle *pk, int64_t *v)
{
    *v = 0;
    const char *s;
    size_t n;
    int rc = arg_line(pk, &s, &n);
    if (rc)
        return rc;
    char tmp[32];
    if (n > 0 && s[n - 1] == 'L') /* LONG's suffix */
        n--;
    if (n == 0 || n >= sizeof tmp)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "bad or too long integer text");
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    long long x = strtoll(tmp, &end, 10);
    if (*end || errno)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "bad integer text '%s'", tmp);
    *v = x;
    return 0;
}

/* Pushes a string-like value of `n` bytes taken from the stream. */
static int push_bytes(vqc_pickle *pk, vqc_pk_kind kind, uint64_t n)
{
    const uint8_t *p = NULL;
    if (n > pk->len - pk->pos)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "truncated: string of %llu bytes, %zu left",
                       (unsigned long long)n, pk->len - pk->pos);
    int rc = take(pk, (size_t)n, &p);
    if (rc)
        return rc;
    vqc_pk_value *v = new_value(pk, kind);
    if (v) {
        v->u.s.ptr = (const char *)p;
        v->u.s.len = (size_t)n;
    }
    return push(pk, v);
}

static int push_int(vqc_pickle *pk, int64_t x)
{
    vqc_pk_value *v = new_value(pk, VQC_PK_INT);
    if (v)
        v->u.i = x;
    return push(pk, v);
}

/* LONG1 / LONG4: n-byte little-endian two's complement. */
static int push_long(vqc_pickle *pk, uint64_t n)
{
    if (n > 8)
        return push_bytes(pk, VQC_PK_BIGINT, n);
    const uint8_t *p = NULL;
    int rc = take(pk, (size_t)n, &p);
    if (rc)
        return rc;
    uint64_t u = le(p, (int)n);
    if (n > 0 && n < 8 && (p[n - 1] & 0x80))
        u |= ~(uint64_t)0 << (8 * n);
    return push_int(pk, (int64_t)u);
}

static int push_float_be(vqc_pickle *pk)
{
    const uint8_t *p = NULL;
    int rc = take(pk, 8, &p);
    if (rc)
        return rc;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = (u << 8) | p[i];
    vqc_pk_value *v = new_value(pk, VQC_PK_FLOAT);
    if (v)
        memcpy(&v->u.f, &u, sizeof u);
    return push(pk, v);
}

static int push_float_text(vqc_pickle *pk)
{
    const char *s;
    size_t n;
    int rc = arg_line(pk, &s, &n);
    if (rc)
        return rc;
    char tmp[64];
    if (n == 0 || n >= sizeof tmp)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "bad float text");
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    vqc_pk_value *v = new_value(pk, VQC_PK_FLOAT);
    if (v)
        v->u.f = strtod(tmp, NULL);
    return push(pk, v);
}

/* INT: "00"/"01" are protocol 0's False/True. */
static int push_int_text(vqc_pickle *pk)
{
    size_t at = pk->pos;
    int64_t x;
    int rc = arg_line_int(pk, &x);
    if (rc)
        return rc;
    if (pk->pos - at == 3 && pk->buf[at] == '0') {
        vqc_pk_value *v = new_value(pk, VQC_PK_BOOL);
        if (v)
            v->u.b = (int)x;
        return push(pk, v);
    }
    return push_int(pk, x);
}

/* None, True and False: one shared, never modified value each. */
static int push_simple(vqc_pickle *pk, vqc_pk_kind kind, int b)
{
    vqc_pk_value **slot = kind == VQC_PK_NONE ? &pk->none : b ? &pk->yes : &pk->no;
    if (!*slot && (*slot = new_value(pk, kind)))
        (*slot)->u.b = b;
    return push(pk, *slot);
}

/* ---------------------------------------------------------------------------------------------
 * Containers
 * ------------------------------------------------------------------------------------------- */

/* Moves stack[from .. sp) into a new sequence of `kind` and pushes it. */
static int collect(vqc_pickle *pk, size_t from, vqc_pk_kind kind)
{
    size_t n = pk->sp - from;
    if (kind == VQC_PK_DICT && n % 2)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "odd number of dict items");
    vqc_pk_value *v = new_value(pk, kind);
    if (!v)
        return push(pk, NULL);
    if (n) {
        v->u.seq.items = malloc(n * sizeof *v->u.seq.items);
        if (!v->u.seq.items)
            return push(pk, NULL);
        memcpy(v->u.seq.items, pk->stack + from, n * sizeof *v->u.seq.items);
        v->u.seq.n = v->u.seq.cap = n;
    }
    pk->sp = from;
    return push(pk, v);
}

static int op_collect_mark(vqc_pickle *pk, vqc_pk_kind kind)
{
    size_t from = 0;
    int rc = pop_mark(pk, &from);
    return rc ? rc : collect(pk, from, kind);
}

static int op_tuple_n(vqc_pickle *pk, size_t n)
{
    size_t floor = pk->nmarks ? pk->marks[pk->nmarks - 1] : 0;
    if (pk->sp < floor + n)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "stack underflow");
    return collect(pk, pk->sp - n, VQC_PK_TUPLE);
}

/* The sequence that APPEND(S) / SETITEM(S) / ADDITEMS extend: `target` itself for a list or
 * dict, the item store of an object (a list or dict subclass), or NULL to drop the items. */
static vqc_pk_value *items_target(vqc_pickle *pk, vqc_pk_value *target, vqc_pk_kind kind, int *err)
{
    *err = 0;
    if (target->kind == kind)
        return target;
    if (target->kind != VQC_PK_OBJECT && target->kind != VQC_PK_REDUCE)
        return NULL;
    if (!target->u.obj.items && !(target->u.obj.items = new_value(pk, kind)))
        *err = 1;
    return target->u.obj.items && target->u.obj.items->kind == kind ? target->u.obj.items : NULL;
}

/* APPENDS / SETITEMS / ADDITEMS with items stack[from .. sp) and the target below them. */
static int extend_from(vqc_pickle *pk, size_t from, vqc_pk_kind kind)
{
    size_t floor = pk->nmarks ? pk->marks[pk->nmarks - 1] : 0;
    if (from <= floor || from == 0)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "stack underflow");
    if (kind == VQC_PK_DICT && (pk->sp - from) % 2)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "odd number of dict items");
    vqc_pk_value *target = pk->stack[from - 1];
    int err;
    vqc_pk_value *seq = items_target(pk, target, kind, &err);
    if (!seq && target->kind != VQC_PK_OBJECT && target->kind != VQC_PK_REDUCE)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "cannot add items to this kind of value");
    for (size_t i = from; seq && i < pk->sp; i++)
        if (seq_push(seq, pk->stack[i]))
            err = 1;
    if (err)
        return push(pk, NULL);
    pk->sp = from;
    return 0;
}

static int op_extend_mark(vqc_pickle *pk, vqc_pk_kind kind)
{
    size_t from = 0;
    int rc = pop_mark(pk, &from);
    return rc ? rc : extend_from(pk, from, kind);
}

static int op_extend_n(vqc_pickle *pk, size_t n, vqc_pk_kind kind)
{
    size_t floor = pk->nmarks ? pk->marks[pk->nmarks - 1] : 0;
    if (pk->sp < floor + n)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "stack underflow");
    return extend_from(pk, pk->sp - n, kind);
}

/* ---------------------------------------------------------------------------------------------
 * Globals, storages, tensors, calls
 * ------------------------------------------------------------------------------------------- */

static int bytes_eq(vqc_pk_bytes b, const char *s)
{
    size_t n = strlen(s);
    return b.len == n && memcmp(b.ptr, s, n) == 0;
}

int vqc_pk_is_global(const vqc_pk_value *v, const char *module, const char *name)
{
    return v && v->kind == VQC_PK_GLOBAL && bytes_eq(v->u.global.module, module) &&
           bytes_eq(v->u.global.name, name);
}

int vqc_pk_str_eq(const vqc_pk_value *v, const char *s)
{
    return v && v->kind == VQC_PK_STR && bytes_eq(v->u.s, s);
}

static int push_global(vqc_pickle *pk, vqc_pk_bytes module, vqc_pk_bytes name)
{
    vqc_pk_value *v = new_value(pk, VQC_PK_GLOBAL);
    if (v) {
        v->u.global.module = module;
        v->u.global.name = name;
    }
    return push(pk, v);
}

static int op_global(vqc_pickle *pk)
{
    vqc_pk_bytes m, n;
    int rc = arg_line(pk, &m.ptr, &m.len);
    if (!rc)
        rc = arg_line(pk, &n.ptr, &n.len);
    return rc ? rc : push_global(pk, m, n);
}

static int op_stack_global(vqc_pickle *pk)
{
    vqc_pk_value *m, *n;
    int rc = pop(pk, &n);
    if (!rc)
        rc = pop(pk, &m);
    if (rc)
        return rc;
    if (m->kind != VQC_PK_STR || n->kind != VQC_PK_STR)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "STACK_GLOBAL needs two strings");
    return push_global(pk, m->u.s, n->u.s);
}

static const struct {
    const char *name;
    int dtype, size;
} storage_types[] = {
    {"FloatStorage", VQC_DTYPE_F32, 4},
    {"HalfStorage", VQC_DTYPE_F16, 2},
    {"BFloat16Storage", VQC_DTYPE_BF16, 2},
    {"DoubleStorage", VQC_DTYPE_F64, 8},
    {"LongStorage", VQC_DTYPE_I64, 8},
    {"IntStorage", VQC_DTYPE_I32, 4},
    {"ShortStorage", VQC_DTYPE_I16, 2},
    {"CharStorage", VQC_DTYPE_I8, 1},
    {"ByteStorage", VQC_DTYPE_U8, 1},
    {"BoolStorage", VQC_DTYPE_BOOL, 1},
    {"UntypedStorage", VQC_DTYPE_U8, 1},
    {"ComplexFloatStorage", -1, 8},
    {"ComplexDoubleStorage", -1, 16},
    {"QInt8Storage", -1, 1},
    {"QUInt8Storage", -1, 1},
    {"QInt32Storage", -1, 4},
    {"QUInt4x2Storage", -1, 1},
    {"QUInt2x4Storage", -1, 1},
};

/* Index in storage_types of the torch storage class `cls`, or -1. */
static int storage_type_index(const vqc_pk_value *cls)
{
    if (!cls || cls->kind != VQC_PK_GLOBAL)
        return -1;
    if (!bytes_eq(cls->u.global.module, "torch") && !bytes_eq(cls->u.global.module, "torch.cuda"))
        return -1;
    for (size_t i = 0; i < sizeof storage_types / sizeof *storage_types; i++)
        if (bytes_eq(cls->u.global.name, storage_types[i].name))
            return (int)i;
    return -1;
}

/* Reads the optional legacy view_metadata (view_key, offset, size) into `st`. */
static int storage_view(vqc_pickle *pk, const vqc_pk_value *vm, vqc_pk_storage *st)
{
    if (vm->kind == VQC_PK_NONE)
        return 0;
    if (vm->kind != VQC_PK_TUPLE || vm->u.seq.n != 3 || vm->u.seq.items[0]->kind != VQC_PK_STR ||
        vm->u.seq.items[1]->kind != VQC_PK_INT || vm->u.seq.items[2]->kind != VQC_PK_INT)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "bad storage view metadata");
    st->has_view = 1;
    st->view_key = vm->u.seq.items[0]->u.s;
    st->view_offset = vm->u.seq.items[1]->u.i;
    st->view_numel = vm->u.seq.items[2]->u.i;
    if (st->view_offset < 0 || st->view_numel < 0 || st->view_offset > st->numel ||
        st->view_numel > st->numel - st->view_offset)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "storage view [%lld, +%lld) outside storage of %lld",
                       (long long)st->view_offset, (long long)st->view_numel, (long long)st->numel);
    return 0;
}

/* Builds a storage from a persistent id ('storage', cls, key, location, numel[, view]); any other
 * id gives an inert placeholder. */
static int persistent_load(vqc_pickle *pk, vqc_pk_value *pid, vqc_pk_value **res)
{
    vqc_pk_value **it = pid->kind == VQC_PK_TUPLE ? pid->u.seq.items : NULL;
    size_t n = it ? pid->u.seq.n : 0;
    int t = n >= 5 ? storage_type_index(it[1]) : -1;
    if (t < 0 || !vqc_pk_str_eq(it[0], "storage") || it[2]->kind != VQC_PK_STR ||
        it[4]->kind != VQC_PK_INT || n > 6) {
        *res = new_value(pk, VQC_PK_REDUCE);
        if (*res)
            (*res)->u.obj.args = pid;
        return 0;
    }
    vqc_pk_value *v = new_payload_value(pk, VQC_PK_STORAGE);
    vqc_pk_value **all = grow(pk->storages, &pk->stcap, pk->nstorages + 1, sizeof v, SIZE_MAX / 16);
    if (!v || !all)
        return PK_FAIL(pk, VQC_ERR_NOMEM, "out of memory");
    pk->storages = all;
    vqc_pk_storage *st = v->u.storage;
    st->key = it[2]->u.s;
    st->type = it[1]->u.global.name;
    st->dtype = storage_types[t].dtype;
    st->elem_size = storage_types[t].size;
    st->numel = it[4]->u.i;
    if (st->numel < 0 || st->numel > INT64_MAX / 16)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "storage %.*s has absurd size %lld", (int)st->key.len,
                       st->key.ptr, (long long)st->numel);
    int rc = n == 6 ? storage_view(pk, it[5], st) : 0;
    pk->storages[pk->nstorages++] = v;
    *res = v;
    return rc;
}

static int op_persid(vqc_pickle *pk, int binary)
{
    vqc_pk_value *pid = NULL, *res = NULL;
    int rc;
    if (binary) {
        rc = pop(pk, &pid);
    } else {
        vqc_pk_bytes s;
        rc = arg_line(pk, &s.ptr, &s.len);
        if (!rc && (pid = new_value(pk, VQC_PK_STR)))
            pid->u.s = s;
        else if (!rc)
            return push(pk, NULL);
    }
    if (!rc)
        rc = persistent_load(pk, pid, &res);
    return rc ? rc : push(pk, res);
}

/* Reads a tuple of ints (sizes or strides) into `out`; returns its length or -1. */
static int int_tuple(const vqc_pk_value *t, int64_t *out)
{
    if (t->kind != VQC_PK_TUPLE && t->kind != VQC_PK_LIST)
        return -1;
    if (t->u.seq.n > VQC_PK_MAX_DIMS)
        return -2;
    for (size_t i = 0; i < t->u.seq.n; i++) {
        if (t->u.seq.items[i]->kind != VQC_PK_INT)
            return -1;
        out[i] = t->u.seq.items[i]->u.i;
    }
    return (int)t->u.seq.n;
}

/* Checks sizes, strides and offset of `t` against its storage's element count. */
static int check_tensor(vqc_pickle *pk, vqc_pk_tensor *t)
{
    const vqc_pk_storage *st = t->storage->u.storage;
    int64_t avail = st->has_view ? st->view_numel : st->numel, numel = 1, last = t->offset;
    if (t->offset < 0)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "tensor with negative storage offset");
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0 || t->stride[d] < 0)
            return PK_FAIL(pk, VQC_ERR_FORMAT, "tensor with negative size or stride");
        if (t->shape[d] && __builtin_mul_overflow(numel, t->shape[d], &numel))
            return PK_FAIL(pk, VQC_ERR_FORMAT, "tensor element count overflows");
        int64_t span;
        if (t->shape[d] > 0 && (__builtin_mul_overflow(t->shape[d] - 1, t->stride[d], &span) ||
                                __builtin_add_overflow(last, span, &last)))
            return PK_FAIL(pk, VQC_ERR_FORMAT, "tensor extent overflows");
    }
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] == 0)
            numel = 0;
    t->numel = numel;
    if (numel > 0 ? last >= avail : t->offset > avail)
        return PK_FAIL(pk, VQC_ERR_FORMAT,
                       "tensor addresses element %lld of the %lld-element storage %.*s",
                       (long long)last, (long long)avail, (int)st->key.len, st->key.ptr);
    return 0;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, ...) and _rebuild_tensor(storage, offset,
 * size, stride). Sets *res to NULL when the arguments are not a tensor we can describe. */
static int rebuild_tensor(vqc_pickle *pk, const vqc_pk_value *args, vqc_pk_value **res)
{
    vqc_pk_value **a = args->u.seq.items;
    *res = NULL;
    if (args->u.seq.n < 4 || a[0]->kind != VQC_PK_STORAGE || a[0]->u.storage->dtype < 0 ||
        a[1]->kind != VQC_PK_INT)
        return 0;
    vqc_pk_tensor t = {.storage = a[0], .offset = a[1]->u.i};
    int nd = int_tuple(a[2], t.shape), ns = int_tuple(a[3], t.stride);
    if (nd == -2 || ns == -2)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "tensor with more than %d dimensions", VQC_PK_MAX_DIMS);
    if (nd < 0 || nd != ns)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "tensor with malformed size or stride");
    t.ndim = nd;
    int rc = check_tensor(pk, &t);
    if (rc)
        return rc;
    if (!(*res = new_payload_value(pk, VQC_PK_TENSOR)))
        return PK_FAIL(pk, VQC_ERR_NOMEM, "out of memory");
    *(*res)->u.tensor = t;
    return 0;
}

/* collections.OrderedDict(): empty, or from a list of (key, value) pairs. */
static vqc_pk_value *ordered_dict(vqc_pickle *pk, const vqc_pk_value *args)
{
    if (args->u.seq.n > 1)
        return NULL;
    vqc_pk_value *d = new_value(pk, VQC_PK_DICT);
    const vqc_pk_value *src = args->u.seq.n ? args->u.seq.items[0] : NULL;
    if (!d || !src)
        return d;
    if (src->kind != VQC_PK_LIST && src->kind != VQC_PK_TUPLE)
        return NULL;
    for (size_t i = 0; i < src->u.seq.n; i++) {
        const vqc_pk_value *kv = src->u.seq.items[i];
        if (kv->kind != VQC_PK_TUPLE || kv->u.seq.n != 2)
            return NULL;
        if (seq_push(d, kv->u.seq.items[0]) || seq_push(d, kv->u.seq.items[1]))
            return NULL;
    }
    return d;
}

/* Interprets fn(*args) for the known rebuild functions; *res stays NULL for anything else. */
static int known_call(vqc_pickle *pk, vqc_pk_value *fn, vqc_pk_value *args, int depth,
                      vqc_pk_value **res)
{
    const char *u = "torch._utils";
    vqc_pk_value **a = args->u.seq.items;
    size_t n = args->u.seq.n;
    *res = NULL;
    if (vqc_pk_is_global(fn, u, "_rebuild_tensor_v2") || vqc_pk_is_global(fn, u, "_rebuild_tensor"))
        return rebuild_tensor(pk, args, res);
    if (vqc_pk_is_global(fn, u, "_rebuild_parameter") ||
        vqc_pk_is_global(fn, u, "_rebuild_parameter_with_state")) {
        if (n >= 1 && a[0]->kind == VQC_PK_TENSOR)
            *res = a[0];
        return 0;
    }
    if (vqc_pk_is_global(fn, "torch._tensor", "_rebuild_from_type_v2") && depth == 0 && n >= 3 &&
        a[2]->kind == VQC_PK_TUPLE)
        return known_call(pk, a[0], a[2], 1, res);
    if (vqc_pk_is_global(fn, "collections", "OrderedDict"))
        *res = ordered_dict(pk, args);
    return 0;
}

static int op_reduce(vqc_pickle *pk)
{
    vqc_pk_value *fn, *args, *res = NULL;
    int rc = pop(pk, &args);
    if (!rc)
        rc = pop(pk, &fn);
    if (rc)
        return rc;
    if (args->kind == VQC_PK_TUPLE && (rc = known_call(pk, fn, args, 0, &res)))
        return rc;
    if (!res && (res = new_value(pk, VQC_PK_REDUCE))) {
        res->u.obj.cls = fn;
        res->u.obj.args = args;
    }
    return push(pk, res);
}

/* NEWOBJ (cls, args) and NEWOBJ_EX (cls, args, kwargs): an object without attributes yet. */
static int op_newobj(vqc_pickle *pk, int ex)
{
    vqc_pk_value *cls, *args, *kw;
    int rc = ex ? pop(pk, &kw) : 0;
    if (!rc)
        rc = pop(pk, &args);
    if (!rc)
        rc = pop(pk, &cls);
    if (rc)
        return rc;
    if (vqc_pk_is_global(cls, "collections", "OrderedDict"))
        return push(pk, new_value(pk, VQC_PK_DICT));
    vqc_pk_value *v = new_value(pk, VQC_PK_OBJECT);
    if (v) {
        v->u.obj.cls = cls;
        v->u.obj.args = args;
    }
    return push(pk, v);
}

/* BUILD: records the state on an object or inert call; ignored on anything else. */
static int op_build(vqc_pickle *pk)
{
    vqc_pk_value *state, *target;
    int rc = pop(pk, &state);
    if (!rc)
        rc = top(pk, &target);
    if (rc)
        return rc;
    if (target->kind == VQC_PK_OBJECT || target->kind == VQC_PK_REDUCE)
        target->u.obj.state = state;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The interpreter loop
 * ------------------------------------------------------------------------------------------- */

static int op_pop(vqc_pickle *pk)
{
    vqc_pk_value *v;
    return pop(pk, &v);
}

static int op_pop_mark(vqc_pickle *pk)
{
    size_t from = 0;
    int rc = pop_mark(pk, &from);
    if (!rc)
        pk->sp = from;
    return rc;
}

static int op_dup(vqc_pickle *pk)
{
    vqc_pk_value *v;
    int rc = top(pk, &v);
    return rc ? rc : push(pk, v);
}

static int op_proto(vqc_pickle *pk)
{
    uint64_t v;
    int rc = arg_uint(pk, 1, &v);
    if (!rc && v > 5)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "unsupported pickle protocol %llu",
                       (unsigned long long)v);
    return rc;
}

/* Memo opcodes: GET/PUT take a text index, BIN* a 1-byte one, LONG_BIN* a 4-byte one. */
static int op_memo(vqc_pickle *pk, int put, int width)
{
    uint64_t idx;
    int rc;
    if (width == 0) {
        int64_t x;
        rc = arg_line_int(pk, &x);
        if (!rc && x < 0)
            return PK_FAIL(pk, VQC_ERR_FORMAT, "negative memo index");
        idx = (uint64_t)x;
    } else {
        rc = arg_uint(pk, width, &idx);
    }
    if (rc)
        return rc;
    return put ? memo_put(pk, idx) : memo_get(pk, idx);
}

/* Opcodes that push a scalar or string read from the stream. */
static int op_scalar(vqc_pickle *pk, uint8_t op)
{
    uint64_t n;
    int w = op == 'K' || op == 'U' || op == 'C' || op == 0x8a || op == 0x8c ? 1
            : op == 'M'                                                     ? 2
            : op == 0x8d || op == 0x8e || op == 0x96                        ? 8
                                                                            : 4;
    int rc = arg_uint(pk, w, &n);
    if (rc)
        return rc;
    switch (op) {
    case 'J': return push_int(pk, (int32_t)(uint32_t)n);
    case 'K':
    case 'M': return push_int(pk, (int64_t)n);
    case 0x8a: return push_long(pk, n);
    case 0x8b:
        if ((int32_t)(uint32_t)n < 0)
            return PK_FAIL(pk, VQC_ERR_FORMAT, "negative LONG4 length");
        return push_long(pk, n);
    case 'T':
    case 'U':
    case 'X':
    case 0x8c:
    case 0x8d: return push_bytes(pk, VQC_PK_STR, n);
    default: return push_bytes(pk, VQC_PK_BYTES, n); /* 'B', 'C', 0x8e, 0x96 */
    }
}

/* Executes one opcode; *stop is set at STOP. */
static int step(vqc_pickle *pk, int *stop)
{
    const uint8_t *p = NULL;
    int rc = take(pk, 1, &p);
    if (rc)
        return rc;
    uint8_t op = *p;
    switch (op) {
    case 0x80: return op_proto(pk);
    case 0x95: return take(pk, 8, &p); /* FRAME: framing is irrelevant in memory */
    case '.': *stop = 1; return 0;
    case '(': return push_mark(pk);
    case '0': return op_pop(pk);
    case '1': return op_pop_mark(pk);
    case '2': return op_dup(pk);
    case 'N': return push_simple(pk, VQC_PK_NONE, 0);
    case 0x88: return push_simple(pk, VQC_PK_BOOL, 1);
    case 0x89: return push_simple(pk, VQC_PK_BOOL, 0);
    case 'I': return push_int_text(pk);
    case 'L': {
        int64_t x;
        rc = arg_line_int(pk, &x);
        return rc ? rc : push_int(pk, x);
    }
    case 'F': return push_float_text(pk);
    case 'G': return push_float_be(pk);
    case 'J':
    case 'K':
    case 'M':
    case 0x8a:
    case 0x8b:
    case 'T':
    case 'U':
    case 'X':
    case 0x8c:
    case 0x8d:
    case 'B':
    case 'C':
    case 0x8e:
    case 0x96: return op_scalar(pk, op);
    case 0x98: return 0; /* READONLY_BUFFER */
    case ')': return collect(pk, pk->sp, VQC_PK_TUPLE);
    case ']': return collect(pk, pk->sp, VQC_PK_LIST);
    case '}': return collect(pk, pk->sp, VQC_PK_DICT);
    case 0x8f: return collect(pk, pk->sp, VQC_PK_LIST); /* EMPTY_SET */
    case 't': return op_collect_mark(pk, VQC_PK_TUPLE);
    case 'l': return op_collect_mark(pk, VQC_PK_LIST);
    case 'd': return op_collect_mark(pk, VQC_PK_DICT);
    case 0x91: return op_collect_mark(pk, VQC_PK_TUPLE); /* FROZENSET */
    case 0x85:
    case 0x86:
    case 0x87: return op_tuple_n(pk, (size_t)(op - 0x84));
    case 'a': return op_extend_n(pk, 1, VQC_PK_LIST);
    case 'e': return op_extend_mark(pk, VQC_PK_LIST);
    case 0x90: return op_extend_mark(pk, VQC_PK_LIST); /* ADDITEMS */
    case 's': return op_extend_n(pk, 2, VQC_PK_DICT);
    case 'u': return op_extend_mark(pk, VQC_PK_DICT);
    case 'g': return op_memo(pk, 0, 0);
    case 'h': return op_memo(pk, 0, 1);
    case 'j': return op_memo(pk, 0, 4);
    case 'p': return op_memo(pk, 1, 0);
    case 'q': return op_memo(pk, 1, 1);
    case 'r': return op_memo(pk, 1, 4);
    case 0x94: return memo_put(pk, pk->memo_count);
    case 'c': return op_global(pk);
    case 0x93: return op_stack_global(pk);
    case 'R': return op_reduce(pk);
    case 'b': return op_build(pk);
    case 0x81: return op_newobj(pk, 0);
    case 0x92: return op_newobj(pk, 1);
    case 'P': return op_persid(pk, 0);
    case 'Q': return op_persid(pk, 1);
    default: pk->pos--; return PK_FAIL(pk, VQC_ERR_FORMAT, "unsupported opcode 0x%02x", op);
    }
}

static int run(vqc_pickle *pk)
{
    int stop = 0, rc = 0;
    while (!stop && !rc)
        rc = step(pk, &stop);
    if (rc)
        return rc;
    if (pk->sp == 0)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "STOP with an empty stack");
    pk->root = pk->stack[pk->sp - 1];
    return 0;
}

int vqc_pickle_load(const void *data, size_t len, const char *label, vqc_pickle **out)
{
    *out = NULL;
    vqc_pickle *pk = calloc(1, sizeof *pk);
    if (!pk || !(pk->label = strdup(label ? label : "pickle"))) {
        free(pk);
        return vqc_error_set(VQC_ERR_NOMEM, "out of memory loading a pickle");
    }
    pk->buf = data;
    pk->len = len;
    /* a valid pickle needs at least one opcode byte per memo slot */
    pk->memo_limit = len < VQC_PK_MAX_MEMO ? len + 1 : VQC_PK_MAX_MEMO;
    int rc = run(pk);
    free(pk->stack);
    free(pk->marks);
    free(pk->memo);
    pk->stack = NULL, pk->marks = NULL, pk->memo = NULL;
    if (rc) {
        vqc_pickle_free(pk);
        return rc;
    }
    *out = pk;
    return 0;
}

void vqc_pickle_free(vqc_pickle *pk)
{
    if (!pk)
        return;
    value_block *b = pk->blocks;
    while (b) {
        for (size_t i = 0; i < b->used; i++)
            if (is_seq(&b->v[i]))
                free(b->v[i].u.seq.items);
        value_block *next = b->next;
        free(b);
        b = next;
    }
    while (pk->payloads) {
        payload *next = pk->payloads->next;
        free(pk->payloads);
        pk->payloads = next;
    }
    free(pk->stack);
    free(pk->marks);
    free(pk->memo);
    free(pk->storages);
    free(pk->label);
    free(pk);
}

vqc_pk_value *vqc_pickle_root(const vqc_pickle *pk)
{
    return pk->root;
}

size_t vqc_pickle_consumed(const vqc_pickle *pk)
{
    return pk->pos;
}

size_t vqc_pickle_storage_count(const vqc_pickle *pk)
{
    return pk->nstorages;
}

vqc_pk_value *vqc_pickle_storage_at(const vqc_pickle *pk, size_t i)
{
    return i < pk->nstorages ? pk->storages[i] : NULL;
}
