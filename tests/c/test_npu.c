/*
 * The NPU API without hardware (ipuflow_npu_*, ipuflow_preflight_*): device detection over a fake sysfs tree,
 * the pre-flight prediction on the test models and the shared models, and compile-cache clearing, with every error
 * path (NULL arguments, invalid targets, out-of-range indexes, refused cache keys) and untouched outputs on failure.
 */
#include "ipuflow.h"
#include "ipf_test.h"
#include "ipf_fs.h"
#include "test_models.h"

#include <stdint.h>

#define SENTINEL ((void *)(uintptr_t)0x5e5e5e5e)

static const char *tmp;

static void put_text(const char *dir, const char *name, const char *text)
{
    if (ipf_write_file(ipf_path(dir, name), text, strlen(text)) != 0)
        ipf_diag("cannot write %s/%s", dir, name);
}

/* root/<bdf>/{vendor,device[,revision]} like /sys/bus/pci/devices. */
static void fake_pci(const char *root, const char *bdf, const char *vendor, const char *device, const char *rev)
{
    char dir[1024];
    ipf_join(dir, sizeof dir, root, bdf);
    ipf_mkdir(dir);
    put_text(dir, "vendor", vendor);
    if (device)
        put_text(dir, "device", device);
    if (rev)
        put_text(dir, "revision", rev);
}

