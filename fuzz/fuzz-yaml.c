/* libFuzzer target: the VQGAN config cross-check (vqc_vqgan_arch_check_yaml) on arbitrary bytes,
 * written to a scratch file (the function takes a path). The architecture it is compared with is
 * the tiny_vq fixture's, so that valid-looking configs get past the first checks. */
#include "fuzzhelp.h"
#include "models/vqgan_arch.h"

static vqc_vqgan_info tiny_vq(int gumbel)
{
    vqc_vqgan_info in;
    memset(&in, 0, sizeof in);
    in.kind = gumbel ? VQC_VQGAN_GUMBEL : VQC_VQGAN_VQ;
    in.ch = 32;
    in.num_levels = 3;
    in.ch_mult[0] = 1, in.ch_mult[1] = 2, in.ch_mult[2] = 2;
    in.num_res_blocks = 1;
    in.enc_attn[2] = in.dec_attn[2] = true; /* attn_resolutions [8] at resolution 32 */
    in.in_channels = in.out_ch = 3;
    in.z_channels = in.embed_dim = 16;
    in.n_embed = 64;
    in.downsample = 4;
    return in;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    fuzz_silence();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write_file("model.yaml", data, size);
    vqc_vqgan_info in = tiny_vq((int)(size % 2));
    int rc = vqc_vqgan_arch_check_yaml(&in, path);
    fuzz_check_error(rc, data, size);
    return 0;
}
