/* vqclip info: describe a VQGAN or CLIP model file (architecture inferred from the weights). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cmd_clip.h"
#include "cli/commands.h"
#include "io/tensor_map.h"
#include "models/vqgan.h"
#include "models/vqgan_arch.h"
#include "util/error.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: vqclip info (--vqgan CKPT [--vqgan-config YAML] | --clip MODEL) [--json]\n\n"
               "Prints the architecture vqclip infers from the weights, the parameter count and\n"
               "the container format, without loading the model onto a device.\n");
}

static int vqgan_info(const char *path, const char *yaml, int json)
{
    vqc_tensor_map *map;
    int rc = vqc_tmap_open(path, &map);
    if (rc)
        return rc;
    vqc_vqgan_info info;
    rc = vqc_vqgan_inspect(map, &info);
    if (!rc && yaml)
        rc = vqc_vqgan_arch_check_yaml(&info, yaml);
    if (rc) {
        vqc_tmap_free(map);
        return vqc_error_wrap(rc, "%s", path);
    }
    if (!json)
        printf("file:             %s (%s, %.1f MB)\n", path, vqc_tmap_format(map),
               vqc_tmap_file_size(map) / 1e6);
    vqc_vqgan_info_print(&info, stdout, json);
    vqc_tmap_free(map);
    return 0;
}

int cmd_info(int argc, char **argv)
{
    enum { O_VQGAN = 256, O_YAML, O_CLIP, O_JSON, O_HELP };
    static const struct option lo[] = {
        {"vqgan", required_argument, 0, O_VQGAN}, {"vqgan-config", required_argument, 0, O_YAML},
        {"clip", required_argument, 0, O_CLIP},   {"json", no_argument, 0, O_JSON},
        {"help", no_argument, 0, O_HELP},         {0, 0, 0, 0}};
    const char *vqgan = NULL, *yaml = NULL, *clip = NULL;
    int json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (c) {
        case O_VQGAN: vqgan = optarg; break;
        case O_YAML: yaml = optarg; break;
        case O_CLIP: clip = optarg; break;
        case O_JSON: json = 1; break;
        case 'h':
        case O_HELP: usage(stdout); return 0;
        default:
            cli_option_error("info", c, argv);
            cli_print_error(NULL);
            return 1;
        }
    }
    if (optind < argc || (!vqgan == !clip)) {
        fprintf(stderr, "vqclip: error: info needs exactly one of --vqgan or --clip\n");
        return 1;
    }
    vqt_init(0);
    int rc = vqgan ? vqgan_info(vqgan, yaml, json) : clip_info_cmd(clip, json);
    if (rc) {
        cli_print_error(NULL);
        return cli_exit_status(rc);
    }
    return 0;
}
