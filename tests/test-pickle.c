/* Tests for the restricted pickle interpreter (src/io/pickle.c) on hand-built pickles: every
 * supported opcode, the torch rebuild functions, inert handling of arbitrary calls, and hostile
 * input (huge lengths, memo abuse, deep marks, tensors outside their storage, truncation). */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/pickle.h"
#include "io/tensor_map.h"
#include "testhelp.h"
#include "util/dtype.h"
#include "util/error.h"

/* ---------------------------------------------------------------------------------------------
 * A pickle builder
 * ------------------------------------------------------------------------------------------- */

typedef struct pbuf {
    unsigned char *b;
    size_t n, cap;
} pbuf;

static void put(pbuf *p, const void *data, size_t n)
{
    if (p->n + n > p->cap) {
        p->cap = (p->n + n) * 2 + 64;
        p->b = realloc(p->b, p->cap);
        ASSERT(p->b);
    }
    memcpy(p->b + p->n, data, n);
    p->n += n;
}

static void op(pbuf *p, int c)
{
    unsigned char b = (unsigned char)c;
    put(p, &b, 1);
}

static void le(pbuf *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        op(p, (int)((v >> (8 * i)) & 0xff));
}

static void text(pbuf *p, const char *s)
{
    put(p, s, strlen(s));
}

static void str(pbuf *p, const char *s) /* BINUNICODE */
{
    op(p, 'X');
    le(p, strlen(s), 4);
    text(p, s);
}

static void bint(pbuf *p, int32_t v) /* BININT */
{
    op(p, 'J');
    le(p, (uint32_t)v, 4);
}

static void glob(pbuf *p, const char *module, const char *name) /* GLOBAL */
{
    op(p, 'c');
    text(p, module);
    op(p, '\n');
    text(p, name);
    op(p, '\n');
}

static void ints(pbuf *p, int n, const int32_t *v) /* a tuple of ints */
{
    op(p, '(');
    for (int i = 0; i < n; i++)
        bint(p, v[i]);
    op(p, 't');
}

/* Pushes a storage via BINPERSID ('storage', torch.<cls>, key, 'cpu', numel). */
static void storage(pbuf *p, const char *cls, const char *key, int32_t numel)
{
    op(p, '(');
    str(p, "storage");
    glob(p, "torch", cls);
    str(p, key);
    str(p, "cpu");
    bint(p, numel);
    op(p, 't');
    op(p, 'Q');
}

/* Pushes _rebuild_tensor_v2(storage, offset, shape, stride, False, OrderedDict()). */
static void tensor(pbuf *p, const char *cls, const char *key, int32_t numel, int32_t offset, int nd,
                   const int32_t *shape, const int32_t *stride)
{
    glob(p, "torch._utils", "_rebuild_tensor_v2");
    op(p, '(');
    storage(p, cls, key, numel);
    bint(p, offset);
    ints(p, nd, shape);
    ints(p, nd, stride);
    op(p, 0x89);
    glob(p, "collections", "OrderedDict");
    op(p, ')');
    op(p, 'R');
    op(p, 't');
    op(p, 'R');
}

static vqc_pickle *load_ok(const pbuf *p)
{
    vqc_pickle *pk = NULL;
    ASSERT_OK(vqc_pickle_load(p->b, p->n, "test.pkl", &pk));
    ASSERT_EQ(vqc_pickle_consumed(pk), p->n);
    return pk;
}

/* Loads a pickle that must fail; checks the code and that the message names the input. */
static void load_fails(const pbuf *p, int code, const char *what)
{
    vqc_pickle *pk = NULL;
    int rc = vqc_pickle_load(p->b, p->n, "bad.pkl", &pk);
    if (rc != code)
        TEST_FAIL("%s: expected %d, got %d (%s)", what, code, rc, vqc_error_get());
    ASSERT(pk == NULL);
    ASSERT(strstr(vqc_error_get(), "bad.pkl") != NULL);
    ASSERT(strchr(vqc_error_get(), '\n') == NULL);
}

static const vqc_pk_value *item(const vqc_pk_value *v, size_t i)
{
    ASSERT(v->kind == VQC_PK_TUPLE || v->kind == VQC_PK_LIST || v->kind == VQC_PK_DICT);
    ASSERT(i < v->u.seq.n);
    return v->u.seq.items[i];
}

/* ---------------------------------------------------------------------------------------------
 * Values
 * ------------------------------------------------------------------------------------------- */

