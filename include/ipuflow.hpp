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

}  // namespace ipuflow

#endif  // IPUFLOW_HPP
