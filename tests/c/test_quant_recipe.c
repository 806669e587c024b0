/*
 * The quantizer's recipe switches from C (issue 12): ipuflow_quant_config_set_bias_type, _set_weight_range,
 * _set_equalization, _set_replace_clip6_relu, _set_bias_correction and _set_learned_rounding (and the error paths
 * of _set_npu_rescale, _set_sigmoid_to_hard_sigmoid, _set_rounding_scale_search, _set_rounding_act_order, whose
 * effects the Rust tests quant_score_heads and quant_gptq pin). Every error path
 * (NULL config, a value that is not 0/1, an unknown enum), and the real effect of each on the shared BlazeFace
 * calibrated on the shared photos: INT8 vs INT32 bias initializers in the report, and different outputs of the
 * quantized model (run on the CPU) with learned rounding or bias correction off vs on.
 */
#include "ipuflow.h"
#include "ipf_test.h"
#include "ipf_fs.h"
#include "ipf_setup.h"

#include <stdint.h>
#include <stdlib.h>


typedef ipuflow_status (*flag_setter)(ipuflow_quant_config *, int32_t);

IPF_TEST(setter_errors)
{
    static const flag_setter flags[] = {ipuflow_quant_config_set_equalization,
                                        ipuflow_quant_config_set_replace_clip6_relu,
                                        ipuflow_quant_config_set_bias_correction,
                                        ipuflow_quant_config_set_learned_rounding,
                                        ipuflow_quant_config_set_npu_rescale,
                                        ipuflow_quant_config_set_sigmoid_to_hard_sigmoid,
                                        ipuflow_quant_config_set_rounding_scale_search,
                                        ipuflow_quant_config_set_rounding_act_order};
    ipuflow_quant_config *c = NULL;
    size_t i;
    IPF_REQUIRE(ipuflow_quant_config_create(IPUFLOW_PRESET_XINT8, &c) == IPUFLOW_STATUS_OK);
    for (i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        IPF_CHECK_ERROR(flags[i](NULL, 1), IPUFLOW_STATUS_NULL_ARGUMENT, "config");
        IPF_CHECK_ERROR(flags[i](c, 2), IPUFLOW_STATUS_INVALID_ENUM, "value");
        IPF_CHECK_ERROR(flags[i](c, -1), IPUFLOW_STATUS_INVALID_ENUM, "0 or 1");
        IPF_CHECK_STATUS(flags[i](c, 0), IPUFLOW_STATUS_OK);
        IPF_CHECK_STATUS(flags[i](c, 1), IPUFLOW_STATUS_OK);
    }
    IPF_CHECK_ERROR(ipuflow_quant_config_set_bias_type(NULL, IPUFLOW_BIAS_TYPE_INT8), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "config");
    /* Neither a quantized type that is no bias type (INT16) nor a plain 0/1 is accepted. */
    IPF_CHECK_ERROR(ipuflow_quant_config_set_bias_type(c, IPUFLOW_QUANT_TYPE_INT16), IPUFLOW_STATUS_INVALID_ENUM,
                    "bias_type");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_bias_type(c, 0), IPUFLOW_STATUS_INVALID_ENUM, "IPUFLOW_BIAS_TYPE_INT32");
    IPF_CHECK_STATUS(ipuflow_quant_config_set_bias_type(c, IPUFLOW_BIAS_TYPE_INT32), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_bias_type(c, IPUFLOW_BIAS_TYPE_INT8), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_quant_config_set_weight_range(NULL, IPUFLOW_WEIGHT_RANGE_MINMAX),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "config");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_weight_range(c, 2), IPUFLOW_STATUS_INVALID_ENUM, "range");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_weight_range(c, -1), IPUFLOW_STATUS_INVALID_ENUM, "MINMSE");
    IPF_CHECK_STATUS(ipuflow_quant_config_set_weight_range(c, IPUFLOW_WEIGHT_RANGE_MINMAX), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_weight_range(c, IPUFLOW_WEIGHT_RANGE_MINMSE), IPUFLOW_STATUS_OK);
    ipuflow_quant_config_free(c);
}

