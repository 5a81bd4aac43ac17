/* Tests for safetensors writing and parsing (src/io/safetensors.c): round trips of every dtype,
 * scalars and empty tensors, metadata with characters that need escaping, the atomic write
 * (no half-written or destroyed files), and malformed headers. */
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "io/tensor_map.h"
#include "testhelp.h"
#include "util/dtype.h"
#include "util/error.h"

static char dir[4096];

static const char *path_in_dir(const char *name)
{
    static char buf[2][4400];
    static int next;
    char *p = buf[next++ % 2];
    snprintf(p, 4400, "%s/%s", dir, name);
    return p;
}

static unsigned char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ASSERT(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n ? *n : 1);
    ASSERT(b && fread(b, 1, *n, f) == *n);
    fclose(f);
    return b;
}

static void write_raw(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ASSERT(f && fwrite(data, 1, n, f) == n);
    ASSERT_EQ(fclose(f), 0);
}

/* No temporary files ("." + name + ".XXXXXX") may be left in the directory. */
static void assert_no_temp_files(void)
{
    DIR *d = opendir(dir);
    ASSERT(d);
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            TEST_FAIL("temporary file left behind: %s", e->d_name);
    closedir(d);
}

/* ---------------------------------------------------------------------------------------------
 * Round trips
 * ------------------------------------------------------------------------------------------- */

