/*
 * Sensitivity analysis and mixed precision from C (issue 13 items 2 and 3): ipuflow_quant_config_set_sensitivity,
 * _set_target_sqnr, _set_max_agreement_drop and _set_min_npu_coverage. Every error path (NULL config, a flag that
 * is not 0/1, a value out of range, NaN clearing a setting), and on the shared BlazeFace calibrated on the shared
 * photos: the report JSON's `sensitivity` object, and a target already met (no step, `met: true`).
 */
#include "ipuflow.h"
#include "ipf_test.h"
#include "ipf_fs.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int have_ort;
static char model_path[4096];
static char images_dir[4096];

typedef ipuflow_status (*value_setter)(ipuflow_quant_config *, float);

IPF_TEST(setter_errors)
{
    static const value_setter fractions[] = {ipuflow_quant_config_set_max_agreement_drop,
                                             ipuflow_quant_config_set_min_npu_coverage};
    ipuflow_quant_config *c = NULL;
    size_t i;
    IPF_REQUIRE(ipuflow_quant_config_create(IPUFLOW_PRESET_XINT8, &c) == IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_quant_config_set_sensitivity(NULL, 1), IPUFLOW_STATUS_NULL_ARGUMENT, "config");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_sensitivity(c, 2), IPUFLOW_STATUS_INVALID_ENUM, "value");
    IPF_CHECK_STATUS(ipuflow_quant_config_set_sensitivity(c, 1), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_sensitivity(c, 0), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_quant_config_set_target_sqnr(NULL, 20.0f), IPUFLOW_STATUS_NULL_ARGUMENT, "config");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_target_sqnr(c, INFINITY), IPUFLOW_STATUS_INVALID_ARGUMENT,
                    "target SQNR");
    IPF_CHECK_STATUS(ipuflow_quant_config_set_target_sqnr(c, 20.0f), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_target_sqnr(c, NAN), IPUFLOW_STATUS_OK);
    for (i = 0; i < sizeof fractions / sizeof fractions[0]; i++) {
        IPF_CHECK_ERROR(fractions[i](NULL, 0.5f), IPUFLOW_STATUS_NULL_ARGUMENT, "config");
        IPF_CHECK_ERROR(fractions[i](c, 1.5f), IPUFLOW_STATUS_INVALID_ARGUMENT, "[0, 1]");
        IPF_CHECK_ERROR(fractions[i](c, -0.1f), IPUFLOW_STATUS_INVALID_ARGUMENT, "[0, 1]");
        IPF_CHECK_STATUS(fractions[i](c, 0.9f), IPUFLOW_STATUS_OK);
        IPF_CHECK_STATUS(fractions[i](c, NAN), IPUFLOW_STATUS_OK);
    }
    ipuflow_quant_config_free(c);
}

#define NEED_MODEL()                                                                                                \
    do {                                                                                                            \
        if (!have_ort)                                                                                              \
            IPF_SKIP_DATA("no ONNX Runtime (IPUFLOW_TEST_ORT_LIBRARY unset or not loadable)");                      \
        if (!model_path[0] || !images_dir[0])                                                                       \
            IPF_SKIP_DATA("no shared BlazeFace model or calibration images (IPUFLOW_TEST_SHARED_DIR)");              \
    } while (0)

/* XINT8 on the calibration photos with sensitivity on and the given target; returns the report. */
static char *quantize_report(const ipuflow_model *model, float target)
{
    ipuflow_quant_config *cfg = NULL;
    ipuflow_calib_data *d = NULL;
    ipuflow_model *q = NULL;
    char *report = NULL;
    int ok = ipuflow_quant_config_create(IPUFLOW_PRESET_XINT8, &cfg) == IPUFLOW_STATUS_OK &&
             ipuflow_quant_config_set_sensitivity(cfg, 1) == IPUFLOW_STATUS_OK &&
             ipuflow_quant_config_set_target_sqnr(cfg, target) == IPUFLOW_STATUS_OK &&
             ipuflow_quant_config_set_min_npu_coverage(cfg, 0.5f) == IPUFLOW_STATUS_OK &&
             ipuflow_calib_data_create_from_image_dir(images_dir, NULL, &d) == IPUFLOW_STATUS_OK;
    if (!ok || ipuflow_quantize(model, cfg, d, NULL, NULL, &q, &report) != IPUFLOW_STATUS_OK)
        printf("# quantize: %s\n", ipuflow_last_error());
    ipuflow_model_free(q);
    ipuflow_calib_data_free(d);
    ipuflow_quant_config_free(cfg);
    return report;
}

IPF_TEST(sensitivity_and_a_met_target_in_the_report)
{
    ipuflow_model *model = NULL;
    char *report = NULL;
    NEED_MODEL();
    IPF_REQUIRE(ipuflow_model_load_file(model_path, &model) == IPUFLOW_STATUS_OK);
    /* One quantization (two would near the ASan timeout): sensitivity on, and -100 dB holds at once, so the loop
     * records its baseline and makes no step. */
    report = quantize_report(model, -100.0f);
    IPF_REQUIRE(report != NULL);
    IPF_CHECK_CONTAINS(report, "\"sensitivity\"");
    IPF_CHECK_CONTAINS(report, "\"gain_db\"");
    IPF_CHECK_CONTAINS(report, "\"mixed_precision\"");
    IPF_CHECK_CONTAINS(report, "\"met\": true");
    IPF_CHECK_CONTAINS(report, "\"steps\": []");
    IPF_CHECK_CONTAINS(report, "ASSUMPTION");
    ipuflow_string_free(report);
    ipuflow_model_free(model);
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
    if (ort) {
        int st = (int)ipuflow_runtime_load(ort);
        have_ort = st == IPUFLOW_STATUS_OK;
        if (!have_ort)
            printf("# cannot load %s: %s: %s\n", ort, ipuflow_status_str(st), ipuflow_last_error());
    }
    IPF_RUN(setter_errors);
    IPF_RUN(sensitivity_and_a_met_target_in_the_report);
    {
        int rc = ipf_done();
        return (ort && !have_ort) ? 1 : rc;
    }
}
