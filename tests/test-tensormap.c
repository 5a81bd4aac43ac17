/* Tests for vqc_tmap_* on the reference fixtures under $VQCLIP_FIXTURES: every taming checkpoint
 * (zip and legacy) and CLIP TorchScript archive opens with the expected names, dtypes, shapes
 * and values; safetensors fixtures open with their metadata; bad paths and truncated copies of
 * every fixture fail with a one-line message. */
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/tensor_map.h"
#include "testhelp.h"
#include "util/dtype.h"
#include "util/error.h"

static const struct fixture {
    const char *file, *format;
    size_t count;
} fixtures[] = {
    {"vqgan/tiny_vq.ckpt", "zip", 207},
    {"vqgan/tiny_vq_legacy.ckpt", "legacy", 207},
    {"vqgan/tiny_gumbel.ckpt", "zip", 151},
    {"vqgan/tiny_transformer.ckpt", "zip", 318},
    {"clip/tiny_vit.pt", "torchscript", 65},
    {"clip/tiny_rn.pt", "torchscript", 156},
    {"vqgan/tiny_vq_ref.safetensors", "safetensors", 9},
    {"clip/tiny_vit_ref.safetensors", "safetensors", 5},
};
#define NFIXTURES (sizeof fixtures / sizeof *fixtures)

static const struct expect {
    const char *file, *name;
    vqc_dtype dtype;
    int ndim;
    int64_t shape[4];
} expects[] = {
    {"vqgan/tiny_vq.ckpt", "state_dict.encoder.conv_in.weight", VQC_DTYPE_F32, 4, {32, 3, 3, 3}},
    {"vqgan/tiny_vq.ckpt", "state_dict.quantize.embedding.weight", VQC_DTYPE_F32, 2, {64, 16}},
    {"vqgan/tiny_vq.ckpt", "state_dict.loss.logvar", VQC_DTYPE_F32, 0, {0}},
    {"vqgan/tiny_vq.ckpt", "callbacks.<ModelCheckpoint>.best_model_score", VQC_DTYPE_F32, 0, {0}},
    {"vqgan/tiny_vq.ckpt", "optimizer_states.0.state.0.exp_avg", VQC_DTYPE_F32, 4, {32, 3, 3, 3}},
    {"vqgan/tiny_vq_legacy.ckpt",
     "state_dict.encoder.conv_in.weight",
     VQC_DTYPE_F32,
     4,
     {32, 3, 3, 3}},
    {"vqgan/tiny_vq_legacy.ckpt",
     "state_dict.quantize.embedding.weight",
     VQC_DTYPE_F32,
     2,
     {64, 16}},
    {"vqgan/tiny_gumbel.ckpt", "state_dict.quantize.embed.weight", VQC_DTYPE_F32, 2, {64, 16}},
    {"vqgan/tiny_gumbel.ckpt", "state_dict.quantize.proj.weight", VQC_DTYPE_F32, 4, {64, 16, 1, 1}},
    {"vqgan/tiny_transformer.ckpt",
     "state_dict.first_stage_model.quantize.embedding.weight",
     VQC_DTYPE_F32,
     2,
     {64, 16}},
    {"vqgan/tiny_transformer.ckpt",
     "state_dict.transformer.tok_emb.weight",
     VQC_DTYPE_F32,
     2,
     {64, 8}},
    {"vqgan/tiny_transformer.ckpt",
     "state_dict.permuter.forward_shuffle_idx",
     VQC_DTYPE_I64,
     1,
     {16}},
    {"clip/tiny_vit.pt", "visual.conv1.weight", VQC_DTYPE_F16, 4, {64, 3, 8, 8}},
    {"clip/tiny_vit.pt",
     "transformer.resblocks.0.attn.in_proj_weight",
     VQC_DTYPE_F16,
     2,
     {192, 64}},
    {"clip/tiny_vit.pt", "visual.transformer.resblocks.1.mlp.c_fc.bias", VQC_DTYPE_F16, 1, {256}},
    {"clip/tiny_vit.pt", "visual.transformer.resblocks.1.ln_2.weight", VQC_DTYPE_F32, 1, {64}},
    {"clip/tiny_vit.pt", "visual.proj", VQC_DTYPE_F16, 2, {64, 32}},
    {"clip/tiny_vit.pt", "visual.class_embedding", VQC_DTYPE_F32, 1, {64}},
    {"clip/tiny_vit.pt", "text_projection", VQC_DTYPE_F16, 2, {64, 32}},
    {"clip/tiny_vit.pt", "positional_embedding", VQC_DTYPE_F32, 2, {77, 64}},
    {"clip/tiny_vit.pt", "token_embedding.weight", VQC_DTYPE_F32, 2, {49408, 64}},
    {"clip/tiny_vit.pt", "logit_scale", VQC_DTYPE_F32, 0, {0}},
    {"clip/tiny_vit.pt", "input_resolution", VQC_DTYPE_I64, 0, {0}},
    {"clip/tiny_rn.pt", "visual.conv1.weight", VQC_DTYPE_F16, 4, {16, 3, 3, 3}},
    {"clip/tiny_rn.pt", "visual.bn1.running_var", VQC_DTYPE_F32, 1, {16}},
    {"clip/tiny_rn.pt", "visual.bn1.num_batches_tracked", VQC_DTYPE_I64, 0, {0}},
    {"clip/tiny_rn.pt", "visual.attnpool.k_proj.weight", VQC_DTYPE_F16, 2, {1024, 1024}},
    {"clip/tiny_rn.pt", "vocab_size", VQC_DTYPE_I64, 0, {0}},
    {"clip/tiny_vit_ref.safetensors", "tokens", VQC_DTYPE_I64, 2, {3, 77}},
};

