/* vqclip doctor: checks that this machine can run vqclip and says how well. */
#ifndef VQC_CLI_CMD_DOCTOR_H
#define VQC_CLI_CMD_DOCTOR_H

/* `vqclip doctor [--json] [--threads N] [--no-bench]` (argv[0] is "doctor"). Reports the
 * libtorch version, the BLAS library doing CPU matrix products (warning on the slow reference
 * BLAS) and its speed, the CPU threads, the CUDA devices with their free memory (read through
 * NVML when the NVIDIA driver is installed), and the model files in every models folder,
 * the default models first. Writes the report to stdout (one JSON object with --json).
 * Returns the exit status: 0 when vqclip can run here (warnings included), 1 bad usage,
 * 3 when libtorch cannot compute a correct matrix product on the CPU. */
int cmd_doctor(int argc, char **argv);

#endif
