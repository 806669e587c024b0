// ipuflow C++ API: a header-only C++17 wrapper over ipuflow.h, in the style of ONNX Runtime's Ort:: API.
//
// Every class owns at most one C handle: move-only, freed by its destructor (get() lends it to C calls, release()
// gives it up). Every call that can fail has one implementation and two surfaces:
// - by default it returns its value (or nothing) and throws ipuflow::Exception (status code + message) on failure;
// - with IPUFLOW_NO_EXCEPTIONS defined before the include (hosts built with -fno-exceptions, as game engines are)
//   it returns ipuflow::Result<T> (or ipuflow::Status when there is no value) and never throws:
//
//     auto model = ipuflow::Model::Load("model.onnx");        // Result<Model>
//     if (!model) return report(model.status().message());    // the code and a message naming file/tensor/option
//     ipuflow::Model m = std::move(model).value();
//
// Objects come from static factories (Model::Load, Session::Create, Tensor::Create<T>, ...), since a constructor
// cannot return a Result; SessionOptions alone also has a creating default constructor, as Ort::SessionOptions.
// Calls that cannot fail (getters of plain fields, Version) are noexcept in both modes. Thread safety is the C
// ABI's (see ipuflow.h): const methods of Model, Session, Tensor, NpuScan and Preflight are thread-safe;
// RunOptions::Cancel may be called from any thread; setters are not thread-safe.
#ifndef IPUFLOW_HPP
#define IPUFLOW_HPP

#include "ipuflow.h"

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>
#if !defined(IPUFLOW_NO_EXCEPTIONS)
#include <exception>
#include <stdexcept>
#endif

// The two surfaces of one implementation (undefined again at the end of this header):
//   IPUFLOW_CPP_RESULT(T)  the return type of a call giving a T: T, or Result<T> without exceptions
//   IPUFLOW_CPP_VOID       ... giving nothing: void, or Status
//   IPUFLOW_CPP_SELF(C)    ... of a chainable setter: C&, or Status
//   IPUFLOW_CPP_CHECK(c)   a C call's status: throws, or returns it, when it is not OK
//   IPUFLOW_CPP_FAIL(s)    a wrapper-made error (Status): throws, or returns it
//   IPUFLOW_CPP_LET(T, name, expr)   declares `T name` from a call of this header, passing its failure on
//   IPUFLOW_CPP_TRY(expr)  a VOID call of this header, passing its failure on
//   IPUFLOW_CPP_RETURN_OK, IPUFLOW_CPP_RETURN_SELF   the success return of a VOID resp. SELF function
#if defined(IPUFLOW_NO_EXCEPTIONS)
#define IPUFLOW_CPP_RESULT(...) ::ipuflow::Result<__VA_ARGS__>
#define IPUFLOW_CPP_VOID ::ipuflow::Status
#define IPUFLOW_CPP_SELF(C) ::ipuflow::Status
#define IPUFLOW_CPP_CHECK(call)                                                                                    \
    do {                                                                                                           \
        const ::ipuflow_status ipuflow_s_ = (call);                                                                \
        if (ipuflow_s_ != IPUFLOW_STATUS_OK) return ::ipuflow::detail::last_error(ipuflow_s_);                     \
    } while (0)
