// quicktest: the Ryzen AI "quicktest" done honestly.
//
//   quicktest [--model PATH] [--device cpu|ipu|auto] [--policy strict|prefer] [--ort PATH]
//
// Loads ONNX Runtime (--ort, else IPUFLOW_ORT_LIBRARY / next to ipuflow / the system loader), creates a session for
// the model (default: ../shared/models/blazeface-short-range.onnx beside the repository) on the requested device,
// runs it once on generated input, and prints the runtime version, where ONNX Runtime placed the nodes ("No. of
// Operators : NPU n CPU m"), a summary of each output, and "PASSED" only when the run succeeded on the device asked
// for: cpu -> the CPU; ipu -> the NPU took nodes; auto -> whichever the session chose (printed). Otherwise it prints
// "FAILED: <why>" (ONNX Runtime's own reason for a refused NPU) and exits non-zero.
#include "ipuflow.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

struct Args {
    std::string model;
    std::string device = "cpu";
    std::string policy;  // "" = the library's default (STRICT for ipu, PREFER for auto)
    std::string ort;
};

int usage(const char* argv0) {
    std::fprintf(stderr, "usage: %s [--model PATH] [--device cpu|ipu|auto] [--policy strict|prefer] [--ort PATH]\n",
                 argv0);
    return 64;
}

std::string default_model(const char* argv0) {
    // <repo>/../shared/models beside the repository, found from the working directory or the executable's path.
    const char* candidates[] = {"../shared/models/blazeface-short-range.onnx",
                                "../../shared/models/blazeface-short-range.onnx",
                                "../../../shared/models/blazeface-short-range.onnx"};
    for (const char* c : candidates) {
        if (FILE* f = std::fopen(c, "rb")) {
            std::fclose(f);
            return c;
        }
    }
    (void)argv0;
    return "blazeface-short-range.onnx";
}

const char* device_name(int32_t d) { return d == IPUFLOW_DEVICE_NPU ? "NPU" : "CPU"; }

