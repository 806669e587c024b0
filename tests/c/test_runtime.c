/*
 * Loading ONNX Runtime (ipuflow_runtime_*): the state before anything is loaded, every way a load fails (and that
 * a failed load leaves nothing loaded), then a real load and its idempotence.
 *
 * The runtime is loaded once per process, so this program owns the "not loaded" states; test_session.c loads it
 * first thing. The real library comes from $IPUFLOW_TEST_ORT_LIBRARY (set by tests/CMakeLists.txt from
 * IPUFLOW_ORT_LIBRARY, i.e. scripts/fetch_ort.sh's output); without it the tests that need it are skipped.
 * IPUFLOW_ORT_LIBRARY itself is removed from this process's environment first, so automatic resolution is tested.
 */
#include "ipuflow.h"
#include "ipf_test.h"
#include "ipf_fs.h"

#include <stdint.h>

#define SENTINEL_STR ((const char *)(uintptr_t)0x5e5e5e5e)

static const char *tmp;
static const char *ort; /* the real ONNX Runtime library, or NULL */

IPF_TEST(nothing_loaded_yet)
{
    const char *s = SENTINEL_STR;
    uint32_t v = 77;
    IPF_CHECK_INT(ipuflow_runtime_is_loaded(), ==, 0);
    IPF_CHECK_ERROR(ipuflow_runtime_version(&s), IPUFLOW_STATUS_RUNTIME_NOT_LOADED, "ipuflow_runtime_load");
    IPF_CHECK_STATUS(ipuflow_runtime_api_version(&v), IPUFLOW_STATUS_RUNTIME_NOT_LOADED);
    IPF_CHECK_STATUS(ipuflow_runtime_path(&s), IPUFLOW_STATUS_RUNTIME_NOT_LOADED);
    IPF_CHECK(s == SENTINEL_STR && v == 77);
    IPF_CHECK_ERROR(ipuflow_runtime_version(NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_ERROR(ipuflow_runtime_api_version(NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_ERROR(ipuflow_runtime_path(NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
}

static void check_still_unloaded(void)
{
    IPF_CHECK_INT(ipuflow_runtime_is_loaded(), ==, 0);
}

IPF_TEST(load_bad_arguments)
{
    static const uint16_t lone_surrogate[] = {'x', 0xdc00, 0};
    static const uint16_t empty_w[] = {0};
    IPF_CHECK_ERROR(ipuflow_runtime_load(""), IPUFLOW_STATUS_INVALID_ARGUMENT, "path");
    IPF_CHECK_ERROR(ipuflow_runtime_load("\xff\xfe"), IPUFLOW_STATUS_INVALID_UTF8, "path");
    IPF_CHECK_ERROR(ipuflow_runtime_load_w(lone_surrogate), IPUFLOW_STATUS_INVALID_UTF8, "path");
    IPF_CHECK_ERROR(ipuflow_runtime_load_w(empty_w), IPUFLOW_STATUS_INVALID_ARGUMENT, "path");
    check_still_unloaded();
}

IPF_TEST(load_missing_and_invalid_files)
{
    static const char garbage[] = "this is not a shared library\n";
    const char *missing = ipf_path(tmp, "no-such-dir" IPF_SEP "libonnxruntime.so.1");
    char fake[1024];
    int st;

    IPF_CHECK_ERROR(ipuflow_runtime_load(missing), IPUFLOW_STATUS_RUNTIME_NOT_FOUND, "no-such-dir");
    check_still_unloaded();
    /* A directory that holds no ONNX Runtime. */
    IPF_CHECK_ERROR(ipuflow_runtime_load(tmp), IPUFLOW_STATUS_RUNTIME_NOT_FOUND, tmp);
    check_still_unloaded();
    /* A file that is not a shared library at all: the loader refuses it. */
    ipf_join(fake, sizeof fake, tmp, "libonnxruntime.so.1.99.0");
    IPF_REQUIRE(ipf_write_file(fake, garbage, sizeof garbage - 1) == 0);
    st = (int)ipuflow_runtime_load(fake);
    IPF_CHECK(st == IPUFLOW_STATUS_RUNTIME_NOT_FOUND || st == IPUFLOW_STATUS_RUNTIME_INVALID);
    IPF_CHECK_CONTAINS(ipuflow_last_error(), "libonnxruntime.so.1.99.0");
    ipf_diag("garbage library: %s: %s", ipuflow_status_str(st), ipuflow_last_error());
    check_still_unloaded();
}

IPF_TEST(load_a_library_that_is_not_onnxruntime)
{
    /* A real shared library without OrtGetApiBase: the C math library (present wherever the tests link). */
#ifdef _WIN32
    const char *not_ort = "C:\\windows\\system32\\kernel32.dll";
#else
    const char *not_ort = "libm.so.6";
    char buf[256];
    static const char *dirs[] = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64",
                                 "/lib", "/usr/lib"};
    size_t i;
    for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        ipf_join(buf, sizeof buf, dirs[i], "libm.so.6");
        if (ipf_is_file(buf)) {
            not_ort = buf;
            break;
        }
    }
    if (not_ort[0] != '/')
        IPF_SKIP("no libm.so.6 found in the usual directories");
#endif
    IPF_CHECK_ERROR(ipuflow_runtime_load(not_ort), IPUFLOW_STATUS_RUNTIME_INVALID, "OrtGetApiBase");
    check_still_unloaded();
}

IPF_TEST(automatic_resolution_without_a_runtime)
{
    /* No IPUFLOW_ORT_LIBRARY and no ONNX Runtime beside the ipuflow library (cargo's target dir has none) nor on the
     * loader's path: NULL fails with the list of places tried. Skipped where the system has a libonnxruntime. */
    int st = (int)ipuflow_runtime_load(NULL);
    if (st == IPUFLOW_STATUS_OK)
        IPF_SKIP("an ONNX Runtime is installed where the system loader finds it");
    IPF_CHECK_INT(st, ==, IPUFLOW_STATUS_RUNTIME_NOT_FOUND);
    IPF_CHECK_CONTAINS(ipuflow_last_error(), "onnxruntime"); /* libonnxruntime.so*, onnxruntime.dll */
    check_still_unloaded();
    {
        /* Also through the environment variable, naming a missing file: that is the only place tried. */
        ipuflow_env *env = (ipuflow_env *)(uintptr_t)0x5e5e5e5e;
#ifdef _WIN32
        _putenv("IPUFLOW_ORT_LIBRARY=C:\\no-such-dir\\onnxruntime.dll");
#else
        setenv("IPUFLOW_ORT_LIBRARY", "/no-such-dir/libonnxruntime.so.1", 1);
#endif
        IPF_CHECK_ERROR(ipuflow_env_create(IPUFLOW_LOG_LEVEL_WARNING, NULL, NULL, NULL, &env),
                        IPUFLOW_STATUS_RUNTIME_NOT_FOUND, "no-such-dir");
        IPF_CHECK(env == (ipuflow_env *)(uintptr_t)0x5e5e5e5e);
#ifdef _WIN32
        _putenv("IPUFLOW_ORT_LIBRARY=");
#else
        unsetenv("IPUFLOW_ORT_LIBRARY");
#endif
    }
    check_still_unloaded();
}

IPF_TEST(load_real_runtime)
{
    const char *version = NULL, *path = NULL;
    uint32_t api = 0;
    if (!ort)
        IPF_SKIP_DATA("IPUFLOW_TEST_ORT_LIBRARY is not set (run scripts/fetch_ort.sh)");
    IPF_CHECK_STATUS(ipuflow_runtime_load(ort), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(ipuflow_runtime_is_loaded(), ==, 1);
    IPF_CHECK_STATUS(ipuflow_runtime_version(&version), IPUFLOW_STATUS_OK);
    IPF_CHECK(version != NULL && version[0] >= '1' && version[0] <= '9' && strchr(version, '.') != NULL);
    IPF_CHECK_STATUS(ipuflow_runtime_api_version(&api), IPUFLOW_STATUS_OK);
    IPF_CHECK(api >= 17 && api <= 24);
    IPF_CHECK_STATUS(ipuflow_runtime_path(&path), IPUFLOW_STATUS_OK);
    IPF_CHECK_CONTAINS(path, "onnxruntime");
    ipf_diag("loaded ONNX Runtime %s (C API %u) from %s", version ? version : "?", (unsigned)api, path ? path : "?");

    /* Again with the same file, and with NULL: nothing changes. */
    IPF_CHECK_STATUS(ipuflow_runtime_load(ort), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_runtime_load(NULL), IPUFLOW_STATUS_OK);
    {
        const char *again = NULL;
        IPF_CHECK_STATUS(ipuflow_runtime_path(&again), IPUFLOW_STATUS_OK);
        IPF_CHECK(again == path || (again && path && strcmp(again, path) == 0));
    }
    /* A different file: one runtime per process. */
    {
        char copy[1024];
        size_t len = 0;
        unsigned char *bytes = ipf_read_file(ort, &len);
        IPF_REQUIRE(bytes != NULL);
        ipf_join(copy, sizeof copy, tmp, "libonnxruntime.so.1.32.0");
        IPF_REQUIRE(ipf_write_file(copy, bytes, len) == 0);
        free(bytes);
        IPF_CHECK_STATUS(ipuflow_runtime_load(copy), IPUFLOW_STATUS_INVALID_ARGUMENT);
        IPF_CHECK_STATUS(ipuflow_runtime_load(ipf_path(tmp, "missing.so")), IPUFLOW_STATUS_INVALID_ARGUMENT);
    }
    IPF_CHECK_INT(ipuflow_runtime_is_loaded(), ==, 1);
}

int main(void)
{
    static char ort_buf[1024];
    /* Copied: on Windows, _putenv below may move the environment block that getenv pointers point into. */
    ort = ipf_env("IPUFLOW_TEST_ORT_LIBRARY");
    if (ort) {
        snprintf(ort_buf, sizeof ort_buf, "%s", ort);
        ort = ort_buf;
    }
#ifdef _WIN32
    _putenv("IPUFLOW_ORT_LIBRARY=");
#else
    unsetenv("IPUFLOW_ORT_LIBRARY");
#endif
    tmp = ipf_mkdtemp("runtime");
    if (!tmp) {
        printf("Bail out! cannot create a temporary directory\n");
        return 1;
    }
    IPF_RUN(nothing_loaded_yet);
    IPF_RUN(load_bad_arguments);
    IPF_RUN(load_missing_and_invalid_files);
    IPF_RUN(load_a_library_that_is_not_onnxruntime);
    IPF_RUN(automatic_resolution_without_a_runtime);
    IPF_RUN(load_real_runtime);
    ipf_rmtree(tmp);
    return ipf_done();
}
