// The C++ wrapper's surface and error paths in both modes, from one source: tests/CMakeLists.txt builds it as
// test_cpp_wrapper (exceptions) and as test_cpp_wrapper_noexcept (-fno-exceptions -DIPUFLOW_NO_EXCEPTIONS), where
// every call that can fail returns ipuflow::Result<T> / ipuflow::Status. Covered: typed tensor views and checked
// Data<T>() (wrong element type), bad files, out-of-range indices, a cancelled run and quantization, NPU scan and
// pre-flight, the UTF-16 path overloads (WidePath), Model::CopyWithInputShape, the Evaluator, the recipe setters of
// QuantConfig and calibration data from a std::function (failures reported, never thrown through the library).
//
// tests/c/ipf_test.h catches exceptions (a `try` that -fno-exceptions refuses), so this file has its own small
// TAP harness with the same output and the same CI rule for missing data.
#include "ipuflow.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "ipf_fs.h"
#include "test_models.h"

// ---- harness --------------------------------------------------------------------------------------------------
static int run_count, failed_count, cur_failed;
static const char* cur_skip;
static const char* tmp;

static void fail_at(const char* file, int line, const char* what, const std::string& detail = std::string()) {
    ++cur_failed;
    std::printf("#   %s:%d: check failed: %s\n", file, line, what);
    if (!detail.empty()) std::printf("#     %s\n", detail.c_str());
}
#define CHECK(c) ((c) ? (void)0 : fail_at(__FILE__, __LINE__, #c))
#define REQUIRE(c)                                                                                                 \
    do {                                                                                                           \
        if (!(c)) return fail_at(__FILE__, __LINE__, #c);                                                          \
    } while (0)

static bool ci() {
    const char* v = std::getenv("CI");
    if (v == nullptr) return false;
    for (const char* no : {"", "0", "false", "FALSE", "False", "no", "NO"})
        if (std::strcmp(v, no) == 0) return false;
    return true;
}
// Missing test data: a skip outside CI, a failure under CI.
#define SKIP_DATA(reason)                                                                                          \
    do {                                                                                                           \
        if (ci()) return fail_at(__FILE__, __LINE__, "CI: missing test data", reason);                             \
        cur_skip = reason;                                                                                         \
        return;                                                                                                    \
    } while (0)

static void run_test(const char* name, void (*fn)()) {
    cur_failed = 0;
    cur_skip = nullptr;
#if defined(IPUFLOW_NO_EXCEPTIONS)
    fn();
#else
    try {
        fn();
    } catch (const std::exception& e) {
        fail_at(__FILE__, __LINE__, "no exception escapes", e.what());
    }
#endif
    ++run_count;
    if (cur_failed) ++failed_count;
    std::printf("%s %d - %s%s%s\n", cur_failed ? "not ok" : "ok", run_count, name, cur_skip ? " # SKIP " : "",
                cur_skip ? cur_skip : "");
    std::fflush(stdout);
}
#define RUN(name) run_test(#name, name)

// ---- the two modes --------------------------------------------------------------------------------------------
// OUTCOME(expr): the Status of a wrapper call (OK when it succeeded). VALUE(expr): the value of a call that must
// succeed (a failure is a failed check; without exceptions the value is then the empty one). MUST(expr): a call
// without value that must succeed.
#if defined(IPUFLOW_NO_EXCEPTIONS)
template <typename T>
static ipuflow::Status outcome(const ipuflow::Result<T>& r) {
    return r.status();
}
static ipuflow::Status outcome(const ipuflow::Status& s) { return s; }
#define OUTCOME(expr) outcome(expr)
template <typename T>
static T value_of(ipuflow::Result<T>&& r, const char* what, int line) {
    if (!r.ok()) fail_at(__FILE__, line, what, std::string(r.status().code_name()) + ": " + r.status().message());
    return std::move(r).value();
}
#define VALUE(expr) value_of((expr), #expr, __LINE__)
#define MUST(expr)                                                                                                 \
    do {                                                                                                           \
        ipuflow::Status s_ = (expr);                                                                               \
        if (!s_.ok()) fail_at(__FILE__, __LINE__, #expr, std::string(s_.code_name()) + ": " + s_.message());       \
    } while (0)
#else
#define OUTCOME(expr)                                                                                              \
    ([&]() -> ipuflow::Status {                                                                                    \
        try {                                                                                                      \
            (void)(expr);                                                                                          \
            return ipuflow::Status();                                                                              \
        } catch (const ipuflow::Exception& e) {                                                                    \
            return e.status();                                                                                     \
        }                                                                                                          \
    }())
#define VALUE(expr) (expr)
#define MUST(expr) (expr)
#endif

// The call fails with `code` and a message containing `needle`.
#define CHECK_ERROR(expr, want, needle)                                                                            \
    do {                                                                                                           \
        ipuflow::Status st_ = OUTCOME(expr);                                                                       \
        if (st_.code() != (want) || st_.message().find(needle) == std::string::npos)                               \
            fail_at(__FILE__, __LINE__, #expr " fails with " #want " naming \"" needle "\"",                       \
                    std::string("got ") + st_.code_name() + ": \"" + st_.message() + "\"");                        \
    } while (0)

// ---- tests ----------------------------------------------------------------------------------------------------
template <typename T>
static constexpr bool move_only() {
    return !std::is_copy_constructible<T>::value && !std::is_copy_assignable<T>::value &&
           std::is_nothrow_move_constructible<T>::value && std::is_nothrow_move_assignable<T>::value;
}
static_assert(move_only<ipuflow::Model>() && move_only<ipuflow::Env>() && move_only<ipuflow::SessionOptions>() &&
                  move_only<ipuflow::RunOptions>() && move_only<ipuflow::Session>() && move_only<ipuflow::Tensor>() &&
                  move_only<ipuflow::NpuScan>() && move_only<ipuflow::Preflight>() &&
                  move_only<ipuflow::QuantConfig>() && move_only<ipuflow::CalibData>() &&
                  move_only<ipuflow::Evaluator>(),
              "every wrapper class is move-only RAII");
#if defined(IPUFLOW_NO_EXCEPTIONS)
static_assert(std::is_same<decltype(ipuflow::Model::Load("")), ipuflow::Result<ipuflow::Model>>::value,
              "without exceptions a call that can fail returns a Result");
static_assert(std::is_same<decltype(std::declval<ipuflow::RunOptions&>().Cancel()), ipuflow::Status>::value,
              "... or a Status");
#else
static_assert(std::is_same<decltype(ipuflow::Model::Load("")), ipuflow::Model>::value, "with exceptions, values");
#endif

static void tensor_views_and_typed_data() {
    std::vector<float> data{1, 2, 3, 4, 5, 6};
    ipuflow::Tensor t = VALUE(ipuflow::Tensor::Create<float>({2, 3}, data));
    CHECK(t.ElementType() == IPUFLOW_ELEMENT_TYPE_FLOAT);
    CHECK(t.Shape() == (std::vector<int64_t>{2, 3}));
    CHECK(t.ElementCount() == 6 && t.ByteSize() == 6 * sizeof(float));
    CHECK(!t.OwnsData());
    size_t n = 0;
    const float* p = VALUE(t.Data<float>(&n));
    CHECK(p == data.data() && n == 6);  // a view: nothing copied
    float* w = VALUE(t.MutableData<float>());
    REQUIRE(w != nullptr);
    w[0] = 10.0f;
    CHECK(data[0] == 10.0f);

    // Wrong element type: both types named.
    CHECK_ERROR(t.Data<int64_t>(), IPUFLOW_STATUS_TENSOR_MISMATCH, "holds float elements, not int64");
    CHECK_ERROR(t.MutableData<uint8_t>(), IPUFLOW_STATUS_TENSOR_MISMATCH, "not uint8");
    // Shape and data disagree; negative dimension.
    CHECK_ERROR(ipuflow::Tensor::Create<float>({2, 4}, data), IPUFLOW_STATUS_TENSOR_MISMATCH, "[2,4] holds 8");
    CHECK_ERROR(ipuflow::Tensor::Create<float>({-1, 6}, data), IPUFLOW_STATUS_TENSOR_MISMATCH, "negative");
    CHECK_ERROR(ipuflow::Tensor::Create<float>({2}, static_cast<float*>(nullptr), 2), IPUFLOW_STATUS_NULL_ARGUMENT,
                "data is null");
    // A view of const memory reads but does not write.
    const std::vector<int64_t> ids{7, 8, 9};
    ipuflow::Tensor c = VALUE(ipuflow::Tensor::Create<int64_t>({3}, ids));
    CHECK(VALUE(c.Data<int64_t>())[2] == 9);
    CHECK_ERROR(c.MutableData<int64_t>(), IPUFLOW_STATUS_INVALID_ARGUMENT, "read-only");
    // Untyped views, packed types included.
    unsigned char bytes[16] = {0};
    ipuflow::Tensor u = VALUE(ipuflow::Tensor::Create(IPUFLOW_ELEMENT_TYPE_INT64, {2}, bytes, 16));
    CHECK(u.ElementType() == IPUFLOW_ELEMENT_TYPE_INT64 && u.ByteSize() == 16);
    CHECK_ERROR(ipuflow::Tensor::Create(IPUFLOW_ELEMENT_TYPE_INT64, {2}, bytes, 15), IPUFLOW_STATUS_TENSOR_MISMATCH,
                "takes 16 bytes, not 15");
    CHECK(OUTCOME(ipuflow::Tensor::Create(IPUFLOW_ELEMENT_TYPE_UINT4, {3}, bytes, 2)).ok());
    CHECK_ERROR(ipuflow::Tensor::Create(999, {1}, bytes, 1), IPUFLOW_STATUS_INVALID_ENUM, "999");
    // Moving leaves an empty tensor behind.
    ipuflow::Tensor moved = std::move(t);
    CHECK(moved.ElementCount() == 6 && t.ElementType() == 0 && t.RawData() == nullptr);  // NOLINT: the point
    CHECK_ERROR(t.Data<float>(), IPUFLOW_STATUS_TENSOR_MISMATCH, "unknown");
}

static void bad_files() {
    std::string missing = ipf_path(tmp, "missing.onnx");
    CHECK_ERROR(ipuflow::Model::Load(missing), IPUFLOW_STATUS_FILE_NOT_FOUND, "missing.onnx");
    static const unsigned char garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    CHECK_ERROR(ipuflow::Model::FromBytes(garbage, sizeof garbage), IPUFLOW_STATUS_MODEL_DECODE, "");
    CHECK_ERROR(ipuflow::CalibData::FromImageDir(ipf_path(tmp, "no-images")), IPUFLOW_STATUS_FILE_NOT_FOUND,
                "no-images");
    ipuflow::Model m = VALUE(ipuflow::Model::FromBytes(ipf_model_identity, sizeof ipf_model_identity));
    CHECK_ERROR(m.Save(ipf_path(tmp, "no-dir" IPF_SEP "x.onnx")), IPUFLOW_STATUS_FILE_WRITE, "x.onnx");
    MUST(m.Save(ipf_path(tmp, "saved.onnx")));
    ipuflow::Model back = VALUE(ipuflow::Model::Load(ipf_path(tmp, "saved.onnx")));
    CHECK(VALUE(back.Counts()).nodes == 1);
    // An empty (moved-from) model is an error, not a crash.
    ipuflow::Model gone = std::move(back);
    CHECK_ERROR(back.Counts(), IPUFLOW_STATUS_NULL_ARGUMENT, "");  // NOLINT: the moved-from state is the point
    // The value of a failed Result: thrown with exceptions, the empty value (whose calls fail) without.
    ipuflow::Result<ipuflow::Model> r = ipuflow::Model::TryLoad(missing);
    CHECK(!r && r.status().code() == IPUFLOW_STATUS_FILE_NOT_FOUND);
#if defined(IPUFLOW_NO_EXCEPTIONS)
    ipuflow::Model empty = std::move(r).value();
    CHECK(!empty);
    CHECK_ERROR(empty.Save(ipf_path(tmp, "empty.onnx")), IPUFLOW_STATUS_NULL_ARGUMENT, "");
#else
    CHECK_ERROR(r.value(), IPUFLOW_STATUS_FILE_NOT_FOUND, "missing.onnx");
#endif
    CHECK(ipuflow::Result<int>(ipuflow::Status(IPUFLOW_STATUS_INTERNAL, "x")).value_or(7) == 7);
    // Out of range.
    CHECK_ERROR(m.Input(1), IPUFLOW_STATUS_OUT_OF_RANGE, "1");
    CHECK(VALUE(m.Input(0)).name == "x");
    CHECK_ERROR(ipuflow::QuantConfig::Create(99), IPUFLOW_STATUS_INVALID_ENUM, "99");
}

static void npu_scan_and_preflight() {
#ifndef _WIN32  // Windows scans with the device installation API, not a sysfs tree
    // A fake PCI tree with one Strix NPU.
    std::string root = ipf_path(tmp, "sysfs");
    std::string dev = root + IPF_SEP "0000:c4:00.1";
    REQUIRE(ipf_mkdir(root.c_str()) == 0 && ipf_mkdir(dev.c_str()) == 0);
    REQUIRE(ipf_write_file((dev + IPF_SEP "vendor").c_str(), "0x1022\n", 7) == 0);
    REQUIRE(ipf_write_file((dev + IPF_SEP "device").c_str(), "0x17f0\n", 7) == 0);
    REQUIRE(ipf_write_file((dev + IPF_SEP "revision").c_str(), "0x10\n", 5) == 0);
    ipuflow::NpuScan scan = VALUE(ipuflow::NpuScan::Detect(root));
    REQUIRE(VALUE(scan.Count()) == 1);
    ipuflow::NpuDevice d = VALUE(scan.Get(0));
    CHECK(d.name == "STX" && d.device_id == 0x17f0 && d.revision == 0x10 && d.target == IPUFLOW_TARGET_X2);
    CHECK_ERROR(scan.Get(1), IPUFLOW_STATUS_OUT_OF_RANGE, "1");
    CHECK(VALUE(scan.Devices()).size() == 1);
    CHECK(VALUE(scan.ToJson()).find("STX") != std::string::npos);
    CHECK_ERROR(ipuflow::NpuScan::Detect(ipf_path(tmp, "no-sysfs")), IPUFLOW_STATUS_FILE_NOT_FOUND, "no-sysfs");
#endif
    ipuflow::Model m = VALUE(ipuflow::Model::FromBytes(ipf_model_identity, sizeof ipf_model_identity));
    ipuflow::Preflight p = VALUE(ipuflow::Preflight::Run(m, IPUFLOW_TARGET_X2));
    ipuflow_preflight_summary sum = VALUE(p.Summary());
    CHECK(sum.total_nodes == 1 && sum.target == IPUFLOW_TARGET_X2 && !sum.quantized);
    REQUIRE(VALUE(p.NodeCount()) == 1);
    ipuflow::NodePrediction node = VALUE(p.Node(0));
    CHECK(node.op_type == "Identity" && !node.reason.empty());
    CHECK_ERROR(p.Node(1), IPUFLOW_STATUS_OUT_OF_RANGE, "1");
    CHECK(VALUE(p.Nodes()).size() == 1);
    CHECK(VALUE(p.ToJson()).find("Identity") != std::string::npos);
    CHECK_ERROR(ipuflow::Preflight::Run(m, 7), IPUFLOW_STATUS_INVALID_ENUM, "7");
}

static void session_run_cancel_and_indices() {
    const char* ort = std::getenv("IPUFLOW_TEST_ORT_LIBRARY");
    if (ort == nullptr || ort[0] == '\0') SKIP_DATA("IPUFLOW_TEST_ORT_LIBRARY not set");
    MUST(ipuflow::Runtime::Load(ort));
    CHECK(ipuflow::Runtime::IsLoaded() && !VALUE(ipuflow::Runtime::Version()).empty());

    // One environment per process: a second one while the first lives is refused.
    ipuflow::Env env = VALUE(ipuflow::Env::Create(IPUFLOW_LOG_LEVEL_ERROR));
    CHECK_ERROR(ipuflow::Env::Create(), IPUFLOW_STATUS_INVALID_ARGUMENT, "");
    CHECK_ERROR(ipuflow::Session::Create(ipf_path(tmp, "missing.onnx"), nullptr, &env), IPUFLOW_STATUS_FILE_NOT_FOUND,
                "missing.onnx");

    ipuflow::SessionOptions options;
    CHECK_ERROR(options.SetGraphOptimization(42), IPUFLOW_STATUS_INVALID_ENUM, "");
    MUST(options.SetIntraOpThreads(1));
    ipuflow::Session s =
        VALUE(ipuflow::Session::CreateFromMemory(ipf_model_identity, sizeof ipf_model_identity, &options, &env));
    CHECK(VALUE(s.GetInputCount()) == 1 && VALUE(s.GetOutputCount()) == 1);
    ipuflow::TensorInfo in = VALUE(s.GetInputInfo(0));
    CHECK(in.name == "x" && in.element_type == IPUFLOW_ELEMENT_TYPE_FLOAT);
    CHECK(in.shape == (std::vector<int64_t>{-1, 3}) && in.dim_names.size() == 2 && in.dim_names[0] == "batch");
    CHECK_ERROR(s.GetInputInfo(1), IPUFLOW_STATUS_OUT_OF_RANGE, "1");
    CHECK_ERROR(s.GetOutputInfo(5), IPUFLOW_STATUS_OUT_OF_RANGE, "5");
    CHECK(VALUE(s.DeviceUsed()) == IPUFLOW_DEVICE_CPU && VALUE(s.FallbackReason()).empty());

    // Session creation cancelled through the options (any thread may call CancelLoad), then let through again.
    ipuflow::SessionOptions later;
    MUST(later.CancelLoad());
    CHECK_ERROR(ipuflow::Session::CreateFromMemory(ipf_model_identity, sizeof ipf_model_identity, &later, &env),
                IPUFLOW_STATUS_CANCELLED, "cancel");
    MUST(later.ResetLoadCancel());
    CHECK_ERROR(later.SetFallbackExecution(7), IPUFLOW_STATUS_INVALID_ENUM, "");
    MUST(later.SetFallbackExecution(IPUFLOW_FALLBACK_EXECUTION_FAITHFUL));
    CHECK_ERROR(later.SetInputShape("x", {0, 3}), IPUFLOW_STATUS_INVALID_ARGUMENT, "");
    MUST(later.SetInputShape("x", {2, 3}));
    ipuflow::Session fixed =
        VALUE(ipuflow::Session::CreateFromMemory(ipf_model_identity, sizeof ipf_model_identity, &later, &env));
    CHECK(VALUE(fixed.GetInputInfo(0)).shape == (std::vector<int64_t>{2, 3}));

    std::vector<float> x{1.5f, -2.0f, 3.25f, 0.0f, 4.0f, 5.0f};
    ipuflow::Tensor xt = VALUE(ipuflow::Tensor::Create<float>({2, 3}, x));
    CHECK(VALUE(s.InputNames()) == std::vector<std::string>{"x"});
    std::vector<ipuflow::Tensor> out = VALUE(s.Run(VALUE(s.InputNames()), xt));
    REQUIRE(out.size() == 1);
    CHECK(out[0].OwnsData() && out[0].Shape() == (std::vector<int64_t>{2, 3}));
    size_t n = 0;
    const float* y = VALUE(out[0].Data<float>(&n));
    REQUIRE(y != nullptr && n == 6);
    CHECK(std::memcmp(y, x.data(), sizeof(float) * 6) == 0);
    CHECK_ERROR(out[0].Data<int32_t>(), IPUFLOW_STATUS_TENSOR_MISMATCH, "holds float elements, not int32");
    CHECK(VALUE(out[0].MutableData<float>()) != nullptr);  // outputs belong to the caller

    // Inputs checked by name and type, and against their names.
    std::vector<int64_t> wrong{1, 2, 3};
    ipuflow::Tensor wt = VALUE(ipuflow::Tensor::Create<int64_t>({1, 3}, wrong));
    CHECK_ERROR(s.Run({"x"}, wt), IPUFLOW_STATUS_TENSOR_MISMATCH, "x");
    CHECK_ERROR(s.Run({"nope"}, xt), IPUFLOW_STATUS_TENSOR_MISMATCH, "nope");
    CHECK_ERROR(s.Run({"x", "x"}, xt), IPUFLOW_STATUS_INVALID_ARGUMENT, "2 input names but 1 input tensors");
    CHECK_ERROR(s.Run({"x"}, {xt}, {"y", "zz"}), IPUFLOW_STATUS_TENSOR_MISMATCH, "zz");

    // Cancellation: a cancelled RunOptions stops the run until it is reset.
    ipuflow::RunOptions ro = VALUE(ipuflow::RunOptions::Create());
    MUST(ro.SetTag("cpp-test"));
    CHECK(!VALUE(ro.IsCancelled()));
    MUST(ro.Cancel());
    CHECK(VALUE(ro.IsCancelled()));
    CHECK_ERROR(s.Run(ro, {"x"}, xt), IPUFLOW_STATUS_CANCELLED, "");
    MUST(ro.UnsetTerminate());
    CHECK(VALUE(s.Run(ro, {"x"}, xt)).size() == 1);
    ipuflow::RunOptions empty;
    CHECK_ERROR(s.Run(empty, {"x"}, xt), IPUFLOW_STATUS_NULL_ARGUMENT, "RunOptions::Create");

    // From a model held by ipuflow; the outputs outlive their session.
    ipuflow::Model m = VALUE(ipuflow::Model::FromBytes(ipf_model_identity, sizeof ipf_model_identity));
    std::vector<ipuflow::Tensor> kept;
    {
        ipuflow::Session s2 = VALUE(ipuflow::Session::CreateFromModel(m, nullptr, &env));
        kept = VALUE(s2.Run({"x"}, {xt}, {"y"}));
    }
    REQUIRE(kept.size() == 1);
    CHECK(VALUE(kept[0].Data<float>())[2] == 3.25f);
}

static void calib_and_quantize_errors() {
    const char* ort = std::getenv("IPUFLOW_TEST_ORT_LIBRARY");
    if (ort == nullptr || ort[0] == '\0') SKIP_DATA("IPUFLOW_TEST_ORT_LIBRARY not set");
    MUST(ipuflow::Runtime::Load(ort));
    ipuflow::Model m = VALUE(ipuflow::Model::FromBytes(ipf_model_weights, sizeof ipf_model_weights));
    ipuflow::QuantConfig config = VALUE(ipuflow::QuantConfig::Create(IPUFLOW_PRESET_CPU));
    CHECK_ERROR(config.CalibMethod(42), IPUFLOW_STATUS_INVALID_ENUM, "method");
    ipuflow::CalibData calib = VALUE(ipuflow::CalibData::Create());
    std::vector<float> x{0.5f, -1.0f, 2.0f};
    ipuflow::Tensor xt = VALUE(ipuflow::Tensor::Create<float>({1, 3}, x));
    CHECK_ERROR(calib.AddSample({"x", "w"}, xt), IPUFLOW_STATUS_INVALID_ARGUMENT, "2 names but 1 tensors");
    MUST(calib.AddSample({"x"}, xt));
    // Exclusions by pattern are checked against the model before calibration.
    ipuflow::QuantConfig excluded = VALUE(ipuflow::QuantConfig::Create(IPUFLOW_PRESET_CPU));
    MUST(excluded.ExcludePattern("no_such_node_*"));
    CHECK_ERROR(ipuflow::Quantize(m, excluded, calib), IPUFLOW_STATUS_INVALID_ARGUMENT, "no_such_node_*");
    CHECK_ERROR(excluded.InputShape("x", {0, 3}), IPUFLOW_STATUS_INVALID_ARGUMENT, "");
    CHECK_ERROR(excluded.ExcludeSubgraph({}, {"y"}), IPUFLOW_STATUS_INVALID_ARGUMENT, "");
    // A progress callback that says stop cancels.
    CHECK_ERROR(ipuflow::Quantize(m, config, calib, [](int32_t, size_t, int64_t) { return false; }),
                IPUFLOW_STATUS_CANCELLED, "");
#if !defined(IPUFLOW_NO_EXCEPTIONS)
    // An exception thrown by the callback comes back to the caller (not through the library).
    bool rethrown = false;
    try {
        (void)ipuflow::Quantize(m, config, calib, [](int32_t, size_t, int64_t) -> bool { throw 42; });
    } catch (int v) {
        rethrown = v == 42;
    }
    CHECK(rethrown);
#endif
    // A sample for an input the model does not have names it.
    ipuflow::CalibData wrong = VALUE(ipuflow::CalibData::Create());
    MUST(wrong.AddSample({"nope"}, xt));
    CHECK_ERROR(ipuflow::Quantize(m, config, wrong), IPUFLOW_STATUS_TENSOR_MISMATCH, "nope");
    std::string report;
    ipuflow::Model q = VALUE(ipuflow::Quantize(m, config, calib, {}, &report));
    CHECK(VALUE(q.Counts()).nodes > VALUE(m.Counts()).nodes && report.find("\"nodes\"") != std::string::npos);
}

// A UTF-16 copy of an ASCII path (the temporary folder's), for the WidePath overloads.
static std::u16string wide(const std::string& ascii) { return std::u16string(ascii.begin(), ascii.end()); }

static void wide_paths_and_input_shapes() {
    const std::string missing = ipf_path(tmp, "missing-w.onnx");
    CHECK_ERROR(ipuflow::Model::Load(wide(missing)), IPUFLOW_STATUS_FILE_NOT_FOUND, "missing-w.onnx");
    CHECK_ERROR(ipuflow::Model::Load(u""), IPUFLOW_STATUS_INVALID_ARGUMENT, "empty");
#ifdef _WIN32  // wchar_t strings as Windows hosts hold paths
    CHECK_ERROR(ipuflow::Model::Load(L"missing-\u00e9.onnx"), IPUFLOW_STATUS_FILE_NOT_FOUND, "missing-");
    CHECK_ERROR(ipuflow::Model::Load(std::wstring(L"missing-L.onnx")), IPUFLOW_STATUS_FILE_NOT_FOUND, "missing-L");
#endif
    ipuflow::Model m = VALUE(ipuflow::Model::FromBytes(ipf_model_identity, sizeof ipf_model_identity, u""));
    MUST(m.Save(wide(ipf_path(tmp, "saved-w.onnx"))));
    ipuflow::Model back = VALUE(ipuflow::Model::Load(wide(ipf_path(tmp, "saved-w.onnx"))));
    CHECK(VALUE(back.Counts()).nodes == 1);
    MUST(m.SaveWithExternalData(wide(ipf_path(tmp, "ext-w.onnx")), u"ext-w.bin", 0));
    CHECK(ipf_is_file(ipf_path(tmp, "ext-w.onnx")));
    CHECK(VALUE(m.ToJson()).find("Identity") != std::string::npos && VALUE(m.SummaryJson()) == VALUE(m.ToJson()));
    CHECK_ERROR(ipuflow::CalibData::FromImageDir(wide(ipf_path(tmp, "no-images-w"))), IPUFLOW_STATUS_FILE_NOT_FOUND,
                "no-images-w");
    CHECK_ERROR(ipuflow::CalibData::FromNpyDir(wide(ipf_path(tmp, "no-npy-w"))), IPUFLOW_STATUS_FILE_NOT_FOUND,
                "no-npy-w");
    ipuflow_image_preprocess pre = ipuflow::DefaultImagePreprocess();
    pre.height = pre.width = 4;
    std::vector<float> pixels;
    CHECK_ERROR(ipuflow::PreprocessImage(wide(ipf_path(tmp, "no-w.png")), pre, false, pixels),
                IPUFLOW_STATUS_FILE_NOT_FOUND, "no-w.png");
#ifndef _WIN32
    CHECK_ERROR(ipuflow::NpuScan::Detect(wide(ipf_path(tmp, "no-sysfs-w"))), IPUFLOW_STATUS_FILE_NOT_FOUND,
                "no-sysfs-w");
#endif
    CHECK(VALUE(ipuflow::ClearNpuCache(wide(tmp), "no-such-key")) == 0);
    ipuflow::QuantConfig config = VALUE(ipuflow::QuantConfig::Create(IPUFLOW_PRESET_CPU));
    MUST(config.CalibCache(wide(ipf_path(tmp, "w.calib"))));
    MUST(config.CalibCache(u""));  // off again
    ipuflow::SessionOptions options;
    MUST(options.SetProfiling(wide(ipf_path(tmp, "prof"))));
    MUST(options.SetProfiling(u""));
    MUST(options.SetOptimizedModelPath(wide(ipf_path(tmp, "opt.onnx"))));
    MUST(options.SetOptimizedModelPath(u""));
    CHECK(!VALUE(options.LoadCancelled()));
    MUST(options.CancelLoad());
    CHECK(VALUE(options.LoadCancelled()));
    MUST(options.ResetLoadCancel());
    CHECK(!VALUE(options.LoadCancelled()));

    // A copy with a fixed input shape; the model itself keeps its dynamic batch.
    ipuflow::Model fixed = VALUE(m.CopyWithInputShape("x", {2, 3}));
    ipuflow::ValueInfo in = VALUE(fixed.Input(0));
    REQUIRE(in.shape.size() == 2);
    CHECK(in.shape[0].size == 2 && in.shape[1].size == 3);
    CHECK(VALUE(m.Input(0)).shape[0].size == -1);
    CHECK_ERROR(m.CopyWithInputShape("nope", {1, 3}), IPUFLOW_STATUS_INVALID_ARGUMENT, "nope");
    CHECK_ERROR(m.CopyWithInputShape("x", {2, 4}), IPUFLOW_STATUS_INVALID_ARGUMENT, "x");

    const char* ort = std::getenv("IPUFLOW_TEST_ORT_LIBRARY");
    if (ort == nullptr || ort[0] == '\0') SKIP_DATA("IPUFLOW_TEST_ORT_LIBRARY not set");
    MUST(ipuflow::Runtime::Load(wide(ort)));
    CHECK(!VALUE(ipuflow::Runtime::Path()).empty() && VALUE(ipuflow::Runtime::ApiVersion()) > 0);
    CHECK_ERROR(ipuflow::Session::Create(wide(missing)), IPUFLOW_STATUS_FILE_NOT_FOUND, "missing-w.onnx");
    ipuflow::Session s = VALUE(ipuflow::Session::Create(wide(ipf_path(tmp, "saved-w.onnx")), options));
    CHECK(VALUE(s.GetInputCount()) == 1);
}

static void evaluator() {
    ipuflow::Evaluator e = VALUE(ipuflow::Evaluator::Create());
    CHECK_ERROR(e.SetOutputKind("y", 99), IPUFLOW_STATUS_INVALID_ENUM, "99");
    CHECK_ERROR(e.SetOutputKind("", IPUFLOW_OUTPUT_KIND_VALUES), IPUFLOW_STATUS_INVALID_ARGUMENT, "");
    MUST(e.SetOutputKind("y", IPUFLOW_OUTPUT_KIND_VALUES));
    const std::vector<float> ref{1, 2, 3, 4, 5, 6}, other{1, 2, 3, 4, 5, 6.5f};
    MUST(e.Add("y", {2, 3}, ref.data(), other.data(), ref.size()));
    CHECK_ERROR(e.Add("y", {2, 2}, ref.data(), other.data(), ref.size()), IPUFLOW_STATUS_TENSOR_MISMATCH, "");
    ipuflow::Tensor a = VALUE(ipuflow::Tensor::Create<float>({2, 3}, ref));
    ipuflow::Tensor b = VALUE(ipuflow::Tensor::Create<float>({2, 3}, other));
    ipuflow::Tensor c = VALUE(ipuflow::Tensor::Create<float>({3, 2}, other));
    MUST(e.Add("y", a, b));
    CHECK_ERROR(e.Add("y", a, c), IPUFLOW_STATUS_TENSOR_MISMATCH, "differ in shape");
    const std::vector<int64_t> ids{1, 2, 3, 4, 5, 6};
    ipuflow::Tensor i = VALUE(ipuflow::Tensor::Create<int64_t>({2, 3}, ids));
    CHECK_ERROR(e.Add("y", a, i), IPUFLOW_STATUS_TENSOR_MISMATCH, "not float");
    const std::string json = VALUE(e.ToJson());
    CHECK(json.find("\"y\"") != std::string::npos && json.find("sqnr") != std::string::npos);
    ipuflow::Evaluator none;
    CHECK_ERROR(none.ToJson(), IPUFLOW_STATUS_NULL_ARGUMENT, "");
}

#if defined(IPUFLOW_NO_EXCEPTIONS)
using NextResult = ipuflow::Result<bool>;
#else
using NextResult = bool;
#endif

// A calibration function that fails, as each mode fails.
static NextResult unplugged(ipuflow::CalibBatch&) {
#if defined(IPUFLOW_NO_EXCEPTIONS)
    return ipuflow::Status(IPUFLOW_STATUS_FILE_READ, "camera unplugged");
#else
    throw std::runtime_error("camera unplugged");
#endif
}

static void recipe_setters_and_calib_function() {
    ipuflow::QuantConfig config = VALUE(ipuflow::QuantConfig::Create(IPUFLOW_PRESET_XINT8));
    CHECK_ERROR(config.BiasType(IPUFLOW_QUANT_TYPE_INT16), IPUFLOW_STATUS_INVALID_ENUM, "bias_type");
    CHECK_ERROR(config.WeightRange(2), IPUFLOW_STATUS_INVALID_ENUM, "range");
    MUST(config.BiasType(IPUFLOW_BIAS_TYPE_INT32));
    MUST(config.WeightRange(IPUFLOW_WEIGHT_RANGE_MINMAX));
    MUST(config.Equalization(false));
    MUST(config.ReplaceClip6Relu(true));
    MUST(config.BiasCorrection(false));
    MUST(config.LearnedRounding(false));
    MUST(config.NpuRescale(false));
    MUST(config.SigmoidToHardSigmoid(true));
    MUST(config.RoundingScaleSearch(true));
    MUST(config.RoundingActOrder(true));
    CHECK_ERROR(ipuflow::QuantConfig().NpuRescale(true), IPUFLOW_STATUS_NULL_ARGUMENT, "config");
#if !defined(IPUFLOW_NO_EXCEPTIONS)
    config.Equalization(true).BiasCorrection(true).LearnedRounding(true);  // setters chain
#endif
    ipuflow::QuantConfig empty;
    CHECK_ERROR(empty.LearnedRounding(true), IPUFLOW_STATUS_NULL_ARGUMENT, "config");
    CHECK_ERROR(ipuflow::CalibData::FromCallback(ipuflow::CalibNext()), IPUFLOW_STATUS_NULL_ARGUMENT, "empty");

    const char* ort = std::getenv("IPUFLOW_TEST_ORT_LIBRARY");
    if (ort == nullptr || ort[0] == '\0') SKIP_DATA("IPUFLOW_TEST_ORT_LIBRARY not set");
    MUST(ipuflow::Runtime::Load(ort));
    ipuflow::Model m = VALUE(ipuflow::Model::FromBytes(ipf_model_weights, sizeof ipf_model_weights));
    ipuflow::QuantConfig cpu = VALUE(ipuflow::QuantConfig::Create(IPUFLOW_PRESET_CPU));
    // Three batches from a function; the tensor it lends lives outside it (the batch borrows shape and data).
    std::vector<float> x{0.5f, -1.0f, 2.0f};
    ipuflow::Tensor xt = VALUE(ipuflow::Tensor::Create<float>({1, 3}, x));
    int calls = 0;
    bool names_ok = true;
    ipuflow::CalibData data = VALUE(ipuflow::CalibData::FromCallback(
        [&](ipuflow::CalibBatch& batch) -> NextResult {
            names_ok = names_ok && VALUE(batch.InputCount()) == 1 && VALUE(batch.InputName(0)) == "x" &&
                       OUTCOME(batch.InputName(1)).code() == IPUFLOW_STATUS_OUT_OF_RANGE;
            if (calls++ == 3) return false;
            x[0] = 0.5f * static_cast<float>(calls);
            MUST(batch.SetInput("x", xt));
            return true;
        },
        3));
    ipuflow::CalibData moved = std::move(data);  // the function moves with its data
    std::string report;
    ipuflow::Model q = VALUE(ipuflow::Quantize(m, cpu, moved, {}, &report));
    CHECK(calls == 4 && names_ok);
    CHECK(VALUE(q.Counts()).nodes > VALUE(m.Counts()).nodes);

    // A failing function: its message comes back as IPUFLOW_STATUS_CALLBACK, nothing unwinds through the library.
    ipuflow::CalibData failing = VALUE(ipuflow::CalibData::FromCallback(unplugged));
    CHECK_ERROR(ipuflow::Quantize(m, cpu, failing), IPUFLOW_STATUS_CALLBACK, "camera unplugged");
#if !defined(IPUFLOW_NO_EXCEPTIONS)
    ipuflow::CalibData odd = VALUE(ipuflow::CalibData::FromCallback([](ipuflow::CalibBatch&) -> bool { throw 7; }));
    CHECK_ERROR(ipuflow::Quantize(m, cpu, odd), IPUFLOW_STATUS_CALLBACK, "not a std::exception");
#endif
}

int main() {
    tmp = ipf_mkdtemp("cppw");
    if (tmp == nullptr) {
        std::printf("Bail out! cannot create a temporary directory\n");
        return 1;
    }
    RUN(tensor_views_and_typed_data);
    RUN(bad_files);
    RUN(npu_scan_and_preflight);
    RUN(session_run_cancel_and_indices);
    RUN(calib_and_quantize_errors);
    RUN(wide_paths_and_input_shapes);
    RUN(evaluator);
    RUN(recipe_setters_and_calib_function);
    ipf_rmtree(tmp);
    std::printf("1..%d\n", run_count);
    if (failed_count) std::printf("# FAILED %d of %d tests\n", failed_count, run_count);
    return failed_count ? 1 : 0;
}
