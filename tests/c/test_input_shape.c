/*
 * Fixing dynamic input shapes from C (issue 11 item 3): ipuflow_quant_config_set_input_shape,
 * ipuflow_session_options_set_input_shape and ipuflow_model_copy_with_input_shape (for the pre-flight), with their
 * error paths (NULL arguments, sizes below 1, ranks over the limit, unknown inputs, wrong ranks) and untouched
 * outputs on failure. The model is test_models.h's Identity x: float[batch,3] -> y.
 */
#include "ipuflow.h"
#include "ipf_test.h"
#include "test_models.h"

#include <stdint.h>

#define SENTINEL ((void *)(uintptr_t)0x5e5e5e5e)

static int have_ort;

static ipuflow_model *identity(void)
{
    ipuflow_model *m = NULL;
    if (ipuflow_model_load_bytes(ipf_model_identity, sizeof ipf_model_identity, NULL, &m) != IPUFLOW_STATUS_OK)
        return NULL;
    return m;
}

IPF_TEST(setters_check_their_arguments)
{
    const int64_t dims[2] = {2, 3};
    const int64_t zero[2] = {0, 3};
    int64_t many[65];
    ipuflow_quant_config *c = NULL;
    ipuflow_session_options *o = NULL;
    size_t i;
    for (i = 0; i < 65; i++)
        many[i] = 1;
    IPF_REQUIRE(ipuflow_quant_config_create(IPUFLOW_PRESET_XINT8, &c) == IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_session_options_create(&o) == IPUFLOW_STATUS_OK);

    IPF_CHECK_ERROR(ipuflow_quant_config_set_input_shape(NULL, "x", dims, 2), IPUFLOW_STATUS_NULL_ARGUMENT, "config");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_input_shape(c, NULL, dims, 2), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "input_name");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_input_shape(c, "x", NULL, 2), IPUFLOW_STATUS_NULL_ARGUMENT, "dims");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_input_shape(c, "", dims, 2), IPUFLOW_STATUS_INVALID_ARGUMENT, "empty");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_input_shape(c, "x", zero, 2), IPUFLOW_STATUS_INVALID_ARGUMENT,
                    "dimension 0 is 0");
    IPF_CHECK_STATUS(ipuflow_quant_config_set_input_shape(c, "x", many, 65), IPUFLOW_STATUS_LIMIT_EXCEEDED);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_input_shape(c, "\xff", dims, 2), IPUFLOW_STATUS_INVALID_UTF8);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_input_shape(c, "x", dims, 2), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_input_shape(c, "x", dims, 2), IPUFLOW_STATUS_OK); /* replaces */

    IPF_CHECK_ERROR(ipuflow_session_options_set_input_shape(NULL, "x", dims, 2), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "options");
    IPF_CHECK_ERROR(ipuflow_session_options_set_input_shape(o, "x", zero, 2), IPUFLOW_STATUS_INVALID_ARGUMENT,
                    "at least 1");
    IPF_CHECK_STATUS(ipuflow_session_options_set_input_shape(o, "x", dims, 2), IPUFLOW_STATUS_OK);
    ipuflow_quant_config_free(c);
    ipuflow_session_options_free(o);
}

IPF_TEST(model_copy_for_the_preflight)
{
    const int64_t one[2] = {1, 3};
    const int64_t bad[2] = {1, 4};
    const int64_t rank3[3] = {1, 3, 1};
    ipuflow_model *m = identity(), *copy = (ipuflow_model *)SENTINEL;
    ipuflow_value_info vi;
    ipuflow_preflight *p = NULL;
    ipuflow_node_prediction n;
    IPF_REQUIRE(m != NULL);
    IPF_CHECK_ERROR(ipuflow_model_copy_with_input_shape(NULL, "x", one, 2, &copy), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "model");
    IPF_CHECK_ERROR(ipuflow_model_copy_with_input_shape(m, "x", one, 2, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_ERROR(ipuflow_model_copy_with_input_shape(m, "images", one, 2, &copy), IPUFLOW_STATUS_INVALID_ARGUMENT,
                    "its inputs: 'x' [batch,3]");
    IPF_CHECK_ERROR(ipuflow_model_copy_with_input_shape(m, "x", rank3, 3, &copy), IPUFLOW_STATUS_INVALID_ARGUMENT,
                    "rank 2");
    IPF_CHECK_ERROR(ipuflow_model_copy_with_input_shape(m, "x", bad, 2, &copy), IPUFLOW_STATUS_INVALID_ARGUMENT,
                    "fixed at 3");
    IPF_CHECK(copy == (ipuflow_model *)SENTINEL);

    /* The original says "dynamic shape"; the copy does not, and the original is unchanged. */
    IPF_REQUIRE(ipuflow_preflight_run(m, IPUFLOW_TARGET_X2, &p) == IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_preflight_get_node(p, 0, &n) == IPUFLOW_STATUS_OK);
    IPF_CHECK_CONTAINS(n.reason, "dynamic shape");
    ipuflow_preflight_free(p);
    IPF_REQUIRE(ipuflow_model_copy_with_input_shape(m, "x", one, 2, &copy) == IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_model_get_input(copy, 0, &vi) == IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(vi.rank, ==, 2);
    IPF_CHECK_INT(vi.dims[0], ==, 1);
    IPF_CHECK_INT(vi.dims[1], ==, 3);
    IPF_REQUIRE(ipuflow_preflight_run(copy, IPUFLOW_TARGET_X2, &p) == IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_preflight_get_node(p, 0, &n) == IPUFLOW_STATUS_OK);
    IPF_CHECK(strstr(n.reason, "dynamic") == NULL);
    ipuflow_preflight_free(p);
    IPF_REQUIRE(ipuflow_model_get_input(m, 0, &vi) == IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(vi.dims[0], ==, -1);
    ipuflow_model_free(copy);
    ipuflow_model_free(m);
}

IPF_TEST(session_gets_the_shape)
{
    const int64_t dims[2] = {5, 3};
    const int64_t wrong[1] = {5};
    ipuflow_session_options *o = NULL;
    ipuflow_session *s = (ipuflow_session *)SENTINEL;
    ipuflow_model *m = identity();
    ipuflow_tensor_info info;
    if (!have_ort)
        IPF_SKIP_DATA("no ONNX Runtime (IPUFLOW_TEST_ORT_LIBRARY unset or not loadable)");
    IPF_REQUIRE(m != NULL);
    IPF_REQUIRE(ipuflow_session_options_create(&o) == IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_session_options_set_input_shape(o, "x", wrong, 1) == IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_session_create_from_model(NULL, m, o, &s), IPUFLOW_STATUS_INVALID_ARGUMENT, "rank 2");
    IPF_CHECK(s == (ipuflow_session *)SENTINEL);
    IPF_REQUIRE(ipuflow_session_options_set_input_shape(o, "x", dims, 2) == IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_session_create_from_memory(NULL, ipf_model_identity, sizeof ipf_model_identity, o, &s) ==
                IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_session_input_info(s, 0, &info) == IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(info.rank, ==, 2);
    IPF_CHECK_INT(info.shape[0], ==, 5);
    ipuflow_session_free(s);
    ipuflow_session_options_free(o);
    ipuflow_model_free(m);
}

int main(void)
{
    const char *ort = ipf_env("IPUFLOW_TEST_ORT_LIBRARY");
    IPF_RUN(setters_check_their_arguments);
    IPF_RUN(model_copy_for_the_preflight);
    if (ort)
        have_ort = ipuflow_runtime_load(ort) == IPUFLOW_STATUS_OK;
    IPF_RUN(session_gets_the_shape);
    return ipf_done();
}
