/*
 * The CPU plan from C (issue 14): ipuflow_session_options_set_fallback_execution, and a session on the CPU over a
 * model quantized for the NPU (XINT8, from the shared BlazeFace and calibration photos) reporting the plan in
 * ipuflow_session_placement_json: float activations by default on this small model, the integer plan when faithful
 * is asked, the model as written when that is asked.
 */
#include "ipuflow.h"
#include "ipf_test.h"
#include "ipf_fs.h"

#include <stdint.h>
#include <stdlib.h>

static const char *tmp;
static int have_ort;
static char model_path[4096];
static char images_dir[4096];

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
    ipuflow_calib_data *d = NULL;
    char *report = NULL, *json = NULL;
    if (!have_ort)
        IPF_SKIP_DATA("no ONNX Runtime (IPUFLOW_TEST_ORT_LIBRARY unset or not loadable)");
    if (!model_path[0] || !images_dir[0])
        IPF_SKIP_DATA("no shared BlazeFace model or calibration images (IPUFLOW_TEST_SHARED_DIR)");
    IPF_REQUIRE(ipuflow_model_load_file(model_path, &model) == IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_quant_config_create(IPUFLOW_PRESET_XINT8, &cfg) == IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_calib_data_create_from_image_dir(images_dir, NULL, &d) == IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_quantize(model, cfg, d, NULL, NULL, &q, &report) == IPUFLOW_STATUS_OK);

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
    ipuflow_calib_data_free(d);
    ipuflow_quant_config_free(cfg);
    ipuflow_model_free(model);
}

int main(void)
{
    const char *ort = ipf_env("IPUFLOW_TEST_ORT_LIBRARY");
    const char *shared = ipf_env("IPUFLOW_TEST_SHARED_DIR");
    tmp = ipf_mkdtemp("cpu_plan");
    if (!tmp) {
        printf("Bail out! cannot create a temporary directory\n");
        return 1;
    }
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
    IPF_RUN(cpu_session_reports_the_plan);
    ipf_rmtree(tmp);
    {
        int rc = ipf_done();
        return (ort && !have_ort) ? 1 : rc;
    }
}
