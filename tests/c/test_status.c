/* ipuflow_status_str names every code the header declares, with the header's own spelling, and any other
 * integer as IPUFLOW_STATUS_UNKNOWN; the strings are static. */
#include "ipuflow.h"
#include "ipf_test.h"

#include <limits.h>

struct code_name {
    int code;
    const char *name;
};
#define S(x) {(int)(x), #x}

/* Every code of src/capi/status.rs. A code added there must be added here (the C side proves its name). */
static const struct code_name all_codes[] = {
    S(IPUFLOW_STATUS_OK),
    S(IPUFLOW_STATUS_NULL_ARGUMENT),
    S(IPUFLOW_STATUS_INVALID_ARGUMENT),
    S(IPUFLOW_STATUS_INVALID_ENUM),
    S(IPUFLOW_STATUS_INVALID_UTF8),
    S(IPUFLOW_STATUS_BUFFER_TOO_SMALL),
    S(IPUFLOW_STATUS_OUT_OF_RANGE),
    S(IPUFLOW_STATUS_FILE_NOT_FOUND),
    S(IPUFLOW_STATUS_FILE_READ),
    S(IPUFLOW_STATUS_FILE_WRITE),
    S(IPUFLOW_STATUS_PATH_REFUSED),
    S(IPUFLOW_STATUS_MODEL_DECODE),
    S(IPUFLOW_STATUS_MODEL_INVALID),
    S(IPUFLOW_STATUS_EXTERNAL_DATA),
    S(IPUFLOW_STATUS_UNSUPPORTED),
    S(IPUFLOW_STATUS_RUNTIME_NOT_FOUND),
    S(IPUFLOW_STATUS_RUNTIME_INVALID),
    S(IPUFLOW_STATUS_RUNTIME_TOO_OLD),
    S(IPUFLOW_STATUS_RUNTIME_NOT_LOADED),
    S(IPUFLOW_STATUS_RUNTIME),
    S(IPUFLOW_STATUS_DEVICE_UNAVAILABLE),
    S(IPUFLOW_STATUS_TENSOR_MISMATCH),
    S(IPUFLOW_STATUS_CANCELLED),
    S(IPUFLOW_STATUS_CALIBRATION),
    S(IPUFLOW_STATUS_CALLBACK),
    S(IPUFLOW_STATUS_CALIB_CACHE_STALE),
    S(IPUFLOW_STATUS_CALIB_CACHE_INVALID),
    S(IPUFLOW_STATUS_OUT_OF_MEMORY),
    S(IPUFLOW_STATUS_INTERNAL),
};
#define N_CODES (sizeof all_codes / sizeof all_codes[0])

static int is_known(int code)
{
    size_t i;
    for (i = 0; i < N_CODES; i++)
        if (all_codes[i].code == code)
            return 1;
    return 0;
}

IPF_TEST(every_code_has_its_header_name)
{
    size_t i;
    for (i = 0; i < N_CODES; i++) {
        const char *s = ipuflow_status_str(all_codes[i].code);
        IPF_CHECK_STR(s, all_codes[i].name);
        IPF_CHECK(s == ipuflow_status_str(all_codes[i].code)); /* static, same pointer each time */
    }
}

IPF_TEST(codes_are_pinned)
{
    /* The numbers are the ABI (see src/capi/status.rs): spot-check each group and the extremes. */
    IPF_CHECK_INT(IPUFLOW_STATUS_OK, ==, 0);
    IPF_CHECK_INT(IPUFLOW_STATUS_NULL_ARGUMENT, ==, 100);
    IPF_CHECK_INT(IPUFLOW_STATUS_INVALID_ENUM, ==, 102);
    IPF_CHECK_INT(IPUFLOW_STATUS_FILE_NOT_FOUND, ==, 200);
    IPF_CHECK_INT(IPUFLOW_STATUS_MODEL_DECODE, ==, 300);
    IPF_CHECK_INT(IPUFLOW_STATUS_RUNTIME_NOT_FOUND, ==, 400);
    IPF_CHECK_INT(IPUFLOW_STATUS_CALIBRATION, ==, 500);
    IPF_CHECK_INT(IPUFLOW_STATUS_OUT_OF_MEMORY, ==, 900);
    IPF_CHECK_INT(IPUFLOW_STATUS_INTERNAL, ==, 901);
    /* Distinct. */
    {
        size_t i, j;
        for (i = 0; i < N_CODES; i++)
            for (j = i + 1; j < N_CODES; j++)
                IPF_CHECK(all_codes[i].code != all_codes[j].code);
    }
}

IPF_TEST(unknown_codes_are_named_unknown)
{
    static const int unknown[] = {-1, 1, 2, 99, 106, 199, 204, 299, 304, 408, 502, 899, 902, 999, 1000, 65536,
                                  INT_MAX, INT_MIN, INT_MIN + 1};
    size_t i;
    int c;
    for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        IPF_CHECK_STR(ipuflow_status_str(unknown[i]), "IPUFLOW_STATUS_UNKNOWN");
    /* Every integer of the used range is either a declared code or UNKNOWN, never NULL or another string. */
    for (c = -10; c < 1100; c++) {
        const char *s = ipuflow_status_str(c);
        IPF_REQUIRE(s != NULL);
        if (!is_known(c))
            IPF_CHECK_STR(s, "IPUFLOW_STATUS_UNKNOWN");
        else
            IPF_CHECK(strncmp(s, "IPUFLOW_STATUS_", 15) == 0 && strcmp(s, "IPUFLOW_STATUS_UNKNOWN") != 0);
    }
}

int main(void)
{
    IPF_RUN(every_code_has_its_header_name);
    IPF_RUN(codes_are_pinned);
    IPF_RUN(unknown_codes_are_named_unknown);
    return ipf_done();
}
