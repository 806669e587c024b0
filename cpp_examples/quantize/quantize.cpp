// The Ryzen AI quantization flow in C++, no Python: load a float ONNX model, quantize it with a preset on a folder
// of calibration images, save it, then compare the float and the quantized model on ONNX Runtime's CPU.
//
//   quantize MODEL.onnx XINT8|A8W8|A16W8|CPU CALIB_DIR OUT.onnx [RECIPE OPTION...] [EVAL_DIR...]
//
// Recipe options change the preset's defaults: --bias int8|int32, --equalize on|off, --bias-correction on|off,
// --learned-rounding on|off (QuantConfig::BiasType, Equalization, BiasCorrection, LearnedRounding).
//
// Images are preprocessed as ipuflow_image_preprocess_init says (RGB, shorter side to 256/224 of the input size,
// centre crop, (x - 127) / 128, layout from the model); evaluation uses each image as is and flipped. Prints the
// top-1 agreement of the first output (argmax over its last axis) and the SQNR of the first output.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "ipuflow.hpp"

namespace fs = std::filesystem;

static int32_t preset_of(const std::string& s) {
    if (s == "XINT8") return IPUFLOW_PRESET_XINT8;
    if (s == "A8W8") return IPUFLOW_PRESET_A8W8;
    if (s == "A16W8") return IPUFLOW_PRESET_A16W8;
    if (s == "CPU") return IPUFLOW_PRESET_CPU;
    return -1;
}

static std::vector<std::string> images_in(const std::string& dir) {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(dir)) {
        std::string ext = e.path().extension().string();
        std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
        if (e.is_regular_file() && (ext == ".jpg" || ext == ".jpeg" || ext == ".png")) v.push_back(e.path().string());
    }
    std::sort(v.begin(), v.end());
    return v;
}

// Applies one recipe option (`name` `value`) to `config`; false when the option or its value is unknown.
static bool apply_recipe(ipuflow::QuantConfig& config, const std::string& name, const std::string& value) {
    if (name == "--bias" && (value == "int8" || value == "int32")) {
        config.BiasType(value == "int8" ? IPUFLOW_BIAS_TYPE_INT8 : IPUFLOW_BIAS_TYPE_INT32);
        return true;
    }
    if (value != "on" && value != "off") return false;
    const bool on = value == "on";
    if (name == "--equalize") config.Equalization(on);
    else if (name == "--bias-correction") config.BiasCorrection(on);
    else if (name == "--learned-rounding") config.LearnedRounding(on);
    else return false;
    return true;
}

static const char* stage_name(int32_t s) {
    switch (s) {
        case IPUFLOW_QUANT_STAGE_PREPARE: return "prepare";
        case IPUFLOW_QUANT_STAGE_CALIBRATE: return "calibrate";
        case IPUFLOW_QUANT_STAGE_QUANTIZE: return "quantize";
        default: return "verify";
    }
}

