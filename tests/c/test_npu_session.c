/*
 * NPU sessions from C: the session device (CPU / IPU / AUTO), VitisAI provider options, generic execution providers,
 * the fallback policy and ONNX Runtime's placement report.
 *
 * The runtime under test is a CPU-only ONNX Runtime from PyPI (scripts/fetch_ort.sh: 1.32.0, and 1.19.0 in test.sh's
 * ort-oldest section): it really refuses the VitisAI EP ("Failed to load shared library" in 1.32, "Failed to load
 * library" in 1.19), so STRICT must fail with IPUFLOW_STATUS_DEVICE_UNAVAILABLE and that text, and PREFER must fall
 * back to the CPU and say why. The placement report needs C API 24 (ONNX Runtime 1.24): below it, the placement
 * calls must answer IPUFLOW_STATUS_UNSUPPORTED saying so. Every error path checks that outputs survive failures
 * untouched.
 */
#include "ipuflow.h"
#include "ipf_test.h"
#include "ipf_fs.h"
#include "test_models.h"

#include <math.h>
#include <stdint.h>

#define SENTINEL ((void *)(uintptr_t)0x5e5e5e5e)
#define ORT_REASON "Failed to load" /* then " shared library" (1.32) or " library" (1.19) */

static const char *tmp;
static int have_ort;
static int have_placement; /* the loaded runtime has Session_GetEpGraphAssignmentInfo (C API >= 24) */

#define NEED_ORT()                                                                                                  \
    do {                                                                                                            \
        if (!have_ort)                                                                                              \
            IPF_SKIP_DATA("no ONNX Runtime (IPUFLOW_TEST_ORT_LIBRARY unset or not loadable)");                           \
    } while (0)

static ipuflow_session_options *opts_with(int device, int policy, double min_fraction)
{
    ipuflow_session_options *o = NULL;
    if (ipuflow_session_options_create(&o) != IPUFLOW_STATUS_OK)
        return NULL;
    if (ipuflow_session_options_set_device(o, device) != IPUFLOW_STATUS_OK ||
        (policy >= 0 && ipuflow_session_options_set_fallback(o, policy, min_fraction) != IPUFLOW_STATUS_OK)) {
        ipuflow_session_options_free(o);
        return NULL;
    }
    return o;
}

static ipuflow_status create_identity(const ipuflow_session_options *o, ipuflow_session **s)
{
    return ipuflow_session_create_from_memory(NULL, ipf_model_identity, sizeof ipf_model_identity, o, s);
}

/* -------------------------------------------------------------------------------------------------------------- */
/* No runtime needed */

