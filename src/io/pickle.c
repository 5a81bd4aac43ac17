/* Restricted pickle interpreter, the stack machine: stream, stack, marks, memo, scalars and
 * containers (see pickle.h). The opcodes that name or call code (globals, REDUCE, NEWOBJ, BUILD,
 * persistent ids) and torch's conventions are in pickle_torch.c. Nothing calls out of the file:
 * globals are names, calls are records, and torch's rebuild functions are read structurally. */
#define VQC_PICKLE_INTERNAL
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

int vqc_pk_fail(vqc_pickle *pk, int code, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    vqc_error_set(code, "%s: pickle: %s (at byte %zu)", pk->label, what, pk->pos);
    return code; /* visibly non-zero to the compiler and analyzers */
}

vqc_pk_value *vqc_pk_new(vqc_pickle *pk, vqc_pk_kind kind)
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
vqc_pk_value *vqc_pk_new_payload(vqc_pickle *pk, vqc_pk_kind kind)
{
    payload *p = calloc(1, sizeof *p);
    vqc_pk_value *v = p ? vqc_pk_new(pk, kind) : NULL;
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

int vqc_pk_seq_push(vqc_pk_value *seq, vqc_pk_value *item)
{
    vqc_pk_value **items =
        grow(seq->u.seq.items, &seq->u.seq.cap, seq->u.seq.n + 1, sizeof item, SIZE_MAX / 16);
    if (!items)
        return -1;
    seq->u.seq.items = items;
    items[seq->u.seq.n++] = item;
    return 0;
}

int vqc_pk_add_storage(vqc_pickle *pk, vqc_pk_value *storage)
{
    vqc_pk_value **all =
        grow(pk->storages, &pk->stcap, pk->nstorages + 1, sizeof storage, SIZE_MAX / 16);
    if (!all)
        return -1;
    pk->storages = all;
    all[pk->nstorages++] = storage;
    return 0;
}

static int is_seq(const vqc_pk_value *v)
{
    return v->kind == VQC_PK_TUPLE || v->kind == VQC_PK_LIST || v->kind == VQC_PK_DICT;
}

/* ---------------------------------------------------------------------------------------------
 * Stack, marks, memo
 * ------------------------------------------------------------------------------------------- */

int vqc_pk_push(vqc_pickle *pk, vqc_pk_value *v)
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
int vqc_pk_pop(vqc_pickle *pk, vqc_pk_value **v)
{
    *v = NULL;
    size_t floor = pk->nmarks ? pk->marks[pk->nmarks - 1] : 0;
    if (pk->sp <= floor)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "stack underflow");
    *v = pk->stack[--pk->sp];
    return 0;
}

int vqc_pk_top(vqc_pickle *pk, vqc_pk_value **v)
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
    int rc = vqc_pk_top(pk, &v);
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
    return vqc_pk_push(pk, pk->memo[idx]);
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
int vqc_pk_arg_line(vqc_pickle *pk, const char **s, size_t *n)
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
    int rc = vqc_pk_arg_line(pk, &s, &n);
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
    vqc_pk_value *v = vqc_pk_new(pk, kind);
    if (v) {
        v->u.s.ptr = (const char *)p;
        v->u.s.len = (size_t)n;
    }
    return vqc_pk_push(pk, v);
}

static int push_int(vqc_pickle *pk, int64_t x)
{
    vqc_pk_value *v = vqc_pk_new(pk, VQC_PK_INT);
    if (v)
        v->u.i = x;
    return vqc_pk_push(pk, v);
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
    vqc_pk_value *v = vqc_pk_new(pk, VQC_PK_FLOAT);
    if (v)
        memcpy(&v->u.f, &u, sizeof u);
    return vqc_pk_push(pk, v);
}

static int push_float_text(vqc_pickle *pk)
{
    const char *s;
    size_t n;
    int rc = vqc_pk_arg_line(pk, &s, &n);
    if (rc)
        return rc;
    char tmp[64];
    if (n == 0 || n >= sizeof tmp)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "bad float text");
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    vqc_pk_value *v = vqc_pk_new(pk, VQC_PK_FLOAT);
    if (v)
        v->u.f = strtod(tmp, NULL);
    return vqc_pk_push(pk, v);
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
        vqc_pk_value *v = vqc_pk_new(pk, VQC_PK_BOOL);
        if (v)
            v->u.b = (int)x;
        return vqc_pk_push(pk, v);
    }
    return push_int(pk, x);
}

/* None, True and False: one shared, never modified value each. */
static int push_simple(vqc_pickle *pk, vqc_pk_kind kind, int b)
{
    vqc_pk_value **slot = kind == VQC_PK_NONE ? &pk->none : b ? &pk->yes : &pk->no;
    if (!*slot && (*slot = vqc_pk_new(pk, kind)))
        (*slot)->u.b = b;
    return vqc_pk_push(pk, *slot);
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
    vqc_pk_value *v = vqc_pk_new(pk, kind);
    if (!v)
        return vqc_pk_push(pk, NULL);
    if (n) {
        v->u.seq.items = malloc(n * sizeof *v->u.seq.items);
        if (!v->u.seq.items)
            return vqc_pk_push(pk, NULL);
        memcpy(v->u.seq.items, pk->stack + from, n * sizeof *v->u.seq.items);
        v->u.seq.n = v->u.seq.cap = n;
    }
    pk->sp = from;
    return vqc_pk_push(pk, v);
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
    if (!target->u.obj.items && !(target->u.obj.items = vqc_pk_new(pk, kind)))
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
        if (vqc_pk_seq_push(seq, pk->stack[i]))
            err = 1;
    if (err)
        return vqc_pk_push(pk, NULL);
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
 * The interpreter loop
 * ------------------------------------------------------------------------------------------- */

static int op_pop(vqc_pickle *pk)
{
    vqc_pk_value *v;
    return vqc_pk_pop(pk, &v);
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
    int rc = vqc_pk_top(pk, &v);
    return rc ? rc : vqc_pk_push(pk, v);
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
    case 'c': return vqc_pk_op_global(pk);
    case 0x93: return vqc_pk_op_stack_global(pk);
    case 'R': return vqc_pk_op_reduce(pk);
    case 'b': return vqc_pk_op_build(pk);
    case 0x81: return vqc_pk_op_newobj(pk, 0);
    case 0x92: return vqc_pk_op_newobj(pk, 1);
    case 'P': return vqc_pk_op_persid(pk, 0);
    case 'Q': return vqc_pk_op_persid(pk, 1);
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
