// ipuflow C++ API: a header-only C++17 wrapper over ipuflow.h.
//
// Move-only RAII classes own one handle each and free it with its _free. Failures throw ipuflow::Exception, which
// carries the status code and the detailed message. Hosts built without exceptions define IPUFLOW_NO_EXCEPTIONS
// before including this header: the throwing calls disappear and the Try* calls, which return ipuflow::Result<T>,
// remain.
#ifndef IPUFLOW_HPP
#define IPUFLOW_HPP

#include "ipuflow.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>
#if !defined(IPUFLOW_NO_EXCEPTIONS)
#include <stdexcept>
#endif

namespace ipuflow {

/// A status code with its detailed message, as returned by every Try* call.
class Error {
public:
    Error() = default;
    Error(ipuflow_status code, std::string message) : code_(code), message_(std::move(message)) {}
    ipuflow_status code() const noexcept { return code_; }
    const std::string& message() const noexcept { return message_; }
    /// The code's stable name, e.g. "IPUFLOW_STATUS_FILE_NOT_FOUND".
    const char* code_name() const noexcept { return ipuflow_status_str(code_); }
    bool ok() const noexcept { return code_ == IPUFLOW_STATUS_OK; }

private:
    ipuflow_status code_ = IPUFLOW_STATUS_OK;
    std::string message_;
};

#if !defined(IPUFLOW_NO_EXCEPTIONS)
/// Thrown by every non-Try call that fails.
class Exception : public std::runtime_error {
public:
    explicit Exception(Error e) : std::runtime_error(e.message()), error_(std::move(e)) {}
    ipuflow_status code() const noexcept { return error_.code(); }
    const Error& error() const noexcept { return error_; }

private:
    Error error_;
};
#endif

/// The value of a Try* call, or the error it failed with.
template <typename T>
class Result {
public:
    Result(T value) : value_(std::move(value)), has_value_(true) {}  // NOLINT: implicit by design
    Result(Error error) : error_(std::move(error)) {}                 // NOLINT
    bool ok() const noexcept { return has_value_; }
    explicit operator bool() const noexcept { return has_value_; }
    const Error& error() const noexcept { return error_; }
    /// The value; only meaningful when ok().
    T& value() & noexcept { return value_; }
    T&& value() && noexcept { return std::move(value_); }

private:
    T value_{};
    Error error_;
    bool has_value_ = false;
};

namespace detail {

inline Error last_error(ipuflow_status code) {
    const char* m = ipuflow_last_error();
    return Error(code, m != nullptr ? m : "");
}

#if !defined(IPUFLOW_NO_EXCEPTIONS)
inline void check(ipuflow_status code) {
    if (code != IPUFLOW_STATUS_OK) throw Exception(last_error(code));
}
template <typename T>
T unwrap(Result<T>&& r) {
    if (!r.ok()) throw Exception(r.error());
    return std::move(r).value();
}
#endif

/// Owns one handle of type T, freed with Free. Move-only.
template <typename T, void (*Free)(T*)>
class Handle {
public:
    Handle() noexcept = default;
    explicit Handle(T* p) noexcept : p_(p) {}
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    Handle(Handle&& o) noexcept : p_(o.release()) {}
    Handle& operator=(Handle&& o) noexcept {
        if (this != &o) reset(o.release());
        return *this;
    }
    ~Handle() { reset(); }
    /// The C handle, still owned by this object.
    T* get() const noexcept { return p_; }
    /// Gives up ownership: the caller must free the returned handle.
    T* release() noexcept {
        T* p = p_;
        p_ = nullptr;
        return p;
    }
    void reset(T* p = nullptr) noexcept {
        if (p_ != nullptr) Free(p_);
        p_ = p;
    }
    explicit operator bool() const noexcept { return p_ != nullptr; }

private:
    T* p_ = nullptr;
};

}  // namespace detail

/// Version of the loaded library, e.g. 1000 for 0.1.0 (compare with IPUFLOW_VERSION_NUMBER).
inline uint32_t Version() noexcept { return ipuflow_version(); }
/// True when the loaded library has the major version this header was written for.
inline bool VersionMatches() noexcept { return ipuflow_version() / 1000000u == IPUFLOW_VERSION_MAJOR; }

/// A dimension of a value's shape: a size, or -1 with the symbolic name (possibly empty).
struct Dim {
    int64_t size = -1;
    std::string name;
};

/// A graph input or output.
struct ValueInfo {
    std::string name;
    int32_t kind = IPUFLOW_VALUE_KIND_UNKNOWN;
    int32_t element_type = 0;
    bool has_shape = false;
    std::vector<Dim> shape;
};

/// Counts reported by Model::Counts().
struct ModelCounts {
    size_t nodes = 0, initializers = 0, inputs = 0, outputs = 0, opsets = 0, op_types = 0;
    uint64_t initializer_bytes = 0;
};

/// An ONNX model in memory (ipuflow_model). Immutable; const methods are thread-safe.
class Model : public detail::Handle<ipuflow_model, ipuflow_model_free> {
public:
    using Handle::Handle;