IPF_TEST(options_errors)
{
    ipuflow_session_options *o = NULL;
    const char *keys[1] = {"k"}, *values[1] = {"v"}, *null_keys[1] = {NULL};
    IPF_REQUIRE(ipuflow_session_options_create(&o) == IPUFLOW_STATUS_OK);

    IPF_CHECK_ERROR(ipuflow_session_options_set_device(NULL, IPUFLOW_SESSION_DEVICE_IPU), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "options");
    IPF_CHECK_ERROR(ipuflow_session_options_set_device(o, 3), IPUFLOW_STATUS_INVALID_ENUM, "device");
    IPF_CHECK_ERROR(ipuflow_session_options_set_device(o, -1), IPUFLOW_STATUS_INVALID_ENUM, "device");
    IPF_CHECK_STATUS(ipuflow_session_options_set_device(o, IPUFLOW_SESSION_DEVICE_AUTO), IPUFLOW_STATUS_OK);

    IPF_CHECK_ERROR(ipuflow_session_options_set_fallback(NULL, IPUFLOW_FALLBACK_STRICT, 0.0),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "options");
    IPF_CHECK_ERROR(ipuflow_session_options_set_fallback(o, 2, 0.0), IPUFLOW_STATUS_INVALID_ENUM, "policy");
    IPF_CHECK_ERROR(ipuflow_session_options_set_fallback(o, IPUFLOW_FALLBACK_PREFER, 1.5),
                    IPUFLOW_STATUS_INVALID_ARGUMENT, "min_npu_fraction");
    IPF_CHECK_ERROR(ipuflow_session_options_set_fallback(o, IPUFLOW_FALLBACK_PREFER, -0.25),
                    IPUFLOW_STATUS_INVALID_ARGUMENT, "min_npu_fraction");
    IPF_CHECK_ERROR(ipuflow_session_options_set_fallback(o, IPUFLOW_FALLBACK_PREFER, NAN),
                    IPUFLOW_STATUS_INVALID_ARGUMENT, "min_npu_fraction");
    IPF_CHECK_STATUS(ipuflow_session_options_set_fallback(o, IPUFLOW_FALLBACK_PREFER, 0.5), IPUFLOW_STATUS_OK);

    /* VitisAI provider options: checked at once, the message names the option. */
    IPF_CHECK_ERROR(ipuflow_session_options_set_provider_option(NULL, "target", "X2"), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "options");
    IPF_CHECK_ERROR(ipuflow_session_options_set_provider_option(o, NULL, "X2"), IPUFLOW_STATUS_NULL_ARGUMENT, "key");
    IPF_CHECK_ERROR(ipuflow_session_options_set_provider_option(o, "target", NULL), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "value");
    IPF_CHECK_ERROR(ipuflow_session_options_set_provider_option(o, "opt_level", "7"), IPUFLOW_STATUS_INVALID_ARGUMENT,
                    "opt_level");
    IPF_CHECK_ERROR(ipuflow_session_options_set_provider_option(o, "target", "X9"), IPUFLOW_STATUS_INVALID_ARGUMENT,
                    "target");
    IPF_CHECK_ERROR(ipuflow_session_options_set_provider_option(o, "encryptionKey", "abc"),
                    IPUFLOW_STATUS_INVALID_ARGUMENT, "encryption_key");
    IPF_CHECK_ERROR(ipuflow_session_options_set_provider_option(o, "cache_key", "../up"), IPUFLOW_STATUS_PATH_REFUSED,
                    "cache_key");
    IPF_CHECK_ERROR(ipuflow_session_options_set_provider_option(o, "config_file", "/no/such/vaip_config.json"),
                    IPUFLOW_STATUS_FILE_NOT_FOUND, "config_file");
    IPF_CHECK_STATUS(ipuflow_session_options_set_provider_option(o, "target", "x2"), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_session_options_set_provider_option(o, "target", "X1"), IPUFLOW_STATUS_INVALID_ARGUMENT,
                    "different values");
    IPF_CHECK_STATUS(ipuflow_session_options_set_provider_option(o, "cacheDir", "/tmp/vaip-cache"), IPUFLOW_STATUS_OK);

    /* EP-context export entries through the session config. */
    IPF_CHECK_ERROR(ipuflow_session_options_add_config_entry(o, "ep.context_enable", "2"),
                    IPUFLOW_STATUS_INVALID_ARGUMENT, "ep.context_enable");
    IPF_CHECK_ERROR(ipuflow_session_options_add_config_entry(o, "ep.context_file_path", "/no/such/dir/model_ctx.onnx"),
                    IPUFLOW_STATUS_FILE_NOT_FOUND, "ep.context_file_path");
    IPF_CHECK_ERROR(ipuflow_session_options_add_config_entry(o, "ep.vitisaiexecutionprovider.opt_level", "9"),
                    IPUFLOW_STATUS_INVALID_ARGUMENT, "opt_level");
    IPF_CHECK_STATUS(ipuflow_session_options_add_config_entry(o, "ep.context_enable", "1"), IPUFLOW_STATUS_OK);

    /* Generic execution providers. */
    IPF_CHECK_ERROR(ipuflow_session_options_append_provider(NULL, "XNNPACK", NULL, NULL, 0),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "options");
    IPF_CHECK_ERROR(ipuflow_session_options_append_provider(o, NULL, NULL, NULL, 0), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "name");
    IPF_CHECK_ERROR(ipuflow_session_options_append_provider(o, "XNNPACK", NULL, values, 1),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "keys");
    IPF_CHECK_ERROR(ipuflow_session_options_append_provider(o, "XNNPACK", keys, NULL, 1),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "values");
    IPF_CHECK_ERROR(ipuflow_session_options_append_provider(o, "XNNPACK", null_keys, values, 1),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "keys[0]");
    IPF_CHECK_ERROR(ipuflow_session_options_append_provider(o, "", NULL, NULL, 0), IPUFLOW_STATUS_INVALID_ARGUMENT,
                    "empty");
    IPF_CHECK_ERROR(ipuflow_session_options_append_provider(o, "VitisAI", NULL, NULL, 0),
                    IPUFLOW_STATUS_INVALID_ARGUMENT, "device");
    IPF_CHECK_STATUS(ipuflow_session_options_append_provider(o, "XNNPACK", keys, values, 1), IPUFLOW_STATUS_OK);
    ipuflow_session_options_free(o);
}

