/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for lib/import/emit.c: the exact layout for people, every key
 * in its place, string escapes that cJSON (psup's own parser) reads back
 * to the same text, and numeric ids written as numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import/import_int.h"

static char *emit(const struct psup_import_result *r)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);

    assert_non_null(f);
    assert_int_equal(psup_import_emit(f, r), 0);
    fclose(f);
    return text;
}

static void test_no_services(void **state)
{
    (void)state;
    struct psup_import_result r;

    psup_import_result_init(&r);
    char *text = emit(&r);
    assert_string_equal(text, "{\n  \"services\": []\n}\n");
    free(text);
}

static struct psup_import_service *full_service(void)
{
    struct psup_import_service *s = psup_import_service_new();

    assert_non_null(s);
    s->name = strdup("tftp");
    psup_import_strv_push(&s->listen, "udp://0.0.0.0:69");
    psup_import_strv_push(&s->listen, "[::1]:69");
    s->mode = PSUP_IMPORT_MODE_WAIT;
    psup_import_strv_push(&s->command, "/usr/sbin/in.tftpd");
    psup_import_strv_push(&s->command, "-s");
    s->user = (struct psup_import_id){.text = strdup("65534"), .numeric = true};
    s->group = (struct psup_import_id){.text = strdup("nogroup")};
    s->supplementary_groups = 0;
    psup_import_strv_push(&s->env_names, "LANG");
    psup_import_strv_push(&s->env_values, "C.UTF-8");
    s->clear_env = true;
    psup_import_strv_push(&s->pass_env, "TZ");
    s->nice_set = true;
    s->nice = -5;
    s->umask = 022;
    s->rlimits[PSUP_IMPORT_RLIMIT_CPU] = (struct psup_import_limit){.set = true, .value = 10};
    s->rlimits[PSUP_IMPORT_RLIMIT_STACK] = (struct psup_import_limit){.set = true,
                                                                      .unlimited = true};
    s->max_workers = 30;
    s->reject_overload = true;
    s->max_per_source = 11;
    s->rate = 100.0 / 60;
    s->rate_burst = 100;
    psup_import_strv_push(&s->allow, "10.0.0.0/8");
    psup_import_strv_push(&s->deny, "10.1.0.0/16");
    psup_import_strv_push(&s->deny, "::1");
    return s;
}

static void test_every_key_in_order(void **state)
{
    (void)state;
    struct psup_import_result r;

    psup_import_result_init(&r);
    assert_int_equal(psup_import_add_service(&r, full_service()), 0);
    char *text = emit(&r);
    assert_string_equal(text, "{\n"
                              "  \"services\": [\n"
                              "    {\n"
                              "      \"name\": \"tftp\",\n"
                              "      \"listen\": [\"udp://0.0.0.0:69\", \"[::1]:69\"],\n"
                              "      \"mode\": \"wait\",\n"
                              "      \"command\": [\"/usr/sbin/in.tftpd\", \"-s\"],\n"
                              "      \"user\": 65534,\n"
                              "      \"group\": \"nogroup\",\n"
                              "      \"supplementary_groups\": false,\n"
                              "      \"env\": {\n"
                              "        \"LANG\": \"C.UTF-8\"\n"
                              "      },\n"
                              "      \"clear_env\": true,\n"
                              "      \"pass_env\": [\"TZ\"],\n"
                              "      \"nice\": -5,\n"
                              "      \"umask\": \"022\",\n"
                              "      \"rlimits\": {\n"
                              "        \"cpu\": 10,\n"
                              "        \"stack\": \"unlimited\"\n"
                              "      },\n"
                              "      \"pool\": {\n"
                              "        \"max_workers\": 30\n"
                              "      },\n"
                              "      \"on_overload\": \"reject\",\n"
                              "      \"max_per_source\": 11,\n"
                              "      \"rate\": 1.66667,\n"
                              "      \"rate_burst\": 100,\n"
                              "      \"allow\": [\"10.0.0.0/8\"],\n"
                              "      \"deny\": [\"10.1.0.0/16\", \"::1\"]\n"
                              "    }\n"
                              "  ]\n"
                              "}\n");
    free(text);
    psup_import_result_free(&r);
}

static void test_strings_read_back_the_same(void **state)
{
    (void)state;
    static const char *const texts[] = {"plain", "a \"quoted\" word", "back\\slash",
                                        "tab\tnewline\ncr\r", "\x01\x1f", "caf\xc3\xa9 \xe2\x82\xac",
                                        "printf '%s\\r\\n' \"$(date)\""};
    struct psup_import_result r;

    psup_import_result_init(&r);
    for (size_t i = 0; i < sizeof(texts) / sizeof(*texts); i++) {
        struct psup_import_service *s = psup_import_service_new();
        char name[8];
        snprintf(name, sizeof(name), "s%zu", i);
        s->name = strdup(name);
        psup_import_strv_push(&s->listen, "127.0.0.1:0");
        s->command_line = strdup(texts[i]);
        assert_int_equal(psup_import_add_service(&r, s), 0);
    }
    char *text = emit(&r);
    cJSON *doc = cJSON_Parse(text);
    assert_non_null(doc);
    cJSON *services = cJSON_GetObjectItemCaseSensitive(doc, "services");
    assert_int_equal(cJSON_GetArraySize(services), (int)(sizeof(texts) / sizeof(*texts)));
    for (size_t i = 0; i < sizeof(texts) / sizeof(*texts); i++) {
        cJSON *command = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(services, (int)i),
                                                          "command");
        assert_true(cJSON_IsString(command));
        assert_string_equal(command->valuestring, texts[i]);
    }
    cJSON_Delete(doc);
    free(text);
    psup_import_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_services),
        cmocka_unit_test(test_every_key_in_order),
        cmocka_unit_test(test_strings_read_back_the_same),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