int main(int argc, char** argv) try {
    if (argc < 5 || preset_of(argv[2]) < 0) {
        std::fprintf(stderr,
                     "usage: %s MODEL.onnx XINT8|A8W8|A16W8|CPU CALIB_DIR OUT.onnx [--bias int8|int32] "
                     "[--equalize|--bias-correction|--learned-rounding on|off]... [EVAL_DIR...]\n",
                     argv[0]);
        return 2;
    }
    const std::string model_path = argv[1], preset = argv[2], calib_dir = argv[3], out_path = argv[4];
    ipuflow::Runtime::Load();  // IPUFLOW_ORT_LIBRARY, else next to the ipuflow library, else the system's
    ipuflow::Model model = ipuflow::Model::Load(model_path);

    // 1. Quantize, with progress, and save (atomically).
    auto t0 = std::chrono::steady_clock::now();
    ipuflow::QuantConfig config = ipuflow::QuantConfig::Create(preset_of(preset));
    int first_eval = 5;
    for (; first_eval < argc && std::strncmp(argv[first_eval], "--", 2) == 0; first_eval += 2) {
        if (first_eval + 1 >= argc || !apply_recipe(config, argv[first_eval], argv[first_eval + 1])) {
            std::fprintf(stderr, "unknown recipe option or value: %s %s\n", argv[first_eval],
                         first_eval + 1 < argc ? argv[first_eval + 1] : "(none)");
            return 2;
        }
    }
    ipuflow::CalibData calib = ipuflow::CalibData::FromImageDir(calib_dir);
    std::string report;
    ipuflow::Model quantized = ipuflow::Quantize(
        model, config, calib,
        [](int32_t stage, size_t done, int64_t total) {
            if (stage != IPUFLOW_QUANT_STAGE_CALIBRATE || done == 0 || static_cast<int64_t>(done) == total)
                std::printf("  %-9s %zu/%lld\n", stage_name(stage), done, static_cast<long long>(total));
            return true;
        },
        &report);
    quantized.Save(out_path);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("quantized %s with %s in %.2f s -> %s (report: %zu bytes of JSON)\n", model_path.c_str(),
                preset.c_str(), secs, out_path.c_str(), report.size());

    // 2. Float and quantized sessions on the CPU.
    ipuflow::SessionOptions options;
    options.SetDevice(IPUFLOW_SESSION_DEVICE_CPU);
    ipuflow::Session fsess = ipuflow::Session::Create(model_path, &options);
    ipuflow::Session qsess = ipuflow::Session::Create(out_path, &options);
    ipuflow::TensorInfo in = fsess.GetInputInfo(0);
    std::vector<int64_t> shape = in.shape;
    for (int64_t& d : shape) d = d < 0 ? 1 : d;  // batch 1
    if (shape.size() != 4) throw std::runtime_error("the model's first input is not an image (rank 4)");
    ipuflow_image_preprocess pre = ipuflow::DefaultImagePreprocess();
    bool nhwc = shape[3] == 3 && shape[1] != 3;
    pre.layout = nhwc ? IPUFLOW_LAYOUT_NHWC : IPUFLOW_LAYOUT_NCHW;
    pre.height = static_cast<uint32_t>(nhwc ? shape[1] : shape[2]);
    pre.width = static_cast<uint32_t>(nhwc ? shape[2] : shape[3]);

    // 3. Evaluation: each image as is and flipped.
    std::vector<std::string> files;
    for (int i = first_eval; i < argc; ++i)
        for (auto& f : images_in(argv[i])) files.push_back(f);
    std::vector<float> x;  // one preprocessed image
    size_t n = 0, agree = 0;
    double signal = 0, noise = 0;
    for (const auto& f : files) {
        for (int flip = 0; flip < 2; ++flip) {
            ipuflow::PreprocessImage(f, pre, flip != 0, x);
            ipuflow::Tensor view = ipuflow::Tensor::Create<float>(shape, x);
            std::vector<ipuflow::Tensor> r = fsess.Run({in.name}, view);
            std::vector<ipuflow::Tensor> q = qsess.Run({in.name}, view);
            size_t nr = 0, nq = 0;
            const float* a = r[0].Data<float>(&nr);
            const float* b = q[0].Data<float>(&nq);
            if (nr != nq || nr == 0) throw std::runtime_error("float and quantized outputs differ in size");
            for (size_t i = 0; i < nr; ++i) {
                signal += double(a[i]) * a[i];
                noise += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
            }
            agree += std::max_element(a, a + nr) - a == std::max_element(b, b + nq) - b;
            ++n;
        }
    }
    if (n > 0) {
        std::printf("eval: %zu inputs, top-1 agreement %.3f, output SQNR %.2f dB\n", n, double(agree) / n,
                    10.0 * std::log10(signal / std::max(noise, 1e-30)));
    }
    std::printf("QUANTIZE OK\n");
    return 0;
} catch (const ipuflow::Exception& e) {  // the status name and ipuflow's message
    std::fprintf(stderr, "%s: %s\n", e.status().code_name(), e.what());
    return 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
}