IPF_TEST(getters_errors)
{
    int32_t dev = 77;
    const char *str = (const char *)SENTINEL;
    size_t n = 77, nodes = 77;
    char *json = (char *)SENTINEL;
    ipuflow_placement_summary sum, sum_sentinel;
    ipuflow_placed_node node, node_sentinel;
    memset(&sum_sentinel, 0x5e, sizeof sum_sentinel);
    memset(&node_sentinel, 0x5e, sizeof node_sentinel);
    sum = sum_sentinel;
    node = node_sentinel;
    IPF_CHECK_ERROR(ipuflow_session_get_device(NULL, &dev), IPUFLOW_STATUS_NULL_ARGUMENT, "session");
    IPF_CHECK_ERROR(ipuflow_session_get_fallback_reason(NULL, &str), IPUFLOW_STATUS_NULL_ARGUMENT, "session");
    IPF_CHECK_ERROR(ipuflow_session_get_cache_key(NULL, &str), IPUFLOW_STATUS_NULL_ARGUMENT, "session");
    IPF_CHECK_ERROR(ipuflow_session_get_placement_summary(NULL, &sum), IPUFLOW_STATUS_NULL_ARGUMENT, "session");
    IPF_CHECK_ERROR(ipuflow_session_placement_subgraph_count(NULL, &n), IPUFLOW_STATUS_NULL_ARGUMENT, "session");
    IPF_CHECK_ERROR(ipuflow_session_placement_get_subgraph(NULL, 0, &str, &nodes), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "session");
    IPF_CHECK_ERROR(ipuflow_session_placement_get_node(NULL, 0, 0, &node), IPUFLOW_STATUS_NULL_ARGUMENT, "session");
    IPF_CHECK_ERROR(ipuflow_session_placement_json(NULL, &json), IPUFLOW_STATUS_NULL_ARGUMENT, "session");
    IPF_CHECK(dev == 77 && str == (const char *)SENTINEL && n == 77 && nodes == 77 && json == (char *)SENTINEL);
    IPF_CHECK(memcmp(&sum, &sum_sentinel, sizeof sum) == 0 && memcmp(&node, &node_sentinel, sizeof node) == 0);
}

/* -------------------------------------------------------------------------------------------------------------- */
/* With ONNX Runtime */

IPF_TEST(strict_ipu_fails_with_orts_reason)
{
    ipuflow_session *s = (ipuflow_session *)SENTINEL;
    ipuflow_session_options *def = opts_with(IPUFLOW_SESSION_DEVICE_IPU, -1, 0.0); /* STRICT is IPU's default */
    ipuflow_session_options *strict = opts_with(IPUFLOW_SESSION_DEVICE_IPU, IPUFLOW_FALLBACK_STRICT, 0.0);
    NEED_ORT();
    IPF_REQUIRE(def && strict);
    IPF_CHECK_ERROR(create_identity(def, &s), IPUFLOW_STATUS_DEVICE_UNAVAILABLE, ORT_REASON);
    IPF_CHECK_ERROR(create_identity(strict, &s), IPUFLOW_STATUS_DEVICE_UNAVAILABLE, ORT_REASON);
    IPF_CHECK_CONTAINS(ipuflow_last_error(), "VitisAI");
    IPF_CHECK(s == (ipuflow_session *)SENTINEL);
    ipuflow_session_options_free(def);
    ipuflow_session_options_free(strict);
}

