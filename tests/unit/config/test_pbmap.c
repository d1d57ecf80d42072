/*
 * test_pbmap.c - unit tests of the generic config mapper (src/config/pbmap.c): every scalar
 * type with its coercions and range checks, enums, oneofs, maps, repeated fields, JSON names,
 * the well-known types (Duration, Timestamp, wrappers, Struct, Any, TypedStruct), error paths
 * and error collection, and the two Envoy bootstraps of docs/research/xds-subset.md (2.1 with
 * Envoy's MCP filters and cluster, 2.2 ADS) from tests/unit/data. Single-threaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <math.h>

#include "common/errors.h"
#include "common/mem.h"
#include "config/pbmap.h"
#include "config/yaml_tree.h"

#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"
#include "envoy/config/cluster/v3/cluster.pb-c.h"
#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/extensions/clusters/mcp_multicluster/v3/cluster.pb-c.h"
#include "envoy/extensions/filters/http/mcp_router/v3/mcp_router.pb-c.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb-c.h"
#include "envoy/extensions/upstreams/http/v3/http_protocol_options.pb-c.h"
#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "mcplex/extensions/clusters/mcp/v1/mcp.pb-c.h"
#include "xds/type/v3/typed_struct.pb-c.h"

typedef Mcplex__Extensions__Clusters__Mcp__V1__McpBackend mcp_backend_t;
typedef Mcplex__Extensions__Clusters__Mcp__V1__McpTarget mcp_target_t;
#define MCP_BACKEND_DESC (&mcplex__extensions__clusters__mcp__v1__mcp_backend__descriptor)
#define MCP_TARGET_DESC (&mcplex__extensions__clusters__mcp__v1__mcp_target__descriptor)
#define BOOTSTRAP_DESC (&envoy__config__bootstrap__v3__bootstrap__descriptor)
#define MCP_BACKEND_URL "type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend"
#define MCP_ENUM(x) MCPLEX__EXTENSIONS__CLUSTERS__MCP__V1__##x
#define CLUSTER_ENUM(x) ENVOY__CONFIG__CLUSTER__V3__CLUSTER__##x
#define HCM_ENUM(x) \
    ENVOY__EXTENSIONS__FILTERS__NETWORK__HTTP_CONNECTION_MANAGER__V3__HTTP_CONNECTION_MANAGER__##x

/* ---- a hand-written descriptor with every scalar type (no .proto in api/ has them all) ------ */

typedef struct test_by_id_entry {
    ProtobufCMessage base;
    int32_t key;
    char *value;
} test_by_id_entry_t;

typedef struct test_flags_entry {
    ProtobufCMessage base;
    protobuf_c_boolean key;
    protobuf_c_boolean value;
} test_flags_entry_t;

typedef struct test_scalars {
    ProtobufCMessage base;
    int32_t i32;
    int64_t i64;
    uint32_t u32;
    uint64_t u64;
    int32_t s32;
    int64_t s64;
    uint32_t f32;
    uint64_t f64;
    int32_t sf32;
    int64_t sf64;
    float fl;
    double db;
    protobuf_c_boolean b;
    char *str;
    ProtobufCBinaryData by;
    protobuf_c_boolean has_opt_i32; /* a proto2-style optional scalar */
    int32_t opt_i32;
    size_t n_r_i64;
    int64_t *r_i64;
    size_t n_r_str;
    char **r_str;
    size_t n_by_id;
    test_by_id_entry_t **by_id;
    size_t n_flags;
    test_flags_entry_t **flags;
} test_scalars_t;

static const ProtobufCMessageDescriptor test_scalars_desc;
static const ProtobufCMessageDescriptor test_by_id_entry_desc;
static const ProtobufCMessageDescriptor test_flags_entry_desc;

static void
test_scalars_init(ProtobufCMessage *m)
{
    memset(m, 0, sizeof(test_scalars_t));
    m->descriptor = &test_scalars_desc;
    ((test_scalars_t *)m)->str = (char *)protobuf_c_empty_string;
}

static void
test_by_id_entry_init(ProtobufCMessage *m)
{
    memset(m, 0, sizeof(test_by_id_entry_t));
    m->descriptor = &test_by_id_entry_desc;
    ((test_by_id_entry_t *)m)->value = (char *)protobuf_c_empty_string;
}

static void
test_flags_entry_init(ProtobufCMessage *m)
{
    memset(m, 0, sizeof(test_flags_entry_t));
    m->descriptor = &test_flags_entry_desc;
}

#define TF(name, id, label, type, quant, st, member, desc, def) \
    {name, id, label, type, quant, offsetof(st, member), desc, def, 0, 0, NULL, NULL}
#define TF1(name, id, type, member) \
    TF(name, id, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_##type, 0, test_scalars_t, member, NULL, NULL)
#define TFR(name, id, type, member, desc) \
    TF(name, id, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_##type, offsetof(test_scalars_t, n_##member), \
       test_scalars_t, member, desc, NULL)

static const ProtobufCFieldDescriptor test_by_id_entry_fields[] = {
    TF("key", 1, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_INT32, 0, test_by_id_entry_t, key, NULL, NULL),
    TF("value", 2, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_STRING, 0, test_by_id_entry_t, value, NULL,
       &protobuf_c_empty_string),
};
static const ProtobufCFieldDescriptor test_flags_entry_fields[] = {
    TF("key", 1, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_BOOL, 0, test_flags_entry_t, key, NULL, NULL),
    TF("value", 2, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_BOOL, 0, test_flags_entry_t, value, NULL, NULL),
};
static const ProtobufCFieldDescriptor test_scalars_fields[] = {
    TF1("i32", 1, INT32, i32),
    TF1("i64", 2, INT64, i64),
    TF1("u32", 3, UINT32, u32),
    TF1("u64", 4, UINT64, u64),
    TF1("s32", 5, SINT32, s32),
    TF1("s64", 6, SINT64, s64),
    TF1("f32", 7, FIXED32, f32),
    TF1("f64", 8, FIXED64, f64),
    TF1("sf32", 9, SFIXED32, sf32),
    TF1("sf64", 10, SFIXED64, sf64),
    TF1("fl", 11, FLOAT, fl),
    TF1("db", 12, DOUBLE, db),
    TF1("b", 13, BOOL, b),
    TF("str", 14, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_STRING, 0, test_scalars_t, str, NULL,
       &protobuf_c_empty_string),
    TF1("by", 15, BYTES, by),
    TF("opt_i32", 16, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_INT32, offsetof(test_scalars_t, has_opt_i32),
       test_scalars_t, opt_i32, NULL, NULL),
    TFR("r_i64", 17, INT64, r_i64, NULL),
    TFR("r_str", 18, STRING, r_str, NULL),
    TFR("by_id", 19, MESSAGE, by_id, &test_by_id_entry_desc),
    TFR("flags", 20, MESSAGE, flags, &test_flags_entry_desc),
};
static const unsigned test_entry_by_name[] = {0, 1};
/* b by by_id db f32 f64 fl flags i32 i64 opt_i32 r_i64 r_str s32 s64 sf32 sf64 str u32 u64 */
static const unsigned test_scalars_by_name[] = {12, 14, 18, 11, 6, 7, 10, 19, 0, 1,
                                                15, 16, 17, 4, 5, 8, 9, 13, 2, 3};
static const ProtobufCIntRange test_entry_ranges[] = {{1, 0}, {0, 2}};
static const ProtobufCIntRange test_scalars_ranges[] = {{1, 0}, {0, 20}};

static const ProtobufCMessageDescriptor test_by_id_entry_desc = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "mcplex.test.Scalars.ByIdEntry", "ByIdEntry", "TestByIdEntry",
    "mcplex.test", sizeof(test_by_id_entry_t), 2, test_by_id_entry_fields, test_entry_by_name, 1,
    test_entry_ranges, test_by_id_entry_init, NULL, NULL, NULL};
