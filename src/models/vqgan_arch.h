/* VQGAN architecture inference from weight names and shapes, and the YAML cross-check. */
#ifndef VQC_MODELS_VQGAN_ARCH_H
#define VQC_MODELS_VQGAN_ARCH_H

#include "models/vqgan.h"

/* Finds the VQGAN inside `map` (prefixes "state_dict.", "state_dict.first_stage_model.",
 * "first_stage_model.", or none) and infers its hyper-parameters. Sets *prefix to a static
 * string naming where the weights are. Returns 0, or VQC_ERR_MODEL with a message saying what
 * the file looks like instead ("a CLIP model", "no VQGAN weights"). */
int vqc_vqgan_arch_infer(const vqc_tensor_map *map, vqc_vqgan_info *info, const char **prefix);

/* Compares the inferred architecture with a taming config file (`.yaml`): embed_dim, n_embed,
 * ch, ch_mult, num_res_blocks, z_channels, in_channels, out_ch and attn_resolutions, read from
 * the first-stage section of a Net2NetTransformer config or from model.params. Returns 0, or
 * VQC_ERR_IO (unreadable) / VQC_ERR_MODEL naming the first field that disagrees. */
int vqc_vqgan_arch_check_yaml(const vqc_vqgan_info *info, const char *yaml_path);

#endif