static void test_scalars(void)
{
    pbuf p = {0};
    op(&p, 0x80), op(&p, 2), op(&p, '(');
    bint(&p, -5);
    op(&p, 'K'), op(&p, 200);
    op(&p, 'M'), le(&p, 60000, 2);
    op(&p, 0x8a), op(&p, 1), op(&p, 0xff);                                         /* LONG1 -1 */
    op(&p, 0x8a), op(&p, 10), le(&p, 0x0102030405060708ull, 8), le(&p, 0x0102, 2); /* bigint */
    op(&p, 'G'), put(&p, "\x3f\xf8\0\0\0\0\0\0", 8); /* 1.5 big-endian */
    op(&p, 'N'), op(&p, 0x88), op(&p, 0x89);
    op(&p, 0x8c), op(&p, 2), text(&p, "hi");
    str(&p, "h\xc3\xa9llo");
    op(&p, 'C'), op(&p, 3), put(&p, "\0\1\2", 3);
    text(&p, "I42\nI01\nL123L\nF2.5\n");
    op(&p, 't'), op(&p, '.');
    vqc_pickle *pk = load_ok(&p);
    const vqc_pk_value *t = vqc_pickle_root(pk);
    ASSERT_EQ(t->kind, VQC_PK_TUPLE);
    ASSERT_EQ(t->u.seq.n, 16);
    ASSERT_EQ(item(t, 0)->u.i, -5);
    ASSERT_EQ(item(t, 1)->u.i, 200);
    ASSERT_EQ(item(t, 2)->u.i, 60000);
    ASSERT_EQ(item(t, 3)->u.i, -1);
    ASSERT_EQ(item(t, 4)->kind, VQC_PK_BIGINT);
    ASSERT_EQ(item(t, 4)->u.s.len, 10);
    ASSERT_NEAR(item(t, 5)->u.f, 1.5, 0);
    ASSERT_EQ(item(t, 6)->kind, VQC_PK_NONE);
    ASSERT(item(t, 7)->kind == VQC_PK_BOOL && item(t, 7)->u.b == 1);
    ASSERT(item(t, 8)->kind == VQC_PK_BOOL && item(t, 8)->u.b == 0);
    ASSERT(vqc_pk_str_eq(item(t, 9), "hi"));
    ASSERT(vqc_pk_str_eq(item(t, 10), "h\xc3\xa9llo"));
    ASSERT(item(t, 11)->kind == VQC_PK_BYTES && item(t, 11)->u.s.len == 3);
    ASSERT(item(t, 12)->kind == VQC_PK_INT && item(t, 12)->u.i == 42);
    ASSERT(item(t, 13)->kind == VQC_PK_BOOL && item(t, 13)->u.b == 1);
    ASSERT_EQ(item(t, 14)->u.i, 123);
    ASSERT_NEAR(item(t, 15)->u.f, 2.5, 0);
    vqc_pickle_free(pk);
    free(p.b);
}

/* Protocol 4 framing, memo opcodes, containers and STACK_GLOBAL. */
static void test_containers_and_memo(void)
{
    pbuf p = {0};
    op(&p, 0x80), op(&p, 4), op(&p, 0x95), le(&p, 0, 8);
    op(&p, '}'), op(&p, 0x94); /* memo 0: the dict */
    op(&p, '('), str(&p, "list"), op(&p, ']'), op(&p, 'q'), op(&p, 1);
    op(&p, '('), bint(&p, 1), bint(&p, 2), op(&p, 'e'); /* APPENDS */
    str(&p, "again"), op(&p, 'h'), op(&p, 1);           /* BINGET 1 */
    str(&p, "t3"), bint(&p, 7), op(&p, '2'), op(&p, 'N'), op(&p, 0x87);
    op(&p, 'r'), le(&p, 5, 4); /* LONG_BINPUT 5 */
    str(&p, "set"), op(&p, 0x8f), op(&p, '('), bint(&p, 9), op(&p, 0x90);
    str(&p, "g"), op(&p, 0x8c), op(&p, 4), text(&p, "amod"), op(&p, 0x8c), op(&p, 4),
        text(&p, "Name"), op(&p, 0x93);
    op(&p, 'u');                                               /* SETITEMS */
    op(&p, 'N'), op(&p, '0');                                  /* POP */
    op(&p, '('), op(&p, 'N'), op(&p, 'N'), op(&p, '1');        /* POP_MARK */
    str(&p, "single"), op(&p, 'j'), le(&p, 5, 4), op(&p, 's'); /* SETITEM, LONG_BINGET */
    op(&p, '.');
    vqc_pickle *pk = load_ok(&p);
    const vqc_pk_value *d = vqc_pickle_root(pk);
    ASSERT_EQ(d->kind, VQC_PK_DICT);
    ASSERT_EQ(d->u.seq.n, 12);
    ASSERT(vqc_pk_str_eq(item(d, 0), "list"));
    const vqc_pk_value *l = item(d, 1);
    ASSERT(l->kind == VQC_PK_LIST && l->u.seq.n == 2 && item(l, 1)->u.i == 2);
    ASSERT(item(d, 3) == l); /* memo returns the same object */
    const vqc_pk_value *t3 = item(d, 5);
    ASSERT(t3->kind == VQC_PK_TUPLE && t3->u.seq.n == 3 && item(t3, 0) == item(t3, 1));
    ASSERT(item(d, 7)->kind == VQC_PK_LIST && item(item(d, 7), 0)->u.i == 9);
    ASSERT(vqc_pk_is_global(item(d, 9), "amod", "Name"));
    ASSERT(item(d, 11) == t3);
    vqc_pickle_free(pk);
    free(p.b);
}