#define IPUFLOW_CPP_FAIL(status) return (status)
#define IPUFLOW_CPP_LET(T, name, expr)                                                                             \
    auto name##_result_ = (expr);                                                                                  \
    if (!name##_result_.ok()) return name##_result_.status();                                                      \
    T name = std::move(name##_result_).value()
#define IPUFLOW_CPP_TRY(expr)                                                                                      \
    do {                                                                                                           \
        ::ipuflow::Status ipuflow_st_ = (expr);                                                                    \
        if (!ipuflow_st_.ok()) return ipuflow_st_;                                                                 \
    } while (0)
#define IPUFLOW_CPP_RETURN_OK return ::ipuflow::Status()
#define IPUFLOW_CPP_RETURN_SELF return ::ipuflow::Status()
#else
#define IPUFLOW_CPP_RESULT(...) __VA_ARGS__
#define IPUFLOW_CPP_VOID void
#define IPUFLOW_CPP_SELF(C) C&
#define IPUFLOW_CPP_CHECK(call) ::ipuflow::detail::check(call)
#define IPUFLOW_CPP_FAIL(status) throw ::ipuflow::Exception(status)
#define IPUFLOW_CPP_LET(T, name, expr) T name = (expr)
#define IPUFLOW_CPP_TRY(expr) (expr)
#define IPUFLOW_CPP_RETURN_OK return
#define IPUFLOW_CPP_RETURN_SELF return *this
#endif

namespace ipuflow {

// ================================================================================================================
// Status, Exception, Result
// ================================================================================================================

/// A status code with its detailed message (ipuflow_last_error() of the failed call). Default: OK.
class Status {
public:
    Status() = default;
    Status(ipuflow_status code, std::string message) : code_(code), message_(std::move(message)) {}
    bool ok() const noexcept { return code_ == IPUFLOW_STATUS_OK; }
    bool IsOK() const noexcept { return ok(); }
    ipuflow_status code() const noexcept { return code_; }
    ipuflow_status GetErrorCode() const noexcept { return code_; }
    const std::string& message() const noexcept { return message_; }
    const std::string& GetErrorMessage() const noexcept { return message_; }
    /// The code's stable name, e.g. "IPUFLOW_STATUS_FILE_NOT_FOUND".
    const char* code_name() const noexcept { return ipuflow_status_str(code_); }

private:
    ipuflow_status code_ = IPUFLOW_STATUS_OK;
    std::string message_;
};

/// The 0.1 name of Status.
using Error = Status;

#if !defined(IPUFLOW_NO_EXCEPTIONS)
/// Thrown by every failing call when exceptions are on.
class Exception : public std::runtime_error {
public:
    explicit Exception(Status s) : std::runtime_error(s.message()), status_(std::move(s)) {}
    ipuflow_status code() const noexcept { return status_.code(); }
    ipuflow_status GetErrorCode() const noexcept { return status_.code(); }
    const Status& status() const noexcept { return status_; }
    const Status& error() const noexcept { return status_; }

private:
    Status status_;
};
#endif

/// A value, or the Status of the call that failed to make it. Without exceptions, value() of a failed Result is
/// the type's empty value (an empty handle, whose calls then fail with IPUFLOW_STATUS_NULL_ARGUMENT; an empty
/// vector or string; a null pointer); with exceptions it throws the Status.
template <typename T>
class Result {
    static_assert(std::is_default_constructible<T>::value, "Result<T> needs an empty T");

public:
    // Implicit by design (return values). The T&& overload lets `return local;` move a move-only T.
    Result(T&& value) : value_(std::move(value)) {}     // NOLINT
    Result(const T& value) : value_(value) {}           // NOLINT
    Result(Status status)                            // NOLINT
        : status_(status.ok() ? Status(IPUFLOW_STATUS_INTERNAL, "ipuflow::Result made from an OK status")
                              : std::move(status)) {}
    bool ok() const noexcept { return status_.ok(); }
    explicit operator bool() const noexcept { return ok(); }
    const Status& status() const noexcept { return status_; }
    const Status& error() const noexcept { return status_; }
    T& value() & { return (Check(), value_); }
    const T& value() const& { return (Check(), value_); }
    T&& value() && { return (Check(), std::move(value_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    /// The value, or `fallback` when the call failed.
    T value_or(T fallback) && { return ok() ? std::move(value_) : std::move(fallback); }

private:
    void Check() const {
#if !defined(IPUFLOW_NO_EXCEPTIONS)
        if (!ok()) throw Exception(status_);
#endif
    }
    T value_{};
    Status status_;
};

namespace detail {

inline Status last_error(ipuflow_status code) {
    const char* m = ipuflow_last_error();
    return Status(code, m != nullptr ? m : "");
}

#if !defined(IPUFLOW_NO_EXCEPTIONS)
inline void check(ipuflow_status code) {
    if (code != IPUFLOW_STATUS_OK) throw Exception(last_error(code));
}
#endif

// attempt(f): f's outcome as a Result/Status in both modes (the 0.1 Try* calls).
template <typename T>
struct as_result {
    using type = Result<T>;
};
template <typename T>
struct as_result<Result<T>> {
    using type = Result<T>;
};
template <>
struct as_result<void> {
    using type = Status;
};
template <>
struct as_result<Status> {
    using type = Status;
};
template <typename F>
auto attempt(F&& f) -> typename as_result<decltype(f())>::type {
#if defined(IPUFLOW_NO_EXCEPTIONS)
    return f();
#else
    try {
        if constexpr (std::is_void<decltype(f())>::value) {
            f();
            return Status();
        } else {
            return f();
        }
    } catch (const Exception& e) {
        return e.status();
    }
#endif
}

// A char* the library allocated, as a std::string (freed even if the copy fails).
inline std::string take_string(char* s) {
    std::unique_ptr<char, void (*)(char*)> guard(s, ipuflow_string_free);
    return s != nullptr ? std::string(s) : std::string();
}

inline std::string str(const char* s) { return s != nullptr ? std::string(s) : std::string(); }

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
/// The loaded library's version as text, e.g. "0.1.0" (static storage).
inline const char* VersionString() noexcept { return ipuflow_version_string(); }
/// True when the loaded library has the major version this header was written for.
inline bool VersionMatches() noexcept { return ipuflow_version() / 1000000u == IPUFLOW_VERSION_MAJOR; }

/// A UTF-16 path for the `_w` functions of the C API (paths that are not valid UTF-8, as Windows allows): from a
/// std::u16string or u"..." literal on every platform, and from a std::wstring or L"..." literal on Windows. Each
/// call taking a path (Model::Load, Session::Create, ...) has an overload taking one. The string is copied.
class WidePath {
public:
    WidePath(std::u16string path) : path_(std::move(path)) {}           // NOLINT: implicit by design
    WidePath(const char16_t* path) : path_(path != nullptr ? path : u"") {}  // NOLINT
#if defined(_WIN32)
    static_assert(sizeof(wchar_t) == sizeof(char16_t), "wchar_t is UTF-16 on Windows");
    WidePath(const std::wstring& path) : path_(path.begin(), path.end()) {}  // NOLINT
    WidePath(const wchar_t* path) : WidePath(std::wstring(path != nullptr ? path : L"")) {}  // NOLINT
#endif
    bool empty() const noexcept { return path_.empty(); }
    /// The NUL-terminated UTF-16 units the C API reads (valid while this object lives).
    const uint16_t* c_str() const noexcept { return reinterpret_cast<const uint16_t*>(path_.c_str()); }
    const std::u16string& str() const noexcept { return path_; }

private:
    std::u16string path_;
};

// ================================================================================================================
// Element types
// ================================================================================================================

/// IEEE half and bfloat16 elements, as their raw bits (no arithmetic: convert with the host's own type).
struct Float16 {
    uint16_t bits;
};
struct BFloat16 {
    uint16_t bits;
};

/// The IPUFLOW_ELEMENT_TYPE_* of a C++ element type; 0 for types with none (Tensor::Create rejects them).
template <typename T>
struct ElementTypeOf : std::integral_constant<int32_t, 0> {};
#define IPUFLOW_CPP_ELEMENT(T, N)                                                                                  \
    template <>                                                                                                    \
    struct ElementTypeOf<T> : std::integral_constant<int32_t, N> {}
IPUFLOW_CPP_ELEMENT(float, IPUFLOW_ELEMENT_TYPE_FLOAT);
IPUFLOW_CPP_ELEMENT(uint8_t, IPUFLOW_ELEMENT_TYPE_UINT8);
IPUFLOW_CPP_ELEMENT(int8_t, IPUFLOW_ELEMENT_TYPE_INT8);
IPUFLOW_CPP_ELEMENT(uint16_t, IPUFLOW_ELEMENT_TYPE_UINT16);
IPUFLOW_CPP_ELEMENT(int16_t, IPUFLOW_ELEMENT_TYPE_INT16);
IPUFLOW_CPP_ELEMENT(int32_t, IPUFLOW_ELEMENT_TYPE_INT32);
IPUFLOW_CPP_ELEMENT(int64_t, IPUFLOW_ELEMENT_TYPE_INT64);
IPUFLOW_CPP_ELEMENT(const char*, IPUFLOW_ELEMENT_TYPE_STRING);
IPUFLOW_CPP_ELEMENT(bool, IPUFLOW_ELEMENT_TYPE_BOOL);
IPUFLOW_CPP_ELEMENT(Float16, IPUFLOW_ELEMENT_TYPE_FLOAT16);
IPUFLOW_CPP_ELEMENT(double, IPUFLOW_ELEMENT_TYPE_DOUBLE);
IPUFLOW_CPP_ELEMENT(uint32_t, IPUFLOW_ELEMENT_TYPE_UINT32);
IPUFLOW_CPP_ELEMENT(uint64_t, IPUFLOW_ELEMENT_TYPE_UINT64);
IPUFLOW_CPP_ELEMENT(BFloat16, IPUFLOW_ELEMENT_TYPE_BFLOAT16);
#undef IPUFLOW_CPP_ELEMENT
static_assert(sizeof(bool) == 1 && sizeof(Float16) == 2 && sizeof(BFloat16) == 2, "ONNX element sizes");

/// A short name of an IPUFLOW_ELEMENT_TYPE_* ("float", "int64", ...; "unknown" for others). Never null.
inline const char* ElementTypeName(int32_t type) noexcept {
    switch (type) {
        case IPUFLOW_ELEMENT_TYPE_FLOAT: return "float";
        case IPUFLOW_ELEMENT_TYPE_UINT8: return "uint8";
        case IPUFLOW_ELEMENT_TYPE_INT8: return "int8";
        case IPUFLOW_ELEMENT_TYPE_UINT16: return "uint16";
        case IPUFLOW_ELEMENT_TYPE_INT16: return "int16";
        case IPUFLOW_ELEMENT_TYPE_INT32: return "int32";
        case IPUFLOW_ELEMENT_TYPE_INT64: return "int64";
        case IPUFLOW_ELEMENT_TYPE_STRING: return "string";
        case IPUFLOW_ELEMENT_TYPE_BOOL: return "bool";
        case IPUFLOW_ELEMENT_TYPE_FLOAT16: return "float16";
        case IPUFLOW_ELEMENT_TYPE_DOUBLE: return "double";
        case IPUFLOW_ELEMENT_TYPE_UINT32: return "uint32";
        case IPUFLOW_ELEMENT_TYPE_UINT64: return "uint64";
        case IPUFLOW_ELEMENT_TYPE_BFLOAT16: return "bfloat16";
        case IPUFLOW_ELEMENT_TYPE_FLOAT8E4M3FN: return "float8e4m3fn";
        case IPUFLOW_ELEMENT_TYPE_FLOAT8E4M3FNUZ: return "float8e4m3fnuz";
        case IPUFLOW_ELEMENT_TYPE_FLOAT8E5M2: return "float8e5m2";
        case IPUFLOW_ELEMENT_TYPE_FLOAT8E5M2FNUZ: return "float8e5m2fnuz";
        case IPUFLOW_ELEMENT_TYPE_UINT4: return "uint4";
        case IPUFLOW_ELEMENT_TYPE_INT4: return "int4";
        case IPUFLOW_ELEMENT_TYPE_FLOAT8E8M0: return "float8e8m0";
        case IPUFLOW_ELEMENT_TYPE_UINT2: return "uint2";
        case IPUFLOW_ELEMENT_TYPE_INT2: return "int2";
        default: return "unknown";
    }
}

/// Bytes per element of `type` in a tensor view (STRING: sizeof(char*)). Fails with IPUFLOW_STATUS_INVALID_ENUM
/// (unknown type) or IPUFLOW_STATUS_UNSUPPORTED (the packed 4- and 2-bit types).
inline IPUFLOW_CPP_RESULT(size_t) ElementTypeSize(int32_t type) {
    size_t n = 0;
    IPUFLOW_CPP_CHECK(ipuflow_element_type_get_size(type, &n));
    return n;
}

// ================================================================================================================
// Model
// ================================================================================================================

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

    /// Loads a model file (external data resolved beside it).
    static IPUFLOW_CPP_RESULT(Model) Load(const std::string& path) {
        ipuflow_model* m = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_model_load_file(path.c_str(), &m));
        return Model(m);
    }
    static IPUFLOW_CPP_RESULT(Model) Load(const WidePath& path) {
        ipuflow_model* m = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_model_load_file_w(path.c_str(), &m));
        return Model(m);
    }
    /// Decodes a serialized model (copied); `base_dir` resolves its external data, if any.
    static IPUFLOW_CPP_RESULT(Model) FromBytes(const void* data, size_t len, const char* base_dir = nullptr) {
        ipuflow_model* m = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_model_load_bytes(static_cast<const uint8_t*>(data), len, base_dir, &m));
        return Model(m);
    }
    static IPUFLOW_CPP_RESULT(Model) FromBytes(const void* data, size_t len, const WidePath& base_dir) {
        ipuflow_model* m = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_model_load_bytes_w(static_cast<const uint8_t*>(data), len,
                                                     base_dir.empty() ? nullptr : base_dir.c_str(), &m));
        return Model(m);
    }
    /// Saves atomically (a failure leaves no file and an existing one untouched).
    IPUFLOW_CPP_VOID Save(const std::string& path) const {
        IPUFLOW_CPP_CHECK(ipuflow_model_save(get(), path.c_str()));
        IPUFLOW_CPP_RETURN_OK;
    }
    IPUFLOW_CPP_VOID Save(const WidePath& path) const {
        IPUFLOW_CPP_CHECK(ipuflow_model_save_w(get(), path.c_str()));
        IPUFLOW_CPP_RETURN_OK;
    }
    /// Saves atomically with initializers of at least size_threshold bytes in data_location.
    IPUFLOW_CPP_VOID SaveWithExternalData(const std::string& path, const std::string& data_location,
                                          size_t size_threshold = 1024) const {
        IPUFLOW_CPP_CHECK(
            ipuflow_model_save_with_external_data(get(), path.c_str(), data_location.c_str(), size_threshold));
        IPUFLOW_CPP_RETURN_OK;
    }
    IPUFLOW_CPP_VOID SaveWithExternalData(const WidePath& path, const WidePath& data_location,
                                          size_t size_threshold = 1024) const {
        IPUFLOW_CPP_CHECK(ipuflow_model_save_with_external_data_w(get(), path.c_str(), data_location.c_str(),
                                                                  size_threshold));
        IPUFLOW_CPP_RETURN_OK;
    }
    /// A copy of this model whose graph input `input` has the fixed shape `dims` (every size >= 1), shapes
    /// inferred again; this model is unchanged. An unknown input, another rank or a size contradicting a fixed one
    /// is IPUFLOW_STATUS_INVALID_ARGUMENT naming the input.
    IPUFLOW_CPP_RESULT(Model) CopyWithInputShape(const std::string& input, const std::vector<int64_t>& dims) const {
        ipuflow_model* m = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_model_copy_with_input_shape(get(), input.c_str(), dims.data(), dims.size(), &m));
        return Model(m);
    }
    /// The serialized model.
    IPUFLOW_CPP_RESULT(std::vector<uint8_t>) Serialize() const {
        uint8_t* data = nullptr;
        size_t len = 0;
        IPUFLOW_CPP_CHECK(ipuflow_model_serialize(get(), &data, &len));
        auto free_bytes = [len](uint8_t* p) { ipuflow_bytes_free(p, len); };
        std::unique_ptr<uint8_t, decltype(free_bytes)> guard(data, free_bytes);
        return std::vector<uint8_t>(data, data + len);
    }
    IPUFLOW_CPP_RESULT(int64_t) IrVersion() const {
        int64_t v = 0;
        IPUFLOW_CPP_CHECK(ipuflow_model_get_versions(get(), &v, nullptr));
        return v;
    }
    IPUFLOW_CPP_RESULT(std::string) ProducerName() const {
        const char* s = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_model_get_producer(get(), &s, nullptr, nullptr, nullptr));
        return detail::str(s);
    }
    IPUFLOW_CPP_RESULT(ModelCounts) Counts() const {
        ModelCounts c;
        IPUFLOW_CPP_CHECK(ipuflow_model_get_counts(get(), &c.nodes, &c.initializers, &c.initializer_bytes,
                                                   &c.inputs, &c.outputs, &c.opsets, &c.op_types));
        return c;
    }
    /// (domain, version) of each opset import; the default ONNX domain is "".
    IPUFLOW_CPP_RESULT(std::vector<std::pair<std::string, int64_t>>) Opsets() const {
        IPUFLOW_CPP_LET(ModelCounts, c, Counts());
        std::vector<std::pair<std::string, int64_t>> v;
        for (size_t i = 0; i < c.opsets; ++i) {
            const char* d = nullptr;
            int64_t ver = 0;
            IPUFLOW_CPP_CHECK(ipuflow_model_get_opset(get(), i, &d, &ver));
            v.emplace_back(detail::str(d), ver);
        }
        return v;
    }
    /// (op type, node count), most used first.
    IPUFLOW_CPP_RESULT(std::vector<std::pair<std::string, size_t>>) OpTypes() const {
        IPUFLOW_CPP_LET(ModelCounts, c, Counts());
        std::vector<std::pair<std::string, size_t>> v;
        for (size_t i = 0; i < c.op_types; ++i) {
            const char* op = nullptr;
            size_t count = 0;
            IPUFLOW_CPP_CHECK(ipuflow_model_get_op_type(get(), i, &op, &count));
            v.emplace_back(detail::str(op), count);
        }
        return v;
    }
    /// Graph input `index` (initializers excluded); IPUFLOW_STATUS_OUT_OF_RANGE past the last.
    IPUFLOW_CPP_RESULT(ValueInfo) Input(size_t index) const { return Value(true, index); }
    /// Graph output `index`; IPUFLOW_STATUS_OUT_OF_RANGE past the last.
    IPUFLOW_CPP_RESULT(ValueInfo) Output(size_t index) const { return Value(false, index); }
    IPUFLOW_CPP_RESULT(std::vector<ValueInfo>) Inputs() const { return Values(true); }
    IPUFLOW_CPP_RESULT(std::vector<ValueInfo>) Outputs() const { return Values(false); }
    /// The full inspection summary (what `ipuflow inspect --json` prints) as JSON.
    IPUFLOW_CPP_RESULT(std::string) ToJson() const {
        char* s = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_model_to_json(get(), &s));
        return detail::take_string(s);
    }
    /// The 0.1 name of ToJson.
    IPUFLOW_CPP_RESULT(std::string) SummaryJson() const { return ToJson(); }

    // The 0.1 Try* calls: Result/Status in both modes.
    static Result<Model> TryLoad(const std::string& path) {
        return detail::attempt([&] { return Load(path); });
    }
    static Result<Model> TryFromBytes(const void* data, size_t len, const char* base_dir = nullptr) {
        return detail::attempt([&] { return FromBytes(data, len, base_dir); });
    }
    Status TrySave(const std::string& path) const {
        return detail::attempt([&] { return Save(path); });
    }
    Status TrySaveWithExternalData(const std::string& path, const std::string& data_location,
                                   size_t size_threshold = 1024) const {
        return detail::attempt([&] { return SaveWithExternalData(path, data_location, size_threshold); });
    }

private:
    IPUFLOW_CPP_RESULT(ValueInfo) Value(bool input, size_t index) const {
        ipuflow_value_info raw{};
        IPUFLOW_CPP_CHECK(input ? ipuflow_model_get_input(get(), index, &raw)
                                : ipuflow_model_get_output(get(), index, &raw));
        ValueInfo info;
        info.name = detail::str(raw.name);
        info.kind = raw.kind;
        info.element_type = raw.element_type;
        info.has_shape = raw.rank >= 0;
        for (int64_t d = 0; d < raw.rank; ++d) {
            Dim dim;
            dim.size = raw.dims[d];
            dim.name = detail::str(raw.dim_names[d]);
            info.shape.push_back(std::move(dim));
        }
        return info;
    }
    IPUFLOW_CPP_RESULT(std::vector<ValueInfo>) Values(bool inputs) const {
        IPUFLOW_CPP_LET(ModelCounts, c, Counts());
        std::vector<ValueInfo> v;
        for (size_t i = 0, n = inputs ? c.inputs : c.outputs; i < n; ++i) {
            IPUFLOW_CPP_LET(ValueInfo, info, Value(inputs, i));
            v.push_back(std::move(info));
        }
        return v;
    }
};

// ================================================================================================================
// NPU detection and pre-flight
// ================================================================================================================

