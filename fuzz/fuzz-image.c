/* libFuzzer target: decoding input images (vqc_image_load: PNG, JPEG, BMP, GIF, ...) from
 * arbitrary bytes written to a scratch file.
 *
 * vqclip links Debian's prebuilt stb_image, which carries no coverage instrumentation; this
 * target compiles the same stb_image.h (from libstb-dev) into itself, and its definitions take
 * precedence over the shared library's, so the fuzzer sees into the decoders. (stb 2.27's
 * faults on malformed files, vqc_image_unsafe, are caught by vqc_image_load's own check before
 * stb runs; the size pre-check below calls stb directly, so such inputs go only through
 * vqc_image_load.) */
/* stb 2.27 shifts its JPEG bit buffer by more than 31 when a corrupt bitstream drives its bit
 * count negative (stbi__grow_buffer_unsafe; upstream nothings/stb#1293, fixed in 2.28). Only
 * that buffer's bits change, which a corrupt file makes garbage anyway, and no pre-check can see
 * it without decoding the entropy-coded data, so the fuzzer leaves stb's shift amounts
 * unchecked (docs/fuzzing.md); every other sanitizer check still applies to stb. */
#pragma clang attribute push(__attribute__((no_sanitize("shift-exponent"))), apply_to = function)
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
#pragma clang attribute pop

#include "fuzzhelp.h"
#include "io/image.h"

/* Inputs that claim more than this many pixels are skipped: decoding a legitimate 16384^2 image
 * needs gigabytes, which libFuzzer would report as an out-of-memory finding. */
#define MAX_PIXELS (1 << 22)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_silence();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int w, h, c;
    if (size > (size_t)INT32_MAX)
        return 0;
    if (vqc_image_unsafe(data, size)) { /* refused before stb sees it (stb 2.27's faults) */
        vqc_image img;
        const char *path = fuzz_write_file("image", data, size);
        FUZZ_CHECK(vqc_image_load(path, &img) == VQC_ERR_FORMAT);
        return 0;
    }
    if (stbi_info_from_memory(data, (int)size, &w, &h, &c) && (int64_t)w * h > MAX_PIXELS)
        return 0;
    const char *path = fuzz_write_file("image", data, size);
    vqc_image img;
    int rc = vqc_image_load(path, &img);
    fuzz_check_error(rc, data, size);
    if (rc == 0) {
        FUZZ_CHECK(img.w > 0 && img.h > 0 && img.w <= VQC_IMAGE_MAX_SIDE &&
                   img.h <= VQC_IMAGE_MAX_SIDE);
        float sum = 0;
        for (size_t i = 0; i < (size_t)img.w * img.h * 3; i++) {
            FUZZ_CHECK(img.rgb[i] >= 0 && img.rgb[i] <= 1);
            sum += img.rgb[i];
        }
        (void)sum;
        vqc_image_free(&img);
    }
    /* the same bytes as stored samples (the upscaler's reader) */
    vqc_raw_image raw;
    int rrc = vqc_raw_image_load(path, &raw);
    FUZZ_CHECK((rrc == 0) == (rc == 0));
    if (rrc == 0) {
        FUZZ_CHECK(raw.channels >= 1 && raw.channels <= 4 && (raw.depth == 8 || raw.depth == 16));
        for (size_t i = 0; i < (size_t)raw.w * raw.h * raw.channels; i++)
            FUZZ_CHECK(raw.px[i] < (1u << raw.depth));
        vqc_raw_image_free(&raw);
    }
    return 0;
}