static const ProtobufCMessageDescriptor test_flags_entry_desc = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "mcplex.test.Scalars.FlagsEntry", "FlagsEntry", "TestFlagsEntry",
    "mcplex.test", sizeof(test_flags_entry_t), 2, test_flags_entry_fields, test_entry_by_name, 1,
    test_entry_ranges, test_flags_entry_init, NULL, NULL, NULL};
static const ProtobufCMessageDescriptor test_scalars_desc = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "mcplex.test.Scalars", "Scalars", "TestScalars", "mcplex.test",
    sizeof(test_scalars_t), 20, test_scalars_fields, test_scalars_by_name, 1, test_scalars_ranges,
    test_scalars_init, NULL, NULL, NULL};

/* ---- helpers ------------------------------------------------------------------------------ */

typedef struct map_result {
    ProtobufCMessage *msg;
    char *errors; /* joined with "\n"; "" when none */
    size_t count;
} map_result_t;

static map_result_t
map_yaml(const ProtobufCMessageDescriptor *desc, const char *yaml, const char *path, int flags)
{
    map_result_t r = {NULL, NULL, 0};
    mcplex_errors_t errs;
    cJSON *json;

    mcplex_errors_init(&errs);
    json = mcplex_yaml_parse(yaml, strlen(yaml), "test.yaml", &errs);
    if (json == NULL) {
        char *all = mcplex_errors_join(&errs, "\n");

        fail_msg("YAML error: %s", all);
    }
    r.msg = mcplex_pbmap_from_json(json, desc, path, flags, &errs);
    r.errors = mcplex_errors_join(&errs, "\n");
    r.count = errs.count;
    cJSON_Delete(json);
    mcplex_errors_dispose(&errs);
    return r;
}

static void
map_result_free(map_result_t *r)
{
    if (r->msg != NULL)
        protobuf_c_message_free_unpacked(r->msg, NULL);
    free(r->errors);
}

/* Maps text that must succeed; returns the message (caller frees). */
static ProtobufCMessage *
map_ok(const ProtobufCMessageDescriptor *desc, const char *yaml)
{
    map_result_t r = map_yaml(desc, yaml, NULL, 0);

    if (r.msg == NULL || r.count != 0)
        fail_msg("mapping failed: %s", r.errors);
    free(r.errors);
    return r.msg;
}

/* Maps text that must fail with exactly |count| errors; returns the joined errors. */
static char *
map_fail(const ProtobufCMessageDescriptor *desc, const char *yaml, size_t count)
{
    map_result_t r = map_yaml(desc, yaml, NULL, 0);

    if (r.msg != NULL)
        fail_msg("mapping of \"%.80s\" succeeded", yaml);
    if (r.count != count)
        fail_msg("expected %zu errors, got %zu: %s", count, r.count, r.errors);
    return r.errors;
}

static void
assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

static void
assert_fail_with(const ProtobufCMessageDescriptor *desc, const char *yaml, const char *expect)
{
    char *errors = map_fail(desc, yaml, 1);

    assert_string_equal(errors, expect);
    free(errors);
}

/*
 * Resolves "a.b[2].c" through the descriptors: returns a pointer to the member (or to the
 * element for an index), with its field descriptor. NULL when a message on the way is unset, an
 * index is out of range or a oneof member is not the selected one.
 */
static const void *
pb_at(const ProtobufCMessage *msg, const char *path, const ProtobufCFieldDescriptor **fd_out)
{
    char seg[128];
    const void *p = NULL;

    while (msg != NULL && *path != '\0') {
        const ProtobufCFieldDescriptor *fd;
        size_t len = strcspn(path, ".[");
        long index = -1;

        assert_true(len < sizeof(seg));
        memcpy(seg, path, len);
        seg[len] = '\0';
        path += len;
        if (*path == '[') {
            index = strtol(path + 1, (char **)&path, 10);
            assert_true(*path == ']');
            path++;
        }
        if (*path == '.')
            path++;
        fd = protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, seg);
        if (fd == NULL)
            fail_msg("no field '%s' in %s", seg, msg->descriptor->name);
        if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)((const char *)msg + fd->quantifier_offset) != fd->id)
            return NULL;
        p = (const char *)msg + fd->offset;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED && index >= 0) {
            size_t n = *(const size_t *)((const char *)msg + fd->quantifier_offset);
            size_t esize = sizeof(void *); /* indexes are used on messages and strings only */

            assert_true(fd->type == PROTOBUF_C_TYPE_MESSAGE || fd->type == PROTOBUF_C_TYPE_STRING);
            if ((size_t)index >= n)
                return NULL;
            p = *(const char *const *)p + (size_t)index * esize;
        }
        if (fd_out != NULL)
            *fd_out = fd;
        if (*path != '\0') {
            assert_int_equal(fd->type, PROTOBUF_C_TYPE_MESSAGE);
            msg = *(const ProtobufCMessage *const *)p;
        }
    }
    return msg != NULL ? p : NULL;
}

static const char *
pb_str(const ProtobufCMessage *msg, const char *path)
{
    const void *p = pb_at(msg, path, NULL);

    if (p == NULL)
        fail_msg("%s is not set", path);
    return *(const char *const *)p;
}

static const ProtobufCMessage *
pb_msg(const ProtobufCMessage *msg, const char *path)
{
    const void *p = pb_at(msg, path, NULL);

    return p != NULL ? *(const ProtobufCMessage *const *)p : NULL;
}

static uint32_t
pb_u32(const ProtobufCMessage *msg, const char *path)
{
    const void *p = pb_at(msg, path, NULL);

    if (p == NULL)
        fail_msg("%s is not set", path);
    return *(const uint32_t *)p;
}

/* The value of a UInt32Value/BoolValue-style wrapper at |path|. */
static uint32_t
pb_wrapped_u32(const ProtobufCMessage *msg, const char *path)
{
    const Google__Protobuf__UInt32Value *w = (const Google__Protobuf__UInt32Value *)pb_msg(msg, path);

    if (w == NULL)
        fail_msg("%s is not set", path);
    return w->value;
}

static size_t
pb_count(const ProtobufCMessage *msg, const char *path)
{
    const ProtobufCFieldDescriptor *fd = NULL;
    const char *dot = strrchr(path, '.');
    const ProtobufCMessage *parent = msg;

    if (dot != NULL) {
        char head[256];

        assert_true((size_t)(dot - path) < sizeof(head));
        memcpy(head, path, (size_t)(dot - path));
        head[dot - path] = '\0';
        parent = pb_msg(msg, head);
        assert_non_null(parent);
        path = dot + 1;
    }
    fd = protobuf_c_message_descriptor_get_field_by_name(parent->descriptor, path);
    assert_non_null(fd);
    assert_int_equal(fd->label, PROTOBUF_C_LABEL_REPEATED);
    return *(const size_t *)((const char *)parent + fd->quantifier_offset);
}

static void
assert_duration(const ProtobufCMessage *d, int64_t seconds, int32_t nanos)
{
    const Google__Protobuf__Duration *dur = (const Google__Protobuf__Duration *)d;

    assert_non_null(dur);
    assert_string_equal(d->descriptor->name, "google.protobuf.Duration");
    assert_int_equal(dur->seconds, seconds);
    assert_int_equal(dur->nanos, nanos);
}

/* Unpacks the Any at |path| of |msg|, asserting its type. Caller frees. */
static ProtobufCMessage *
unpack_at(const ProtobufCMessage *msg, const char *path, const char *type_name)
{
    const ProtobufCMessageDescriptor *desc = NULL;
    const ProtobufCMessage *any = pb_msg(msg, path);
    ProtobufCMessage *out;
    mcplex_errors_t errs;

    if (any == NULL)
        fail_msg("%s is not set", path);
    mcplex_errors_init(&errs);
    out = mcplex_pb_any_unpack(any, &desc, path, &errs);
    if (out == NULL) {
        char *all = mcplex_errors_join(&errs, "\n");

        fail_msg("unpack of %s failed: %s", path, all);
    }
    assert_int_equal(errs.count, 0);
    assert_string_equal(desc->name, type_name);
    assert_ptr_equal(out->descriptor, desc);
    mcplex_errors_dispose(&errs);
    return out;
}