/// One NPU found by NpuScan (strings copied).
struct NpuDevice {
    std::string name;  ///< "PHX/HPT", "STX", "KRK", or a description of an unknown revision
    uint16_t vendor_id = 0;
    uint16_t device_id = 0;
    int32_t revision = -1;                  ///< -1 when unreadable
    int32_t target = IPUFLOW_TARGET_X2;     ///< the VitisAI target it needs: IPUFLOW_TARGET_X1 or _X2
    std::string location, driver, notes;    ///< driver and notes "" when none
};

/// The Ryzen AI NPUs of this machine (ipuflow_npu_detect). Immutable; const methods are thread-safe.
class NpuScan : public detail::Handle<ipuflow_npu_scan, ipuflow_npu_scan_free> {
public:
    using Handle::Handle;
    /// Scans the PCI devices; `sysfs_root` "" means $IPUFLOW_SYSFS_ROOT, else /sys/bus/pci/devices (ignored on
    /// Windows). An explicit root that does not exist is IPUFLOW_STATUS_FILE_NOT_FOUND; finding nothing is not an
    /// error.
    static IPUFLOW_CPP_RESULT(NpuScan) Detect(const std::string& sysfs_root = std::string()) {
        ipuflow_npu_scan* s = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_npu_detect(sysfs_root.empty() ? nullptr : sysfs_root.c_str(), &s));
        return NpuScan(s);
    }
    static IPUFLOW_CPP_RESULT(NpuScan) Detect(const WidePath& sysfs_root) {
        ipuflow_npu_scan* s = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_npu_detect_w(sysfs_root.empty() ? nullptr : sysfs_root.c_str(), &s));
        return NpuScan(s);
    }
    IPUFLOW_CPP_RESULT(size_t) Count() const {
        size_t n = 0;
        IPUFLOW_CPP_CHECK(ipuflow_npu_scan_get_count(get(), &n));
        return n;
    }
    /// NPU `index`; IPUFLOW_STATUS_OUT_OF_RANGE past the last.
    IPUFLOW_CPP_RESULT(NpuDevice) Get(size_t index) const {
        ipuflow_npu_device d{};
        IPUFLOW_CPP_CHECK(ipuflow_npu_scan_get_device(get(), index, &d));
        NpuDevice out;
        out.name = detail::str(d.name);
        out.vendor_id = d.vendor_id;
        out.device_id = d.device_id;
        out.revision = d.revision;
        out.target = d.target;
        out.location = detail::str(d.location);
        out.driver = detail::str(d.driver);
        out.notes = detail::str(d.notes);
        return out;
    }
    IPUFLOW_CPP_RESULT(std::vector<NpuDevice>) Devices() const {
        IPUFLOW_CPP_LET(size_t, n, Count());
        std::vector<NpuDevice> v;
        for (size_t i = 0; i < n; ++i) {
            IPUFLOW_CPP_LET(NpuDevice, d, Get(i));
            v.push_back(std::move(d));
        }
        return v;
    }
    /// Devices and warnings (unreadable entries) as JSON.
    IPUFLOW_CPP_RESULT(std::string) ToJson() const {
        char* s = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_npu_scan_to_json(get(), &s));
        return detail::take_string(s);
    }
};

/// Removes one model's compiled NPU cache, `cache_dir`/`cache_key` (see Session::CacheKey); gives the bytes
/// removed. A missing entry is not an error; a key that is not a single directory name is
/// IPUFLOW_STATUS_PATH_REFUSED.
inline IPUFLOW_CPP_RESULT(uint64_t) ClearNpuCache(const std::string& cache_dir, const std::string& cache_key) {
    uint64_t removed = 0;
    IPUFLOW_CPP_CHECK(ipuflow_npu_cache_clear(cache_dir.c_str(), cache_key.c_str(), &removed));
    return removed;
}
inline IPUFLOW_CPP_RESULT(uint64_t) ClearNpuCache(const WidePath& cache_dir, const std::string& cache_key) {
    uint64_t removed = 0;
    IPUFLOW_CPP_CHECK(ipuflow_npu_cache_clear_w(cache_dir.c_str(), cache_key.c_str(), &removed));
    return removed;
}

/// The prediction for one node (strings copied).
struct NodePrediction {
    std::string name, op_type, domain;
    int32_t device = IPUFLOW_DEVICE_CPU;  ///< IPUFLOW_DEVICE_NPU or IPUFLOW_DEVICE_CPU
    std::string reason;                   ///< the rule that keeps it on the CPU, or why the NPU takes it
    bool supported_if_quantized = false;  ///< whether the NPU would take it once the model is quantized
};

/// How the VitisAI EP would place a model, predicted without hardware (ipuflow_preflight_run). Immutable; const
/// methods are thread-safe.
class Preflight : public detail::Handle<ipuflow_preflight, ipuflow_preflight_free> {
public:
    using Handle::Handle;
    /// Predicts the placement of `model` for `target` (IPUFLOW_TARGET_X1 / _X2; else IPUFLOW_STATUS_INVALID_ENUM).
    static IPUFLOW_CPP_RESULT(Preflight) Run(const Model& model, int32_t target) {
        ipuflow_preflight* p = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_preflight_run(model.get(), target, &p));
        return Preflight(p);
    }
    IPUFLOW_CPP_RESULT(ipuflow_preflight_summary) Summary() const {
        ipuflow_preflight_summary s{};
        IPUFLOW_CPP_CHECK(ipuflow_preflight_get_summary(get(), &s));
        return s;
    }
    IPUFLOW_CPP_RESULT(size_t) NodeCount() const {
        size_t n = 0;
        IPUFLOW_CPP_CHECK(ipuflow_preflight_get_node_count(get(), &n));
        return n;
    }
    /// Node `index`; IPUFLOW_STATUS_OUT_OF_RANGE past the last.
    IPUFLOW_CPP_RESULT(NodePrediction) Node(size_t index) const {
        ipuflow_node_prediction p{};
        IPUFLOW_CPP_CHECK(ipuflow_preflight_get_node(get(), index, &p));
        NodePrediction out;
        out.name = detail::str(p.name);
        out.op_type = detail::str(p.op_type);
        out.domain = detail::str(p.domain);
        out.device = p.device;
        out.reason = detail::str(p.reason);
        out.supported_if_quantized = p.supported_if_quantized;
        return out;
    }
    IPUFLOW_CPP_RESULT(std::vector<NodePrediction>) Nodes() const {
        IPUFLOW_CPP_LET(size_t, n, NodeCount());
        std::vector<NodePrediction> v;
        for (size_t i = 0; i < n; ++i) {
            IPUFLOW_CPP_LET(NodePrediction, p, Node(i));
            v.push_back(std::move(p));
        }
        return v;
    }
    /// The whole prediction as JSON (nodes, subgraphs, coverage, model-wide reasons).
    IPUFLOW_CPP_RESULT(std::string) ToJson() const {
        char* s = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_preflight_to_json(get(), &s));
        return detail::take_string(s);
    }
};

// ================================================================================================================
// Runtime, Env, SessionOptions, RunOptions
// ================================================================================================================

/// ONNX Runtime, loaded once per process (sessions load it on demand; Load chooses the file and reports errors).
struct Runtime {
    /// Loads ONNX Runtime from `path` (a file or directory), or with the default resolution when empty.
    static IPUFLOW_CPP_VOID Load(const std::string& path = std::string()) {
        IPUFLOW_CPP_CHECK(ipuflow_runtime_load(path.empty() ? nullptr : path.c_str()));
        IPUFLOW_CPP_RETURN_OK;
    }
    static IPUFLOW_CPP_VOID Load(const WidePath& path) {
        IPUFLOW_CPP_CHECK(ipuflow_runtime_load_w(path.empty() ? nullptr : path.c_str()));
        IPUFLOW_CPP_RETURN_OK;
    }
    static bool IsLoaded() noexcept { return ipuflow_runtime_is_loaded() != 0; }
    /// The loaded runtime's version, e.g. "1.32.0" (IPUFLOW_STATUS_RUNTIME_NOT_LOADED before a load).
    static IPUFLOW_CPP_RESULT(std::string) Version() {
        const char* v = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_runtime_get_version(&v));
        return detail::str(v);
    }
    /// Where the runtime was loaded from.
    static IPUFLOW_CPP_RESULT(std::string) Path() {
        const char* v = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_runtime_get_path(&v));
        return detail::str(v);
    }
    /// The ONNX Runtime C API version in use.
    static IPUFLOW_CPP_RESULT(uint32_t) ApiVersion() {
        uint32_t v = 0;
        IPUFLOW_CPP_CHECK(ipuflow_runtime_get_api_version(&v));
        return v;
    }
};

/// ONNX Runtime's environment (one per process): log level, log callback, optional global thread pools.
class Env : public detail::Handle<ipuflow_env, ipuflow_env_free> {
public:
    using Handle::Handle;
    static IPUFLOW_CPP_RESULT(Env) Create(int32_t log_level = IPUFLOW_LOG_LEVEL_WARNING,
                                          ipuflow_log_callback callback = nullptr, void* user_data = nullptr,
                                          const char* log_id = nullptr) {
        ipuflow_env* e = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_env_create(log_level, log_id, callback, user_data, &e));
        return Env(e);
    }
    /// With thread pools shared by all its sessions (0 threads: ONNX Runtime chooses; spinning -1: its default).
    static IPUFLOW_CPP_RESULT(Env)
        CreateWithGlobalThreadPools(int32_t intra_op_threads, int32_t inter_op_threads, int32_t allow_spinning = -1,
                                    int32_t log_level = IPUFLOW_LOG_LEVEL_WARNING,
                                    ipuflow_log_callback callback = nullptr, void* user_data = nullptr,
                                    const char* log_id = nullptr) {
        ipuflow_env* e = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_env_create_with_global_thread_pools(log_level, log_id, callback, user_data,
                                                                      intra_op_threads, inter_op_threads,
                                                                      allow_spinning, &e));
        return Env(e);
    }
};

