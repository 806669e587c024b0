/*
 * Sensitivity analysis and mixed precision from C (issue 13 items 2 and 3): ipuflow_quant_config_set_sensitivity,
 * _set_target_sqnr, _set_max_agreement_drop and _set_min_npu_coverage. Every error path (NULL config, a flag that
 * is not 0/1, a value out of range, NaN clearing a setting), and on the shared BlazeFace calibrated on the shared
 * photos: the report JSON's `sensitivity` object, and a target already met (no step, `met: true`).
 */
#include "ipuflow.h"
#include "ipf_test.h"
#include "ipf_fs.h"
#include "ipf_setup.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


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

/* XINT8 on the calibration photos with sensitivity on and the given target; returns the report. */
static char *quantize_report(const ipuflow_model *model, float target)
{
    ipuflow_quant_config *cfg = NULL;
    char *report = NULL;
    int ok = ipuflow_quant_config_create(IPUFLOW_PRESET_XINT8, &cfg) == IPUFLOW_STATUS_OK &&
             ipuflow_quant_config_set_sensitivity(cfg, 1) == IPUFLOW_STATUS_OK &&
             ipuflow_quant_config_set_target_sqnr(cfg, target) == IPUFLOW_STATUS_OK &&
             ipuflow_quant_config_set_min_npu_coverage(cfg, 0.5f) == IPUFLOW_STATUS_OK;
    if (ok)
        ipf_quantize_on_photos(model, cfg, NULL, &report);
    ipuflow_quant_config_free(cfg);
    return report;
}

IPF_TEST(sensitivity_and_a_met_target_in_the_report)
{
    ipuflow_model *model = NULL;
    char *report = NULL;
    IPF_NEED_BLAZEFACE();
    IPF_REQUIRE(ipuflow_model_load_file(ipf_model_path, &model) == IPUFLOW_STATUS_OK);
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
    ipf_setup();
    IPF_RUN(setter_errors);
    IPF_RUN(sensitivity_and_a_met_target_in_the_report);
    return ipf_finish();
}
