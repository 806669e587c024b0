/*
 * Cancelling a session creation from another thread: ipuflow_session_options_cancel_load on the options that
 * ipuflow_session_create is reading makes the creation of a real model (../shared/models/efficientnet-lite0.onnx)
 * return IPUFLOW_STATUS_CANCELLED and no session. The cancel lands at a quarter of the time a whole creation took
 * here; a creation that returned before the cancel thread ran (a loaded machine) is retried, and one that returned
 * a session although the cancel came first fails the test. With ONNX Runtime 1.22+ its load cancellation flag stops
 * the work ("ORT_MODEL_LOAD_CANCELED"); older runtimes stop at ipuflow's phase checks.
 */
#include "ipuflow.h"
#include "ipf_test.h"
#include "ipf_fs.h"

#include <stdint.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>
#include <time.h>
#endif

#define SENTINEL ((void *)(uintptr_t)0x5e5e5e5e)

static int have_ort;
static char model[2048];

static double now_ms(void)
{
#ifdef _WIN32
    return (double)GetTickCount64();
#else
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
#endif
}

static void sleep_ms(double ms)
{
#ifdef _WIN32
    Sleep((DWORD)ms);
#else
    struct timespec t;
    t.tv_sec = (time_t)(ms / 1e3);
    t.tv_nsec = (long)((ms - (double)t.tv_sec * 1e3) * 1e6);
    nanosleep(&t, NULL);
#endif
}

struct canceller {
    const ipuflow_session_options *options;
    double delay_ms;
    double cancelled_at;
    int status;
};

#ifdef _WIN32
static DWORD WINAPI cancel_thread(LPVOID p)
#else
static void *cancel_thread(void *p)
#endif
{
    struct canceller *c = (struct canceller *)p;
    sleep_ms(c->delay_ms);
    c->status = (int)ipuflow_session_options_cancel_load(c->options);
    c->cancelled_at = now_ms();
#ifdef _WIN32
    return 0;
#else
    return NULL;
#endif
}

#define NEED_MODEL()                                                                                                \
    do {                                                                                                            \
        if (!have_ort)                                                                                              \
            IPF_SKIP_DATA("no ONNX Runtime (IPUFLOW_TEST_ORT_LIBRARY unset or not loadable)");                           \
        if (!model[0])                                                                                              \
            IPF_SKIP_DATA("no models/efficientnet-lite0.onnx in IPUFLOW_TEST_SHARED_DIR");                           \
    } while (0)

IPF_TEST(cancelled_before_creation)
{
    ipuflow_session_options *o = NULL;
    ipuflow_session *s = (ipuflow_session *)SENTINEL;
    NEED_MODEL();
    IPF_CHECK_STATUS(ipuflow_session_options_create(&o), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(o != NULL);
    IPF_CHECK_STATUS(ipuflow_session_options_cancel_load(o), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_session_create(NULL, model, o, &s), IPUFLOW_STATUS_CANCELLED, "cancelled");
    IPF_CHECK(s == (ipuflow_session *)SENTINEL);
    IPF_CHECK_STATUS(ipuflow_session_options_reset_load_cancel(o), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_create(NULL, model, o, &s), IPUFLOW_STATUS_OK);
    IPF_CHECK(s != (ipuflow_session *)SENTINEL && s != NULL);
    if (s != (ipuflow_session *)SENTINEL)
        ipuflow_session_free(s);
    ipuflow_session_options_free(o);
}

IPF_TEST(another_thread_cancels_a_creation)
{
    ipuflow_session *s = NULL;
    double t0, full;
    int attempt, landed = 0;
    uint32_t api = 0;
    NEED_MODEL();
    ipuflow_runtime_get_api_version(&api);
    t0 = now_ms();
    IPF_CHECK_STATUS(ipuflow_session_create(NULL, model, NULL, &s), IPUFLOW_STATUS_OK);
    full = now_ms() - t0;
    ipuflow_session_free(s);
    for (attempt = 0; attempt < 5 && !landed; attempt++) {
        ipuflow_session_options *o = NULL;
        struct canceller c;
        double returned;
        int st;
#ifdef _WIN32
        HANDLE th;
#else
        pthread_t th;
#endif
        s = (ipuflow_session *)SENTINEL;
        IPF_CHECK_STATUS(ipuflow_session_options_create(&o), IPUFLOW_STATUS_OK);
        IPF_REQUIRE(o != NULL);
        c.options = o;
        c.delay_ms = full / 4;
        c.cancelled_at = 0;
        c.status = -1;
#ifdef _WIN32
        th = CreateThread(NULL, 0, cancel_thread, &c, 0, NULL);
        IPF_REQUIRE(th != NULL);
#else
        IPF_REQUIRE(pthread_create(&th, NULL, cancel_thread, &c) == 0);
#endif
        st = (int)ipuflow_session_create(NULL, model, o, &s);
        returned = now_ms();
#ifdef _WIN32
        WaitForSingleObject(th, INFINITE);
        CloseHandle(th);
#else
        pthread_join(th, NULL);
#endif
        IPF_CHECK_INT(c.status, ==, IPUFLOW_STATUS_OK);
        if (st == IPUFLOW_STATUS_CANCELLED) {
            const char *msg = ipuflow_last_error();
            IPF_CHECK(s == (ipuflow_session *)SENTINEL);
            printf("# C API %u: creation %.0f ms; cancelled after %.0f ms, returned %.0f ms later: %s\n",
                   (unsigned)api, full, c.delay_ms, returned - c.cancelled_at, msg);
            if (api < 22)
                IPF_CHECK(strstr(msg, "ORT_MODEL_LOAD_CANCELED") == NULL);
            landed = 1;
        } else if (st == IPUFLOW_STATUS_OK) {
            /* A session although the cancel came before the creation returned: cancellation is broken. */
            IPF_CHECK(c.cancelled_at > returned);
            if (s != (ipuflow_session *)SENTINEL)
                ipuflow_session_free(s);
        } else {
            IPF_CHECK_INT(st, ==, IPUFLOW_STATUS_CANCELLED);
            printf("# %s\n", ipuflow_last_error());
        }
        ipuflow_session_options_free(o);
    }
    IPF_CHECK(landed);
}

int main(void)
{
    const char *ort = ipf_env("IPUFLOW_TEST_ORT_LIBRARY");
    const char *shared = ipf_env("IPUFLOW_TEST_SHARED_DIR");
    if (ort) {
        int st = (int)ipuflow_runtime_load(ort);
        have_ort = st == IPUFLOW_STATUS_OK;
        if (!have_ort)
            printf("# cannot load %s: %s: %s\n", ort, ipuflow_status_str(st), ipuflow_last_error());
    }
    if (shared) {
        ipf_join(model, sizeof model, shared, "models" IPF_SEP "efficientnet-lite0.onnx");
        if (!ipf_is_file(model))
            model[0] = '\0';
    }
    IPF_RUN(cancelled_before_creation);
    IPF_RUN(another_thread_cancels_a_creation);
    {
        int rc = ipf_done();
        return (ort && !have_ort) ? 1 : rc;
    }
}
