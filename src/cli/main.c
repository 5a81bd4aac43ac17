/* vqclip: the command-line entry point. It only dispatches: to a subcommand by name, else to the
 * generator (`vqclip -p PROMPT -o OUT.png`). */
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd_doctor.h"
#include "cli/commands.h"
#include "cli/options.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"reconstruct", cmd_reconstruct, "encode, quantise and decode an image with a VQGAN"},
    {"info", cmd_info, "describe a VQGAN or CLIP model file"},
    {"tokenize", cmd_tokenize, "CLIP token ids of texts"},
    {"score", cmd_score, "CLIP similarity of images and texts"},
    {"upscale", cmd_upscale, "upscale a picture with a Real-ESRGAN network"},
    {"doctor", cmd_doctor, "check libtorch, BLAS, threads, GPUs and models"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: vqclip -p PROMPT [-o OUT.png] [options]   (see vqclip --help)\n"
               "       vqclip COMMAND [options]\n\ncommands:\n");
    for (int i = 0; commands[i].name; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nRun 'vqclip COMMAND --help' for the options of a command.\n");
}

/* The weights are read straight from the mapped model files: a file truncated while in use
 * makes the next read of a page past its new end raise SIGBUS. Say so in one line and exit as
 * for an unreadable input, instead of dying with a core dump. */
static void on_sigbus(int sig)
{
    static const char msg[] = "vqclip: error: a model file shrank or was rewritten while vqclip "
                              "was reading it (SIGBUS); run again once it is complete\n";
    /* libtorch's threads read the weights together and can fault at once: one says it, the
     * others wait for its _exit */
    static atomic_flag said = ATOMIC_FLAG_INIT;
    (void)sig;
    if (atomic_flag_test_and_set(&said))
        for (;;)
            pause();
    if (write(2, msg, sizeof msg - 1) < 0) {
        /* nothing more can be done in a signal handler */
    }
    _exit(2);
}

/* Commands that compute little (or only report) start without the contention check. */
static bool light_command(const char *arg)
{
    static const char *const light[] = {"--help",   "-h",     "--version",      "info",
                                        "tokenize", "doctor", "--list-options", NULL};
    for (int i = 0; light[i]; i++)
        if (strcmp(arg, light[i]) == 0)
            return true;
    return false;
}

/* Whether the environment `envp` sets `name` ("NAME="). */
static bool env_has(char **envp, const char *name)
{
    size_t n = strlen(name);
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return true;
    return false;
}

/* On a machine that other work keeps busy, libtorch's OpenMP workers must sleep while they
 * wait, not spin on a core another thread needs (docs/benchmarks.md, contention). libgomp reads
 * OMP_WAIT_POLICY in its own initialiser, before main, so the process starts again with it
 * set. It does so from the executable's .preinit_array, which runs before any shared library's
 * initialiser: the restart then skips libtorch's (its operator registry), about half of what a
 * restart from main costs. The C library's environment is not set up yet at that point, so the
 * environment is read from envp and handed to execve. A policy the user set (OMP_WAIT_POLICY or
 * GOMP_SPINCOUNT) is kept. The thread count stays: the picture depends on it. */
static void choose_wait_policy(int argc, char **argv, char **envp)
{
    if (argc < 2 || light_command(argv[1]) || env_has(envp, "OMP_WAIT_POLICY") ||
        env_has(envp, "GOMP_SPINCOUNT"))
        return;
    vqc_cpu_info ci;
    vqc_cpu_info_read(&ci);
    if (!ci.contended)
        return;
    size_t n = 0;
    while (envp && envp[n])
        n++;
    char **env = malloc((n + 2) * sizeof *env);
    if (!env)
        return;
    for (size_t i = 0; i < n; i++)
        env[i] = envp[i];
    env[n] = "OMP_WAIT_POLICY=PASSIVE";
    env[n + 1] = NULL;
    /* By the executable's own path, not /proc/self/exe: the kernel names the process after the
     * file it runs, and another run starting beside this one counts it as a neighbour by that
     * name (vqc_cpu_info_read); restarted as "exe" it was missed one time in five. */
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self[len] = 0;
        execve(self, argv, env);
    }
    execve("/proc/self/exe", argv, env);
    free(env); /* no restart: go on as is */
}
__attribute__((section(".preinit_array"),
               used)) static void (*const preinit_wait_policy)(int, char **,
                                                               char **) = choose_wait_policy;

int main(int argc, char **argv)
{
    /* A file size limit (ulimit -f) must fail the write with EFBIG, reported and cleaned up,
     * not kill the process with SIGXFSZ and leave a temporary file behind. */
    signal(SIGXFSZ, SIG_IGN);
    signal(SIGBUS, on_sigbus);
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        gen_opts_usage(stdout);
        printf("\n");
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("vqclip %s (libtorch %s)\n", vqc_version(), vqc_torch_version());
        return 0;
    }
    for (int i = 0; commands[i].name; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    return cmd_generate(argc, argv);
}
