// npu_check: what the Ryzen AI flow would do with a model on this machine.
//
//   npu_check --model PATH [--sysfs DIR] [--ort PATH]
//
// 1. Detection (ipuflow::NpuScan): the NPUs found (PCI 1022:1502 PHX/HPT -> target X1, 1022:17f0 STX/KRK -> X2).
//    --sysfs points the scan (and the AUTO session below, through IPUFLOW_SYSFS_ROOT) at another PCI device tree.
// 2. The pre-flight prediction (ipuflow::Preflight) for the detected target (X2 when none): NPU coverage and,
//    for every node the NPU would not take, why.
// 3. The actual placement of an AUTO session (NPU when one is detected and the VitisAI EP works, else the CPU with
//    the reason), from ONNX Runtime's own assignment info.
// Exits 0 when every step ran (whatever the device), non-zero on an error.
#include "ipuflow.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

const char* target_name(int32_t t) { return t == IPUFLOW_TARGET_X1 ? "X1" : "X2"; }

}  // namespace

int main(int argc, char** argv) {
    std::string model_path, sysfs, ort;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        if (k == "--model") model_path = argv[i + 1];
        else if (k == "--sysfs") sysfs = argv[i + 1];
        else if (k == "--ort") ort = argv[i + 1];
        else {
            std::fprintf(stderr, "usage: %s --model PATH [--sysfs DIR] [--ort PATH]\n", argv[0]);
            return 64;
        }
    }
    if (model_path.empty() || argc % 2 == 0) {
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

    const char* step = "NPU detection";
    try {
        // 1. Detection.
        int32_t target = IPUFLOW_TARGET_X2;
        std::vector<ipuflow::NpuDevice> npus = ipuflow::NpuScan::Detect(sysfs).Devices();
        std::printf("== Detection: %zu NPU%s found\n", npus.size(), npus.size() == 1 ? "" : "s");
        for (size_t i = 0; i < npus.size(); ++i) {
            const ipuflow::NpuDevice& d = npus[i];
            std::printf("NPU %zu: %s, PCI %04x:%04x revision 0x%02x, target %s, at %s, driver %s%s%s\n", i,
                        d.name.c_str(), d.vendor_id, d.device_id, d.revision < 0 ? 0 : d.revision,
                        target_name(d.target), d.location.c_str(),
                        d.driver.empty() ? "(none visible)" : d.driver.c_str(), d.notes.empty() ? "" : "; ",
                        d.notes.c_str());
        }
        if (npus.empty()) std::printf("No Ryzen AI NPU: predicting for target X2\n");
        else target = npus[0].target;

        // 2. Pre-flight prediction.
        step = "pre-flight";
        ipuflow::Preflight p = ipuflow::Preflight::Run(ipuflow::Model::Load(model_path), target);
        ipuflow_preflight_summary sum = p.Summary();
        std::printf("== Pre-flight (target %s, %s model): NPU %zu CPU %zu of %zu nodes, coverage %.1f%%, %zu NPU "
                    "subgraph%s\n",
                    target_name(sum.target), sum.quantized ? "quantized" : "float", sum.npu_nodes, sum.cpu_nodes,
                    sum.total_nodes, sum.coverage_percent, sum.subgraphs, sum.subgraphs == 1 ? "" : "s");
        for (const ipuflow::NodePrediction& np : p.Nodes())
            if (np.device == IPUFLOW_DEVICE_CPU)
                std::printf("  CPU  %-40s %-20s %s%s\n", np.name.c_str(), np.op_type.c_str(), np.reason.c_str(),
                            np.supported_if_quantized ? " (NPU once quantized)" : "");

        // 3. The actual placement of an AUTO session.
        step = "AUTO session";
        ipuflow::Runtime::Load(ort);
        ipuflow::SessionOptions opts;
        opts.SetDevice(IPUFLOW_SESSION_DEVICE_AUTO);
        ipuflow::Session session = ipuflow::Session::Create(model_path, opts);
        ipuflow_placement_summary placed = session.PlacementSummary();
        std::printf("== AUTO session (ONNX Runtime %s)\n", ipuflow::Runtime::Version().c_str());
        std::printf("AUTO session runs on: %s\n", session.DeviceUsed() == IPUFLOW_DEVICE_NPU ? "NPU" : "CPU");
        std::string reason = session.FallbackReason();
        if (!reason.empty()) std::printf("Fallback reason: %s\n", reason.c_str());
        std::string key = session.CacheKey();
        if (!key.empty()) std::printf("VitisAI cache key: %s\n", key.c_str());
        if (placed.available)
            std::printf("No. of Operators : NPU %zu CPU %zu (of %zu as partitioned by ONNX Runtime)\n",
                        placed.npu_nodes, placed.cpu_nodes + placed.other_nodes, placed.total_nodes);
        else
            std::printf("No. of Operators : unavailable (this ONNX Runtime does not report the placement)\n");
    } catch (const ipuflow::Exception& e) {
        std::printf("FAILED: %s: %s: %s\n", step, e.status().code_name(), e.what());
        return 1;
    }
    return 0;
}
