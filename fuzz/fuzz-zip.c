/* libFuzzer target: the zip reader (vqc_zip_open, vqc_zip_read) on arbitrary bytes. Every
 * entry that opens is looked up by name and read; stored entries must lie inside the input. */
#include "fuzzhelp.h"
#include "io/zipread.h"

#define MAX_READ_ENTRIES 64
#define MAX_READ_SIZE (4u << 20) /* skip bigger (declared) entries: inflating is bounded anyway */

/* Reads entry i and touches its first and last byte. */
static void read_entry(vqc_zip *z, size_t i, const uint8_t *data, size_t size)
{
    const void *p = NULL;
    uint64_t n = 0;
    int rc = (i % 2) ? vqc_zip_read(z, i, &p, &n) : vqc_zip_read_verified(z, i, &p, &n);
    fuzz_check_error(rc, data, size);
    if (rc || n == 0)
        return;
    FUZZ_CHECK(p != NULL);
    volatile unsigned char a = ((const unsigned char *)p)[0], b = ((const unsigned char *)p)[n - 1];
    (void)a, (void)b;
    const uint8_t *q = p;
    if (q >= data && q < data + size) /* a stored entry: a view into the input */
        FUZZ_CHECK(n <= (uint64_t)(data + size - q));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vqc_zip *z = NULL;
    int rc = vqc_zip_open(data, size, "fuzz.zip", &z);
    fuzz_check_error(rc, data, size);
    if (rc)
        return 0;
    size_t n = vqc_zip_count(z);
    for (size_t i = 0; i < n; i++) {
        const char *name = vqc_zip_name(z, i);
        FUZZ_CHECK(name != NULL);
        long found = vqc_zip_find(z, name);
        FUZZ_CHECK(found >= 0 && (size_t)found <= i);
        FUZZ_CHECK(strcmp(vqc_zip_name(z, (size_t)found), name) == 0);
        if (i < MAX_READ_ENTRIES && vqc_zip_size(z, i) <= MAX_READ_SIZE)
            read_entry(z, i, data, size);
    }
    FUZZ_CHECK(vqc_zip_name(z, n) == NULL);
    const void *p;
    uint64_t len;
    FUZZ_CHECK(vqc_zip_read(z, n, &p, &len) != 0);
    vqc_zip_free(z);
    return 0;
}