/// Session settings (ipuflow_session_options). The default constructor creates ONNX Runtime's defaults (it fails
/// only when out of memory: it then throws, or leaves the object empty, which Session::Create reports); setters
/// chain with exceptions and return a Status without. Not thread-safe.
class SessionOptions : public detail::Handle<ipuflow_session_options, ipuflow_session_options_free> {
public:
    using Handle::Handle;
    SessionOptions() {
        ipuflow_session_options* o = nullptr;
        ipuflow_status s = ipuflow_session_options_create(&o);
#if !defined(IPUFLOW_NO_EXCEPTIONS)
        detail::check(s);
#endif
        if (s == IPUFLOW_STATUS_OK) reset(o);
    }
    /// The same, as a call that reports its failure.
    static IPUFLOW_CPP_RESULT(SessionOptions) Create() {
        ipuflow_session_options* o = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_session_options_create(&o));
        return SessionOptions(o);
    }
    /// IPUFLOW_SESSION_DEVICE_CPU, _IPU or _AUTO.
    IPUFLOW_CPP_SELF(SessionOptions) SetDevice(int32_t device) {
        IPUFLOW_CPP_CHECK(ipuflow_session_options_set_device(get(), device));
        IPUFLOW_CPP_RETURN_SELF;
    }
    /// IPUFLOW_FALLBACK_STRICT or _PREFER, and the minimum share of nodes that must land on the NPU (0..1).
    IPUFLOW_CPP_SELF(SessionOptions) SetFallback(int32_t policy, double min_npu_fraction = 0.0) {
        IPUFLOW_CPP_CHECK(ipuflow_session_options_set_fallback(get(), policy, min_npu_fraction));
        IPUFLOW_CPP_RETURN_SELF;
    }
    /// A VitisAI provider option ("target", "cache_dir", "config_file", ...), validated at once.
    IPUFLOW_CPP_SELF(SessionOptions) SetProviderOption(const std::string& key, const std::string& value) {
        IPUFLOW_CPP_CHECK(ipuflow_session_options_set_provider_option(get(), key.c_str(), value.c_str()));
        IPUFLOW_CPP_RETURN_SELF;
    }
    /// Another execution provider by ONNX Runtime's name, with its options.
    IPUFLOW_CPP_SELF(SessionOptions)
    AppendProvider(const std::string& name, const std::vector<std::pair<std::string, std::string>>& options = {}) {
        std::vector<const char*> keys, values;
        for (const auto& kv : options) {
            keys.push_back(kv.first.c_str());
            values.push_back(kv.second.c_str());
        }
        IPUFLOW_CPP_CHECK(
            ipuflow_session_options_append_provider(get(), name.c_str(), keys.data(), values.data(), keys.size()));
        IPUFLOW_CPP_RETURN_SELF;
    }
    /// An ONNX Runtime session config entry (AddSessionConfigEntry).
    /// Fixes the dynamic graph input `input` to `dims` for sessions created with these options.
    IPUFLOW_CPP_SELF(SessionOptions) SetInputShape(const std::string& input, const std::vector<int64_t>& dims) {
        IPUFLOW_CPP_CHECK(ipuflow_session_options_set_input_shape(get(), input.c_str(), dims.data(), dims.size()));
        IPUFLOW_CPP_RETURN_SELF;
    }
    /// How a quantized model runs on the CPU: IPUFLOW_FALLBACK_EXECUTION_FAST (default), _FAITHFUL, _AS_WRITTEN.
    IPUFLOW_CPP_SELF(SessionOptions) SetFallbackExecution(int32_t mode) {
        IPUFLOW_CPP_CHECK(ipuflow_session_options_set_fallback_execution(get(), mode));
        IPUFLOW_CPP_RETURN_SELF;
    }
    /// Cancels every session creation using these options, now and until ResetLoadCancel(); any thread.
    IPUFLOW_CPP_VOID CancelLoad() const {
        IPUFLOW_CPP_CHECK(ipuflow_session_options_cancel_load(get()));
        IPUFLOW_CPP_RETURN_OK;
    }
    /// Lets later session creations with these options proceed again.
    IPUFLOW_CPP_VOID ResetLoadCancel() const {
        IPUFLOW_CPP_CHECK(ipuflow_session_options_reset_load_cancel(get()));
        IPUFLOW_CPP_RETURN_OK;
    }
    /// Whether CancelLoad() was called (and not reset since).
    IPUFLOW_CPP_RESULT(bool) LoadCancelled() const {
        int32_t c = 0;
        IPUFLOW_CPP_CHECK(ipuflow_session_options_get_load_cancelled(get(), &c));
        return c != 0;
    }
    IPUFLOW_CPP_SELF(SessionOptions) AddConfigEntry(const std::string& key, const std::string& value) {
        IPUFLOW_CPP_CHECK(ipuflow_session_options_add_config_entry(get(), key.c_str(), value.c_str()));
        IPUFLOW_CPP_RETURN_SELF;
    }
    /// IPUFLOW_GRAPH_OPTIMIZATION_*.
    IPUFLOW_CPP_SELF(SessionOptions) SetGraphOptimization(int32_t level) {
        IPUFLOW_CPP_CHECK(ipuflow_session_options_set_graph_optimization(get(), level));
        IPUFLOW_CPP_RETURN_SELF;
    }
    /// IPUFLOW_EXECUTION_MODE_*.
    IPUFLOW_CPP_SELF(SessionOptions) SetExecutionMode(int32_t mode) {
        IPUFLOW_CPP_CHECK(ipuflow_session_options_set_execution_mode(get(), mode));
        IPUFLOW_CPP_RETURN_SELF;
    }
    IPUFLOW_CPP_SELF(SessionOptions) SetIntraOpThreads(int32_t n) {
        IPUFLOW_CPP_CHECK(ipuflow_session_options_set_intra_op_threads(get(), n));
        IPUFLOW_CPP_RETURN_SELF;
    }
    IPUFLOW_CPP_SELF(SessionOptions) SetInterOpThreads(int32_t n) {
        IPUFLOW_CPP_CHECK(ipuflow_session_options_set_inter_op_threads(get(), n));
        IPUFLOW_CPP_RETURN_SELF;
    }
    IPUFLOW_CPP_SELF(SessionOptions) SetDeterministic(bool on) {
        IPUFLOW_CPP_CHECK(ipuflow_session_options_set_deterministic(get(), on ? 1 : 0));
        IPUFLOW_CPP_RETURN_SELF;
    }
    IPUFLOW_CPP_SELF(SessionOptions) SetMemoryArena(bool on) {
        IPUFLOW_CPP_CHECK(ipuflow_session_options_set_memory_arena(get(), on ? 1 : 0));
        IPUFLOW_CPP_RETURN_SELF;
    }
    /// Writes a Chrome-trace profile `<prefix>_<timestamp>.json` when the session is freed; "" turns it off.
    IPUFLOW_CPP_SELF(SessionOptions) SetProfiling(const std::string& prefix) {
        IPUFLOW_CPP_CHECK(ipuflow_session_options_set_profiling(get(), prefix.empty() ? nullptr : prefix.c_str()));
        IPUFLOW_CPP_RETURN_SELF;
    }
    IPUFLOW_CPP_SELF(SessionOptions) SetProfiling(const WidePath& prefix) {
        IPUFLOW_CPP_CHECK(
            ipuflow_session_options_set_profiling_w(get(), prefix.empty() ? nullptr : prefix.c_str()));
        IPUFLOW_CPP_RETURN_SELF;
    }
    /// Saves the optimized graph at session creation; "" turns it off.
    IPUFLOW_CPP_SELF(SessionOptions) SetOptimizedModelPath(const std::string& path) {
        IPUFLOW_CPP_CHECK(
            ipuflow_session_options_set_optimized_model_path(get(), path.empty() ? nullptr : path.c_str()));
        IPUFLOW_CPP_RETURN_SELF;
    }
    IPUFLOW_CPP_SELF(SessionOptions) SetOptimizedModelPath(const WidePath& path) {
        IPUFLOW_CPP_CHECK(
            ipuflow_session_options_set_optimized_model_path_w(get(), path.empty() ? nullptr : path.c_str()));
        IPUFLOW_CPP_RETURN_SELF;
    }
    /// The session's log id ("" restores the default) and level (IPUFLOW_LOG_LEVEL_*, -1: the environment's).
    IPUFLOW_CPP_SELF(SessionOptions) SetLogging(const std::string& log_id, int32_t log_level = -1) {
        IPUFLOW_CPP_CHECK(
            ipuflow_session_options_set_logging(get(), log_id.empty() ? nullptr : log_id.c_str(), log_level));
        IPUFLOW_CPP_RETURN_SELF;
    }
};

/// Per-run settings and a cancel token (ipuflow_run_options), as Ort::RunOptions. Create() loads ONNX Runtime if
/// needed, so it can fail; a default-constructed RunOptions is empty. Cancel, Reset and IsCancelled are
/// thread-safe (Cancel is meant for another thread than the one running); the setters are not.
class RunOptions : public detail::Handle<ipuflow_run_options, ipuflow_run_options_free> {
public:
    using Handle::Handle;
    static IPUFLOW_CPP_RESULT(RunOptions) Create() {
        ipuflow_run_options* o = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_run_options_create(&o));
        return RunOptions(o);
    }
    /// Stops every run using these options (IPUFLOW_STATUS_CANCELLED), and later ones until Reset().
    IPUFLOW_CPP_VOID Cancel() const {
        IPUFLOW_CPP_CHECK(ipuflow_run_options_cancel(get()));
        IPUFLOW_CPP_RETURN_OK;
    }
    /// Clears the cancel flag.
    IPUFLOW_CPP_VOID Reset() const {
        IPUFLOW_CPP_CHECK(ipuflow_run_options_reset(get()));
        IPUFLOW_CPP_RETURN_OK;
    }
    /// Ort::RunOptions' names for Cancel and Reset.
    IPUFLOW_CPP_VOID SetTerminate() const { return Cancel(); }
    IPUFLOW_CPP_VOID UnsetTerminate() const { return Reset(); }
    IPUFLOW_CPP_RESULT(bool) IsCancelled() const {
        int32_t c = 0;
        IPUFLOW_CPP_CHECK(ipuflow_run_options_get_cancelled(get(), &c));
        return c != 0;
    }
    /// A tag shown in ONNX Runtime's log messages of these runs.
    IPUFLOW_CPP_SELF(RunOptions) SetTag(const std::string& tag) {
        IPUFLOW_CPP_CHECK(ipuflow_run_options_set_tag(get(), tag.c_str()));
        IPUFLOW_CPP_RETURN_SELF;
    }
    /// IPUFLOW_LOG_LEVEL_*.
    IPUFLOW_CPP_SELF(RunOptions) SetLogLevel(int32_t level) {
        IPUFLOW_CPP_CHECK(ipuflow_run_options_set_log_level(get(), level));
        IPUFLOW_CPP_RETURN_SELF;
    }
    /// An ONNX Runtime run config entry (AddRunConfigEntry).
    IPUFLOW_CPP_SELF(RunOptions) AddConfigEntry(const std::string& key, const std::string& value) {
        IPUFLOW_CPP_CHECK(ipuflow_run_options_add_config_entry(get(), key.c_str(), value.c_str()));
        IPUFLOW_CPP_RETURN_SELF;
    }
};

// ================================================================================================================
// Tensor
// ================================================================================================================

/// A tensor: either a view of the caller's memory (Tensor::Create: nothing is copied, the memory must outlive the
/// tensor's use) or a run's output (owned: freed with the Tensor). Move-only; const methods are thread-safe.
class Tensor {
public:
    Tensor() noexcept = default;
    /// Adopts a run output returned by the C API (freed by this object).
    explicit Tensor(ipuflow_tensor* owned) : owned_(owned) { Describe(); }
    Tensor(const Tensor&) = delete;
    Tensor& operator=(const Tensor&) = delete;
    Tensor(Tensor&& o) noexcept { *this = std::move(o); }
    Tensor& operator=(Tensor&& o) noexcept {
        if (this != &o) {
            owned_ = std::move(o.owned_);
            shape_ = std::move(o.shape_);
            type_ = o.type_;
            data_ = o.data_;
            bytes_ = o.bytes_;
            read_only_ = o.read_only_;
            o.shape_.clear();
            o.type_ = 0;
            o.data_ = nullptr;
            o.bytes_ = 0;
        }
        return *this;
    }

    /// A view of `count` elements of type T at `data`, with `shape` (every dimension >= 0, their product `count`:
    /// IPUFLOW_STATUS_TENSOR_MISMATCH otherwise). T is float, double, [u]int8/16/32/64_t, bool, Float16,
    /// BFloat16 or const char* (STRING).
    template <typename T>
    static IPUFLOW_CPP_RESULT(Tensor) Create(std::vector<int64_t> shape, T* data, size_t count) {
        return Make<T>(std::move(shape), data, count, false);
    }
    /// A read-only view (an input; MutableData on it fails).
    template <typename T>
    static IPUFLOW_CPP_RESULT(Tensor) Create(std::vector<int64_t> shape, const T* data, size_t count) {
        return Make<T>(std::move(shape), const_cast<T*>(data), count, true);
    }
    /// A view of a vector's elements (the vector must not be resized while the view is used).
    template <typename T>
    static IPUFLOW_CPP_RESULT(Tensor) Create(std::vector<int64_t> shape, std::vector<T>& data) {
        return Make<T>(std::move(shape), data.data(), data.size(), false);
    }
    template <typename T>
    static IPUFLOW_CPP_RESULT(Tensor) Create(std::vector<int64_t> shape, const std::vector<T>& data) {
        return Make<T>(std::move(shape), const_cast<T*>(data.data()), data.size(), true);
    }
    /// An untyped view: `byte_size` bytes of `element_type` (IPUFLOW_ELEMENT_TYPE_*), e.g. for an element type
    /// known only at run time. The size must match the shape (packed 4-/2-bit types included).
    static IPUFLOW_CPP_RESULT(Tensor)
        Create(int32_t element_type, std::vector<int64_t> shape, void* data, size_t byte_size) {
        IPUFLOW_CPP_LET(size_t, n, CheckedCount(shape, "Tensor::Create"));
        size_t want = 0;
        if (element_type == IPUFLOW_ELEMENT_TYPE_UINT4 || element_type == IPUFLOW_ELEMENT_TYPE_INT4) {
            want = n / 2 + n % 2;
        } else if (element_type == IPUFLOW_ELEMENT_TYPE_UINT2 || element_type == IPUFLOW_ELEMENT_TYPE_INT2) {
            want = n / 4 + (n % 4 != 0);
        } else {
            IPUFLOW_CPP_LET(size_t, esize, ElementTypeSize(element_type));
            if (esize != 0 && n > SIZE_MAX / esize)
                IPUFLOW_CPP_FAIL(Status(IPUFLOW_STATUS_LIMIT_EXCEEDED, "Tensor::Create: the shape " +
                                                                           ShapeText(shape) + " overflows size_t"));
            want = n * esize;
        }
        if (want != byte_size)
            IPUFLOW_CPP_FAIL(Status(IPUFLOW_STATUS_TENSOR_MISMATCH,
                                    std::string("Tensor::Create: a ") + ElementTypeName(element_type) + " tensor of " +
                                        "shape " + ShapeText(shape) + " takes " + std::to_string(want) +
                                        " bytes, not " + std::to_string(byte_size)));
        if (data == nullptr && byte_size != 0)
            IPUFLOW_CPP_FAIL(Status(IPUFLOW_STATUS_NULL_ARGUMENT, "Tensor::Create: data is null"));
        return Tensor(element_type, std::move(shape), data, byte_size, false);
    }

