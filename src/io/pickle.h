/* A restricted pickle interpreter (protocols 2 to 5) that never executes anything.
 *
 *     vqc_pickle *pk;
 *     if (vqc_pickle_load(bytes, n, "model.ckpt", &pk) == 0) {
 *         const vqc_pk_value *root = vqc_pickle_root(pk);
 *         ...walk the tree...
 *         vqc_pickle_free(pk);
 *     }
 *
 * The result is an inert tree of values. Globals become VQC_PK_GLOBAL placeholders; calling one
 * (REDUCE) only has an effect for the few callables torch.save uses to rebuild tensors and
 * ordered dicts:
 *   torch._utils._rebuild_tensor_v2 / _rebuild_tensor    -> VQC_PK_TENSOR
 *   torch._utils._rebuild_parameter[_with_state]          -> its tensor argument
 *   torch._tensor._rebuild_from_type_v2 (of the above)    -> the tensor
 *   collections.OrderedDict                               -> VQC_PK_DICT
 * Every other call yields a VQC_PK_REDUCE value that merely records the callable and its
 * arguments. NEWOBJ / NEWOBJ_EX yield VQC_PK_OBJECT, whose attributes come from BUILD's state
 * (that is how TorchScript archives store modules); items that SETITEM(S) / APPEND(S) add to an
 * object (a dict or list subclass) are kept in .obj.items. Persistent ids of the form
 * ('storage', <torch.XxxStorage>, key, location, numel[, view_metadata]) become VQC_PK_STORAGE
 * values; other persistent ids become VQC_PK_REDUCE placeholders.
 *
 * Unsupported opcodes (an error): STRING, UNICODE, INST, OBJ, EXT1/2/4, NEXT_BUFFER. PERSID
 * (text ids) is accepted and gives an inert placeholder. Strings and bytes point into the input
 * buffer (not NUL-terminated; the buffer must outlive the tree). Limits: stack, memo, mark depth
 * and value count are bounded (below); tensors have at most VQC_PK_MAX_DIMS dims, non-negative
 * sizes and strides, overflow-checked element counts, and every addressed element lies inside the
 * storage's declared element count. The tree may share nodes and may even contain cycles (a list
 * that contains itself): walkers must bound their depth. */
#ifndef VQC_IO_PICKLE_H
#define VQC_IO_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#define VQC_PK_MAX_DIMS 8
#define VQC_PK_MAX_STACK (1u << 20)  /* values on the stack */
#define VQC_PK_MAX_MARKS (1u << 16)  /* open MARKs */
#define VQC_PK_MAX_MEMO (1u << 24)   /* memo slots */
#define VQC_PK_MAX_VALUES (1u << 23) /* values created in total (None/True/False are shared) */

typedef enum vqc_pk_kind {
    VQC_PK_NONE = 0,
    VQC_PK_BOOL,
    VQC_PK_INT,    /* fits int64 */
    VQC_PK_BIGINT, /* longer integer: little-endian two's complement bytes in .s */
    VQC_PK_FLOAT,
    VQC_PK_STR,     /* UTF-8 bytes in .s */
    VQC_PK_BYTES,   /* bytes / bytearray in .s */
    VQC_PK_TUPLE,   /* .seq: items */
    VQC_PK_LIST,    /* .seq: items (sets and frozensets too) */
    VQC_PK_DICT,    /* .seq: 2*n items, key0, value0, key1, value1, ... in insertion order */
    VQC_PK_GLOBAL,  /* .global: a class or function named by the pickle, never resolved */
    VQC_PK_OBJECT,  /* .obj: cls = the class, args = NEWOBJ args, state = BUILD state or NULL */
    VQC_PK_REDUCE,  /* .obj: an inert call: cls = the callable, args = its arguments */
    VQC_PK_STORAGE, /* .storage */
    VQC_PK_TENSOR,  /* .tensor */
} vqc_pk_kind;

typedef struct vqc_pk_value vqc_pk_value;

typedef struct vqc_pk_bytes {
    const char *ptr; /* into the input buffer */
    size_t len;
} vqc_pk_bytes;

typedef struct vqc_pk_storage {
    vqc_pk_bytes key;  /* storage key: "0", "17", "734933472" */
    vqc_pk_bytes type; /* class name, e.g. "FloatStorage" */
    int dtype;         /* vqc_dtype, or -1 when the type has no vqc_dtype (complex, quantized) */
    int elem_size;     /* bytes per element (known for every torch storage class) */
    int64_t numel;     /* elements, from the persistent id */
    int has_view;      /* legacy format: a view into the storage `key` */
    vqc_pk_bytes view_key; /* the view's own key */
    int64_t view_offset;   /* in elements of the root storage */
    int64_t view_numel;
    /* Filled in by the container reader, not by the interpreter: */
    const void *data; /* first byte of this storage (after the view offset), or NULL */
} vqc_pk_storage;

typedef struct vqc_pk_tensor {
    vqc_pk_value *storage; /* a VQC_PK_STORAGE value */
    int64_t offset;        /* in elements */
    int ndim;
    int64_t shape[VQC_PK_MAX_DIMS];
    int64_t stride[VQC_PK_MAX_DIMS];
    int64_t numel;
} vqc_pk_tensor;