// Deterministic input: floats in [0, 1), integers in a small range, booleans alternating.
std::vector<unsigned char> make_input(int32_t type, size_t elems, size_t esize) {
    std::vector<unsigned char> buf(elems * esize);
    uint32_t state = 12345u;
    auto next = [&state]() {
        state = state * 1664525u + 1013904223u;
        return state >> 8;
    };
    for (size_t i = 0; i < elems; ++i) {
        unsigned char* p = buf.data() + i * esize;
        if (type == IPUFLOW_ELEMENT_TYPE_FLOAT) {
            float v = static_cast<float>(next() % 1000000u) / 1000000.0f;
            std::memcpy(p, &v, sizeof v);
        } else if (type == IPUFLOW_ELEMENT_TYPE_DOUBLE) {
            double v = static_cast<double>(next() % 1000000u) / 1000000.0;
            std::memcpy(p, &v, sizeof v);
        } else if (type == IPUFLOW_ELEMENT_TYPE_BOOL) {
            p[0] = static_cast<unsigned char>(i & 1u);
        } else {
            // Integers (and 16-bit floats' raw bits): small values in the low byte, the rest 0.
            std::memset(p, 0, esize);
            p[0] = static_cast<unsigned char>(next() % 16u);
        }
    }
    return buf;
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string k = argv[i];
        if (i + 1 >= argc) return usage(argv[0]);
        std::string v = argv[++i];
        if (k == "--model") a.model = v;
        else if (k == "--device") a.device = v;
        else if (k == "--policy") a.policy = v;
        else if (k == "--ort") a.ort = v;
        else return usage(argv[0]);
    }
    if (a.model.empty()) a.model = default_model(argv[0]);
    std::map<std::string, int32_t> devices = {
        {"cpu", IPUFLOW_SESSION_DEVICE_CPU}, {"ipu", IPUFLOW_SESSION_DEVICE_IPU}, {"auto", IPUFLOW_SESSION_DEVICE_AUTO}};
    if (devices.count(a.device) == 0 || (!a.policy.empty() && a.policy != "strict" && a.policy != "prefer"))
        return usage(argv[0]);

    try {
        ipuflow::Runtime::Load(a.ort);
        std::printf("ipuflow %s, ONNX Runtime %s\n", ipuflow::VersionString(), ipuflow::Runtime::Version().c_str());
        std::printf("Model: %s\n", a.model.c_str());
        std::printf("Requested device: %s\n", a.device.c_str());

        ipuflow::SessionOptions opts;
        opts.SetDevice(devices[a.device]);
        if (!a.policy.empty())
            opts.SetFallback(a.policy == "strict" ? IPUFLOW_FALLBACK_STRICT : IPUFLOW_FALLBACK_PREFER, 0.0);
        ipuflow::Session session = ipuflow::Session::Create(a.model, &opts);

        // Where it runs, from ONNX Runtime's own placement.
        ipuflow_placement_summary sum = session.PlacementSummary();
        int32_t used = session.DeviceUsed();
        std::printf("Session runs on: %s\n", device_name(used));
        if (sum.available) {
            std::printf("No. of Operators : NPU %zu CPU %zu", sum.npu_nodes, sum.cpu_nodes);
            if (sum.other_nodes) std::printf(" other %zu", sum.other_nodes);
            std::printf(" (NPU %.1f%%)\nNo. of Subgraphs : NPU %zu\n", sum.npu_percent, sum.npu_subgraphs);
        } else {
            std::printf("No. of Operators : unavailable (this ONNX Runtime does not report the placement)\n");
        }
        std::string reason = session.FallbackReason();
        if (!reason.empty()) std::printf("Fallback reason: %s\n", reason.c_str());
        std::string key = session.CacheKey();
        if (!key.empty()) std::printf("VitisAI cache key: %s\n", key.c_str());

        // Generated input (each input's own element type, dynamic dimensions as 1), one run.
        std::vector<std::string> names;
        std::vector<std::vector<unsigned char>> buffers;
        std::vector<ipuflow::Tensor> inputs;
        std::vector<ipuflow::TensorInfo> infos = session.Inputs();
        buffers.reserve(infos.size());
        for (const auto& in : infos) {
            size_t esize = ipuflow::ElementTypeSize(in.element_type), elems = 1;
            std::vector<int64_t> shape = in.shape;
            for (auto& d : shape) {
                if (d < 0) d = 1;
                elems *= static_cast<size_t>(d);
            }
            buffers.push_back(make_input(in.element_type, elems, esize));
            inputs.push_back(
                ipuflow::Tensor::Create(in.element_type, shape, buffers.back().data(), buffers.back().size()));
            names.push_back(in.name);
        }
        std::vector<ipuflow::Tensor> outs = session.Run(names, inputs);
        std::vector<ipuflow::TensorInfo> out_infos = session.Outputs();
        bool finite = true;
        for (size_t i = 0; i < outs.size(); ++i) {
            std::string shape;
            for (int64_t d : outs[i].Shape()) shape += (shape.empty() ? "" : ",") + std::to_string(d);
            std::printf("Output %s [%s]", out_infos[i].name.c_str(), shape.c_str());
            if (outs[i].ElementType() == IPUFLOW_ELEMENT_TYPE_FLOAT && outs[i].ElementCount() > 0) {
                size_t n = 0;
                const float* f = outs[i].Data<float>(&n);
                double mn = f[0], mx = f[0], sumv = 0;
                for (size_t k = 0; k < n; ++k) {
                    if (!std::isfinite(f[k])) finite = false;
                    mn = f[k] < mn ? f[k] : mn;
                    mx = f[k] > mx ? f[k] : mx;
                    sumv += f[k];
                }
                std::printf(" min %.6g max %.6g mean %.6g", mn, mx, sumv / static_cast<double>(n));
            } else {
                std::printf(" %zu bytes", outs[i].ByteSize());
            }
            std::printf("\n");
        }
        if (!finite) {
            std::printf("FAILED: an output holds NaN or infinity\n");
            return 3;
        }
        bool on_requested = a.device == "auto" || (a.device == "cpu" && used == IPUFLOW_DEVICE_CPU) ||
                            (a.device == "ipu" && used == IPUFLOW_DEVICE_NPU);
        if (!on_requested) {
            std::printf("FAILED: requested %s but the session ran on the %s: %s\n", a.device.c_str(),
                        device_name(used), reason.empty() ? "(no reason recorded)" : reason.c_str());
            return 2;
        }
        std::printf("PASSED: ran on the %s\n", device_name(used));
        return 0;
    } catch (const ipuflow::Exception& e) {
        std::printf("FAILED: %s: %s\n", e.status().code_name(), e.what());
        return 1;
    }
}