/* -------------------------------------------------------------------------------------------------------------- */
/* Effects on a real model */

/* A8W8 with the given switches (-1: the preset's), on the 31 calibration photos (learned rounding needs 16). */
static ipuflow_model *quantize_with(const ipuflow_model *model, int bias_type, int learned, int corrected,
                                    char **report)
{
    ipuflow_quant_config *cfg = NULL;
    ipuflow_model *q = NULL;
    int ok = ipuflow_quant_config_create(IPUFLOW_PRESET_A8W8, &cfg) == IPUFLOW_STATUS_OK &&
             (bias_type < 0 || ipuflow_quant_config_set_bias_type(cfg, bias_type) == IPUFLOW_STATUS_OK) &&
             (learned < 0 || ipuflow_quant_config_set_learned_rounding(cfg, learned) == IPUFLOW_STATUS_OK) &&
             (corrected < 0 || ipuflow_quant_config_set_bias_correction(cfg, corrected) == IPUFLOW_STATUS_OK);
    if (ok)
        ipf_quantize_on_photos(model, cfg, &q, report);
    else
        printf("# config: %s\n", ipuflow_last_error());
    ipuflow_quant_config_free(cfg);
    return q;
}

/* How many bias tensors of the report have `qtype` ("int8", "int32"). */
static int count_biases(const char *report, const char *qtype)
{
    int n = 0;
    const char *p = report;
    size_t len = strlen(qtype);
    while ((p = strstr(p, "\"kind\": \"bias\"")) != NULL) {
        const char *t = strstr(p, "\"qtype\": \"");
        if (t == NULL)
            break;
        t += strlen("\"qtype\": \"");
        if (strncmp(t, qtype, len) == 0 && t[len] == '"')
            n++;
        p = t;
    }
    return n;
}

IPF_TEST(bias_type_sets_the_bias_initializers)
{
    ipuflow_model *model = NULL, *q8 = NULL, *q32 = NULL;
    char *r8 = NULL, *r32 = NULL;
    IPF_NEED_BLAZEFACE();
    IPF_REQUIRE(ipuflow_model_load_file(ipf_model_path, &model) == IPUFLOW_STATUS_OK);
    /* Learned rounding and bias correction off: only the bias format differs (and it is quicker). */
    q8 = quantize_with(model, IPUFLOW_BIAS_TYPE_INT8, 0, 0, &r8);
    q32 = quantize_with(model, IPUFLOW_BIAS_TYPE_INT32, 0, 0, &r32);
    IPF_REQUIRE(q8 != NULL && q32 != NULL && r8 != NULL && r32 != NULL);
    /* BlazeFace quantizes 37 Conv biases; every one is INT8 in one model, INT32 in the other. */
    IPF_CHECK_INT(count_biases(r8, "int8"), >=, 30);
    IPF_CHECK_INT(count_biases(r8, "int32"), ==, 0);
    IPF_CHECK_INT(count_biases(r32, "int32"), ==, count_biases(r8, "int8"));
    IPF_CHECK_INT(count_biases(r32, "int8"), ==, 0);
    ipuflow_string_free(r8);
    ipuflow_string_free(r32);
    ipuflow_model_free(q8);
    ipuflow_model_free(q32);
    ipuflow_model_free(model);
}