static vqc_tensor_map *open_fixture(const char *rel)
{
    vqc_tensor_map *m = NULL;
    ASSERT_OK(vqc_tmap_open(fixture_path(rel), &m));
    return m;
}

static int64_t i64_of(const vqc_tensor_map *m, const char *name)
{
    const vqc_tensor_info *t = vqc_tmap_get(m, name);
    int64_t v;
    ASSERT(t && t->dtype == VQC_DTYPE_I64 && t->numel == 1);
    memcpy(&v, t->data, 8);
    return v;
}

/* ---------------------------------------------------------------------------------------------
 * Fixtures open with the expected content
 * ------------------------------------------------------------------------------------------- */

/* Counts, formats, and consistency of every entry (contiguous strides, numel, unique names). */
static void test_listing(void)
{
    for (size_t f = 0; f < NFIXTURES; f++) {
        vqc_tensor_map *m = open_fixture(fixtures[f].file);
        struct stat sb;
        ASSERT(stat(fixture_path(fixtures[f].file), &sb) == 0);
        ASSERT_EQ(vqc_tmap_file_size(m), sb.st_size);
        ASSERT_STR_EQ(vqc_tmap_format(m), fixtures[f].format);
        ASSERT_EQ(vqc_tmap_count(m), fixtures[f].count);
        ASSERT(vqc_tmap_at(m, fixtures[f].count) == NULL);
        for (size_t i = 0; i < vqc_tmap_count(m); i++) {
            const vqc_tensor_info *t = vqc_tmap_at(m, i);
            int64_t numel = 1, stride = 1;
            for (int d = t->ndim - 1; d >= 0; d--) {
                ASSERT_EQ(t->strides[d], stride); /* all fixture tensors are contiguous */
                stride *= t->shape[d];
                numel *= t->shape[d];
            }
            ASSERT_EQ(t->numel, numel);
            ASSERT(t->data != NULL && (unsigned)t->dtype < VQC_DTYPE_COUNT);
            ASSERT(vqc_tmap_get(m, t->name) == t); /* names are unique in the fixtures */
        }
        ASSERT(vqc_tmap_get(m, "no.such.tensor") == NULL);
        vqc_tmap_free(m);
    }
}

static void test_expected_entries(void)
{
    for (size_t e = 0; e < sizeof expects / sizeof *expects; e++) {
        const struct expect *x = &expects[e];
        vqc_tensor_map *m = open_fixture(x->file);
        const vqc_tensor_info *t = vqc_tmap_get(m, x->name);
        if (!t)
            TEST_FAIL("%s: no tensor %s", x->file, x->name);
        if (t->dtype != x->dtype || t->ndim != x->ndim)
            TEST_FAIL("%s: %s is %s/%d-d, expected %s/%d-d", x->file, x->name,
                      vqc_dtype_name(t->dtype), t->ndim, vqc_dtype_name(x->dtype), x->ndim);
        for (int d = 0; d < x->ndim; d++)
            ASSERT_EQ(t->shape[d], x->shape[d]);
        vqc_tmap_free(m);
    }
}

/* CLIP conventions: only 0-d int64 tensors; float16 exactly for conv/linear/attention weights
 * and projections. */
