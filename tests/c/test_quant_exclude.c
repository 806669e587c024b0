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

static int have_ort;
static char model_path[4096];
static char images_dir[4096];

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
    ipuflow_model *model = NULL, *out = NULL;
    ipuflow_calib_data *d = NULL;
    ipuflow_status st;
    if (ipuflow_model_load_file(model_path, &model) != IPUFLOW_STATUS_OK)
        return IPUFLOW_STATUS_INTERNAL;
    if (ipuflow_calib_data_create_from_image_dir(images_dir, NULL, &d) != IPUFLOW_STATUS_OK) {
        ipuflow_model_free(model);
        return IPUFLOW_STATUS_INTERNAL;
    }
    st = ipuflow_quantize(model, cfg, d, NULL, NULL, &out, report);
    ipuflow_model_free(out);
    ipuflow_calib_data_free(d);
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
    if (!have_ort)
        IPF_SKIP_DATA("no ONNX Runtime (IPUFLOW_TEST_ORT_LIBRARY unset or not loadable)");
    if (!model_path[0])
        IPF_SKIP_DATA("no ../shared/models/blazeface-short-range.onnx (IPUFLOW_TEST_SHARED_DIR)");

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
    const char *ort = ipf_env("IPUFLOW_TEST_ORT_LIBRARY");
    const char *shared = ipf_env("IPUFLOW_TEST_SHARED_DIR");
    if (shared) {
        ipf_join(model_path, sizeof model_path, shared, "models" IPF_SEP "blazeface-short-range.onnx");
        if (!ipf_is_file(model_path))
            model_path[0] = '\0';
        ipf_join(images_dir, sizeof images_dir, shared, "data" IPF_SEP "images" IPF_SEP "calib");
    }
    if (ort)
        have_ort = ipuflow_runtime_load(ort) == IPUFLOW_STATUS_OK;
    IPF_RUN(argument_errors);
    IPF_RUN(quantize_with_exclusions);
    return ipf_done();
}