/* Pack, unpack and repack: the message is wire-valid and round-trips byte for byte. */
static void
assert_wire_round_trip(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = mcplex_malloc(len + 1), *buf2 = mcplex_malloc(len + 1);
    ProtobufCMessage *copy;

    assert_int_equal(protobuf_c_message_pack(msg, buf), len);
    copy = protobuf_c_message_unpack(msg->descriptor, NULL, len, buf);
    assert_non_null(copy);
    assert_int_equal(protobuf_c_message_get_packed_size(copy), len);
    assert_int_equal(protobuf_c_message_pack(copy, buf2), len);
    assert_memory_equal(buf, buf2, len);
    protobuf_c_message_free_unpacked(copy, NULL);
    free(buf);
    free(buf2);
}

/* ---- scalars ------------------------------------------------------------------------------ */

static void
test_all_scalar_types(void **state)
{
    test_scalars_t *m = (test_scalars_t *)map_ok(&test_scalars_desc,
                                                 "i32: -2147483648\n"
                                                 "i64: \"9223372036854775807\"\n" /* int64 as a string */
                                                 "u32: 4294967295\n"
                                                 "u64: \"18446744073709551615\"\n"
                                                 "s32: -5\n"
                                                 "s64: \"-9223372036854775808\"\n"
                                                 "f32: 0x10\n"
                                                 "f64: 1e3\n" /* integral value written as a float */
                                                 "sf32: \"-9\"\n"
                                                 "sf64: 10\n"
                                                 "fl: 1.5\n"
                                                 "db: \"-Infinity\"\n"
                                                 "b: true\n"
                                                 "str: 3000\n" /* a number's source text */
                                                 "by: aGVsbG8=\n"
                                                 "optI32: 12\n" /* lowerCamel JSON name */
                                                 "rI64: [1, \"2\", -3]\n"
                                                 "r_str: [a, 1.10, \"\"]\n"
                                                 "by_id: {\"1\": one, \"-2\": 2}\n"
                                                 "flags: {\"true\": false, \"false\": true}\n");

    assert_int_equal(m->i32, INT32_MIN);
    assert_true(m->i64 == INT64_MAX);
    assert_int_equal(m->u32, UINT32_MAX);
    assert_true(m->u64 == UINT64_MAX);
    assert_int_equal(m->s32, -5);
    assert_true(m->s64 == INT64_MIN);
    assert_int_equal(m->f32, 16);
    assert_int_equal(m->f64, 1000);
    assert_int_equal(m->sf32, -9);
    assert_int_equal(m->sf64, 10);
    assert_true(m->fl == 1.5f);
    assert_true(isinf(m->db) && m->db < 0);
    assert_true(m->b);
    assert_string_equal(m->str, "3000");
    assert_int_equal(m->by.len, 5);
    assert_memory_equal(m->by.data, "hello", 5);
    assert_true(m->has_opt_i32);
    assert_int_equal(m->opt_i32, 12);
    assert_int_equal(m->n_r_i64, 3);
    assert_true(m->r_i64[0] == 1 && m->r_i64[1] == 2 && m->r_i64[2] == -3);
    assert_int_equal(m->n_r_str, 3);
    assert_string_equal(m->r_str[0], "a");
    assert_string_equal(m->r_str[1], "1.10");
    assert_string_equal(m->r_str[2], "");
    assert_int_equal(m->n_by_id, 2);
    assert_int_equal(m->by_id[0]->key, 1);
    assert_string_equal(m->by_id[0]->value, "one");
    assert_int_equal(m->by_id[1]->key, -2);
    assert_string_equal(m->by_id[1]->value, "2");
    assert_int_equal(m->n_flags, 2);
    assert_true(m->flags[0]->key && !m->flags[0]->value);
    assert_true(!m->flags[1]->key && m->flags[1]->value);
    assert_wire_round_trip(&m->base);
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void
test_scalar_errors_all_collected(void **state)
{
    char *errors = map_fail(&test_scalars_desc,
                            "i32: 2147483648\n"
                            "u32: -1\n"
                            "u64: 1.5\n"
                            "b: \"true\"\n"
                            "fl: 1e39\n"
                            "by: \"@@@@\"\n"
                            "i64: 12abc\n"
                            "str: true\n"
                            "s32: [1]\n"
                            "rI64: [1, null, x]\n"
                            "by_id: {abc: x}\n"
                            "flags: [true]\n"
                            "sf64: \"99999999999999999999\"\n",
                            14);

    assert_string_equal(errors, "i32: value '2147483648' out of range for int32\n"
                                "u32: value '-1' out of range for uint32\n"
                                "u64: '1.5' is not a valid uint64\n"
                                "b: expected true or false, got string 'true'\n"
                                "fl: value '1e39' out of range for float\n"
                                "by: invalid base64 '@@@@'\n"
                                "i64: '12abc' is not a valid int64\n"
                                "str: expected a string, got boolean\n"
                                "s32: expected int32, got array\n"
                                "rI64[1]: null is not allowed in a list\n"
                                "rI64[2]: 'x' is not a valid int64\n"
                                "by_id[\"abc\"]: 'abc' is not a valid int32\n"
                                "flags: expected an object (map), got array\n"
                                "sf64: value '99999999999999999999' out of range for int64");
    free(errors);
}

static void
test_null_means_default(void **state)
{
    test_scalars_t *m;

    m = (test_scalars_t *)map_ok(&test_scalars_desc, "i32: null\nstr: ~\nr_str: null\nby_id:\n");

    assert_int_equal(m->i32, 0);
    assert_string_equal(m->str, "");
    assert_int_equal(m->n_r_str, 0);
    assert_int_equal(m->n_by_id, 0);
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

static void
test_field_given_twice(void **state)
{
    assert_fail_with(&test_scalars_desc, "opt_i32: 1\noptI32: 2\n",
                     "optI32: field 'opt_i32' is given more than once");
}

static void
test_not_an_object(void **state)
{
    assert_fail_with(&test_scalars_desc, "- 1\n", "expected an object (mcplex.test.Scalars), got array");
}

/* ---- well-known types --------------------------------------------------------------------- */

static void
test_duration_forms(void **state)
{
    static const struct {
        const char *yaml;
        int64_t seconds;
        int32_t nanos;
    } ok[] = {
        {"1.5s", 1, 500000000},  {"0s", 0, 0},       {"-2s", -2, 0},  {"0.000001s", 0, 1000},
        {"-0.5s", 0, -500000000}, {"3", 3, 0},       {"1.25", 1, 250000000}, {"\"10s\"", 10, 0},
        {"315576000000s", 315576000000LL, 0}, {"0.999999999s", 0, 999999999},
    };
    static const char *const bad[] = {"abc", "\"1.5\"", "1.0000000001s", "s", "1m", "1.s", "--1s",
                                      "315576000001s", "\" 1s\"", "true"};

    for (size_t i = 0; i < MCPLEX_ARRAY_SIZE(ok); i++) {
        ProtobufCMessage *d = map_ok(&google__protobuf__duration__descriptor, ok[i].yaml);

        assert_duration(d, ok[i].seconds, ok[i].nanos);
        protobuf_c_message_free_unpacked(d, NULL);
    }
    for (size_t i = 0; i < MCPLEX_ARRAY_SIZE(bad); i++) {
        char *errors = map_fail(&google__protobuf__duration__descriptor, bad[i], 1);

        if (strcmp(bad[i], "true") == 0)
            assert_contains(errors, "expected a duration string such as \"1.5s\", got boolean");
        else
            assert_contains(errors, "invalid duration '");
        free(errors);
    }
}

static void
test_duration_error_path(void **state)
{
    assert_fail_with(BOOTSTRAP_DESC,
                     "static_resources:\n  clusters:\n  - name: a\n    connect_timeout: abc\n",
                     "static_resources.clusters[0].connect_timeout: invalid duration 'abc'");
    /* A caller-given prefix comes first. */
    {
        map_result_t r = map_yaml(MCP_BACKEND_DESC, "timeout: 1x\n", "clusters[3].typed_config", 0);

        assert_null(r.msg);
        assert_string_equal(r.errors, "clusters[3].typed_config.timeout: invalid duration '1x'");
        map_result_free(&r);
    }
}

static void
test_timestamp(void **state)
{
    Google__Protobuf__Timestamp *ts;
    char *errors;

    ts = (Google__Protobuf__Timestamp *)map_ok(&google__protobuf__timestamp__descriptor,
                                               "\"1972-01-01T10:00:20.021Z\"");
    assert_int_equal(ts->seconds, 63108020);
    assert_int_equal(ts->nanos, 21000000);
    protobuf_c_message_free_unpacked(&ts->base, NULL);
    ts = (Google__Protobuf__Timestamp *)map_ok(&google__protobuf__timestamp__descriptor,
                                               "2024-02-29T01:30:00+01:30");
    assert_int_equal(ts->seconds, 1709164800); /* 2024-02-29T00:00:00Z */
    assert_int_equal(ts->nanos, 0);
    protobuf_c_message_free_unpacked(&ts->base, NULL);
    ts = (Google__Protobuf__Timestamp *)map_ok(&google__protobuf__timestamp__descriptor,
                                               "1969-12-31T23:59:59Z");
    assert_int_equal(ts->seconds, -1);
    protobuf_c_message_free_unpacked(&ts->base, NULL);
    errors = map_fail(&google__protobuf__timestamp__descriptor, "2023-02-29T00:00:00Z", 1);
    assert_string_equal(errors, "invalid timestamp '2023-02-29T00:00:00Z'");
    free(errors);
    errors = map_fail(&google__protobuf__timestamp__descriptor, "2023-01-01", 1);
    assert_contains(errors, "invalid timestamp");
    free(errors);
}

static void
test_wrappers(void **state)
{
    Google__Protobuf__UInt32Value *u32;
    Google__Protobuf__Int64Value *i64;
    Google__Protobuf__UInt64Value *u64;
    Google__Protobuf__BoolValue *b;
    Google__Protobuf__StringValue *s;
    Google__Protobuf__DoubleValue *d;
    Google__Protobuf__FloatValue *f;
    Google__Protobuf__BytesValue *by;
    char *errors;

    u32 = (Google__Protobuf__UInt32Value *)map_ok(&google__protobuf__uint32_value__descriptor, "5");
    assert_int_equal(u32->value, 5);
    protobuf_c_message_free_unpacked(&u32->base, NULL);
    i64 = (Google__Protobuf__Int64Value *)map_ok(&google__protobuf__int64_value__descriptor, "\"-123\"");
    assert_true(i64->value == -123);
    protobuf_c_message_free_unpacked(&i64->base, NULL);
    u64 = (Google__Protobuf__UInt64Value *)map_ok(&google__protobuf__uint64_value__descriptor,
                                                  "18446744073709551615");
    assert_true(u64->value == UINT64_MAX); /* exact: parsed from the source text, not the double */
    protobuf_c_message_free_unpacked(&u64->base, NULL);
    b = (Google__Protobuf__BoolValue *)map_ok(&google__protobuf__bool_value__descriptor, "false");
    assert_false(b->value);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    s = (Google__Protobuf__StringValue *)map_ok(&google__protobuf__string_value__descriptor, "8080");
    assert_string_equal(s->value, "8080");
    protobuf_c_message_free_unpacked(&s->base, NULL);
    d = (Google__Protobuf__DoubleValue *)map_ok(&google__protobuf__double_value__descriptor, "\"2.5\"");
    assert_true(d->value == 2.5);
    protobuf_c_message_free_unpacked(&d->base, NULL);
    f = (Google__Protobuf__FloatValue *)map_ok(&google__protobuf__float_value__descriptor, "NaN");
    assert_true(isnan(f->value));
    protobuf_c_message_free_unpacked(&f->base, NULL);
    by = (Google__Protobuf__BytesValue *)map_ok(&google__protobuf__bytes_value__descriptor, "_-8");
    assert_int_equal(by->value.len, 2);
    assert_memory_equal(by->value.data, "\xff\xef", 2);
    protobuf_c_message_free_unpacked(&by->base, NULL);
    errors = map_fail(&google__protobuf__bool_value__descriptor, "{value: true}", 1);
    assert_string_equal(errors, "expected true or false, got object 'object'");
    free(errors);
    /* In a message: presence is kept (load_balancing_weight unset vs 0). */
    {
        ProtobufCMessage *lb = map_ok(&envoy__config__endpoint__v3__lb_endpoint__descriptor,
                                      "load_balancing_weight: 0\n");

        assert_int_equal(pb_wrapped_u32(lb, "load_balancing_weight"), 0);
        protobuf_c_message_free_unpacked(lb, NULL);
        lb = map_ok(&envoy__config__endpoint__v3__lb_endpoint__descriptor, "{}");
        assert_null(pb_msg(lb, "load_balancing_weight"));
        protobuf_c_message_free_unpacked(lb, NULL);
    }
}

static void
test_struct_round_trip(void **state)
{
    const char *yaml = "id: n1\nmetadata:\n  a: 1\n  b: [true, null, x, {c: 2.5}]\n  d: {}\n  e: []\n"
                       "  f: \"3000\"\n  g: {h: {i: -7}}\n";
    mcplex_errors_t errs;
    ProtobufCMessage *node;
    cJSON *json, *back;

    mcplex_errors_init(&errs);
    json = mcplex_yaml_parse(yaml, strlen(yaml), "t", &errs);
    assert_non_null(json);
    node = mcplex_pbmap_from_json(json, &envoy__config__core__v3__node__descriptor, NULL, 0, &errs);
    assert_non_null(node);
    assert_int_equal(errs.count, 0);
    assert_wire_round_trip(node);
    back = mcplex_pb_struct_to_json(pb_msg(node, "metadata"));
    assert_non_null(back);
    assert_true(cJSON_Compare(back, cJSON_GetObjectItem(json, "metadata"), 1));
    /* Integral numbers come back with text, so they map onto string fields as written. */
    assert_string_equal(cJSON_GetObjectItem(back, "a")->valuestring, "1");
    /* A Value and a ListValue convert too; anything else is refused. */
    {
        const Google__Protobuf__Struct *st = (const Google__Protobuf__Struct *)pb_msg(node, "metadata");
        cJSON *v = mcplex_pb_struct_to_json(&st->fields[1]->value->base);

        assert_true(cJSON_IsArray(v));
        assert_int_equal(cJSON_GetArraySize(v), 4);
        cJSON_Delete(v);
        v = mcplex_pb_struct_to_json(&st->fields[1]->value->list_value->base);
        assert_true(cJSON_IsArray(v));
        cJSON_Delete(v);
        assert_null(mcplex_pb_struct_to_json(node));
    }
    cJSON_Delete(back);
    cJSON_Delete(json);
    protobuf_c_message_free_unpacked(node, NULL);
    mcplex_errors_dispose(&errs);
}

static void
test_depth_guard(void **state)
{
    char yaml[4096];
    size_t n = 0;
    char *errors;

    n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "metadata: ");
    for (int i = 0; i < 80; i++)
        n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "{a: ");
    n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "1");
    for (int i = 0; i < 80; i++)
        n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "}");
    errors = map_fail(&envoy__config__core__v3__node__descriptor, yaml, 1);
    assert_contains(errors, "nesting deeper than 64 levels");
    free(errors);
}

