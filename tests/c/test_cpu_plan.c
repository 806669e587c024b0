/*
 * The CPU plan from C (issue 14): ipuflow_session_options_set_fallback_execution, and a session on the CPU over a
 * model quantized for the NPU (XINT8, from the shared BlazeFace and calibration photos) reporting the plan in
 * ipuflow_session_placement_json: float activations by default on this small model, the integer plan when faithful
 * is asked, the model as written when that is asked.
 */
#include "ipuflow.h"
#include "ipf_test.h"
#include "ipf_fs.h"
#include "ipf_setup.h"

#include <stdint.h>
#include <stdlib.h>

static const char *tmp;

IPF_TEST(setter_errors)
{
    ipuflow_session_options *o = NULL;
    IPF_CHECK_ERROR(ipuflow_session_options_set_fallback_execution(NULL, IPUFLOW_FALLBACK_EXECUTION_FAST),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "options");
    IPF_REQUIRE(ipuflow_session_options_create(&o) == IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_session_options_set_fallback_execution(o, 3), IPUFLOW_STATUS_INVALID_ENUM, "mode");
    IPF_CHECK_ERROR(ipuflow_session_options_set_fallback_execution(o, -1), IPUFLOW_STATUS_INVALID_ENUM, "-1");
    IPF_CHECK_STATUS(ipuflow_session_options_set_fallback_execution(o, IPUFLOW_FALLBACK_EXECUTION_FAITHFUL),
                     IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_set_fallback_execution(o, IPUFLOW_FALLBACK_EXECUTION_AS_WRITTEN),
                     IPUFLOW_STATUS_OK);
    ipuflow_session_options_free(o);
}

static char *plan_json(const ipuflow_model *q, int mode)
{
    ipuflow_session_options *o = NULL;
    ipuflow_session *s = NULL;
    char *json = NULL;
    if (ipuflow_session_options_create(&o) != IPUFLOW_STATUS_OK)
        return NULL;
    if (ipuflow_session_options_set_device(o, IPUFLOW_SESSION_DEVICE_CPU) == IPUFLOW_STATUS_OK &&
        ipuflow_session_options_set_fallback_execution(o, mode) == IPUFLOW_STATUS_OK &&
        ipuflow_session_create_from_model(NULL, q, o, &s) == IPUFLOW_STATUS_OK)
        ipuflow_session_placement_json(s, &json);
    else
        printf("# %s\n", ipuflow_last_error());
    ipuflow_session_free(s);
    ipuflow_session_options_free(o);
    return json;
}

IPF_TEST(cpu_session_reports_the_plan)
{
    ipuflow_model *model = NULL, *q = NULL;
    ipuflow_quant_config *cfg = NULL;
    char *report = NULL, *json = NULL;
    IPF_NEED_BLAZEFACE();
    IPF_REQUIRE(ipuflow_model_load_file(ipf_model_path, &model) == IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_quant_config_create(IPUFLOW_PRESET_XINT8, &cfg) == IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipf_quantize_on_photos(model, cfg, &q, &report) == IPUFLOW_STATUS_OK);

    /* BlazeFace is small (about 0.1 M weights): the fastest plan runs it with float activations, and says why. */
    json = plan_json(q, IPUFLOW_FALLBACK_EXECUTION_FAST);
    IPF_REQUIRE(json != NULL);
    IPF_CHECK_CONTAINS(json, "\"cpuPlan\"");
    IPF_CHECK_CONTAINS(json, "\"plan\": \"float-activations\"");
    IPF_CHECK_CONTAINS(json, "small model");
    ipuflow_string_free(json);

    /* Faithful keeps to the exact integer rewrites whatever the size. */
    json = plan_json(q, IPUFLOW_FALLBACK_EXECUTION_FAITHFUL);
    IPF_REQUIRE(json != NULL);
    IPF_CHECK_CONTAINS(json, "\"plan\": \"integer\"");
    IPF_CHECK_CONTAINS(json, "integer Clip");
    ipuflow_string_free(json);

    json = plan_json(q, IPUFLOW_FALLBACK_EXECUTION_AS_WRITTEN);
    IPF_REQUIRE(json != NULL);
    IPF_CHECK_CONTAINS(json, "\"plan\": \"as-written\"");
    ipuflow_string_free(json);

    ipuflow_string_free(report);
    ipuflow_model_free(q);
    ipuflow_quant_config_free(cfg);
    ipuflow_model_free(model);
}

int main(void)
{
    ipf_setup();
    tmp = ipf_mkdtemp("cpu_plan");
    if (!tmp) {
        printf("Bail out! cannot create a temporary directory\n");
        return 1;
    }
    IPF_RUN(setter_errors);
    IPF_RUN(cpu_session_reports_the_plan);
    ipf_rmtree(tmp);
    return ipf_finish();
}
