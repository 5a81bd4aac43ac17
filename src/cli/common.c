/* What the vqclip commands share (see common.h). */
#include "cli/common.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int cli_exit_status(int err)
{
    switch (err) {
    case 0: return 0;
    case VQC_ERR_USAGE: return 1;
    case VQC_ERR_IO:
    case VQC_ERR_FORMAT:
    case VQC_ERR_MODEL: return 2;
    case VQC_ERR_INTERRUPTED: return 130;
    default: return 3;
    }
}

void cli_print_error(const char *fallback)
{
    const char *msg = vqc_last_error();
    fprintf(stderr, "vqclip: error: %s\n", msg && *msg ? msg : fallback ? fallback : "failed");
}

int cli_option_error(const char *cmd, int c, char **argv)
{
    char letter[3] = {'-', (char)optopt, '\0'};
    const char *opt = optopt > 0 && optopt < 128 ? letter : argv[optind - 1];
    const char *sp = *cmd ? " " : "";
    if (c == ':')
        return vqc_set_error(VQC_ERR_USAGE, "%s%soption '%s' needs a value", cmd, *cmd ? ": " : "",
                             opt);
    return vqc_set_error(VQC_ERR_USAGE, "%s%sunknown option '%s' (see vqclip %s%s--help)", cmd,
                         *cmd ? ": " : "", opt, cmd, sp);
}

void cli_log(vqc_log_level level, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    const char *tag = level == VQC_LOG_WARN ? "warning: " : level == VQC_LOG_ERROR ? "error: " : "";
    fprintf(stderr, "vqclip: %s%s\n", tag, text);
}

char *cli_json_string(const char *s)
{
    cJSON *str = cJSON_CreateString(s ? s : "");
    char *out = str ? cJSON_PrintUnformatted(str) : NULL;
    cJSON_Delete(str);
    return out;
}

uint64_t cli_random_seed(void)
{
    uint64_t s = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, &s, sizeof s) != (ssize_t)sizeof s)
        s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (fd >= 0)
        close(fd);
    return s % 4294967296ULL; /* a seed people can type */
}