/* ---- enums, oneofs, maps, names ------------------------------------------------------------ */

static void
test_enums_by_name_and_number(void **state)
{
    mcp_backend_t *b = (mcp_backend_t *)map_ok(MCP_BACKEND_DESC, "prefix_mode: ALWAYS\nfailureMode: 1\n");

    assert_int_equal(b->prefix_mode, MCP_ENUM(MCP_BACKEND__PREFIX_MODE__ALWAYS));
    assert_int_equal(b->failure_mode, MCP_ENUM(MCP_BACKEND__FAILURE_MODE__FAIL_CLOSED));
    protobuf_c_message_free_unpacked(&b->base, NULL);
    b = (mcp_backend_t *)map_ok(MCP_BACKEND_DESC, "prefix_mode: 2\n");
    assert_int_equal(b->prefix_mode, MCP_ENUM(MCP_BACKEND__PREFIX_MODE__NEVER));
    protobuf_c_message_free_unpacked(&b->base, NULL);
    assert_fail_with(MCP_BACKEND_DESC, "prefix_mode: always\n",
                     "prefix_mode: unknown value 'always' for enum "
                     "mcplex.extensions.clusters.mcp.v1.McpBackend.PrefixMode");
    assert_fail_with(MCP_BACKEND_DESC, "prefix_mode: true\n",
                     "prefix_mode: expected an enum name or number for "
                     "mcplex.extensions.clusters.mcp.v1.McpBackend.PrefixMode, got boolean");
}

