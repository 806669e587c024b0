/*
 * ipf_test.h: the tiny test framework of ipuflow's C and C++ ABI tests. No dependencies.
 *
 *   IPF_TEST(name) { IPF_CHECK(cond); IPF_CHECK_STATUS(call, IPUFLOW_STATUS_OK); ... }
 *   int main(int argc, char **argv) { IPF_RUN(name); ...; return ipf_done(); }
 *
 * Output is TAP (https://testanything.org): one "ok N - name" / "not ok N - name" line per test, diagnostics as
 * "# ..." lines, the plan "1..N" last. The exit status is 0 only when no test failed, so ctest needs nothing else.
 * IPF_SKIP("reason") inside a test ends it as "ok N - name # SKIP reason". IPF_SKIP_DATA("reason") is the same for
 * missing test data (../shared, ONNX Runtime), except under CI (CI set to anything but "", "0", "false", "no"), where
 * it FAILS the test: CI has the data, and a green run must not have checked nothing.
 *
 * Checks do not stop a test; IPF_REQUIRE(cond) does (returns from the test function on failure).
 * Compiles as C99/C11 and C++17 with -Wall -Wextra -Werror -pedantic. Include it after ipuflow.h.
 */
#ifndef IPF_TEST_H
#define IPF_TEST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __cplusplus
#include <exception>
#endif

/* static inline: unused helpers give no warning in C99, C11 or C++. */
#define IPF_INLINE static inline

/* Framework state. One test program = one translation unit, so plain statics are enough. */
static int ipf_tests_run;
static int ipf_tests_failed;
static int ipf_cur_failed;
static const char *ipf_cur_skip;

IPF_INLINE void ipf_diag(const char *fmt, ...)
{
    va_list ap;
    fputs("#   ", stdout);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
}

/* Records a failed check with its location. Returns 0 so it can be used in expressions. */
IPF_INLINE int ipf_fail(const char *file, int line, const char *what)
{
    ipf_cur_failed++;
    ipf_diag("%s:%d: check failed: %s", file, line, what);
    return 0;
}

#define IPF_TEST(name) static void name(void)

/* Runs one test function and prints its TAP line. In C++ an exception escaping the test is a failure. */
IPF_INLINE void ipf_run_test(const char *name, void (*fn)(void))
{
    ipf_cur_failed = 0;
    ipf_cur_skip = NULL;
#ifdef __cplusplus
    try {
        fn();
    } catch (const std::exception &e) {
        ipf_cur_failed++;
        ipf_diag("%s: unexpected exception: %s", name, e.what());
    } catch (...) {
        ipf_cur_failed++;
        ipf_diag("%s: unexpected exception of unknown type", name);
    }
#else
    fn();
#endif
    ipf_tests_run++;
    if (ipf_cur_failed) {
        ipf_tests_failed++;
        printf("not ok %d - %s\n", ipf_tests_run, name);
    } else if (ipf_cur_skip) {
        printf("ok %d - %s # SKIP %s\n", ipf_tests_run, name, ipf_cur_skip);
    } else {
        printf("ok %d - %s\n", ipf_tests_run, name);
    }
    fflush(stdout);
}

#define IPF_RUN(name) ipf_run_test(#name, name)

/* Prints the plan and returns the process exit status. */
IPF_INLINE int ipf_done(void)
{
    printf("1..%d\n", ipf_tests_run);
    if (ipf_tests_failed)
        printf("# FAILED %d of %d tests\n", ipf_tests_failed, ipf_tests_run);
    fflush(stdout);
    return ipf_tests_failed ? 1 : 0;
}

#define IPF_SKIP(reason)                                                                                            \
    do {                                                                                                            \
        ipf_cur_skip = (reason);                                                                                    \
        return;                                                                                                     \
    } while (0)

/* Whether this is a CI run (the CI variable, as CI services and `scripts/test.sh --ci` set it). */
IPF_INLINE int ipf_ci(void)
{
    static const char *const no[] = {"", "0", "false", "FALSE", "False", "no", "NO"};
    const char *v = getenv("CI");
    size_t i;
    if (!v)
        return 0;
    for (i = 0; i < sizeof no / sizeof no[0]; i++)
        if (strcmp(v, no[i]) == 0)
            return 0;
    return 1;
}

/* Missing test data: a skip outside CI, a failure under CI (see the top of this file). */
#define IPF_SKIP_DATA(reason)                                                                                       \
    do {                                                                                                            \
        if (ipf_ci()) {                                                                                             \
            ipf_fail(__FILE__, __LINE__, "CI: missing test data");                                                  \
            ipf_diag("  %s (outside CI this test would skip)", (reason));                                           \
            return;                                                                                                 \
        }                                                                                                           \
        IPF_SKIP(reason);                                                                                           \
    } while (0)

IPF_INLINE int ipf_check(int ok, const char *file, int line, const char *what)
{
    return ok ? 1 : ipf_fail(file, line, what);
}