/* ---------------------------------------------------------------------------------------------
 * Torch objects
 * ------------------------------------------------------------------------------------------- */

static void test_tensors(void)
{
    static const int32_t shape[2] = {3, 4}, stride[2] = {4, 1}, tshape[2] = {4, 3},
                         tstride[2] = {1, 4};
    pbuf p = {0};
    op(&p, 0x80), op(&p, 2), op(&p, '(');
    tensor(&p, "HalfStorage", "0", 12, 0, 2, shape, stride);
    tensor(&p, "FloatStorage", "1", 20, 8, 2, tshape, tstride); /* transposed view, offset 8 */
    glob(&p, "torch._utils", "_rebuild_parameter"), op(&p, '(');
    tensor(&p, "LongStorage", "2", 1, 0, 0, NULL, NULL);
    op(&p, 0x88), glob(&p, "collections", "OrderedDict"), op(&p, ')'), op(&p, 'R'), op(&p, 't'),
        op(&p, 'R');
    glob(&p, "torch._utils", "_rebuild_tensor"), op(&p, '(');
    storage(&p, "BFloat16Storage", "3", 6);
    bint(&p, 0), ints(&p, 1, (int32_t[]){6}), ints(&p, 1, (int32_t[]){1}), op(&p, 't'), op(&p, 'R');
    tensor(&p, "FloatStorage", "4", 0, 0, 2, (int32_t[]){0, 5}, (int32_t[]){5, 1}); /* empty */
    op(&p, 't'), op(&p, '.');
    vqc_pickle *pk = load_ok(&p);
    const vqc_pk_value *t = vqc_pickle_root(pk);
    ASSERT_EQ(t->u.seq.n, 5);
    const vqc_pk_tensor *a = item(t, 0)->u.tensor, *b = item(t, 1)->u.tensor;
    ASSERT_EQ(item(t, 0)->kind, VQC_PK_TENSOR);
    ASSERT(a->ndim == 2 && a->shape[0] == 3 && a->shape[1] == 4 && a->stride[0] == 4 &&
           a->numel == 12);
    ASSERT_EQ(a->storage->u.storage->dtype, VQC_DTYPE_F16);
    ASSERT(b->offset == 8 && b->stride[1] == 4 && b->storage->u.storage->dtype == VQC_DTYPE_F32);
    ASSERT(item(t, 2)->kind == VQC_PK_TENSOR && item(t, 2)->u.tensor->ndim == 0 &&
           item(t, 2)->u.tensor->numel == 1);
    ASSERT_EQ(item(t, 3)->u.tensor->storage->u.storage->dtype, VQC_DTYPE_BF16);
    ASSERT_EQ(item(t, 4)->u.tensor->numel, 0);
    ASSERT_EQ(vqc_pickle_storage_count(pk), 5);
    const vqc_pk_storage *s = vqc_pickle_storage_at(pk, 1)->u.storage;
    ASSERT(s->numel == 20 && s->elem_size == 4 && s->key.len == 1 && s->key.ptr[0] == '1');
    ASSERT(vqc_pickle_storage_at(pk, 5) == NULL);
    vqc_pickle_free(pk);
    free(p.b);
}

/* OrderedDict, NEWOBJ + BUILD (TorchScript modules), class objects as dict keys, items added to
 * an object, storages of types without a vqc_dtype. */
