#include "models/vqgan_arch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/weights.h"
#include "util/error.h"

/* ---- inference from the weights -------------------------------------------------------- */

static const char *find_prefix(const vqc_tensor_map *map)
{
    static const char *const prefixes[] = {
        "state_dict.",      "state_dict.first_stage_model.", "first_stage_model.", "", "model.",
        "state_dict.model."};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        if (vqc_weight_has(map, prefixes[i], "encoder.conv_in.weight"))
            return prefixes[i];
    return NULL;
}

static int not_vqgan(const vqc_tensor_map *map)
{
    if (vqc_tmap_get(map, "visual.conv1.weight") || vqc_tmap_get(map, "token_embedding.weight") ||
        vqc_tmap_get(map, "text_model.embeddings.token_embedding.weight"))
        return vqc_error_set(VQC_ERR_MODEL, "this is a CLIP model, not a VQGAN checkpoint");
    return vqc_error_set(VQC_ERR_MODEL,
                         "no VQGAN weights found (expected encoder.conv_in.weight, as in "
                         "taming-transformers checkpoints)");
}

static int count_indexed(const vqc_tensor_map *map, const char *prefix, const char *fmt_a,
                         const char *suffix)
{
    int n = 0;
    char name[256];
    for (;;) {
        snprintf(name, sizeof name, fmt_a, n);
        size_t len = strlen(name);
        snprintf(name + len, sizeof name - len, "%s", suffix);
        if (!vqc_weight_has(map, prefix, name) || n >= 64)
            return n;
        n++;
    }
}

static int64_t count_params(const vqc_tensor_map *map, const char *prefix)
{
    size_t plen = strlen(prefix);
    static const char *const parts[] = {"encoder.", "decoder.", "quantize.", "quant_conv.",
                                        "post_quant_conv."};
    int64_t n = 0;
    for (size_t i = 0; i < vqc_tmap_count(map); i++) {
        const vqc_tensor_info *t = vqc_tmap_at(map, i);
        if (strncmp(t->name, prefix, plen) != 0)
            continue;
        for (size_t p = 0; p < sizeof parts / sizeof *parts; p++)
            if (strncmp(t->name + plen, parts[p], strlen(parts[p])) == 0)
                n += t->numel;
    }
    return n;
}

static int infer_levels(const vqc_tensor_map *map, const char *pf, vqc_vqgan_info *in)
{
    in->num_levels = count_indexed(map, pf, "encoder.down.%d", ".block.0.conv1.weight");
    int dec_levels = count_indexed(map, pf, "decoder.up.%d", ".block.0.conv1.weight");
    if (in->num_levels < 1 || in->num_levels > VQC_VQGAN_MAX_LEVELS || dec_levels != in->num_levels)
        return vqc_error_set(VQC_ERR_MODEL, "VQGAN has %d encoder and %d decoder levels",
                             in->num_levels, dec_levels);
    in->num_res_blocks = count_indexed(map, pf, "encoder.down.0.block.%d", ".conv1.weight");
    for (int i = 0; i < in->num_levels; i++) {
        const vqc_tensor_info *c =
            vqc_weight_infof(map, pf, "encoder.down.%d.block.0.conv2.weight", i);
        if (!c || c->ndim != 4 || c->shape[0] % in->ch)
            return vqc_error_set(VQC_ERR_MODEL, "VQGAN encoder level %d is malformed", i);
        in->ch_mult[i] = (int)(c->shape[0] / in->ch);
        in->enc_attn[i] = vqc_weight_infof(map, pf, "encoder.down.%d.attn.0.q.weight", i) != NULL;
        in->dec_attn[i] = vqc_weight_infof(map, pf, "decoder.up.%d.attn.0.q.weight", i) != NULL;
        if (count_indexed(map, pf, "encoder.down.%d", "") < 0 ||
            !vqc_weight_infof(map, pf, "encoder.down.%d.block.%d.conv1.weight", i,
                              in->num_res_blocks - 1) ||
            !vqc_weight_infof(map, pf, "decoder.up.%d.block.%d.conv1.weight", i,
                              in->num_res_blocks))
            return vqc_error_set(VQC_ERR_MODEL, "VQGAN level %d has a different block count", i);
    }
    in->downsample = 1 << (in->num_levels - 1);
    return 0;
}

static int dim_of(const vqc_tensor_info *t, int d)
{
    return t && t->ndim > d ? (int)t->shape[d] : -1;
}

int vqc_vqgan_arch_infer(const vqc_tensor_map *map, vqc_vqgan_info *in, const char **prefix)
{
    memset(in, 0, sizeof *in);
    const char *pf = find_prefix(map);
    if (!pf)
        return not_vqgan(map);
    *prefix = pf;
    in->from_transformer = strstr(pf, "first_stage_model") != NULL;
    const vqc_tensor_info *conv_in = vqc_weight_infof(map, pf, "encoder.conv_in.weight");
    in->ch = dim_of(conv_in, 0);
    in->in_channels = dim_of(conv_in, 1);
    if (in->ch <= 0 || conv_in->ndim != 4)
        return vqc_error_set(VQC_ERR_MODEL, "encoder.conv_in.weight is not a conv weight");
    int rc = infer_levels(map, pf, in);
    if (rc)
        return rc;
    in->z_channels = dim_of(vqc_weight_infof(map, pf, "decoder.conv_in.weight"), 1);
    in->out_ch = dim_of(vqc_weight_infof(map, pf, "decoder.conv_out.weight"), 0);
    in->embed_dim = dim_of(vqc_weight_infof(map, pf, "quant_conv.weight"), 0);
    const vqc_tensor_info *cb = vqc_weight_infof(map, pf, "quantize.embedding.weight");
    if (!cb && (cb = vqc_weight_infof(map, pf, "quantize.embed.weight")))
        in->kind = VQC_VQGAN_GUMBEL;
    in->n_embed = dim_of(cb, 0);
    if (in->z_channels <= 0 || in->out_ch <= 0 || in->embed_dim <= 0 || in->n_embed <= 0 ||
        dim_of(cb, 1) != in->embed_dim)
        return vqc_error_set(VQC_ERR_MODEL, "VQGAN quantizer weights are missing or malformed");
    in->n_params = count_params(map, pf);
    return 0;
}

