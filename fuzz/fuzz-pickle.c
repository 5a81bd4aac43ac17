/* libFuzzer target: the restricted pickle interpreter (vqc_pickle_load) on arbitrary bytes.
 * A successful load must give a tree that can be walked without touching memory outside the
 * input or the interpreter's own allocations; storages and tensors keep their promises. */
#include "fuzzhelp.h"
#include "io/pickle.h"

#define WALK_DEPTH 64
#define WALK_BUDGET 100000

/* Visits `v` and its children (depth- and count-bounded: the tree may be cyclic). */
static void walk(const vqc_pk_value *v, int depth, size_t *budget, unsigned *sum)
{
    if (!v || depth > WALK_DEPTH || *budget == 0)
        return;
    (*budget)--;
    switch (v->kind) {
    case VQC_PK_STR:
    case VQC_PK_BYTES:
    case VQC_PK_BIGINT:
        for (size_t i = 0; i < v->u.s.len; i++)
            *sum += (unsigned char)v->u.s.ptr[i];
        break;
    case VQC_PK_TUPLE:
    case VQC_PK_LIST:
    case VQC_PK_DICT:
        FUZZ_CHECK(v->kind != VQC_PK_DICT || v->u.seq.n % 2 == 0);
        for (size_t i = 0; i < v->u.seq.n; i++)
            walk(v->u.seq.items[i], depth + 1, budget, sum);
        break;
    case VQC_PK_OBJECT:
    case VQC_PK_REDUCE:
        walk(v->u.obj.cls, depth + 1, budget, sum);
        walk(v->u.obj.args, depth + 1, budget, sum);
        walk(v->u.obj.state, depth + 1, budget, sum);
        walk(v->u.obj.items, depth + 1, budget, sum);
        break;
    case VQC_PK_TENSOR: {
        const vqc_pk_tensor *t = v->u.tensor;
        FUZZ_CHECK(t->storage && t->storage->kind == VQC_PK_STORAGE);
        FUZZ_CHECK(t->ndim >= 0 && t->ndim <= VQC_PK_MAX_DIMS && t->numel >= 0);
        break;
    }
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vqc_pickle *pk = NULL;
    int rc = vqc_pickle_load(data, size, "fuzz", &pk);
    fuzz_check_error(rc, data, size);
    if (rc)
        return 0;
    FUZZ_CHECK(vqc_pickle_consumed(pk) <= size);
    size_t budget = WALK_BUDGET;
    unsigned sum = 0;
    walk(vqc_pickle_root(pk), 0, &budget, &sum);
    for (size_t i = 0; i < vqc_pickle_storage_count(pk); i++) {
        const vqc_pk_value *s = vqc_pickle_storage_at(pk, i);
        FUZZ_CHECK(s && s->kind == VQC_PK_STORAGE && s->u.storage->numel >= 0);
    }
    FUZZ_CHECK(vqc_pickle_storage_at(pk, vqc_pickle_storage_count(pk)) == NULL);
    vqc_pickle_free(pk);
    return (int)(sum & 0); /* keeps the walk from being optimised away */
}
