/*
 * Quantization from C (ipuflow_quant_config, ipuflow_calib_data, ipuflow_calib_batch, ipuflow_quantize,
 * ipuflow_image_load): every error path (NULL arguments, invalid enum values, out-of-domain values, missing or empty
 * directories, mismatched samples, a failing callback, cancellation) with output parameters pre-filled with
 * sentinels that must survive failures, and one complete quantization through the pull callback.
 *
 * The quantize tests need ONNX Runtime ($IPUFLOW_TEST_ORT_LIBRARY) and ../shared ($IPUFLOW_TEST_SHARED_DIR, for
 * blazeface-short-range.onnx, input "input" float [1,3,128,128]); they are skipped with the reason otherwise.
 */
#include "ipuflow.h"
#include "ipf_test.h"
#include "ipf_fs.h"
#include "ipf_setup.h"

#include <math.h>
#include <stdint.h>

#define SENTINEL ((void *)(uintptr_t)0x5e5e5e5e)

static const char *tmp;

/* -------------------------------------------------------------------------------------------------------------- */
/* Configuration */

IPF_TEST(config_errors)
{
    ipuflow_quant_config *c = (ipuflow_quant_config *)SENTINEL;
    IPF_CHECK_ERROR(ipuflow_quant_config_create(IPUFLOW_PRESET_XINT8, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_ERROR(ipuflow_quant_config_create(7, &c), IPUFLOW_STATUS_INVALID_ENUM, "preset");
    IPF_CHECK_ERROR(ipuflow_quant_config_create(-1, &c), IPUFLOW_STATUS_INVALID_ENUM, "-1");
    IPF_CHECK(c == (ipuflow_quant_config *)SENTINEL);
    IPF_CHECK_STATUS(ipuflow_quant_config_create(IPUFLOW_PRESET_CPU, &c), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(c != NULL && c != (ipuflow_quant_config *)SENTINEL);

    IPF_CHECK_ERROR(ipuflow_quant_config_set_activation_type(NULL, IPUFLOW_QUANT_TYPE_UINT8),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "config");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_activation_type(c, IPUFLOW_ELEMENT_TYPE_FLOAT), IPUFLOW_STATUS_INVALID_ENUM,
                    "qtype");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_weight_type(c, 99), IPUFLOW_STATUS_INVALID_ENUM, "99");
    IPF_CHECK_STATUS(ipuflow_quant_config_set_activation_type(c, IPUFLOW_QUANT_TYPE_UINT16), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_weight_type(c, IPUFLOW_QUANT_TYPE_INT8), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_quant_config_set_per_channel(c, 2), IPUFLOW_STATUS_INVALID_ENUM, "value");
    IPF_CHECK_STATUS(ipuflow_quant_config_set_per_channel(c, 1), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_activation_symmetric(c, 0), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_weight_symmetric(c, 1), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_power_of_two(c, 0), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_concat_shared_scale(c, 1), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_cpu_fusion(c, 1), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_quant_config_set_moving_average(c, 1.5f), IPUFLOW_STATUS_INVALID_ARGUMENT, "1.5");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_moving_average(c, -0.1f), IPUFLOW_STATUS_INVALID_ARGUMENT, "moving");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_moving_average(c, (float)NAN), IPUFLOW_STATUS_INVALID_ARGUMENT, "moving");
    IPF_CHECK_STATUS(ipuflow_quant_config_set_moving_average(c, 0.01f), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_moving_average(c, 0.0f), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_quant_config_set_calib_method(NULL, IPUFLOW_CALIB_METHOD_MINMSE, 0.0f),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "config");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_calib_method(c, 5, 0.0f), IPUFLOW_STATUS_INVALID_ENUM, "method");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_calib_method(c, -1, 0.0f), IPUFLOW_STATUS_INVALID_ENUM, "method");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_calib_method(c, IPUFLOW_CALIB_METHOD_PERCENTILE, 0.0f),
                    IPUFLOW_STATUS_INVALID_ARGUMENT, "percentile");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_calib_method(c, IPUFLOW_CALIB_METHOD_PERCENTILE, 100.5f),
                    IPUFLOW_STATUS_INVALID_ARGUMENT, "percentile");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_calib_method(c, IPUFLOW_CALIB_METHOD_PERCENTILE, (float)NAN),
                    IPUFLOW_STATUS_INVALID_ARGUMENT, "percentile");
    IPF_CHECK_STATUS(ipuflow_quant_config_set_calib_method(c, IPUFLOW_CALIB_METHOD_PERCENTILE, 99.99f), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_calib_method(c, IPUFLOW_CALIB_METHOD_ENTROPY, 0.0f), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_calib_method(c, IPUFLOW_CALIB_METHOD_NONOVERFLOW, 0.0f), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_calib_method(c, IPUFLOW_CALIB_METHOD_MINMSE, 0.0f), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_calib_method(c, IPUFLOW_CALIB_METHOD_MINMAX, 0.0f), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_quant_config_set_calib_cache(NULL, "x.calib"), IPUFLOW_STATUS_NULL_ARGUMENT, "config");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_calib_cache(c, ""), IPUFLOW_STATUS_INVALID_ARGUMENT, "path");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_calib_cache(c, "\xff\xfe"), IPUFLOW_STATUS_INVALID_UTF8, "path");
    IPF_CHECK_STATUS(ipuflow_quant_config_set_calib_cache(c, "x.calib"), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_calib_cache(c, NULL), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_quant_config_exclude_node(c, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "node_name");
    IPF_CHECK_ERROR(ipuflow_quant_config_exclude_node(c, ""), IPUFLOW_STATUS_INVALID_ARGUMENT, "node_name");
    IPF_CHECK_ERROR(ipuflow_quant_config_exclude_node(c, "\xff\xfe"), IPUFLOW_STATUS_INVALID_UTF8, "node_name");
    IPF_CHECK_STATUS(ipuflow_quant_config_exclude_node(c, "conv_7"), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_quant_config_exclude_op_type(c, ""), IPUFLOW_STATUS_INVALID_ARGUMENT, "op_type");
    IPF_CHECK_STATUS(ipuflow_quant_config_exclude_op_type(c, "Softmax"), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_quant_config_set_tensor_type(c, "t", 1), IPUFLOW_STATUS_INVALID_ENUM, "qtype");
    IPF_CHECK_STATUS(ipuflow_quant_config_set_tensor_type(c, "t", IPUFLOW_QUANT_TYPE_INT16), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_quant_config_set_tensor_range(c, "t", 1.0f, -1.0f), IPUFLOW_STATUS_INVALID_ARGUMENT, "'t'");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_tensor_range(c, "t", (float)NAN, 1.0f), IPUFLOW_STATUS_INVALID_ARGUMENT,
                    "finite");
    IPF_CHECK_STATUS(ipuflow_quant_config_set_tensor_range(c, "t", -1.0f, 1.0f), IPUFLOW_STATUS_OK);
    ipuflow_quant_config_free(c);
    ipuflow_quant_config_free(NULL);
}