    static Result<Model> TryLoad(const std::string& path) {
        ipuflow_model* m = nullptr;
        ipuflow_status s = ipuflow_model_load_file(path.c_str(), &m);
        if (s != IPUFLOW_STATUS_OK) return detail::last_error(s);
        return Model(m);
    }
    static Result<Model> TryFromBytes(const void* data, size_t len, const char* base_dir = nullptr) {
        ipuflow_model* m = nullptr;
        ipuflow_status s = ipuflow_model_load_bytes(static_cast<const uint8_t*>(data), len, base_dir, &m);
        if (s != IPUFLOW_STATUS_OK) return detail::last_error(s);
        return Model(m);
    }
    Error TrySave(const std::string& path) const {
        ipuflow_status s = ipuflow_model_save(get(), path.c_str());
        return s == IPUFLOW_STATUS_OK ? Error() : detail::last_error(s);
    }
    Error TrySaveWithExternalData(const std::string& path, const std::string& data_location,
                                  size_t size_threshold = 1024) const {
        ipuflow_status s =
            ipuflow_model_save_with_external_data(get(), path.c_str(), data_location.c_str(), size_threshold);
        return s == IPUFLOW_STATUS_OK ? Error() : detail::last_error(s);
    }

#if !defined(IPUFLOW_NO_EXCEPTIONS)
    /// Loads a model file (external data resolved beside it). Throws Exception.
    static Model Load(const std::string& path) { return detail::unwrap(TryLoad(path)); }
    /// Decodes a serialized model (copied). Throws Exception.
    static Model FromBytes(const void* data, size_t len, const char* base_dir = nullptr) {
        return detail::unwrap(TryFromBytes(data, len, base_dir));
    }
    /// Saves atomically. Throws Exception.
    void Save(const std::string& path) const { detail::check(ipuflow_model_save(get(), path.c_str())); }
    /// Saves atomically with initializers of at least size_threshold bytes in data_location. Throws Exception.
    void SaveWithExternalData(const std::string& path, const std::string& data_location,
                              size_t size_threshold = 1024) const {
        detail::check(
            ipuflow_model_save_with_external_data(get(), path.c_str(), data_location.c_str(), size_threshold));
    }
    /// The serialized model. Throws Exception.
    std::vector<uint8_t> Serialize() const {
        uint8_t* data = nullptr;
        size_t len = 0;
        detail::check(ipuflow_model_serialize(get(), &data, &len));
        std::vector<uint8_t> bytes(data, data + len);
        ipuflow_bytes_free(data, len);
        return bytes;
    }
    int64_t IrVersion() const {
        int64_t v = 0;
        detail::check(ipuflow_model_get_versions(get(), &v, nullptr));
        return v;
    }
    std::string ProducerName() const {
        const char* s = nullptr;
        detail::check(ipuflow_model_get_producer(get(), &s, nullptr, nullptr, nullptr));
        return s;
    }
    ModelCounts Counts() const {
        ModelCounts c;
        detail::check(ipuflow_model_get_counts(get(), &c.nodes, &c.initializers, &c.initializer_bytes, &c.inputs,
                                               &c.outputs, &c.opsets, &c.op_types));
        return c;
    }
    /// (domain, version) of each opset import; the default ONNX domain is "".
    std::vector<std::pair<std::string, int64_t>> Opsets() const {
        std::vector<std::pair<std::string, int64_t>> v;
        for (size_t i = 0, n = Counts().opsets; i < n; ++i) {
            const char* d = nullptr;
            int64_t ver = 0;
            detail::check(ipuflow_model_get_opset(get(), i, &d, &ver));
            v.emplace_back(d, ver);
        }
        return v;
    }
    /// (op type, node count), most used first.
    std::vector<std::pair<std::string, size_t>> OpTypes() const {
        std::vector<std::pair<std::string, size_t>> v;
        for (size_t i = 0, n = Counts().op_types; i < n; ++i) {
            const char* op = nullptr;
            size_t count = 0;
            detail::check(ipuflow_model_get_op_type(get(), i, &op, &count));
            v.emplace_back(op, count);
        }
        return v;
    }
    std::vector<ValueInfo> Inputs() const { return Values(true); }
    std::vector<ValueInfo> Outputs() const { return Values(false); }
    /// The full inspection summary as JSON.
    std::string SummaryJson() const {
        char* s = nullptr;
        detail::check(ipuflow_model_summary_json(get(), &s));
        std::string out(s);
        ipuflow_string_free(s);
        return out;
    }

private:
    std::vector<ValueInfo> Values(bool inputs) const {
        ModelCounts c = Counts();
        std::vector<ValueInfo> v;
        for (size_t i = 0, n = inputs ? c.inputs : c.outputs; i < n; ++i) {
            ipuflow_value_info raw{};
            detail::check(inputs ? ipuflow_model_get_input(get(), i, &raw) : ipuflow_model_get_output(get(), i, &raw));
            ValueInfo info;
            info.name = raw.name;
            info.kind = raw.kind;
            info.element_type = raw.element_type;
            info.has_shape = raw.rank >= 0;
            for (int64_t d = 0; d < raw.rank; ++d) {
                Dim dim;
                dim.size = raw.dims[d];
                if (raw.dim_names[d] != nullptr) dim.name = raw.dim_names[d];
                info.shape.push_back(dim);
            }
            v.push_back(std::move(info));
        }
        return v;
    }
#endif
};

// ================================================================================================================
// Runtime, sessions and where they run (Env, SessionOptions, Session, Tensor, placement).
// Throwing API only: hosts built with IPUFLOW_NO_EXCEPTIONS use the C functions for these.
// ================================================================================================================
#if !defined(IPUFLOW_NO_EXCEPTIONS)

/// ONNX Runtime, loaded once per process.
struct Runtime {
    /// Loads ONNX Runtime from `path` (a file or directory), or with the default resolution when empty.
    static void Load(const std::string& path = std::string()) {
        detail::check(ipuflow_runtime_load(path.empty() ? nullptr : path.c_str()));
    }
    /// The loaded runtime's version, e.g. "1.32.0".
    static std::string Version() {
        const char* v = nullptr;
        detail::check(ipuflow_runtime_version(&v));
        return v;
    }
};

/// ONNX Runtime's environment (one per process): log level and optional log callback.
class Env : public detail::Handle<ipuflow_env, ipuflow_env_free> {
public:
    using Handle::Handle;
    static Env Create(int32_t log_level = IPUFLOW_LOG_LEVEL_WARNING, ipuflow_log_callback callback = nullptr,
                      void* user_data = nullptr, const char* log_id = nullptr) {
        ipuflow_env* e = nullptr;
        detail::check(ipuflow_env_create(log_level, log_id, callback, user_data, &e));
        return Env(e);
    }
};

/// Session settings (ipuflow_session_options). Setters return *this for chaining; not thread-safe.
class SessionOptions : public detail::Handle<ipuflow_session_options, ipuflow_session_options_free> {
public:
    using Handle::Handle;
    SessionOptions() {
        ipuflow_session_options* o = nullptr;
        detail::check(ipuflow_session_options_create(&o));
        reset(o);
    }
    /// IPUFLOW_SESSION_DEVICE_CPU, _IPU or _AUTO.
    SessionOptions& SetDevice(int32_t device) {
        detail::check(ipuflow_session_options_set_device(get(), device));
        return *this;
    }
    /// IPUFLOW_FALLBACK_STRICT or _PREFER, and the minimum share of nodes that must land on the NPU (0..1).
    SessionOptions& SetFallback(int32_t policy, double min_npu_fraction = 0.0) {
        detail::check(ipuflow_session_options_set_fallback(get(), policy, min_npu_fraction));
        return *this;
    }
    /// A VitisAI provider option ("target", "cache_dir", "config_file", ...), validated at once.
    SessionOptions& SetProviderOption(const std::string& key, const std::string& value) {
        detail::check(ipuflow_session_options_set_provider_option(get(), key.c_str(), value.c_str()));
        return *this;
    }
    /// Another execution provider by ONNX Runtime's name, with its options.
    SessionOptions& AppendProvider(const std::string& name,
                                   const std::vector<std::pair<std::string, std::string>>& options = {}) {
        std::vector<const char*> keys, values;
        for (const auto& kv : options) {
            keys.push_back(kv.first.c_str());
            values.push_back(kv.second.c_str());
        }
        detail::check(ipuflow_session_options_append_provider(get(), name.c_str(), keys.data(), values.data(),
                                                              keys.size()));
        return *this;
    }
    SessionOptions& AddConfigEntry(const std::string& key, const std::string& value) {
        detail::check(ipuflow_session_options_add_config_entry(get(), key.c_str(), value.c_str()));
        return *this;
    }
    /// IPUFLOW_GRAPH_OPTIMIZATION_*.
    SessionOptions& SetGraphOptimization(int32_t level) {
        detail::check(ipuflow_session_options_set_graph_optimization(get(), level));
        return *this;
    }
    SessionOptions& SetIntraOpThreads(int32_t n) {
        detail::check(ipuflow_session_options_set_intra_op_threads(get(), n));
        return *this;
    }
    SessionOptions& SetOptimizedModelPath(const std::string& path) {
        detail::check(ipuflow_session_options_set_optimized_model_path(get(), path.c_str()));
        return *this;
    }
};

/// A tensor returned by a run (owned; freed with ipuflow_tensor_free).
class Tensor : public detail::Handle<ipuflow_tensor, ipuflow_tensor_free> {
public:
    using Handle::Handle;
    /// Element type, shape and data; the pointers live as long as this tensor.
    ipuflow_tensor_view View() const {
        ipuflow_tensor_view v{};
        detail::check(ipuflow_tensor_get_view(get(), &v));
        return v;
    }
    std::vector<int64_t> Shape() const {
        ipuflow_tensor_view v = View();
        return std::vector<int64_t>(v.shape, v.shape + v.rank);
    }
    /// The data as `T` (the caller checks the element type); empty for an empty tensor.
    template <typename T>
    const T* Data(size_t* count = nullptr) const {
        ipuflow_tensor_view v = View();
        if (count != nullptr) *count = v.byte_size / sizeof(T);
        return static_cast<const T*>(v.data);
    }
};

/// A model input or output as the session sees it (-1: a dimension that is not fixed).
struct TensorInfo {
    std::string name;
    int32_t element_type = 0;
    std::vector<int64_t> shape;
};

/// One node of the placement.
struct PlacedNode {
    std::string name, domain, op_type;
};

/// A run of nodes ONNX Runtime assigned to one execution provider.
struct PlacedSubgraph {
    std::string ep_name;
    std::vector<PlacedNode> nodes;
};

/// A model loaded into ONNX Runtime (ipuflow_session). Run and the getters are thread-safe.
class Session : public detail::Handle<ipuflow_session, ipuflow_session_free> {
public:
    using Handle::Handle;
    /// Creates a session from a model file. `options` and `env` may be null (defaults; the shared environment).
    static Session Create(const std::string& model_path, const SessionOptions* options = nullptr,
                          const Env* env = nullptr) {
        ipuflow_session* s = nullptr;
        detail::check(ipuflow_session_create(env != nullptr ? env->get() : nullptr, model_path.c_str(),
                                             options != nullptr ? options->get() : nullptr, &s));
        return Session(s);
    }
    std::vector<TensorInfo> Inputs() const { return Infos(true); }
    std::vector<TensorInfo> Outputs() const { return Infos(false); }