    /// IPUFLOW_ELEMENT_TYPE_* (0 for an empty Tensor).
    int32_t ElementType() const noexcept { return type_; }
    const std::vector<int64_t>& Shape() const noexcept { return shape_; }
    size_t ElementCount() const noexcept {
        size_t n = 1;
        for (int64_t d : shape_) n *= static_cast<size_t>(d);
        return n;
    }
    size_t ByteSize() const noexcept { return bytes_; }
    /// True for a run's output (owned), false for a view of caller memory.
    bool OwnsData() const noexcept { return static_cast<bool>(owned_); }
    /// The C description (pointers valid while this tensor is alive and not moved from).
    ipuflow_tensor_view View() const noexcept {
        return ipuflow_tensor_view{type_, shape_.empty() ? nullptr : shape_.data(), shape_.size(), data_, bytes_};
    }
    const void* RawData() const noexcept { return data_; }
    /// The owned C tensor (null for a view).
    ipuflow_tensor* get() const noexcept { return owned_.get(); }

    /// The elements as T, checked: a tensor of another element type is IPUFLOW_STATUS_TENSOR_MISMATCH naming both
    /// types. `count`, when given, receives the element count. Null for an empty tensor. STRING: T = const char*.
    template <typename T>
    IPUFLOW_CPP_RESULT(const T*) Data(size_t* count = nullptr) const {
        IPUFLOW_CPP_LET(T*, p, Typed<T>("Data", false));
        if (count != nullptr) *count = ElementCount();
        return static_cast<const T*>(p);
    }
    /// The same, writable: a run's output, or a view made from non-const memory (IPUFLOW_STATUS_INVALID_ARGUMENT
    /// for a read-only view; a STRING output's strings are never writable).
    template <typename T>
    IPUFLOW_CPP_RESULT(T*) MutableData(size_t* count = nullptr) {
        IPUFLOW_CPP_LET(T*, p, Typed<T>("MutableData", true));
        if (count != nullptr) *count = ElementCount();
        return p;
    }
    /// The exact byte length of each string of a STRING output (embedded NULs included).
    IPUFLOW_CPP_RESULT(std::vector<size_t>) StringLengths() const {
        const size_t* lens = nullptr;
        size_t n = 0;
        if (!owned_)
            IPUFLOW_CPP_FAIL(Status(IPUFLOW_STATUS_INVALID_ARGUMENT,
                                    "Tensor::StringLengths: only a run's output has them (this is a view)"));
        IPUFLOW_CPP_CHECK(ipuflow_tensor_get_string_lengths(owned_.get(), &lens, &n));
        return std::vector<size_t>(lens, lens + n);
    }

private:
    friend class Session;
    Tensor(int32_t type, std::vector<int64_t> shape, void* data, size_t bytes, bool read_only)
        : shape_(std::move(shape)), type_(type), data_(data), bytes_(bytes), read_only_(read_only) {}

    // Reads type, shape and data of the owned tensor.
    void Describe() {
        ipuflow_tensor_view v{};
        if (!owned_ || ipuflow_tensor_get_view(owned_.get(), &v) != IPUFLOW_STATUS_OK) return;
        type_ = v.element_type;
        shape_.assign(v.shape, v.shape + v.rank);
        data_ = v.data;
        bytes_ = v.byte_size;
        read_only_ = v.element_type == IPUFLOW_ELEMENT_TYPE_STRING;
    }

    static std::string ShapeText(const std::vector<int64_t>& shape) {
        std::string s = "[";
        for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
        return s + "]";
    }

    // The element count of a view's shape, checked (no negative dimension, no overflow).
    static IPUFLOW_CPP_RESULT(size_t) CheckedCount(const std::vector<int64_t>& shape, const char* who) {
        size_t n = 1;
        for (size_t i = 0; i < shape.size(); ++i) {
            if (shape[i] < 0)
                IPUFLOW_CPP_FAIL(Status(IPUFLOW_STATUS_TENSOR_MISMATCH, std::string(who) + ": dimension " +
                                                                            std::to_string(i) + " of shape " +
                                                                            ShapeText(shape) + " is negative"));
            const auto d = static_cast<uint64_t>(shape[i]);
            if (d != 0 && n > SIZE_MAX / d)
                IPUFLOW_CPP_FAIL(Status(IPUFLOW_STATUS_LIMIT_EXCEEDED,
                                        std::string(who) + ": the shape " + ShapeText(shape) + " overflows size_t"));
            n *= static_cast<size_t>(d);
        }
        return n;
    }

    template <typename T>
    static IPUFLOW_CPP_RESULT(Tensor) Make(std::vector<int64_t> shape, T* data, size_t count, bool read_only) {
        constexpr int32_t type = ElementTypeOf<typename std::remove_cv<T>::type>::value;
        static_assert(type != 0, "Tensor::Create<T>: T has no ONNX element type (see ipuflow::ElementTypeOf)");
        IPUFLOW_CPP_LET(size_t, n, CheckedCount(shape, "Tensor::Create"));
        if (n != count)
            IPUFLOW_CPP_FAIL(Status(IPUFLOW_STATUS_TENSOR_MISMATCH,
                                    std::string("Tensor::Create<") + ElementTypeName(type) + ">: shape " +
                                        ShapeText(shape) + " holds " + std::to_string(n) + " elements, the data " +
                                        std::to_string(count)));
        if (data == nullptr && count != 0)
            IPUFLOW_CPP_FAIL(Status(IPUFLOW_STATUS_NULL_ARGUMENT, "Tensor::Create: data is null"));
        return Tensor(type, std::move(shape), const_cast<typename std::remove_cv<T>::type*>(data), count * sizeof(T),
                      read_only);
    }

    template <typename T>
    IPUFLOW_CPP_RESULT(T*) Typed(const char* who, bool writable) const {
        constexpr int32_t want = ElementTypeOf<typename std::remove_cv<T>::type>::value;
        static_assert(want != 0, "Tensor::Data<T>: T has no ONNX element type (see ipuflow::ElementTypeOf)");
        if (type_ != want)
            IPUFLOW_CPP_FAIL(Status(IPUFLOW_STATUS_TENSOR_MISMATCH,
                                    std::string("Tensor::") + who + "<" + ElementTypeName(want) +
                                        ">: the tensor holds " + ElementTypeName(type_) + " elements, not " +
                                        ElementTypeName(want)));
        if (writable && read_only_)
            IPUFLOW_CPP_FAIL(Status(IPUFLOW_STATUS_INVALID_ARGUMENT,
                                    std::string("Tensor::") + who + ": the tensor is read-only (a view of const "
                                                              "memory, or a STRING output)"));
        return static_cast<T*>(data_);
    }

    detail::Handle<ipuflow_tensor, ipuflow_tensor_free> owned_;
    std::vector<int64_t> shape_;
    int32_t type_ = 0;
    void* data_ = nullptr;
    size_t bytes_ = 0;
    bool read_only_ = false;
};

/// The input tensors of a run, borrowed: one Tensor, a vector of them, or a braced list `{a, b}`.
class TensorRefs {
public:
    TensorRefs() = default;
    TensorRefs(const Tensor& t) : refs_{&t} {}  // NOLINT: implicit by design
    TensorRefs(const std::vector<Tensor>& v) {  // NOLINT
        for (const Tensor& t : v) refs_.push_back(&t);
    }
    TensorRefs(std::initializer_list<std::reference_wrapper<const Tensor>> l) {
        for (const Tensor& t : l) refs_.push_back(&t);
    }
    TensorRefs(const Tensor* p, size_t n) {
        for (size_t i = 0; i < n; ++i) refs_.push_back(p + i);
    }
    size_t size() const noexcept { return refs_.size(); }
    const Tensor& operator[](size_t i) const noexcept { return *refs_[i]; }

private:
    std::vector<const Tensor*> refs_;
};

// ================================================================================================================
// Session
// ================================================================================================================

/// A model input or output as the session sees it (-1: a dimension that is not fixed).
struct TensorInfo {
    std::string name;
    int32_t element_type = 0;
    std::vector<int64_t> shape;
    std::vector<std::string> dim_names;  ///< symbolic name per dimension, "" when fixed or unnamed
};

/// One node of the placement.
struct PlacedNode {
    std::string name, domain, op_type;
};

/// A subgraph of the placement: a maximal connected group of nodes on one device (ipuflow's one definition).
struct PlacedSubgraph {
    std::string ep_name;
    std::vector<PlacedNode> nodes;
};

/// An entry of ONNX Runtime's own partition (Session::OrtPartition).
struct OrtSubgraph {
    std::string ep_name;
    size_t node_count = 0;
};