/* -------------------------------------------------------------------------------------------------------------- */
/* Calibration data */

IPF_TEST(calib_data_errors)
{
    ipuflow_calib_data *d = (ipuflow_calib_data *)SENTINEL;
    const char *empty = ipf_path(tmp, "empty");
    char missing[4096];
    ipf_join(missing, sizeof missing, tmp, "missing");
    IPF_REQUIRE(ipf_mkdir(empty) == 0);

    IPF_CHECK_ERROR(ipuflow_calib_data_create(NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_ERROR(ipuflow_calib_data_create_from_npy_dir(NULL, &d), IPUFLOW_STATUS_NULL_ARGUMENT, "dir");
    IPF_CHECK_ERROR(ipuflow_calib_data_create_from_npy_dir(missing, &d), IPUFLOW_STATUS_FILE_NOT_FOUND, "missing");
    IPF_CHECK_ERROR(ipuflow_calib_data_create_from_npy_dir(empty, &d), IPUFLOW_STATUS_CALIBRATION, "empty");
    IPF_CHECK_ERROR(ipuflow_calib_data_create_from_image_dir(missing, NULL, &d), IPUFLOW_STATUS_FILE_NOT_FOUND,
                    "missing");
    IPF_CHECK_ERROR(ipuflow_calib_data_create_from_image_dir(empty, NULL, &d), IPUFLOW_STATUS_CALIBRATION,
                    "no calibration data");
    IPF_CHECK_ERROR(ipuflow_calib_data_create_from_callback(NULL, NULL, -1, &d), IPUFLOW_STATUS_NULL_ARGUMENT, "next");
    IPF_CHECK(d == (ipuflow_calib_data *)SENTINEL);

    {
        ipuflow_image_preprocess pre;
        IPF_CHECK_ERROR(ipuflow_image_preprocess_init(NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "pre");
        IPF_CHECK_STATUS(ipuflow_image_preprocess_init(&pre), IPUFLOW_STATUS_OK);
        IPF_CHECK(pre.mean[0] == 127.0f && pre.std[2] == 128.0f && pre.resize_shorter == -1);
        pre.layout = 5;
        IPF_CHECK_ERROR(ipuflow_calib_data_create_from_image_dir(empty, &pre, &d), IPUFLOW_STATUS_INVALID_ENUM,
                        "layout");
        pre.layout = IPUFLOW_LAYOUT_NHWC;
        pre.std[1] = 0.0f;
        IPF_CHECK_ERROR(ipuflow_calib_data_create_from_image_dir(empty, &pre, &d), IPUFLOW_STATUS_INVALID_ARGUMENT,
                        "std");
        pre.std[1] = 1.0f;
        pre.height = 10;
        IPF_CHECK_ERROR(ipuflow_calib_data_create_from_image_dir(empty, &pre, &d), IPUFLOW_STATUS_INVALID_ARGUMENT,
                        "width");
        IPF_CHECK(d == (ipuflow_calib_data *)SENTINEL);
    }

    IPF_CHECK_STATUS(ipuflow_calib_data_create(&d), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(d != (ipuflow_calib_data *)SENTINEL);
    {
        float x[6] = {0};
        int64_t shape[2] = {2, 3};
        const char *names[1] = {"input"};
        ipuflow_tensor_view v = {IPUFLOW_ELEMENT_TYPE_FLOAT, shape, 2, x, sizeof x};
        IPF_CHECK_ERROR(ipuflow_calib_data_add_sample(NULL, names, &v, 1), IPUFLOW_STATUS_NULL_ARGUMENT, "data");
        IPF_CHECK_ERROR(ipuflow_calib_data_add_sample(d, NULL, &v, 1), IPUFLOW_STATUS_NULL_ARGUMENT, "names");
        IPF_CHECK_ERROR(ipuflow_calib_data_add_sample(d, names, NULL, 1), IPUFLOW_STATUS_NULL_ARGUMENT, "tensors");
        IPF_CHECK_ERROR(ipuflow_calib_data_add_sample(d, names, &v, 0), IPUFLOW_STATUS_INVALID_ARGUMENT, "count");
        v.byte_size = 20;
        IPF_CHECK_ERROR(ipuflow_calib_data_add_sample(d, names, &v, 1), IPUFLOW_STATUS_TENSOR_MISMATCH, "'input'");
        v.byte_size = sizeof x;
        v.element_type = 1234;
        IPF_CHECK_ERROR(ipuflow_calib_data_add_sample(d, names, &v, 1), IPUFLOW_STATUS_INVALID_ENUM, "element_type");
        v.element_type = IPUFLOW_ELEMENT_TYPE_FLOAT;
        v.shape = NULL;
        IPF_CHECK_ERROR(ipuflow_calib_data_add_sample(d, names, &v, 1), IPUFLOW_STATUS_NULL_ARGUMENT, "shape");
        /* A rank far larger than the shape array: refused before the array is read (it was read past its end). */
        v.shape = shape;
        v.rank = (size_t)1 << 30;
        IPF_CHECK_ERROR(ipuflow_calib_data_add_sample(d, names, &v, 1), IPUFLOW_STATUS_LIMIT_EXCEEDED, "rank");
        v.rank = 2;
        IPF_CHECK_STATUS(ipuflow_calib_data_add_sample(d, names, &v, 1), IPUFLOW_STATUS_OK);
    }
    ipuflow_calib_data_free(d);
    ipuflow_calib_data_free(NULL);
}

IPF_TEST(image_load_errors)
{
    ipuflow_image_preprocess pre;
    float out[3 * 8 * 8];
    const char *png = ipf_path(tmp, "not-an-image.png");
    IPF_REQUIRE(ipf_write_file(png, "hello", 5) == 0);
    ipuflow_image_preprocess_init(&pre);
    IPF_CHECK_ERROR(ipuflow_image_load(png, &pre, 0, out, 3 * 8 * 8), IPUFLOW_STATUS_INVALID_ARGUMENT, "height");
    pre.height = pre.width = 8;
    IPF_CHECK_ERROR(ipuflow_image_load(png, &pre, 0, out, 10), IPUFLOW_STATUS_BUFFER_TOO_SMALL, "192");
    IPF_CHECK_ERROR(ipuflow_image_load(png, &pre, 2, out, 3 * 8 * 8), IPUFLOW_STATUS_INVALID_ENUM, "flip");
    IPF_CHECK_ERROR(ipuflow_image_load(png, &pre, 0, out, 3 * 8 * 8), IPUFLOW_STATUS_FILE_READ, "not-an-image.png");
    IPF_CHECK_ERROR(ipuflow_image_load(ipf_path(tmp, "nope.jpg"), &pre, 0, out, 3 * 8 * 8),
                    IPUFLOW_STATUS_FILE_NOT_FOUND, "nope.jpg");
    IPF_CHECK_ERROR(ipuflow_image_load(png, NULL, 0, out, 3 * 8 * 8), IPUFLOW_STATUS_NULL_ARGUMENT, "pre");
    IPF_CHECK_ERROR(ipuflow_image_load(png, &pre, 0, NULL, 3 * 8 * 8), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    if (ipf_images_dir[0]) {
        char img[4096];
        ipf_join(img, sizeof img, ipf_images_dir, "opencv_baboon.jpg");
        if (ipf_is_file(img)) {
            IPF_CHECK_STATUS(ipuflow_image_load(img, &pre, 1, out, 3 * 8 * 8), IPUFLOW_STATUS_OK);
            IPF_CHECK(out[0] >= -1.0f && out[0] <= 1.0f);
        }
    }
}

/* -------------------------------------------------------------------------------------------------------------- */
/* ipuflow_quantize */

/* The pull callback's state: how many batches to give, where to fail, what name to use. */
typedef struct {
    int batches;
    int fail_at;
    const char *name;
    int calls;
    float data[3 * 128 * 128];
    int64_t shape[4];
} feeder;

static int32_t feed(void *user, ipuflow_calib_batch *batch)
{
    feeder *f = (feeder *)user;
    size_t n = 0, i;
    const char *first = NULL;
    ipuflow_tensor_view v;
    int k = f->calls++;
    if (ipuflow_calib_batch_input_count(batch, &n) != IPUFLOW_STATUS_OK || n != 1)
        return -2;
    if (ipuflow_calib_batch_input_name(batch, 0, &first) != IPUFLOW_STATUS_OK || strcmp(first, "input") != 0)
        return -3;
    if (ipuflow_calib_batch_input_name(batch, 1, &first) != IPUFLOW_STATUS_OUT_OF_RANGE)
        return -4;
    if (k == f->fail_at) {
        ipuflow_calib_batch_set_error(batch, "camera unplugged");
        return -1;
    }
    if (k >= f->batches)
        return IPUFLOW_CALIB_DONE;
    for (i = 0; i < sizeof f->data / sizeof f->data[0]; i++)
        f->data[i] = (float)((int)((i * 7 + (size_t)k * 13) % 255) - 127) / 128.0f;
    f->shape[0] = 1;
    f->shape[1] = 3;
    f->shape[2] = 128;
    f->shape[3] = 128;
    v.element_type = IPUFLOW_ELEMENT_TYPE_FLOAT;
    v.shape = f->shape;
    v.rank = 4;
    v.data = f->data;
    v.byte_size = sizeof f->data;
    if (ipuflow_calib_batch_set_input(batch, f->name, &v) != IPUFLOW_STATUS_OK)
        return -5;
    return IPUFLOW_CALIB_BATCH;
}

static int progress_calls;
static int32_t cancel_at_calibrate(void *user, int32_t stage, size_t done, int64_t total)
{
    (void)user;
    (void)total;
    progress_calls++;
    return stage == IPUFLOW_QUANT_STAGE_CALIBRATE && done == 1;
}

static int32_t count_progress(void *user, int32_t stage, size_t done, int64_t total)
{
    int *last_stage = (int *)user;
    (void)done;
    (void)total;
    *last_stage = stage;
    progress_calls++;
    return 0;
}

IPF_TEST(quantize_errors)
{
    ipuflow_model *model = NULL, *out = (ipuflow_model *)SENTINEL;
    ipuflow_quant_config *cfg = NULL;
    ipuflow_calib_data *d = NULL;
    char *report = (char *)SENTINEL;
    static feeder f;
    int before;
    IPF_NEED_BLAZEFACE();
    IPF_REQUIRE(ipuflow_model_load_file(ipf_model_path, &model) == IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_quant_config_create(IPUFLOW_PRESET_A8W8, &cfg) == IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_calib_data_create(&d) == IPUFLOW_STATUS_OK);
    before = ipf_count_entries(tmp);

    IPF_CHECK_ERROR(ipuflow_quantize(NULL, cfg, d, NULL, NULL, &out, &report), IPUFLOW_STATUS_NULL_ARGUMENT, "model");
    IPF_CHECK_ERROR(ipuflow_quantize(model, NULL, d, NULL, NULL, &out, &report), IPUFLOW_STATUS_NULL_ARGUMENT, "config");
    IPF_CHECK_ERROR(ipuflow_quantize(model, cfg, NULL, NULL, NULL, &out, &report), IPUFLOW_STATUS_NULL_ARGUMENT, "data");
    IPF_CHECK_ERROR(ipuflow_quantize(model, cfg, d, NULL, NULL, NULL, &report), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "out_model");
    /* No sample at all. */
    IPF_CHECK_ERROR(ipuflow_quantize(model, cfg, d, NULL, NULL, &out, &report), IPUFLOW_STATUS_CALIBRATION,
                    "no calibration data");
    ipuflow_calib_data_free(d);

    /* A sample for an input the model does not have: the message names both. */
    memset(&f, 0, sizeof f);
    f.batches = 2;
    f.fail_at = -1;
    f.name = "image";
    IPF_REQUIRE(ipuflow_calib_data_create_from_callback(feed, &f, 2, &d) == IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_quantize(model, cfg, d, NULL, NULL, &out, &report), IPUFLOW_STATUS_TENSOR_MISMATCH,
                    "'image'");
    IPF_CHECK_CONTAINS(ipuflow_last_error(), "'input'");

    /* The callback fails at its second batch: its message comes back. */
    f.calls = 0;
    f.name = "input";
    f.fail_at = 1;
    IPF_CHECK_ERROR(ipuflow_quantize(model, cfg, d, NULL, NULL, &out, &report), IPUFLOW_STATUS_CALLBACK,
                    "camera unplugged");

    /* Cancelled by the progress callback after the first batch. */
    f.calls = 0;
    f.fail_at = -1;
    progress_calls = 0;
    IPF_CHECK_STATUS(ipuflow_quantize(model, cfg, d, cancel_at_calibrate, NULL, &out, &report),
                     IPUFLOW_STATUS_CANCELLED);
    IPF_CHECK(progress_calls >= 3);
    IPF_CHECK_INT(f.calls, ==, 1);

    /* Already quantized and wrong-type errors come from the complete run below. */
    IPF_CHECK(out == (ipuflow_model *)SENTINEL);
    IPF_CHECK(report == (char *)SENTINEL);
    IPF_CHECK_INT(ipf_count_entries(tmp), ==, before);
    ipuflow_calib_data_free(d);
    ipuflow_quant_config_free(cfg);
    ipuflow_model_free(model);
}

IPF_TEST(quantize_ok_then_refuse_quantized)
{
    ipuflow_model *model = NULL, *q = NULL, *q2 = (ipuflow_model *)SENTINEL;
    ipuflow_quant_config *cfg = NULL;
    ipuflow_calib_data *d = NULL;
    char *report = NULL;
    int last_stage = -1;
    static feeder f;
    IPF_NEED_BLAZEFACE();
    IPF_REQUIRE(ipuflow_model_load_file(ipf_model_path, &model) == IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_quant_config_create(IPUFLOW_PRESET_CPU, &cfg) == IPUFLOW_STATUS_OK);
    memset(&f, 0, sizeof f);
    f.batches = 2;
    f.fail_at = -1;
    f.name = "input";
    IPF_REQUIRE(ipuflow_calib_data_create_from_callback(feed, &f, 2, &d) == IPUFLOW_STATUS_OK);
    progress_calls = 0;
    IPF_CHECK_STATUS(ipuflow_quantize(model, cfg, d, count_progress, &last_stage, &q, &report), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(f.calls, ==, 3); /* two batches, then DONE */
    IPF_CHECK_INT(last_stage, ==, IPUFLOW_QUANT_STAGE_VERIFY);
    IPF_CHECK(progress_calls >= 8);
    IPF_REQUIRE(q != NULL && report != NULL);
    IPF_CHECK_CONTAINS(report, "\"preset\": \"CPU\"");
    IPF_CHECK_STATUS(ipuflow_model_save(q, ipf_path(tmp, "q.onnx")), IPUFLOW_STATUS_OK);
    IPF_CHECK(ipf_is_file(ipf_path(tmp, "q.onnx")));
    ipuflow_string_free(report);
    report = (char *)SENTINEL;

    /* The result is quantized: quantizing it again is refused, naming a node. */
    f.calls = 0;
    IPF_CHECK_ERROR(ipuflow_quantize(q, cfg, d, NULL, NULL, &q2, &report), IPUFLOW_STATUS_UNSUPPORTED,
                    "already quantized");
    IPF_CHECK(q2 == (ipuflow_model *)SENTINEL && report == (char *)SENTINEL);
    ipuflow_model_free(q);
    ipuflow_calib_data_free(d);

    /* In-memory samples of the wrong type: the message names the tensor and both types. */
    IPF_REQUIRE(ipuflow_calib_data_create(&d) == IPUFLOW_STATUS_OK);
    {
        static uint8_t bytes[3 * 128 * 128];
        int64_t shape[4] = {1, 3, 128, 128};
        const char *names[1] = {"input"};
        ipuflow_tensor_view v = {IPUFLOW_ELEMENT_TYPE_UINT8, shape, 4, bytes, sizeof bytes};
        IPF_REQUIRE(ipuflow_calib_data_add_sample(d, names, &v, 1) == IPUFLOW_STATUS_OK);
        IPF_CHECK_ERROR(ipuflow_quantize(model, cfg, d, NULL, NULL, &q2, NULL), IPUFLOW_STATUS_TENSOR_MISMATCH,
                        "uint8");
        IPF_CHECK_CONTAINS(ipuflow_last_error(), "float");
        IPF_CHECK(q2 == (ipuflow_model *)SENTINEL);
    }
    ipuflow_calib_data_free(d);

    /* Calibration data without a single finite value: an error naming the input (it gave a float model). */
    IPF_REQUIRE(ipuflow_calib_data_create(&d) == IPUFLOW_STATUS_OK);
    {
        static float nan_data[3 * 128 * 128];
        int64_t shape[4] = {1, 3, 128, 128};
        const char *names[1] = {"input"};
        ipuflow_tensor_view v = {IPUFLOW_ELEMENT_TYPE_FLOAT, shape, 4, nan_data, sizeof nan_data};
        size_t i;
        for (i = 0; i < sizeof nan_data / sizeof nan_data[0]; i++)
            nan_data[i] = NAN;
        IPF_REQUIRE(ipuflow_calib_data_add_sample(d, names, &v, 1) == IPUFLOW_STATUS_OK);
        IPF_CHECK_ERROR(ipuflow_quantize(model, cfg, d, NULL, NULL, &q2, NULL), IPUFLOW_STATUS_NON_FINITE, "'input'");
        IPF_CHECK(q2 == (ipuflow_model *)SENTINEL);
    }
    ipuflow_calib_data_free(d);

    /* Every op type excluded: nothing would be quantized, which is an error giving the reason. */
    {
        ipuflow_quant_config *none = NULL;
        size_t n_ops = 0, i, count;
        const char *op;
        IPF_REQUIRE(ipuflow_quant_config_create(IPUFLOW_PRESET_XINT8, &none) == IPUFLOW_STATUS_OK);
        IPF_REQUIRE(ipuflow_model_get_counts(model, NULL, NULL, NULL, NULL, NULL, NULL, &n_ops) == IPUFLOW_STATUS_OK);
        for (i = 0; i < n_ops; i++) {
            IPF_REQUIRE(ipuflow_model_get_op_type(model, i, &op, &count) == IPUFLOW_STATUS_OK);
            IPF_REQUIRE(ipuflow_quant_config_exclude_op_type(none, op) == IPUFLOW_STATUS_OK);
        }
        memset(&f, 0, sizeof f);
        f.batches = 1;
        f.fail_at = -1;
        f.name = "input";
        IPF_REQUIRE(ipuflow_calib_data_create_from_callback(feed, &f, 1, &d) == IPUFLOW_STATUS_OK);
        IPF_CHECK_ERROR(ipuflow_quantize(model, none, d, NULL, NULL, &q2, NULL), IPUFLOW_STATUS_NOTHING_QUANTIZED,
                        "excluded");
        IPF_CHECK(q2 == (ipuflow_model *)SENTINEL);
        ipuflow_calib_data_free(d);
        ipuflow_quant_config_free(none);
    }
    ipuflow_quant_config_free(cfg);
    ipuflow_model_free(model);
}

int main(void)
{
    ipf_setup();
    tmp = ipf_mkdtemp("quantize");
    if (!tmp) {
        printf("Bail out! cannot create a temporary directory\n");
        return 1;
    }
    IPF_RUN(config_errors);
    IPF_RUN(calib_data_errors);
    IPF_RUN(image_load_errors);
    IPF_RUN(quantize_errors);
    IPF_RUN(quantize_ok_then_refuse_quantized);
    ipf_rmtree(tmp);
    return ipf_finish();
}
