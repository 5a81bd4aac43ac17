/* vqc_model_describe: a VQGAN or CLIP file's architecture, read from the weight names and
 * shapes without loading anything onto a device. */
#include <stdio.h>
#include <string.h>

#include "io/tensor_map.h"
#include "models/clip.h"
#include "models/vqgan.h"
#include "models/vqgan_arch.h"
#include "util/error.h"

_Static_assert(VQC_VQGAN_MAX_LEVELS <= sizeof((vqc_model_desc *)0)->ch_mult / sizeof(int),
               "vqc_model_desc holds every VQGAN level");

static void from_vqgan(const vqc_vqgan_info *in, vqc_model_desc *d)
{
    d->gumbel = in->kind == VQC_VQGAN_GUMBEL;
    d->from_transformer = in->from_transformer;
    d->ch = in->ch;
    d->num_levels = in->num_levels;
    d->num_res_blocks = in->num_res_blocks;
    for (int i = 0; i < in->num_levels; i++) {
        d->ch_mult[i] = in->ch_mult[i];
        d->enc_attn[i] = in->enc_attn[i];
        d->dec_attn[i] = in->dec_attn[i];
    }
    d->in_channels = in->in_channels;
    d->out_ch = in->out_ch;
    d->z_channels = in->z_channels;
    d->embed_dim = in->embed_dim;
    d->n_embed = in->n_embed;
    d->downsample = in->downsample;
    d->n_params = (long long)in->n_params;
}

static void from_clip(const vqc_clip_info *in, vqc_model_desc *d)
{
    d->vit = in->is_vit != 0;
    d->clip_embed_dim = in->embed_dim;
    d->image_resolution = in->image_resolution;
    d->vision_width = in->vision_width;
    d->vision_layers = in->vision_layers;
    memcpy(d->vision_rn_layers, in->vision_rn_layers, sizeof d->vision_rn_layers);
    d->vision_patch_size = in->vision_patch_size;
    d->vision_heads = in->vision_heads;
    d->context_length = in->context_length;
    d->vocab_size = in->vocab_size;
    d->transformer_width = in->transformer_width;
    d->transformer_heads = in->transformer_heads;
    d->transformer_layers = in->transformer_layers;
    d->n_params = (long long)in->n_params;
}

/* The architecture of the opened file; an error names the file. */
static int inspect(const vqc_tensor_map *map, vqc_model_kind kind, const char *config,
                   vqc_model_desc *d)
{
    int rc;
    if (kind == VQC_MODEL_VQGAN) {
        vqc_vqgan_info info;
        rc = vqc_vqgan_inspect(map, &info);
        if (!rc && config)
            rc = vqc_vqgan_arch_check_yaml(&info, config);
        if (!rc)
            from_vqgan(&info, d);
    } else {
        vqc_clip_info info;
        rc = vqc_clip_inspect(map, &info);
        if (!rc)
            from_clip(&info, d);
    }
    return rc ? vqc_error_wrap(rc, "%s", d->path) : 0;
}

int vqc_model_describe(vqc_model_kind kind, const char *name, const char *config,
                       vqc_model_desc *out)
{
    if (!out || !name || (kind != VQC_MODEL_VQGAN && kind != VQC_MODEL_CLIP))
        return vqc_error_set(VQC_ERR_USAGE, "vqc_model_describe: a VQGAN or CLIP name is needed");
    memset(out, 0, sizeof *out);
    out->kind = kind;
    vqc_tensor_map *map = NULL;
    int rc = vqc_model_find(kind, name, out->path, sizeof out->path);
    rc = rc ? rc : vqc_tmap_open(out->path, &map);
    if (!rc) {
        snprintf(out->format, sizeof out->format, "%s", vqc_tmap_format(map));
        out->file_bytes = (long long)vqc_tmap_file_size(map);
        rc = inspect(map, kind, config, out);
    }
    vqc_tmap_free(map);
    if (rc) {
        memset(out, 0, sizeof *out);
        out->kind = kind;
    }
    return rc;
}
