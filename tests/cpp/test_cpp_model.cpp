// The C++ wrapper include/ipuflow.hpp: RAII ownership (move-only handles, get/release/reset), exceptions carrying
// the status code and the message, the Try* calls returning Result/Error, and the model API through it.
#include "ipuflow.hpp"

#include <cstdio>
#include <string>
#include <type_traits>
#include <vector>

#include "ipf_test.h"
#include "ipf_fs.h"
#include "test_models.h"

static const char* tmp;

static_assert(!std::is_copy_constructible<ipuflow::Model>::value, "Model is move-only");
static_assert(!std::is_copy_assignable<ipuflow::Model>::value, "Model is move-only");
static_assert(std::is_nothrow_move_constructible<ipuflow::Model>::value, "Model moves without throwing");
static_assert(std::is_nothrow_move_assignable<ipuflow::Model>::value, "Model moves without throwing");
static_assert(std::is_base_of<std::exception, ipuflow::Exception>::value, "Exception is a std::exception");

IPF_TEST(version_matches) {
    IPF_CHECK_INT(ipuflow::Version(), ==, IPUFLOW_VERSION_NUMBER);
    IPF_CHECK(ipuflow::VersionMatches());
}

IPF_TEST(quant_config_calib_method_and_cache) {
    ipuflow::QuantConfig c = ipuflow::QuantConfig::Create(IPUFLOW_PRESET_XINT8);
    c.CalibMethod(IPUFLOW_CALIB_METHOD_MINMSE).CalibCache(ipf_path(tmp, "x.calib")).CalibCache("");
    c.CalibMethod(IPUFLOW_CALIB_METHOD_PERCENTILE, 99.99f);
    bool thrown = false;
    try {
        c.CalibMethod(42);
    } catch (const ipuflow::Exception& e) {
        thrown = true;
        IPF_CHECK_INT(e.code(), ==, IPUFLOW_STATUS_INVALID_ENUM);
        IPF_CHECK_CONTAINS(e.what(), "method");
    }
    IPF_CHECK(thrown);
    thrown = false;
    try {
        c.CalibMethod(IPUFLOW_CALIB_METHOD_PERCENTILE, 0.0f);
    } catch (const ipuflow::Exception& e) {
        thrown = true;
        IPF_CHECK_INT(e.code(), ==, IPUFLOW_STATUS_INVALID_ARGUMENT);
    }
    IPF_CHECK(thrown);
}

IPF_TEST(exception_carries_code_and_message) {
    std::string missing = ipf_path(tmp, "missing.onnx");
    bool thrown = false;
    try {
        ipuflow::Model m = ipuflow::Model::Load(missing);
        (void)m;
    } catch (const ipuflow::Exception& e) {
        thrown = true;
        IPF_CHECK_INT(e.code(), ==, IPUFLOW_STATUS_FILE_NOT_FOUND);
        IPF_CHECK_CONTAINS(e.what(), "missing.onnx");
        IPF_CHECK_STR(e.error().code_name(), "IPUFLOW_STATUS_FILE_NOT_FOUND");
        IPF_CHECK_STR(e.error().message().c_str(), e.what());
    }
    IPF_CHECK(thrown);

    // Caught as std::exception too.
    thrown = false;
    try {
        static const unsigned char garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
        (void)ipuflow::Model::FromBytes(garbage, sizeof garbage);
    } catch (const std::exception& e) {
        thrown = true;
        IPF_CHECK(std::string(e.what()).size() > 0);
    }
    IPF_CHECK(thrown);
}

IPF_TEST(try_calls_return_errors) {
    auto r = ipuflow::Model::TryLoad(ipf_path(tmp, "missing.onnx"));
    IPF_CHECK(!r.ok());
    IPF_CHECK(!r);
    IPF_CHECK_INT(r.error().code(), ==, IPUFLOW_STATUS_FILE_NOT_FOUND);
    IPF_CHECK_CONTAINS(r.error().message().c_str(), "missing.onnx");

    auto ok = ipuflow::Model::TryFromBytes(ipf_model_identity, sizeof ipf_model_identity);
    IPF_REQUIRE(ok.ok());
    IPF_CHECK(ok.error().ok());
    ipuflow::Model m = std::move(ok).value();
    IPF_CHECK(static_cast<bool>(m));
    ipuflow::Error e = m.TrySave(ipf_path(tmp, "no-such-dir" IPF_SEP "x.onnx"));
    IPF_CHECK_INT(e.code(), ==, IPUFLOW_STATUS_FILE_WRITE);
    IPF_CHECK(!e.ok());
    IPF_CHECK(m.TrySave(ipf_path(tmp, "try-saved.onnx")).ok());
}