static void
test_oneof(void **state)
{
    mcp_target_t *t = (mcp_target_t *)map_ok(MCP_TARGET_DESC, "name: x\nsse: {cluster: c, path: /sse}\n");

    assert_int_equal(t->transport_case, MCP_ENUM(MCP_TARGET__TRANSPORT_SSE));
    assert_string_equal(t->sse->cluster, "c");
    assert_int_equal(t->sse->destination_case, MCP_ENUM(HTTP_TARGET__DESTINATION_CLUSTER));
    protobuf_c_message_free_unpacked(&t->base, NULL);
    assert_fail_with(MCP_TARGET_DESC, "name: x\nstdio: {cmd: a}\nsse: {url: \"http://h/sse\"}\n",
                     "sse: 'stdio' and 'sse' are both set, but they belong to the same oneof; set only one");
    assert_fail_with(MCP_TARGET_DESC, "streamable_http: {url: \"http://h/mcp\", cluster: c}\n",
                     "streamable_http.cluster: 'url' and 'cluster' are both set, but they belong to the "
                     "same oneof; set only one");
    /* Envoy: cluster "type" and "cluster_type" are one oneof. */
    assert_fail_with(&envoy__config__cluster__v3__cluster__descriptor,
                     "name: a\ntype: STATIC\ncluster_type: {name: x}\n",
                     "cluster_type: 'type' and 'cluster_type' are both set, but they belong to the same "
                     "oneof; set only one");
}

static void
test_map_fields(void **state)
{
    mcp_target_t *t = (mcp_target_t *)map_ok(MCP_TARGET_DESC, "name: time\nstdio:\n  cmd: npx\n"
                                                              "  args: [-y, time-mcp]\n"
                                                              "  env: {TZ: UTC, PORT: 3000, EMPTY: \"\"}\n");
    const Mcplex__Extensions__Clusters__Mcp__V1__Stdio *s = t->stdio;

    assert_int_equal(s->n_args, 2);
    assert_string_equal(s->args[0], "-y");
    assert_int_equal(s->n_env, 3);
    assert_string_equal(s->env[0]->key, "TZ");
    assert_string_equal(s->env[0]->value, "UTC");
    assert_string_equal(s->env[1]->key, "PORT");
    assert_string_equal(s->env[1]->value, "3000");
    assert_string_equal(s->env[2]->value, "");
    assert_wire_round_trip(&t->base);
    protobuf_c_message_free_unpacked(&t->base, NULL);
    assert_fail_with(MCP_TARGET_DESC, "stdio: {env: [{key: a, value: b}]}\n",
                     "stdio.env: expected an object (map), got array");
    assert_fail_with(MCP_TARGET_DESC, "stdio: {env: {A: null}}\n",
                     "stdio.env[\"A\"]: null is not allowed as a map value");
    assert_fail_with(MCP_TARGET_DESC, "stdio: {env: {A: {b: c}}}\n",
                     "stdio.env[\"A\"]: expected a string, got object");
}

static void
test_unknown_fields(void **state)
{
    map_result_t r;

    assert_fail_with(BOOTSTRAP_DESC, "static_resources:\n  clusters:\n  - name: a\n    conect_timeout: 1s\n",
                     "static_resources.clusters[0].conect_timeout: unknown field 'conect_timeout'");
    r = map_yaml(BOOTSTRAP_DESC, "static_resources:\n  clusters:\n  - name: a\n    conect_timeout: 1s\n",
                 NULL, MCPLEX_PBMAP_IGNORE_UNKNOWN);
    assert_non_null(r.msg);
    assert_int_equal(r.count, 0);
    assert_string_equal(pb_str(r.msg, "static_resources.clusters[0].name"), "a");
    map_result_free(&r);
    /* snake_case is matched exactly; the JSON name is lowerCamel, not any other spelling. */
    assert_fail_with(BOOTSTRAP_DESC, "StaticResources: {}\n",
                     "StaticResources: unknown field 'StaticResources'");
    assert_fail_with(BOOTSTRAP_DESC, "\"@type\": x\n", "@type: unknown field '@type'");
}

static void
test_json_names(void **state)
{
    ProtobufCMessage *b = map_ok(BOOTSTRAP_DESC, "{\"staticResources\": {\"clusters\": [{\"name\": \"a\", "
                                                 "\"connectTimeout\": \"0.25s\", \"lbPolicy\": \"RANDOM\", "
                                                 "\"loadAssignment\": {\"clusterName\": \"a\"}}]}}");

    assert_duration(pb_msg(b, "static_resources.clusters[0].connect_timeout"), 0, 250000000);
    assert_int_equal(pb_u32(b, "static_resources.clusters[0].lb_policy"),
                     CLUSTER_ENUM(LB_POLICY__RANDOM));
    assert_string_equal(pb_str(b, "static_resources.clusters[0].load_assignment.cluster_name"), "a");
    protobuf_c_message_free_unpacked(b, NULL);
}

static void
test_numbers_as_text(void **state)
{
    /* port_value is uint32: 3000 and "3000" both work; address is a string: 3000 reads "3000". */
    ProtobufCMessage *a = map_ok(&envoy__config__core__v3__socket_address__descriptor,
                                 "address: 10.0.0.1\nport_value: \"3000\"\n");

    assert_string_equal(pb_str(a, "address"), "10.0.0.1");
    assert_int_equal(pb_u32(a, "port_value"), 3000);
    protobuf_c_message_free_unpacked(a, NULL);
    a = map_ok(&envoy__config__core__v3__socket_address__descriptor, "address: 3000\nport_value: 3000\n");
    assert_string_equal(pb_str(a, "address"), "3000");
    assert_int_equal(pb_u32(a, "port_value"), 3000);
    protobuf_c_message_free_unpacked(a, NULL);
    assert_fail_with(&envoy__config__core__v3__socket_address__descriptor, "port_value: 4294967296\n",
                     "port_value: value '4294967296' out of range for uint32");
    assert_fail_with(&envoy__config__core__v3__socket_address__descriptor, "port_value: 80.5\n",
                     "port_value: '80.5' is not a valid uint32");
}

static void
test_error_collection(void **state)
{
    char *errors = map_fail(BOOTSTRAP_DESC,
                            "admin: {address: {socket_address: {port_value: -1}}}\n"
                            "static_resources:\n"
                            "  listeners: {name: not_a_list}\n"
                            "  clusters:\n"
                            "  - name: a\n"
                            "    type: STRICT\n"
                            "    connect_timeout: 5\n"
                            "  - name: b\n"
                            "    connect_timeout: forever\n"
                            "    bogus: 1\n"
                            "    load_assignment:\n"
                            "      endpoints: [{lb_endpoints: [{load_balancing_weight: x}]}]\n",
                            6);

    assert_string_equal(errors,
                        "admin.address.socket_address.port_value: value '-1' out of range for uint32\n"
                        "static_resources.listeners: expected an array, got object\n"
                        "static_resources.clusters[0].type: unknown value 'STRICT' for enum "
                        "envoy.config.cluster.v3.Cluster.DiscoveryType\n"
                        "static_resources.clusters[1].connect_timeout: invalid duration 'forever'\n"
                        "static_resources.clusters[1].bogus: unknown field 'bogus'\n"
                        "static_resources.clusters[1].load_assignment.endpoints[0].lb_endpoints[0]"
                        ".load_balancing_weight: 'x' is not a valid uint32");
    free(errors);
}

