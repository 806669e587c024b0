/*
 * The ipuflow_model_* API from C: every success path once, every error path (NULL for each pointer argument, bad
 * bytes, truncated and missing files, missing/short/refused external data, unreadable and unwritable paths), and
 * the contract that outputs are written only on success (each output is pre-filled with a sentinel that must
 * survive a failure).
 *
 * As root, permission bits stop neither reads nor writes, so "unreadable" and "unwritable" are made with a
 * directory where a file is expected, a path under a directory that does not exist, and a file where a directory
 * is expected.
 *
 * Real models: every *.onnx of $IPUFLOW_TEST_SHARED_DIR/models (the repository's ../shared) is loaded, inspected,
 * re-serialized and saved; skipped with the reason when that directory is absent.
 *
 * Hostile paths (POSIX only): FIFOs as model, data file and output; external data escaping through a symlink.
 */
#include "ipuflow.h"
#include "ipf_test.h"
#include "ipf_fs.h"
#include "test_models.h"

#include <stdint.h>

/* A pointer value no allocator returns: outputs must still hold it after a failed call. */
#define SENTINEL_PTR ((void *)(uintptr_t)0x5e5e5e5e)
#define MODEL_SENTINEL ((ipuflow_model *)SENTINEL_PTR)

static const char *tmp; /* the test's scratch directory */

static ipuflow_model *load_bytes_ok(const unsigned char *data, size_t len)
{
    ipuflow_model *m = NULL;
    IPF_CHECK_STATUS(ipuflow_model_load_bytes(data, len, NULL, &m), IPUFLOW_STATUS_OK);
    return m;
}

/* Writes bytes to tmp/name and returns the path. */
static const char *put(const char *name, const void *data, size_t len)
{
    const char *p = ipf_path(tmp, name);
    if (ipf_write_file(p, data, len) != 0)
        ipf_diag("cannot write %s", p);
    return p;
}

/* -------------------------------------------------------------------------------------------------------------- */
/* Loading */