IPF_TEST(prefer_falls_back_and_says_why)
{
    ipuflow_session *s = NULL;
    ipuflow_session_options *o = opts_with(IPUFLOW_SESSION_DEVICE_IPU, IPUFLOW_FALLBACK_PREFER, 0.0);
    int32_t dev = -1;
    const char *reason = NULL, *key = NULL;
    ipuflow_placement_summary sum;
    NEED_ORT();
    IPF_REQUIRE(o);
    IPF_CHECK_STATUS(ipuflow_session_options_set_provider_option(o, "target", "X2"), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_create_from_memory(NULL, ipf_model_weights, sizeof ipf_model_weights, o, &s),
                     IPUFLOW_STATUS_OK);
    ipuflow_session_options_free(o);
    IPF_REQUIRE(s != NULL);
    IPF_CHECK_STATUS(ipuflow_session_get_device(s, &dev), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(dev, ==, IPUFLOW_DEVICE_CPU);
    IPF_CHECK_STATUS(ipuflow_session_get_fallback_reason(s, &reason), IPUFLOW_STATUS_OK);
    IPF_CHECK_CONTAINS(reason, ORT_REASON);
    if (have_placement) {
        /* The fraction rule: nothing on the NPU, and the reason says so. */
        IPF_CHECK_CONTAINS(reason, "0 of ");
        IPF_CHECK_CONTAINS(reason, "on the NPU");
    } else {
        IPF_CHECK_CONTAINS(reason, "placement unavailable");
    }
    /* The cache key computed for the attempt is kept (32 hex digits). */
    IPF_CHECK_STATUS(ipuflow_session_get_cache_key(s, &key), IPUFLOW_STATUS_OK);
    IPF_CHECK(key != NULL && strlen(key) == 32);
    IPF_CHECK_STATUS(ipuflow_session_get_placement_summary(s, &sum), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(sum.available, ==, have_placement);
    IPF_CHECK_INT(sum.device_used, ==, IPUFLOW_DEVICE_CPU);
    IPF_CHECK_INT(sum.npu_nodes, ==, 0);
    if (have_placement) {
        IPF_CHECK_INT(sum.total_nodes, >=, 1);
        IPF_CHECK_INT(sum.cpu_nodes, ==, sum.total_nodes);
    }
    IPF_CHECK(sum.npu_percent == 0.0);
    ipuflow_session_free(s);

    /* A minimum fraction under PREFER: still the CPU, and the reason still carries ORT's text. */
    o = opts_with(IPUFLOW_SESSION_DEVICE_IPU, IPUFLOW_FALLBACK_PREFER, 0.5);
    IPF_REQUIRE(o);
    IPF_CHECK_STATUS(create_identity(o, &s), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_get_fallback_reason(s, &reason), IPUFLOW_STATUS_OK);
    IPF_CHECK_CONTAINS(reason, ORT_REASON);
    ipuflow_session_free(s);
    ipuflow_session_options_free(o);
}

IPF_TEST(auto_without_npu_runs_on_cpu)
{
    char root[1024];
    ipuflow_session *s = NULL;
    ipuflow_session_options *o = opts_with(IPUFLOW_SESSION_DEVICE_AUTO, -1, 0.0);
    int32_t dev = -1;
    const char *reason = NULL, *key = NULL;
    NEED_ORT();
    IPF_REQUIRE(o);
    ipf_join(root, sizeof root, tmp, "empty-sysfs");
    IPF_REQUIRE(ipf_mkdir(root) == 0);
    setenv("IPUFLOW_SYSFS_ROOT", root, 1);
    IPF_CHECK_STATUS(create_identity(o, &s), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(s != NULL);
    IPF_CHECK_STATUS(ipuflow_session_get_device(s, &dev), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(dev, ==, IPUFLOW_DEVICE_CPU);
    IPF_CHECK_STATUS(ipuflow_session_get_fallback_reason(s, &reason), IPUFLOW_STATUS_OK);
    IPF_CHECK_CONTAINS(reason, "no Ryzen AI NPU was found");
    IPF_CHECK_STATUS(ipuflow_session_get_cache_key(s, &key), IPUFLOW_STATUS_OK);
    IPF_CHECK_STR(key, "");
    ipuflow_session_free(s);
    s = (ipuflow_session *)SENTINEL;
    /* AUTO with an explicit STRICT policy: an error instead. */
    IPF_CHECK_STATUS(ipuflow_session_options_set_fallback(o, IPUFLOW_FALLBACK_STRICT, 0.0), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(create_identity(o, &s), IPUFLOW_STATUS_DEVICE_UNAVAILABLE, "no Ryzen AI NPU");
    IPF_CHECK(s == (ipuflow_session *)SENTINEL);
    unsetenv("IPUFLOW_SYSFS_ROOT");
    ipuflow_session_options_free(o);
}

IPF_TEST(unknown_provider_is_refused_by_name)
{
    ipuflow_session *s = (ipuflow_session *)SENTINEL;
    ipuflow_session_options *o = NULL;
    NEED_ORT();
    IPF_REQUIRE(ipuflow_session_options_create(&o) == IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_append_provider(o, "NoSuchEP", NULL, NULL, 0), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(create_identity(o, &s), IPUFLOW_STATUS_RUNTIME, "'NoSuchEP'");
    IPF_CHECK_CONTAINS(ipuflow_last_error(), "Unknown provider name");
    IPF_CHECK(s == (ipuflow_session *)SENTINEL);
    ipuflow_session_options_free(o);
}

IPF_TEST(placement_of_a_cpu_session)
{
    ipuflow_session *s = NULL;
    size_t n = 77, nodes = 77;
    const char *ep = NULL;
    ipuflow_placed_node node, sentinel;
    char *json = NULL;
    int32_t dev = -1;
    const char *reason = NULL;
    NEED_ORT();
    IPF_CHECK_STATUS(create_identity(NULL, &s), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(s != NULL);
    IPF_CHECK_STATUS(ipuflow_session_get_device(s, &dev), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(dev, ==, IPUFLOW_DEVICE_CPU);
    IPF_CHECK_STATUS(ipuflow_session_get_fallback_reason(s, &reason), IPUFLOW_STATUS_OK);
    IPF_CHECK_STR(reason, "");
    IPF_CHECK_ERROR(ipuflow_session_get_device(s, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out_device_used");
    IPF_CHECK_ERROR(ipuflow_session_placement_subgraph_count(s, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out_count");
    if (!have_placement) {
        /* An older runtime: unavailable, with the reason, outputs untouched; never guessed. */
        IPF_CHECK_ERROR(ipuflow_session_placement_subgraph_count(s, &n), IPUFLOW_STATUS_UNSUPPORTED,
                        "needs ONNX Runtime C API 24");
        IPF_CHECK_INT(n, ==, 77);
        IPF_CHECK_ERROR(ipuflow_session_placement_get_node(s, 0, 0, &node), IPUFLOW_STATUS_UNSUPPORTED,
                        "unavailable");
        IPF_CHECK_STATUS(ipuflow_session_placement_json(s, &json), IPUFLOW_STATUS_OK);
        IPF_CHECK_CONTAINS(json, "\"unavailable\"");
        ipuflow_string_free(json);
        ipuflow_session_free(s);
        return;
    }
    IPF_CHECK_STATUS(ipuflow_session_placement_subgraph_count(s, &n), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(n, ==, 1);
    IPF_CHECK_STATUS(ipuflow_session_placement_get_subgraph(s, 0, &ep, &nodes), IPUFLOW_STATUS_OK);
    IPF_CHECK_STR(ep, "CPUExecutionProvider");
    IPF_CHECK_INT(nodes, ==, 1);
    IPF_CHECK_STATUS(ipuflow_session_placement_get_subgraph(s, 0, NULL, NULL), IPUFLOW_STATUS_OK);
    ep = (const char *)SENTINEL;
    IPF_CHECK_STATUS(ipuflow_session_placement_get_subgraph(s, 1, &ep, &nodes), IPUFLOW_STATUS_OUT_OF_RANGE);
    IPF_CHECK(ep == (const char *)SENTINEL);
    IPF_CHECK_STATUS(ipuflow_session_placement_get_node(s, 0, 0, &node), IPUFLOW_STATUS_OK);
    IPF_CHECK_STR(node.op_type, "Identity");
    IPF_CHECK_STR(node.domain, "");
    IPF_CHECK_STR(node.name, "id");
    memset(&sentinel, 0x5e, sizeof sentinel);
    node = sentinel;
    IPF_CHECK_ERROR(ipuflow_session_placement_get_node(s, 0, 1, &node), IPUFLOW_STATUS_OUT_OF_RANGE, "node index 1");
    IPF_CHECK_ERROR(ipuflow_session_placement_get_node(s, 3, 0, &node), IPUFLOW_STATUS_OUT_OF_RANGE,
                    "subgraph index 3");
    IPF_CHECK_ERROR(ipuflow_session_placement_get_node(s, 0, 0, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK(memcmp(&node, &sentinel, sizeof node) == 0);
    IPF_CHECK_ERROR(ipuflow_session_placement_json(s, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_STATUS(ipuflow_session_placement_json(s, &json), IPUFLOW_STATUS_OK);
    IPF_CHECK_CONTAINS(json, "\"deviceStat\"");
    IPF_CHECK_CONTAINS(json, "\"nodeNum\"");
    IPF_CHECK_CONTAINS(json, "\"supportedOpType\"");
    IPF_CHECK_CONTAINS(json, "\"::Identity\"");
    IPF_CHECK_CONTAINS(json, "\"deviceUsed\": \"CPU\"");
    ipuflow_string_free(json);
    ipuflow_session_free(s);

    /* Recording turned off by the host: unavailable, with the reason; never guessed. */
    {
        ipuflow_session_options *o = NULL;
        ipuflow_placement_summary sum;
        IPF_REQUIRE(ipuflow_session_options_create(&o) == IPUFLOW_STATUS_OK);
        IPF_CHECK_STATUS(
            ipuflow_session_options_add_config_entry(o, "session.record_ep_graph_assignment_info", "0"),
            IPUFLOW_STATUS_OK);
        IPF_CHECK_STATUS(create_identity(o, &s), IPUFLOW_STATUS_OK);
        ipuflow_session_options_free(o);
        IPF_REQUIRE(s != NULL);
        IPF_CHECK_STATUS(ipuflow_session_get_placement_summary(s, &sum), IPUFLOW_STATUS_OK);
        IPF_CHECK_INT(sum.available, ==, 0);
        IPF_CHECK_INT(sum.total_nodes, ==, 0);
        n = 77;
        IPF_CHECK_ERROR(ipuflow_session_placement_subgraph_count(s, &n), IPUFLOW_STATUS_UNSUPPORTED, "unavailable");
        IPF_CHECK(n == 77);
        IPF_CHECK_STATUS(ipuflow_session_placement_json(s, &json), IPUFLOW_STATUS_OK);
        IPF_CHECK_CONTAINS(json, "\"unavailable\"");
        ipuflow_string_free(json);
        ipuflow_session_free(s);
    }
}

/* Every node of a real model is listed: the placement equals the graph ORT partitioned, which is the graph it writes
 * out at the BASIC optimization level (the EP-specific fusions of levels 2 and 3 come after partitioning). */
IPF_TEST(placement_lists_every_node_of_a_real_model)
{
    const char *shared = ipf_env("IPUFLOW_TEST_SHARED_DIR");
    char path[1024];
    const char *optimized;
    ipuflow_session_options *o = NULL;
    ipuflow_session *s = NULL;
    ipuflow_model *m = NULL;
    ipuflow_placement_summary sum;
    size_t graph_nodes = 0, n_sg = 0, listed = 0, i, j;
    NEED_ORT();
    if (!have_placement)
        IPF_SKIP("the runtime has no placement report (C API < 24; placement_of_a_cpu_session checks the refusal)");
    if (!shared)
        IPF_SKIP_DATA("IPUFLOW_TEST_SHARED_DIR is not set (no ../shared beside the repository)");
    ipf_join(path, sizeof path, shared, "models" IPF_SEP "efficientnet-lite0.onnx");
    if (!ipf_is_file(path))
        IPF_SKIP_DATA("no models/efficientnet-lite0.onnx in the shared directory");
    optimized = ipf_path(tmp, "efficientnet-basic.onnx");
    IPF_REQUIRE(ipuflow_session_options_create(&o) == IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_set_graph_optimization(o, IPUFLOW_GRAPH_OPTIMIZATION_BASIC),
                     IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_options_set_optimized_model_path(o, optimized), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_session_create(NULL, path, o, &s), IPUFLOW_STATUS_OK);
    ipuflow_session_options_free(o);
    IPF_REQUIRE(s != NULL);
    IPF_CHECK_STATUS(ipuflow_model_load_file(optimized, &m), IPUFLOW_STATUS_OK);
    if (m) {
        IPF_CHECK_STATUS(ipuflow_model_get_counts(m, &graph_nodes, NULL, NULL, NULL, NULL, NULL, NULL),
                         IPUFLOW_STATUS_OK);
        ipuflow_model_free(m);
    }
    IPF_CHECK_STATUS(ipuflow_session_get_placement_summary(s, &sum), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(sum.available, ==, 1);
    IPF_CHECK_INT(graph_nodes, >, 10);
    IPF_CHECK_INT(sum.total_nodes, ==, graph_nodes);
    IPF_CHECK_INT(sum.cpu_nodes, ==, graph_nodes);
    IPF_CHECK_STATUS(ipuflow_session_placement_subgraph_count(s, &n_sg), IPUFLOW_STATUS_OK);
    for (i = 0; i < n_sg; i++) {
        size_t nodes = 0;
        IPF_CHECK_STATUS(ipuflow_session_placement_get_subgraph(s, i, NULL, &nodes), IPUFLOW_STATUS_OK);
        for (j = 0; j < nodes; j++) {
            ipuflow_placed_node node;
            IPF_CHECK_STATUS(ipuflow_session_placement_get_node(s, i, j, &node), IPUFLOW_STATUS_OK);
            IPF_CHECK(node.name && node.domain && node.op_type && node.op_type[0]);
            listed++;
        }
    }
    IPF_CHECK_INT(listed, ==, graph_nodes);
    {
        /* The JSON's subgraphs follow the one definition: every node CPU and connected, so one subgraph (index 0);
         * ONNX Runtime's own partition is kept apart under onnxRuntimeSubgraphs. */
        char *json = NULL;
        IPF_CHECK_STATUS(ipuflow_session_placement_to_json(s, &json), IPUFLOW_STATUS_OK);
        IPF_CHECK_CONTAINS(json, "\"onnxRuntimeSubgraphs\"");
        IPF_CHECK_CONTAINS(json, "\"subgraph\": 0");
        IPF_CHECK(json && strstr(json, "\"subgraph\": 1") == NULL);
        ipuflow_string_free(json);
    }
    ipuflow_session_free(s);
}

int main(void)
{
    const char *ort = ipf_env("IPUFLOW_TEST_ORT_LIBRARY");
    tmp = ipf_mkdtemp("npu_session");
    if (!tmp) {
        printf("Bail out! cannot create a temporary directory\n");
        return 1;
    }
    IPF_RUN(options_errors);
    IPF_RUN(getters_errors);
    if (ort) {
        int st = (int)ipuflow_runtime_load(ort);
        uint32_t api = 0;
        have_ort = st == IPUFLOW_STATUS_OK;
        if (!have_ort)
            printf("# cannot load %s: %s: %s\n", ort, ipuflow_status_str(st), ipuflow_last_error());
        else if (ipuflow_runtime_api_version(&api) == IPUFLOW_STATUS_OK)
            have_placement = api >= 24;
        printf("# ONNX Runtime C API %u: placement report %s\n", (unsigned)api,
               have_placement ? "expected" : "unavailable");
    }
    IPF_RUN(strict_ipu_fails_with_orts_reason);
    IPF_RUN(prefer_falls_back_and_says_why);
    IPF_RUN(auto_without_npu_runs_on_cpu);
    IPF_RUN(unknown_provider_is_refused_by_name);
    IPF_RUN(placement_of_a_cpu_session);
    IPF_RUN(placement_lists_every_node_of_a_real_model);
    ipf_rmtree(tmp);
    {
        int rc = ipf_done();
        return (ort && !have_ort) ? 1 : rc;
    }
}
