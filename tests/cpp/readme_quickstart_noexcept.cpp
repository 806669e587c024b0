// The README's C++ quickstart for a host built without exceptions (-fno-exceptions, as game engines are): the
// same steps, where every call that can fail returns ipuflow::Result<T> (test it, then take the value) or
// ipuflow::Status. tests/CMakeLists.txt builds it with -fno-exceptions and runs it like the quickstart.
#define IPUFLOW_NO_EXCEPTIONS
#include <cstdio>
#include <utility>
#include <vector>

#include "ipuflow.hpp"

// The status name, and a message naming the file, tensor or option.
static int fail(const ipuflow::Status& s) {
    std::fprintf(stderr, "%s: %s\n", s.code_name(), s.message().c_str());
    return 1;
}

int main() {
    if (ipuflow::Status s = ipuflow::Runtime::Load(); !s.ok()) return fail(s);
    ipuflow::Result<ipuflow::Model> model = ipuflow::Model::Load("model.onnx");
    if (!model) return fail(model.status());
    auto calib = ipuflow::CalibData::FromImageDir("calib_images");  // resize, crop, normalize
    if (!calib) return fail(calib.status());
    auto config = ipuflow::QuantConfig::Create(IPUFLOW_PRESET_XINT8);
    if (!config) return fail(config.status());
    auto quantized = ipuflow::Quantize(*model, *config, *calib);
    if (!quantized) return fail(quantized.status());
    if (ipuflow::Status s = quantized->Save("model.xint8.onnx"); !s.ok()) return fail(s);

    ipuflow::SessionOptions options;
    if (ipuflow::Status s = options.SetDevice(IPUFLOW_SESSION_DEVICE_AUTO); !s.ok()) return fail(s);
    auto created = ipuflow::Session::Create("model.xint8.onnx", options);
    if (!created) return fail(created.status());
    ipuflow::Session session = std::move(created).value();
    auto device = session.DeviceUsed();
    auto reason = session.FallbackReason();
    if (!device || !reason) return fail(!device ? device.status() : reason.status());
    std::printf("runs on the %s %s\n", *device == IPUFLOW_DEVICE_NPU ? "NPU" : "CPU", reason->c_str());

    std::vector<float> pixels(1 * 3 * 224 * 224, 0.5f);
    auto x = ipuflow::Tensor::Create<float>({1, 3, 224, 224}, pixels);  // a view: nothing is copied
    auto input = session.GetInputInfo(0);
    if (!x || !input) return fail(!x ? x.status() : input.status());
    auto out = session.Run({input->name}, *x);
    if (!out) return fail(out.status());
    auto first = (*out)[0].Data<float>();
    if (!first) return fail(first.status());
    std::printf("%zu output(s), first value %g\n", out->size(), (*first)[0]);
    return 0;
}
