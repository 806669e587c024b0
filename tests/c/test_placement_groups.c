/* The placement functions count ipuflow's one subgraph definition (maximal connected groups of nodes on one device),
 * as the placement JSON and line do; ONNX Runtime's own partition stays reachable through the _ort_ functions
 * (issue 11 item 4). Real model: EfficientNet-Lite0 on the CPU, where ONNX Runtime 1.32 reports one subgraph per
 * node and the one definition one connected group. */
#include "ipuflow.h"
#include "ipf_test.h"
#include "ipf_fs.h"

#include <stdint.h>
#include <string.h>

#define SENTINEL ((const char *)(uintptr_t)0x5e5e5e5e)

static ipuflow_session *efficientnet_session(void)
{
    const char *shared = ipf_env("IPUFLOW_TEST_SHARED_DIR");
    const char *ort = ipf_env("IPUFLOW_TEST_ORT_LIBRARY");
    char path[1024];
    ipuflow_session *s = NULL;
    if (!ort || ipuflow_runtime_load(ort) != IPUFLOW_STATUS_OK)
        return NULL;
    if (!shared)
        return NULL;
    ipf_join(path, sizeof path, shared, "models" IPF_SEP "efficientnet-lite0.onnx");
    if (!ipf_is_file(path))
        return NULL;
    IPF_CHECK_STATUS(ipuflow_session_create(NULL, path, NULL, &s), IPUFLOW_STATUS_OK);
    return s;
}

IPF_TEST(subgraphs_follow_the_one_definition)
{
    ipuflow_session *s = efficientnet_session();
    ipuflow_placement_summary sum;
    size_t groups = 0, ort = 0, i, j, listed = 0, ort_listed = 0, nodes = 0;
    const char *ep = NULL;
    char *json = NULL;
    if (!s)
        IPF_SKIP_DATA("no ONNX Runtime (IPUFLOW_TEST_ORT_LIBRARY) or no models/efficientnet-lite0.onnx in "
                      "IPUFLOW_TEST_SHARED_DIR");
    if (ipuflow_session_placement_get_subgraph_count(s, &groups) == IPUFLOW_STATUS_UNSUPPORTED) {
        /* An older runtime (C API < 24): both counts refuse, with the reason. */
        IPF_CHECK_ERROR(ipuflow_session_placement_get_ort_subgraph_count(s, &ort), IPUFLOW_STATUS_UNSUPPORTED,
                        "unavailable");
        ipuflow_session_free(s);
        IPF_SKIP("the runtime has no placement report (C API < 24)");
    }
    IPF_CHECK_STATUS(ipuflow_session_get_placement_summary(s, &sum), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(sum.total_nodes, >, 10);
    /* Every node on the CPU and connected: one group, the summary agrees, and the old name is the same function. */
    IPF_CHECK_INT(groups, ==, 1);
    IPF_CHECK_INT(sum.subgraphs, ==, groups);
    IPF_CHECK_INT(sum.npu_subgraphs, ==, 0);
    IPF_CHECK_STATUS(ipuflow_session_placement_subgraph_count(s, &nodes), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(nodes, ==, groups);
    for (i = 0; i < groups; i++) {
        IPF_CHECK_STATUS(ipuflow_session_placement_get_subgraph(s, i, &ep, &nodes), IPUFLOW_STATUS_OK);
        IPF_CHECK_STR(ep, "CPUExecutionProvider");
        for (j = 0; j < nodes; j++) {
            ipuflow_placed_node node;
            IPF_CHECK_STATUS(ipuflow_session_placement_get_node(s, i, j, &node), IPUFLOW_STATUS_OK);
            IPF_CHECK(node.op_type && node.op_type[0]);
        }
        listed += nodes;
    }
    IPF_CHECK_INT(listed, ==, sum.total_nodes);
    /* The JSON counts the same groups. */
    IPF_CHECK_STATUS(ipuflow_session_placement_to_json(s, &json), IPUFLOW_STATUS_OK);
    IPF_CHECK_CONTAINS(json, "\"subgraph\": 0");
    IPF_CHECK(json && strstr(json, "\"subgraph\": 1") == NULL);
    ipuflow_string_free(json);
    /* ONNX Runtime's partition: the same nodes, one entry per CPU node (ONNX Runtime 1.32). */
    IPF_CHECK_STATUS(ipuflow_session_placement_get_ort_subgraph_count(s, &ort), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(ort, >, groups);
    for (i = 0; i < ort; i++) {
        IPF_CHECK_STATUS(ipuflow_session_placement_get_ort_subgraph(s, i, &ep, &nodes), IPUFLOW_STATUS_OK);
        IPF_CHECK_STR(ep, "CPUExecutionProvider");
        ort_listed += nodes;
    }
    IPF_CHECK_INT(ort_listed, ==, sum.total_nodes);
    IPF_CHECK_STATUS(ipuflow_session_placement_get_ort_subgraph(s, 0, NULL, NULL), IPUFLOW_STATUS_OK);
    /* Bad arguments: NULL and out of range, outputs untouched. */
    ep = SENTINEL;
    IPF_CHECK_ERROR(ipuflow_session_placement_get_ort_subgraph(s, ort, &ep, &nodes), IPUFLOW_STATUS_OUT_OF_RANGE,
                    "ONNX Runtime subgraph index");
    IPF_CHECK(ep == SENTINEL);
    IPF_CHECK_ERROR(ipuflow_session_placement_get_ort_subgraph(NULL, 0, &ep, &nodes), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "session");
    IPF_CHECK_ERROR(ipuflow_session_placement_get_ort_subgraph_count(s, NULL), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "out_count");
    IPF_CHECK_ERROR(ipuflow_session_placement_get_ort_subgraph_count(NULL, &ort), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "session");
    ipuflow_session_free(s);
}

int main(void)
{
    IPF_RUN(subgraphs_follow_the_one_definition);
    return ipf_done();
}
