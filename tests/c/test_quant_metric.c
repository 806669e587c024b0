/*
 * The host's own metric for mixed precision from C (issue 13 item 3): ipuflow_quant_config_set_metric_callback and
 * ipuflow_quant_config_set_output_aware. Every argument error; on the shared BlazeFace calibrated on the shared
 * photos, a callback that fails (its message comes back with IPUFLOW_STATUS_CALLBACK), one that returns NaN, and
 * one that calls back into ipuflow: it runs each candidate in a session of its own on two photos and returns the
 * share of them whose most confident face anchor is the float model's (top-1 agreement), the report then giving
 * the metric it returned.
 */
#include "ipuflow.h"
#include "ipf_test.h"
#include "ipf_fs.h"
#include "ipf_setup.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SIDE 128
#define ANCHORS 896
#define PHOTOS 2

/* What the host keeps: its photos, the float model's answer on each, how it should behave, and its calls. */
typedef struct {
    float pixels[PHOTOS][3 * SIDE * SIDE];
    size_t float_top[PHOTOS];
    int mode; /* 0: agreement, 1: fail with a message, 2: NaN */
    int calls;
} host;

static host the_host;

/* The most confident anchor of `model` on photo `k` into *top; 0 on success. */
static int top_anchor(const ipuflow_model *model, const float *pixels, size_t *top)
{
    int64_t shape[4] = {1, 3, SIDE, SIDE};
    const char *in_names[1] = {"input"};
    const char *out_names[1] = {"classificators"};
    ipuflow_tensor_view in = {IPUFLOW_ELEMENT_TYPE_FLOAT, shape, 4, NULL, sizeof(float) * 3 * SIDE * SIDE};
    ipuflow_session_options *o = NULL;
    ipuflow_session *s = NULL;
    ipuflow_tensor *out = NULL;
    ipuflow_tensor_view v;
    int rc = 1;
    size_t i;
    in.data = (void *)pixels;
    if (ipuflow_session_options_create(&o) == IPUFLOW_STATUS_OK &&
        ipuflow_session_options_set_device(o, IPUFLOW_SESSION_DEVICE_CPU) == IPUFLOW_STATUS_OK &&
        ipuflow_session_create_from_model(NULL, model, o, &s) == IPUFLOW_STATUS_OK &&
        ipuflow_session_run(s, NULL, in_names, &in, 1, out_names, NULL, &out, 1) == IPUFLOW_STATUS_OK &&
        ipuflow_tensor_get_view(out, &v) == IPUFLOW_STATUS_OK && v.byte_size == ANCHORS * sizeof(float)) {
        const float *y = (const float *)v.data;
        *top = 0;
        for (i = 1; i < ANCHORS; i++)
            if (y[i] > y[*top])
                *top = i;
        rc = 0;
    }
    ipuflow_tensor_free(out);
    ipuflow_session_free(s);
    ipuflow_session_options_free(o);
    return rc;
}

/* The metric callback: the host's top-1 agreement, or the failure it was told to give. */
static int32_t host_metric(void *user, const ipuflow_model *candidate, double *metric, char *message,
                           size_t message_size)
{
    host *h = (host *)user;
    size_t k, top = 0, agree = 0;
    h->calls++;
    if (h->mode == 1) {
        snprintf(message, message_size, "the host has no labels for these photos");
        return 7;
    }
    if (h->mode == 2) {
        *metric = NAN;
        return 0;
    }
    for (k = 0; k < PHOTOS; k++) {
        if (top_anchor(candidate, h->pixels[k], &top) != 0) {
            snprintf(message, message_size, "running the candidate: %s", ipuflow_last_error());
            return 1;
        }
        agree += top == h->float_top[k];
    }
    *metric = (double)agree / PHOTOS;
    return 0;
}

IPF_TEST(setter_errors)
{
    ipuflow_quant_config *c = NULL;
    IPF_REQUIRE(ipuflow_quant_config_create(IPUFLOW_PRESET_XINT8, &c) == IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_quant_config_set_metric_callback(NULL, host_metric, NULL, 0.5), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "config");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_metric_callback(c, host_metric, NULL, INFINITY),
                    IPUFLOW_STATUS_INVALID_ARGUMENT, "host metric target");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_metric_callback(c, host_metric, NULL, NAN), IPUFLOW_STATUS_INVALID_ARGUMENT,
                    "host metric target");
    IPF_CHECK_STATUS(ipuflow_quant_config_set_metric_callback(c, host_metric, &the_host, 0.5), IPUFLOW_STATUS_OK);
    /* NULL clears it; the target is then ignored. */
    IPF_CHECK_STATUS(ipuflow_quant_config_set_metric_callback(c, NULL, NULL, NAN), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_quant_config_set_output_aware(NULL, 1), IPUFLOW_STATUS_NULL_ARGUMENT, "config");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_output_aware(c, 2), IPUFLOW_STATUS_INVALID_ENUM, "value");
    IPF_CHECK_STATUS(ipuflow_quant_config_set_output_aware(c, 0), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_output_aware(c, 1), IPUFLOW_STATUS_OK);
    ipuflow_quant_config_free(c);
}