IPF_TEST(detect_errors)
{
    ipuflow_npu_scan *scan = (ipuflow_npu_scan *)SENTINEL;
    size_t n = 77;
    ipuflow_npu_device d, sentinel;
    char *json = (char *)SENTINEL;
    IPF_CHECK_ERROR(ipuflow_npu_detect(tmp, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_ERROR(ipuflow_npu_detect(ipf_path(tmp, "no-such-sysfs"), &scan), IPUFLOW_STATUS_FILE_NOT_FOUND,
                    "no-such-sysfs");
    IPF_CHECK_STATUS(ipuflow_npu_detect("", &scan), IPUFLOW_STATUS_INVALID_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_npu_detect("\xff", &scan), IPUFLOW_STATUS_INVALID_UTF8);
    IPF_CHECK(scan == (ipuflow_npu_scan *)SENTINEL);
    memset(&sentinel, 0x5e, sizeof sentinel);
    d = sentinel;
    IPF_CHECK_ERROR(ipuflow_npu_scan_count(NULL, &n), IPUFLOW_STATUS_NULL_ARGUMENT, "scan");
    IPF_CHECK_ERROR(ipuflow_npu_scan_get(NULL, 0, &d), IPUFLOW_STATUS_NULL_ARGUMENT, "scan");
    IPF_CHECK_ERROR(ipuflow_npu_scan_to_json(NULL, &json), IPUFLOW_STATUS_NULL_ARGUMENT, "scan");
    IPF_CHECK(n == 77 && json == (char *)SENTINEL && memcmp(&d, &sentinel, sizeof d) == 0);
    ipuflow_npu_scan_free(NULL);
}

IPF_TEST(detect_in_fake_sysfs)
{
    char root[1024];
    ipuflow_npu_scan *scan = NULL;
    size_t n = 0;
    ipuflow_npu_device d, sentinel;
    char *json = NULL;
    ipf_join(root, sizeof root, tmp, "sysfs");
    IPF_REQUIRE(ipf_mkdir(root) == 0);
    fake_pci(root, "0000:00:00.0", "0x1022\n", "0x14e8\n", "0x00\n");  /* AMD, not an NPU */
    fake_pci(root, "0000:01:00.0", "0x8086\n", "0x17f0\n", "0x10\n");  /* not AMD */
    fake_pci(root, "0000:c4:00.1", "0x1022\n", "0x17f0\n", "0x10\n");  /* STX */
    fake_pci(root, "0000:c5:00.1", "0x1022\n", "0x1502\n", "0x00\n");  /* PHX/HPT */
    fake_pci(root, "0000:c6:00.1", "zz-not-hex\n", "0x1502\n", NULL); /* malformed: a warning, not an error */
    put_text(root, "not-a-device-dir", "x");

    IPF_CHECK_STATUS(ipuflow_npu_detect(root, &scan), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(scan != NULL);
    IPF_CHECK_ERROR(ipuflow_npu_scan_count(scan, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out_count");
    IPF_CHECK_STATUS(ipuflow_npu_scan_count(scan, &n), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(n, ==, 2);
    memset(&sentinel, 0x5e, sizeof sentinel);
    d = sentinel;
    IPF_CHECK_ERROR(ipuflow_npu_scan_get(scan, 0, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_STATUS(ipuflow_npu_scan_get(scan, n, &d), IPUFLOW_STATUS_OUT_OF_RANGE);
    IPF_CHECK_STATUS(ipuflow_npu_scan_get(scan, (size_t)-1, &d), IPUFLOW_STATUS_OUT_OF_RANGE);
    IPF_CHECK(memcmp(&d, &sentinel, sizeof d) == 0);
    if (n == 2) {
        /* Sorted by location: c4 (STX) then c5 (PHX/HPT). */
        IPF_CHECK_STATUS(ipuflow_npu_scan_get(scan, 0, &d), IPUFLOW_STATUS_OK);
        IPF_CHECK_STR(d.name, "STX");
        IPF_CHECK_INT(d.vendor_id, ==, 0x1022);
        IPF_CHECK_INT(d.device_id, ==, 0x17f0);
        IPF_CHECK_INT(d.revision, ==, 0x10);
        IPF_CHECK_INT(d.target, ==, IPUFLOW_TARGET_X2);
        IPF_CHECK_CONTAINS(d.location, "0000:c4:00.1");
        IPF_CHECK_STR(d.driver, "");
        IPF_CHECK_CONTAINS(d.notes, "driver");
        IPF_CHECK_STATUS(ipuflow_npu_scan_get(scan, 1, &d), IPUFLOW_STATUS_OK);
        IPF_CHECK_STR(d.name, "PHX/HPT");
        IPF_CHECK_INT(d.device_id, ==, 0x1502);
        IPF_CHECK_INT(d.target, ==, IPUFLOW_TARGET_X1);
    }
    IPF_CHECK_ERROR(ipuflow_npu_scan_to_json(scan, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out_json");
    IPF_CHECK_STATUS(ipuflow_npu_scan_to_json(scan, &json), IPUFLOW_STATUS_OK);
    IPF_CHECK_CONTAINS(json, "zz-not-hex"); /* the malformed entry is reported as a warning */
    ipuflow_string_free(json);
    ipuflow_npu_scan_free(scan);
}

IPF_TEST(detect_on_this_machine)
{
    /* Whatever the machine has (usually no NPU here): the call succeeds and the scan is consistent. */
    ipuflow_npu_scan *scan = NULL;
    size_t n = 0, i;
    IPF_CHECK_STATUS(ipuflow_npu_detect(NULL, &scan), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(scan != NULL);
    IPF_CHECK_STATUS(ipuflow_npu_scan_count(scan, &n), IPUFLOW_STATUS_OK);
    for (i = 0; i < n; i++) {
        ipuflow_npu_device d;
        IPF_CHECK_STATUS(ipuflow_npu_scan_get(scan, i, &d), IPUFLOW_STATUS_OK);
        ipf_diag("NPU %u: %s at %s", (unsigned)i, d.name, d.location);
    }
    ipuflow_npu_scan_free(scan);
}

IPF_TEST(preflight_errors)
{
    ipuflow_model *m = NULL;
    ipuflow_preflight *p = (ipuflow_preflight *)SENTINEL;
    ipuflow_preflight_summary sum, sum_sentinel;
    ipuflow_node_prediction node, node_sentinel;
    size_t n = 77;
    char *json = (char *)SENTINEL;
    static const int bad_targets[] = {0, 3, -1, 99};
    size_t i;
    IPF_CHECK_STATUS(ipuflow_model_load_bytes(ipf_model_identity, sizeof ipf_model_identity, NULL, &m),
                     IPUFLOW_STATUS_OK);
    IPF_REQUIRE(m != NULL);
    IPF_CHECK_ERROR(ipuflow_preflight_run(NULL, IPUFLOW_TARGET_X2, &p), IPUFLOW_STATUS_NULL_ARGUMENT, "model");
    IPF_CHECK_ERROR(ipuflow_preflight_run(m, IPUFLOW_TARGET_X2, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    for (i = 0; i < sizeof bad_targets / sizeof bad_targets[0]; i++)
        IPF_CHECK_ERROR(ipuflow_preflight_run(m, bad_targets[i], &p), IPUFLOW_STATUS_INVALID_ENUM, "target");
    IPF_CHECK(p == (ipuflow_preflight *)SENTINEL);

    memset(&sum_sentinel, 0x5e, sizeof sum_sentinel);
    memset(&node_sentinel, 0x5e, sizeof node_sentinel);
    sum = sum_sentinel;
    node = node_sentinel;
    IPF_CHECK_ERROR(ipuflow_preflight_get_summary(NULL, &sum), IPUFLOW_STATUS_NULL_ARGUMENT, "preflight");
    IPF_CHECK_ERROR(ipuflow_preflight_node_count(NULL, &n), IPUFLOW_STATUS_NULL_ARGUMENT, "preflight");
    IPF_CHECK_ERROR(ipuflow_preflight_get_node(NULL, 0, &node), IPUFLOW_STATUS_NULL_ARGUMENT, "preflight");
    IPF_CHECK_ERROR(ipuflow_preflight_to_json(NULL, &json), IPUFLOW_STATUS_NULL_ARGUMENT, "preflight");
    IPF_CHECK(n == 77 && json == (char *)SENTINEL);
    IPF_CHECK(memcmp(&sum, &sum_sentinel, sizeof sum) == 0 && memcmp(&node, &node_sentinel, sizeof node) == 0);
    ipuflow_preflight_free(NULL);
    ipuflow_model_free(m);
}

IPF_TEST(preflight_identity)
{
    ipuflow_model *m = NULL;
    ipuflow_preflight *p = NULL;
    ipuflow_preflight_summary sum;
    ipuflow_node_prediction node, node_sentinel;
    size_t n = 0;
    char *json = NULL;
    IPF_CHECK_STATUS(ipuflow_model_load_bytes(ipf_model_identity, sizeof ipf_model_identity, NULL, &m),
                     IPUFLOW_STATUS_OK);
    IPF_REQUIRE(m != NULL);
    IPF_CHECK_STATUS(ipuflow_preflight_run(m, IPUFLOW_TARGET_X1, &p), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(p != NULL);
    IPF_CHECK_ERROR(ipuflow_preflight_get_summary(p, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_STATUS(ipuflow_preflight_get_summary(p, &sum), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(sum.target, ==, IPUFLOW_TARGET_X1);
    IPF_CHECK(!sum.quantized);
    IPF_CHECK_INT(sum.total_nodes, ==, 1);
    IPF_CHECK_INT(sum.npu_nodes + sum.cpu_nodes, ==, sum.total_nodes);
    IPF_CHECK(sum.coverage_percent >= 0.0 && sum.coverage_percent <= 100.0);
    IPF_CHECK_ERROR(ipuflow_preflight_node_count(p, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out_count");
    IPF_CHECK_STATUS(ipuflow_preflight_node_count(p, &n), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(n, ==, 1);
    memset(&node_sentinel, 0x5e, sizeof node_sentinel);
    node = node_sentinel;
    IPF_CHECK_ERROR(ipuflow_preflight_get_node(p, 0, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_STATUS(ipuflow_preflight_get_node(p, n, &node), IPUFLOW_STATUS_OUT_OF_RANGE);
    IPF_CHECK(memcmp(&node, &node_sentinel, sizeof node) == 0);
    IPF_CHECK_STATUS(ipuflow_preflight_get_node(p, 0, &node), IPUFLOW_STATUS_OK);
    IPF_CHECK_STR(node.name, "id");
    IPF_CHECK_STR(node.op_type, "Identity");
    IPF_CHECK_STR(node.domain, "");
    IPF_CHECK(node.device == IPUFLOW_DEVICE_CPU || node.device == IPUFLOW_DEVICE_NPU);
    IPF_CHECK(node.reason != NULL && node.reason[0] != '\0');
    IPF_CHECK_ERROR(ipuflow_preflight_to_json(p, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out_json");
    IPF_CHECK_STATUS(ipuflow_preflight_to_json(p, &json), IPUFLOW_STATUS_OK);
    IPF_CHECK_CONTAINS(json, "Identity");
    ipuflow_string_free(json);
    ipuflow_preflight_free(p);
    ipuflow_model_free(m);
}

IPF_TEST(preflight_shared_model)
{
    const char *shared = ipf_env("IPUFLOW_TEST_SHARED_DIR");
    char path[1024];
    ipuflow_model *m = NULL;
    ipuflow_preflight *p = NULL;
    ipuflow_preflight_summary sum;
    size_t nodes = 0, n = 0, i, npu = 0;
    if (!shared)
        IPF_SKIP_DATA("IPUFLOW_TEST_SHARED_DIR is not set (no ../shared beside the repository)");
    ipf_join(path, sizeof path, shared, "models" IPF_SEP "efficientnet-lite0.onnx");
    if (!ipf_is_file(path))
        IPF_SKIP_DATA("no models/efficientnet-lite0.onnx in the shared directory");
    IPF_CHECK_STATUS(ipuflow_model_load_file(path, &m), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(m != NULL);
    IPF_CHECK_STATUS(ipuflow_model_get_counts(m, &nodes, NULL, NULL, NULL, NULL, NULL, NULL), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_preflight_run(m, IPUFLOW_TARGET_X2, &p), IPUFLOW_STATUS_OK);
    if (p) {
        IPF_CHECK_STATUS(ipuflow_preflight_get_summary(p, &sum), IPUFLOW_STATUS_OK);
        IPF_CHECK_STATUS(ipuflow_preflight_node_count(p, &n), IPUFLOW_STATUS_OK);
        /* Constant nodes and what is computed from constants only are folded, not counted. */
        IPF_CHECK(sum.total_nodes > 0 && sum.total_nodes <= nodes);
        IPF_CHECK_INT(n, ==, sum.total_nodes);
        for (i = 0; i < n; i++) {
            ipuflow_node_prediction node;
            IPF_CHECK_STATUS(ipuflow_preflight_get_node(p, i, &node), IPUFLOW_STATUS_OK);
            npu += node.device == IPUFLOW_DEVICE_NPU;
        }
        IPF_CHECK_INT(npu, ==, sum.npu_nodes);
        ipf_diag("efficientnet-lite0 (float) on X2: %u of %u nodes predicted on the NPU", (unsigned)sum.npu_nodes,
                 (unsigned)sum.total_nodes);
    }
    ipuflow_preflight_free(p);
    ipuflow_model_free(m);
}

IPF_TEST(cache_clear)
{
    char cache[1024], entry[1024], sub[1024], outside[1024], file_as_dir[1024];
    uint64_t removed = 77;
    ipf_join(cache, sizeof cache, tmp, "vaip-cache");
    IPF_REQUIRE(ipf_mkdir(cache) == 0);

    IPF_CHECK_ERROR(ipuflow_npu_cache_clear(NULL, "key", &removed), IPUFLOW_STATUS_NULL_ARGUMENT, "cache_dir");
    IPF_CHECK_ERROR(ipuflow_npu_cache_clear(cache, NULL, &removed), IPUFLOW_STATUS_NULL_ARGUMENT, "cache_key");
    IPF_CHECK_STATUS(ipuflow_npu_cache_clear(cache, "", &removed), IPUFLOW_STATUS_INVALID_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_npu_cache_clear("", "key", &removed), IPUFLOW_STATUS_INVALID_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_npu_cache_clear(cache, "\xff", &removed), IPUFLOW_STATUS_INVALID_UTF8);
    IPF_CHECK_ERROR(ipuflow_npu_cache_clear(cache, "..", &removed), IPUFLOW_STATUS_PATH_REFUSED, "..");
    IPF_CHECK_STATUS(ipuflow_npu_cache_clear(cache, "../vaip-cache", &removed), IPUFLOW_STATUS_PATH_REFUSED);
    IPF_CHECK_STATUS(ipuflow_npu_cache_clear(cache, "a/b", &removed), IPUFLOW_STATUS_PATH_REFUSED);
    IPF_CHECK_STATUS(ipuflow_npu_cache_clear(cache, "a\\b", &removed), IPUFLOW_STATUS_PATH_REFUSED);
    IPF_CHECK_STATUS(ipuflow_npu_cache_clear(cache, "C:x", &removed), IPUFLOW_STATUS_PATH_REFUSED);
    IPF_CHECK(removed == 77);

    /* A missing entry is not an error. */
    IPF_CHECK_STATUS(ipuflow_npu_cache_clear(cache, "absent", &removed), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(removed, ==, 0);

    /* An entry with files, a sub-directory and (POSIX) a link to a file outside: the link goes, the target stays. */
    ipf_join(entry, sizeof entry, cache, "model-key");
    ipf_join(sub, sizeof sub, entry, "sub");
    IPF_REQUIRE(ipf_mkdir(entry) == 0 && ipf_mkdir(sub) == 0);
    IPF_REQUIRE(ipf_write_file(ipf_path(entry, "a.bin"), "abc", 3) == 0);
    IPF_REQUIRE(ipf_write_file(ipf_path(sub, "b.bin"), "defgh", 5) == 0);
    ipf_join(outside, sizeof outside, tmp, "outside.bin");
    IPF_REQUIRE(ipf_write_file(outside, "keep me", 7) == 0);
#ifndef _WIN32
    IPF_REQUIRE(symlink(outside, ipf_path(entry, "link.bin")) == 0);
    IPF_REQUIRE(symlink(tmp, ipf_path(sub, "dirlink")) == 0);
#endif
    IPF_CHECK_STATUS(ipuflow_npu_cache_clear(cache, "model-key", &removed), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(removed, ==, 8);
    IPF_CHECK_INT(ipf_count_entries(cache), ==, 0);
    IPF_CHECK(ipf_is_file(outside));
    IPF_CHECK_INT(ipf_count_entries(tmp), >=, 2); /* the dirlink's target was not emptied */
    IPF_CHECK_STATUS(ipuflow_npu_cache_clear(cache, "model-key", NULL), IPUFLOW_STATUS_OK);

    /* The cache directory is a regular file: nothing can be cleared there. */
    ipf_join(file_as_dir, sizeof file_as_dir, tmp, "a-file");
    IPF_REQUIRE(ipf_write_file(file_as_dir, "x", 1) == 0);
    removed = 77;
    {
        int st = (int)ipuflow_npu_cache_clear(file_as_dir, "key", &removed);
        /* ENOTDIR: the entry cannot exist, like a missing one; an error must at least be one of the documented
         * ones (NULL_ARGUMENT, INVALID_UTF8, INVALID_ARGUMENT, PATH_REFUSED, FILE_WRITE). */
        IPF_CHECK(st == IPUFLOW_STATUS_OK || st == IPUFLOW_STATUS_FILE_WRITE || st == IPUFLOW_STATUS_FILE_NOT_FOUND);
        if (st != IPUFLOW_STATUS_OK)
            IPF_CHECK(removed == 77);
        ipf_diag("cache_dir is a file: %s %s", ipuflow_status_str(st), ipuflow_last_error());
    }
}

int main(void)
{
    tmp = ipf_mkdtemp("npu");
    if (!tmp) {
        printf("Bail out! cannot create a temporary directory\n");
        return 1;
    }
    IPF_RUN(detect_errors);
    IPF_RUN(detect_in_fake_sysfs);
    IPF_RUN(detect_on_this_machine);
    IPF_RUN(preflight_errors);
    IPF_RUN(preflight_identity);
    IPF_RUN(preflight_shared_model);
    IPF_RUN(cache_clear);
    ipf_rmtree(tmp);
    return ipf_done();
}
