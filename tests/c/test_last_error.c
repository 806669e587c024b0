/* ipuflow_last_error(): "" after a success, the message of the failure after a failure, one per thread, stable
 * until the same thread's next call, and untouched by calls that return no status. */
#include "ipuflow.h"
#include "ipf_test.h"
#include "ipf_fs.h"
#include "test_models.h"

/* A failing call with a known message (it names the NULL argument). */
static ipuflow_status fail_null_path(void)
{
    ipuflow_model *m = NULL;
    return ipuflow_model_load_file(NULL, &m);
}

static ipuflow_status succeed(void)
{
    ipuflow_model *m = NULL;
    ipuflow_status st = ipuflow_model_load_bytes(ipf_model_identity, sizeof ipf_model_identity, NULL, &m);
    ipuflow_model_free(m);
    return st;
}

static void fresh_thread_sees_empty(void *arg)
{
    const char **out = (const char **)arg;
    const char *e = ipuflow_last_error();
    /* Copy inside the thread: the storage belongs to it. */
    *out = (e && e[0] == '\0') ? "empty" : (e ? "non-empty" : "NULL");
}

IPF_TEST(empty_before_any_call)
{
    const char *seen = NULL;
    IPF_REQUIRE(ipf_run_thread(fresh_thread_sees_empty, (void *)&seen) == 0);
    IPF_CHECK_STR(seen, "empty");
}

IPF_TEST(message_after_failure_empty_after_success)
{
    IPF_CHECK_ERROR(fail_null_path(), IPUFLOW_STATUS_NULL_ARGUMENT, "path");
    IPF_CHECK_STATUS(succeed(), IPUFLOW_STATUS_OK);
    IPF_CHECK_STR(ipuflow_last_error(), "");
    IPF_CHECK_STATUS(fail_null_path(), IPUFLOW_STATUS_NULL_ARGUMENT);
    IPF_CHECK(ipuflow_last_error()[0] != '\0');
}

IPF_TEST(message_survives_calls_without_status)
{
    char copy[512];
    IPF_CHECK_STATUS(fail_null_path(), IPUFLOW_STATUS_NULL_ARGUMENT);
    snprintf(copy, sizeof copy, "%s", ipuflow_last_error());
    (void)ipuflow_version();
    (void)ipuflow_version_string();
    (void)ipuflow_status_str(IPUFLOW_STATUS_FILE_READ);
    ipuflow_string_free(NULL);
    IPF_CHECK_STR(ipuflow_last_error(), copy);
    IPF_CHECK(ipuflow_last_error() == ipuflow_last_error());
}

struct other_thread {
    int failed_status;
    char failed_msg[512];
    int ok_status;
    char ok_msg[16];
};

static void other_thread_body(void *arg)
{
    struct other_thread *o = (struct other_thread *)arg;
    ipuflow_model *m = NULL;
    /* A different failure from the main thread's: a missing file. */
    o->failed_status = (int)ipuflow_model_load_file("/nonexistent-ipuflow-dir/x.onnx", &m);
    snprintf(o->failed_msg, sizeof o->failed_msg, "%s", ipuflow_last_error());
    o->ok_status = (int)succeed();
    snprintf(o->ok_msg, sizeof o->ok_msg, "%s", ipuflow_last_error());
}

IPF_TEST(each_thread_has_its_own_message)
{
    struct other_thread o;
    const char *mine;
    char before[512];
    memset(&o, 0, sizeof o);
    IPF_CHECK_STATUS(fail_null_path(), IPUFLOW_STATUS_NULL_ARGUMENT);
    mine = ipuflow_last_error();
    snprintf(before, sizeof before, "%s", mine);
    IPF_REQUIRE(ipf_run_thread(other_thread_body, &o) == 0);
    /* The other thread saw its own failure, then its own success... */
    IPF_CHECK_INT(o.failed_status, ==, IPUFLOW_STATUS_FILE_NOT_FOUND);
    IPF_CHECK_CONTAINS(o.failed_msg, "nonexistent-ipuflow-dir");
    IPF_CHECK_INT(o.ok_status, ==, IPUFLOW_STATUS_OK);
    IPF_CHECK_STR(o.ok_msg, "");
    /* ...and this thread's pointer is still valid and unchanged (ASan/valgrind would see a use after free). */
    IPF_CHECK_STR(mine, before);
    IPF_CHECK_STR(ipuflow_last_error(), before);
}

static void many_threads_body(void *arg)
{
    int *bad = (int *)arg;
    int i;
    for (i = 0; i < 50; i++) {
        if (succeed() != IPUFLOW_STATUS_OK || ipuflow_last_error()[0] != '\0')
            (*bad)++;
        if (fail_null_path() != IPUFLOW_STATUS_NULL_ARGUMENT || ipuflow_last_error()[0] == '\0')
            (*bad)++;
    }
}

IPF_TEST(thread_exit_releases_message)
{
    /* Threads that end with a message set: valgrind/LSan check the thread-local storage is released. */
    int i, bad = 0;
    for (i = 0; i < 8; i++)
        IPF_REQUIRE(ipf_run_thread(many_threads_body, &bad) == 0);
    IPF_CHECK_INT(bad, ==, 0);
}

int main(void)
{
    IPF_RUN(empty_before_any_call);
    IPF_RUN(message_after_failure_empty_after_success);
    IPF_RUN(message_survives_calls_without_status);
    IPF_RUN(each_thread_has_its_own_message);
    IPF_RUN(thread_exit_releases_message);
    return ipf_done();
}
