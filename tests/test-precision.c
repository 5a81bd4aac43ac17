/* Which precision a context computes in (generate.c's vqc_gen_resolve_precision): exact on the
 * CPU whatever was asked; on CUDA what was asked, and by default fast, but mixed on a GPU older
 * than Ampere, where cuDNN has no bfloat16 convolutions. The resolution is checked for every
 * setting and compute capability; vqc_init is checked on the devices this machine has: the CPU
 * always, and the first CUDA device with its own capability when there is one. */
#include "gen/gen_internal.h"
#include "testhelp.h"
#include "torch/shim.h"

static void test_resolution(void)
{
    static const vqc_precision all[] = {VQC_PRECISION_AUTO, VQC_PRECISION_EXACT,
                                        VQC_PRECISION_MIXED, VQC_PRECISION_FAST};
    static const int caps[] = {-1, 5, 6, 7, 8, 9, 10, 12};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
            /* the CPU computes in float32 whatever was asked */
            ASSERT_EQ(vqc_gen_resolve_precision(all[i], false, caps[k]), VQC_PRECISION_EXACT);
            vqc_precision got = vqc_gen_resolve_precision(all[i], true, caps[k]);
            if (all[i] != VQC_PRECISION_AUTO) /* an explicit setting is kept on any GPU */
                ASSERT_EQ(got, all[i]);
            else if (caps[k] >= 0 && caps[k] < 8) /* Volta, Turing and older: no bf16 convs */
                ASSERT_EQ(got, VQC_PRECISION_MIXED);
            else /* Ampere and later, or not known: the bfloat16 decoder */
                ASSERT_EQ(got, VQC_PRECISION_FAST);
        }
}

/* vqc_init on the CPU: exact, and a warning when something else was asked for. */
static void test_init_cpu(void)
{
    int major = -7, minor = -7;
    ASSERT_EQ(vqt_cuda_capability((vqt_device){VQT_DEVICE_CPU, 0}, &major, &minor), -1);
    ASSERT(major == -7 && minor == -7); /* left alone */
    vqc_context_params cp = vqc_context_default_params();
    cp.device = "cpu";
    static const vqc_precision asked[] = {VQC_PRECISION_AUTO, VQC_PRECISION_FAST};
    for (int i = 0; i < 2; i++) {
        cp.precision = asked[i];
        test_log_clear();
        vqc_context *c = NULL;
        ASSERT_OK(vqc_init(&cp, &c));
        ASSERT_EQ(c->precision, VQC_PRECISION_EXACT);
        ASSERT_EQ(strstr(test_log(), "applies to CUDA devices only") != NULL, i == 1);
        ASSERT(!strstr(test_log(), "compute capability"));
        vqc_free(c);
    }
}

/* vqc_init on the first CUDA device, when there is one: its capability decides the default. */
static void test_init_cuda(void)
{
    if (vqt_cuda_device_count() < 1) {
        fprintf(stderr, "  no CUDA device: vqc_init checked on the CPU only\n");
        return;
    }
    vqt_device dev = {VQT_DEVICE_CUDA, 0};
    int major = -1, minor = -1;
    if (vqt_cuda_capability(dev, &major, &minor) != 0) {
        fprintf(stderr, "  cuda:0's compute capability is not known to this build\n");
        major = -1;
    } else {
        ASSERT(major >= 3 && minor >= 0);
        fprintf(stderr, "  cuda:0: compute capability %d.%d\n", major, minor);
    }
    vqc_context_params cp = vqc_context_default_params();
    cp.device = "cuda:0";
    test_log_clear();
    vqc_context *c = NULL;
    ASSERT_OK(vqc_init(&cp, &c));
    bool old = major >= 0 && major < 8;
    ASSERT_EQ(c->precision, old ? VQC_PRECISION_MIXED : VQC_PRECISION_FAST);
    ASSERT_EQ(strstr(test_log(), "no bfloat16 convolutions") != NULL, old);
    vqc_free(c);
    cp.precision = VQC_PRECISION_FAST; /* asked for: kept, with a warning on an old GPU */
    test_log_clear();
    ASSERT_OK(vqc_init(&cp, &c));
    ASSERT_EQ(c->precision, VQC_PRECISION_FAST);
    ASSERT_EQ(strstr(test_log(), "may be slower than the mixed precision") != NULL, old);
    vqc_free(c);
}

int main(void)
{
    vqc_log_set(test_log_sink, NULL, VQC_LOG_DEBUG);
    TEST_PART(test_resolution());
    TEST_PART(test_init_cpu());
    TEST_PART(test_init_cuda());
    vqc_log_set(NULL, NULL, VQC_LOG_INFO);
    fprintf(stderr, "test-precision: ok\n");
    return 0;
}
