// npu_check: what the Ryzen AI flow would do with a model on this machine.
//
//   npu_check --model PATH [--sysfs DIR] [--ort PATH]
//
// 1. Detection (ipuflow_npu_detect): the NPUs found (PCI 1022:1502 PHX/HPT -> target X1, 1022:17f0 STX/KRK -> X2).
//    --sysfs points the scan (and the AUTO session below, through IPUFLOW_SYSFS_ROOT) at another PCI device tree.
// 2. The pre-flight prediction (ipuflow_preflight_run) for the detected target (X2 when none): NPU coverage and,
//    for every node the NPU would not take, why.
// 3. The actual placement of an AUTO session (NPU when one is detected and the VitisAI EP works, else the CPU with
//    the reason), from ONNX Runtime's own assignment info.
// Exits 0 when every step ran (whatever the device), non-zero on an error.
#include "ipuflow.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

int fail(const char* what, ipuflow_status s) {
    std::printf("FAILED: %s: %s: %s\n", what, ipuflow_status_str(s), ipuflow_last_error());
    return 1;
}

const char* target_name(int32_t t) { return t == IPUFLOW_TARGET_X1 ? "X1" : "X2"; }

}  // namespace

int main(int argc, char** argv) {
    std::string model, sysfs, ort;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        if (k == "--model") model = argv[i + 1];
        else if (k == "--sysfs") sysfs = argv[i + 1];
        else if (k == "--ort") ort = argv[i + 1];
        else {
            std::fprintf(stderr, "usage: %s --model PATH [--sysfs DIR] [--ort PATH]\n", argv[0]);
            return 64;
        }
    }
    if (model.empty() || argc % 2 == 0) {
        std::fprintf(stderr, "usage: %s --model PATH [--sysfs DIR] [--ort PATH]\n", argv[0]);
        return 64;
    }
    if (!sysfs.empty()) {  // the AUTO session scans the same tree
#ifdef _WIN32
        _putenv_s("IPUFLOW_SYSFS_ROOT", sysfs.c_str());
#else
        setenv("IPUFLOW_SYSFS_ROOT", sysfs.c_str(), 1);
#endif
    }

    // 1. Detection.
    int32_t target = IPUFLOW_TARGET_X2;
    {
        ipuflow_npu_scan* scan = nullptr;
        ipuflow_status s = ipuflow_npu_detect(sysfs.empty() ? nullptr : sysfs.c_str(), &scan);
        if (s != IPUFLOW_STATUS_OK) return fail("NPU detection", s);
        size_t n = 0;
        ipuflow_npu_scan_count(scan, &n);
        std::printf("== Detection: %zu NPU%s found\n", n, n == 1 ? "" : "s");
        for (size_t i = 0; i < n; ++i) {
            ipuflow_npu_device d{};
            if (ipuflow_npu_scan_get(scan, i, &d) != IPUFLOW_STATUS_OK) continue;
            std::printf("NPU %zu: %s, PCI %04x:%04x revision 0x%02x, target %s, at %s, driver %s%s%s\n", i, d.name,
                        d.vendor_id, d.device_id, d.revision < 0 ? 0 : d.revision, target_name(d.target),
                        d.location, d.driver[0] ? d.driver : "(none visible)", d.notes[0] ? "; " : "", d.notes);
            if (i == 0) target = d.target;
        }
        if (n == 0) std::printf("No Ryzen AI NPU: predicting for target X2\n");
        ipuflow_npu_scan_free(scan);
    }

    // 2. Pre-flight prediction.
    {
        ipuflow_model* m = nullptr;
        ipuflow_status s = ipuflow_model_load_file(model.c_str(), &m);
        if (s != IPUFLOW_STATUS_OK) return fail("loading the model", s);
        ipuflow_preflight* p = nullptr;
        s = ipuflow_preflight_run(m, target, &p);
        ipuflow_model_free(m);
        if (s != IPUFLOW_STATUS_OK) return fail("pre-flight", s);
        ipuflow_preflight_summary sum{};
        ipuflow_preflight_get_summary(p, &sum);
        std::printf("== Pre-flight (target %s, %s model): NPU %zu CPU %zu of %zu nodes, coverage %.1f%%, %zu NPU "
                    "subgraph%s\n",
                    target_name(sum.target), sum.quantized ? "quantized" : "float", sum.npu_nodes, sum.cpu_nodes,
                    sum.total_nodes, sum.coverage_percent, sum.subgraphs, sum.subgraphs == 1 ? "" : "s");
        size_t n = 0;
        ipuflow_preflight_node_count(p, &n);
        for (size_t i = 0; i < n; ++i) {
            ipuflow_node_prediction np{};
            if (ipuflow_preflight_get_node(p, i, &np) != IPUFLOW_STATUS_OK) continue;
            if (np.device == IPUFLOW_DEVICE_CPU)
                std::printf("  CPU  %-40s %-20s %s%s\n", np.name, np.op_type, np.reason,
                            np.supported_if_quantized ? " (NPU once quantized)" : "");
        }
        ipuflow_preflight_free(p);
    }

    // 3. The actual placement of an AUTO session.
    try {
        ipuflow::Runtime::Load(ort);
        ipuflow::SessionOptions opts;
        opts.SetDevice(IPUFLOW_SESSION_DEVICE_AUTO);
        ipuflow::Session session = ipuflow::Session::Create(model, &opts);
        ipuflow_placement_summary sum = session.PlacementSummary();
        std::printf("== AUTO session (ONNX Runtime %s)\n", ipuflow::Runtime::Version().c_str());
        std::printf("AUTO session runs on: %s\n", session.DeviceUsed() == IPUFLOW_DEVICE_NPU ? "NPU" : "CPU");
        std::string reason = session.FallbackReason();
        if (!reason.empty()) std::printf("Fallback reason: %s\n", reason.c_str());
        std::string key = session.CacheKey();
        if (!key.empty()) std::printf("VitisAI cache key: %s\n", key.c_str());
        if (sum.available)
            std::printf("No. of Operators : NPU %zu CPU %zu (of %zu as partitioned by ONNX Runtime)\n", sum.npu_nodes,
                        sum.cpu_nodes + sum.other_nodes, sum.total_nodes);
        else
            std::printf("No. of Operators : unavailable (this ONNX Runtime does not report the placement)\n");
    } catch (const ipuflow::Exception& e) {
        std::printf("FAILED: AUTO session: %s: %s\n", e.error().code_name(), e.what());
        return 1;
    }
    return 0;
}
