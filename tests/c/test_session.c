/*
 * Environments, session options, sessions, runs, run options and tensors from C: every error path of each call
 * (NULL arguments, invalid enum values, out-of-domain values, bad models, mismatched tensors, cancellation) and the
 * success paths, with outputs pre-filled with sentinels that must survive failures.
 *
 * Needs ONNX Runtime: $IPUFLOW_TEST_ORT_LIBRARY (tests/CMakeLists.txt sets it from scripts/fetch_ort.sh's output);
 * every test is skipped with that reason when it is absent. The element-type and options tests need no runtime.
 */
#include "ipuflow.h"
#include "ipf_test.h"
#include "ipf_fs.h"
#include "test_models.h"

#include <stdint.h>

#define SENTINEL ((void *)(uintptr_t)0x5e5e5e5e)

static const char *tmp;
static int have_ort;

#define NEED_ORT()                                                                                                  \
    do {                                                                                                            \
        if (!have_ort)                                                                                              \
            IPF_SKIP_DATA("no ONNX Runtime (IPUFLOW_TEST_ORT_LIBRARY unset or not loadable)");                           \
    } while (0)

/* -------------------------------------------------------------------------------------------------------------- */
/* No runtime needed */

IPF_TEST(element_type_sizes)
{
    static const struct {
        int type;
        size_t size;
    } sizes[] = {
        {IPUFLOW_ELEMENT_TYPE_FLOAT, 4}, {IPUFLOW_ELEMENT_TYPE_UINT8, 1},   {IPUFLOW_ELEMENT_TYPE_INT8, 1},
        {IPUFLOW_ELEMENT_TYPE_UINT16, 2}, {IPUFLOW_ELEMENT_TYPE_INT16, 2},  {IPUFLOW_ELEMENT_TYPE_INT32, 4},
        {IPUFLOW_ELEMENT_TYPE_INT64, 8},  {IPUFLOW_ELEMENT_TYPE_BOOL, 1},   {IPUFLOW_ELEMENT_TYPE_FLOAT16, 2},
        {IPUFLOW_ELEMENT_TYPE_DOUBLE, 8}, {IPUFLOW_ELEMENT_TYPE_UINT32, 4}, {IPUFLOW_ELEMENT_TYPE_UINT64, 8},
        {IPUFLOW_ELEMENT_TYPE_BFLOAT16, 2}, {IPUFLOW_ELEMENT_TYPE_FLOAT8E4M3FN, 1},
        {IPUFLOW_ELEMENT_TYPE_FLOAT8E4M3FNUZ, 1}, {IPUFLOW_ELEMENT_TYPE_FLOAT8E5M2, 1},
        {IPUFLOW_ELEMENT_TYPE_FLOAT8E5M2FNUZ, 1}, {IPUFLOW_ELEMENT_TYPE_FLOAT8E8M0, 1},
        /* A STRING view holds one const char* per element. */
        {IPUFLOW_ELEMENT_TYPE_STRING, sizeof(const char *)},
    };
    /* Several elements per byte: no per-element size. */
    static const int packed[] = {IPUFLOW_ELEMENT_TYPE_UINT4, IPUFLOW_ELEMENT_TYPE_INT4, IPUFLOW_ELEMENT_TYPE_UINT2,
                                 IPUFLOW_ELEMENT_TYPE_INT2};
    /* 23 = float4e2m1 and 14/15 = complex have no IPUFLOW_ELEMENT_TYPE_*. */
    static const int invalid[] = {0, -1, 14, 15, 23, 27, 99, 1 << 20};
    size_t i, n = 77;
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t got = 0;
        IPF_CHECK_STATUS(ipuflow_element_type_size(sizes[i].type, &got), IPUFLOW_STATUS_OK);
        IPF_CHECK_INT(got, ==, sizes[i].size);
    }
    for (i = 0; i < sizeof packed / sizeof packed[0]; i++)
        IPF_CHECK_ERROR(ipuflow_element_type_size(packed[i], &n), IPUFLOW_STATUS_UNSUPPORTED, "per byte");
    for (i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        IPF_CHECK_ERROR(ipuflow_element_type_size(invalid[i], &n), IPUFLOW_STATUS_INVALID_ENUM, "element_type");
    IPF_CHECK(n == 77);
    IPF_CHECK_ERROR(ipuflow_element_type_size(IPUFLOW_ELEMENT_TYPE_FLOAT, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
}

IPF_TEST(session_options_errors)
{
    ipuflow_session_options *o = NULL;
    IPF_CHECK_ERROR(ipuflow_session_options_create(NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_STATUS(ipuflow_session_options_create(&o), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(o != NULL);

    /* NULL options for every setter. */
    IPF_CHECK_ERROR(ipuflow_session_options_set_intra_op_threads(NULL, 1), IPUFLOW_STATUS_NULL_ARGUMENT, "options");
    IPF_CHECK_ERROR(ipuflow_session_options_set_inter_op_threads(NULL, 1), IPUFLOW_STATUS_NULL_ARGUMENT, "options");
    IPF_CHECK_STATUS(ipuflow_session_options_set_graph_optimization(NULL, 0), IPUFLOW_STATUS_NULL_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_session_options_set_execution_mode(NULL, 0), IPUFLOW_STATUS_NULL_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_session_options_set_deterministic(NULL, 0), IPUFLOW_STATUS_NULL_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_session_options_set_memory_arena(NULL, 0), IPUFLOW_STATUS_NULL_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_session_options_set_profiling(NULL, NULL), IPUFLOW_STATUS_NULL_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_session_options_set_profiling_w(NULL, NULL), IPUFLOW_STATUS_NULL_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_session_options_set_optimized_model_path(NULL, NULL), IPUFLOW_STATUS_NULL_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_session_options_set_optimized_model_path_w(NULL, NULL), IPUFLOW_STATUS_NULL_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_session_options_set_logging(NULL, NULL, -1), IPUFLOW_STATUS_NULL_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_session_options_add_config_entry(NULL, "k", "v"), IPUFLOW_STATUS_NULL_ARGUMENT);

    /* Out-of-domain values and invalid enums. */
    IPF_CHECK_ERROR(ipuflow_session_options_set_intra_op_threads(o, -1), IPUFLOW_STATUS_INVALID_ARGUMENT, "-1");
    IPF_CHECK_STATUS(ipuflow_session_options_set_inter_op_threads(o, -5), IPUFLOW_STATUS_INVALID_ARGUMENT);
    /* Over the documented bound (1024): refused at the setter, not minutes later at session creation. */
    IPF_CHECK_ERROR(ipuflow_session_options_set_intra_op_threads(o, 100000), IPUFLOW_STATUS_LIMIT_EXCEEDED, "1024");
    IPF_CHECK_STATUS(ipuflow_session_options_set_inter_op_threads(o, 1025), IPUFLOW_STATUS_LIMIT_EXCEEDED);
    IPF_CHECK_STATUS(ipuflow_session_options_set_inter_op_threads(o, 1024), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_session_options_set_graph_optimization(o, 4), IPUFLOW_STATUS_INVALID_ENUM, "level");
    IPF_CHECK_STATUS(ipuflow_session_options_set_graph_optimization(o, -1), IPUFLOW_STATUS_INVALID_ENUM);
    IPF_CHECK_STATUS(ipuflow_session_options_set_graph_optimization(o, 99), IPUFLOW_STATUS_INVALID_ENUM);
    IPF_CHECK_ERROR(ipuflow_session_options_set_execution_mode(o, 2), IPUFLOW_STATUS_INVALID_ENUM, "mode");
    IPF_CHECK_STATUS(ipuflow_session_options_set_execution_mode(o, -1), IPUFLOW_STATUS_INVALID_ENUM);
    IPF_CHECK_STATUS(ipuflow_session_options_set_deterministic(o, 2), IPUFLOW_STATUS_INVALID_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_session_options_set_memory_arena(o, -1), IPUFLOW_STATUS_INVALID_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_session_options_set_profiling(o, ""), IPUFLOW_STATUS_INVALID_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_session_options_set_profiling(o, "\xff"), IPUFLOW_STATUS_INVALID_UTF8);
    IPF_CHECK_STATUS(ipuflow_session_options_set_optimized_model_path(o, ""), IPUFLOW_STATUS_INVALID_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_session_options_set_optimized_model_path(o, "\xc3\x28"), IPUFLOW_STATUS_INVALID_UTF8);
    IPF_CHECK_ERROR(ipuflow_session_options_set_logging(o, NULL, 5), IPUFLOW_STATUS_INVALID_ENUM, "log_level");
    IPF_CHECK_STATUS(ipuflow_session_options_set_logging(o, NULL, -2), IPUFLOW_STATUS_INVALID_ENUM);
    IPF_CHECK_STATUS(ipuflow_session_options_set_logging(o, "\xff", -1), IPUFLOW_STATUS_INVALID_UTF8);
    IPF_CHECK_ERROR(ipuflow_session_options_add_config_entry(o, NULL, "v"), IPUFLOW_STATUS_NULL_ARGUMENT, "key");
    IPF_CHECK_ERROR(ipuflow_session_options_add_config_entry(o, "k", NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "value");
    IPF_CHECK_ERROR(ipuflow_session_options_add_config_entry(o, "", "v"), IPUFLOW_STATUS_INVALID_ARGUMENT, "key");
    IPF_CHECK_STATUS(ipuflow_session_options_add_config_entry(o, "k\xff", "v"), IPUFLOW_STATUS_INVALID_UTF8);

    /* Every valid value. */
    IPF_CHECK_STATUS(ipuflow_session_options_set_intra_op_threads(o, 0), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_set_intra_op_threads(o, 1), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_set_inter_op_threads(o, 1), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_set_graph_optimization(o, IPUFLOW_GRAPH_OPTIMIZATION_DISABLE),
                     IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_set_graph_optimization(o, IPUFLOW_GRAPH_OPTIMIZATION_ALL),
                     IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_set_execution_mode(o, IPUFLOW_EXECUTION_MODE_PARALLEL),
                     IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_set_execution_mode(o, IPUFLOW_EXECUTION_MODE_SEQUENTIAL),
                     IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_set_deterministic(o, 1), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_set_memory_arena(o, 0), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_set_profiling(o, NULL), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_set_optimized_model_path(o, NULL), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_set_logging(o, "ipf-test", IPUFLOW_LOG_LEVEL_ERROR), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_set_logging(o, NULL, -1), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_add_config_entry(o, "session.intra_op.allow_spinning", "0"),
                     IPUFLOW_STATUS_OK);
    ipuflow_session_options_free(o);
    ipuflow_session_options_free(NULL);
}

/* -------------------------------------------------------------------------------------------------------------- */
/* Environment */

static void count_log(void *user_data, int32_t level, const char *category, const char *message)
{
    (void)level;
    (void)category;
    (void)message;
    /* Called from ORT threads: an atomic add would be stricter; the test reads it only after the session ends. */
    __atomic_add_fetch((int *)user_data, 1, __ATOMIC_RELAXED);
}

static int log_count;

IPF_TEST(env_errors_and_one_per_process)
{
    ipuflow_env *env = (ipuflow_env *)SENTINEL, *second = (ipuflow_env *)SENTINEL;
    NEED_ORT();
    IPF_CHECK_ERROR(ipuflow_env_create(IPUFLOW_LOG_LEVEL_WARNING, NULL, NULL, NULL, NULL),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_ERROR(ipuflow_env_create(5, NULL, NULL, NULL, &env), IPUFLOW_STATUS_INVALID_ENUM, "log_level");
    IPF_CHECK_STATUS(ipuflow_env_create(-1, NULL, NULL, NULL, &env), IPUFLOW_STATUS_INVALID_ENUM);
    IPF_CHECK_STATUS(ipuflow_env_create(IPUFLOW_LOG_LEVEL_WARNING, "\xff", NULL, NULL, &env),
                     IPUFLOW_STATUS_INVALID_UTF8);
    IPF_CHECK_ERROR(ipuflow_env_create_with_global_thread_pools(IPUFLOW_LOG_LEVEL_WARNING, NULL, NULL, NULL, -1, 0, -1,
                                                                &env),
                    IPUFLOW_STATUS_INVALID_ARGUMENT, "intra_op_threads");
    IPF_CHECK_ERROR(ipuflow_env_create_with_global_thread_pools(IPUFLOW_LOG_LEVEL_WARNING, NULL, NULL, NULL, 0, -1, -1,
                                                                &env),
                    IPUFLOW_STATUS_INVALID_ARGUMENT, "inter_op_threads");
    IPF_CHECK_ERROR(ipuflow_env_create_with_global_thread_pools(IPUFLOW_LOG_LEVEL_WARNING, NULL, NULL, NULL, 0, 0, 2,
                                                                &env),
                    IPUFLOW_STATUS_INVALID_ARGUMENT, "allow_spinning");
    IPF_CHECK_STATUS(ipuflow_env_create_with_global_thread_pools(7, NULL, NULL, NULL, 0, 0, -1, &env),
                     IPUFLOW_STATUS_INVALID_ENUM);
    IPF_CHECK(env == (ipuflow_env *)SENTINEL);

    IPF_CHECK_STATUS(ipuflow_env_create(IPUFLOW_LOG_LEVEL_VERBOSE, "ipf-test", count_log, &log_count, &env),
                     IPUFLOW_STATUS_OK);
    IPF_REQUIRE(env != NULL && env != (ipuflow_env *)SENTINEL);
    /* ONNX Runtime allows one environment per process. */
    IPF_CHECK_STATUS(ipuflow_env_create(IPUFLOW_LOG_LEVEL_WARNING, NULL, NULL, NULL, &second),
                     IPUFLOW_STATUS_INVALID_ARGUMENT);
    IPF_CHECK(second == (ipuflow_env *)SENTINEL);
    {
        /* A session in it logs through the callback (verbose level). */
        ipuflow_session *s = NULL;
        IPF_CHECK_STATUS(
            ipuflow_session_create_from_memory(env, ipf_model_identity, sizeof ipf_model_identity, NULL, &s),
            IPUFLOW_STATUS_OK);
        /* The session keeps the environment alive after the caller's reference is released. */
        ipuflow_env_free(env);
        env = NULL;
        IPF_CHECK_STATUS(ipuflow_env_create(IPUFLOW_LOG_LEVEL_WARNING, NULL, NULL, NULL, &second),
                         IPUFLOW_STATUS_INVALID_ARGUMENT);
        ipuflow_session_free(s);
    }
    IPF_CHECK(__atomic_load_n(&log_count, __ATOMIC_RELAXED) > 0);
    ipuflow_env_free(NULL);

    /* Everything released: a new environment (with global pools) may be created. */
    second = NULL;
    IPF_CHECK_STATUS(ipuflow_env_create_with_global_thread_pools(IPUFLOW_LOG_LEVEL_WARNING, NULL, NULL, NULL, 1, 1, 0,
                                                                 &second),
                     IPUFLOW_STATUS_OK);
    if (second) {
        /* Sessions in a global-pool environment must not set their own thread counts. */
        ipuflow_session_options *o = NULL;
        ipuflow_session *s = (ipuflow_session *)SENTINEL;
        IPF_CHECK_STATUS(ipuflow_session_options_create(&o), IPUFLOW_STATUS_OK);
        IPF_CHECK_STATUS(ipuflow_session_options_set_intra_op_threads(o, 2), IPUFLOW_STATUS_OK);
        IPF_CHECK_STATUS(
            ipuflow_session_create_from_memory(second, ipf_model_identity, sizeof ipf_model_identity, o, &s),
            IPUFLOW_STATUS_INVALID_ARGUMENT);
        IPF_CHECK(s == (ipuflow_session *)SENTINEL);
        s = NULL;
        IPF_CHECK_STATUS(
            ipuflow_session_create_from_memory(second, ipf_model_identity, sizeof ipf_model_identity, NULL, &s),
            IPUFLOW_STATUS_OK);
        ipuflow_session_free(s);
        ipuflow_session_options_free(o);
        ipuflow_env_free(second);
    }
}

/* -------------------------------------------------------------------------------------------------------------- */
/* Session creation */

IPF_TEST(session_create_errors)
{
    static const unsigned char garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01};
    ipuflow_session *s = (ipuflow_session *)SENTINEL;
    ipuflow_model *m = NULL;
    ipuflow_session_options *bad = NULL;
    const char *model = ipf_path(tmp, "identity.onnx");
    char garbage_path[1024];
    NEED_ORT();
    IPF_REQUIRE(ipf_write_file(model, ipf_model_identity, sizeof ipf_model_identity) == 0);
    ipf_join(garbage_path, sizeof garbage_path, tmp, "garbage.onnx");
    IPF_REQUIRE(ipf_write_file(garbage_path, garbage, sizeof garbage) == 0);

    IPF_CHECK_ERROR(ipuflow_session_create(NULL, NULL, NULL, &s), IPUFLOW_STATUS_NULL_ARGUMENT, "model_path");
    IPF_CHECK_ERROR(ipuflow_session_create(NULL, model, NULL, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_ERROR(ipuflow_session_create_w(NULL, NULL, NULL, &s), IPUFLOW_STATUS_NULL_ARGUMENT, "model_path");
    IPF_CHECK_STATUS(ipuflow_session_create(NULL, "", NULL, &s), IPUFLOW_STATUS_INVALID_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_session_create(NULL, "\xff.onnx", NULL, &s), IPUFLOW_STATUS_INVALID_UTF8);
    IPF_CHECK_ERROR(ipuflow_session_create(NULL, ipf_path(tmp, "missing.onnx"), NULL, &s),
                    IPUFLOW_STATUS_FILE_NOT_FOUND, "missing.onnx");
    IPF_CHECK_STATUS(ipuflow_session_create(NULL, tmp, NULL, &s), IPUFLOW_STATUS_FILE_READ);
    IPF_CHECK_STATUS(ipuflow_session_create(NULL, garbage_path, NULL, &s), IPUFLOW_STATUS_RUNTIME);

    IPF_CHECK_ERROR(ipuflow_session_create_from_memory(NULL, NULL, 10, NULL, &s), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "data");
    IPF_CHECK_STATUS(ipuflow_session_create_from_memory(NULL, ipf_model_identity, 0, NULL, &s),
                     IPUFLOW_STATUS_MODEL_DECODE);
    IPF_CHECK_STATUS(ipuflow_session_create_from_memory(NULL, NULL, 0, NULL, &s), IPUFLOW_STATUS_MODEL_DECODE);
    IPF_CHECK_STATUS(ipuflow_session_create_from_memory(NULL, garbage, sizeof garbage, NULL, &s),
                     IPUFLOW_STATUS_RUNTIME);
    IPF_CHECK_ERROR(ipuflow_session_create_from_memory(NULL, ipf_model_identity, sizeof ipf_model_identity, NULL,
                                                       NULL),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_ERROR(ipuflow_session_create_from_model(NULL, NULL, NULL, &s), IPUFLOW_STATUS_NULL_ARGUMENT, "model");

    /* An option ONNX Runtime refuses at creation: named in the message. */
    IPF_CHECK_STATUS(ipuflow_session_options_create(&bad), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_set_intra_op_threads(bad, 2), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_add_config_entry(bad, "session.intra_op_thread_affinities", "garbage"),
                     IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_session_create_from_memory(NULL, ipf_model_identity, sizeof ipf_model_identity, bad, &s),
                    IPUFLOW_STATUS_RUNTIME, "garbage");
    ipuflow_session_options_free(bad);
    /* The optimized model cannot be written (its directory does not exist). */
    IPF_CHECK_STATUS(ipuflow_session_options_create(&bad), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(
        ipuflow_session_options_set_optimized_model_path(bad, ipf_path(tmp, "no-such-dir" IPF_SEP "opt.onnx")),
        IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_create_from_memory(NULL, ipf_model_identity, sizeof ipf_model_identity, bad, &s),
                     IPUFLOW_STATUS_RUNTIME);
    ipuflow_session_options_free(bad);
    IPF_CHECK(s == (ipuflow_session *)SENTINEL);

    /* The model API and the runtime meet: a model with external data, loaded by ipuflow, becomes a session. */
    IPF_CHECK_STATUS(ipuflow_model_load_bytes(ipf_model_weights, sizeof ipf_model_weights, NULL, &m),
                     IPUFLOW_STATUS_OK);
    s = NULL;
    IPF_CHECK_STATUS(ipuflow_session_create_from_model(NULL, m, NULL, &s), IPUFLOW_STATUS_OK);
    ipuflow_session_free(s);
    ipuflow_model_free(m);
    ipuflow_session_free(NULL);
}

IPF_TEST(session_create_ok_and_info)
{
    ipuflow_session *s = NULL, *sw = NULL;
    ipuflow_tensor_info info, sentinel;
    size_t n = 77;
    const char *model = ipf_path(tmp, "identity2.onnx");
    uint16_t wide[1024];
    size_t i;
    NEED_ORT();
    IPF_REQUIRE(ipf_write_file(model, ipf_model_identity, sizeof ipf_model_identity) == 0);
    IPF_CHECK_STATUS(ipuflow_session_create(NULL, model, NULL, &s), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(s != NULL);
    for (i = 0; model[i] && i + 1 < sizeof wide / sizeof wide[0]; i++)
        wide[i] = (uint16_t)(unsigned char)model[i];
    wide[i] = 0;
    IPF_CHECK_STATUS(ipuflow_session_create_w(NULL, wide, NULL, &sw), IPUFLOW_STATUS_OK);
    ipuflow_session_free(sw);

    IPF_CHECK_ERROR(ipuflow_session_input_count(NULL, &n), IPUFLOW_STATUS_NULL_ARGUMENT, "session");
    IPF_CHECK_ERROR(ipuflow_session_input_count(s, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_ERROR(ipuflow_session_output_count(NULL, &n), IPUFLOW_STATUS_NULL_ARGUMENT, "session");
    IPF_CHECK_ERROR(ipuflow_session_output_count(s, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK(n == 77);
    IPF_CHECK_STATUS(ipuflow_session_input_count(s, &n), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(n, ==, 1);
    n = 77;
    IPF_CHECK_STATUS(ipuflow_session_output_count(s, &n), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(n, ==, 1);

    memset(&sentinel, 0x5e, sizeof sentinel);
    info = sentinel;
    IPF_CHECK_ERROR(ipuflow_session_input_info(NULL, 0, &info), IPUFLOW_STATUS_NULL_ARGUMENT, "session");
    IPF_CHECK_ERROR(ipuflow_session_input_info(s, 0, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_STATUS(ipuflow_session_input_info(s, 1, &info), IPUFLOW_STATUS_OUT_OF_RANGE);
    IPF_CHECK_STATUS(ipuflow_session_input_info(s, (size_t)-1, &info), IPUFLOW_STATUS_OUT_OF_RANGE);
    IPF_CHECK_ERROR(ipuflow_session_output_info(NULL, 0, &info), IPUFLOW_STATUS_NULL_ARGUMENT, "session");
    IPF_CHECK_ERROR(ipuflow_session_output_info(s, 0, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_STATUS(ipuflow_session_output_info(s, 1, &info), IPUFLOW_STATUS_OUT_OF_RANGE);
    IPF_CHECK(memcmp(&info, &sentinel, sizeof info) == 0);

    IPF_CHECK_STATUS(ipuflow_session_input_info(s, 0, &info), IPUFLOW_STATUS_OK);
    IPF_CHECK_STR(info.name, "x");
    IPF_CHECK_INT(info.element_type, ==, IPUFLOW_ELEMENT_TYPE_FLOAT);
    IPF_CHECK_INT(info.rank, ==, 2);
    if (info.rank == 2 && info.shape && info.dim_names) {
        IPF_CHECK_INT(info.shape[0], ==, -1);
        IPF_CHECK_INT(info.shape[1], ==, 3);
        IPF_CHECK_STR(info.dim_names[0], "batch");
        IPF_CHECK_STR(info.dim_names[1], "");
    } else {
        IPF_CHECK(info.shape != NULL && info.dim_names != NULL);
    }
    IPF_CHECK_STATUS(ipuflow_session_output_info(s, 0, &info), IPUFLOW_STATUS_OK);
    IPF_CHECK_STR(info.name, "y");
    ipuflow_session_free(s);
}

/* -------------------------------------------------------------------------------------------------------------- */
/* Runs */

static ipuflow_session *identity_session(void)
{
    ipuflow_session *s = NULL;
    IPF_CHECK_STATUS(ipuflow_session_create_from_memory(NULL, ipf_model_identity, sizeof ipf_model_identity, NULL, &s),
                     IPUFLOW_STATUS_OK);
    return s;
}

static const float x_data[6] = {1, 2, 3, 4, 5, 6};
static const int64_t x_shape[2] = {2, 3};

static ipuflow_tensor_view x_view(void)
{
    ipuflow_tensor_view v;
    v.element_type = IPUFLOW_ELEMENT_TYPE_FLOAT;
    v.shape = x_shape;
    v.rank = 2;
    v.data = (void *)(uintptr_t)x_data; /* inputs are only read */
    v.byte_size = sizeof x_data;
    return v;
}

IPF_TEST(run_ok_allocated_and_preallocated)
{
    ipuflow_session *s;
    const char *in_names[1] = {"x"}, *out_names[1] = {"y"};
    ipuflow_tensor_view in[1], pre[1], view;
    ipuflow_tensor *outs[1] = {(ipuflow_tensor *)SENTINEL};
    float out_buf[6] = {0};
    void *data = NULL;
    size_t size = 0;
    NEED_ORT();
    s = identity_session();
    IPF_REQUIRE(s != NULL);
    in[0] = x_view();

    IPF_CHECK_STATUS(ipuflow_session_run(s, NULL, in_names, in, 1, out_names, NULL, outs, 1), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(outs[0] != NULL && outs[0] != (ipuflow_tensor *)SENTINEL);
    IPF_CHECK_ERROR(ipuflow_tensor_get_view(NULL, &view), IPUFLOW_STATUS_NULL_ARGUMENT, "tensor");
    IPF_CHECK_ERROR(ipuflow_tensor_get_view(outs[0], NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_STATUS(ipuflow_tensor_get_view(outs[0], &view), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(view.element_type, ==, IPUFLOW_ELEMENT_TYPE_FLOAT);
    IPF_CHECK_INT(view.rank, ==, 2);
    IPF_CHECK(view.shape != NULL && view.shape[0] == 2 && view.shape[1] == 3);
    IPF_CHECK_INT(view.byte_size, ==, sizeof x_data);
    IPF_CHECK(view.data != NULL && memcmp(view.data, x_data, sizeof x_data) == 0);
    IPF_CHECK_ERROR(ipuflow_tensor_data(NULL, &data, &size), IPUFLOW_STATUS_NULL_ARGUMENT, "tensor");
    IPF_CHECK_STATUS(ipuflow_tensor_data(outs[0], &data, &size), IPUFLOW_STATUS_OK);
    IPF_CHECK(data == view.data && size == sizeof x_data);
    IPF_CHECK_STATUS(ipuflow_tensor_data(outs[0], NULL, NULL), IPUFLOW_STATUS_OK);
    /* An output tensor's view is a valid input of another run. */
    {
        ipuflow_tensor *again[1] = {NULL};
        IPF_CHECK_STATUS(ipuflow_session_run(s, NULL, in_names, &view, 1, out_names, NULL, again, 1),
                         IPUFLOW_STATUS_OK);
        ipuflow_tensor_free(again[0]);
    }
    /* Tensors outlive their session. */
    ipuflow_session_free(s);
    IPF_CHECK(memcmp(view.data, x_data, sizeof x_data) == 0);
    ipuflow_tensor_free(outs[0]);
    ipuflow_tensor_free(NULL);

    /* Caller buffer for the output: written in place, the slot set to NULL, out_tensors may even be NULL. */
    s = identity_session();
    IPF_REQUIRE(s != NULL);
    pre[0] = x_view();
    pre[0].data = out_buf;
    outs[0] = (ipuflow_tensor *)SENTINEL;
    IPF_CHECK_STATUS(ipuflow_session_run(s, NULL, in_names, in, 1, out_names, pre, outs, 1), IPUFLOW_STATUS_OK);
    IPF_CHECK(outs[0] == NULL);
    IPF_CHECK(memcmp(out_buf, x_data, sizeof x_data) == 0);
    memset(out_buf, 0, sizeof out_buf);
    IPF_CHECK_STATUS(ipuflow_session_run(s, NULL, in_names, in, 1, out_names, pre, NULL, 1), IPUFLOW_STATUS_OK);
    IPF_CHECK(memcmp(out_buf, x_data, sizeof x_data) == 0);
    ipuflow_session_free(s);
}

/* Generated with onnx 1.23.2 (helper.make_graph / make_model, SerializeToString(deterministic=True)):
 * Identity s:string[2,d] -> s_out and f8:float8e4m3fn[2,d] -> f8_out, opset 21, ir 10 (202 bytes) */
static const unsigned char ipf_model_string_float8[] = {
    0x08, 0x0a, 0x12, 0x0d, 0x69, 0x70, 0x75, 0x66, 0x6c, 0x6f, 0x77, 0x2d, 0x74, 0x65, 0x73, 0x74,
    0x73, 0x3a, 0xb0, 0x01, 0x0a, 0x1a, 0x0a, 0x01, 0x73, 0x12, 0x05, 0x73, 0x5f, 0x6f, 0x75, 0x74,
    0x1a, 0x04, 0x69, 0x64, 0x5f, 0x73, 0x22, 0x08, 0x49, 0x64, 0x65, 0x6e, 0x74, 0x69, 0x74, 0x79,
    0x0a, 0x1d, 0x0a, 0x02, 0x66, 0x38, 0x12, 0x06, 0x66, 0x38, 0x5f, 0x6f, 0x75, 0x74, 0x1a, 0x05,
    0x69, 0x64, 0x5f, 0x66, 0x38, 0x22, 0x08, 0x49, 0x64, 0x65, 0x6e, 0x74, 0x69, 0x74, 0x79, 0x12,
    0x11, 0x69, 0x70, 0x66, 0x5f, 0x73, 0x74, 0x72, 0x69, 0x6e, 0x67, 0x5f, 0x66, 0x6c, 0x6f, 0x61,
    0x74, 0x38, 0x5a, 0x14, 0x0a, 0x01, 0x73, 0x12, 0x0f, 0x0a, 0x0d, 0x08, 0x08, 0x12, 0x09, 0x0a,
    0x02, 0x08, 0x02, 0x0a, 0x03, 0x12, 0x01, 0x64, 0x5a, 0x15, 0x0a, 0x02, 0x66, 0x38, 0x12, 0x0f,
    0x0a, 0x0d, 0x08, 0x11, 0x12, 0x09, 0x0a, 0x02, 0x08, 0x02, 0x0a, 0x03, 0x12, 0x01, 0x64, 0x62,
    0x18, 0x0a, 0x05, 0x73, 0x5f, 0x6f, 0x75, 0x74, 0x12, 0x0f, 0x0a, 0x0d, 0x08, 0x08, 0x12, 0x09,
    0x0a, 0x02, 0x08, 0x02, 0x0a, 0x03, 0x12, 0x01, 0x64, 0x62, 0x19, 0x0a, 0x06, 0x66, 0x38, 0x5f,
    0x6f, 0x75, 0x74, 0x12, 0x0f, 0x0a, 0x0d, 0x08, 0x11, 0x12, 0x09, 0x0a, 0x02, 0x08, 0x02, 0x0a,
    0x03, 0x12, 0x01, 0x64, 0x42, 0x04, 0x0a, 0x00, 0x10, 0x15,
};

/* Strings cross as arrays of const char* (copied in; outputs always allocated, with exact lengths beside them);
 * float8 crosses as raw bytes, in caller buffers too. */
IPF_TEST(run_strings_and_float8)
{
    static const char *const texts[6] = {"a", "", "h\xc3\xa9llo", "\xf0\x9f\x98\x80", "tab\there", "z"};
    /* float8e4m3fn: 1, -2, 448 (the largest), 2^-9 (the smallest subnormal), 0, -0 */
    static const unsigned char f8[6] = {0x38, 0xc0, 0x7e, 0x01, 0x00, 0x80};
    static const int64_t shape[2] = {2, 3};
    const char *in_names[2] = {"s", "f8"}, *out_names[2] = {"s_out", "f8_out"};
    const char *ptrs[6];
    const char *const *got;
    const size_t *lens = NULL;
    ipuflow_tensor_view in[2], pre[2], view;
    ipuflow_tensor *outs[2] = {NULL, NULL};
    unsigned char f8_buf[6] = {0};
    size_t i, n = 0;
    ipuflow_session *s = NULL;
    NEED_ORT();
    IPF_CHECK_STATUS(ipuflow_session_create_from_memory(NULL, ipf_model_string_float8, sizeof ipf_model_string_float8,
                                                        NULL, &s),
                     IPUFLOW_STATUS_OK);
    IPF_REQUIRE(s != NULL);
    memcpy(ptrs, texts, sizeof ptrs);
    in[0].element_type = IPUFLOW_ELEMENT_TYPE_STRING;
    in[0].shape = shape;
    in[0].rank = 2;
    in[0].data = (void *)ptrs; /* inputs are only read */
    in[0].byte_size = sizeof ptrs;
    in[1].element_type = IPUFLOW_ELEMENT_TYPE_FLOAT8E4M3FN;
    in[1].shape = shape;
    in[1].rank = 2;
    in[1].data = (void *)(uintptr_t)f8;
    in[1].byte_size = sizeof f8;

    IPF_CHECK_STATUS(ipuflow_session_run(s, NULL, in_names, in, 2, out_names, NULL, outs, 2), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(outs[0] != NULL && outs[1] != NULL);
    IPF_CHECK_STATUS(ipuflow_tensor_get_view(outs[0], &view), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(view.element_type, ==, IPUFLOW_ELEMENT_TYPE_STRING);
    IPF_CHECK(view.rank == 2 && view.shape[0] == 2 && view.shape[1] == 3);
    IPF_CHECK_INT(view.byte_size, ==, 6 * sizeof(const char *));
    IPF_CHECK_STATUS(ipuflow_tensor_string_lengths(outs[0], &lens, &n), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(n == 6 && lens != NULL && view.data != NULL);
    got = (const char *const *)view.data;
    for (i = 0; i < 6; i++) {
        IPF_CHECK_STR(got[i], texts[i]);
        IPF_CHECK_INT(lens[i], ==, strlen(texts[i]));
    }
    IPF_CHECK_ERROR(ipuflow_tensor_string_lengths(NULL, &lens, &n), IPUFLOW_STATUS_NULL_ARGUMENT, "tensor");
    IPF_CHECK_ERROR(ipuflow_tensor_string_lengths(outs[0], NULL, &n), IPUFLOW_STATUS_NULL_ARGUMENT, "out_lengths");
    IPF_CHECK_ERROR(ipuflow_tensor_string_lengths(outs[0], &lens, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out_count");
    IPF_CHECK_ERROR(ipuflow_tensor_string_lengths(outs[1], &lens, &n), IPUFLOW_STATUS_TENSOR_MISMATCH, "float8e4m3fn");
    IPF_CHECK_STATUS(ipuflow_tensor_get_view(outs[1], &view), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(view.element_type, ==, IPUFLOW_ELEMENT_TYPE_FLOAT8E4M3FN);
    IPF_CHECK(view.byte_size == sizeof f8 && memcmp(view.data, f8, sizeof f8) == 0);
    ipuflow_tensor_free(outs[0]);
    ipuflow_tensor_free(outs[1]);

    /* The float8 output into a caller buffer; the string output allocated (NULL data), never preallocated. */
    pre[0] = in[0];
    pre[0].data = NULL;
    pre[0].byte_size = 0;
    pre[1] = in[1];
    pre[1].data = f8_buf;
    outs[0] = outs[1] = (ipuflow_tensor *)SENTINEL;
    IPF_CHECK_STATUS(ipuflow_session_run(s, NULL, in_names, in, 2, out_names, pre, outs, 2), IPUFLOW_STATUS_OK);
    IPF_CHECK(outs[1] == NULL && memcmp(f8_buf, f8, sizeof f8) == 0);
    IPF_REQUIRE(outs[0] != NULL && outs[0] != (ipuflow_tensor *)SENTINEL);
    IPF_CHECK_STATUS(ipuflow_tensor_get_view(outs[0], &view), IPUFLOW_STATUS_OK);
    IPF_CHECK(view.data != NULL && strcmp(((const char *const *)view.data)[2], texts[2]) == 0);
    ipuflow_tensor_free(outs[0]);

    /* Errors: a preallocated string output, a NULL string, a byte size that is not n * sizeof(char *). */
    outs[0] = outs[1] = (ipuflow_tensor *)SENTINEL;
    pre[0].data = (void *)ptrs;
    pre[0].byte_size = sizeof ptrs;
    IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, in_names, in, 2, out_names, pre, outs, 2),
                    IPUFLOW_STATUS_INVALID_ARGUMENT, "string output");
    ptrs[4] = NULL;
    IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, in_names, in, 2, out_names, NULL, outs, 2),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "inputs[0].data[4]");
    ptrs[4] = texts[4];
    in[0].byte_size = sizeof ptrs - 1;
    IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, in_names, in, 2, out_names, NULL, outs, 2),
                    IPUFLOW_STATUS_TENSOR_MISMATCH, "sizeof(char*)");
    in[0].byte_size = sizeof ptrs - sizeof ptrs[0];
    IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, in_names, in, 2, out_names, NULL, outs, 2),
                    IPUFLOW_STATUS_TENSOR_MISMATCH, "5 strings");
    IPF_CHECK(outs[0] == (ipuflow_tensor *)SENTINEL && outs[1] == (ipuflow_tensor *)SENTINEL);
    ipuflow_session_free(s);
}

IPF_TEST(run_argument_errors)
{
    ipuflow_session *s;
    const char *in_names[2] = {"x", "x"}, *out_names[2] = {"y", "y"};
    const char *null_name[1] = {NULL};
    const char *bad_in[1] = {"nope"}, *bad_out[1] = {"nope"};
    ipuflow_tensor_view in[2], v;
    ipuflow_tensor *outs[2] = {(ipuflow_tensor *)SENTINEL, (ipuflow_tensor *)SENTINEL};
    static const int64_t shape_1d[1] = {6}, shape_24[2] = {2, 2}, shape_neg[2] = {-2, 3};
    static const int32_t ints[6] = {1, 2, 3, 4, 5, 6};
    float aligned_buf[8];
    unsigned char *unaligned = (unsigned char *)aligned_buf + 1; /* never 4-byte aligned */
    NEED_ORT();
    s = identity_session();
    IPF_REQUIRE(s != NULL);
    in[0] = x_view();
    in[1] = x_view();

    IPF_CHECK_ERROR(ipuflow_session_run(NULL, NULL, in_names, in, 1, out_names, NULL, outs, 1),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "session");
    IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, NULL, in, 1, out_names, NULL, outs, 1), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "input_names");
    IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, in_names, NULL, 1, out_names, NULL, outs, 1),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "inputs");
    IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, in_names, in, 1, NULL, NULL, outs, 1), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "output_names");
    IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, null_name, in, 1, out_names, NULL, outs, 1),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "input_names[0]");
    IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, in_names, in, 1, null_name, NULL, outs, 1),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "output_names[0]");
    IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, in_names, in, 1, out_names, NULL, NULL, 1),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "out_tensors");
    IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, in_names, in, 1, out_names, NULL, outs, 0),
                    IPUFLOW_STATUS_INVALID_ARGUMENT, "'y'");
    IPF_CHECK_STATUS(ipuflow_session_run(s, NULL, in_names, in, 1, out_names, NULL, outs, 2),
                     IPUFLOW_STATUS_INVALID_ARGUMENT); /* y twice */
    IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, bad_in, in, 1, out_names, NULL, outs, 1),
                    IPUFLOW_STATUS_TENSOR_MISMATCH, "nope");
    IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, in_names, in, 1, bad_out, NULL, outs, 1),
                    IPUFLOW_STATUS_TENSOR_MISMATCH, "nope");
    IPF_CHECK_STATUS(ipuflow_session_run(s, NULL, in_names, in, 2, out_names, NULL, outs, 1),
                     IPUFLOW_STATUS_TENSOR_MISMATCH); /* x twice */
    IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, NULL, NULL, 0, out_names, NULL, outs, 1),
                    IPUFLOW_STATUS_TENSOR_MISMATCH, "x"); /* x missing */

    /* Views that do not match the model or are malformed. */
    v = x_view();
    v.element_type = IPUFLOW_ELEMENT_TYPE_INT32;
    v.data = (void *)(uintptr_t)ints;
    IPF_CHECK_STATUS(ipuflow_session_run(s, NULL, in_names, &v, 1, out_names, NULL, outs, 1),
                     IPUFLOW_STATUS_TENSOR_MISMATCH);
    v = x_view();
    v.element_type = 99;
    IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, in_names, &v, 1, out_names, NULL, outs, 1),
                    IPUFLOW_STATUS_INVALID_ENUM, "inputs[0].element_type");
    v.element_type = IPUFLOW_ELEMENT_TYPE_STRING;
    {
        int st = (int)ipuflow_session_run(s, NULL, in_names, &v, 1, out_names, NULL, outs, 1);
        IPF_CHECK(st == IPUFLOW_STATUS_UNSUPPORTED || st == IPUFLOW_STATUS_TENSOR_MISMATCH);
    }
    v = x_view();
    v.shape = shape_1d;
    v.rank = 1;
    IPF_CHECK_STATUS(ipuflow_session_run(s, NULL, in_names, &v, 1, out_names, NULL, outs, 1),
                     IPUFLOW_STATUS_TENSOR_MISMATCH);
    /* A rank far larger than the shape array (the caller's bug): reported from the rank alone, the array is
     * never read past its one element (the mismatch message used to print `rank` dimensions). */
    v = x_view();
    v.shape = shape_1d;
    v.rank = (size_t)1 << 30;
    IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, in_names, &v, 1, out_names, NULL, outs, 1),
                    IPUFLOW_STATUS_TENSOR_MISMATCH, "rank is 1073741824");
    {
        ipuflow_tensor_view pre = x_view();
        float buf[6];
        pre.data = buf;
        pre.byte_size = sizeof buf;
        pre.shape = shape_1d;
        pre.rank = (size_t)1 << 30;
        in[0] = x_view();
        IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, in_names, in, 1, out_names, &pre, outs, 1),
                        IPUFLOW_STATUS_TENSOR_MISMATCH, "preallocated_outputs[0]");
    }
    v = x_view();
    v.shape = shape_24;
    v.byte_size = 4 * sizeof(float);
    IPF_CHECK_STATUS(ipuflow_session_run(s, NULL, in_names, &v, 1, out_names, NULL, outs, 1),
                     IPUFLOW_STATUS_TENSOR_MISMATCH); /* fixed dimension 3 given as 2 */
    v = x_view();
    v.shape = shape_neg;
    IPF_CHECK_STATUS(ipuflow_session_run(s, NULL, in_names, &v, 1, out_names, NULL, outs, 1),
                     IPUFLOW_STATUS_TENSOR_MISMATCH);
    v = x_view();
    v.byte_size = sizeof x_data - 4;
    IPF_CHECK_STATUS(ipuflow_session_run(s, NULL, in_names, &v, 1, out_names, NULL, outs, 1),
                     IPUFLOW_STATUS_TENSOR_MISMATCH);
    v = x_view();
    v.shape = NULL;
    IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, in_names, &v, 1, out_names, NULL, outs, 1),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "inputs[0].shape");
    v = x_view();
    v.data = NULL;
    IPF_CHECK_ERROR(ipuflow_session_run(s, NULL, in_names, &v, 1, out_names, NULL, outs, 1),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "inputs[0].data");
    v = x_view();
    memcpy(unaligned, x_data, sizeof x_data);
    v.data = unaligned;
    IPF_CHECK_STATUS(ipuflow_session_run(s, NULL, in_names, &v, 1, out_names, NULL, outs, 1),
                     IPUFLOW_STATUS_INVALID_ARGUMENT);
    /* A caller output buffer of the wrong shape or type. */
    {
        ipuflow_tensor_view pre = x_view();
        float small[4];
        pre.shape = shape_24;
        pre.data = small;
        pre.byte_size = sizeof small;
        IPF_CHECK_STATUS(ipuflow_session_run(s, NULL, in_names, in, 1, out_names, &pre, outs, 1),
                         IPUFLOW_STATUS_TENSOR_MISMATCH);
        pre = x_view();
        pre.element_type = IPUFLOW_ELEMENT_TYPE_INT32;
        pre.data = small;
        IPF_CHECK_STATUS(ipuflow_session_run(s, NULL, in_names, in, 1, out_names, &pre, outs, 1),
                         IPUFLOW_STATUS_TENSOR_MISMATCH);
    }
    /* Nothing was written into out_tensors by any failure. */
    IPF_CHECK(outs[0] == (ipuflow_tensor *)SENTINEL && outs[1] == (ipuflow_tensor *)SENTINEL);
    ipuflow_session_free(s);
}