/* ---- Any and TypedStruct ------------------------------------------------------------------- */

static void
test_registry_find(void **state)
{
    assert_ptr_equal(mcplex_pb_registry_find("type.googleapis.com/google.protobuf.Duration"),
                     &google__protobuf__duration__descriptor);
    assert_ptr_equal(mcplex_pb_registry_find("google.protobuf.Duration"),
                     &google__protobuf__duration__descriptor);
    assert_ptr_equal(mcplex_pb_registry_find("example.com/a/b/envoy.config.cluster.v3.Cluster"),
                     &envoy__config__cluster__v3__cluster__descriptor);
    assert_ptr_equal(mcplex_pb_registry_find(MCP_BACKEND_URL), MCP_BACKEND_DESC);
    assert_non_null(mcplex_pb_registry_find("udpa.type.v1.TypedStruct"));
    assert_null(mcplex_pb_registry_find("type.googleapis.com/no.such.Type"));
    assert_null(mcplex_pb_registry_find("type.googleapis.com/"));
    assert_null(mcplex_pb_registry_find(NULL));
}

static void
test_any_inline_fields(void **state)
{
    ProtobufCMessage *f = map_ok(&envoy__config__core__v3__typed_extension_config__descriptor,
                                 "name: mcplex.clusters.mcp\n"
                                 "typed_config:\n"
                                 "  \"@type\": " MCP_BACKEND_URL "\n"
                                 "  prefix_mode: NEVER\n"
                                 "  targets: [{name: t, stdio: {cmd: x}, timeout: 2s}]\n");
    const Google__Protobuf__Any *any = (const Google__Protobuf__Any *)pb_msg(f, "typed_config");
    mcp_backend_t *b;
    char buf[256];

    assert_string_equal(any->type_url, "type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend");
    assert_true(any->value.len > 0);
    assert_string_equal(mcplex_pb_any_real_type(&any->base, buf, sizeof(buf)), any->type_url);
    b = (mcp_backend_t *)unpack_at(f, "typed_config", "mcplex.extensions.clusters.mcp.v1.McpBackend");
    assert_int_equal(b->prefix_mode, MCP_ENUM(MCP_BACKEND__PREFIX_MODE__NEVER));
    assert_int_equal(b->n_targets, 1);
    assert_string_equal(b->targets[0]->stdio->cmd, "x");
    assert_duration(&b->targets[0]->timeout->base, 2, 0);
    protobuf_c_message_free_unpacked(&b->base, NULL);
    protobuf_c_message_free_unpacked(f, NULL);
}

static void
test_any_wkt_value_form(void **state)
{
    ProtobufCMessage *f = map_ok(&envoy__config__core__v3__typed_extension_config__descriptor,
                                 "typed_config: {\"@type\": type.googleapis.com/google.protobuf.Duration, "
                                 "value: 1.5s}\n");
    ProtobufCMessage *d = unpack_at(f, "typed_config", "google.protobuf.Duration");
    Google__Protobuf__UInt64Value *u;

    assert_duration(d, 1, 500000000);
    protobuf_c_message_free_unpacked(d, NULL);
    protobuf_c_message_free_unpacked(f, NULL);
    /* A bare full name is accepted and stored with the default prefix; int64 from a string. */
    f = map_ok(&envoy__config__core__v3__typed_extension_config__descriptor,
               "typed_config: {\"@type\": google.protobuf.UInt64Value, value: \"12345678901234567890\"}\n");
    assert_string_equal(((const Google__Protobuf__Any *)pb_msg(f, "typed_config"))->type_url,
                        "type.googleapis.com/google.protobuf.UInt64Value");
    u = (Google__Protobuf__UInt64Value *)unpack_at(f, "typed_config", "google.protobuf.UInt64Value");
    assert_true(u->value == 12345678901234567890ULL);
    protobuf_c_message_free_unpacked(&u->base, NULL);
    protobuf_c_message_free_unpacked(f, NULL);
    /* A Struct inside an Any. */
    f = map_ok(&envoy__config__core__v3__typed_extension_config__descriptor,
               "typed_config: {\"@type\": type.googleapis.com/google.protobuf.Struct, value: {a: [1]}}\n");
    d = unpack_at(f, "typed_config", "google.protobuf.Struct");
    assert_int_equal(((Google__Protobuf__Struct *)d)->n_fields, 1);
    protobuf_c_message_free_unpacked(d, NULL);
    protobuf_c_message_free_unpacked(f, NULL);
    assert_fail_with(&envoy__config__core__v3__typed_extension_config__descriptor,
                     "typed_config: {\"@type\": google.protobuf.Duration, value: 1.5s, extra: 1}\n",
                     "typed_config.extra: unknown field 'extra'");
}

static void
test_any_errors(void **state)
{
    const ProtobufCMessageDescriptor *tec = &envoy__config__core__v3__typed_extension_config__descriptor;
    ProtobufCMessage *f;

    assert_fail_with(tec, "typed_config: {\"@type\": type.googleapis.com/no.such.Type, a: 1}\n",
                     "typed_config: unknown type 'type.googleapis.com/no.such.Type'");
    assert_fail_with(tec, "typed_config: {stat_prefix: x}\n",
                     "typed_config: missing \"@type\" in google.protobuf.Any");
    assert_fail_with(tec, "typed_config: {\"@type\": 5}\n",
                     "typed_config: \"@type\" must be a non-empty string");
    assert_fail_with(tec, "typed_config: hello\n",
                     "typed_config: expected an object with \"@type\" (google.protobuf.Any), got string");
    /* Errors inside the packed message carry the full path. */
    assert_fail_with(tec,
                     "typed_config:\n  \"@type\": " MCP_BACKEND_URL "\n"
                     "  targets: [{name: t, stdio: {cmd: x}, sse: {url: u}}]\n",
                     "typed_config.targets[0].sse: 'stdio' and 'sse' are both set, but they belong to "
                     "the same oneof; set only one");
    /* An empty Any is allowed (nothing set). */
    f = map_ok(tec, "typed_config: {}\n");
    assert_non_null(pb_msg(f, "typed_config"));
    assert_string_equal(((const Google__Protobuf__Any *)pb_msg(f, "typed_config"))->type_url, "");
    protobuf_c_message_free_unpacked(f, NULL);
}

static void
test_any_unpack_errors(void **state)
{
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    const ProtobufCMessageDescriptor *desc = (const void *)1;
    mcplex_errors_t errs;
    char *all;
    uint8_t garbage[] = {0xff, 0xff, 0xff};

    mcplex_errors_init(&errs);
    assert_null(mcplex_pb_any_unpack(&any.base, &desc, "x", &errs));
    assert_null(desc);
    any.type_url = "type.googleapis.com/no.such.Type";
    assert_null(mcplex_pb_any_unpack(&any.base, &desc, "x", &errs));
    any.type_url = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    any.value.data = garbage;
    any.value.len = sizeof(garbage);
    assert_null(mcplex_pb_any_unpack(&any.base, &desc, "x", &errs));
    all = mcplex_errors_join(&errs, "\n");
    assert_string_equal(all, "x: empty google.protobuf.Any (no type URL)\n"
                             "x: unknown type 'type.googleapis.com/no.such.Type'\n"
                             "x: cannot decode envoy.config.cluster.v3.Cluster");
    free(all);
    mcplex_errors_dispose(&errs);
}