    /// Runs once: inputs by name as views of caller memory; returns every requested output (default: all).
    std::vector<Tensor> Run(const std::vector<std::string>& input_names,
                            const std::vector<ipuflow_tensor_view>& inputs,
                            std::vector<std::string> output_names = {}) const {
        if (output_names.empty())
            for (const auto& o : Outputs()) output_names.push_back(o.name);
        std::vector<const char*> in(input_names.size()), out(output_names.size());
        for (size_t i = 0; i < in.size(); ++i) in[i] = input_names[i].c_str();
        for (size_t i = 0; i < out.size(); ++i) out[i] = output_names[i].c_str();
        std::vector<ipuflow_tensor*> raw(out.size(), nullptr);
        detail::check(ipuflow_session_run(get(), nullptr, in.data(), inputs.data(), inputs.size(), out.data(), nullptr,
                                          raw.data(), raw.size()));
        std::vector<Tensor> result;
        for (ipuflow_tensor* t : raw) result.emplace_back(t);
        return result;
    }

    /// IPUFLOW_DEVICE_NPU or IPUFLOW_DEVICE_CPU: where the session actually runs.
    int32_t DeviceUsed() const {
        int32_t d = 0;
        detail::check(ipuflow_session_get_device(get(), &d));
        return d;
    }
    /// Why the NPU is not used although it was requested; "" otherwise.
    std::string FallbackReason() const {
        const char* r = nullptr;
        detail::check(ipuflow_session_get_fallback_reason(get(), &r));
        return r;
    }
    /// The VitisAI compile-cache key computed for this session ("" when the NPU was not attempted).
    std::string CacheKey() const {
        const char* k = nullptr;
        detail::check(ipuflow_session_get_cache_key(get(), &k));
        return k;
    }
    ipuflow_placement_summary PlacementSummary() const {
        ipuflow_placement_summary s{};
        detail::check(ipuflow_session_get_placement_summary(get(), &s));
        return s;
    }
    /// ONNX Runtime's placement of every node. Throws (IPUFLOW_STATUS_UNSUPPORTED) when it is unavailable.
    std::vector<PlacedSubgraph> Placement() const {
        size_t n = 0;
        detail::check(ipuflow_session_placement_subgraph_count(get(), &n));
        std::vector<PlacedSubgraph> v(n);
        for (size_t i = 0; i < n; ++i) {
            const char* ep = nullptr;
            size_t count = 0;
            detail::check(ipuflow_session_placement_get_subgraph(get(), i, &ep, &count));
            v[i].ep_name = ep;
            for (size_t j = 0; j < count; ++j) {
                ipuflow_placed_node node{};
                detail::check(ipuflow_session_placement_get_node(get(), i, j, &node));
                v[i].nodes.push_back(PlacedNode{node.name, node.domain, node.op_type});
            }
        }
        return v;
    }
    /// The placement as vitisai_ep_report.json-shaped JSON.
    std::string PlacementJson() const {
        char* s = nullptr;
        detail::check(ipuflow_session_placement_json(get(), &s));
        std::string out(s);
        ipuflow_string_free(s);
        return out;
    }

private:
    std::vector<TensorInfo> Infos(bool inputs) const {
        size_t n = 0;
        detail::check(inputs ? ipuflow_session_input_count(get(), &n) : ipuflow_session_output_count(get(), &n));
        std::vector<TensorInfo> v;
        for (size_t i = 0; i < n; ++i) {
            ipuflow_tensor_info raw{};
            detail::check(inputs ? ipuflow_session_input_info(get(), i, &raw)
                                 : ipuflow_session_output_info(get(), i, &raw));
            TensorInfo info;
            info.name = raw.name;
            info.element_type = raw.element_type;
            if (raw.rank > 0) info.shape.assign(raw.shape, raw.shape + raw.rank);
            v.push_back(std::move(info));
        }
        return v;
    }
};

#endif  // !IPUFLOW_NO_EXCEPTIONS

}  // namespace ipuflow

