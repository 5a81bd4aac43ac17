/* The prompt syntax: weights, stops, colons that stay in the text, errors. */
#include <math.h>

#include "gen/prompts.h"
#include "testhelp.h"

static vqc_prompt_list parse_ok(const char *spec)
{
    vqc_prompt_list l = {0};
    ASSERT_OK(vqc_prompts_parse(spec, &l));
    return l;
}

static void expect_one(const char *spec, const char *text, double w, double stop)
{
    vqc_prompt_list l = parse_ok(spec);
    ASSERT_EQ(l.n, 1);
    ASSERT_STR_EQ(l.items[0].text, text);
    ASSERT_NEAR(l.items[0].weight, w, 0);
    if (isinf(stop))
        ASSERT(isinf(l.items[0].stop) && l.items[0].stop < 0);
    else
        ASSERT_NEAR(l.items[0].stop, stop, 0);
    vqc_prompt_list_clear(&l);
}

static void expect_error(const char *spec)
{
    vqc_prompt_list l = {0};
    ASSERT_EQ(vqc_prompts_parse(spec, &l), VQC_ERR_USAGE);
    ASSERT_EQ(l.n, 0);
    ASSERT(strlen(vqc_error_get()) > 0);
    free(l.items);
}

int main(void)
{
    expect_one("a cyberpunk city", "a cyberpunk city", 1, -INFINITY);
    expect_one("  neon lights :0.5 ", "neon lights", 0.5, -INFINITY);
    expect_one("blurry:-1", "blurry", -1, -INFINITY);
    expect_one("sunset:1:0.8", "sunset", 1, 0.8);
    expect_one("sunset:1e-1:-0.25", "sunset", 0.1, -0.25);
    expect_one("photo: a cat", "photo: a cat", 1, -INFINITY);
    expect_one("C:\\pics\\x.png", "C:\\pics\\x.png", 1, -INFINITY);
    expect_one("C:\\pics\\x.png:0.5", "C:\\pics\\x.png", 0.5, -INFINITY);
    expect_one("http://host:8080/a.png:2", "http://host:8080/a.png", 2, -INFINITY);
    expect_one("https://example.com/a.png", "https://example.com/a.png", 1, -INFINITY);
    expect_one("one:two:three:1:0.5", "one:two:three", 1, 0.5);

    vqc_prompt_list l = parse_ok("a:1|b:-0.5|c:1:0.8");
    ASSERT_EQ(l.n, 3);
    ASSERT_STR_EQ(l.items[1].text, "b");
    ASSERT_NEAR(l.items[1].weight, -0.5, 0);
    ASSERT_NEAR(l.items[2].stop, 0.8, 0);
    ASSERT_OK(vqc_prompts_parse("d", &l)); /* appends */
    ASSERT_EQ(l.n, 4);
    vqc_prompt_list_clear(&l);

    expect_error("");
    expect_error("a|");
    expect_error(":1");
    expect_error("cat:heavy");
    expect_error("cat:nan");
    expect_error("cat:inf");
    expect_error("cat:1:-inf");
    expect_error("cat:1e999");

    vqc_prompt_list *story;
    int n;
    ASSERT_OK(vqc_story_parse("a city:1|rain^a forest:0.5", &story, &n));
    ASSERT_EQ(n, 2);
    ASSERT_EQ(story[0].n, 2);
    ASSERT_STR_EQ(story[1].items[0].text, "a forest");
    vqc_story_free(story, n);
    ASSERT(vqc_story_parse("a^", &story, &n) < 0);

    unsigned long long seed;
    double w;
    ASSERT_OK(vqc_noise_prompt_parse("42:0.5", &seed, &w));
    ASSERT_EQ(seed, 42);
    ASSERT_NEAR(w, 0.5, 0);
    ASSERT_OK(vqc_noise_prompt_parse("7", &seed, &w));
    ASSERT_NEAR(w, 1, 0);
    ASSERT(vqc_noise_prompt_parse("x:1", &seed, &w) < 0);
    ASSERT(vqc_noise_prompt_parse("3:abc", &seed, &w) < 0);
    fprintf(stderr, "test-prompts: ok\n");
    return 0;
}