/* Runs `q` on the CPU on a fixed input; gives the first output's values (malloc'd, *count of them) or NULL. */
static float *run_cpu(const ipuflow_model *q, size_t *count)
{
    static float x[3 * 128 * 128];
    int64_t shape[4] = {1, 3, 128, 128};
    const char *in_names[1] = {"input"};
    const char *out_names[1] = {"regressors"};
    ipuflow_tensor_view in = {IPUFLOW_ELEMENT_TYPE_FLOAT, shape, 4, x, sizeof x};
    ipuflow_session_options *o = NULL;
    ipuflow_session *s = NULL;
    ipuflow_tensor *out = NULL;
    ipuflow_tensor_view v;
    float *values = NULL;
    size_t i;
    for (i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = (float)((int)((i * 31) % 255) - 127) / 128.0f;
    if (ipuflow_session_options_create(&o) == IPUFLOW_STATUS_OK &&
        ipuflow_session_options_set_device(o, IPUFLOW_SESSION_DEVICE_CPU) == IPUFLOW_STATUS_OK &&
        ipuflow_session_create_from_model(NULL, q, o, &s) == IPUFLOW_STATUS_OK &&
        ipuflow_session_run(s, NULL, in_names, &in, 1, out_names, NULL, &out, 1) == IPUFLOW_STATUS_OK &&
        ipuflow_tensor_get_view(out, &v) == IPUFLOW_STATUS_OK && v.element_type == IPUFLOW_ELEMENT_TYPE_FLOAT) {
        *count = v.byte_size / sizeof(float);
        values = (float *)malloc(v.byte_size);
        if (values)
            memcpy(values, v.data, v.byte_size);
    } else {
        printf("# run: %s\n", ipuflow_last_error());
    }
    ipuflow_tensor_free(out);
    ipuflow_session_free(s);
    ipuflow_session_options_free(o);
    return values;
}

/* The largest |a - b| over the outputs of two quantized models on the same input. */
static double output_difference(const ipuflow_model *a, const ipuflow_model *b)
{
    size_t na = 0, nb = 0, i;
    float *ya = run_cpu(a, &na), *yb = run_cpu(b, &nb);
    double d = -1.0;
    if (ya && yb && na == nb && na > 0) {
        d = 0.0;
        for (i = 0; i < na; i++) {
            double e = (double)ya[i] - (double)yb[i];
            e = e < 0 ? -e : e; /* by hand: the tests link no libm */
            if (e > d)
                d = e;
        }
    }
    free(ya);
    free(yb);
    return d;
}

IPF_TEST(learned_rounding_and_bias_correction_change_the_model)
{
    ipuflow_model *model = NULL, *plain = NULL, *learned = NULL, *corrected = NULL;
    char *r_plain = NULL, *r_learned = NULL, *r_corrected = NULL;
    double d;
    IPF_NEED_BLAZEFACE();
    IPF_REQUIRE(ipuflow_model_load_file(ipf_model_path, &model) == IPUFLOW_STATUS_OK);
    plain = quantize_with(model, -1, 0, 0, &r_plain);
    learned = quantize_with(model, -1, 1, 0, &r_learned);
    corrected = quantize_with(model, -1, 0, 1, &r_corrected);
    IPF_REQUIRE(plain && learned && corrected && r_plain && r_learned && r_corrected);
    /* The report says what ran ... */
    IPF_CHECK(strstr(r_plain, "learned rounding:") == NULL && strstr(r_plain, "bias correction:") == NULL);
    IPF_CHECK_CONTAINS(r_learned, "learned rounding:");
    IPF_CHECK(strstr(r_learned, "bias correction:") == NULL);
    IPF_CHECK_CONTAINS(r_corrected, "bias correction:");
    IPF_CHECK(strstr(r_corrected, "learned rounding:") == NULL);
    /* ... and the quantized weights (resp. biases) differ: so do the outputs on one input. */
    d = output_difference(plain, learned);
    printf("# max |output difference|: learned rounding off vs on %g\n", d);
    IPF_CHECK(d > 0.0);
    d = output_difference(plain, corrected);
    printf("# max |output difference|: bias correction off vs on %g\n", d);
    IPF_CHECK(d > 0.0);
    ipuflow_string_free(r_plain);
    ipuflow_string_free(r_learned);
    ipuflow_string_free(r_corrected);
    ipuflow_model_free(plain);
    ipuflow_model_free(learned);
    ipuflow_model_free(corrected);
    ipuflow_model_free(model);
}

int main(void)
{
    ipf_setup();
    IPF_RUN(setter_errors);
    IPF_RUN(bias_type_sets_the_bias_initializers);
    IPF_RUN(learned_rounding_and_bias_correction_change_the_model);
    return ipf_finish();
}