IPF_TEST(load_file_null_arguments)
{
    ipuflow_model *m = MODEL_SENTINEL;
    const char *p = put("identity.onnx", ipf_model_identity, sizeof ipf_model_identity);
    IPF_CHECK_ERROR(ipuflow_model_load_file(NULL, &m), IPUFLOW_STATUS_NULL_ARGUMENT, "path");
    IPF_CHECK(m == MODEL_SENTINEL);
    IPF_CHECK_ERROR(ipuflow_model_load_file(p, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_ERROR(ipuflow_model_load_file(NULL, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "");
}

IPF_TEST(load_file_ok)
{
    ipuflow_model *m = NULL;
    const char *p = put("identity.onnx", ipf_model_identity, sizeof ipf_model_identity);
    IPF_CHECK_STATUS(ipuflow_model_load_file(p, &m), IPUFLOW_STATUS_OK);
    IPF_CHECK(m != NULL);
    ipuflow_model_free(m);
}

IPF_TEST(load_file_bad_paths)
{
    ipuflow_model *m = MODEL_SENTINEL;
    char missing_dir[1024], under_file[1024];
    const char *file = put("plain.onnx", ipf_model_identity, sizeof ipf_model_identity);
    ipf_join(missing_dir, sizeof missing_dir, tmp, "no-such-dir" IPF_SEP "x.onnx");
    ipf_join(under_file, sizeof under_file, file, "x.onnx");

    IPF_CHECK_ERROR(ipuflow_model_load_file("", &m), IPUFLOW_STATUS_INVALID_ARGUMENT, "path");
    IPF_CHECK_ERROR(ipuflow_model_load_file(ipf_path(tmp, "missing.onnx"), &m), IPUFLOW_STATUS_FILE_NOT_FOUND,
                    "missing.onnx");
    IPF_CHECK_ERROR(ipuflow_model_load_file(missing_dir, &m), IPUFLOW_STATUS_FILE_NOT_FOUND, "no-such-dir");
    /* A directory where the file should be: it exists but cannot be read as a file. */
    IPF_CHECK_ERROR(ipuflow_model_load_file(tmp, &m), IPUFLOW_STATUS_FILE_READ, tmp);
    /* A regular file used as a directory (ENOTDIR): nothing at that path can exist. */
    {
        int st = (int)ipuflow_model_load_file(under_file, &m);
        IPF_CHECK(st == IPUFLOW_STATUS_FILE_NOT_FOUND || st == IPUFLOW_STATUS_FILE_READ);
        if (st != IPUFLOW_STATUS_FILE_NOT_FOUND)
            ipf_diag("note: file-as-directory gives %s: %s", ipuflow_status_str(st), ipuflow_last_error());
        IPF_CHECK_CONTAINS(ipuflow_last_error(), "plain.onnx");
    }
    /* Invalid UTF-8 in the path. */
    IPF_CHECK_ERROR(ipuflow_model_load_file("bad-\xff\xfe.onnx", &m), IPUFLOW_STATUS_INVALID_UTF8, "path");
    IPF_CHECK(m == MODEL_SENTINEL);
}

IPF_TEST(load_file_bad_contents)
{
    static const unsigned char garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02};
    static const char text[] = "this is not an ONNX model\n";
    ipuflow_model *m = MODEL_SENTINEL;

    IPF_CHECK_ERROR(ipuflow_model_load_file(put("garbage.onnx", garbage, sizeof garbage), &m),
                    IPUFLOW_STATUS_MODEL_DECODE, "garbage.onnx");
    IPF_CHECK_STATUS(ipuflow_model_load_file(put("text.onnx", text, sizeof text - 1), &m),
                     IPUFLOW_STATUS_MODEL_DECODE);
    /* Truncated in the middle of a field: every proper prefix that cuts a length-delimited field must fail to
     * decode (some prefixes end exactly between fields and are valid, smaller models: those may load). */
    {
        size_t cut, decode_errors = 0;
        for (cut = 1; cut < sizeof ipf_model_identity; cut++) {
            ipuflow_model *t = MODEL_SENTINEL;
            int st = (int)ipuflow_model_load_file(put("truncated.onnx", ipf_model_identity, cut), &t);
            if (st == IPUFLOW_STATUS_OK) {
                IPF_CHECK(t != MODEL_SENTINEL && t != NULL);
                ipuflow_model_free(t);
            } else {
                IPF_CHECK(st == IPUFLOW_STATUS_MODEL_DECODE || st == IPUFLOW_STATUS_MODEL_INVALID);
                IPF_CHECK(t == MODEL_SENTINEL);
                IPF_CHECK(ipuflow_last_error()[0] != '\0');
                decode_errors++;
            }
        }
        /* The half-way cut is inside the graph field. */
        IPF_CHECK_STATUS(
            ipuflow_model_load_file(put("half.onnx", ipf_model_identity, sizeof ipf_model_identity / 2), &m),
            IPUFLOW_STATUS_MODEL_DECODE);
        IPF_CHECK(decode_errors > sizeof ipf_model_identity / 2);
    }
    IPF_CHECK(m == MODEL_SENTINEL);
}

IPF_TEST(load_empty_input)
{
    /* Zero bytes decode as an empty ModelProto: it has no graph. Either refuse it (MODEL_INVALID) or load an empty
     * model; a crash or a non-error with a half-written output is the bug this guards against. */
    ipuflow_model *m = MODEL_SENTINEL;
    int st = (int)ipuflow_model_load_file(put("empty.onnx", "", 0), &m);
    ipf_diag("empty file: %s \"%s\"", ipuflow_status_str(st), ipuflow_last_error());
    if (st == IPUFLOW_STATUS_OK) {
        IPF_CHECK(m != MODEL_SENTINEL && m != NULL);
        ipuflow_model_free(m);
    } else {
        IPF_CHECK(st == IPUFLOW_STATUS_MODEL_INVALID || st == IPUFLOW_STATUS_MODEL_DECODE);
        IPF_CHECK(m == MODEL_SENTINEL);
    }
    m = MODEL_SENTINEL;
    {
        int st2 = (int)ipuflow_model_load_bytes(NULL, 0, NULL, &m);
        IPF_CHECK_INT(st2, ==, st); /* same answer from bytes as from the file */
        if (st2 == IPUFLOW_STATUS_OK)
            ipuflow_model_free(m);
        else
            IPF_CHECK(m == MODEL_SENTINEL);
    }
}

IPF_TEST(load_bytes_errors)
{
    static const unsigned char garbage[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
    ipuflow_model *m = MODEL_SENTINEL;
    IPF_CHECK_ERROR(ipuflow_model_load_bytes(NULL, 10, NULL, &m), IPUFLOW_STATUS_NULL_ARGUMENT, "data");
    IPF_CHECK_ERROR(ipuflow_model_load_bytes(ipf_model_identity, sizeof ipf_model_identity, NULL, NULL),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_STATUS(ipuflow_model_load_bytes(garbage, sizeof garbage, NULL, &m), IPUFLOW_STATUS_MODEL_DECODE);
    IPF_CHECK_STATUS(ipuflow_model_load_bytes(ipf_model_identity, sizeof ipf_model_identity - 3, NULL, &m),
                     IPUFLOW_STATUS_MODEL_DECODE);
    IPF_CHECK_ERROR(ipuflow_model_load_bytes(ipf_model_identity, sizeof ipf_model_identity, "", &m),
                    IPUFLOW_STATUS_INVALID_ARGUMENT, "base_dir");
    IPF_CHECK_ERROR(ipuflow_model_load_bytes(ipf_model_identity, sizeof ipf_model_identity, "\xc3\x28", &m),
                    IPUFLOW_STATUS_INVALID_UTF8, "base_dir");
    IPF_CHECK(m == MODEL_SENTINEL);
}

IPF_TEST(load_bytes_copies_input)
{
    unsigned char copy[sizeof ipf_model_identity];
    ipuflow_model *m;
    uint8_t *data = (uint8_t *)SENTINEL_PTR;
    size_t len = 0;
    memcpy(copy, ipf_model_identity, sizeof copy);
    m = load_bytes_ok(copy, sizeof copy);
    IPF_REQUIRE(m != NULL);
    memset(copy, 0xab, sizeof copy); /* the model must not point into the caller's buffer */
    IPF_CHECK_STATUS(ipuflow_model_serialize(m, &data, &len), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(len, ==, sizeof ipf_model_identity);
    if (data != SENTINEL_PTR) {
        IPF_CHECK(len == sizeof ipf_model_identity && memcmp(data, ipf_model_identity, len) == 0);
        ipuflow_bytes_free(data, len);
    }
    ipuflow_model_free(m);
}

IPF_TEST(load_file_w)
{
    /* UTF-16 paths: NULL, an unpaired surrogate, empty, and a real file (ASCII path widened). */
    static const uint16_t lone_surrogate[] = {'a', 0xd800, '.', 'o', 0};
    static const uint16_t empty[] = {0};
    uint16_t wide[1024];
    ipuflow_model *m = MODEL_SENTINEL;
    const char *p = put("wide.onnx", ipf_model_identity, sizeof ipf_model_identity);
    size_t i;
    IPF_CHECK_ERROR(ipuflow_model_load_file_w(NULL, &m), IPUFLOW_STATUS_NULL_ARGUMENT, "path");
    IPF_CHECK_ERROR(ipuflow_model_load_file_w(lone_surrogate, &m), IPUFLOW_STATUS_INVALID_UTF8, "path");
    IPF_CHECK_ERROR(ipuflow_model_load_file_w(empty, &m), IPUFLOW_STATUS_INVALID_ARGUMENT, "path");
    IPF_CHECK(m == MODEL_SENTINEL);
    for (i = 0; p[i] && i + 1 < sizeof wide / sizeof wide[0]; i++)
        wide[i] = (uint16_t)(unsigned char)p[i];
    wide[i] = 0;
    IPF_CHECK_ERROR(ipuflow_model_load_file_w(wide, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    m = NULL;
    IPF_CHECK_STATUS(ipuflow_model_load_file_w(wide, &m), IPUFLOW_STATUS_OK);
    IPF_CHECK(m != NULL);
    ipuflow_model_free(m);
}

/* -------------------------------------------------------------------------------------------------------------- */
/* External data */

static const float weights[3] = {1.0f, 2.0f, 3.0f};

IPF_TEST(external_data_ok_and_missing)
{
    ipuflow_model *m = MODEL_SENTINEL;
    char dir[1024];
    char model_path[1024];
    ipf_join(dir, sizeof dir, tmp, "ext");
    IPF_REQUIRE(ipf_mkdir(dir) == 0);
    ipf_join(model_path, sizeof model_path, dir, "model.onnx");
    IPF_REQUIRE(ipf_write_file(model_path, ipf_model_external, sizeof ipf_model_external) == 0);

    /* No weights.bin beside the model. */
    IPF_CHECK_ERROR(ipuflow_model_load_file(model_path, &m), IPUFLOW_STATUS_EXTERNAL_DATA, "weights.bin");
    IPF_CHECK(m == MODEL_SENTINEL);
    /* From bytes without a base directory: the data cannot be found. */
    IPF_CHECK_STATUS(ipuflow_model_load_bytes(ipf_model_external, sizeof ipf_model_external, NULL, &m),
                     IPUFLOW_STATUS_EXTERNAL_DATA);
    /* Short data file: 4 of 12 bytes. */
    IPF_REQUIRE(ipf_write_file(ipf_path(dir, "weights.bin"), weights, 4) == 0);
    IPF_CHECK_ERROR(ipuflow_model_load_file(model_path, &m), IPUFLOW_STATUS_EXTERNAL_DATA, "weights.bin");
    /* A directory where the data file should be. */
    remove(ipf_path(dir, "weights.bin"));
    IPF_REQUIRE(ipf_mkdir(ipf_path(dir, "weights.bin")) == 0);
    IPF_CHECK_STATUS(ipuflow_model_load_file(model_path, &m), IPUFLOW_STATUS_EXTERNAL_DATA);
    IPF_CHECK(m == MODEL_SENTINEL);
    ipf_rmtree(ipf_path(dir, "weights.bin"));

    /* Complete data file: loads from the file and from bytes with base_dir. */
    IPF_REQUIRE(ipf_write_file(ipf_path(dir, "weights.bin"), weights, sizeof weights) == 0);
    m = NULL;
    IPF_CHECK_STATUS(ipuflow_model_load_file(model_path, &m), IPUFLOW_STATUS_OK);
    if (m) {
        size_t inits = 0;
        uint64_t bytes = 0;
        IPF_CHECK_STATUS(ipuflow_model_get_counts(m, NULL, &inits, &bytes, NULL, NULL, NULL, NULL),
                         IPUFLOW_STATUS_OK);
        IPF_CHECK_INT(inits, ==, 1);
        IPF_CHECK_INT(bytes, ==, 12);
        ipuflow_model_free(m);
    }
    m = NULL;
    IPF_CHECK_STATUS(ipuflow_model_load_bytes(ipf_model_external, sizeof ipf_model_external, dir, &m),
                     IPUFLOW_STATUS_OK);
    ipuflow_model_free(m);
    /* base_dir that does not exist. */
    m = MODEL_SENTINEL;
    IPF_CHECK_STATUS(
        ipuflow_model_load_bytes(ipf_model_external, sizeof ipf_model_external, ipf_path(tmp, "nope"), &m),
        IPUFLOW_STATUS_EXTERNAL_DATA);
    IPF_CHECK(m == MODEL_SENTINEL);
}

IPF_TEST(external_data_refused_locations)
{
    ipuflow_model *m = MODEL_SENTINEL;
    char dir[1024];
    ipf_join(dir, sizeof dir, tmp, "refused");
    IPF_REQUIRE(ipf_mkdir(dir) == 0);
    /* Make the targets exist, so only the policy can refuse them. */
    IPF_REQUIRE(ipf_write_file(ipf_path(tmp, "weights.bin"), weights, sizeof weights) == 0);
    IPF_CHECK_ERROR(ipuflow_model_load_file(put("refused" IPF_SEP "dotdot.onnx", ipf_model_external_dotdot,
                                                sizeof ipf_model_external_dotdot),
                                            &m),
                    IPUFLOW_STATUS_PATH_REFUSED, "..");
    IPF_CHECK_ERROR(ipuflow_model_load_file(
                        put("refused" IPF_SEP "abs.onnx", ipf_model_external_abs, sizeof ipf_model_external_abs), &m),
                    IPUFLOW_STATUS_PATH_REFUSED, "/etc/hostname");
    IPF_CHECK_STATUS(
        ipuflow_model_load_bytes(ipf_model_external_dotdot, sizeof ipf_model_external_dotdot, dir, &m),
        IPUFLOW_STATUS_PATH_REFUSED);
    IPF_CHECK(m == MODEL_SENTINEL);
}

/* -------------------------------------------------------------------------------------------------------------- */
/* Saving and serializing */

IPF_TEST(save_errors_leave_nothing_behind)
{
    ipuflow_model *m = load_bytes_ok(ipf_model_identity, sizeof ipf_model_identity);
    char dir[1024];
    char file[1024], under_file[1024], missing[1024];
    IPF_REQUIRE(m != NULL);
    ipf_join(dir, sizeof dir, tmp, "save-errors");
    IPF_REQUIRE(ipf_mkdir(dir) == 0);
    ipf_join(file, sizeof file, dir, "a-file");
    IPF_REQUIRE(ipf_write_file(file, "keep", 4) == 0);
    ipf_join(under_file, sizeof under_file, file, "x.onnx");
    ipf_join(missing, sizeof missing, dir, "no-such-dir" IPF_SEP "x.onnx");

    IPF_CHECK_ERROR(ipuflow_model_save(NULL, file), IPUFLOW_STATUS_NULL_ARGUMENT, "model");
    IPF_CHECK_ERROR(ipuflow_model_save(m, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "path");
    IPF_CHECK_ERROR(ipuflow_model_save(m, ""), IPUFLOW_STATUS_INVALID_ARGUMENT, "path");
    IPF_CHECK_ERROR(ipuflow_model_save(m, "\xff.onnx"), IPUFLOW_STATUS_INVALID_UTF8, "path");
    IPF_CHECK_ERROR(ipuflow_model_save(m, missing), IPUFLOW_STATUS_FILE_WRITE, "no-such-dir");
    IPF_CHECK_ERROR(ipuflow_model_save(m, under_file), IPUFLOW_STATUS_FILE_WRITE, "a-file");
    /* The target is a directory: the temporary file is written, the rename fails, the temporary is removed. */
    IPF_CHECK_ERROR(ipuflow_model_save(m, tmp), IPUFLOW_STATUS_FILE_WRITE, tmp);
    IPF_CHECK_STATUS(ipuflow_model_save(m, dir), IPUFLOW_STATUS_FILE_WRITE);
    /* Nothing was left behind: still only a-file, with its old contents. */
    IPF_CHECK_INT(ipf_count_entries(dir), ==, 1);
    {
        size_t len = 0;
        unsigned char *got = ipf_read_file(file, &len);
        IPF_CHECK(got != NULL && len == 4 && memcmp(got, "keep", 4) == 0);
        free(got);
    }
    ipuflow_model_free(m);
}

IPF_TEST(save_and_reload_roundtrip)
{
    ipuflow_model *m = load_bytes_ok(ipf_model_weights, sizeof ipf_model_weights), *back = NULL;
    const char *p;
    char saved_path[1024];
    IPF_REQUIRE(m != NULL);
    ipf_join(saved_path, sizeof saved_path, tmp, "saved.onnx");
    IPF_CHECK_STATUS(ipuflow_model_save(m, saved_path), IPUFLOW_STATUS_OK);
    /* Overwriting an existing file is allowed (atomic replace). */
    IPF_CHECK_STATUS(ipuflow_model_save(m, saved_path), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_model_load_file(saved_path, &back), IPUFLOW_STATUS_OK);
    {
        size_t len = 0;
        unsigned char *got = ipf_read_file(saved_path, &len);
        /* Lossless: the saved file is byte for byte what was loaded. */
        IPF_CHECK(got != NULL && len == sizeof ipf_model_weights && memcmp(got, ipf_model_weights, len) == 0);
        free(got);
    }
    ipuflow_model_free(back);
    p = ipf_path(tmp, "saved_w.onnx");
    {
        uint16_t wide[1024];
        size_t i;
        ipuflow_model *w = NULL;
        for (i = 0; p[i] && i + 1 < sizeof wide / sizeof wide[0]; i++)
            wide[i] = (uint16_t)(unsigned char)p[i];
        wide[i] = 0;
        IPF_CHECK_ERROR(ipuflow_model_save_w(NULL, wide), IPUFLOW_STATUS_NULL_ARGUMENT, "model");
        IPF_CHECK_ERROR(ipuflow_model_save_w(m, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "path");
        IPF_CHECK_STATUS(ipuflow_model_save_w(m, wide), IPUFLOW_STATUS_OK);
        IPF_CHECK_STATUS(ipuflow_model_load_file_w(wide, &w), IPUFLOW_STATUS_OK);
        ipuflow_model_free(w);
    }
    ipuflow_model_free(m);
}

IPF_TEST(save_with_external_data)
{
    ipuflow_model *m = load_bytes_ok(ipf_model_weights, sizeof ipf_model_weights), *back = NULL;
    char dir[1024];
    char model_path[1024];
    IPF_REQUIRE(m != NULL);
    ipf_join(dir, sizeof dir, tmp, "save-ext");
    IPF_REQUIRE(ipf_mkdir(dir) == 0);
    ipf_join(model_path, sizeof model_path, dir, "m.onnx");

    IPF_CHECK_ERROR(ipuflow_model_save_with_external_data(NULL, model_path, "m.data", 0),
                    IPUFLOW_STATUS_NULL_ARGUMENT, "model");
    IPF_CHECK_ERROR(ipuflow_model_save_with_external_data(m, NULL, "m.data", 0), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "path");
    IPF_CHECK_ERROR(ipuflow_model_save_with_external_data(m, model_path, NULL, 0), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "data_location");
    IPF_CHECK_STATUS(ipuflow_model_save_with_external_data(m, model_path, "../m.data", 0),
                     IPUFLOW_STATUS_PATH_REFUSED);
    IPF_CHECK_STATUS(ipuflow_model_save_with_external_data(m, model_path, "/tmp/m.data", 0),
                     IPUFLOW_STATUS_PATH_REFUSED);
    /* An empty location: the documented error for a bad argument value. */
    IPF_CHECK_STATUS(ipuflow_model_save_with_external_data(m, model_path, "", 0), IPUFLOW_STATUS_INVALID_ARGUMENT);
    /* The data file would be the model file itself. */
    IPF_CHECK_STATUS(ipuflow_model_save_with_external_data(m, model_path, "m.onnx", 0),
                     IPUFLOW_STATUS_INVALID_ARGUMENT);
    IPF_CHECK_STATUS(ipuflow_model_save_with_external_data(m, ipf_path(dir, "no-dir" IPF_SEP "m.onnx"), "m.data", 0),
                     IPUFLOW_STATUS_FILE_WRITE);
    /* None of the failures left a file. */
    IPF_CHECK_INT(ipf_count_entries(dir), ==, 0);

    IPF_CHECK_STATUS(ipuflow_model_save_with_external_data(m, model_path, "m.data", 0), IPUFLOW_STATUS_OK);
    IPF_CHECK(ipf_is_file(ipf_path(dir, "m.data")));
    {
        size_t len = 0;
        unsigned char *got = ipf_read_file(ipf_path(dir, "m.data"), &len);
        IPF_CHECK(got != NULL && len >= sizeof weights);
        if (got && len >= sizeof weights)
            IPF_CHECK(memcmp(got, weights, sizeof weights) == 0); /* little-endian float32 */
        free(got);
    }
    IPF_CHECK_STATUS(ipuflow_model_load_file(model_path, &back), IPUFLOW_STATUS_OK);
    if (back) {
        uint64_t bytes = 0;
        IPF_CHECK_STATUS(ipuflow_model_get_counts(back, NULL, NULL, &bytes, NULL, NULL, NULL, NULL),
                         IPUFLOW_STATUS_OK);
        IPF_CHECK_INT(bytes, ==, 12);
    }
    ipuflow_model_free(back);
    /* Data file missing after the fact: the reload fails with EXTERNAL_DATA. */
    remove(ipf_path(dir, "m.data"));
    back = MODEL_SENTINEL;
    IPF_CHECK_ERROR(ipuflow_model_load_file(model_path, &back), IPUFLOW_STATUS_EXTERNAL_DATA, "m.data");
    IPF_CHECK(back == MODEL_SENTINEL);
    ipuflow_model_free(m);
}

IPF_TEST(serialize_errors_and_ok)
{
    ipuflow_model *m = load_bytes_ok(ipf_model_identity, sizeof ipf_model_identity);
    uint8_t *data = (uint8_t *)SENTINEL_PTR;
    size_t len = 12345;
    IPF_REQUIRE(m != NULL);
    IPF_CHECK_ERROR(ipuflow_model_serialize(NULL, &data, &len), IPUFLOW_STATUS_NULL_ARGUMENT, "model");
    IPF_CHECK_ERROR(ipuflow_model_serialize(m, NULL, &len), IPUFLOW_STATUS_NULL_ARGUMENT, "out_data");
    IPF_CHECK_ERROR(ipuflow_model_serialize(m, &data, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out_len");
    IPF_CHECK(data == SENTINEL_PTR && len == 12345);
    IPF_CHECK_STATUS(ipuflow_model_serialize(m, &data, &len), IPUFLOW_STATUS_OK);
    IPF_CHECK(len == sizeof ipf_model_identity && memcmp(data, ipf_model_identity, len) == 0);
    ipuflow_bytes_free(data, len);
    ipuflow_bytes_free(NULL, 0);
    ipuflow_bytes_free(NULL, 99);
    ipuflow_model_free(NULL);
    ipuflow_string_free(NULL);
    ipuflow_model_free(m);
}

/* -------------------------------------------------------------------------------------------------------------- */
/* Inspection */

IPF_TEST(getters_null_model)
{
    const char *s = (const char *)SENTINEL_PTR;
    int64_t v = 77;
    size_t n = 77;
    uint64_t b = 77;
    ipuflow_value_info vi;
    char *json = (char *)SENTINEL_PTR;
    memset(&vi, 0x5e, sizeof vi);
    IPF_CHECK_ERROR(ipuflow_model_get_versions(NULL, &v, &v), IPUFLOW_STATUS_NULL_ARGUMENT, "model");
    IPF_CHECK_ERROR(ipuflow_model_get_producer(NULL, &s, &s, &s, &s), IPUFLOW_STATUS_NULL_ARGUMENT, "model");
    IPF_CHECK_ERROR(ipuflow_model_get_counts(NULL, &n, &n, &b, &n, &n, &n, &n), IPUFLOW_STATUS_NULL_ARGUMENT,
                    "model");
    IPF_CHECK_ERROR(ipuflow_model_get_opset(NULL, 0, &s, &v), IPUFLOW_STATUS_NULL_ARGUMENT, "model");
    IPF_CHECK_ERROR(ipuflow_model_get_op_type(NULL, 0, &s, &n), IPUFLOW_STATUS_NULL_ARGUMENT, "model");
    IPF_CHECK_ERROR(ipuflow_model_get_input(NULL, 0, &vi), IPUFLOW_STATUS_NULL_ARGUMENT, "model");
    IPF_CHECK_ERROR(ipuflow_model_get_output(NULL, 0, &vi), IPUFLOW_STATUS_NULL_ARGUMENT, "model");
    IPF_CHECK_ERROR(ipuflow_model_summary_json(NULL, &json), IPUFLOW_STATUS_NULL_ARGUMENT, "model");
    IPF_CHECK(s == SENTINEL_PTR && v == 77 && n == 77 && b == 77 && json == SENTINEL_PTR);
    IPF_CHECK(vi.name == (const char *)(uintptr_t)0x5e5e5e5e5e5e5e5eULL);
}

IPF_TEST(getters_values)
{
    ipuflow_model *m = load_bytes_ok(ipf_model_identity, sizeof ipf_model_identity);
    int64_t ir = 0, mv = 0;
    const char *pn = NULL, *pv = NULL, *dom = NULL, *gn = NULL;
    size_t nodes = 9, inits = 9, ins = 9, outs = 9, opsets = 9, ops = 9;
    uint64_t bytes = 9;
    IPF_REQUIRE(m != NULL);
    IPF_CHECK_STATUS(ipuflow_model_get_versions(m, &ir, &mv), IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(ir, ==, 8);
    IPF_CHECK_INT(mv, ==, 7);
    IPF_CHECK_STATUS(ipuflow_model_get_versions(m, NULL, NULL), IPUFLOW_STATUS_OK); /* outputs optional */
    IPF_CHECK_STATUS(ipuflow_model_get_producer(m, &pn, &pv, &dom, &gn), IPUFLOW_STATUS_OK);
    IPF_CHECK_STR(pn, "ipuflow-tests");
    IPF_CHECK_STR(pv, "1.0");
    IPF_CHECK_STR(dom, "ai.ipuflow.test");
    IPF_CHECK_STR(gn, "ipf_identity");
    IPF_CHECK_STATUS(ipuflow_model_get_producer(m, NULL, NULL, NULL, NULL), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_model_get_counts(m, &nodes, &inits, &bytes, &ins, &outs, &opsets, &ops),
                     IPUFLOW_STATUS_OK);
    IPF_CHECK_INT(nodes, ==, 1);
    IPF_CHECK_INT(inits, ==, 0);
    IPF_CHECK_INT(bytes, ==, 0);
    IPF_CHECK_INT(ins, ==, 1);
    IPF_CHECK_INT(outs, ==, 1);
    IPF_CHECK_INT(opsets, ==, 1);
    IPF_CHECK_INT(ops, ==, 1);
    IPF_CHECK_STATUS(ipuflow_model_get_counts(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL), IPUFLOW_STATUS_OK);
    ipuflow_model_free(m);
}

IPF_TEST(opset_and_op_type)
{
    ipuflow_model *m = load_bytes_ok(ipf_model_weights, sizeof ipf_model_weights);
    const char *s = (const char *)SENTINEL_PTR;
    int64_t v = 77;
    size_t n = 77;
    IPF_REQUIRE(m != NULL);
    IPF_CHECK_ERROR(ipuflow_model_get_opset(m, 0, NULL, &v), IPUFLOW_STATUS_NULL_ARGUMENT, "out_domain");
    IPF_CHECK_ERROR(ipuflow_model_get_opset(m, 0, &s, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out_version");
    IPF_CHECK_STATUS(ipuflow_model_get_opset(m, 1, &s, &v), IPUFLOW_STATUS_OUT_OF_RANGE);
    IPF_CHECK_STATUS(ipuflow_model_get_opset(m, (size_t)-1, &s, &v), IPUFLOW_STATUS_OUT_OF_RANGE);
    IPF_CHECK(s == SENTINEL_PTR && v == 77);
    IPF_CHECK_STATUS(ipuflow_model_get_opset(m, 0, &s, &v), IPUFLOW_STATUS_OK);
    IPF_CHECK_STR(s, "");
    IPF_CHECK_INT(v, ==, 13);

    s = (const char *)SENTINEL_PTR;
    IPF_CHECK_ERROR(ipuflow_model_get_op_type(m, 0, NULL, &n), IPUFLOW_STATUS_NULL_ARGUMENT, "out_op_type");
    IPF_CHECK_ERROR(ipuflow_model_get_op_type(m, 0, &s, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out_count");
    IPF_CHECK_STATUS(ipuflow_model_get_op_type(m, 2, &s, &n), IPUFLOW_STATUS_OUT_OF_RANGE);
    IPF_CHECK_STATUS(ipuflow_model_get_op_type(m, (size_t)-1, &s, &n), IPUFLOW_STATUS_OUT_OF_RANGE);
    IPF_CHECK(s == SENTINEL_PTR && n == 77);
    /* Sorted by count, descending: Relu x2, then Add x1. */
    IPF_CHECK_STATUS(ipuflow_model_get_op_type(m, 0, &s, &n), IPUFLOW_STATUS_OK);
    IPF_CHECK_STR(s, "Relu");
    IPF_CHECK_INT(n, ==, 2);
    IPF_CHECK_STATUS(ipuflow_model_get_op_type(m, 1, &s, &n), IPUFLOW_STATUS_OK);
    IPF_CHECK_STR(s, "Add");
    IPF_CHECK_INT(n, ==, 1);
    ipuflow_model_free(m);
}

IPF_TEST(inputs_and_outputs)
{
    ipuflow_model *m = load_bytes_ok(ipf_model_identity, sizeof ipf_model_identity);
    ipuflow_model *w = load_bytes_ok(ipf_model_weights, sizeof ipf_model_weights);
    ipuflow_value_info vi, sentinel;
    IPF_REQUIRE(m != NULL && w != NULL);
    memset(&sentinel, 0x5e, sizeof sentinel);
    vi = sentinel;
    IPF_CHECK_ERROR(ipuflow_model_get_input(m, 0, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_ERROR(ipuflow_model_get_output(m, 0, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out");
    IPF_CHECK_STATUS(ipuflow_model_get_input(m, 1, &vi), IPUFLOW_STATUS_OUT_OF_RANGE);
    IPF_CHECK_STATUS(ipuflow_model_get_output(m, 1, &vi), IPUFLOW_STATUS_OUT_OF_RANGE);
    IPF_CHECK_STATUS(ipuflow_model_get_input(m, (size_t)-1, &vi), IPUFLOW_STATUS_OUT_OF_RANGE);
    IPF_CHECK(memcmp(&vi, &sentinel, sizeof vi) == 0);

    IPF_CHECK_STATUS(ipuflow_model_get_input(m, 0, &vi), IPUFLOW_STATUS_OK);
    IPF_CHECK_STR(vi.name, "x");
    IPF_CHECK_INT(vi.kind, ==, IPUFLOW_VALUE_KIND_TENSOR);
    IPF_CHECK_INT(vi.element_type, ==, 1); /* FLOAT */
    IPF_CHECK_INT(vi.rank, ==, 2);
    if (vi.rank == 2 && vi.dims && vi.dim_names) {
        IPF_CHECK_INT(vi.dims[0], ==, -1);
        IPF_CHECK_STR(vi.dim_names[0], "batch");
        IPF_CHECK_INT(vi.dims[1], ==, 3);
        IPF_CHECK(vi.dim_names[1] == NULL);
    } else {
        IPF_CHECK(vi.dims != NULL && vi.dim_names != NULL);
    }
    IPF_CHECK_STATUS(ipuflow_model_get_output(m, 0, &vi), IPUFLOW_STATUS_OK);
    IPF_CHECK_STR(vi.name, "y");

    /* Initializers are not inputs; an output without shape has rank -1 and NULL arrays. */
    {
        size_t ins = 9, outs = 9;
        IPF_CHECK_STATUS(ipuflow_model_get_counts(w, NULL, NULL, NULL, &ins, &outs, NULL, NULL), IPUFLOW_STATUS_OK);
        IPF_CHECK_INT(ins, ==, 1);
        IPF_CHECK_INT(outs, ==, 2);
    }
    IPF_CHECK_STATUS(ipuflow_model_get_output(w, 0, &vi), IPUFLOW_STATUS_OK);
    IPF_CHECK_STR(vi.name, "z");
    IPF_CHECK_INT(vi.rank, ==, -1);
    IPF_CHECK(vi.dims == NULL && vi.dim_names == NULL);
    IPF_CHECK_STATUS(ipuflow_model_get_output(w, 1, &vi), IPUFLOW_STATUS_OK);
    IPF_CHECK_STR(vi.name, "z2");
    IPF_CHECK_INT(vi.rank, ==, 2);
    ipuflow_model_free(m);
    ipuflow_model_free(w);
}

IPF_TEST(summary_json)
{
    ipuflow_model *m = load_bytes_ok(ipf_model_identity, sizeof ipf_model_identity);
    char *json = (char *)SENTINEL_PTR;
    IPF_REQUIRE(m != NULL);
    IPF_CHECK_ERROR(ipuflow_model_summary_json(m, NULL), IPUFLOW_STATUS_NULL_ARGUMENT, "out_json");
    IPF_CHECK_STATUS(ipuflow_model_summary_json(m, &json), IPUFLOW_STATUS_OK);
    IPF_REQUIRE(json != NULL && json != SENTINEL_PTR);
    IPF_CHECK(json[0] == '{');
    IPF_CHECK_CONTAINS(json, "ipuflow-tests");
    IPF_CHECK_CONTAINS(json, "batch");
    IPF_CHECK_CONTAINS(json, "Identity");
    ipuflow_string_free(json);
    ipuflow_model_free(m);
}

/* -------------------------------------------------------------------------------------------------------------- */
/* Real models from ../shared/models */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void check_real_model(const char *path)
{
    ipuflow_model *m = NULL, *again = NULL;
    size_t nodes = 0, ins = 0, outs = 0, opsets = 0, ops = 0, inits = 0, len = 0, i;
    uint64_t bytes = 0;
    uint8_t *data = NULL;
    char *json1 = NULL, *json2 = NULL;
    ipuflow_value_info vi;
    const char *saved = ipf_path(tmp, "real-resaved.onnx");

    ipf_diag("model %s", path);
    IPF_CHECK_STATUS(ipuflow_model_load_file(path, &m), IPUFLOW_STATUS_OK);
    if (!m)
        return;
    IPF_CHECK_STATUS(ipuflow_model_get_counts(m, &nodes, &inits, &bytes, &ins, &outs, &opsets, &ops),
                     IPUFLOW_STATUS_OK);
    IPF_CHECK(nodes > 0 && ins > 0 && outs > 0 && opsets > 0 && ops > 0 && inits > 0 && bytes > 0);
    for (i = 0; i < ins; i++)
        IPF_CHECK_STATUS(ipuflow_model_get_input(m, i, &vi), IPUFLOW_STATUS_OK);
    for (i = 0; i < outs; i++)
        IPF_CHECK_STATUS(ipuflow_model_get_output(m, i, &vi), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_model_get_input(m, ins, &vi), IPUFLOW_STATUS_OUT_OF_RANGE);
    IPF_CHECK_STATUS(ipuflow_model_summary_json(m, &json1), IPUFLOW_STATUS_OK);
    /* Serialize, reload from the bytes, save, reload from the file: the summary never changes. */
    IPF_CHECK_STATUS(ipuflow_model_serialize(m, &data, &len), IPUFLOW_STATUS_OK);
    IPF_CHECK_STATUS(ipuflow_model_load_bytes(data, len, NULL, &again), IPUFLOW_STATUS_OK);
    ipuflow_bytes_free(data, len);
    IPF_CHECK_STATUS(ipuflow_model_save(again, saved), IPUFLOW_STATUS_OK);
    ipuflow_model_free(again);
    again = NULL;
    IPF_CHECK_STATUS(ipuflow_model_load_file(saved, &again), IPUFLOW_STATUS_OK);
    if (again) {
        IPF_CHECK_STATUS(ipuflow_model_summary_json(again, &json2), IPUFLOW_STATUS_OK);
        if (json1 && json2)
            IPF_CHECK_STR(json1, json2);
    }
    remove(saved);
    ipuflow_string_free(json1);
    ipuflow_string_free(json2);
    ipuflow_model_free(again);
    ipuflow_model_free(m);
}

/* -------------------------------------------------------------------------------------------------------------- */
/* Hostile paths (POSIX): a FIFO where a model, a data file or an output is expected is an error, never a wait or
 * a replaced node; external data that leaves the model's folder through a symlink is refused. */

#ifndef _WIN32
static int is_fifo(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISFIFO(st.st_mode);
}

IPF_TEST(hostile_fifos_and_symlinks)
{
    ipuflow_model *m = MODEL_SENTINEL;
    char dir[1024], outside[1024], model_path[1024], fifo[1024];
    ipf_join(dir, sizeof dir, tmp, "hostile");
    ipf_join(outside, sizeof outside, tmp, "hostile-outside");
    IPF_REQUIRE(ipf_mkdir(dir) == 0 && ipf_mkdir(outside) == 0);
    ipf_join(fifo, sizeof fifo, dir, "pipe.onnx");
    IPF_REQUIRE(mkfifo(fifo, 0644) == 0);

    /* Before the fix these blocked in open() until a writer appeared: forever. */
    IPF_CHECK_ERROR(ipuflow_model_load_file(fifo, &m), IPUFLOW_STATUS_FILE_READ, "FIFO");
    IPF_CHECK(m == MODEL_SENTINEL);

    ipf_join(model_path, sizeof model_path, dir, "model.onnx");
    IPF_REQUIRE(ipf_write_file(model_path, ipf_model_external, sizeof ipf_model_external) == 0);
    IPF_REQUIRE(mkfifo(ipf_path(dir, "weights.bin"), 0644) == 0);
    IPF_CHECK_ERROR(ipuflow_model_load_file(model_path, &m), IPUFLOW_STATUS_EXTERNAL_DATA, "FIFO");
    remove(ipf_path(dir, "weights.bin"));

    /* weights.bin is a symlink to a real file outside the model's folder: ONNX Runtime 1.32 refuses it too. */
    IPF_REQUIRE(ipf_write_file(ipf_path(outside, "weights.bin"), weights, sizeof weights) == 0);
    IPF_REQUIRE(symlink(ipf_path(outside, "weights.bin"), ipf_path(dir, "weights.bin")) == 0);
    IPF_CHECK_ERROR(ipuflow_model_load_file(model_path, &m), IPUFLOW_STATUS_PATH_REFUSED,
                    "escapes model directory");
    IPF_CHECK_STATUS(ipuflow_model_load_bytes(ipf_model_external, sizeof ipf_model_external, dir, &m),
                     IPUFLOW_STATUS_PATH_REFUSED);
    IPF_CHECK(m == MODEL_SENTINEL);

    /* Saving over a FIFO: refused, the FIFO stays, no temporary file is left. */
    m = load_bytes_ok(ipf_model_identity, sizeof ipf_model_identity);
    IPF_REQUIRE(m != NULL);
    IPF_CHECK_ERROR(ipuflow_model_save(m, fifo), IPUFLOW_STATUS_FILE_WRITE, "FIFO");
    IPF_CHECK(is_fifo(fifo));
    IPF_CHECK_INT(ipf_count_entries(dir), ==, 3); /* pipe.onnx, model.onnx, weights.bin */
    ipuflow_model_free(m);
}
#endif

IPF_TEST(real_models_from_shared)
{
    const char *shared = ipf_env("IPUFLOW_TEST_SHARED_DIR");
    char models[1024];
    DIR *d;
    struct dirent *e;
    int n = 0;
    if (!shared)
        IPF_SKIP_DATA("IPUFLOW_TEST_SHARED_DIR is not set (no ../shared beside the repository)");
    ipf_join(models, sizeof models, shared, "models");
    d = opendir(models);
    if (!d)
        IPF_SKIP_DATA("no models directory in IPUFLOW_TEST_SHARED_DIR");
    while ((e = readdir(d)) != NULL) {
        if (!ends_with(e->d_name, ".onnx"))
            continue;
        check_real_model(ipf_path(models, e->d_name));
        n++;
    }
    closedir(d);
    if (n == 0)
        IPF_SKIP_DATA("no *.onnx in the shared models directory");
}

int main(void)
{
    tmp = ipf_mkdtemp("model");
    if (!tmp) {
        printf("Bail out! cannot create a temporary directory\n");
        return 1;
    }
    IPF_RUN(load_file_null_arguments);
    IPF_RUN(load_file_ok);
    IPF_RUN(load_file_bad_paths);
    IPF_RUN(load_file_bad_contents);
    IPF_RUN(load_empty_input);
    IPF_RUN(load_bytes_errors);
    IPF_RUN(load_bytes_copies_input);
    IPF_RUN(load_file_w);
    IPF_RUN(external_data_ok_and_missing);
    IPF_RUN(external_data_refused_locations);
    IPF_RUN(save_errors_leave_nothing_behind);
    IPF_RUN(save_and_reload_roundtrip);
    IPF_RUN(save_with_external_data);
    IPF_RUN(serialize_errors_and_ok);
    IPF_RUN(getters_null_model);
    IPF_RUN(getters_values);
    IPF_RUN(opset_and_op_type);
    IPF_RUN(inputs_and_outputs);
    IPF_RUN(summary_json);
#ifndef _WIN32
    IPF_RUN(hostile_fifos_and_symlinks);
#endif
    IPF_RUN(real_models_from_shared);
    ipf_rmtree(tmp);
    return ipf_done();
}