/* ---- YAML cross-check ------------------------------------------------------------------ */
/* taming's configs are simple block YAML; we read "key: value" lines and flow lists "[a, b]". */

typedef struct {
    char *text;
    const char *section; /* where the first-stage parameters start */
} yaml_doc;

/* Finds "key:" as a whole key at the start of a line (after indentation) at or after `from`;
 * returns a pointer to the value text or NULL. */
static const char *yaml_find(const char *from, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = from; p && *p;) {
        const char *s = p;
        while (*s == ' ' || *s == '\t')
            s++;
        if (strncmp(s, key, kl) == 0 && s[kl] == ':')
            return s + kl + 1;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return NULL;
}

/* Parses an int or a flow list of ints into v (up to max); returns the count, -1 if absent. */
static int yaml_ints(const yaml_doc *d, const char *key, int *v, int max)
{
    const char *p = yaml_find(d->section, key);
    if (!p)
        return -1;
    while (*p == ' ')
        p++;
    int n = 0;
    bool list = *p == '[';
    if (list)
        p++;
    while (n < max) {
        char *end;
        long x = strtol(p, &end, 10);
        if (end == p)
            break;
        v[n++] = (int)x;
        p = end;
        while (*p == ' ' || *p == ',')
            p++;
        if (!list)
            break;
    }
    return n;
}

static int check_int(const yaml_doc *d, const char *key, int have)
{
    int v;
    if (yaml_ints(d, key, &v, 1) == 1 && v != have)
        return vqc_error_set(VQC_ERR_MODEL, "config says %s: %d but the weights have %d", key, v,
                             have);
    return 0;
}

static int check_lists(const yaml_doc *d, const vqc_vqgan_info *in)
{
    int v[VQC_VQGAN_MAX_LEVELS + 1];
    int n = yaml_ints(d, "ch_mult", v, VQC_VQGAN_MAX_LEVELS + 1);
    bool same = n < 0 || n == in->num_levels;
    for (int i = 0; same && i < n; i++)
        same = v[i] == in->ch_mult[i];
    if (!same)
        return vqc_error_set(VQC_ERR_MODEL, "config ch_mult disagrees with the weights");
    int res;
    n = yaml_ints(d, "attn_resolutions", v, VQC_VQGAN_MAX_LEVELS);
    if (n < 0 || yaml_ints(d, "resolution", &res, 1) != 1)
        return 0;
    for (int i = 0; i < in->num_levels; i++) {
        bool want = false;
        for (int j = 0; j < n; j++)
            want |= v[j] == (res >> i);
        if (want != in->enc_attn[i])
            return vqc_error_set(
                VQC_ERR_MODEL, "config attn_resolutions disagrees with the weights at level %d", i);
    }
    return 0;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        vqc_error_set(VQC_ERR_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!buf) {
        vqc_error_set(VQC_ERR_NOMEM, "out of memory");
        return NULL;
    }
    buf[n] = 0;
    return buf;
}

int vqc_vqgan_arch_check_yaml(const vqc_vqgan_info *in, const char *path)
{
    yaml_doc d = {read_text(path), NULL};
    if (!d.text)
        return VQC_ERR_IO;
    const char *fs = yaml_find(d.text, "first_stage_config");
    d.section = fs ? fs : d.text;
    int rc = 0;
    if (!yaml_find(d.section, "ddconfig"))
        rc = vqc_error_set(VQC_ERR_MODEL, "%s: not a taming VQGAN config (no ddconfig)", path);
    rc = rc ? rc : check_int(&d, "embed_dim", in->embed_dim);
    rc = rc ? rc : check_int(&d, "n_embed", in->n_embed);
    rc = rc ? rc : check_int(&d, "z_channels", in->z_channels);
    rc = rc ? rc : check_int(&d, "ch", in->ch);
    rc = rc ? rc : check_int(&d, "num_res_blocks", in->num_res_blocks);
    rc = rc ? rc : check_int(&d, "in_channels", in->in_channels);
    rc = rc ? rc : check_int(&d, "out_ch", in->out_ch);
    rc = rc ? rc : check_lists(&d, in);
    if (!rc && (strstr(d.section, "GumbelVQ") != NULL) != (in->kind == VQC_VQGAN_GUMBEL) &&
        strstr(d.section, "target:"))
        rc = vqc_error_set(VQC_ERR_MODEL, "config and weights disagree on Gumbel quantisation");
    free(d.text);
    return rc ? vqc_error_wrap(rc, "%s", path) : 0;
}