IPF_TEST(run_options_and_cancel)
{
    ipuflow_session *s;
    ipuflow_run_options *ro = (ipuflow_run_options *)SENTINEL;
    const char *in_names[1] = {"x"}, *out_names[1] = {"y"};
    ipuflow_tensor_view in[1];
    ipuflow_tensor *outs[1] = {(ipuflow_tensor *)SENTINEL};
    int32_t flag = 77;
    NEED_ORT();
    s = identity_session();
    IPF_REQUIRE(s != NULL);
    in[0] = x_view();

    IPF_CHECK_ERROR(ipuflow_run_options_create(NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_STATUS(ipuflow_run_options_create(&ro), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ro != NULL && ro != (ipuflow_run_options *)SENTINEL);
    IPF_CHECK_ERROR(ipuflow_run_options_cancel(NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "options");
    IPF_CHECK_ERROR(ipuflow_run_options_reset(NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "options");
    IPF_CHECK_ERROR(ipuflow_run_options_is_cancelled(NULL, &flag), IPUFLOW_STATUS_NULL_ARGUMENT, "options");
    IPF_CHECK_ERROR(ipuflow_run_options_is_cancelled(ro, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK(flag == 77);
    IPF_CHECK_ERROR(ipuflow_run_options_set_tag(NULL, "t"), IPUFLOW_STATUS_NULL_ARGUMENT, "options");
    IPF_CHECK_ERROR(ipuflow_run_options_set_tag(ro, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "tag");
    IPF_CHECK_STATUS(ipuflow_run_options_set_tag(ro, "\xff"), IPUFLOW_STATUS_INVALID_UTF8);
    IPF_CHECK_STATUS(ipuflow_run_options_set_tag(ro, "ipf-run"), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_run_options_set_log_level(NULL, 0), IPUFLOW_STATUS_NULL_ARGUMENT, "options");
    IPF_CHECK_ERROR(ipuflow_run_options_set_log_level(ro, 5), IPUFLOW_STATUS_INVALID_ENUM, "log_level");
    IPF_CHECK_STATUS(ipuflow_run_options_set_log_level(ro, -1), IPUFLOW_STATUS_INVALID_ENUM);
    IPF_CHECK_STATUS(ipuflow_run_options_set_log_level(ro, IPUFLOW_LOG_LEVEL_ERROR), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_run_options_add_config_entry(NULL, "k", "v"), IPUFLOW_STATUS_NULL_ARGUMENT);
    IPF_CHECK_ERROR(ipuflow_run_options_add_config_entry(ro, NULL, "v"), IPUFLOW_STATUS_NULL_ARGUMENT, "key");
    IPF_CHECK_ERROR(ipuflow_run_options_add_config_entry(ro, "k", NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "value");
    IPF_CHECK_STATUS(ipuflow_run_options_add_config_entry(ro, "", "v"), IPUFLOW_STATUS_INVALID_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_run_options_add_config_entry(ro, "memory.enable_memory_arena_shrinkage", "cpu:0"),
                     IPUFLOW_STATUS_OK);

    IPF_CHECK_STATUS(ipuflow_run_options_is_cancelled(ro, &flag), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(flag, ==, 0);
    IPF_CHECK_STATUS(ipuflow_session_run(s, ro, in_names, in, 1, out_names, NULL, outs, 1), IPUFLOW_STATUS_OK);
    ipuflow_tensor_free(outs[0]);
    outs[0] = (ipuflow_tensor *)SENTINEL;

    IPF_CHECK_STATUS(ipuflow_run_options_cancel(ro), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_run_options_cancel(ro), IPUFLOW_STATUS_OK); /* idempotent */
    IPF_CHECK_STATUS(ipuflow_run_options_is_cancelled(ro, &flag), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(flag, ==, 1);
    IPF_CHECK_STATUS(ipuflow_session_run(s, ro, in_names, in, 1, out_names, NULL, outs, 1),
                     IPUFLOW_STATUS_CANCELLED);
    IPF_CHECK(outs[0] == (ipuflow_tensor *)SENTINEL);
    IPF_CHECK_STATUS(ipuflow_run_options_reset(ro), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_run_options_is_cancelled(ro, &flag), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(flag, ==, 0);
    IPF_CHECK_STATUS(ipuflow_session_run(s, ro, in_names, in, 1, out_names, NULL, outs, 1), IPUFLOW_STATUS_OK);
    ipuflow_tensor_free(outs[0]);
    ipuflow_run_options_free(ro);
    ipuflow_run_options_free(NULL);
    ipuflow_session_free(s);
}

struct runner {
    ipuflow_session *s;
    int failures;
};

static void run_many(void *arg)
{
    struct runner *r = (struct runner *)arg;
    const char *in_names[1] = {"x"}, *out_names[1] = {"y"};
    ipuflow_tensor_view in[1];
    int i;
    in[0] = x_view();
    for (i = 0; i < 20; i++) {
        ipuflow_tensor *out[1] = {NULL};
        ipuflow_tensor_view v;
        if (ipuflow_session_run(r->s, NULL, in_names, in, 1, out_names, NULL, out, 1) != IPUFLOW_STATUS_OK ||
            ipuflow_tensor_get_view(out[0], &v) != IPUFLOW_STATUS_OK || v.byte_size != sizeof x_data ||
            memcmp(v.data, x_data, sizeof x_data) != 0)
            r->failures++;
        ipuflow_tensor_free(out[0]);
    }
}

IPF_TEST(run_from_several_threads)
{
    struct runner r;
    int i;
    NEED_ORT();
    r.s = identity_session();
    r.failures = 0;
    IPF_REQUIRE(r.s != NULL);
    /* Sequential threads (ipf_run_thread joins): each thread's runs and thread-local state are checked by the
     * sanitizers; concurrent runs are covered by the Rust tests. */
    for (i = 0; i < 4; i++)
        IPF_REQUIRE(ipf_run_thread(run_many, &r) == 0);
    IPF_CHECK_INT(r.failures, ==, 0);
    ipuflow_session_free(r.s);
}

IPF_TEST(real_model_session)
{
    /* The smallest shared model, if there: created from the file, run once on zeros. */
    const char *shared = ipf_env("IPUFLOW_TEST_SHARED_DIR");
    char path[1024];
    ipuflow_session *s = NULL;
    ipuflow_tensor_info info;
    size_t n_in = 0, n_out = 0, i, elems = 1, esize = 0;
    NEED_ORT();
    if (!shared)
        IPF_SKIP_DATA("IPUFLOW_TEST_SHARED_DIR is not set (no ../shared beside the repository)");
    ipf_join(path, sizeof path, shared, "models" IPF_SEP "blazeface-short-range.onnx");
    if (!ipf_is_file(path))
        IPF_SKIP_DATA("no models/blazeface-short-range.onnx in the shared directory");
    IPF_CHECK_STATUS(ipuflow_session_create(NULL, path, NULL, &s), IPUFLOW_STATUS_OK);
    if (!s)
        return;
    IPF_CHECK_STATUS(ipuflow_session_input_count(s, &n_in), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_output_count(s, &n_out), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(n_in == 1 && n_out >= 1);
    IPF_CHECK_STATUS(ipuflow_session_input_info(s, 0, &info), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_element_type_size(info.element_type, &esize), IPUFLOW_STATUS_OK);
    {
        int64_t shape[8];
        const char *in_names[1];
        const char **out_names = (const char **)calloc(n_out, sizeof *out_names);
        ipuflow_tensor **outs = (ipuflow_tensor **)calloc(n_out, sizeof *outs);
        ipuflow_tensor_view v;
        void *zeros;
        IPF_REQUIRE(info.rank <= 8 && out_names && outs);
        for (i = 0; i < info.rank; i++) {
            shape[i] = info.shape[i] < 0 ? 1 : info.shape[i];
            elems *= (size_t)shape[i];
        }
        for (i = 0; i < n_out; i++) {
            ipuflow_tensor_info o;
            IPF_CHECK_STATUS(ipuflow_session_output_info(s, i, &o), IPUFLOW_STATUS_OK);
            out_names[i] = o.name;
        }
        zeros = calloc(elems, esize);
        in_names[0] = info.name;
        v.element_type = info.element_type;
        v.shape = shape;
        v.rank = info.rank;
        v.data = zeros;
        v.byte_size = elems * esize;
        IPF_CHECK_STATUS(ipuflow_session_run(s, NULL, in_names, &v, 1, out_names, NULL, outs, n_out),
                         IPUFLOW_STATUS_OK);
        for (i = 0; i < n_out; i++)
            ipuflow_tensor_free(outs[i]);
        free(zeros);
        free(outs);
        free((void *)out_names);
    }
    ipuflow_session_free(s);
}

int main(void)
{
    const char *ort = ipf_env("IPUFLOW_TEST_ORT_LIBRARY");
    tmp = ipf_mkdtemp("session");
    if (!tmp) {
        printf("Bail out! cannot create a temporary directory\n");
        return 1;
    }
    IPF_RUN(element_type_sizes);
    IPF_RUN(session_options_errors);
    if (ort) {
        int st = (int)ipuflow_runtime_load(ort);
        have_ort = st == IPUFLOW_STATUS_OK;
        if (!have_ort)
            printf("# cannot load %s: %s: %s\n", ort, ipuflow_status_str(st), ipuflow_last_error());
    }
    IPF_RUN(env_errors_and_one_per_process);
    IPF_RUN(session_create_errors);
    IPF_RUN(session_create_ok_and_info);
    IPF_RUN(run_ok_allocated_and_preallocated);
    IPF_RUN(run_strings_and_float8);
    IPF_RUN(run_argument_errors);
    IPF_RUN(run_options_and_cancel);
    IPF_RUN(run_from_several_threads);
    IPF_RUN(real_model_session);
    ipf_rmtree(tmp);
    {
        int rc = ipf_done();
        /* IPUFLOW_TEST_ORT_LIBRARY was given but did not load: that is a failure, not a skip. */
        return (ort && !have_ort) ? 1 : rc;
    }
}
