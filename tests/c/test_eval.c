/*
 * Accuracy by output kind from C (ipuflow_evaluator_*): class scores get top-1 agreement, a one-value output gets
 * none, a given kind overrides the inferred one, and every error path (NULL arguments, shapes that do not hold the
 * values, invalid kinds) leaves outputs untouched.
 */
#include "ipuflow.h"
#include "ipf_test.h"

#include <stdint.h>

#define SENTINEL ((void *)(uintptr_t)0x5e5e5e5e)

IPF_TEST(errors)
{
    ipuflow_evaluator *e = NULL;
    const int64_t shape[2] = {1, 3};
    const float a[3] = {0.1f, 0.7f, 0.2f};
    char *json = (char *)SENTINEL;
    IPF_CHECK_ERROR(ipuflow_evaluator_create(NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_REQUIRE(ipuflow_evaluator_create(&e) == IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_evaluator_add(NULL, "y", shape, 2, a, a, 3), IPUFLOW_STATUS_NULL_ARGUMENT, "evaluator");
    IPF_CHECK_ERROR(ipuflow_evaluator_add(e, "y", shape, 2, NULL, a, 3), IPUFLOW_STATUS_NULL_ARGUMENT, "reference");
    IPF_CHECK_ERROR(ipuflow_evaluator_add(e, "y", NULL, 2, a, a, 3), IPUFLOW_STATUS_NULL_ARGUMENT, "shape");
    IPF_CHECK_ERROR(ipuflow_evaluator_add(e, "y", shape, 2, a, a, 2), IPUFLOW_STATUS_TENSOR_MISMATCH, "'y'");
    IPF_CHECK_ERROR(ipuflow_evaluator_add(e, "", shape, 2, a, a, 3), IPUFLOW_STATUS_INVALID_ARGUMENT, "empty");
    IPF_CHECK_ERROR(ipuflow_evaluator_set_output_kind(e, "y", 9), IPUFLOW_STATUS_INVALID_ENUM, "kind");
    IPF_CHECK_ERROR(ipuflow_evaluator_to_json(NULL, &json), IPUFLOW_STATUS_NULL_ARGUMENT, "evaluator");
    IPF_CHECK(json == (char *)SENTINEL);
    ipuflow_evaluator_free(e);
    ipuflow_evaluator_free(NULL);
}

IPF_TEST(metrics_by_kind)
{
    ipuflow_evaluator *e = NULL;
    const int64_t cls[2] = {1, 3}, one[2] = {1, 1};
    const float ra[3] = {0.1f, 0.7f, 0.2f}, rb[3] = {0.1f, 0.2f, 0.7f};
    const float pa[1] = {0.9f}, pb[1] = {0.4f};
    char *json = NULL;
    IPF_REQUIRE(ipuflow_evaluator_create(&e) == IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_evaluator_set_output_kind(e, "z", IPUFLOW_OUTPUT_KIND_VALUES), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_evaluator_add(e, "y", cls, 2, ra, rb, 3), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_evaluator_add(e, "p", one, 2, pa, pb, 1), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_evaluator_add(e, "z", cls, 2, ra, ra, 3), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_evaluator_to_json(e, &json) == IPUFLOW_STATUS_OK);
    IPF_CHECK_CONTAINS(json, "\"kind\": \"class_scores\"");
    IPF_CHECK_CONTAINS(json, "\"top1_agreement\"");
    IPF_CHECK_CONTAINS(json, "\"kind_given\": true");
    IPF_CHECK_CONTAINS(json, "highest-scoring class");
    /* one top1_agreement only: y's (p is one value, z is given as plain values) */
    IPF_CHECK(strstr(strstr(json, "top1_agreement") + 1, "top1_agreement") == NULL);
    ipuflow_string_free(json);
    ipuflow_evaluator_free(e);
}

/* An anchor head (SSD, BlazeFace): boxes [1, A, 4] and scores [1, A, 1] given as such, matched by anchor. */
IPF_TEST(anchor_head)
{
    ipuflow_evaluator *e = NULL;
    const int64_t boxes_shape[3] = {1, 2, 4}, scores_shape[3] = {1, 2, 1};
    const float boxes[8] = {50.0f, 50.0f, 20.0f, 20.0f, 10.0f, 10.0f, 8.0f, 8.0f};
    const float fa[2] = {0.9f, 0.1f}, fb[2] = {0.8f, 0.7f}; /* the other model detects one more anchor */
    char *json = NULL;
    IPF_REQUIRE(ipuflow_evaluator_create(&e) == IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_evaluator_set_output_kind(e, "b", IPUFLOW_OUTPUT_KIND_ANCHOR_BOXES), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_evaluator_set_output_kind(e, "s", IPUFLOW_OUTPUT_KIND_ANCHOR_SCORES), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_evaluator_set_output_kind(e, "s", IPUFLOW_OUTPUT_KIND_SEQUENCE_TIME_MAJOR + 1),
                    IPUFLOW_STATUS_INVALID_ENUM, "kind");
    IPF_CHECK_STATUS(ipuflow_evaluator_add(e, "b", boxes_shape, 3, boxes, boxes, 8), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_evaluator_add(e, "s", scores_shape, 3, fa, fb, 2), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(ipuflow_evaluator_to_json(e, &json) == IPUFLOW_STATUS_OK);
    IPF_CHECK_CONTAINS(json, "\"detection\": \"anchor_boxes\"");
    IPF_CHECK_CONTAINS(json, "\"paired_with\": \"s\"");
    IPF_CHECK_CONTAINS(json, "\"name\": \"box_recall\",\n        \"value\": 1.0");
    IPF_CHECK_CONTAINS(json, "\"name\": \"box_precision\",\n        \"value\": 0.5");
    ipuflow_string_free(json);
    /* The boxes of a second sample before the scores of the first: an error naming the missing output. */
    IPF_CHECK_STATUS(ipuflow_evaluator_add(e, "b", boxes_shape, 3, boxes, boxes, 8), IPUFLOW_STATUS_OK);
    IPF_CHECK_ERROR(ipuflow_evaluator_add(e, "b", boxes_shape, 3, boxes, boxes, 8), IPUFLOW_STATUS_INVALID_ARGUMENT,
                    "'s'");
    ipuflow_evaluator_free(e);
}

int main(void)
{
    IPF_RUN(errors);
    IPF_RUN(metrics_by_kind);
    IPF_RUN(anchor_head);
    return ipf_done();
}
