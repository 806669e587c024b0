/*
 * The 1.0 naming of the C ABI: the new names (NPU, get_, _to_json) answer exactly as the 0.1 names they replace,
 * which stay exported as aliases; the _w (UTF-16 path) twins of the path functions added for 1.0 behave as their
 * UTF-8 originals, errors included; and the session-options load-cancel calls (see test_session_cancel.c for a
 * creation cancelled from another thread). Paths here are ASCII, so widening them byte by byte is exact.
 */
#include "ipuflow.h"
#include "ipf_test.h"
#include "ipf_fs.h"
#include "test_models.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SENTINEL ((void *)(uintptr_t)0x5e5e5e5e)

static const char *tmp;
static int have_ort;

/* An ASCII path as a NUL-terminated UTF-16 string, in one of 8 rotating buffers. */
static const uint16_t *wide(const char *s)
{
    static uint16_t ring[8][1024];
    static unsigned next;
    uint16_t *w = ring[next++ % 8];
    size_t i;
    for (i = 0; s[i] && i + 1 < 1024; i++)
        w[i] = (unsigned char)s[i];
    w[i] = 0;
    return w;
}

static const uint16_t lone_surrogate[] = {0x61, 0xD800, 0x62, 0};

IPF_TEST(npu_device_spelling)
{
    ipuflow_session_options *o = NULL;
    IPF_CHECK_INT(IPUFLOW_SESSION_DEVICE_NPU, ==, IPUFLOW_SESSION_DEVICE_IPU);
    IPF_CHECK_INT(IPUFLOW_SESSION_DEVICE_NPU, ==, 1);
    IPF_CHECK_STATUS(ipuflow_session_options_create(&o), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(o != NULL);
    IPF_CHECK_STATUS(ipuflow_session_options_set_device(o, IPUFLOW_SESSION_DEVICE_NPU), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_set_device(o, IPUFLOW_SESSION_DEVICE_IPU), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_session_options_set_device(o, 3), IPUFLOW_STATUS_INVALID_ENUM,
                    "IPUFLOW_SESSION_DEVICE_NPU");
    /* The 0.1 flag statuses are kept: session-option flags INVALID_ARGUMENT, quantization flags INVALID_ENUM. */
    IPF_CHECK_ERROR(ipuflow_session_options_set_deterministic(o, 2), IPUFLOW_STATUS_INVALID_ARGUMENT, "enable");
    ipuflow_session_options_free(o);
}

IPF_TEST(load_cancel_calls)
{
    ipuflow_session_options *o = NULL;
    int32_t c = 7;
    IPF_CHECK_ERROR(ipuflow_session_options_cancel_load(NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "options");
    IPF_CHECK_ERROR(ipuflow_session_options_reset_load_cancel(NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "options");
    IPF_CHECK_ERROR(ipuflow_session_options_get_load_cancelled(NULL, &c), IPUFLOW_STATUS_NULL_ARGUMENT, "options");
    IPF_CHECK_INT(c, ==, 7);
    IPF_CHECK_STATUS(ipuflow_session_options_create(&o), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(o != NULL);
    IPF_CHECK_ERROR(ipuflow_session_options_get_load_cancelled(o, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_STATUS(ipuflow_session_options_get_load_cancelled(o, &c), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(c, ==, 0);
    IPF_CHECK_STATUS(ipuflow_session_options_cancel_load(o), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_cancel_load(o), IPUFLOW_STATUS_OK); /* idempotent */
    IPF_CHECK_STATUS(ipuflow_session_options_get_load_cancelled(o, &c), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(c, ==, 1);
    IPF_CHECK_STATUS(ipuflow_session_options_reset_load_cancel(o), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_get_load_cancelled(o, &c), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(c, ==, 0);
    ipuflow_session_options_free(o);
}

IPF_TEST(model_names_and_wide_twins)
{
    ipuflow_model *m = NULL, *m2 = (ipuflow_model *)SENTINEL;
    char *a = NULL, *b = NULL;
    char path[1024], data[1024];
    unsigned char *bytes;
    size_t len = 0;
    ipf_join(path, sizeof path, tmp, "ext.onnx");
    ipf_join(data, sizeof data, tmp, "ext.onnx.data");

    IPF_CHECK_STATUS(ipuflow_model_load_bytes_w(ipf_model_weights, sizeof ipf_model_weights, NULL, &m),
                     IPUFLOW_STATUS_OK);
    IPF_REQUIRE(m != NULL);
    IPF_CHECK_STATUS(ipuflow_model_to_json(m, &a), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_model_summary_json(m, &b), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(a != NULL && b != NULL);
    IPF_CHECK_STR(a, b);
    ipuflow_string_free(a);
    ipuflow_string_free(b);
    IPF_CHECK_ERROR(ipuflow_model_to_json(NULL, &a), IPUFLOW_STATUS_NULL_ARGUMENT, "model");

    /* Saved through the UTF-16 twin with every initializer external, read back through the UTF-8 calls. */
    IPF_CHECK_ERROR(ipuflow_model_save_with_external_data_w(m, lone_surrogate, wide("ext.onnx.data"), 0),
                    IPUFLOW_STATUS_INVALID_UTF8, "path");
    IPF_CHECK_ERROR(ipuflow_model_save_with_external_data_w(m, wide(path), NULL, 0), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "data_location");
    IPF_CHECK_ERROR(ipuflow_model_save_with_external_data_w(m, wide(path), wide("../x.data"), 0),
                    IPUFLOW_STATUS_PATH_REFUSED, "..");
    IPF_CHECK_STATUS(ipuflow_model_save_with_external_data_w(m, wide(path), wide("ext.onnx.data"), 0),
                     IPUFLOW_STATUS_OK);
    IPF_CHECK(ipf_is_file(path));
    IPF_CHECK(ipf_is_file(data));
    bytes = ipf_read_file(path, &len);
    IPF_REQUIRE(bytes != NULL);
    /* Without a base directory the external data cannot be found; with the wide one it is. */
    IPF_CHECK_STATUS(ipuflow_model_load_bytes_w(bytes, len, NULL, &m2), IPUFLOW_STATUS_EXTERNAL_DATA);
    IPF_CHECK(m2 == (ipuflow_model *)SENTINEL);
    IPF_CHECK_ERROR(ipuflow_model_load_bytes_w(bytes, len, lone_surrogate, &m2), IPUFLOW_STATUS_INVALID_UTF8,
                    "base_dir");
    IPF_CHECK_STATUS(ipuflow_model_load_bytes_w(bytes, len, wide(tmp), &m2), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(m2 != (ipuflow_model *)SENTINEL && m2 != NULL);
    {
        uint64_t b1 = 0, b2 = 1;
        IPF_CHECK_STATUS(ipuflow_model_get_counts(m, NULL, NULL, &b1, NULL, NULL, NULL, NULL), IPUFLOW_STATUS_OK);
        IPF_CHECK_STATUS(ipuflow_model_get_counts(m2, NULL, NULL, &b2, NULL, NULL, NULL, NULL), IPUFLOW_STATUS_OK);
        IPF_CHECK_INT(b1, ==, b2);
        IPF_CHECK_INT(b1, >, 0);
    }
    free(bytes);
    ipuflow_model_free(m2);
    ipuflow_model_free(m);
}

IPF_TEST(npu_names_and_wide_twins)
{
    ipuflow_npu_scan *s = (ipuflow_npu_scan *)SENTINEL;
    size_t n1 = 9, n2 = 8;
    uint64_t removed = 5;
    char root[1024];
    ipf_join(root, sizeof root, tmp, "sysfs");
    IPF_REQUIRE(ipf_mkdir(root) == 0);
    IPF_CHECK_ERROR(ipuflow_npu_detect_w(wide(ipf_path(tmp, "no-such-dir")), &s), IPUFLOW_STATUS_FILE_NOT_FOUND,
                    "no-such-dir");
    IPF_CHECK(s == (ipuflow_npu_scan *)SENTINEL);
    IPF_CHECK_ERROR(ipuflow_npu_detect_w(lone_surrogate, &s), IPUFLOW_STATUS_INVALID_UTF8, "sysfs_root");
    IPF_CHECK_STATUS(ipuflow_npu_detect_w(wide(root), &s), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(s != (ipuflow_npu_scan *)SENTINEL && s != NULL);
    IPF_CHECK_STATUS(ipuflow_npu_scan_get_count(s, &n1), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_npu_scan_count(s, &n2), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(n1, ==, n2);
    IPF_CHECK_INT(n1, ==, 0);
    {
        ipuflow_npu_device d;
        IPF_CHECK_STATUS(ipuflow_npu_scan_get_device(s, 0, &d), IPUFLOW_STATUS_OUT_OF_RANGE);
        IPF_CHECK_STATUS(ipuflow_npu_scan_get(s, 0, &d), IPUFLOW_STATUS_OUT_OF_RANGE);
    }
    ipuflow_npu_scan_free(s);
    IPF_CHECK_STATUS(ipuflow_npu_cache_clear_w(wide(tmp), "no-such-key", &removed), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(removed, ==, 0);
    IPF_CHECK_ERROR(ipuflow_npu_cache_clear_w(wide(tmp), "../up", NULL), IPUFLOW_STATUS_PATH_REFUSED, "..");
    IPF_CHECK_ERROR(ipuflow_npu_cache_clear_w(NULL, "k", NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "cache_dir");
}

IPF_TEST(quantization_wide_twins)
{
    ipuflow_quant_config *c = NULL;
    ipuflow_calib_data *d = (ipuflow_calib_data *)SENTINEL;
    ipuflow_image_preprocess pre;
    float out[3 * 8 * 8];
    const uint16_t empty[] = {0};
    char npy[1024];
    ipf_join(npy, sizeof npy, tmp, "npy");
    IPF_REQUIRE(ipf_mkdir(npy) == 0);

    IPF_CHECK_STATUS(ipuflow_quant_config_create(IPUFLOW_PRESET_XINT8, &c), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(c != NULL);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_calib_cache_w(c, wide(ipf_path(tmp, "calib.cache"))),
                     IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_quant_config_set_calib_cache_w(c, NULL), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_quant_config_set_calib_cache_w(c, empty), IPUFLOW_STATUS_INVALID_ARGUMENT, "path");
    IPF_CHECK_ERROR(ipuflow_quant_config_set_calib_cache_w(NULL, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "config");
    /* Quantization flags answer INVALID_ENUM, as in 0.1. */
    IPF_CHECK_ERROR(ipuflow_quant_config_set_per_channel(c, 2), IPUFLOW_STATUS_INVALID_ENUM, "value");
    ipuflow_quant_config_free(c);

    IPF_CHECK_ERROR(ipuflow_calib_data_create_from_npy_dir_w(wide(ipf_path(tmp, "none")), &d),
                    IPUFLOW_STATUS_FILE_NOT_FOUND, "none");
    IPF_CHECK_STATUS(ipuflow_calib_data_create_from_npy_dir_w(wide(npy), &d), IPUFLOW_STATUS_CALIBRATION);
    IPF_CHECK_STATUS(ipuflow_calib_data_create_from_npy_dir(npy, &d), IPUFLOW_STATUS_CALIBRATION);
    IPF_CHECK_ERROR(ipuflow_calib_data_create_from_image_dir_w(wide(ipf_path(tmp, "none")), NULL, &d),
                    IPUFLOW_STATUS_FILE_NOT_FOUND, "none");
    IPF_CHECK_ERROR(ipuflow_calib_data_create_from_image_dir_w(NULL, NULL, &d), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "dir");
    IPF_CHECK(d == (ipuflow_calib_data *)SENTINEL);

    IPF_CHECK_STATUS(ipuflow_image_preprocess_init(&pre), IPUFLOW_STATUS_OK);
    pre.height = pre.width = 8;
    IPF_CHECK_ERROR(ipuflow_image_load_w(wide(ipf_path(tmp, "nope.jpg")), &pre, 0, out, 3 * 8 * 8),
                    IPUFLOW_STATUS_FILE_NOT_FOUND, "nope.jpg");
    IPF_CHECK_ERROR(ipuflow_image_load_w(lone_surrogate, &pre, 0, out, 3 * 8 * 8), IPUFLOW_STATUS_INVALID_UTF8,
                    "path");
    IPF_CHECK_ERROR(ipuflow_image_load_w(wide("x.png"), &pre, 2, out, 3 * 8 * 8), IPUFLOW_STATUS_INVALID_ENUM,
                    "flip");
    {
        /* A real image, if the shared data is there: the UTF-16 twin reads exactly what the UTF-8 call reads. */
        const char *shared = ipf_env("IPUFLOW_TEST_SHARED_DIR");
        char img[2048];
        float out2[3 * 8 * 8];
        if (!shared)
            IPF_SKIP_DATA("IPUFLOW_TEST_SHARED_DIR is not set (no ../shared beside the repository)");
        ipf_join(img, sizeof img, shared, "data" IPF_SEP "images" IPF_SEP "calib" IPF_SEP "opencv_baboon.jpg");
        if (!ipf_is_file(img))
            IPF_SKIP_DATA("no data/images/calib/opencv_baboon.jpg in the shared directory");
        IPF_CHECK_STATUS(ipuflow_image_load(img, &pre, 1, out, 3 * 8 * 8), IPUFLOW_STATUS_OK);
        IPF_CHECK_STATUS(ipuflow_image_load_w(wide(img), &pre, 1, out2, 3 * 8 * 8), IPUFLOW_STATUS_OK);
        IPF_CHECK(memcmp(out, out2, sizeof out) == 0);
    }
}

IPF_TEST(session_and_runtime_names)
{
    ipuflow_session *s = NULL;
    size_t a = 9, b = 8;
    ipuflow_tensor_info i1, i2;
    const char *v1 = NULL, *v2 = NULL;
    uint32_t api1 = 0, api2 = 1;
    int st1, st2;
    char *j1 = NULL, *j2 = NULL;
    if (!have_ort)
        IPF_SKIP_DATA("no ONNX Runtime (IPUFLOW_TEST_ORT_LIBRARY unset or not loadable)");
    IPF_CHECK_STATUS(ipuflow_runtime_get_version(&v1), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_runtime_version(&v2), IPUFLOW_STATUS_OK);
    IPF_CHECK(v1 != NULL && v1 == v2);
    IPF_CHECK_STATUS(ipuflow_runtime_get_api_version(&api1), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_runtime_api_version(&api2), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(api1, ==, api2);
    IPF_CHECK_STATUS(ipuflow_runtime_get_path(&v1), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_runtime_path(&v2), IPUFLOW_STATUS_OK);
    IPF_CHECK(v1 != NULL && v1 == v2);

    IPF_CHECK_STATUS(
        ipuflow_session_create_from_memory(NULL, ipf_model_identity, sizeof ipf_model_identity, NULL, &s),
        IPUFLOW_STATUS_OK);
    IPF_REQUIRE(s != NULL);
    IPF_CHECK_STATUS(ipuflow_session_get_input_count(s, &a), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_input_count(s, &b), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(a, ==, b);
    IPF_CHECK_STATUS(ipuflow_session_get_output_count(s, &a), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_output_count(s, &b), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(a, ==, b);
    IPF_CHECK_STATUS(ipuflow_session_get_input_info(s, 0, &i1), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_input_info(s, 0, &i2), IPUFLOW_STATUS_OK);
    IPF_CHECK(i1.name == i2.name && i1.rank == i2.rank && i1.element_type == i2.element_type);
    IPF_CHECK_STATUS(ipuflow_session_get_output_info(s, 0, &i1), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_output_info(s, 0, &i2), IPUFLOW_STATUS_OK);
    IPF_CHECK(i1.name == i2.name);
    IPF_CHECK_ERROR(ipuflow_session_get_input_info(s, 1, &i1), IPUFLOW_STATUS_OUT_OF_RANGE, "input index 1");
    /* The placement: both names give the same answer, whether or not this runtime reports it. */
    st1 = (int)ipuflow_session_placement_get_subgraph_count(s, &a);
    st2 = (int)ipuflow_session_placement_subgraph_count(s, &b);
    IPF_CHECK_INT(st1, ==, st2);
    if (st1 == IPUFLOW_STATUS_OK)
        IPF_CHECK_INT(a, ==, b);
    IPF_CHECK_STATUS(ipuflow_session_placement_to_json(s, &j1), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_placement_json(s, &j2), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(j1 != NULL && j2 != NULL);
    IPF_CHECK_STR(j1, j2);
    ipuflow_string_free(j1);
    ipuflow_string_free(j2);
    ipuflow_session_free(s);
    {
        size_t e1 = 0, e2 = 1;
        ipuflow_run_options *ro = NULL;
        int32_t c1 = 5, c2 = 6;
        IPF_CHECK_STATUS(ipuflow_element_type_get_size(IPUFLOW_ELEMENT_TYPE_FLOAT16, &e1), IPUFLOW_STATUS_OK);
        IPF_CHECK_STATUS(ipuflow_element_type_size(IPUFLOW_ELEMENT_TYPE_FLOAT16, &e2), IPUFLOW_STATUS_OK);
        IPF_CHECK_INT(e1, ==, 2);
        IPF_CHECK_INT(e1, ==, e2);
        IPF_CHECK_STATUS(ipuflow_run_options_create(&ro), IPUFLOW_STATUS_OK);
        IPF_REQUIRE(ro != NULL);
        IPF_CHECK_STATUS(ipuflow_run_options_cancel(ro), IPUFLOW_STATUS_OK);
        IPF_CHECK_STATUS(ipuflow_run_options_get_cancelled(ro, &c1), IPUFLOW_STATUS_OK);
        IPF_CHECK_STATUS(ipuflow_run_options_is_cancelled(ro, &c2), IPUFLOW_STATUS_OK);
        IPF_CHECK_INT(c1, ==, 1);
        IPF_CHECK_INT(c1, ==, c2);
        ipuflow_run_options_free(ro);
    }
}

int main(void)
{
    const char *ort = ipf_env("IPUFLOW_TEST_ORT_LIBRARY");
    tmp = ipf_mkdtemp("abi_names");
    if (!tmp) {
        printf("Bail out! cannot create a temporary directory\n");
        return 1;
    }
    IPF_RUN(npu_device_spelling);
    IPF_RUN(load_cancel_calls);
    IPF_RUN(model_names_and_wide_twins);
    IPF_RUN(npu_names_and_wide_twins);
    IPF_RUN(quantization_wide_twins);
    if (ort) {
        int st = (int)ipuflow_runtime_load(ort);
        have_ort = st == IPUFLOW_STATUS_OK;
        if (!have_ort)
            printf("# cannot load %s: %s: %s\n", ort, ipuflow_status_str(st), ipuflow_last_error());
    }
    IPF_RUN(session_and_runtime_names);
    ipf_rmtree(tmp);
    {
        int rc = ipf_done();
        return (ort && !have_ort) ? 1 : rc;
    }
}
