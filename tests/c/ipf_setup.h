/*
 * ipf_setup.h: the set-up shared by the C tests that quantize the shared BlazeFace on the shared photos
 * (test_quantize, test_quant_recipe, test_quant_exclude, test_quant_mixed, test_quant_metric, test_cpu_plan).
 *
 *   int main(void) { ipf_setup(); IPF_RUN(...); return ipf_finish(); }
 *   IPF_TEST(t) { IPF_NEED_BLAZEFACE(); ... ipf_quantize_on_photos(model, cfg, &q, &report) ... }
 *
 * ipf_setup reads IPUFLOW_TEST_ORT_LIBRARY (ONNX Runtime, loaded once) and IPUFLOW_TEST_SHARED_DIR (the model
 * models/blazeface-short-range.onnx and the photos data/images/calib). ipf_finish fails the program when a runtime
 * was named but could not be loaded, whatever the tests said. Kept apart from ipf_test.h, which needs no ipuflow
 * and no data. Include it after ipuflow.h, ipf_test.h and ipf_fs.h.
 */
#ifndef IPF_SETUP_H
#define IPF_SETUP_H

static const char *ipf_ort;
static int ipf_have_ort;
static char ipf_model_path[4096];
static char ipf_images_dir[4096];

/* Paths from the environment and ONNX Runtime loaded; a path left empty when its file or folder is missing. */
IPF_INLINE void ipf_setup(void)
{
    const char *shared = ipf_env("IPUFLOW_TEST_SHARED_DIR");
    ipf_ort = ipf_env("IPUFLOW_TEST_ORT_LIBRARY");
    if (shared) {
        ipf_join(ipf_model_path, sizeof ipf_model_path, shared, "models" IPF_SEP "blazeface-short-range.onnx");
        if (!ipf_is_file(ipf_model_path))
            ipf_model_path[0] = '\0';
        ipf_join(ipf_images_dir, sizeof ipf_images_dir, shared, "data" IPF_SEP "images" IPF_SEP "calib");
    }
    if (ipf_ort) {
        int st = (int)ipuflow_runtime_load(ipf_ort);
        ipf_have_ort = st == IPUFLOW_STATUS_OK;
        if (!ipf_have_ort)
            printf("# cannot load %s: %s: %s\n", ipf_ort, ipuflow_status_str(st), ipuflow_last_error());
    }
}

/* The TAP plan and the exit status: 1 also when a named runtime did not load. */
IPF_INLINE int ipf_finish(void)
{
    int rc = ipf_done();
    return (ipf_ort && !ipf_have_ort) ? 1 : rc;
}

/* Skips (fails under CI) a test that needs ONNX Runtime, BlazeFace and the photos when one is missing. */
#define IPF_NEED_BLAZEFACE()                                                                                        \
    do {                                                                                                            \
        if (!ipf_have_ort)                                                                                          \
            IPF_SKIP_DATA("no ONNX Runtime (IPUFLOW_TEST_ORT_LIBRARY unset or not loadable)");                      \
        if (!ipf_model_path[0] || !ipf_images_dir[0])                                                               \
            IPF_SKIP_DATA("no shared BlazeFace model or calibration images (IPUFLOW_TEST_SHARED_DIR)");              \
    } while (0)

/* Quantizes `model` with `cfg` on the shared photos (all of them). Returns ipuflow_quantize's status (or that of
 * the calibration data's creation), printing the last error on failure; `*out` and `*report` as ipuflow_quantize
 * (either may be NULL when not wanted). */
IPF_INLINE ipuflow_status ipf_quantize_on_photos(const ipuflow_model *model, const ipuflow_quant_config *cfg,
                                                 ipuflow_model **out, char **report)
{
    ipuflow_calib_data *d = NULL;
    ipuflow_model *q = NULL;
    ipuflow_status st = ipuflow_calib_data_create_from_image_dir(ipf_images_dir, NULL, &d);
    if (st == IPUFLOW_STATUS_OK)
        st = ipuflow_quantize(model, cfg, d, NULL, NULL, &q, report);
    if (st != IPUFLOW_STATUS_OK)
        printf("# quantize: %s: %s\n", ipuflow_status_str(st), ipuflow_last_error());
    if (out)
        *out = q;
    else
        ipuflow_model_free(q);
    ipuflow_calib_data_free(d);
    return st;
}

#endif