static void test_objects(void)
{
    pbuf p = {0};
    op(&p, 0x80), op(&p, 2);
    glob(&p, "__torch__.___torch_mangle_3", "TensorTree"), op(&p, ')'), op(&p, 0x81);
    op(&p, '}'), op(&p, '(');
    str(&p, "od"), glob(&p, "collections", "OrderedDict"), op(&p, ')'), op(&p, 'R');
    op(&p, '('), str(&p, "w"), bint(&p, 1), op(&p, 'u');
    str(&p, "cb"), op(&p, '}'),
        glob(&p, "pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint");
    op(&p, '}'), op(&p, 's');
    str(&p, "ns"), glob(&p, "argparse", "Namespace"), op(&p, ')'), op(&p, 0x81);
    op(&p, '('), str(&p, "k"), bint(&p, 2), op(&p, 'u'); /* SETITEMS on an object */
    str(&p, "cplx");
    tensor(&p, "ComplexFloatStorage", "9", 4, 0, 1, (int32_t[]){4}, (int32_t[]){1});
    op(&p, 'u'), op(&p, 'b'), op(&p, '.');
    vqc_pickle *pk = load_ok(&p);
    const vqc_pk_value *o = vqc_pickle_root(pk);
    ASSERT_EQ(o->kind, VQC_PK_OBJECT);
    ASSERT(vqc_pk_is_global(o->u.obj.cls, "__torch__.___torch_mangle_3", "TensorTree"));
    const vqc_pk_value *st = o->u.obj.state;
    ASSERT(st && st->kind == VQC_PK_DICT && st->u.seq.n == 8);
    ASSERT(item(st, 1)->kind == VQC_PK_DICT && vqc_pk_str_eq(item(item(st, 1), 0), "w"));
    const vqc_pk_value *cb = item(st, 3);
    ASSERT(vqc_pk_is_global(item(cb, 0), "pytorch_lightning.callbacks.model_checkpoint",
                            "ModelCheckpoint"));
    const vqc_pk_value *ns = item(st, 5);
    ASSERT(ns->kind == VQC_PK_OBJECT && ns->u.obj.items && ns->u.obj.items->u.seq.n == 2);
    ASSERT_EQ(item(st, 7)->kind, VQC_PK_REDUCE); /* complex tensor: inert */
    vqc_pickle_free(pk);
    free(p.b);
}

/* Calls of anything but the rebuild functions are records, never executed. */
static void test_no_execution(void)
{
    char marker[4200], cmd[4300];
    snprintf(marker, sizeof marker, "%s/pwned", test_tmpdir("test-pickle"));
    unlink(marker);
    snprintf(cmd, sizeof cmd, "touch %s", marker);
    pbuf p = {0};
    op(&p, 0x80), op(&p, 2), op(&p, '(');
    glob(&p, "os", "system"), str(&p, cmd), op(&p, 0x85), op(&p, 'R');
    glob(&p, "posix", "system"), str(&p, cmd), op(&p, 0x85), op(&p, 'R');
    glob(&p, "builtins", "eval"), str(&p, "__import__('os').system('true')"), op(&p, 0x85),
        op(&p, 'R');
    glob(&p, "subprocess", "Popen"), op(&p, '('), str(&p, "sh"), op(&p, 't'), op(&p, 0x81);
    op(&p, '('), str(&p, "x"), op(&p, 'l'), op(&p, 'P'), text(&p, "weird\n"); /* text pid */
    op(&p, 't'), op(&p, '.');
    vqc_pickle *pk = load_ok(&p);
    const vqc_pk_value *t = vqc_pickle_root(pk);
    ASSERT_EQ(item(t, 0)->kind, VQC_PK_REDUCE);
    ASSERT(vqc_pk_is_global(item(t, 0)->u.obj.cls, "os", "system"));
    ASSERT(vqc_pk_str_eq(item(item(t, 0)->u.obj.args, 0), cmd));
    ASSERT_EQ(item(t, 1)->kind, VQC_PK_REDUCE);
    ASSERT_EQ(item(t, 2)->kind, VQC_PK_REDUCE);
    ASSERT_EQ(item(t, 3)->kind, VQC_PK_OBJECT);
    ASSERT_EQ(item(t, 5)->kind, VQC_PK_REDUCE);
    struct stat sb;
    ASSERT(stat(marker, &sb) != 0);
    vqc_pickle_free(pk);
    free(p.b);
}

/* ---------------------------------------------------------------------------------------------
 * Hostile input
 * ------------------------------------------------------------------------------------------- */

static pbuf start(void)
{
    pbuf p = {0};
    op(&p, 0x80), op(&p, 2);
    return p;
}