// ============================================================================================================
// Quantization: QuantConfig, CalibData, Quantize (ipuflow_quant_config, ipuflow_calib_data, ipuflow_quantize).
// ============================================================================================================
#include <functional>

namespace ipuflow {

/// Quantization settings: a preset (IPUFLOW_PRESET_*) and changes to it (ipuflow_quant_config). Setters return
/// *this so they chain; const methods are thread-safe.
class QuantConfig : public detail::Handle<ipuflow_quant_config, ipuflow_quant_config_free> {
public:
    using Handle::Handle;

    static Result<QuantConfig> TryCreate(int32_t preset) {
        ipuflow_quant_config* c = nullptr;
        ipuflow_status s = ipuflow_quant_config_create(preset, &c);
        if (s != IPUFLOW_STATUS_OK) return detail::last_error(s);
        return QuantConfig(c);
    }
#if !defined(IPUFLOW_NO_EXCEPTIONS)
    /// A configuration from a preset. Throws Exception.
    static QuantConfig Create(int32_t preset) { return detail::unwrap(TryCreate(preset)); }
    QuantConfig& ActivationType(int32_t qtype) { return Check(ipuflow_quant_config_set_activation_type(get(), qtype)); }
    QuantConfig& WeightType(int32_t qtype) { return Check(ipuflow_quant_config_set_weight_type(get(), qtype)); }
    QuantConfig& PerChannel(bool on) { return Check(ipuflow_quant_config_set_per_channel(get(), on ? 1 : 0)); }
    QuantConfig& ActivationSymmetric(bool on) {
        return Check(ipuflow_quant_config_set_activation_symmetric(get(), on ? 1 : 0));
    }
    QuantConfig& WeightSymmetric(bool on) { return Check(ipuflow_quant_config_set_weight_symmetric(get(), on ? 1 : 0)); }
    QuantConfig& PowerOfTwo(bool on) { return Check(ipuflow_quant_config_set_power_of_two(get(), on ? 1 : 0)); }
    QuantConfig& ConcatSharedScale(bool on) {
        return Check(ipuflow_quant_config_set_concat_shared_scale(get(), on ? 1 : 0));
    }
    QuantConfig& CpuFusion(bool on) { return Check(ipuflow_quant_config_set_cpu_fusion(get(), on ? 1 : 0)); }
    /// 0 turns the moving average off (global MinMax).
    QuantConfig& MovingAverage(float constant) { return Check(ipuflow_quant_config_set_moving_average(get(), constant)); }
    /// Calibration cache file (see ipuflow_quant_config_set_calib_cache); an empty string turns it off.
    QuantConfig& CalibCache(const std::string& path) {
        return Check(ipuflow_quant_config_set_calib_cache(get(), path.empty() ? nullptr : path.c_str()));
    }
    /// IPUFLOW_CALIB_METHOD_*; `percentile` (in (0, 100]) is used by IPUFLOW_CALIB_METHOD_PERCENTILE only.
    QuantConfig& CalibMethod(int method, float percentile = 99.999f) {
        return Check(ipuflow_quant_config_set_calib_method(get(), method, percentile));
    }
    QuantConfig& ExcludeNode(const std::string& name) {
        return Check(ipuflow_quant_config_exclude_node(get(), name.c_str()));
    }
    QuantConfig& ExcludeOpType(const std::string& op) {
        return Check(ipuflow_quant_config_exclude_op_type(get(), op.c_str()));
    }
    QuantConfig& TensorType(const std::string& tensor, int32_t qtype) {
        return Check(ipuflow_quant_config_set_tensor_type(get(), tensor.c_str(), qtype));
    }
    QuantConfig& TensorRange(const std::string& tensor, float min, float max) {
        return Check(ipuflow_quant_config_set_tensor_range(get(), tensor.c_str(), min, max));
    }

private:
    QuantConfig& Check(ipuflow_status s) {
        detail::check(s);
        return *this;
    }
#endif
};

/// Image preprocessing with the library's defaults (the anchor protocol); change fields as needed.
inline ipuflow_image_preprocess DefaultImagePreprocess() noexcept {
    ipuflow_image_preprocess p{};
    ipuflow_image_preprocess_init(&p);
    return p;
}

/// Calibration data (ipuflow_calib_data): in-memory samples, a pull callback, .npy files or an image folder.
/// Not thread-safe: one Quantize at a time per object.
class CalibData : public detail::Handle<ipuflow_calib_data, ipuflow_calib_data_free> {
public:
    using Handle::Handle;