IPF_TEST(raii_move_release_reset) {
    ipuflow::Model a = ipuflow::Model::FromBytes(ipf_model_identity, sizeof ipf_model_identity);
    ipuflow_model* raw = a.get();
    IPF_REQUIRE(raw != nullptr);
    ipuflow::Model b = std::move(a);
    IPF_CHECK(a.get() == nullptr);  // NOLINT: checking the moved-from state is the point
    IPF_CHECK(b.get() == raw);
    ipuflow::Model c;
    IPF_CHECK(!c);
    c = std::move(b);
    IPF_CHECK(c.get() == raw && b.get() == nullptr);  // NOLINT
    c = std::move(c);                                  // self-move keeps the handle
    IPF_CHECK(c.get() == raw);
    // release() hands ownership back to C; the C side frees it.
    ipuflow_model* released = c.release();
    IPF_CHECK(released == raw && c.get() == nullptr);
    ipuflow_model_free(released);
    // reset() frees the old handle and adopts a new one.
    ipuflow::Model d = ipuflow::Model::FromBytes(ipf_model_weights, sizeof ipf_model_weights);
    ipuflow_model* other = nullptr;
    IPF_CHECK_STATUS(ipuflow_model_load_bytes(ipf_model_identity, sizeof ipf_model_identity, nullptr, &other),
                     IPUFLOW_STATUS_OK);
    d.reset(other);
    IPF_CHECK(d.get() == other);
    d.reset();
    IPF_CHECK(!d);
    // Valgrind / LSan check that nothing above leaked or was freed twice.
}

IPF_TEST(model_inspection) {
    ipuflow::Model m = ipuflow::Model::FromBytes(ipf_model_identity, sizeof ipf_model_identity);
    IPF_CHECK_INT(m.IrVersion(), ==, 8);
    std::string producer = m.ProducerName();  // keep it alive: the check macro holds a pointer into it
    IPF_CHECK_STR(producer.c_str(), "ipuflow-tests");
    ipuflow::ModelCounts c = m.Counts();
    IPF_CHECK_INT(c.nodes, ==, 1);
    IPF_CHECK_INT(c.inputs, ==, 1);
    IPF_CHECK_INT(c.outputs, ==, 1);
    auto opsets = m.Opsets();
    IPF_REQUIRE(opsets.size() == 1);
    IPF_CHECK_STR(opsets[0].first.c_str(), "");
    IPF_CHECK_INT(opsets[0].second, ==, 13);
    auto ops = m.OpTypes();
    IPF_REQUIRE(ops.size() == 1);
    IPF_CHECK_STR(ops[0].first.c_str(), "Identity");
    auto inputs = m.Inputs();
    IPF_REQUIRE(inputs.size() == 1);
    IPF_CHECK_STR(inputs[0].name.c_str(), "x");
    IPF_CHECK(inputs[0].has_shape);
    IPF_REQUIRE(inputs[0].shape.size() == 2);
    IPF_CHECK_INT(inputs[0].shape[0].size, ==, -1);
    IPF_CHECK_STR(inputs[0].shape[0].name.c_str(), "batch");
    IPF_CHECK_INT(inputs[0].shape[1].size, ==, 3);

    ipuflow::Model w = ipuflow::Model::FromBytes(ipf_model_weights, sizeof ipf_model_weights);
    auto outputs = w.Outputs();
    IPF_REQUIRE(outputs.size() == 2);
    IPF_CHECK(!outputs[0].has_shape);  // z has no shape
    IPF_CHECK(outputs[1].has_shape);

    std::string json = m.SummaryJson();
    IPF_CHECK_CONTAINS(json.c_str(), "Identity");
}

IPF_TEST(serialize_save_reload) {
    ipuflow::Model m = ipuflow::Model::FromBytes(ipf_model_weights, sizeof ipf_model_weights);
    std::vector<uint8_t> bytes = m.Serialize();
    IPF_CHECK(bytes == std::vector<uint8_t>(ipf_model_weights, ipf_model_weights + sizeof ipf_model_weights));
    std::string path = ipf_path(tmp, "cpp-saved.onnx");
    m.Save(path);
    ipuflow::Model back = ipuflow::Model::Load(path);
    IPF_CHECK(back.Serialize() == bytes);
    std::string ext = ipf_path(tmp, "cpp-ext.onnx");
    m.SaveWithExternalData(ext, "cpp-ext.data", 0);
    ipuflow::Model back2 = ipuflow::Model::Load(ext);
    IPF_CHECK_INT(back2.Counts().initializer_bytes, ==, 12);
    bool thrown = false;
    try {
        m.SaveWithExternalData(ext, "../escape.data", 0);
    } catch (const ipuflow::Exception& e) {
        thrown = true;
        IPF_CHECK_INT(e.code(), ==, IPUFLOW_STATUS_PATH_REFUSED);
    }
    IPF_CHECK(thrown);
}

int main() {
    tmp = ipf_mkdtemp("cpp");
    if (!tmp) {
        std::printf("Bail out! cannot create a temporary directory\n");
        return 1;
    }
    IPF_RUN(version_matches);
    IPF_RUN(exception_carries_code_and_message);
    IPF_RUN(quant_config_calib_method_and_cache);
    IPF_RUN(try_calls_return_errors);
    IPF_RUN(raii_move_release_reset);
    IPF_RUN(model_inspection);
    IPF_RUN(serialize_save_reload);
    ipf_rmtree(tmp);
    return ipf_done();
}