/* XINT8 with the host metric in `mode` and `target` (bias correction and learned rounding off: they are not what
 * is tested, and this runs under ASan). Returns the status; *report the JSON on success. */
static ipuflow_status quantize_with_host(const ipuflow_model *model, int mode, double target, char **report)
{
    ipuflow_quant_config *cfg = NULL;
    ipuflow_status st = ipuflow_quant_config_create(IPUFLOW_PRESET_XINT8, &cfg);
    the_host.mode = mode;
    the_host.calls = 0;
    if (st == IPUFLOW_STATUS_OK)
        st = ipuflow_quant_config_set_metric_callback(cfg, host_metric, &the_host, target);
    if (st == IPUFLOW_STATUS_OK)
        st = ipuflow_quant_config_set_learned_rounding(cfg, 0);
    if (st == IPUFLOW_STATUS_OK)
        st = ipuflow_quant_config_set_bias_correction(cfg, 0);
    if (st == IPUFLOW_STATUS_OK)
        st = ipf_quantize_on_photos(model, cfg, NULL, report);
    ipuflow_quant_config_free(cfg);
    return st;
}

IPF_TEST(callback_failures_stop_the_quantization)
{
    ipuflow_model *model = NULL;
    IPF_NEED_BLAZEFACE();
    IPF_REQUIRE(ipuflow_model_load_file(ipf_model_path, &model) == IPUFLOW_STATUS_OK);
    /* The host is asked about the all-quantized model first, before the sensitivity ranking: one call each. */
    IPF_CHECK_ERROR(quantize_with_host(model, 1, 0.5, NULL), IPUFLOW_STATUS_CALLBACK,
                    "the host has no labels for these photos (returned 7)");
    IPF_CHECK_CONTAINS(ipuflow_last_error(), "all-quantized model");
    IPF_CHECK(the_host.calls == 1);
    IPF_CHECK_ERROR(quantize_with_host(model, 2, 0.5, NULL), IPUFLOW_STATUS_CALLBACK, "returned NaN");
    IPF_CHECK(the_host.calls == 1);
    ipuflow_model_free(model);
}

IPF_TEST(a_callback_that_runs_the_candidate)
{
    ipuflow_model *model = NULL;
    ipuflow_image_preprocess pre;
    static const char *photos[PHOTOS] = {"opencv_baboon.jpg", "opencv_HappyFish.jpg"};
    char path[4096], *report = NULL;
    size_t k;
    IPF_NEED_BLAZEFACE();
    IPF_REQUIRE(ipuflow_model_load_file(ipf_model_path, &model) == IPUFLOW_STATUS_OK);
    ipuflow_image_preprocess_init(&pre);
    pre.height = pre.width = SIDE;
    for (k = 0; k < PHOTOS; k++) {
        ipf_join(path, sizeof path, ipf_images_dir, photos[k]);
        IPF_REQUIRE(ipuflow_image_load(path, &pre, 0, the_host.pixels[k], 3 * SIDE * SIDE) == IPUFLOW_STATUS_OK);
        IPF_REQUIRE(top_anchor(model, the_host.pixels[k], &the_host.float_top[k]) == 0);
    }
    /* Agreement is at least 0: met by the all-quantized model, so one call and no step. */
    IPF_CHECK_STATUS(quantize_with_host(model, 0, 0.0, &report), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(report != NULL);
    IPF_CHECK(the_host.calls == 1);
    IPF_CHECK_CONTAINS(report, "\"metric_calls\": 1");
    IPF_CHECK_CONTAINS(report, "\"target_metric\": 0.0");
    IPF_CHECK_CONTAINS(report, "\"baseline_metric\"");
    IPF_CHECK_CONTAINS(report, "\"met\": true");
    IPF_CHECK_CONTAINS(report, "\"steps\": []");
    ipuflow_string_free(report);
    ipuflow_model_free(model);
}

int main(void)
{
    ipf_setup();
    IPF_RUN(setter_errors);
    IPF_RUN(callback_failures_stop_the_quantization);
    IPF_RUN(a_callback_that_runs_the_candidate);
    return ipf_finish();
}
