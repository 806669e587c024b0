/*
 * Exclusions by node-name pattern and by subgraph (ipuflow_quant_config_exclude_pattern,
 * ipuflow_quant_config_exclude_subgraph): every argument error, and on BlazeFace a pattern and a subgraph that name
 * nothing refused by ipuflow_quantize naming them (before calibration), then a quantization that leaves the
 * classifier head's post-processing float and says so in the report.
 *
 * The quantize part needs ONNX Runtime ($IPUFLOW_TEST_ORT_LIBRARY) and ../shared ($IPUFLOW_TEST_SHARED_DIR).
 */
#include "ipuflow.h"
#include "ipf_test.h"
#include "ipf_fs.h"
#include "ipf_setup.h"


IPF_TEST(argument_errors)
{
    ipuflow_quant_config *c = NULL;
    const char *starts[] = {"a", "b"};
    const char *ends[] = {"c"};
    const char *with_null[] = {"a", NULL};
    const char *with_empty[] = {""};
    IPF_REQUIRE(ipuflow_quant_config_create(IPUFLOW_PRESET_XINT8, &c) == IPUFLOW_STATUS_OK);

    IPF_CHECK_ERROR(ipuflow_quant_config_exclude_pattern(NULL, "x*"), IPUFLOW_STATUS_NULL_ARGUMENT, "config");
    IPF_CHECK_ERROR(ipuflow_quant_config_exclude_pattern(c, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "pattern");
    IPF_CHECK_ERROR(ipuflow_quant_config_exclude_pattern(c, ""), IPUFLOW_STATUS_INVALID_ARGUMENT, "pattern");
    IPF_CHECK_ERROR(ipuflow_quant_config_exclude_pattern(c, "\xff*"), IPUFLOW_STATUS_INVALID_UTF8, "pattern");
    IPF_CHECK_STATUS(ipuflow_quant_config_exclude_pattern(c, "head/*"), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_exclude_pattern(c, "head/*"), IPUFLOW_STATUS_OK);

    IPF_CHECK_ERROR(ipuflow_quant_config_exclude_subgraph(NULL, starts, 2, ends, 1), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "config");
    IPF_CHECK_ERROR(ipuflow_quant_config_exclude_subgraph(c, NULL, 2, ends, 1), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "start_nodes");
    IPF_CHECK_ERROR(ipuflow_quant_config_exclude_subgraph(c, starts, 2, NULL, 1), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "end_nodes");
    IPF_CHECK_ERROR(ipuflow_quant_config_exclude_subgraph(c, starts, 0, ends, 1), IPUFLOW_STATUS_INVALID_ARGUMENT,
                    "start_nodes");
    IPF_CHECK_ERROR(ipuflow_quant_config_exclude_subgraph(c, starts, 2, ends, 0), IPUFLOW_STATUS_INVALID_ARGUMENT,
                    "end_nodes");
    IPF_CHECK_ERROR(ipuflow_quant_config_exclude_subgraph(c, with_null, 2, ends, 1), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "start_nodes[1]");
    IPF_CHECK_ERROR(ipuflow_quant_config_exclude_subgraph(c, starts, 2, with_empty, 1),
                    IPUFLOW_STATUS_INVALID_ARGUMENT, "end_nodes[0]");
    IPF_CHECK_STATUS(ipuflow_quant_config_exclude_subgraph(c, starts, 2, ends, 1), IPUFLOW_STATUS_OK);
    ipuflow_quant_config_free(c);
}

/* Quantizes BlazeFace with `cfg` on the calibration images; returns the status, *report the JSON on success. */
static ipuflow_status quantize(ipuflow_quant_config *cfg, char **report)
{
    ipuflow_model *model = NULL;
    ipuflow_status st;
    if (ipuflow_model_load_file(ipf_model_path, &model) != IPUFLOW_STATUS_OK)
        return IPUFLOW_STATUS_INTERNAL;
    st = ipf_quantize_on_photos(model, cfg, NULL, report);
    ipuflow_model_free(model);
    return st;
}

IPF_TEST(quantize_with_exclusions)
{
    ipuflow_quant_config *c = NULL;
    char *report = NULL;
    const char *heads[] = {"TFLITE2ONNX_Transposed_classificator_8", "TFLITE2ONNX_Transposed_classificator_16"};
    const char *concat[] = {"classificators"};
    const char *nowhere[] = {"nms"};
    IPF_NEED_BLAZEFACE();

    IPF_REQUIRE(ipuflow_quant_config_create(IPUFLOW_PRESET_XINT8, &c) == IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_quant_config_exclude_pattern(c, "nms/*") == IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(quantize(c, NULL), IPUFLOW_STATUS_INVALID_ARGUMENT, "'nms/*'");
    ipuflow_quant_config_free(c);

    IPF_REQUIRE(ipuflow_quant_config_create(IPUFLOW_PRESET_XINT8, &c) == IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_quant_config_exclude_subgraph(c, heads, 2, nowhere, 1) == IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(quantize(c, NULL), IPUFLOW_STATUS_INVALID_ARGUMENT, "no node named 'nms'");
    ipuflow_quant_config_free(c);

    IPF_REQUIRE(ipuflow_quant_config_create(IPUFLOW_PRESET_XINT8, &c) == IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_quant_config_exclude_pattern(c, "reshape*") == IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_quant_config_exclude_subgraph(c, heads, 2, concat, 1) == IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(quantize(c, &report), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(report != NULL);
    IPF_CHECK(strstr(report, "excluded by name pattern 'reshape*'") != NULL);
    IPF_CHECK(strstr(report, "excluded as part of subgraph") != NULL);
    ipuflow_string_free(report);
    ipuflow_quant_config_free(c);
}

int main(void)
{
    ipf_setup();
    IPF_RUN(argument_errors);
    IPF_RUN(quantize_with_exclusions);
    return ipf_finish();
}