/// A model loaded into ONNX Runtime (ipuflow_session). Run and the getters are thread-safe.
class Session : public detail::Handle<ipuflow_session, ipuflow_session_free> {
public:
    using Handle::Handle;
    /// Creates a session from a model file. `options` and `env` may be null (defaults; the shared environment).
    static IPUFLOW_CPP_RESULT(Session) Create(const std::string& model_path, const SessionOptions* options = nullptr,
                                              const Env* env = nullptr) {
        IPUFLOW_CPP_TRY(Usable(options));
        ipuflow_session* s = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_session_create(Raw(env), model_path.c_str(), Raw(options), &s));
        return Session(s);
    }
    static IPUFLOW_CPP_RESULT(Session) Create(const std::string& model_path, const SessionOptions& options,
                                              const Env* env = nullptr) {
        return Create(model_path, &options, env);
    }
    static IPUFLOW_CPP_RESULT(Session) Create(const WidePath& model_path, const SessionOptions* options = nullptr,
                                              const Env* env = nullptr) {
        IPUFLOW_CPP_TRY(Usable(options));
        ipuflow_session* s = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_session_create_w(Raw(env), model_path.c_str(), Raw(options), &s));
        return Session(s);
    }
    static IPUFLOW_CPP_RESULT(Session) Create(const WidePath& model_path, const SessionOptions& options,
                                              const Env* env = nullptr) {
        return Create(model_path, &options, env);
    }
    /// From a serialized model in memory (read during the call, not kept).
    static IPUFLOW_CPP_RESULT(Session) CreateFromMemory(const void* data, size_t len,
                                                        const SessionOptions* options = nullptr,
                                                        const Env* env = nullptr) {
        IPUFLOW_CPP_TRY(Usable(options));
        ipuflow_session* s = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_session_create_from_memory(Raw(env), data, len, Raw(options), &s));
        return Session(s);
    }
    /// From a model held by ipuflow (loaded, edited or quantized).
    static IPUFLOW_CPP_RESULT(Session) CreateFromModel(const Model& model, const SessionOptions* options = nullptr,
                                                       const Env* env = nullptr) {
        IPUFLOW_CPP_TRY(Usable(options));
        ipuflow_session* s = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_session_create_from_model(Raw(env), model.get(), Raw(options), &s));
        return Session(s);
    }

    IPUFLOW_CPP_RESULT(size_t) GetInputCount() const {
        size_t n = 0;
        IPUFLOW_CPP_CHECK(ipuflow_session_get_input_count(get(), &n));
        return n;
    }
    IPUFLOW_CPP_RESULT(size_t) GetOutputCount() const {
        size_t n = 0;
        IPUFLOW_CPP_CHECK(ipuflow_session_get_output_count(get(), &n));
        return n;
    }
    /// Input `index` (model order); IPUFLOW_STATUS_OUT_OF_RANGE past the last.
    IPUFLOW_CPP_RESULT(TensorInfo) GetInputInfo(size_t index) const { return Info(true, index); }
    /// Output `index` (model order); IPUFLOW_STATUS_OUT_OF_RANGE past the last.
    IPUFLOW_CPP_RESULT(TensorInfo) GetOutputInfo(size_t index) const { return Info(false, index); }
    IPUFLOW_CPP_RESULT(std::vector<TensorInfo>) Inputs() const { return Infos(true); }
    IPUFLOW_CPP_RESULT(std::vector<TensorInfo>) Outputs() const { return Infos(false); }
    /// The input names in model order (what Run takes).
    IPUFLOW_CPP_RESULT(std::vector<std::string>) InputNames() const { return Names(true); }
    IPUFLOW_CPP_RESULT(std::vector<std::string>) OutputNames() const { return Names(false); }

    /// Runs once: `inputs[i]` feeds the input named `input_names[i]` (every input once, any order); returns the
    /// outputs named in `output_names` (default: all, in model order) as owned tensors. Cancelling `run_options`
    /// stops it with IPUFLOW_STATUS_CANCELLED.
    IPUFLOW_CPP_RESULT(std::vector<Tensor>) Run(const RunOptions& run_options,
                                                const std::vector<std::string>& input_names, TensorRefs inputs,
                                                const std::vector<std::string>& output_names = {}) const {
        if (!run_options)
            IPUFLOW_CPP_FAIL(Status(IPUFLOW_STATUS_NULL_ARGUMENT,
                                    "Session::Run: the RunOptions are empty (create them with RunOptions::Create)"));
        return DoRun(run_options.get(), input_names, inputs, output_names);
    }
    IPUFLOW_CPP_RESULT(std::vector<Tensor>) Run(const std::vector<std::string>& input_names, TensorRefs inputs,
                                                const std::vector<std::string>& output_names = {}) const {
        return DoRun(nullptr, input_names, inputs, output_names);
    }

    /// IPUFLOW_DEVICE_NPU or IPUFLOW_DEVICE_CPU: where the session actually runs.
    IPUFLOW_CPP_RESULT(int32_t) DeviceUsed() const {
        int32_t d = 0;
        IPUFLOW_CPP_CHECK(ipuflow_session_get_device(get(), &d));
        return d;
    }
    /// Why the NPU is not used although it was requested; "" otherwise.
    IPUFLOW_CPP_RESULT(std::string) FallbackReason() const {
        const char* r = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_session_get_fallback_reason(get(), &r));
        return detail::str(r);
    }
    /// The VitisAI compile-cache key computed for this session ("" when the NPU was not attempted).
    IPUFLOW_CPP_RESULT(std::string) CacheKey() const {
        const char* k = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_session_get_cache_key(get(), &k));
        return detail::str(k);
    }
    IPUFLOW_CPP_RESULT(ipuflow_placement_summary) PlacementSummary() const {
        ipuflow_placement_summary s{};
        IPUFLOW_CPP_CHECK(ipuflow_session_get_placement_summary(get(), &s));
        return s;
    }
    /// Where every node runs, by subgraph in ipuflow's one definition (maximal connected groups of nodes on one
    /// device, as the placement JSON counts them; IPUFLOW_STATUS_UNSUPPORTED when the placement is unavailable).
    IPUFLOW_CPP_RESULT(std::vector<PlacedSubgraph>) Placement() const {
        size_t n = 0;
        IPUFLOW_CPP_CHECK(ipuflow_session_placement_get_subgraph_count(get(), &n));
        std::vector<PlacedSubgraph> v(n);
        for (size_t i = 0; i < n; ++i) {
            const char* ep = nullptr;
            size_t count = 0;
            IPUFLOW_CPP_CHECK(ipuflow_session_placement_get_subgraph(get(), i, &ep, &count));
            v[i].ep_name = detail::str(ep);
            for (size_t j = 0; j < count; ++j) {
                ipuflow_placed_node node{};
                IPUFLOW_CPP_CHECK(ipuflow_session_placement_get_node(get(), i, j, &node));
                v[i].nodes.push_back(
                    PlacedNode{detail::str(node.name), detail::str(node.domain), detail::str(node.op_type)});
            }
        }
        return v;
    }
    /// ONNX Runtime's own partition: EP name and node count per entry as ONNX Runtime reports it (one per CPU node
    /// with ONNX Runtime 1.32); Placement() groups the same nodes by the one definition.
    IPUFLOW_CPP_RESULT(std::vector<OrtSubgraph>) OrtPartition() const {
        size_t n = 0;
        IPUFLOW_CPP_CHECK(ipuflow_session_placement_get_ort_subgraph_count(get(), &n));
        std::vector<OrtSubgraph> v;
        for (size_t i = 0; i < n; ++i) {
            const char* ep = nullptr;
            size_t count = 0;
            IPUFLOW_CPP_CHECK(ipuflow_session_placement_get_ort_subgraph(get(), i, &ep, &count));
            v.push_back(OrtSubgraph{detail::str(ep), count});
        }
        return v;
    }
    /// The placement as vitisai_ep_report.json-shaped JSON.
    IPUFLOW_CPP_RESULT(std::string) PlacementJson() const {
        char* s = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_session_placement_to_json(get(), &s));
        return detail::take_string(s);
    }

private:
    static const ipuflow_env* Raw(const Env* e) noexcept { return e != nullptr ? e->get() : nullptr; }
    static const ipuflow_session_options* Raw(const SessionOptions* o) noexcept {
        return o != nullptr ? o->get() : nullptr;
    }
    // An empty SessionOptions (its creation failed without exceptions) must not silently mean the defaults.
    static IPUFLOW_CPP_VOID Usable(const SessionOptions* o) {
        if (o != nullptr && !*o)
            IPUFLOW_CPP_FAIL(Status(IPUFLOW_STATUS_NULL_ARGUMENT, "Session::Create: the SessionOptions are empty"));
        IPUFLOW_CPP_RETURN_OK;
    }

    IPUFLOW_CPP_RESULT(TensorInfo) Info(bool input, size_t index) const {
        ipuflow_tensor_info raw{};
        IPUFLOW_CPP_CHECK(input ? ipuflow_session_get_input_info(get(), index, &raw)
                                : ipuflow_session_get_output_info(get(), index, &raw));
        TensorInfo info;
        info.name = detail::str(raw.name);
        info.element_type = raw.element_type;
        if (raw.rank > 0) {
            info.shape.assign(raw.shape, raw.shape + raw.rank);
            for (size_t d = 0; d < raw.rank; ++d) info.dim_names.push_back(detail::str(raw.dim_names[d]));
        }
        return info;
    }
    IPUFLOW_CPP_RESULT(std::vector<TensorInfo>) Infos(bool inputs) const {
        size_t n = 0;
        IPUFLOW_CPP_CHECK(inputs ? ipuflow_session_get_input_count(get(), &n) : ipuflow_session_get_output_count(get(), &n));
        std::vector<TensorInfo> v;
        for (size_t i = 0; i < n; ++i) {
            IPUFLOW_CPP_LET(TensorInfo, info, Info(inputs, i));
            v.push_back(std::move(info));
        }
        return v;
    }

    IPUFLOW_CPP_RESULT(std::vector<std::string>) Names(bool inputs) const {
        IPUFLOW_CPP_LET(std::vector<TensorInfo>, infos, Infos(inputs));
        std::vector<std::string> names;
        for (TensorInfo& i : infos) names.push_back(std::move(i.name));
        return names;
    }

    IPUFLOW_CPP_RESULT(std::vector<Tensor>) DoRun(const ipuflow_run_options* ro,
                                                  const std::vector<std::string>& input_names,
                                                  const TensorRefs& inputs,
                                                  const std::vector<std::string>& output_names) const {
        if (input_names.size() != inputs.size())
            IPUFLOW_CPP_FAIL(Status(IPUFLOW_STATUS_INVALID_ARGUMENT,
                                    "Session::Run: " + std::to_string(input_names.size()) + " input names but " +
                                        std::to_string(inputs.size()) + " input tensors"));
        std::vector<const char*> in(input_names.size());
        std::vector<ipuflow_tensor_view> views(inputs.size());
        for (size_t i = 0; i < in.size(); ++i) {
            in[i] = input_names[i].c_str();
            views[i] = inputs[i].View();
        }
        std::vector<std::string> all;
        if (output_names.empty()) {
            IPUFLOW_CPP_LET(std::vector<std::string>, names, Names(false));
            all = std::move(names);
        }
        const std::vector<std::string>& names = output_names.empty() ? all : output_names;
        std::vector<const char*> out(names.size());
        for (size_t i = 0; i < out.size(); ++i) out[i] = names[i].c_str();
        // Allocated before the run, so that adopting the outputs cannot fail half-way and leak some.
        std::vector<ipuflow_tensor*> raw(out.size(), nullptr);
        std::vector<Tensor> result(out.size());
        IPUFLOW_CPP_CHECK(ipuflow_session_run(get(), ro, in.data(), views.data(), views.size(), out.data(), nullptr,
                                              raw.data(), raw.size()));
        for (size_t i = 0; i < raw.size(); ++i) result[i].owned_.reset(raw[i]);
        for (Tensor& t : result) t.Describe();
        return result;
    }
};

// ================================================================================================================
// Quantization: QuantConfig, CalibData, Quantize
// ================================================================================================================

/// The host's own metric of a candidate model for mixed precision (QuantConfig::MetricCallback), higher is better.
/// The Model is borrowed for the call only (run it with Session::CreateFromModel, save it; never release it).
/// To fail, it throws (with exceptions; the message of a std::exception is kept) or returns a failed Result
/// (without): Quantize then fails with IPUFLOW_STATUS_CALLBACK and that message.
using QuantMetric = std::function<IPUFLOW_CPP_RESULT(double)(const Model& candidate)>;

namespace detail {
inline void copy_message(const char* text, char* out, size_t size) {
    if (size == 0) return;
    size_t i = 0;
    for (; text[i] != '\0' && i + 1 < size; ++i) out[i] = text[i];
    out[i] = '\0';
}
// The C callback behind QuantConfig::MetricCallback(QuantMetric): no exception may unwind through the Rust library,
// so every failure becomes a message and a non-zero return. The candidate is wrapped without being owned.
inline int32_t quant_metric_trampoline(void* user, const ipuflow_model* candidate, double* metric, char* message,
                                       size_t message_size) {
    Model borrowed(const_cast<ipuflow_model*>(candidate));
    struct Unown {
        Model& m;
        ~Unown() { m.release(); }
    } unown{borrowed};
#if defined(IPUFLOW_NO_EXCEPTIONS)
    Result<double> r = (*static_cast<QuantMetric*>(user))(borrowed);
    if (!r.ok()) {
        copy_message(r.status().message().c_str(), message, message_size);
        return 1;
    }
    *metric = r.value();
    return 0;
#else
    try {
        *metric = (*static_cast<QuantMetric*>(user))(borrowed);
        return 0;
    } catch (const std::exception& e) {
        copy_message(e.what(), message, message_size);
    } catch (...) {
        copy_message("the metric function threw an exception (not a std::exception)", message, message_size);
    }
    return 1;
#endif
}
}  // namespace detail

/// Quantization settings: a preset (IPUFLOW_PRESET_*) and changes to it (ipuflow_quant_config). Setters chain
/// with exceptions and return a Status without; const methods are thread-safe.
class QuantConfig : public detail::Handle<ipuflow_quant_config, ipuflow_quant_config_free> {
public:
    using Handle::Handle;

