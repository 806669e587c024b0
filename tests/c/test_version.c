/* The library's version matches the header's macros, and the number is the documented formula of its parts. */
#include "ipuflow.h"
#include "ipf_test.h"

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
/* Checked by the compiler too: the macro is the formula of its parts, not just some number. */
_Static_assert(IPUFLOW_VERSION_NUMBER == IPUFLOW_VERSION_MAJOR * 1000000 + IPUFLOW_VERSION_MINOR * 1000 +
                                             IPUFLOW_VERSION_PATCH,
               "IPUFLOW_VERSION_NUMBER == MAJOR*1000000 + MINOR*1000 + PATCH");
#endif

IPF_TEST(version_number_matches_header)
{
    IPF_CHECK_INT(ipuflow_version(), ==, IPUFLOW_VERSION_NUMBER);
    IPF_CHECK_INT(ipuflow_version() / 1000000, ==, IPUFLOW_VERSION_MAJOR);
}

IPF_TEST(version_number_is_formula_of_parts)
{
    unsigned long computed = (unsigned long)IPUFLOW_VERSION_MAJOR * 1000000UL +
                             (unsigned long)IPUFLOW_VERSION_MINOR * 1000UL + (unsigned long)IPUFLOW_VERSION_PATCH;
    IPF_CHECK_INT(IPUFLOW_VERSION_NUMBER, ==, computed);
    IPF_CHECK_INT(ipuflow_version(), ==, computed);
    /* Minor and patch must fit their three digits, or the number would be ambiguous. */
    IPF_CHECK_INT(IPUFLOW_VERSION_MINOR, <, 1000);
    IPF_CHECK_INT(IPUFLOW_VERSION_PATCH, <, 1000);
}

IPF_TEST(version_string_matches_parts)
{
    char want[64];
    const char *s = ipuflow_version_string();
    IPF_REQUIRE(s != NULL);
    snprintf(want, sizeof want, "%u.%u.%u", (unsigned)IPUFLOW_VERSION_MAJOR, (unsigned)IPUFLOW_VERSION_MINOR,
             (unsigned)IPUFLOW_VERSION_PATCH);
    /* A pre-release suffix ("0.2.0-rc.1") is allowed after the numbers. */
    IPF_CHECK(strncmp(s, want, strlen(want)) == 0);
    IPF_CHECK(s[strlen(want)] == '\0' || s[strlen(want)] == '-');
    IPF_CHECK(s == ipuflow_version_string()); /* static storage */
}

int main(void)
{
    printf("# ipuflow %s (%u), header %u\n", ipuflow_version_string(), (unsigned)ipuflow_version(),
           (unsigned)IPUFLOW_VERSION_NUMBER);
    IPF_RUN(version_number_matches_header);
    IPF_RUN(version_number_is_formula_of_parts);
    IPF_RUN(version_string_matches_parts);
    return ipf_done();
}