static void test_clip_dtypes(void)
{
    const char *files[2] = {"clip/tiny_vit.pt", "clip/tiny_rn.pt"};
    for (int f = 0; f < 2; f++) {
        vqc_tensor_map *m = open_fixture(files[f]);
        ASSERT_EQ(i64_of(m, "input_resolution"), f == 0 ? 32 : 64);
        ASSERT_EQ(i64_of(m, "context_length"), 77);
        ASSERT_EQ(i64_of(m, "vocab_size"), 49408);
        for (size_t i = 0; i < vqc_tmap_count(m); i++) {
            const vqc_tensor_info *t = vqc_tmap_at(m, i);
            int half = strstr(t->name, "proj") || strstr(t->name, "c_fc") ||
                       (strstr(t->name, "conv") && t->ndim == 4) ||
                       (strstr(t->name, "downsample.0") && t->ndim == 4);
            if (t->dtype == VQC_DTYPE_I64)
                ASSERT_EQ(t->ndim, 0);
            else if ((t->dtype == VQC_DTYPE_F16) != half)
                TEST_FAIL("%s: %s has dtype %s", files[f], t->name, vqc_dtype_name(t->dtype));
        }
        vqc_tmap_free(m);
    }
}

/* Compares a checkpoint's codebook bit for bit with `codebook` in its reference file. */
static void check_codebook(const char *ckpt, const char *name, const char *ref)
{
    vqc_tensor_map *m = open_fixture(ckpt), *r = open_fixture(ref);
    const vqc_tensor_info *a = vqc_tmap_get(m, name), *b = vqc_tmap_get(r, "codebook");
    ASSERT(a && b);
    ASSERT(a->dtype == b->dtype && a->numel == b->numel && a->ndim == b->ndim);
    ASSERT(a->shape[0] == b->shape[0] && a->shape[1] == b->shape[1]);
    if (memcmp(a->data, b->data, (size_t)a->numel * vqc_dtype_size(a->dtype)) != 0)
        TEST_FAIL("%s: %s differs from %s codebook", ckpt, name, ref);
    vqc_tmap_free(m);
    vqc_tmap_free(r);
}

static void test_values(void)
{
    check_codebook("vqgan/tiny_vq.ckpt", "state_dict.quantize.embedding.weight",
                   "vqgan/tiny_vq_ref.safetensors");
    check_codebook("vqgan/tiny_vq_legacy.ckpt", "state_dict.quantize.embedding.weight",
                   "vqgan/tiny_vq_legacy_ref.safetensors");
    check_codebook("vqgan/tiny_gumbel.ckpt", "state_dict.quantize.embed.weight",
                   "vqgan/tiny_gumbel_ref.safetensors");
    check_codebook("vqgan/tiny_transformer.ckpt",
                   "state_dict.first_stage_model.quantize.embedding.weight",
                   "vqgan/tiny_transformer_ref.safetensors");
    /* the zip and legacy checkpoints hold the same architecture under the same names */
    vqc_tensor_map *z = open_fixture("vqgan/tiny_vq.ckpt"),
                   *l = open_fixture("vqgan/tiny_vq_legacy.ckpt");
    for (size_t i = 0; i < vqc_tmap_count(z); i++) {
        const vqc_tensor_info *a = vqc_tmap_at(z, i), *b = vqc_tmap_get(l, a->name);
        if (!b)
            TEST_FAIL("legacy checkpoint lacks %s", a->name);
        ASSERT(a->dtype == b->dtype && a->ndim == b->ndim && a->numel == b->numel);
    }
    vqc_tmap_free(z);
    vqc_tmap_free(l);
}

static void test_safetensors_fixture(void)
{
    vqc_tensor_map *m = open_fixture("clip/tiny_vit_ref.safetensors");
    ASSERT(vqc_tmap_meta(m, "what") != NULL && vqc_tmap_meta(m, "texts") != NULL);
    ASSERT(vqc_tmap_meta(m, "nope") == NULL);
    const vqc_tensor_info *ls = vqc_tmap_get(m, "logit_scale");
    ASSERT(ls && ls->ndim == 0 && ls->numel == 1);
    vqc_tmap_free(m);
    m = open_fixture("vqgan/tiny_vq.ckpt");
    ASSERT(vqc_tmap_meta(m, "what") == NULL);
    vqc_tmap_free(m);
}

/* ---------------------------------------------------------------------------------------------
 * Failures
 * ------------------------------------------------------------------------------------------- */

static void expect_open_error(const char *path, int code)
{
    vqc_tensor_map *m = (vqc_tensor_map *)1;
    int rc = vqc_tmap_open(path, &m);
    if (rc != code)
        TEST_FAIL("%s: expected %d, got %d (%s)", path, code, rc, vqc_error_get());
    ASSERT(m == NULL);
    ASSERT(strstr(vqc_error_get(), path) != NULL && strchr(vqc_error_get(), '\n') == NULL);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ASSERT(f);
    ASSERT_EQ(fwrite(data, 1, n, f), n);
    ASSERT_EQ(fclose(f), 0);
}