    /// A configuration from a preset.
    static IPUFLOW_CPP_RESULT(QuantConfig) Create(int32_t preset) {
        ipuflow_quant_config* c = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_quant_config_create(preset, &c));
        return QuantConfig(c);
    }
    static Result<QuantConfig> TryCreate(int32_t preset) {
        return detail::attempt([&] { return Create(preset); });
    }
    IPUFLOW_CPP_SELF(QuantConfig) ActivationType(int32_t qtype) {
        return Check(ipuflow_quant_config_set_activation_type(get(), qtype));
    }
    IPUFLOW_CPP_SELF(QuantConfig) WeightType(int32_t qtype) {
        return Check(ipuflow_quant_config_set_weight_type(get(), qtype));
    }
    IPUFLOW_CPP_SELF(QuantConfig) PerChannel(bool on) {
        return Check(ipuflow_quant_config_set_per_channel(get(), on ? 1 : 0));
    }
    IPUFLOW_CPP_SELF(QuantConfig) ActivationSymmetric(bool on) {
        return Check(ipuflow_quant_config_set_activation_symmetric(get(), on ? 1 : 0));
    }
    IPUFLOW_CPP_SELF(QuantConfig) WeightSymmetric(bool on) {
        return Check(ipuflow_quant_config_set_weight_symmetric(get(), on ? 1 : 0));
    }
    IPUFLOW_CPP_SELF(QuantConfig) PowerOfTwo(bool on) {
        return Check(ipuflow_quant_config_set_power_of_two(get(), on ? 1 : 0));
    }
    IPUFLOW_CPP_SELF(QuantConfig) ConcatSharedScale(bool on) {
        return Check(ipuflow_quant_config_set_concat_shared_scale(get(), on ? 1 : 0));
    }
    IPUFLOW_CPP_SELF(QuantConfig) CpuFusion(bool on) {
        return Check(ipuflow_quant_config_set_cpu_fusion(get(), on ? 1 : 0));
    }
    /// 0 turns the moving average off (global MinMax).
    IPUFLOW_CPP_SELF(QuantConfig) MovingAverage(float constant) {
        return Check(ipuflow_quant_config_set_moving_average(get(), constant));
    }
    /// Calibration cache file (see ipuflow_quant_config_set_calib_cache); an empty string turns it off.
    IPUFLOW_CPP_SELF(QuantConfig) CalibCache(const std::string& path) {
        return Check(ipuflow_quant_config_set_calib_cache(get(), path.empty() ? nullptr : path.c_str()));
    }
    IPUFLOW_CPP_SELF(QuantConfig) CalibCache(const WidePath& path) {
        return Check(ipuflow_quant_config_set_calib_cache_w(get(), path.empty() ? nullptr : path.c_str()));
    }
    /// IPUFLOW_BIAS_TYPE_INT32 or _INT8 (default: INT8 for XINT8, INT32 for the other presets).
    IPUFLOW_CPP_SELF(QuantConfig) BiasType(int32_t bias_type) {
        return Check(ipuflow_quant_config_set_bias_type(get(), bias_type));
    }
    /// IPUFLOW_WEIGHT_RANGE_MINMAX or _MINMSE (default: MINMSE for XINT8, MINMAX for the other presets).
    IPUFLOW_CPP_SELF(QuantConfig) WeightRange(int32_t range) {
        return Check(ipuflow_quant_config_set_weight_range(get(), range));
    }
    /// Cross-layer equalization of Conv chains before calibration (default: on).
    IPUFLOW_CPP_SELF(QuantConfig) Equalization(bool on) {
        return Check(ipuflow_quant_config_set_equalization(get(), on ? 1 : 0));
    }
    /// With equalization, Relu6 between two equalizable convolutions becomes Relu (default: off).
    IPUFLOW_CPP_SELF(QuantConfig) ReplaceClip6Relu(bool on) {
        return Check(ipuflow_quant_config_set_replace_clip6_relu(get(), on ? 1 : 0));
    }
    /// Empirical bias correction on the calibration data (default: on).
    IPUFLOW_CPP_SELF(QuantConfig) BiasCorrection(bool on) {
        return Check(ipuflow_quant_config_set_bias_correction(get(), on ? 1 : 0));
    }
    /// Learned weight rounding on the calibration data, from 16 samples (default: on).
    IPUFLOW_CPP_SELF(QuantConfig) LearnedRounding(bool on) {
        return Check(ipuflow_quant_config_set_learned_rounding(get(), on ? 1 : 0));
    }
    /// Per-node sensitivity in the report JSON's `sensitivity` object (default: off).
    IPUFLOW_CPP_SELF(QuantConfig) Sensitivity(bool on) {
        return Check(ipuflow_quant_config_set_sensitivity(get(), on ? 1 : 0));
    }
    /// Mixed precision until the worst output's SQNR is at least `db` on the calibration data (NaN clears).
    IPUFLOW_CPP_SELF(QuantConfig) TargetSqnr(float db) {
        return Check(ipuflow_quant_config_set_target_sqnr(get(), db));
    }
    /// Mixed precision until top-1 agreement drops by at most `drop`, in [0, 1] (NaN clears).
    IPUFLOW_CPP_SELF(QuantConfig) MaxAgreementDrop(float drop) {
        return Check(ipuflow_quant_config_set_max_agreement_drop(get(), drop));
    }
    /// Floor on the predicted NPU coverage (X2) for mixed precision, in [0, 1] (NaN clears).
    IPUFLOW_CPP_SELF(QuantConfig) MinNpuCoverage(float fraction) {
        return Check(ipuflow_quant_config_set_min_npu_coverage(get(), fraction));
    }
    /// Mixed precision until the host's own metric of the candidate (see QuantMetric) is >= `target`; this object
    /// keeps `metric` (with what it captures) until it is freed or the metric replaced. An empty function clears it.
    /// Quantize calls it on its own thread, once per candidate.
    IPUFLOW_CPP_SELF(QuantConfig) MetricCallback(QuantMetric metric, double target) {
        if (!metric) {
            IPUFLOW_CPP_CHECK(ipuflow_quant_config_set_metric_callback(get(), nullptr, nullptr, 0.0));
            metric_.reset();
            IPUFLOW_CPP_RETURN_SELF;
        }
        auto owned = std::make_unique<QuantMetric>(std::move(metric));
        IPUFLOW_CPP_CHECK(
            ipuflow_quant_config_set_metric_callback(get(), detail::quant_metric_trampoline, owned.get(), target));
        metric_ = std::move(owned);
        IPUFLOW_CPP_RETURN_SELF;
    }
    /// Output-aware activations: mixed-range Concats and small score outputs at the outputs left float (default: on).
    IPUFLOW_CPP_SELF(QuantConfig) OutputAware(bool on) {
        return Check(ipuflow_quant_config_set_output_aware(get(), on ? 1 : 0));
    }
    /// AMD's NPU-mode rescales after pools/ReduceMean/HardSigmoid, LeakyRelu alpha in 1/256 (default: XINT8 on).
    IPUFLOW_CPP_SELF(QuantConfig) NpuRescale(bool on) {
        return Check(ipuflow_quant_config_set_npu_rescale(get(), on ? 1 : 0));
    }
    /// Sigmoid -> HardSigmoid(1/6, 0.5) so the NPU places it; changes the function (default: off).
    IPUFLOW_CPP_SELF(QuantConfig) SigmoidToHardSigmoid(bool on) {
        return Check(ipuflow_quant_config_set_sigmoid_to_hard_sigmoid(get(), on ? 1 : 0));
    }
    /// Learned rounding also tries finer per-tensor weight scales (default: off).
    IPUFLOW_CPP_SELF(QuantConfig) RoundingScaleSearch(bool on) {
        return Check(ipuflow_quant_config_set_rounding_scale_search(get(), on ? 1 : 0));
    }
    /// Learned rounding by decreasing input second moment, GPTQ's act-order (default: off).
    IPUFLOW_CPP_SELF(QuantConfig) RoundingActOrder(bool on) {
        return Check(ipuflow_quant_config_set_rounding_act_order(get(), on ? 1 : 0));
    }
    /// IPUFLOW_CALIB_METHOD_*; `percentile` (in (0, 100]) is used by IPUFLOW_CALIB_METHOD_PERCENTILE only.
    IPUFLOW_CPP_SELF(QuantConfig) CalibMethod(int method, float percentile = 99.999f) {
        return Check(ipuflow_quant_config_set_calib_method(get(), method, percentile));
    }
    IPUFLOW_CPP_SELF(QuantConfig) ExcludeNode(const std::string& name) {
        return Check(ipuflow_quant_config_exclude_node(get(), name.c_str()));
    }
    IPUFLOW_CPP_SELF(QuantConfig) ExcludeOpType(const std::string& op) {
        return Check(ipuflow_quant_config_exclude_op_type(get(), op.c_str()));
    }
    /// Leaves float every node whose name matches the glob `pattern` (`*`, `?`).
    IPUFLOW_CPP_SELF(QuantConfig) ExcludePattern(const std::string& pattern) {
        return Check(ipuflow_quant_config_exclude_pattern(get(), pattern.c_str()));
    }
    /// Leaves float every node on a path from one of `start` to one of `end` (e.g. a detector's post-processing).
    IPUFLOW_CPP_SELF(QuantConfig) ExcludeSubgraph(const std::vector<std::string>& start, const std::vector<std::string>& end) {
        std::vector<const char*> s, e;
        for (const std::string& n : start) s.push_back(n.c_str());
        for (const std::string& n : end) e.push_back(n.c_str());
        return Check(ipuflow_quant_config_exclude_subgraph(get(), s.data(), s.size(), e.data(), e.size()));
    }
    /// Fixes the dynamic graph input `input` to `dims` before preparation.
    IPUFLOW_CPP_SELF(QuantConfig) InputShape(const std::string& input, const std::vector<int64_t>& dims) {
        return Check(ipuflow_quant_config_set_input_shape(get(), input.c_str(), dims.data(), dims.size()));
    }
    IPUFLOW_CPP_SELF(QuantConfig) TensorType(const std::string& tensor, int32_t qtype) {
        return Check(ipuflow_quant_config_set_tensor_type(get(), tensor.c_str(), qtype));
    }
    IPUFLOW_CPP_SELF(QuantConfig) TensorRange(const std::string& tensor, float min, float max) {
        return Check(ipuflow_quant_config_set_tensor_range(get(), tensor.c_str(), min, max));
    }

private:
    IPUFLOW_CPP_SELF(QuantConfig) Check(ipuflow_status s) {
        IPUFLOW_CPP_CHECK(s);
        IPUFLOW_CPP_RETURN_SELF;
    }
    std::unique_ptr<QuantMetric> metric_;
};

/// Image preprocessing with the library's defaults (the anchor protocol); change fields as needed.
inline ipuflow_image_preprocess DefaultImagePreprocess() noexcept {
    ipuflow_image_preprocess p{};
    ipuflow_image_preprocess_init(&p);  // fails only for a null pointer
    return p;
}

/// Loads one image and preprocesses it as the image calibration data does, into `out` (resized to
/// 3 * pre.height * pre.width floats; `pre.height` and `pre.width` must be set). `flip` mirrors it left-right.
inline IPUFLOW_CPP_VOID PreprocessImage(const std::string& path, const ipuflow_image_preprocess& pre, bool flip,
                                        std::vector<float>& out) {
    out.resize(size_t{3} * pre.height * pre.width);
    IPUFLOW_CPP_CHECK(ipuflow_image_load(path.c_str(), &pre, flip ? 1 : 0, out.data(), out.size()));
    IPUFLOW_CPP_RETURN_OK;
}
inline IPUFLOW_CPP_VOID PreprocessImage(const WidePath& path, const ipuflow_image_preprocess& pre, bool flip,
                                        std::vector<float>& out) {
    out.resize(size_t{3} * pre.height * pre.width);
    IPUFLOW_CPP_CHECK(ipuflow_image_load_w(path.c_str(), &pre, flip ? 1 : 0, out.data(), out.size()));
    IPUFLOW_CPP_RETURN_OK;
}

/// One calibration batch being filled (ipuflow_calib_batch), lent to the function of CalibData::FromCallback
/// during its call only; only that thread may use it. Does not own the C batch.
class CalibBatch {
public:
    explicit CalibBatch(ipuflow_calib_batch* batch) noexcept : batch_(batch) {}
    /// The number of model inputs the batch must provide.
    IPUFLOW_CPP_RESULT(size_t) InputCount() const {
        size_t n = 0;
        IPUFLOW_CPP_CHECK(ipuflow_calib_batch_get_input_count(batch_, &n));
        return n;
    }
    /// The name of model input `index`; IPUFLOW_STATUS_OUT_OF_RANGE past the last.
    IPUFLOW_CPP_RESULT(std::string) InputName(size_t index) const {
        const char* name = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_calib_batch_get_input_name(batch_, index, &name));
        return detail::str(name);
    }
    /// Gives `tensor` for input `name`. The tensor is borrowed, not copied (its shape and its data): the Tensor must
    /// stay alive, unmoved and unchanged until the function is called again or Quantize returns.
    IPUFLOW_CPP_VOID SetInput(const std::string& name, const Tensor& tensor) {
        const ipuflow_tensor_view v = tensor.View();
        IPUFLOW_CPP_CHECK(ipuflow_calib_batch_set_input(batch_, name.c_str(), &v));
        IPUFLOW_CPP_RETURN_OK;
    }
    ipuflow_calib_batch* get() const noexcept { return batch_; }

private:
    ipuflow_calib_batch* batch_;
};