struct vqc_pk_value {
    vqc_pk_kind kind;
    union {
        int b;
        int64_t i;
        double f;
        vqc_pk_bytes s;
        struct {
            vqc_pk_value **items;
            size_t n, cap;
        } seq;
        struct {
            vqc_pk_bytes module, name;
        } global;
        struct {
            vqc_pk_value *cls, *args, *state;
            vqc_pk_value *items; /* DICT from SETITEM(S) or LIST from APPEND(S) on it, or NULL */
        } obj;
        vqc_pk_storage *storage; /* owned by the pickle */
        vqc_pk_tensor *tensor;   /* owned by the pickle */
    } u;
};

typedef struct vqc_pickle vqc_pickle;

/* Interprets the pickle `data` (`len` bytes, borrowed: it must outlive the result) up to its
 * STOP opcode. `label` prefixes error messages. Returns 0 and sets *out (free with
 * vqc_pickle_free), or VQC_ERR_FORMAT (malformed, truncated, unsupported opcode, tensor outside
 * its storage) / VQC_ERR_NOMEM (a limit was hit or memory ran out) with a one-line message. */
int vqc_pickle_load(const void *data, size_t len, const char *label, vqc_pickle **out);

/* Frees every value of the tree; NULL is ignored. */
void vqc_pickle_free(vqc_pickle *pk);

/* The unpickled object (valid while `pk` lives). */
vqc_pk_value *vqc_pickle_root(const vqc_pickle *pk);

/* Bytes consumed, up to and including STOP (several pickles can follow each other in a file). */
size_t vqc_pickle_consumed(const vqc_pickle *pk);

/* Number of VQC_PK_STORAGE values created, and the i-th one (NULL when out of range): the
 * container reader fills in their .data. */
size_t vqc_pickle_storage_count(const vqc_pickle *pk);
vqc_pk_value *vqc_pickle_storage_at(const vqc_pickle *pk, size_t i);

/* 1 when `v` is a VQC_PK_GLOBAL named module.name (e.g. "torch._utils", "_rebuild_tensor_v2"). */
int vqc_pk_is_global(const vqc_pk_value *v, const char *module, const char *name);

/* 1 when `v` is a VQC_PK_STR equal to the NUL-terminated `s`. */
int vqc_pk_str_eq(const vqc_pk_value *v, const char *s);

/* ---------------------------------------------------------------------------------------------
 * Internal: the interface between the stack machine (pickle.c) and the call and torch opcodes
 * (pickle_torch.c). Only those two files define VQC_PICKLE_INTERNAL; nothing else may use it.
 * ------------------------------------------------------------------------------------------- */
#ifdef VQC_PICKLE_INTERNAL

/* Records "<label>: pickle: <message> (at byte N)" as the error and returns `code`. */
int vqc_pk_fail(vqc_pickle *pk, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define PK_FAIL(pk, code, ...) vqc_pk_fail((pk), (code), __VA_ARGS__)

/* A new zeroed value of `kind` owned by `pk`, or NULL (value limit reached, out of memory). */
vqc_pk_value *vqc_pk_new(vqc_pickle *pk, vqc_pk_kind kind);
/* As vqc_pk_new for VQC_PK_STORAGE / VQC_PK_TENSOR, with the zeroed out-of-line record. */
vqc_pk_value *vqc_pk_new_payload(vqc_pickle *pk, vqc_pk_kind kind);
/* Appends `item` to the TUPLE/LIST/DICT `seq`; 0 or -1 (out of memory). */
int vqc_pk_seq_push(vqc_pk_value *seq, vqc_pk_value *item);
/* Registers a VQC_PK_STORAGE value for vqc_pickle_storage_at; 0 or -1 (out of memory). */
int vqc_pk_add_storage(vqc_pickle *pk, vqc_pk_value *storage);

/* Stack operations; each returns 0 or a VQC_ERR_* set with vqc_pk_fail. vqc_pk_push(pk, NULL)
 * reports "too many values or out of memory" (so a failed vqc_pk_new can be pushed directly);
 * pop and top fail on an empty stack or when a MARK sits above the top value. */
int vqc_pk_push(vqc_pickle *pk, vqc_pk_value *v);
int vqc_pk_pop(vqc_pickle *pk, vqc_pk_value **v);
int vqc_pk_top(vqc_pickle *pk, vqc_pk_value **v);
/* Reads a protocol-0 text argument up to (not including) its newline, pointing into the input. */
int vqc_pk_arg_line(vqc_pickle *pk, const char **s, size_t *n);

/* Opcode handlers of pickle_torch.c (see the top of this header for what they build). */
int vqc_pk_op_global(vqc_pickle *pk);             /* GLOBAL */
int vqc_pk_op_stack_global(vqc_pickle *pk);       /* STACK_GLOBAL */
int vqc_pk_op_persid(vqc_pickle *pk, int binary); /* PERSID, BINPERSID */
int vqc_pk_op_reduce(vqc_pickle *pk);             /* REDUCE */
int vqc_pk_op_newobj(vqc_pickle *pk, int ex);     /* NEWOBJ, NEWOBJ_EX */
int vqc_pk_op_build(vqc_pickle *pk);              /* BUILD */

#endif /* VQC_PICKLE_INTERNAL */

#endif