static void test_bad_paths(void)
{
    const char *dir = test_tmpdir("test-tensormap");
    char path[4300];
    snprintf(path, sizeof path, "%s/does-not-exist.ckpt", dir);
    expect_open_error(path, VQC_ERR_IO);
    expect_open_error(dir, VQC_ERR_IO);
    snprintf(path, sizeof path, "%s/empty.ckpt", dir);
    write_file(path, "", 0);
    expect_open_error(path, VQC_ERR_FORMAT);
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    const char *txt = "model:\n  target: taming.models.vqgan.VQModel\n  params: {}\n";
    write_file(path, txt, strlen(txt));
    expect_open_error(path, VQC_ERR_FORMAT);
    snprintf(path, sizeof path, "%s/pickle.pkl", dir); /* a pickle, but not a checkpoint */
    write_file(path, "\x80\x02K\x01.", 5);
    expect_open_error(path, VQC_ERR_FORMAT);
    snprintf(path, sizeof path, "%s/zip-head.ckpt", dir);
    write_file(path, "PK\3\4garbage", 11);
    expect_open_error(path, VQC_ERR_FORMAT);
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ASSERT(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n);
    ASSERT(b && fread(b, 1, *n, f) == *n);
    fclose(f);
    return b;
}

static void expect_map_fails(const void *data, size_t n, const char *file)
{
    vqc_tensor_map *m = NULL;
    int rc = vqc_tmap_open_memory(data, n, file, &m);
    if (rc >= 0)
        TEST_FAIL("%s truncated to %zu bytes opened", file, n);
    ASSERT(m == NULL && *vqc_error_get() && !strchr(vqc_error_get(), '\n'));
}

/* Opens the first `n` bytes of `data` from an exactly-sized copy (ASan sees any overread). */
static void expect_prefix_fails(const unsigned char *data, size_t n, const char *file)
{
    unsigned char *copy = malloc(n ? n : 1);
    memcpy(copy, data, n);
    expect_map_fails(copy, n, file);
    free(copy);
}

/* Opens the first `n` bytes (a multiple of the page size) of `path`, mapped without copying and
 * followed by an inaccessible page, so that any read past them faults. */
static void expect_guarded_prefix_fails(const char *path, size_t n, const char *file)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    ASSERT(n % page == 0);
    void *region = mmap(NULL, n + page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int fd = open(path, O_RDONLY);
    ASSERT(region != MAP_FAILED && fd >= 0);
    if (n)
        ASSERT(mmap(region, n, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0) == region);
    close(fd);
    expect_map_fails(region, n, file);
    munmap(region, n + page);
}

/* Every fixture cut at many lengths in memory (copies for short prefixes and near the end, guarded
 * mappings in between), and a few cut copies on disk. */
static void test_truncated(void)
{
    const char *dir = test_tmpdir("test-tensormap");
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    static const size_t from_end[] = {1, 2, 8, 21, 22, 23, 41, 42, 60, 61, 97, 98, 99, 200, 1000};
    for (size_t f = 0; f < NFIXTURES; f++) {
        const char *path = fixture_path(fixtures[f].file);
        size_t len;
        unsigned char *data = read_all(path, &len);
        for (size_t n = 0; n < 300; n++)
            expect_prefix_fails(data, n, fixtures[f].file);
        for (size_t k = 1; k < 60; k++)
            expect_guarded_prefix_fails(path, (len / 60 * k) / page * page, fixtures[f].file);
        for (size_t k = 0; k < sizeof from_end / sizeof *from_end; k++)
            expect_prefix_fails(data, len - from_end[k], fixtures[f].file);
        char cut[4300];
        snprintf(cut, sizeof cut, "%s/cut.bin", dir);
        for (int k = 1; k <= 3; k++) {
            write_file(cut, data, len * (size_t)k / 4);
            expect_open_error(cut, VQC_ERR_FORMAT);
        }
        free(data);
    }
}

int main(void)
{
    fixture_path("vqgan/tiny_vq.ckpt"); /* skip (77) when VQCLIP_FIXTURES is not set */
    test_listing();
    test_expected_entries();
    test_clip_dtypes();
    test_values();
    test_safetensors_fixture();
    test_bad_paths();
    test_truncated();
    printf("test-tensormap: ok\n");
    return 0;
}