/* A check; evaluates to 1 when it held, so `if (!IPF_CHECK(p)) return;` works. */
#define IPF_CHECK(cond) ipf_check((cond) ? 1 : 0, __FILE__, __LINE__, #cond)

#define IPF_REQUIRE(cond)                                                                                           \
    do {                                                                                                            \
        if (!IPF_CHECK(cond))                                                                                       \
            return;                                                                                                 \
    } while (0)

#define IPF_CHECK_INT(a, op, b)                                                                                     \
    do {                                                                                                            \
        long long ipf_a_ = (long long)(a), ipf_b_ = (long long)(b);                                                 \
        if (!(ipf_a_ op ipf_b_)) {                                                                                  \
            ipf_fail(__FILE__, __LINE__, #a " " #op " " #b);                                                        \
            ipf_diag("  left: %lld, right: %lld", ipf_a_, ipf_b_);                                                  \
        }                                                                                                           \
    } while (0)

#define IPF_CHECK_STR(a, b)                                                                                         \
    do {                                                                                                            \
        const char *ipf_sa_ = (a), *ipf_sb_ = (b);                                                                  \
        if (ipf_sa_ == NULL || ipf_sb_ == NULL || strcmp(ipf_sa_, ipf_sb_) != 0) {                                  \
            ipf_fail(__FILE__, __LINE__, #a " == " #b);                                                             \
            ipf_diag("  left: \"%s\", right: \"%s\"", ipf_sa_ ? ipf_sa_ : "(NULL)", ipf_sb_ ? ipf_sb_ : "(NULL)");  \
        }                                                                                                           \
    } while (0)

/* `hay` contains `needle` (used to check that error messages name the argument or file involved). */
#define IPF_CHECK_CONTAINS(hay, needle)                                                                             \
    do {                                                                                                            \
        const char *ipf_h_ = (hay), *ipf_n_ = (needle);                                                             \
        if (ipf_h_ == NULL || ipf_n_ == NULL || strstr(ipf_h_, ipf_n_) == NULL) {                                   \
            ipf_fail(__FILE__, __LINE__, #hay " contains " #needle);                                                \
            ipf_diag("  \"%s\" does not contain \"%s\"", ipf_h_ ? ipf_h_ : "(NULL)", ipf_n_ ? ipf_n_ : "(NULL)");   \
        }                                                                                                           \
    } while (0)

/*
 * IPF_CHECK_STATUS(call, expected): runs an ipuflow call returning ipuflow_status and compares the code. On a
 * mismatch it prints both names and the thread's last error. After a failure it also checks the ABI contract that
 * the last error is a non-empty message; after a success, that it is "".
 */
#define IPF_CHECK_STATUS(call, expected)                                                                            \
    do {                                                                                                            \
        int ipf_got_ = (int)(call);                                                                                 \
        int ipf_want_ = (int)(expected);                                                                            \
        const char *ipf_le_ = ipuflow_last_error();                                                                 \
        if (ipf_got_ != ipf_want_) {                                                                                \
            ipf_fail(__FILE__, __LINE__, #call " == " #expected);                                                   \
            ipf_diag("  got %s (%d), want %s (%d)", ipuflow_status_str(ipf_got_), ipf_got_,                         \
                     ipuflow_status_str(ipf_want_), ipf_want_);                                                     \
            ipf_diag("  last error: \"%s\"", ipf_le_ ? ipf_le_ : "(NULL)");                                        \
        } else if (ipf_le_ == NULL) {                                                                               \
            ipf_fail(__FILE__, __LINE__, "ipuflow_last_error() != NULL after " #call);                              \
        } else if (ipf_want_ == 0 && ipf_le_[0] != '\0') {                                                          \
            ipf_fail(__FILE__, __LINE__, "ipuflow_last_error() is \"\" after a successful " #call);                 \
            ipf_diag("  last error: \"%s\"", ipf_le_);                                                              \
        } else if (ipf_want_ != 0 && ipf_le_[0] == '\0') {                                                          \
            ipf_fail(__FILE__, __LINE__, "ipuflow_last_error() is a message after a failed " #call);                \
        }                                                                                                           \
    } while (0)

/* Same, and the last error must mention `needle` (an argument name, a path...). */
#define IPF_CHECK_ERROR(call, expected, needle)                                                                     \
    do {                                                                                                            \
        IPF_CHECK_STATUS(call, expected);                                                                           \
        IPF_CHECK_CONTAINS(ipuflow_last_error(), needle);                                                           \
    } while (0)

/*
 * Where the test data lives. Set by ctest's environment (see tests/CMakeLists.txt); a test that needs a directory
 * that is absent calls IPF_SKIP_DATA with the reason, so the suite passes on a machine without ../shared (not in CI).
 */
IPF_INLINE const char *ipf_env(const char *name)
{
    const char *v = getenv(name);
    return (v && v[0]) ? v : NULL;
}

#endif /* IPF_TEST_H */