/// Fills the next calibration batch with CalibBatch::SetInput and returns true, or returns false when there is no
/// more data. To fail, it throws (with exceptions; the message of a std::exception is kept) or returns a failed
/// Result (without): Quantize then fails with IPUFLOW_STATUS_CALLBACK and that message.
using CalibNext = std::function<IPUFLOW_CPP_RESULT(bool)(CalibBatch& batch)>;

namespace detail {
// The C callback behind CalibData::FromCallback(CalibNext): no exception may unwind through the Rust library, so
// every failure becomes ipuflow_calib_batch_set_error and a negative return.
inline int32_t calib_next_trampoline(void* user, ipuflow_calib_batch* batch) {
    CalibBatch b(batch);
#if defined(IPUFLOW_NO_EXCEPTIONS)
    Result<bool> r = (*static_cast<CalibNext*>(user))(b);
    if (!r.ok()) {
        ipuflow_calib_batch_set_error(batch, r.status().message().c_str());
        return -1;
    }
    return r.value() ? IPUFLOW_CALIB_BATCH : IPUFLOW_CALIB_DONE;
#else
    try {
        return (*static_cast<CalibNext*>(user))(b) ? IPUFLOW_CALIB_BATCH : IPUFLOW_CALIB_DONE;
    } catch (const std::exception& e) {
        ipuflow_calib_batch_set_error(batch, e.what());
    } catch (...) {
        ipuflow_calib_batch_set_error(batch, "the calibration function threw an exception (not a std::exception)");
    }
    return -1;
#endif
}
}  // namespace detail

/// Calibration data (ipuflow_calib_data): in-memory samples, a pull callback, .npy files or an image folder.
/// Not thread-safe: one Quantize at a time per object.
class CalibData : public detail::Handle<ipuflow_calib_data, ipuflow_calib_data_free> {
public:
    using Handle::Handle;

    /// An empty in-memory set; add samples with AddSample.
    static IPUFLOW_CPP_RESULT(CalibData) Create() {
        ipuflow_calib_data* d = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_calib_data_create(&d));
        return CalibData(d);
    }
    /// .npy files, one per batch (or one folder per batch with `<input>.npy` files).
    static IPUFLOW_CPP_RESULT(CalibData) FromNpyDir(const std::string& dir) {
        ipuflow_calib_data* d = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_calib_data_create_from_npy_dir(dir.c_str(), &d));
        return CalibData(d);
    }
    static IPUFLOW_CPP_RESULT(CalibData) FromNpyDir(const WidePath& dir) {
        ipuflow_calib_data* d = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_calib_data_create_from_npy_dir_w(dir.c_str(), &d));
        return CalibData(d);
    }
    /// JPEG/PNG images, one per batch; `pre` null: DefaultImagePreprocess().
    static IPUFLOW_CPP_RESULT(CalibData) FromImageDir(const std::string& dir,
                                                      const ipuflow_image_preprocess* pre = nullptr) {
        ipuflow_calib_data* d = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_calib_data_create_from_image_dir(dir.c_str(), pre, &d));
        return CalibData(d);
    }
    static IPUFLOW_CPP_RESULT(CalibData) FromImageDir(const WidePath& dir,
                                                      const ipuflow_image_preprocess* pre = nullptr) {
        ipuflow_calib_data* d = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_calib_data_create_from_image_dir_w(dir.c_str(), pre, &d));
        return CalibData(d);
    }
    /// Batches pulled from `next` (see CalibNext), which this object keeps (with what it captures) until it is
    /// freed; `batch_count` -1 when unknown (for progress reports only).
    static IPUFLOW_CPP_RESULT(CalibData) FromCallback(CalibNext next, int64_t batch_count = -1) {
        if (!next)
            IPUFLOW_CPP_FAIL(Status(IPUFLOW_STATUS_NULL_ARGUMENT, "CalibData::FromCallback: the function is empty"));
        auto owned = std::make_unique<CalibNext>(std::move(next));
        ipuflow_calib_data* d = nullptr;
        IPUFLOW_CPP_CHECK(
            ipuflow_calib_data_create_from_callback(detail::calib_next_trampoline, owned.get(), batch_count, &d));
        CalibData data(d);
        data.next_ = std::move(owned);
        return data;
    }
    /// `next` and `user` as in ipuflow_calib_next_fn; `batch_count` -1 when unknown.
    static IPUFLOW_CPP_RESULT(CalibData) FromCallback(ipuflow_calib_next_fn next, void* user,
                                                      int64_t batch_count = -1) {
        ipuflow_calib_data* d = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_calib_data_create_from_callback(next, user, batch_count, &d));
        return CalibData(d);
    }
    /// Adds one sample (copied): `tensors[i]` feeds the input named `names[i]`.
    IPUFLOW_CPP_VOID AddSample(const std::vector<std::string>& names, TensorRefs tensors) {
        if (names.size() != tensors.size())
            IPUFLOW_CPP_FAIL(Status(IPUFLOW_STATUS_INVALID_ARGUMENT, "CalibData::AddSample: " +
                                                                         std::to_string(names.size()) + " names but " +
                                                                         std::to_string(tensors.size()) + " tensors"));
        std::vector<const char*> n(names.size());
        std::vector<ipuflow_tensor_view> v(names.size());
        for (size_t i = 0; i < n.size(); ++i) {
            n[i] = names[i].c_str();
            v[i] = tensors[i].View();
        }
        return AddSample(n, v);
    }
    /// The same with C views.
    IPUFLOW_CPP_VOID AddSample(const std::vector<const char*>& names, const std::vector<ipuflow_tensor_view>& views) {
        if (names.size() != views.size())
            IPUFLOW_CPP_FAIL(
                Status(IPUFLOW_STATUS_INVALID_ARGUMENT, "CalibData::AddSample: names and views differ in length"));
        IPUFLOW_CPP_CHECK(ipuflow_calib_data_add_sample(get(), names.data(), views.data(), names.size()));
        IPUFLOW_CPP_RETURN_OK;
    }

    // The 0.1 Try* calls: Result/Status in both modes.
    static Result<CalibData> TryCreate() {
        return detail::attempt([&] { return Create(); });
    }
    static Result<CalibData> TryFromNpyDir(const std::string& dir) {
        return detail::attempt([&] { return FromNpyDir(dir); });
    }
    static Result<CalibData> TryFromImageDir(const std::string& dir, const ipuflow_image_preprocess* pre = nullptr) {
        return detail::attempt([&] { return FromImageDir(dir, pre); });
    }
    static Result<CalibData> TryFromCallback(ipuflow_calib_next_fn next, void* user, int64_t batch_count = -1) {
        return detail::attempt([&] { return FromCallback(next, user, batch_count); });
    }
    Status TryAddSample(const std::vector<const char*>& names, const std::vector<ipuflow_tensor_view>& views) {
        return detail::attempt([&] { return AddSample(names, views); });
    }

private:
    // The function of FromCallback, at a stable address the C data points to (moves keep it); destroyed after
    // nothing can call it any more (the C data never calls it when freed).
    std::unique_ptr<CalibNext> next_;
};

/// Progress of Quantize: (IPUFLOW_QUANT_STAGE_*, done, total or -1); return false to cancel.
using QuantProgress = std::function<bool(int32_t stage, size_t done, int64_t total)>;

namespace detail {
// The progress callback and, with exceptions, what it threw: an exception must not unwind through the Rust
// library, so it cancels the quantization and is rethrown once ipuflow_quantize has returned.
struct QuantProgressCall {
    QuantProgress* f = nullptr;
#if !defined(IPUFLOW_NO_EXCEPTIONS)
    std::exception_ptr thrown;
#endif
};
inline int32_t quant_progress_trampoline(void* user, int32_t stage, size_t done, int64_t total) {
    auto* call = static_cast<QuantProgressCall*>(user);
#if defined(IPUFLOW_NO_EXCEPTIONS)
    return (*call->f)(stage, done, total) ? 0 : 1;
#else
    try {
        return (*call->f)(stage, done, total) ? 0 : 1;
    } catch (...) {
        call->thrown = std::current_exception();
        return 1;
    }
#endif
}
}  // namespace detail

/// Quantizes `model` (see ipuflow_quantize); IPUFLOW_STATUS_CANCELLED when `progress` returned false (with
/// exceptions, an exception thrown by `progress` cancels too and is rethrown). `report_json`, when not null,
/// receives the JSON report.
inline IPUFLOW_CPP_RESULT(Model) Quantize(const Model& model, const QuantConfig& config, CalibData& data,
                                          QuantProgress progress = {}, std::string* report_json = nullptr) {
    ipuflow_model* out = nullptr;
    char* report = nullptr;
    detail::QuantProgressCall call{};
    call.f = &progress;
    const ipuflow_status s = ipuflow_quantize(model.get(), config.get(), data.get(),
                                              progress ? detail::quant_progress_trampoline : nullptr,
                                              progress ? static_cast<void*>(&call) : nullptr, &out,
                                              report_json != nullptr ? &report : nullptr);
    Model result(out);  // owned before anything else can fail (null on failure)
#if !defined(IPUFLOW_NO_EXCEPTIONS)
    if (call.thrown) std::rethrow_exception(call.thrown);
#endif
    IPUFLOW_CPP_CHECK(s);
    if (report_json != nullptr) *report_json = detail::take_string(report);
    return result;
}

inline Result<Model> TryQuantize(const Model& model, const QuantConfig& config, CalibData& data,
                                 QuantProgress progress = {}, std::string* report_json = nullptr) {
    return detail::attempt([&] { return Quantize(model, config, data, std::move(progress), report_json); });
}

// ================================================================================================================
// Evaluator
// ================================================================================================================

/// Compares a model's outputs with a reference model's (e.g. the quantized model with its float model) over
/// samples, per output and by output kind, in constant memory (ipuflow_evaluator). Not thread-safe.
class Evaluator : public detail::Handle<ipuflow_evaluator, ipuflow_evaluator_free> {
public:
    using Handle::Handle;
    static IPUFLOW_CPP_RESULT(Evaluator) Create() {
        ipuflow_evaluator* e = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_evaluator_create(&e));
        return Evaluator(e);
    }
    /// Says what output `output` is (IPUFLOW_OUTPUT_KIND_*) instead of inferring it; before its first Add.
    IPUFLOW_CPP_SELF(Evaluator) SetOutputKind(const std::string& output, int32_t kind) {
        IPUFLOW_CPP_CHECK(ipuflow_evaluator_set_output_kind(get(), output.c_str(), kind));
        IPUFLOW_CPP_RETURN_SELF;
    }
    /// Adds one sample of output `output`: `count` values of the reference and of the evaluated model, of `shape`.
    IPUFLOW_CPP_VOID Add(const std::string& output, const std::vector<int64_t>& shape, const float* reference,
                         const float* other, size_t count) {
        IPUFLOW_CPP_CHECK(
            ipuflow_evaluator_add(get(), output.c_str(), shape.data(), shape.size(), reference, other, count));
        IPUFLOW_CPP_RETURN_OK;
    }
    /// The same from two float tensors of one shape (e.g. the outputs of two sessions' Run).
    IPUFLOW_CPP_VOID Add(const std::string& output, const Tensor& reference, const Tensor& other) {
        if (reference.Shape() != other.Shape())
            IPUFLOW_CPP_FAIL(Status(IPUFLOW_STATUS_TENSOR_MISMATCH,
                                    "Evaluator::Add: output '" + output + "': the two tensors differ in shape"));
        size_t count = 0;
        IPUFLOW_CPP_LET(const float*, ref, reference.Data<float>(&count));
        IPUFLOW_CPP_LET(const float*, oth, other.Data<float>());
        return Add(output, reference.Shape(), ref, oth, count);
    }
    /// The metrics of every output so far, as JSON (see ipuflow_evaluator_to_json).
    IPUFLOW_CPP_RESULT(std::string) ToJson() const {
        char* s = nullptr;
        IPUFLOW_CPP_CHECK(ipuflow_evaluator_to_json(get(), &s));
        return detail::take_string(s);
    }
};

}  // namespace ipuflow

#undef IPUFLOW_CPP_RESULT
#undef IPUFLOW_CPP_VOID
#undef IPUFLOW_CPP_SELF
#undef IPUFLOW_CPP_CHECK
#undef IPUFLOW_CPP_FAIL
#undef IPUFLOW_CPP_LET
#undef IPUFLOW_CPP_TRY
#undef IPUFLOW_CPP_RETURN_OK
#undef IPUFLOW_CPP_RETURN_SELF

#endif  // IPUFLOW_HPP
