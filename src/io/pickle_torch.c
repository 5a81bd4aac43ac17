/* The opcodes that would run code in Python (GLOBAL, STACK_GLOBAL, REDUCE, NEWOBJ, BUILD,
 * PERSID) and the torch conventions interpreted there: storages from persistent ids, tensors from
 * the _rebuild_* functions, OrderedDict. The stack machine itself is in pickle.c; see pickle.h.
 * Nothing here resolves a name or calls out of the file. */
#define VQC_PICKLE_INTERNAL
#include "io/pickle.h"

#include <stdlib.h>
#include <string.h>

#include "util/dtype.h"
#include "util/error.h"

/* ---------------------------------------------------------------------------------------------
 * Globals
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
    vqc_pk_value *v = vqc_pk_new(pk, VQC_PK_GLOBAL);
    if (v) {
        v->u.global.module = module;
        v->u.global.name = name;
    }
    return vqc_pk_push(pk, v);
}

int vqc_pk_op_global(vqc_pickle *pk)
{
    vqc_pk_bytes m, n;
    int rc = vqc_pk_arg_line(pk, &m.ptr, &m.len);
    if (!rc)
        rc = vqc_pk_arg_line(pk, &n.ptr, &n.len);
    return rc ? rc : push_global(pk, m, n);
}

int vqc_pk_op_stack_global(vqc_pickle *pk)
{
    vqc_pk_value *m, *n;
    int rc = vqc_pk_pop(pk, &n);
    if (!rc)
        rc = vqc_pk_pop(pk, &m);
    if (rc)
        return rc;
    if (m->kind != VQC_PK_STR || n->kind != VQC_PK_STR)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "STACK_GLOBAL needs two strings");
    return push_global(pk, m->u.s, n->u.s);
}

/* ---------------------------------------------------------------------------------------------
 * Storages (persistent ids)
 * ------------------------------------------------------------------------------------------- */

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
        *res = vqc_pk_new(pk, VQC_PK_REDUCE);
        if (*res)
            (*res)->u.obj.args = pid;
        return 0;
    }
    vqc_pk_value *v = vqc_pk_new_payload(pk, VQC_PK_STORAGE);
    if (!v || vqc_pk_add_storage(pk, v))
        return PK_FAIL(pk, VQC_ERR_NOMEM, "out of memory");
    vqc_pk_storage *st = v->u.storage;
    st->key = it[2]->u.s;
    st->type = it[1]->u.global.name;
    st->dtype = storage_types[t].dtype;
    st->elem_size = storage_types[t].size;
    st->numel = it[4]->u.i;
    if (st->numel < 0 || st->numel > INT64_MAX / 16)
        return PK_FAIL(pk, VQC_ERR_FORMAT, "storage %.*s has absurd size %lld", (int)st->key.len,
                       st->key.ptr, (long long)st->numel);
    *res = v;
    return n == 6 ? storage_view(pk, it[5], st) : 0;
}

int vqc_pk_op_persid(vqc_pickle *pk, int binary)
{
    vqc_pk_value *pid = NULL, *res = NULL;
    int rc;
    if (binary) {
        rc = vqc_pk_pop(pk, &pid);
    } else {
        vqc_pk_bytes s;
        rc = vqc_pk_arg_line(pk, &s.ptr, &s.len);
        if (!rc && (pid = vqc_pk_new(pk, VQC_PK_STR)))
            pid->u.s = s;
        else if (!rc)
            return vqc_pk_push(pk, NULL);
    }
    if (!rc)
        rc = persistent_load(pk, pid, &res);
    return rc ? rc : vqc_pk_push(pk, res);
}

/* ---------------------------------------------------------------------------------------------
 * Tensors and calls
 * ------------------------------------------------------------------------------------------- */

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
    if (!(*res = vqc_pk_new_payload(pk, VQC_PK_TENSOR)))
        return PK_FAIL(pk, VQC_ERR_NOMEM, "out of memory");
    *(*res)->u.tensor = t;
    return 0;
}

/* collections.OrderedDict(): empty, or from a list of (key, value) pairs. */
static vqc_pk_value *ordered_dict(vqc_pickle *pk, const vqc_pk_value *args)
{
    if (args->u.seq.n > 1)
        return NULL;
    vqc_pk_value *d = vqc_pk_new(pk, VQC_PK_DICT);
    const vqc_pk_value *src = args->u.seq.n ? args->u.seq.items[0] : NULL;
    if (!d || !src)
        return d;
    if (src->kind != VQC_PK_LIST && src->kind != VQC_PK_TUPLE)
        return NULL;
    for (size_t i = 0; i < src->u.seq.n; i++) {
        const vqc_pk_value *kv = src->u.seq.items[i];
        if (kv->kind != VQC_PK_TUPLE || kv->u.seq.n != 2)
            return NULL;
        if (vqc_pk_seq_push(d, kv->u.seq.items[0]) || vqc_pk_seq_push(d, kv->u.seq.items[1]))
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

int vqc_pk_op_reduce(vqc_pickle *pk)
{
    vqc_pk_value *fn, *args, *res = NULL;
    int rc = vqc_pk_pop(pk, &args);
    if (!rc)
        rc = vqc_pk_pop(pk, &fn);
    if (rc)
        return rc;
    if (args->kind == VQC_PK_TUPLE && (rc = known_call(pk, fn, args, 0, &res)))
        return rc;
    if (!res && (res = vqc_pk_new(pk, VQC_PK_REDUCE))) {
        res->u.obj.cls = fn;
        res->u.obj.args = args;
    }
    return vqc_pk_push(pk, res);
}

/* NEWOBJ (cls, args) and NEWOBJ_EX (cls, args, kwargs): an object without attributes yet. */
int vqc_pk_op_newobj(vqc_pickle *pk, int ex)
{
    vqc_pk_value *cls, *args, *kw;
    int rc = ex ? vqc_pk_pop(pk, &kw) : 0;
    if (!rc)
        rc = vqc_pk_pop(pk, &args);
    if (!rc)
        rc = vqc_pk_pop(pk, &cls);
    if (rc)
        return rc;
    if (vqc_pk_is_global(cls, "collections", "OrderedDict"))
        return vqc_pk_push(pk, vqc_pk_new(pk, VQC_PK_DICT));
    vqc_pk_value *v = vqc_pk_new(pk, VQC_PK_OBJECT);
    if (v) {
        v->u.obj.cls = cls;
        v->u.obj.args = args;
    }
    return vqc_pk_push(pk, v);
}

/* BUILD: records the state on an object or inert call; ignored on anything else. */
int vqc_pk_op_build(vqc_pickle *pk)
{
    vqc_pk_value *state, *target;
    int rc = vqc_pk_pop(pk, &state);
    if (!rc)
        rc = vqc_pk_top(pk, &target);
    if (rc)
        return rc;
    if (target->kind == VQC_PK_OBJECT || target->kind == VQC_PK_REDUCE)
        target->u.obj.state = state;
    return 0;
}