static void
test_typed_struct(void **state)
{
    const char *yaml = "name: mcplex.clusters.mcp\n"
                       "typed_config:\n"
                       "  \"@type\": type.googleapis.com/xds.type.v3.TypedStruct\n"
                       "  type_url: type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend\n"
                       "  value:\n"
                       "    prefix_mode: ALWAYS\n"
                       "    name_separator: _\n"
                       "    targets:\n"
                       "    - name: time\n"
                       "      stdio: {cmd: npx, args: [-y, time-mcp], env: {TZ: UTC}}\n"
                       "    - name: remote\n"
                       "      streamable_http: {url: \"http://127.0.0.1:3002/mcp\"}\n"
                       "      timeout: 3s\n"
                       "    server_info: {name: gw, version: 1.0}\n"
                       "    not_in_this_build: 1\n";
    ProtobufCMessage *f = map_ok(&envoy__config__core__v3__typed_extension_config__descriptor, yaml);
    const Google__Protobuf__Any *any = (const Google__Protobuf__Any *)pb_msg(f, "typed_config");
    Xds__Type__V3__TypedStruct *ts;
    mcp_backend_t *b;
    char buf[256];

    /* The Any holds a real TypedStruct... */
    assert_string_equal(any->type_url, "type.googleapis.com/xds.type.v3.TypedStruct");
    ts = xds__type__v3__typed_struct__unpack(NULL, any->value.len, any->value.data);
    assert_non_null(ts);
    assert_string_equal(ts->type_url, "type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend");
    assert_non_null(ts->value);
    xds__type__v3__typed_struct__free_unpacked(ts, NULL);
    /* ...whose real type is the inner one... */
    assert_string_equal(mcplex_pb_any_real_type(&any->base, buf, sizeof(buf)),
                        "type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend");
    assert_null(mcplex_pb_any_real_type(&any->base, buf, 10));
    /* ...and unpacks onto it, unknown fields ignored (dynamic config rule). */
    b = (mcp_backend_t *)unpack_at(f, "typed_config", "mcplex.extensions.clusters.mcp.v1.McpBackend");
    assert_int_equal(b->prefix_mode, MCP_ENUM(MCP_BACKEND__PREFIX_MODE__ALWAYS));
    assert_string_equal(b->name_separator, "_");
    assert_int_equal(b->n_targets, 2);
    assert_string_equal(b->targets[0]->stdio->env[0]->key, "TZ");
    assert_string_equal(b->targets[0]->stdio->env[0]->value, "UTC");
    assert_int_equal(b->targets[0]->stdio->n_args, 2);
    assert_string_equal(b->targets[1]->streamable_http->url, "http://127.0.0.1:3002/mcp");
    assert_duration(&b->targets[1]->timeout->base, 3, 0);
    /* Struct numbers are doubles; the integral 1.0 comes back as "1". */
    assert_string_equal(b->server_info->version, "1");
    protobuf_c_message_free_unpacked(&b->base, NULL);
    protobuf_c_message_free_unpacked(f, NULL);
}

static void
test_typed_struct_errors(void **state)
{
    const ProtobufCMessageDescriptor *tec = &envoy__config__core__v3__typed_extension_config__descriptor;
    const ProtobufCMessageDescriptor *desc = NULL;
    mcplex_errors_t errs;
    ProtobufCMessage *f;
    char *all;

    mcplex_errors_init(&errs);
    f = map_ok(tec, "typed_config:\n  \"@type\": type.googleapis.com/udpa.type.v1.TypedStruct\n"
                    "  type_url: type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend\n"
                    "  value: {prefix_mode: SOMETIMES, targets: [{name: a, stdio: {}, sse: {}}]}\n");
    assert_null(mcplex_pb_any_unpack(pb_msg(f, "typed_config"), &desc,
                                     "clusters[0].cluster_type.typed_config", &errs));
    protobuf_c_message_free_unpacked(f, NULL);
    f = map_ok(tec, "typed_config:\n  \"@type\": type.googleapis.com/xds.type.v3.TypedStruct\n"
                    "  type_url: type.googleapis.com/no.such.Type\n");
    assert_null(mcplex_pb_any_unpack(pb_msg(f, "typed_config"), &desc, "tc", &errs));
    protobuf_c_message_free_unpacked(f, NULL);
    all = mcplex_errors_join(&errs, "\n");
    assert_string_equal(all,
                        "clusters[0].cluster_type.typed_config.value.prefix_mode: unknown value "
                        "'SOMETIMES' for enum mcplex.extensions.clusters.mcp.v1.McpBackend.PrefixMode\n"
                        "clusters[0].cluster_type.typed_config.value.targets[0].sse: 'stdio' and 'sse' are "
                        "both set, but they belong to the same oneof; set only one\n"
                        "tc: unknown type 'type.googleapis.com/no.such.Type' in xds.type.v3.TypedStruct");
    free(all);
    mcplex_errors_dispose(&errs);
}

/* ---- the Envoy bootstraps of xds-subset.md -------------------------------------------------- */

static ProtobufCMessage *
map_file(const char *name)
{
    char path[512];
    mcplex_errors_t errs;
    ProtobufCMessage *msg;
    cJSON *json;

    snprintf(path, sizeof(path), "%s/%s", MCPLEX_TEST_DATA, name);
    mcplex_errors_init(&errs);
    json = mcplex_yaml_parse_file(path, &errs);
    msg = json != NULL ? mcplex_pbmap_from_json(json, BOOTSTRAP_DESC, NULL, 0, &errs) : NULL;
    if (msg == NULL) {
        char *all = mcplex_errors_join(&errs, "\n");

        fail_msg("%s: %s", path, all);
    }
    assert_int_equal(errs.count, 0);
    cJSON_Delete(json);
    mcplex_errors_dispose(&errs);
    return msg;
}

