// The C++ quickstart of README.md: the lines below are the README's, word for word (tests/readme.rs checks it).
#include <cstdio>
#include <vector>

#include "ipuflow.hpp"

int main() try {
    ipuflow::Runtime::Load();  // IPUFLOW_ORT_LIBRARY, else next to the ipuflow library, else the system's
    ipuflow::Model model = ipuflow::Model::Load("model.onnx");
    ipuflow::CalibData calib = ipuflow::CalibData::FromImageDir("calib_images");  // resize, crop, normalize
    ipuflow::Quantize(model, ipuflow::QuantConfig::Create(IPUFLOW_PRESET_XINT8), calib).Save("model.xint8.onnx");

    ipuflow::SessionOptions options;
    options.SetDevice(IPUFLOW_SESSION_DEVICE_AUTO);  // the NPU when there is one, else the CPU
    ipuflow::Session session = ipuflow::Session::Create("model.xint8.onnx", options);
    std::printf("runs on the %s %s\n", session.DeviceUsed() == IPUFLOW_DEVICE_NPU ? "NPU" : "CPU",
                session.FallbackReason().c_str());

    std::vector<float> pixels(1 * 3 * 224 * 224, 0.5f);
    ipuflow::Tensor x = ipuflow::Tensor::Create<float>({1, 3, 224, 224}, pixels);  // a view: nothing is copied
    std::vector<ipuflow::Tensor> out = session.Run({session.GetInputInfo(0).name}, x);
    std::printf("%zu output(s), first value %g\n", out.size(), out[0].Data<float>()[0]);
    return 0;
} catch (const ipuflow::Exception& e) {  // the status name, and a message naming the file, tensor or option
    std::fprintf(stderr, "%s: %s\n", e.status().code_name(), e.what());
    return 1;
}
