/* Keyframed camera schedules ("FRAME:(VALUE), ..."): reading, interpolation, the one-line
 * errors, the checks before any model loads, and a zoom video that follows them (its regeneration
 * command and resumable state keep them). */
#include "gen/schedule.h"
#include "testcli.h"

static void test_parse_and_values(void)
{
    vqc_schedule s;
    ASSERT_OK(vqc_schedule_parse("0:(1.0), 60:(1.05)", "zoom", &s));
    ASSERT_EQ(s.n, 2);
    ASSERT_NEAR(vqc_schedule_at(&s, 0), 1.0, 1e-12);
    ASSERT_NEAR(vqc_schedule_at(&s, 30), 1.025, 1e-12);
    ASSERT_NEAR(vqc_schedule_at(&s, 60), 1.05, 1e-12);
    ASSERT_NEAR(vqc_schedule_at(&s, 1000), 1.05, 1e-12); /* held after the last key */
    ASSERT_OK(vqc_schedule_parse(" 10:(-3) ,20:5,\t40:( 7.5 )", "angle", &s));
    ASSERT_EQ(s.n, 3);
    ASSERT_NEAR(vqc_schedule_at(&s, 0), -3, 1e-12); /* held before the first */
    ASSERT_NEAR(vqc_schedule_at(&s, 15), 1, 1e-12);
    ASSERT_NEAR(vqc_schedule_at(&s, 30), 6.25, 1e-12);

    static const char *const bad[] = {"",        "0:(1), 0:(2)", "5:(1), 2:(2)", "0:(1),",
                                      "0:1.0)",  "0:(1.0",       "x:(1)",        "-1:(1)",
                                      "0:(nan)", "0:(1)\n1:(2)", "0:(1) 1:(2)",  "0:()"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = vqc_schedule_parse(bad[i], "zoom schedule", &s);
        if (rc != VQC_ERR_USAGE)
            TEST_FAIL("'%s' was read (rc %d)", bad[i], rc);
        const char *e = vqc_error_get();
        ASSERT(strstr(e, "zoom schedule") && !strchr(e, '\n'));
    }
}

/* Bad schedules are refused by vqc_generate_check, before any model. */
static void test_check(void)
{
    vqc_generate_params g = vqc_generate_default_params();
    g.prompts = "x";
    g.zoom_schedule = "0:(1), 10:(0)";
    ASSERT_EQ(vqc_generate_check(&g), VQC_ERR_USAGE);
    ASSERT(strstr(vqc_error_get(), "above 0"));
    g.zoom_schedule = "0:(1.02)";
    g.angle_schedule = "0:(0), 5:(two)";
    ASSERT_EQ(vqc_generate_check(&g), VQC_ERR_USAGE);
    g.angle_schedule = "0:(0), 5:(20)";
    g.shift_x_schedule = "0:(0), 5:(-4)";
    ASSERT_OK(vqc_generate_check(&g));
}

/* A zoom video with a keyframed camera: frames written, the schedules in the regeneration
 * command, and a bad one refused on the command line with exit 1. */
static void test_cli(void)
{
    char models[8192];
    cli_setup("schedule", models, sizeof models);
    int st = cli_run("%s -p x -s 32 32 --cutn 2 -i 4 --seed 2 --zoom-every 1 --zoom-schedule "
                     "'0:(1.0), 3:(1.2)' --angle-schedule '0:(0), 4:(30)' --shift-y-schedule "
                     "'1:(2)' --save-frames f -o cam.png",
                     models);
    cli_expect_ok(st, "the keyframed zoom video");
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "cd '%s' && ls f | wc -l | grep -qx 4", cli_tmp);
    ASSERT_EQ(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && grep -a -q \"zoom-schedule '0:(1.0), 3:(1.2)'\" cam.png && grep -a -q "
             "\"angle-schedule '0:(0), 4:(30)'\" cam.png",
             cli_tmp);
    ASSERT_EQ(system(cmd), 0);
    cli_expect_error(
        cli_run("%s -p x --zoom-every 1 --angle-schedule '0:(1), 0:(2)' -o b.png", models), 1,
        "angle schedule");
}

int main(void)
{
    TEST_PART(test_parse_and_values());
    TEST_PART(test_check());
    TEST_PART(test_cli());
    fprintf(stderr, "test-schedule: ok\n");
    return 0;
}