static void
test_envoy_static_bootstrap(void **state)
{
    ProtobufCMessage *boot = map_file("envoy_static_bootstrap.yaml");
    ProtobufCMessage *hcm, *router, *multi, *backend;
    const ProtobufCMessage *cl, *wc;

    assert_int_equal(pb_u32(boot, "admin.address.socket_address.port_value"), 9901);
    assert_int_equal(pb_count(boot, "static_resources.listeners"), 2);
    assert_int_equal(pb_count(boot, "static_resources.clusters"), 4);
    assert_string_equal(pb_str(boot, "static_resources.listeners[0].address.socket_address.address"),
                        "0.0.0.0");
    assert_int_equal(pb_u32(boot, "static_resources.listeners[0].address.socket_address.port_value"), 8080);
    assert_wire_round_trip(boot);

    /* Listener 1: HCM with weighted clusters. */
    hcm = unpack_at(boot, "static_resources.listeners[0].filter_chains[0].filters[0].typed_config",
                    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager");
    assert_string_equal(pb_str(hcm, "stat_prefix"), "ingress_http");
    assert_int_equal(pb_u32(hcm, "codec_type"), HCM_ENUM(CODEC_TYPE__AUTO));
    assert_string_equal(pb_str(hcm, "route_config.virtual_hosts[0].domains[0]"), "*");
    assert_string_equal(pb_str(hcm, "route_config.virtual_hosts[0].routes[0].match.prefix"), "/mcp");
    assert_duration(pb_msg(hcm, "route_config.virtual_hosts[0].routes[0].route.timeout"), 0, 0);
    wc = pb_msg(hcm, "route_config.virtual_hosts[0].routes[0].route.weighted_clusters");
    assert_string_equal(pb_str(wc, "clusters[1].name"), "mcp_b");
    assert_int_equal(pb_wrapped_u32(wc, "clusters[0].weight"), 80);
    assert_int_equal(pb_wrapped_u32(wc, "clusters[1].weight"), 20);
    assert_string_equal(pb_str(hcm, "http_filters[0].name"), "envoy.filters.http.router");
    protobuf_c_message_free_unpacked(unpack_at(hcm, "http_filters[0].typed_config",
                                               "envoy.extensions.filters.http.router.v3.Router"),
                                     NULL);
    protobuf_c_message_free_unpacked(hcm, NULL);

    /* Listener 2: Envoy's MCP filters. */
    hcm = unpack_at(boot, "static_resources.listeners[1].filter_chains[0].filters[0].typed_config",
                    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager");
    assert_string_equal(pb_str(hcm, "stat_prefix"), "mcp_router");
    assert_int_equal(pb_count(hcm, "http_filters"), 2);
    assert_string_equal(pb_str(hcm, "http_filters[1].name"), "envoy.filters.http.mcp_router");
    protobuf_c_message_free_unpacked(
        unpack_at(hcm, "http_filters[0].typed_config", "envoy.extensions.filters.http.mcp.v3.Mcp"), NULL);
    router = unpack_at(hcm, "http_filters[1].typed_config",
                       "envoy.extensions.filters.http.mcp_router.v3.McpRouter");
    assert_int_equal(pb_count(router, "servers"), 2);
    assert_string_equal(pb_str(router, "servers[1].name"), "memory");
    assert_string_equal(pb_str(router, "servers[1].mcp_cluster.cluster"), "mcp_b");
    assert_string_equal(pb_str(router, "servers[1].mcp_cluster.host_rewrite_literal"), "memory.local");
    assert_duration(pb_msg(router, "servers[1].mcp_cluster.timeout"), 2, 500000000);
    protobuf_c_message_free_unpacked(router, NULL);
    protobuf_c_message_free_unpacked(hcm, NULL);

    /* Clusters. */
    cl = pb_msg(boot, "static_resources.clusters[0]");
    assert_int_equal(pb_u32(cl, "type"), CLUSTER_ENUM(DISCOVERY_TYPE__STRICT_DNS));
    assert_duration(pb_msg(cl, "connect_timeout"), 1, 0);
    assert_string_equal(pb_str(cl, "load_assignment.endpoints[0].lb_endpoints[0].endpoint.address"
                                   ".socket_address.address"),
                        "mcp-a.local");
    cl = pb_msg(boot, "static_resources.clusters[1]");
    assert_int_equal(pb_wrapped_u32(cl, "load_assignment.endpoints[0].lb_endpoints[0].load_balancing_weight"),
                     2);
    cl = pb_msg(boot, "static_resources.clusters[2]");
    assert_int_equal(pb_u32(cl, "lb_policy"), CLUSTER_ENUM(LB_POLICY__CLUSTER_PROVIDED));
    assert_null(pb_at(cl, "type", NULL)); /* the oneof holds cluster_type */
    assert_string_equal(pb_str(cl, "cluster_type.name"), "envoy.clusters.mcp_multicluster");
    multi = unpack_at(cl, "cluster_type.typed_config",
                      "envoy.extensions.clusters.mcp_multicluster.v3.ClusterConfig");
    assert_int_equal(pb_count(multi, "servers"), 2);
    assert_string_equal(pb_str(multi, "servers[0].mcp_cluster.cluster"), "mcp_a");
    assert_duration(pb_msg(multi, "servers[1].mcp_cluster.timeout"), 10, 0);
    protobuf_c_message_free_unpacked(multi, NULL);
    cl = pb_msg(boot, "static_resources.clusters[3]");
    backend = unpack_at(cl, "cluster_type.typed_config", "mcplex.extensions.clusters.mcp.v1.McpBackend");
    assert_int_equal(pb_count(backend, "targets"), 2);
    assert_string_equal(pb_str(backend, "targets[0].stdio.env[0].value"), "UTC");
    assert_duration(pb_msg(backend, "targets[1].timeout"), 3, 0);
    protobuf_c_message_free_unpacked(backend, NULL);
    protobuf_c_message_free_unpacked(boot, NULL);
}

static void
test_envoy_ads_bootstrap(void **state)
{
    ProtobufCMessage *boot = map_file("envoy_ads_bootstrap.yaml");
    ProtobufCMessage *opts;

    assert_string_equal(pb_str(boot, "node.id"), "mcp-proxy-1");
    assert_string_equal(pb_str(boot, "node.cluster"), "mcp-gateway");
    assert_int_equal(pb_u32(boot, "dynamic_resources.ads_config.api_type"),
                     ENVOY__CONFIG__CORE__V3__API_CONFIG_SOURCE__API_TYPE__GRPC);
    assert_int_equal(pb_u32(boot, "dynamic_resources.ads_config.transport_api_version"),
                     ENVOY__CONFIG__CORE__V3__API_VERSION__V3);
    assert_string_equal(pb_str(boot, "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name"),
                        "xds_cluster");
    assert_non_null(pb_msg(boot, "dynamic_resources.cds_config.ads"));
    assert_non_null(pb_msg(boot, "dynamic_resources.lds_config.ads"));
    assert_int_equal(pb_u32(boot, "dynamic_resources.lds_config.resource_api_version"),
                     ENVOY__CONFIG__CORE__V3__API_VERSION__V3);
    assert_string_equal(pb_str(boot, "static_resources.clusters[0].typed_extension_protocol_options[0].key"),
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
    opts = unpack_at(boot, "static_resources.clusters[0].typed_extension_protocol_options[0].value",
                     "envoy.extensions.upstreams.http.v3.HttpProtocolOptions");
    assert_non_null(pb_msg(opts, "explicit_http_config.http2_protocol_options"));
    assert_null(pb_at(opts, "explicit_http_config.http_protocol_options", NULL));
    protobuf_c_message_free_unpacked(opts, NULL);
    assert_int_equal(pb_u32(boot, "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0]"
                                  ".endpoint.address.socket_address.port_value"),
                     18000);
    assert_wire_round_trip(boot);
    protobuf_c_message_free_unpacked(boot, NULL);
}

/* Every Envoy bootstrap under examples/ maps, and each typed_config in it resolves. */
static void
test_examples_map(void **state)
{
    char dir_path[512];
    DIR *dir;
    struct dirent *de;
    int mapped = 0;

    snprintf(dir_path, sizeof(dir_path), "%s/examples", MCPLEX_SOURCE_DIR);
    dir = opendir(dir_path);
    if (dir == NULL)
        skip();
    while ((de = readdir(dir)) != NULL) {
        char path[1024];
        mcplex_errors_t errs;
        ProtobufCMessage *msg;
        cJSON *json;

        if (strncmp(de->d_name, "envoy", 5) != 0 || strstr(de->d_name, ".yaml") == NULL)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir_path, de->d_name);
        mcplex_errors_init(&errs);
        json = mcplex_yaml_parse_file(path, &errs);
        msg = json != NULL ? mcplex_pbmap_from_json(json, BOOTSTRAP_DESC, NULL, 0, &errs) : NULL;
        if (msg == NULL) {
            char *all = mcplex_errors_join(&errs, "\n");

            fail_msg("%s: %s", path, all);
        }
        protobuf_c_message_free_unpacked(msg, NULL);
        cJSON_Delete(json);
        mcplex_errors_dispose(&errs);
        mapped++;
    }
    closedir(dir);
    assert_true(mapped > 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_scalar_types),
        cmocka_unit_test(test_scalar_errors_all_collected),
        cmocka_unit_test(test_null_means_default),
        cmocka_unit_test(test_field_given_twice),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_duration_forms),
        cmocka_unit_test(test_duration_error_path),
        cmocka_unit_test(test_timestamp),
        cmocka_unit_test(test_wrappers),
        cmocka_unit_test(test_struct_round_trip),
        cmocka_unit_test(test_depth_guard),
        cmocka_unit_test(test_enums_by_name_and_number),
        cmocka_unit_test(test_oneof),
        cmocka_unit_test(test_map_fields),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_json_names),
        cmocka_unit_test(test_numbers_as_text),
        cmocka_unit_test(test_error_collection),
        cmocka_unit_test(test_registry_find),
        cmocka_unit_test(test_any_inline_fields),
        cmocka_unit_test(test_any_wkt_value_form),
        cmocka_unit_test(test_any_errors),
        cmocka_unit_test(test_any_unpack_errors),
        cmocka_unit_test(test_typed_struct),
        cmocka_unit_test(test_typed_struct_errors),
        cmocka_unit_test(test_envoy_static_bootstrap),
        cmocka_unit_test(test_envoy_ads_bootstrap),
        cmocka_unit_test(test_examples_map),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