static void finish_fails(pbuf *p, int code, const char *what)
{
    op(p, '.');
    load_fails(p, code, what);
    free(p->b);
}

static void bad_tensor(int nd, const int32_t *shape, const int32_t *stride, int32_t offset,
                       int32_t numel, const char *what)
{
    pbuf p = start();
    tensor(&p, "FloatStorage", "0", numel, offset, nd, shape, stride);
    finish_fails(&p, VQC_ERR_FORMAT, what);
}

static void test_bad_tensors(void)
{
    bad_tensor(2, (int32_t[]){3, 4}, (int32_t[]){4, 1}, 0, 11, "one element past the storage");
    bad_tensor(2, (int32_t[]){3, 4}, (int32_t[]){5, 1}, 0, 12, "stride pointing outside");
    bad_tensor(2, (int32_t[]){3, 4}, (int32_t[]){4, 1}, 1, 12, "offset pushing outside");
    bad_tensor(1, (int32_t[]){-1}, (int32_t[]){1}, 0, 12, "negative size");
    bad_tensor(1, (int32_t[]){2}, (int32_t[]){-1}, 1, 12, "negative stride");
    bad_tensor(1, (int32_t[]){2}, (int32_t[]){1}, -1, 12, "negative offset");
    bad_tensor(0, NULL, NULL, 13, 12, "scalar past the end");
    bad_tensor(9, (int32_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, (int32_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, 0,
               1, "nine dims");
    bad_tensor(4, (int32_t[]){65536, 65536, 65536, 65536}, (int32_t[]){0, 0, 0, 0}, 0, 1,
               "element count overflows");
    bad_tensor(2, (int32_t[]){2, 2}, (int32_t[]){2147483647, 2147483647}, 0, 12, "huge strides");
    bad_tensor(2, (int32_t[]){3, 4}, (int32_t[]){4, 1}, 0, -1, "negative storage size");
    pbuf p = start(); /* shape and stride of different ranks */
    glob(&p, "torch._utils", "_rebuild_tensor_v2"), op(&p, '(');
    storage(&p, "FloatStorage", "0", 12);
    bint(&p, 0), ints(&p, 1, (int32_t[]){3}), ints(&p, 2, (int32_t[]){1, 1}), op(&p, 't'),
        op(&p, 'R');
    finish_fails(&p, VQC_ERR_FORMAT, "rank mismatch");
    p = start(); /* a legacy view outside its storage */
    op(&p, '('), str(&p, "storage"), glob(&p, "torch", "FloatStorage"), str(&p, "0"),
        str(&p, "cpu");
    bint(&p, 10), op(&p, '('), str(&p, "1"), bint(&p, 8), bint(&p, 4), op(&p, 't'), op(&p, 't'),
        op(&p, 'Q');
    finish_fails(&p, VQC_ERR_FORMAT, "view outside storage");
}

static void test_bad_streams(void)
{
    pbuf p = {0};
    load_fails(&p, VQC_ERR_FORMAT, "empty input");
    p = start(), bint(&p, 1);
    load_fails(&p, VQC_ERR_FORMAT, "no STOP");
    free(p.b);
    p = start(), op(&p, 0xff), finish_fails(&p, VQC_ERR_FORMAT, "unknown opcode");
    p = start(), text(&p, "S'abc'\n"), finish_fails(&p, VQC_ERR_FORMAT, "STRING opcode");
    p = start(), text(&p, "(ios\nsystem\n"), finish_fails(&p, VQC_ERR_FORMAT, "INST opcode");
    p = start(), op(&p, 0x82), op(&p, 1), finish_fails(&p, VQC_ERR_FORMAT, "EXT1 opcode");
    p = (pbuf){0}, op(&p, 0x80), op(&p, 6), finish_fails(&p, VQC_ERR_FORMAT, "protocol 6");
    p = start(), op(&p, 'X'), le(&p, 0xffffffffu, 4), text(&p, "abc");
    finish_fails(&p, VQC_ERR_FORMAT, "huge BINUNICODE");
    p = start(), op(&p, 0x8d), le(&p, UINT64_MAX, 8),
    finish_fails(&p, VQC_ERR_FORMAT, "huge BINUNICODE8");
    p = start(), op(&p, 0x8b), le(&p, 0x80000000u, 4),
    finish_fails(&p, VQC_ERR_FORMAT, "negative LONG4");
    p = start(), op(&p, 'N'), op(&p, 'r'), le(&p, 0xfffffff0u, 4);
    finish_fails(&p, VQC_ERR_FORMAT, "huge memo index");
    p = start(), op(&p, 'h'), op(&p, 3), finish_fails(&p, VQC_ERR_FORMAT, "empty memo slot");
    p = start(), op(&p, 'j'), le(&p, 0xffffffffu, 4),
    finish_fails(&p, VQC_ERR_FORMAT, "memo get far");
    p = start(), op(&p, '0'), finish_fails(&p, VQC_ERR_FORMAT, "POP on empty stack");
    p = start(), op(&p, ')'), op(&p, 'R'), finish_fails(&p, VQC_ERR_FORMAT, "REDUCE underflow");
    p = start(), op(&p, '('), op(&p, 'R'), finish_fails(&p, VQC_ERR_FORMAT, "REDUCE across a MARK");
    p = start(), bint(&p, 1), bint(&p, 2), op(&p, 'a'),
    finish_fails(&p, VQC_ERR_FORMAT, "APPEND to int");
    p = start(), op(&p, '}'), op(&p, '('), op(&p, 'N'), op(&p, 'u'),
    finish_fails(&p, VQC_ERR_FORMAT, "odd SETITEMS");
    p = start(), op(&p, 't'), finish_fails(&p, VQC_ERR_FORMAT, "TUPLE without MARK");
    p = start(), finish_fails(&p, VQC_ERR_FORMAT, "STOP on empty stack");
    p = start(), op(&p, 'N'), op(&p, 0x93),
    finish_fails(&p, VQC_ERR_FORMAT, "STACK_GLOBAL of None");
    p = start(), text(&p, "Iabc\n"), finish_fails(&p, VQC_ERR_FORMAT, "bad INT text");
    p = start(), text(&p, "cos\nsys"), load_fails(&p, VQC_ERR_FORMAT, "unterminated GLOBAL");
    free(p.b);
}

/* Resource limits: marks, stack. */
static void test_limits(void)
{
    pbuf p = start();
    for (unsigned i = 0; i < VQC_PK_MAX_MARKS + 1; i++)
        op(&p, '(');
    finish_fails(&p, VQC_ERR_NOMEM, "too many MARKs");
    p = start();
    for (unsigned i = 0; i < VQC_PK_MAX_STACK + 1; i++)
        op(&p, 'N');
    finish_fails(&p, VQC_ERR_NOMEM, "stack too deep");
    /* deep nesting is fine for the interpreter itself (no recursion); walkers bound depth */
    p = start();
    op(&p, ']');
    for (int i = 0; i < 100000; i++)
        op(&p, ']'), op(&p, '2'), op(&p, 0x86), op(&p, 0x85); /* t = ((l, l),) style chain */
    op(&p, '.');
    vqc_pickle *pk = load_ok(&p);
    vqc_pickle_free(pk);
    free(p.b);
}

/* Every proper prefix of a valid pickle fails cleanly. */
static void test_truncation(void)
{
    pbuf p = {0};
    op(&p, 0x80), op(&p, 2), op(&p, '}'), op(&p, '(');
    str(&p, "weight");
    tensor(&p, "FloatStorage", "0", 12, 0, 2, (int32_t[]){3, 4}, (int32_t[]){4, 1});
    str(&p, "n"), op(&p, 0x8a), op(&p, 2), le(&p, 0x1234, 2), op(&p, 'u'), op(&p, '.');
    for (size_t n = 0; n < p.n; n++) {
        unsigned char *copy = malloc(n ? n : 1);
        memcpy(copy, p.b, n);
        vqc_pickle *pk = NULL;
        int rc = vqc_pickle_load(copy, n, "cut.pkl", &pk);
        ASSERT(rc < 0 && pk == NULL && *vqc_error_get());
        free(copy);
    }
    vqc_pickle_free(load_ok(&p));
    free(p.b);
}

/* ---------------------------------------------------------------------------------------------
 * Hostile pickles through the container reader (legacy torch.save images built in memory)
 * ------------------------------------------------------------------------------------------- */

/* A legacy image: magic, protocol, sys_info, `object`, keys "0".."n-1", then per storage an int64
 * count and count * 4 bytes (float32 values k * 1000 + i). */
static pbuf legacy_image(const pbuf *object, int n, const int64_t *counts)
{
    pbuf img = {0};
    put(&img, "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);
    put(&img, "\x80\x02M\xe9\x03.", 6);
    op(&img, 0x80), op(&img, 2), op(&img, '}'), str(&img, "little_endian"), op(&img, 0x88);
    op(&img, 's'), op(&img, '.');
    put(&img, object->b, object->n);
    op(&img, 0x80), op(&img, 2), op(&img, ']'), op(&img, '(');
    for (int k = 0; k < n; k++) {
        char key[16];
        snprintf(key, sizeof key, "%d", k);
        str(&img, key);
    }
    op(&img, 'e'), op(&img, '.');
    for (int k = 0; k < n; k++) {
        le(&img, (uint64_t)counts[k], 8);
        for (int64_t i = 0; i < counts[k] && i < 4096; i++) { /* larger counts: truncated data */
            float f = (float)(k * 1000 + i);
            put(&img, &f, 4);
        }
    }
    return img;
}

/* Element i of a float32 tensor (legacy data need not be aligned). */
static float f32_at(const void *data, int64_t i)
{
    float f;
    memcpy(&f, (const char *)data + 4 * i, 4);
    return f;
}

static int open_image(const pbuf *img, vqc_tensor_map **m)
{
    unsigned char *copy = malloc(img->n); /* exact size, so that ASan sees any overread */
    memcpy(copy, img->b, img->n);
    int rc = vqc_tmap_open_memory(copy, img->n, "legacy.pt", m);
    if (rc == 0) { /* read every element through its strides */
        for (size_t i = 0; i < vqc_tmap_count(*m); i++) {
            const vqc_tensor_info *t = vqc_tmap_at(*m, i);
            volatile float sink = 0;
            int64_t last = 0;
            for (int d = 0; d < t->ndim; d++)
                last += (t->shape[d] - 1) * t->strides[d];
            if (t->numel > 0)
                sink += f32_at(t->data, 0) + f32_at(t->data, last);
            (void)sink;
        }
        vqc_tmap_free(*m);
        *m = NULL;
    }
    free(copy);
    return rc;
}

static void test_legacy_image(void)
{
    pbuf o = start();
    op(&o, '}'), op(&o, '('), str(&o, "a");
    tensor(&o, "FloatStorage", "0", 6, 0, 2, (int32_t[]){2, 3}, (int32_t[]){3, 1});
    op(&o, 'q'), op(&o, 0), str(&o, "b"), op(&o, '('), op(&o, 'h'), op(&o, 0);
    tensor(&o, "FloatStorage", "1", 4, 1, 1, (int32_t[]){2}, (int32_t[]){2});
    op(&o, 'l'), str(&o, "c"); /* a view of storage 0: elements 2..5 */
    glob(&o, "torch._utils", "_rebuild_tensor_v2"), op(&o, '(');
    op(&o, '('), str(&o, "storage"), glob(&o, "torch", "FloatStorage"), str(&o, "0"),
        str(&o, "cpu");
    bint(&o, 6), op(&o, '('), str(&o, "77"), bint(&o, 2), bint(&o, 4), op(&o, 't'), op(&o, 't'),
        op(&o, 'Q');
    bint(&o, 1), ints(&o, 1, (int32_t[]){2}), ints(&o, 1, (int32_t[]){1}), op(&o, 't'), op(&o, 'R');
    str(&o, "evil"), glob(&o, "os", "system"), str(&o, "true"), op(&o, 0x85), op(&o, 'R');
    op(&o, 'u'), op(&o, '.');
    pbuf img = legacy_image(&o, 2, (int64_t[]){6, 4});
    vqc_tensor_map *m;
    ASSERT_OK(vqc_tmap_open_memory(img.b, img.n, "legacy.pt", &m));
    ASSERT_STR_EQ(vqc_tmap_format(m), "legacy");
    ASSERT_EQ(vqc_tmap_count(m), 4);
    const vqc_tensor_info *a = vqc_tmap_get(m, "a"), *b1 = vqc_tmap_get(m, "b.1");
    const vqc_tensor_info *c = vqc_tmap_get(m, "c");
    ASSERT(a && b1 && c && vqc_tmap_get(m, "b.0") && !vqc_tmap_get(m, "evil"));
    ASSERT(vqc_tmap_get(m, "b.0")->data == a->data);
    ASSERT_NEAR(f32_at(a->data, 5), 5, 0);
    ASSERT(b1->numel == 2 && b1->strides[0] == 2);
    ASSERT_NEAR(f32_at(b1->data, 2), 1003, 0);
    ASSERT_NEAR(f32_at(c->data, 0), 3, 0); /* view offset 2 + tensor offset 1 */
    ASSERT(vqc_tmap_meta(m, "x") == NULL && vqc_tmap_at(m, 4) == NULL);
    vqc_tmap_free(m);
    for (size_t n = 1; n < img.n; n++) { /* every truncation fails cleanly */
        pbuf cut = {img.b, n, n};
        ASSERT(open_image(&cut, &m) < 0 && *vqc_error_get());
    }
    free(img.b);
    free(o.b);
}

/* Opens a legacy image with one storage of 4 floats whose object pickle is `o`; returns rc. */
static int open_legacy_object(pbuf *o, int64_t count)
{
    vqc_tensor_map *m = NULL;
    pbuf img = legacy_image(o, 1, &count);
    int rc = open_image(&img, &m);
    free(img.b);
    free(o->b);
    return rc;
}

static void one_tensor(pbuf *o)
{
    tensor(o, "FloatStorage", "0", 4, 0, 1, (int32_t[]){4}, (int32_t[]){1});
}

static void test_hostile_trees(void)
{
    pbuf o = start(); /* nested 150 deep */
    one_tensor(&o);
    for (int i = 0; i < 150; i++)
        op(&o, 0x85);
    op(&o, '.');
    ASSERT_EQ(open_legacy_object(&o, 4), VQC_ERR_FORMAT);
    ASSERT(strstr(vqc_error_get(), "deeper"));
    o = start(); /* a list that contains itself */
    op(&o, ']'), op(&o, 'q'), op(&o, 0), op(&o, 'h'), op(&o, 0), op(&o, 'a'), op(&o, '.');
    ASSERT_EQ(open_legacy_object(&o, 4), VQC_ERR_FORMAT);
    o = start(); /* shared subtrees: 2^60 paths */
    one_tensor(&o);
    for (int i = 0; i < 60; i++)
        op(&o, '2'), op(&o, 0x86);
    op(&o, '.');
    ASSERT_EQ(open_legacy_object(&o, 4), VQC_ERR_NOMEM);
    o = start(); /* a list of the same 200k-item list, 1000 times: bounded work */
    op(&o, '('), one_tensor(&o), op(&o, ']'), op(&o, '(');
    for (int i = 0; i < 200000; i++)
        op(&o, 'N');
    op(&o, 'e');
    for (int i = 0; i < 1000; i++)
        op(&o, '2');
    op(&o, 'l'), op(&o, '.');
    ASSERT_EQ(open_legacy_object(&o, 4), VQC_ERR_NOMEM);
    o = start(), one_tensor(&o), op(&o, '.');
    ASSERT_EQ(open_legacy_object(&o, 4), 0);
    o = start(), one_tensor(&o), op(&o, '.');
    ASSERT_EQ(open_legacy_object(&o, 3), VQC_ERR_FORMAT); /* count disagrees with the pickle */
    o = start(), op(&o, 'N'), op(&o, '.');
    ASSERT_EQ(open_legacy_object(&o, 4), VQC_ERR_FORMAT); /* listed storage never used */
    o = start(), one_tensor(&o), op(&o, '.');
    ASSERT_EQ(open_legacy_object(&o, (int64_t)1 << 40), VQC_ERR_FORMAT); /* data missing */
}

/* Damaged legacy headers: magic number, protocol version, byte order. */
static void test_legacy_headers(void)
{
    pbuf o = start();
    one_tensor(&o), op(&o, '.');
    pbuf img = legacy_image(&o, 1, (int64_t[]){4});
    vqc_tensor_map *m;
    img.b[13] ^= 1; /* magic */
    ASSERT_EQ(open_image(&img, &m), VQC_ERR_FORMAT);
    ASSERT(strstr(vqc_error_get(), "magic"));
    img.b[13] ^= 1, img.b[18] = 0xe8; /* protocol 1000 */
    ASSERT_EQ(open_image(&img, &m), VQC_ERR_FORMAT);
    ASSERT(strstr(vqc_error_get(), "protocol"));
    img.b[18] = 0xe9;
    unsigned char *le_flag = memmem(img.b, img.n, "little_endian", 13);
    ASSERT(le_flag && le_flag[13] == 0x88);
    le_flag[13] = 0x89; /* little_endian: False */
    ASSERT_EQ(open_image(&img, &m), VQC_ERR_FORMAT);
    ASSERT(strstr(vqc_error_get(), "big-endian"));
    le_flag[13] = 0x88;
    ASSERT_OK(open_image(&img, &m));
    free(img.b);
    free(o.b);
}

int main(void)
{
    test_scalars();
    test_containers_and_memo();
    test_tensors();
    test_objects();
    test_no_execution();
    test_bad_tensors();
    test_bad_streams();
    test_limits();
    test_truncation();
    test_legacy_image();
    test_hostile_trees();
    test_legacy_headers();
    printf("test-pickle: ok\n");
    return 0;
}