static void test_round_trip(void)
{
    static unsigned char bytes[VQC_DTYPE_COUNT][64];
    static const int64_t shapes[VQC_DTYPE_COUNT][3] = {{2, 3, 1}, {4}, {2, 2}, {3},    {1, 1, 1},
                                                       {5},       {2}, {7},    {3, 2}, {4}};
    static const int ndims[VQC_DTYPE_COUNT] = {3, 1, 2, 1, 3, 1, 1, 1, 2, 1};
    vqc_st_tensor t[VQC_DTYPE_COUNT + 2];
    char names[VQC_DTYPE_COUNT][32];
    for (int d = 0; d < VQC_DTYPE_COUNT; d++) {
        for (int i = 0; i < 64; i++)
            bytes[d][i] = (unsigned char)(d * 31 + i * 7);
        snprintf(names[d], sizeof names[d], "layer.%d.%s", d, vqc_dtype_name((vqc_dtype)d));
        t[d] = (vqc_st_tensor){names[d], (vqc_dtype)d, ndims[d], shapes[d], bytes[d]};
    }
    static const int64_t empty_shape[2] = {0, 5};
    float scalar = 3.5f;
    t[VQC_DTYPE_COUNT] = (vqc_st_tensor){"scalar \"quoted\"\\", VQC_DTYPE_F32, 0, NULL, &scalar};
    t[VQC_DTYPE_COUNT + 1] = (vqc_st_tensor){"empty", VQC_DTYPE_F16, 2, empty_shape, NULL};
    const char *meta[] = {"prompt", "a \"cat\"\n\tin C:\\path, caf\xc3\xa9 \x01", "seed", "42",
                          NULL};
    const char *path = path_in_dir("round.safetensors");
    ASSERT_OK(vqc_safetensors_write(path, t, VQC_DTYPE_COUNT + 2, meta));
    assert_no_temp_files();
    size_t len;
    unsigned char *raw = read_all(path, &len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | raw[i];
    ASSERT_EQ(hlen % 8, 0); /* padded: data starts 8-aligned */
    ASSERT_EQ(raw[8], '{');
    free(raw);
    vqc_tensor_map *m;
    ASSERT_OK(vqc_tmap_open(path, &m));
    ASSERT_STR_EQ(vqc_tmap_format(m), "safetensors");
    ASSERT_EQ(vqc_tmap_count(m), VQC_DTYPE_COUNT + 2);
    ASSERT_STR_EQ(vqc_tmap_meta(m, "prompt"), meta[1]);
    ASSERT_STR_EQ(vqc_tmap_meta(m, "seed"), "42");
    for (int d = 0; d < VQC_DTYPE_COUNT + 2; d++) {
        const vqc_tensor_info *e = vqc_tmap_at(m, (size_t)d);
        ASSERT_STR_EQ(e->name, t[d].name); /* file order is write order */
        ASSERT(e->dtype == t[d].dtype && e->ndim == t[d].ndim);
        int64_t numel = 1, stride = 1;
        for (int k = t[d].ndim - 1; k >= 0; k--) {
            ASSERT(e->shape[k] == t[d].shape[k] && e->strides[k] == stride);
            stride *= t[d].shape[k];
            numel *= t[d].shape[k];
        }
        ASSERT_EQ(e->numel, numel);
        if (numel)
            ASSERT(memcmp(e->data, t[d].data, (size_t)numel * vqc_dtype_size(e->dtype)) == 0);
    }
    vqc_tmap_free(m);
}

static void test_overwrite_and_no_meta(void)
{
    const char *path = path_in_dir("over.safetensors");
    write_raw(path, "old contents", 12);
    int64_t shape[1] = {2};
    int32_t v[2] = {-1, 7};
    vqc_st_tensor t = {"v", VQC_DTYPE_I32, 1, shape, v};
    ASSERT_OK(vqc_safetensors_write(path, &t, 1, NULL));
    vqc_tensor_map *m;
    ASSERT_OK(vqc_tmap_open(path, &m));
    ASSERT(vqc_tmap_meta(m, "seed") == NULL && vqc_tmap_count(m) == 1);
    vqc_tmap_free(m);
    ASSERT_OK(vqc_safetensors_write(path_in_dir("none.safetensors"), NULL, 0, NULL));
    ASSERT_OK(vqc_tmap_open(path_in_dir("none.safetensors"), &m));
    ASSERT_EQ(vqc_tmap_count(m), 0);
    vqc_tmap_free(m);
    assert_no_temp_files();
}

/* A failing write reports the error and leaves an existing file untouched. */
static void expect_write_error(const vqc_st_tensor *t, size_t n, const char *const *meta, int code,
                               const char *what)
{
    const char *path = path_in_dir("keep.safetensors");
    write_raw(path, "precious", 8);
    int rc = vqc_safetensors_write(path, t, n, meta);
    if (rc != code)
        TEST_FAIL("%s: expected %d, got %d (%s)", what, code, rc, vqc_error_get());
    ASSERT(*vqc_error_get() && !strchr(vqc_error_get(), '\n'));
    size_t len;
    unsigned char *b = read_all(path, &len);
    ASSERT(len == 8 && memcmp(b, "precious", 8) == 0);
    free(b);
    assert_no_temp_files();
}

static void test_write_errors(void)
{
    int64_t shape[2] = {2, 2}, neg[1] = {-1};
    float v[4] = {0};
    vqc_st_tensor ok = {"a", VQC_DTYPE_F32, 2, shape, v};
    vqc_st_tensor dup[2] = {ok, ok};
    expect_write_error(dup, 2, NULL, VQC_ERR_USAGE, "duplicate names");
    vqc_st_tensor bad = ok;
    bad.dtype = VQC_DTYPE_COUNT;
    expect_write_error(&bad, 1, NULL, VQC_ERR_USAGE, "invalid dtype");
    bad = ok, bad.ndim = 9;
    expect_write_error(&bad, 1, NULL, VQC_ERR_USAGE, "nine dims");
    bad = ok, bad.shape = neg, bad.ndim = 1;
    expect_write_error(&bad, 1, NULL, VQC_ERR_USAGE, "negative dim");
    bad = ok, bad.name = "__metadata__";
    expect_write_error(&bad, 1, NULL, VQC_ERR_USAGE, "reserved name");
    bad = ok, bad.data = NULL;
    expect_write_error(&bad, 1, NULL, VQC_ERR_USAGE, "no data");
    const char *odd[] = {"key", NULL};
    expect_write_error(&ok, 1, odd, VQC_ERR_USAGE, "metadata key without value");
    char path[4500];
    snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", dir);
    ASSERT_EQ(vqc_safetensors_write(path, &ok, 1, NULL), VQC_ERR_IO);
    ASSERT(strstr(vqc_error_get(), path));
    if (geteuid() != 0) { /* a read-only directory (root ignores permissions) */
        char ro[4200];
        snprintf(ro, sizeof ro, "%.4000s/ro", dir);
        mkdir(ro, 0755);
        chmod(ro, 0555);
        snprintf(path, sizeof path, "%s/x.safetensors", ro);
        ASSERT_EQ(vqc_safetensors_write(path, &ok, 1, NULL), VQC_ERR_IO);
        chmod(ro, 0755);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Malformed files
 * ------------------------------------------------------------------------------------------- */

/* Writes header `json` (+ `data_len` zero bytes) and expects vqc_tmap_open to fail with `code`. */
static void expect_parse_error(const char *json, size_t data_len, int code, const char *what)
{
    size_t hl = strlen(json), n = 8 + hl + data_len;
    unsigned char *b = calloc(1, n);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, json, hl);
    vqc_tensor_map *m = NULL;
    int rc = vqc_tmap_open_memory(b, n, "bad.safetensors", &m);
    if (rc != code)
        TEST_FAIL("%s: expected %d, got %d (%s)", what, code, rc, vqc_error_get());
    if (rc == 0)
        vqc_tmap_free(m);
    else
        ASSERT(m == NULL && strstr(vqc_error_get(), "bad.safetensors") &&
               !strchr(vqc_error_get(), '\n'));
    free(b);
}

static void test_parse_errors(void)
{
    int F = VQC_ERR_FORMAT;
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0,
                       "valid");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 7, F,
                       "data short");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8, F,
                       "size mismatch");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, F,
                       "reversed");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, F,
                       "negative dim");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, F,
                       "fraction");
    expect_parse_error("{\"a\":{\"dtype\":\"C64\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, F,
                       "unknown dtype");
    expect_parse_error(
        "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, F,
        "nine dims");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                       "\"data_offsets\":[0,8]}}",
                       8, F, "numel overflow");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[0,9007199254740992,9007199254740992],"
                       "\"data_offsets\":[0,0]}}",
                       8, F, "stride overflow");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1e300,1e300]}}",
                       8, F, "huge offset");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, F, "no offsets");
    expect_parse_error("{\"a\":[1,2]}", 8, F, "entry not an object");
    expect_parse_error("{\"__metadata__\":[1]}", 0, F, "metadata not an object");
    expect_parse_error("{\"a\":{\"dtype\":\"F32\"", 8, F, "unterminated JSON");
    expect_parse_error("{}", 0, 0, "empty object");
    expect_parse_error("{\"a\nb\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 8, F,
                       "raw newline in a name");
    unsigned char hdr[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, '{', '}'};
    vqc_tensor_map *m = NULL;
    ASSERT_EQ(vqc_tmap_open_memory(hdr, sizeof hdr, "huge.safetensors", &m), F);
    ASSERT(strstr(vqc_error_get(), "truncated"));
}

/* Every prefix of a valid file fails cleanly. */
static void test_truncation(void)
{
    size_t len;
    unsigned char *b = read_all(path_in_dir("round.safetensors"), &len);
    for (size_t n = 0; n < len; n++) {
        unsigned char *copy = malloc(n ? n : 1);
        memcpy(copy, b, n);
        vqc_tensor_map *m = NULL;
        ASSERT(vqc_tmap_open_memory(copy, n, "cut.safetensors", &m) < 0 && *vqc_error_get());
        free(copy);
    }
    free(b);
}

int main(void)
{
    char cmd[8300];
    snprintf(dir, sizeof dir, "%s", test_tmpdir("test-safetensors"));
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    ASSERT(system(cmd) == 0);
    test_round_trip();
    test_overwrite_and_no_meta();
    test_write_errors();
    test_parse_errors();
    test_truncation();
    printf("test-safetensors: ok\n");
    return 0;
}