    static Result<CalibData> TryCreate() { return Make(ipuflow_calib_data_create); }
    static Result<CalibData> TryFromNpyDir(const std::string& dir) {
        ipuflow_calib_data* d = nullptr;
        ipuflow_status s = ipuflow_calib_data_create_from_npy_dir(dir.c_str(), &d);
        if (s != IPUFLOW_STATUS_OK) return detail::last_error(s);
        return CalibData(d);
    }
    static Result<CalibData> TryFromImageDir(const std::string& dir, const ipuflow_image_preprocess* pre = nullptr) {
        ipuflow_calib_data* d = nullptr;
        ipuflow_status s = ipuflow_calib_data_create_from_image_dir(dir.c_str(), pre, &d);
        if (s != IPUFLOW_STATUS_OK) return detail::last_error(s);
        return CalibData(d);
    }
    /// `next` and `user` as in ipuflow_calib_next_fn; `batch_count` -1 when unknown.
    static Result<CalibData> TryFromCallback(ipuflow_calib_next_fn next, void* user, int64_t batch_count = -1) {
        ipuflow_calib_data* d = nullptr;
        ipuflow_status s = ipuflow_calib_data_create_from_callback(next, user, batch_count, &d);
        if (s != IPUFLOW_STATUS_OK) return detail::last_error(s);
        return CalibData(d);
    }
    /// Adds one sample (copied): names[i] is the input views[i] feeds.
    Error TryAddSample(const std::vector<const char*>& names, const std::vector<ipuflow_tensor_view>& views) {
        if (names.size() != views.size())
            return Error(IPUFLOW_STATUS_INVALID_ARGUMENT, "AddSample: names and views differ in length");
        ipuflow_status s = ipuflow_calib_data_add_sample(get(), names.data(), views.data(), names.size());
        return s == IPUFLOW_STATUS_OK ? Error() : detail::last_error(s);
    }
#if !defined(IPUFLOW_NO_EXCEPTIONS)
    static CalibData Create() { return detail::unwrap(TryCreate()); }
    static CalibData FromNpyDir(const std::string& dir) { return detail::unwrap(TryFromNpyDir(dir)); }
    static CalibData FromImageDir(const std::string& dir, const ipuflow_image_preprocess* pre = nullptr) {
        return detail::unwrap(TryFromImageDir(dir, pre));
    }
    static CalibData FromCallback(ipuflow_calib_next_fn next, void* user, int64_t batch_count = -1) {
        return detail::unwrap(TryFromCallback(next, user, batch_count));
    }
    void AddSample(const std::vector<const char*>& names, const std::vector<ipuflow_tensor_view>& views) {
        Error e = TryAddSample(names, views);
        if (!e.ok()) throw Exception(e);
    }
#endif

private:
    static Result<CalibData> Make(ipuflow_status (*create)(ipuflow_calib_data**)) {
        ipuflow_calib_data* d = nullptr;
        ipuflow_status s = create(&d);
        if (s != IPUFLOW_STATUS_OK) return detail::last_error(s);
        return CalibData(d);
    }
};

/// Progress of Quantize: (IPUFLOW_QUANT_STAGE_*, done, total or -1); return false to cancel.
using QuantProgress = std::function<bool(int32_t stage, size_t done, int64_t total)>;

namespace detail {
inline int32_t quant_progress_trampoline(void* user, int32_t stage, size_t done, int64_t total) {
    auto* f = static_cast<QuantProgress*>(user);
    return (*f)(stage, done, total) ? 0 : 1;
}
}  // namespace detail

/// Quantizes `model` (see ipuflow_quantize). `report_json`, when not null, receives the JSON report.
inline Result<Model> TryQuantize(const Model& model, const QuantConfig& config, CalibData& data,
                                 QuantProgress progress = {}, std::string* report_json = nullptr) {
    ipuflow_model* out = nullptr;
    char* report = nullptr;
    ipuflow_status s = ipuflow_quantize(model.get(), config.get(), data.get(),
                                        progress ? detail::quant_progress_trampoline : nullptr,
                                        progress ? static_cast<void*>(&progress) : nullptr, &out,
                                        report_json != nullptr ? &report : nullptr);
    if (s != IPUFLOW_STATUS_OK) return detail::last_error(s);
    if (report != nullptr) {
        *report_json = report;
        ipuflow_string_free(report);
    }
    return Model(out);
}

#if !defined(IPUFLOW_NO_EXCEPTIONS)
/// Quantizes `model`. Throws Exception (IPUFLOW_STATUS_CANCELLED when `progress` returned false).
inline Model Quantize(const Model& model, const QuantConfig& config, CalibData& data, QuantProgress progress = {},
                      std::string* report_json = nullptr) {
    return detail::unwrap(TryQuantize(model, config, data, std::move(progress), report_json));
}
#endif

}  // namespace ipuflow

#endif  // IPUFLOW_HPP
