/* Tests of core helpers (include/normscope/core.h): the growing string
 * ns_sb (appends against snprintf of the whole text, growth past many
 * doublings, reset, release, a failed append) and its JSON scalars. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "testutil.h"

START_TEST(test_sb_empty)
{
    ns_sb b = NS_SB_INIT;
    ck_assert_str_eq(ns_sb_str(&b), "");
    ck_assert_uint_eq(b.len, 0);
    ns_sb_appendf(&b, "%s", "");
    ck_assert_str_eq(ns_sb_str(&b), "");
    ck_assert_int_eq(b.failed, 0);
    ns_sb_release(&b);
    ns_sb_release(NULL);
}
END_TEST

/* Many appends of both kinds give what one snprintf of the whole gives,
 * through many doublings of the buffer. */
START_TEST(test_sb_grows)
{
    ns_sb b;
    ns_sb_init(&b);
    size_t cap = 1 << 20, used = 0;
    char *want = malloc(cap);
    ck_assert_ptr_nonnull(want);
    want[0] = '\0';
    for (int i = 0; i < 3000; i++) {
        if (i % 3 == 0) {
            ns_sb_append(&b, "step ");
            used += (size_t)snprintf(want + used, cap - used, "step ");
        } else {
            ns_sb_appendf(&b, "%d:%.6g%s", i, 2.385 * i, i % 7 ? "," : "\n");
            used += (size_t)snprintf(want + used, cap - used, "%d:%.6g%s", i, 2.385 * i,
                                     i % 7 ? "," : "\n");
        }
        ck_assert_uint_eq(b.len, used);
    }
    ck_assert_uint_lt(used, cap);
    ck_assert_int_eq(b.failed, 0);
    ck_assert_str_eq(ns_sb_str(&b), want);
    ck_assert_uint_eq(strlen(b.s), b.len);
    ck_assert_uint_gt(b.cap, b.len);
    free(want);
    ns_sb_release(&b);
    ck_assert_ptr_null(b.s);
    ck_assert_uint_eq(b.cap, 0);
}
END_TEST

/* One append longer than any buffer so far. */
START_TEST(test_sb_long_format)
{
    ns_sb b = NS_SB_INIT;
    ns_sb_append(&b, "<");
    ns_sb_appendf(&b, "%5000d|%s", 42, "end");
    ck_assert_uint_eq(b.len, 1 + 5000 + 4);
    ck_assert_int_eq(b.s[0], '<');
    ck_assert_str_eq(b.s + b.len - 6, "42|end");
    ck_assert_int_eq(b.s[b.len - 7], ' ');
    ns_sb_release(&b);
}
END_TEST

START_TEST(test_sb_reset)
{
    ns_sb b = NS_SB_INIT;
    ns_sb_appendf(&b, "%0300d", 7);
    char *mem = b.s;
    size_t cap = b.cap;
    ns_sb_reset(&b);
    ck_assert_str_eq(ns_sb_str(&b), "");
    ck_assert_uint_eq(b.len, 0);
    ck_assert_ptr_eq(b.s, mem);
    ck_assert_uint_eq(b.cap, cap);
    ns_sb_append(&b, "again");
    ck_assert_str_eq(ns_sb_str(&b), "again");
    ns_sb_release(&b);
}
END_TEST

/* An append that fails (a wide character the C locale cannot convert)
 * keeps the text before it, sets failed, and stops later appends until a
 * reset. */
START_TEST(test_sb_failed_append)
{
    ns_sb b = NS_SB_INIT;
    const wchar_t euro[] = {0x20AC, 0};
    ns_sb_append(&b, "kept");
    ns_sb_appendf(&b, "%ls", euro);
    ck_assert_int_eq(b.failed, 1);
    ck_assert_str_eq(ns_sb_str(&b), "kept");
    ns_sb_append(&b, " more");
    ns_sb_appendf(&b, "%d", 3);
    ck_assert_str_eq(ns_sb_str(&b), "kept");
    ns_sb_reset(&b);
    ck_assert_int_eq(b.failed, 0);
    ns_sb_append(&b, "fresh");
    ck_assert_str_eq(ns_sb_str(&b), "fresh");
    ns_sb_release(&b);
}
END_TEST

START_TEST(test_sb_json_str)
{
    ns_sb b = NS_SB_INIT;
    ns_sb_json_str(&b, "a\"b\\c\nd\te\x01" "f \xc3\xa9");
    ck_assert_str_eq(ns_sb_str(&b), "\"a\\\"b\\\\c\\nd\\te\\u0001f \xc3\xa9\"");
    ns_sb_reset(&b);
    ns_sb_json_str(&b, NULL);
    ns_sb_append(&b, " ");
    ns_sb_json_str(&b, "");
    ck_assert_str_eq(ns_sb_str(&b), "null \"\"");
    ns_sb_release(&b);
}
END_TEST

START_TEST(test_sb_json_num)
{
    ns_sb b = NS_SB_INIT;
    const double v[] = {3, -2.385, 1e300, 0.1, NAN, INFINITY, 9007199254740993.0, 1e-7};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) {
        ns_sb_append(&b, i ? "," : "");
        ns_sb_json_num(&b, v[i]);
    }
    ck_assert_str_eq(ns_sb_str(&b),
                     "3,-2.385,1e+300,0.1,null,null,9.00719925474099e+15,1e-07");
    ns_sb_release(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("strbuf");
    tcase_add_test(tc, test_sb_empty);
    tcase_add_test(tc, test_sb_grows);
    tcase_add_test(tc, test_sb_long_format);
    tcase_add_test(tc, test_sb_reset);
    tcase_add_test(tc, test_sb_failed_append);
    tcase_add_test(tc, test_sb_json_str);
    tcase_add_test(tc, test_sb_json_num);
    suite_add_tcase(s, tc);
    return ns_test_run(s);
}
