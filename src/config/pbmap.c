/*
 * pbmap.c - the generic config mapper (see pbmap.h): a cJSON tree onto protobuf-c messages,
 * driven only by the generated descriptors, following the proto3 JSON mapping as Envoy reads
 * bootstrap files; plus Any unpacking (TypedStruct included), the descriptor registry lookup
 * and Struct -> JSON.
 *
 * Owns nothing long-lived: every call builds its own context (error path, depth). The only
 * generated types it knows are the well-known types (Any, Duration, Timestamp, wrappers,
 * Struct/Value/ListValue), recognized by full name. Every message it builds is allocated with
 * malloc (common/mem.h) so protobuf_c_message_free_unpacked(msg, NULL) frees it, also when a
 * mapping fails halfway. Pure code, any thread (the registry is read-only).
 */
#include "config/pbmap.h"

#include "common/base64.h"
#include "common/mem.h"
#include "config/pb_registry.h"

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"

#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Message nesting limit (Struct/Value levels included). */
#define PB_MAX_DEPTH 64
/* Duration and Timestamp limits of the proto3 JSON mapping. */
#define PB_DURATION_MAX_SECONDS 315576000000LL
#define PB_TIMESTAMP_MIN_SECONDS (-62135596800LL) /* 0001-01-01T00:00:00Z */
#define PB_TIMESTAMP_MAX_SECONDS 253402300799LL   /* 9999-12-31T23:59:59Z */
#define PB_DEFAULT_TYPE_PREFIX "type.googleapis.com/"
/* 2^53: integral doubles below it print exactly with "%.0f". */
#define PB_EXACT_DOUBLE_INT 9007199254740992.0

typedef enum pb_wkt {
    PB_WKT_NONE = 0,
    PB_WKT_ANY,
    PB_WKT_DURATION,
    PB_WKT_TIMESTAMP,
    PB_WKT_WRAPPER,
    PB_WKT_STRUCT,
    PB_WKT_VALUE,
    PB_WKT_LIST_VALUE,
    /* PB_WKT_COUNT */
} pb_wkt_t;

typedef struct pb_ctx {
    mcplex_errors_t *errs;
    int flags;
    int depth;
    size_t nerr; /* errors added by this call */
    char *path;  /* "a.b[2].c", NUL-terminated */
    size_t path_len;
    size_t path_cap;
} pb_ctx_t;

static void pb_map_message(pb_ctx_t *c, const cJSON *json, const ProtobufCMessageDescriptor *desc,
                           ProtobufCMessage *msg);

/* ---- context: error path and error reporting ---------------------------------------------- */

static void
pb_path_append(pb_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
pb_path_append(pb_ctx_t *c, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    MCPLEX_BUG_ON(n < 0);
    if (c->path_len + (size_t)n + 1 > c->path_cap) {
        c->path_cap = (c->path_len + (size_t)n + 1) * 2;
        c->path = mcplex_realloc(c->path, c->path_cap);
    }
    va_start(ap, fmt);
    vsnprintf(c->path + c->path_len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    c->path_len += (size_t)n;
}

/* Appends ".key" (or "key" at the start); returns the length to restore with pb_path_pop. */
static size_t
pb_path_push_key(pb_ctx_t *c, const char *key)
{
    size_t old = c->path_len;

    pb_path_append(c, "%s%s", c->path_len > 0 ? "." : "", key);
    return old;
}

static size_t
pb_path_push_index(pb_ctx_t *c, size_t i)
{
    size_t old = c->path_len;

    pb_path_append(c, "[%zu]", i);
    return old;
}

/* Map keys are data, not field names: written as ["key"]. */
static size_t
pb_path_push_map_key(pb_ctx_t *c, const char *key)
{
    size_t old = c->path_len;

    pb_path_append(c, "[\"%s\"]", key);
    return old;
}

static void
pb_path_pop(pb_ctx_t *c, size_t len)
{
    c->path_len = len;
    c->path[len] = '\0';
}

static void
pb_ctx_init(pb_ctx_t *c, mcplex_errors_t *errs, const char *path, int flags)
{
    memset(c, 0, sizeof(*c));
    c->errs = errs;
    c->flags = flags;
    c->path_cap = 128;
    c->path = mcplex_malloc(c->path_cap);
    c->path[0] = '\0';
    if (path != NULL && path[0] != '\0')
        pb_path_append(c, "%s", path);
}

static void
pb_ctx_dispose(pb_ctx_t *c)
{
    free(c->path);
}

static void
pb_error(pb_ctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
pb_error(pb_ctx_t *c, const char *fmt, ...)
{
    char msg[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mcplex_errors_add(c->errs, c->path, "%s", msg);
    c->nerr++;
}

static const char *
pb_kind(const cJSON *item)
{
    if (cJSON_IsObject(item))
        return "object";
    if (cJSON_IsArray(item))
        return "array";
    if (cJSON_IsString(item))
        return "string";
    if (cJSON_IsNumber(item))
        return "number";
    if (cJSON_IsBool(item))
        return "boolean";
    return "null";
}

/* A short printable form of a scalar for error messages. */
static const char *
pb_brief(const cJSON *item, char *buf, size_t len)
{
    if (cJSON_IsString(item) || (cJSON_IsNumber(item) && item->valuestring != NULL))
        snprintf(buf, len, "%.64s%s", item->valuestring, strlen(item->valuestring) > 64 ? "..." : "");
    else if (cJSON_IsNumber(item))
        snprintf(buf, len, "%.17g", item->valuedouble);
    else if (cJSON_IsBool(item))
        snprintf(buf, len, "%s", cJSON_IsTrue(item) ? "true" : "false");
    else
        snprintf(buf, len, "%s", pb_kind(item));
    return buf;
}

/* ---- descriptors -------------------------------------------------------------------------- */

static pb_wkt_t
pb_wkt_kind(const ProtobufCMessageDescriptor *desc)
{
    static const char *const wrappers[] = {
        "google.protobuf.DoubleValue", "google.protobuf.FloatValue",  "google.protobuf.Int64Value",
        "google.protobuf.UInt64Value", "google.protobuf.Int32Value",  "google.protobuf.UInt32Value",
        "google.protobuf.BoolValue",   "google.protobuf.StringValue", "google.protobuf.BytesValue",
    };
    const char *name = desc->name;

    if (strncmp(name, "google.protobuf.", 16) != 0)
        return PB_WKT_NONE;
    if (strcmp(name, "google.protobuf.Any") == 0)
        return PB_WKT_ANY;
    if (strcmp(name, "google.protobuf.Duration") == 0)
        return PB_WKT_DURATION;
    if (strcmp(name, "google.protobuf.Timestamp") == 0)
        return PB_WKT_TIMESTAMP;
    if (strcmp(name, "google.protobuf.Struct") == 0)
        return PB_WKT_STRUCT;
    if (strcmp(name, "google.protobuf.Value") == 0)
        return PB_WKT_VALUE;
    if (strcmp(name, "google.protobuf.ListValue") == 0)
        return PB_WKT_LIST_VALUE;
    for (size_t i = 0; i < MCPLEX_ARRAY_SIZE(wrappers); i++) {
        if (strcmp(name, wrappers[i]) == 0)
            return PB_WKT_WRAPPER;
    }
    return PB_WKT_NONE;
}

static bool
pb_is_typed_struct_name(const char *name)
{
    return strcmp(name, "xds.type.v3.TypedStruct") == 0 || strcmp(name, "udpa.type.v1.TypedStruct") == 0;
}

/* The full message name of a type URL: what follows the last '/'. */
static const char *
pb_type_name(const char *type_url)
{
    const char *slash = strrchr(type_url, '/');

    return slash != NULL ? slash + 1 : type_url;
}

/* True when |key| is the lowerCamelCase JSON name protoc derives from |name|. */
static bool
pb_json_name_matches(const char *name, const char *key)
{
    bool upper = false;

    for (; *name != '\0'; name++) {
        if (*name == '_') {
            upper = true;
            continue;
        }
        if (*key++ != (upper ? (char)toupper((unsigned char)*name) : *name))
            return false;
        upper = false;
    }
    return *key == '\0';
}

static const ProtobufCFieldDescriptor *
pb_find_field(const ProtobufCMessageDescriptor *desc, const char *key)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(desc, key);

    if (f != NULL)
        return f;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        if (pb_json_name_matches(desc->fields[i].name, key))
            return &desc->fields[i];
    }
    return NULL;
}

static bool
pb_is_map_field(const ProtobufCFieldDescriptor *field)
{
    const ProtobufCMessageDescriptor *entry = field->descriptor;
    const ProtobufCFieldDescriptor *k, *v;
    size_t len;

    if (field->type != PROTOBUF_C_TYPE_MESSAGE || field->label != PROTOBUF_C_LABEL_REPEATED)
        return false;
    if (entry->n_fields != 2)
        return false;
    len = strlen(entry->name);
    if (len < 5 || strcmp(entry->name + len - 5, "Entry") != 0)
        return false;
    k = protobuf_c_message_descriptor_get_field(entry, 1);
    v = protobuf_c_message_descriptor_get_field(entry, 2);
    return k != NULL && v != NULL && strcmp(k->name, "key") == 0 && strcmp(v->name, "value") == 0;
}

static const char *
pb_type_label(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return "int32";
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return "int64";
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return "uint32";
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return "uint64";
    case PROTOBUF_C_TYPE_FLOAT:
        return "float";
    case PROTOBUF_C_TYPE_DOUBLE:
        return "double";
    case PROTOBUF_C_TYPE_BOOL:
        return "bool";
    case PROTOBUF_C_TYPE_ENUM:
        return "enum";
    case PROTOBUF_C_TYPE_STRING:
        return "string";
    case PROTOBUF_C_TYPE_BYTES:
        return "bytes";
    case PROTOBUF_C_TYPE_MESSAGE:
        return "message";
    }
    return "?";
}

static size_t
pb_elem_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

static ProtobufCMessage *
pb_new_message(const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *msg = mcplex_calloc(1, desc->sizeof_message);

    protobuf_c_message_init(desc, msg);
    return msg;
}

static cJSON *
pb_json_check(cJSON *item)
{
    if (item == NULL)
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
    return item;
}

/* A string cJSON_Delete can free (cJSON's allocator). */
static char *
pb_json_strdup(const char *str)
{
    size_t len = strlen(str);
    char *copy = cJSON_malloc(len + 1);

    if (copy == NULL)
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
    memcpy(copy, str, len + 1);
    return copy;
}

#define PB_MEMBER(type, msg, offset) ((type *)(void *)((char *)(msg) + (offset)))

/* ---- scalars ------------------------------------------------------------------------------ */

/*
 * Parses an integer literal: optional sign, then decimal digits, 0x hex or 0o octal (as the
 * YAML loader classifies them). Returns 0, -1 when |s| is not an integer, -2 on overflow.
 */
static int
pb_parse_int_text(const char *s, bool *neg, uint64_t *mag)
{
    unsigned base = 10;
    uint64_t v = 0;

    *neg = false;
    if (*s == '-' || *s == '+')
        *neg = *s++ == '-';
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X' || s[1] == 'o')) {
        base = s[1] == 'o' ? 8 : 16;
        s += 2;
    }
    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        unsigned d;

        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (*s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a' + 10);
        else if (*s >= 'A' && *s <= 'F')
            d = (unsigned)(*s - 'A' + 10);
        else
            return -1;
        if (d >= base)
            return -1;
        if (v > (UINT64_MAX - d) / base)
            return -2;
        v = v * base + d;
    }
    *mag = v;
    return 0;
}

/* Parses a whole string as a double (no surrounding space); proto3 names for the specials. */
static bool
pb_parse_double_text(const char *s, double *out)
{
    char *end;

    if (strcmp(s, "Infinity") == 0 || strcmp(s, ".inf") == 0) {
        *out = INFINITY;
        return true;
    }
    if (strcmp(s, "-Infinity") == 0 || strcmp(s, "-.inf") == 0) {
        *out = -INFINITY;
        return true;
    }
    if (strcmp(s, "NaN") == 0 || strcmp(s, ".nan") == 0) {
        *out = NAN;
        return true;
    }
    if (*s == '\0' || isspace((unsigned char)*s))
        return false;
    *out = strtod(s, &end);
    return *end == '\0' && isfinite(*out);
}

/* An integer from a number or a string holding one (proto3 JSON allows both). */
static bool
pb_get_integer(pb_ctx_t *c, const cJSON *item, const char *type, bool *neg, uint64_t *mag)
{
    const char *text = NULL;
    char brief[96];
    double d;
    int rc;

    if (cJSON_IsNumber(item))
        text = item->valuestring;
    else if (cJSON_IsString(item))
        text = item->valuestring;
    else {
        pb_error(c, "expected %s, got %s", type, pb_kind(item));
        return false;
    }
    if (text != NULL) {
        rc = pb_parse_int_text(text, neg, mag);
        if (rc == 0)
            return true;
        if (rc == -2)
            goto range;
        /* "1e3" or "2.0": integral values written as floats are fine. */
        if (!pb_parse_double_text(text, &d))
            goto invalid;
    } else {
        d = item->valuedouble;
    }
    if (!isfinite(d) || d != floor(d))
        goto invalid;
    if (fabs(d) >= 18446744073709551616.0)
        goto range;
    *neg = d < 0;
    *mag = (uint64_t)fabs(d);
    return true;
invalid:
    pb_error(c, "'%s' is not a valid %s", pb_brief(item, brief, sizeof(brief)), type);
    return false;
range:
    pb_error(c, "value '%s' out of range for %s", pb_brief(item, brief, sizeof(brief)), type);
    return false;
}

static bool
pb_get_signed(pb_ctx_t *c, const cJSON *item, const char *type, int64_t max, int64_t *out)
{
    char brief[96];
    uint64_t mag;
    bool neg;

    if (!pb_get_integer(c, item, type, &neg, &mag))
        return false;
    if (neg ? mag > (uint64_t)max + 1 : mag > (uint64_t)max) {
        pb_error(c, "value '%s' out of range for %s", pb_brief(item, brief, sizeof(brief)), type);
        return false;
    }
    /* -(max + 1) is the minimum; computed without overflowing. */
    *out = neg ? (mag == 0 ? 0 : -(int64_t)(mag - 1) - 1) : (int64_t)mag;
    return true;
}

static bool
pb_get_unsigned(pb_ctx_t *c, const cJSON *item, const char *type, uint64_t max, uint64_t *out)
{
    char brief[96];
    uint64_t mag;
    bool neg;

    if (!pb_get_integer(c, item, type, &neg, &mag))
        return false;
    if ((neg && mag != 0) || mag > max) {
        pb_error(c, "value '%s' out of range for %s", pb_brief(item, brief, sizeof(brief)), type);
        return false;
    }
    *out = mag;
    return true;
}

static bool
pb_get_double(pb_ctx_t *c, const cJSON *item, bool is_float, double *out)
{
    const char *type = is_float ? "float" : "double";
    char brief[96];

    if (cJSON_IsNumber(item)) {
        *out = item->valuedouble;
    } else if (cJSON_IsString(item)) {
        if (!pb_parse_double_text(item->valuestring, out)) {
            pb_error(c, "'%s' is not a valid %s", pb_brief(item, brief, sizeof(brief)), type);
            return false;
        }
    } else {
        pb_error(c, "expected %s, got %s", type, pb_kind(item));
        return false;
    }
    if (is_float && isfinite(*out) && fabs(*out) > FLT_MAX) {
        pb_error(c, "value '%s' out of range for float", pb_brief(item, brief, sizeof(brief)));
        return false;
    }
    return true;
}

static bool
pb_get_enum(pb_ctx_t *c, const ProtobufCEnumDescriptor *edesc, const cJSON *item, int *out)
{
    const ProtobufCEnumValue *v;
    int64_t n;

    if (cJSON_IsString(item)) {
        if ((v = protobuf_c_enum_descriptor_get_value_by_name(edesc, item->valuestring)) == NULL) {
            pb_error(c, "unknown value '%.64s' for enum %s", item->valuestring, edesc->name);
            return false;
        }
        *out = v->value;
        return true;
    }
    if (cJSON_IsNumber(item)) {
        /* proto3 enums are open: any int32 is accepted, as by Envoy. */
        if (!pb_get_signed(c, item, "enum", INT32_MAX, &n))
            return false;
        *out = (int)n;
        return true;
    }
    pb_error(c, "expected an enum name or number for %s, got %s", edesc->name, pb_kind(item));
    return false;
}

/* Strings; a number is taken by its source text (port: 3000 into a string field reads "3000"). */
static bool
pb_get_string(pb_ctx_t *c, const cJSON *item, char **out)
{
    if (cJSON_IsString(item)) {
        *out = mcplex_strdup(item->valuestring);
        return true;
    }
    if (cJSON_IsNumber(item)) {
        double d = item->valuedouble;

        if (item->valuestring != NULL)
            *out = mcplex_strdup(item->valuestring);
        else if (d == floor(d) && fabs(d) < PB_EXACT_DOUBLE_INT)
            *out = mcplex_sprintf("%.0f", d);
        else
            *out = mcplex_sprintf("%.17g", d);
        return true;
    }
    pb_error(c, "expected a string, got %s", pb_kind(item));
    return false;
}

/* Standard or URL-safe base64, padding optional (proto3 JSON accepts both alphabets). */
static bool
pb_get_bytes(pb_ctx_t *c, const cJSON *item, ProtobufCBinaryData *out)
{
    void *data;
    size_t len;

    if (!cJSON_IsString(item)) {
        pb_error(c, "expected a base64 string, got %s", pb_kind(item));
        return false;
    }
    if (mcplex_base64_decode_any(item->valuestring, strlen(item->valuestring), &data, &len) != 0) {
        pb_error(c, "invalid base64 '%.64s'", item->valuestring);
        return false;
    }
    if (len == 0) {
        free(data);
        data = NULL;
    }
    out->data = data;
    out->len = len;
    return true;
}

/* Writes one non-message value of |field|'s type at |dst|. */
static bool
pb_set_scalar(pb_ctx_t *c, const ProtobufCFieldDescriptor *field, const cJSON *item, void *dst)
{
    const char *type = pb_type_label(field->type);
    int64_t i64;
    uint64_t u64;
    double d;

    switch (field->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (!pb_get_signed(c, item, type, INT32_MAX, &i64))
            return false;
        *(int32_t *)dst = (int32_t)i64;
        return true;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (!pb_get_signed(c, item, type, INT64_MAX, &i64))
            return false;
        *(int64_t *)dst = i64;
        return true;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (!pb_get_unsigned(c, item, type, UINT32_MAX, &u64))
            return false;
        *(uint32_t *)dst = (uint32_t)u64;
        return true;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (!pb_get_unsigned(c, item, type, UINT64_MAX, &u64))
            return false;
        *(uint64_t *)dst = u64;
        return true;
    case PROTOBUF_C_TYPE_FLOAT:
        if (!pb_get_double(c, item, true, &d))
            return false;
        *(float *)dst = (float)d;
        return true;
    case PROTOBUF_C_TYPE_DOUBLE:
        if (!pb_get_double(c, item, false, &d))
            return false;
        *(double *)dst = d;
        return true;
    case PROTOBUF_C_TYPE_BOOL:
        if (!cJSON_IsBool(item)) {
            char brief[96];

            pb_error(c, "expected true or false, got %s '%s'", pb_kind(item),
                     pb_brief(item, brief, sizeof(brief)));
            return false;
        }
        *(protobuf_c_boolean *)dst = cJSON_IsTrue(item) ? 1 : 0;
        return true;
    case PROTOBUF_C_TYPE_ENUM:
        return pb_get_enum(c, field->descriptor, item, (int *)dst);
    case PROTOBUF_C_TYPE_STRING:
        return pb_get_string(c, item, (char **)dst);
    case PROTOBUF_C_TYPE_BYTES:
        return pb_get_bytes(c, item, (ProtobufCBinaryData *)dst);
    case PROTOBUF_C_TYPE_MESSAGE:
        break;
    }
    MCPLEX_BUG_ON(1);
    return false;
}

/* ---- well-known types --------------------------------------------------------------------- */

/*
 * "[-]S[.fffffffff]" seconds, with a trailing 's' when |suffix|. Fills *secs and *nanos
 * (same sign). Returns false when malformed or out of the proto3 range.
 */
static bool
pb_parse_duration_text(const char *s, bool suffix, int64_t *secs, int32_t *nanos)
{
    bool neg = false;
    int64_t sec = 0;
    int32_t ns = 0;
    int frac_digits = 0;

    if (*s == '-' || *s == '+')
        neg = *s++ == '-';
    if (!(*s >= '0' && *s <= '9'))
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        sec = sec * 10 + (*s - '0');
        if (sec > PB_DURATION_MAX_SECONDS)
            return false;
    }
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (++frac_digits > 9)
                return false;
            ns = ns * 10 + (*s - '0');
        }
        for (int i = frac_digits; i < 9; i++)
            ns *= 10;
    }
    if (suffix && *s++ != 's')
        return false;
    if (*s != '\0')
        return false;
    *secs = neg ? -sec : sec;
    *nanos = neg ? -ns : ns;
    return true;
}

static void
pb_map_duration(pb_ctx_t *c, const cJSON *json, Google__Protobuf__Duration *dur)
{
    char brief[96];
    int64_t secs;
    int32_t nanos;

    if (cJSON_IsString(json)) {
        if (!pb_parse_duration_text(json->valuestring, true, &secs, &nanos))
            goto invalid;
    } else if (cJSON_IsNumber(json)) {
        /* A bare number is seconds (lenient: Envoy wants "Ns"). */
        if (json->valuestring != NULL) {
            if (!pb_parse_duration_text(json->valuestring, false, &secs, &nanos))
                goto invalid;
        } else {
            double d = json->valuedouble;

            if (!isfinite(d) || fabs(d) > (double)PB_DURATION_MAX_SECONDS)
                goto invalid;
            secs = (int64_t)d;
            nanos = (int32_t)llround((d - (double)secs) * 1e9);
            if (nanos >= 1000000000 || nanos <= -1000000000) {
                secs += nanos > 0 ? 1 : -1;
                nanos = 0;
            }
        }
    } else {
        pb_error(c, "expected a duration string such as \"1.5s\", got %s", pb_kind(json));
        return;
    }
    dur->seconds = secs;
    dur->nanos = nanos;
    return;
invalid:
    pb_error(c, "invalid duration '%s'", pb_brief(json, brief, sizeof(brief)));
}

static int64_t
pb_days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Reads exactly |n| digits. */
static bool
pb_digits(const char **s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        char ch = (*s)[i];

        if (!(ch >= '0' && ch <= '9'))
            return false;
        v = v * 10 + (ch - '0');
    }
    *s += n;
    *out = v;
    return true;
}

/* RFC 3339: YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM). */
static bool
pb_parse_timestamp_text(const char *s, int64_t *secs, int32_t *nanos)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, sec, oh = 0, om = 0, ns = 0, dim;
    int64_t t;

    if (!pb_digits(&s, 4, &y) || *s++ != '-' || !pb_digits(&s, 2, &mo) || *s++ != '-' ||
        !pb_digits(&s, 2, &d))
        return false;
    if ((*s != 'T' && *s != 't' && *s != ' ') || !(s++, pb_digits(&s, 2, &h)) || *s++ != ':' ||
        !pb_digits(&s, 2, &mi) || *s++ != ':' || !pb_digits(&s, 2, &sec))
        return false;
    if (*s == '.') {
        int n = 0;

        s++;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (++n > 9)
                return false;
            ns = ns * 10 + (*s - '0');
        }
        if (n == 0)
            return false;
        for (; n < 9; n++)
            ns *= 10;
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        int sign = *s++ == '-' ? -1 : 1;

        if (!pb_digits(&s, 2, &oh) || *s++ != ':' || !pb_digits(&s, 2, &om) || oh > 23 || om > 59)
            return false;
        oh *= sign;
        om *= sign;
    } else {
        return false;
    }
    if (*s != '\0' || y < 1 || mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 59)
        return false;
    dim = mdays[mo - 1] + (mo == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    if (d < 1 || d > dim)
        return false;
    t = pb_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    t -= (int64_t)oh * 3600 + (int64_t)om * 60;
    if (t < PB_TIMESTAMP_MIN_SECONDS || t > PB_TIMESTAMP_MAX_SECONDS)
        return false;
    *secs = t;
    *nanos = ns;
    return true;
}

static void
pb_map_timestamp(pb_ctx_t *c, const cJSON *json, Google__Protobuf__Timestamp *ts)
{
    char brief[96];

    if (!cJSON_IsString(json)) {
        pb_error(c, "expected an RFC 3339 timestamp string, got %s", pb_kind(json));
        return;
    }
    if (!pb_parse_timestamp_text(json->valuestring, &ts->seconds, &ts->nanos))
        pb_error(c, "invalid timestamp '%s'", pb_brief(json, brief, sizeof(brief)));
}

static void
pb_map_struct(pb_ctx_t *c, const cJSON *json, Google__Protobuf__Struct *st)
{
    int n;

    if (!cJSON_IsObject(json)) {
        pb_error(c, "expected an object (google.protobuf.Struct), got %s", pb_kind(json));
        return;
    }
    if ((n = cJSON_GetArraySize(json)) == 0)
        return;
    st->fields = mcplex_calloc((size_t)n, sizeof(*st->fields));
    for (const cJSON *item = json->child; item != NULL; item = item->next) {
        Google__Protobuf__Struct__FieldsEntry *entry;
        size_t mark = pb_path_push_map_key(c, item->string);

        entry = (Google__Protobuf__Struct__FieldsEntry *)pb_new_message(
            &google__protobuf__struct__fields_entry__descriptor);
        st->fields[st->n_fields++] = entry;
        entry->key = mcplex_strdup(item->string);
        entry->value = (Google__Protobuf__Value *)pb_new_message(&google__protobuf__value__descriptor);
        pb_map_message(c, item, &google__protobuf__value__descriptor, &entry->value->base);
        pb_path_pop(c, mark);
    }
}

static void
pb_map_list_value(pb_ctx_t *c, const cJSON *json, Google__Protobuf__ListValue *list)
{
    size_t i = 0;
    int n;

    if (!cJSON_IsArray(json)) {
        pb_error(c, "expected an array (google.protobuf.ListValue), got %s", pb_kind(json));
        return;
    }
    if ((n = cJSON_GetArraySize(json)) == 0)
        return;
    list->values = mcplex_calloc((size_t)n, sizeof(*list->values));
    for (const cJSON *item = json->child; item != NULL; item = item->next, i++) {
        size_t mark = pb_path_push_index(c, i);

        Google__Protobuf__Value *v;

        v = (Google__Protobuf__Value *)pb_new_message(&google__protobuf__value__descriptor);
        list->values[list->n_values++] = v;
        pb_map_message(c, item, &google__protobuf__value__descriptor, &v->base);
        pb_path_pop(c, mark);
    }
}

static void
pb_map_value(pb_ctx_t *c, const cJSON *json, Google__Protobuf__Value *v)
{
    if (cJSON_IsNull(json)) {
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
        v->null_value = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
    } else if (cJSON_IsBool(json)) {
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
        v->bool_value = cJSON_IsTrue(json) ? 1 : 0;
    } else if (cJSON_IsNumber(json)) {
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
        v->number_value = json->valuedouble;
    } else if (cJSON_IsString(json)) {
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
        v->string_value = mcplex_strdup(json->valuestring);
    } else if (cJSON_IsObject(json)) {
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
        v->struct_value = (Google__Protobuf__Struct *)pb_new_message(&google__protobuf__struct__descriptor);
        pb_map_message(c, json, &google__protobuf__struct__descriptor, &v->struct_value->base);
    } else {
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
        v->list_value =
            (Google__Protobuf__ListValue *)pb_new_message(&google__protobuf__list_value__descriptor);
        pb_map_message(c, json, &google__protobuf__list_value__descriptor, &v->list_value->base);
    }
}

static void pb_map_fields(pb_ctx_t *c, const cJSON *json, const ProtobufCMessageDescriptor *desc,
                          ProtobufCMessage *msg, bool skip_type_key);

/* The WKTs whose JSON form is not an object of their fields: inside an Any they sit under "value". */
static bool
pb_has_special_json(const ProtobufCMessageDescriptor *desc)
{
    return pb_wkt_kind(desc) != PB_WKT_NONE;
}

static void
pb_map_any(pb_ctx_t *c, const cJSON *json, Google__Protobuf__Any *any)
{
    const ProtobufCMessageDescriptor *desc;
    const cJSON *type, *value;
    ProtobufCMessage *inner = NULL;
    size_t errors_before = c->nerr;
    size_t mark;

    if (!cJSON_IsObject(json)) {
        pb_error(c, "expected an object with \"@type\" (google.protobuf.Any), got %s", pb_kind(json));
        return;
    }
    type = cJSON_GetObjectItemCaseSensitive(json, "@type");
    if (type == NULL) {
        if (json->child != NULL)
            pb_error(c, "missing \"@type\" in google.protobuf.Any");
        return;
    }
    if (!cJSON_IsString(type) || type->valuestring[0] == '\0') {
        pb_error(c, "\"@type\" must be a non-empty string");
        return;
    }
    if ((desc = mcplex_pb_registry_find(type->valuestring)) == NULL) {
        if (c->flags & MCPLEX_PBMAP_DEFER_UNKNOWN_TYPES) {
            if (strchr(type->valuestring, '/') != NULL)
                any->type_url = mcplex_strdup(type->valuestring);
            else
                any->type_url = mcplex_sprintf("%s%s", PB_DEFAULT_TYPE_PREFIX, type->valuestring);
            return;
        }
        pb_error(c, "unknown type '%.200s'", type->valuestring);
        return;
    }
    inner = pb_new_message(desc);
    if (pb_has_special_json(desc)) {
        /* {"@type": ".../google.protobuf.Duration", "value": "1s"} */
        for (const cJSON *item = json->child; item != NULL; item = item->next) {
            if (strcmp(item->string, "@type") == 0 || strcmp(item->string, "value") == 0)
                continue;
            if (!(c->flags & MCPLEX_PBMAP_IGNORE_UNKNOWN)) {
                mark = pb_path_push_key(c, item->string);
                pb_error(c, "unknown field '%s'", item->string);
                pb_path_pop(c, mark);
            }
        }
        if ((value = cJSON_GetObjectItemCaseSensitive(json, "value")) != NULL) {
            mark = pb_path_push_key(c, "value");
            pb_map_message(c, value, desc, inner);
            pb_path_pop(c, mark);
        }
    } else {
        pb_map_fields(c, json, desc, inner, true);
    }
    if (c->nerr == errors_before) {
        size_t len = protobuf_c_message_get_packed_size(inner);

        if (len > 0) {
            any->value.data = mcplex_malloc(len);
            any->value.len = protobuf_c_message_pack(inner, any->value.data);
        }
        if (strchr(type->valuestring, '/') != NULL)
            any->type_url = mcplex_strdup(type->valuestring);
        else
            any->type_url = mcplex_sprintf("%s%s", PB_DEFAULT_TYPE_PREFIX, type->valuestring);
    }
    protobuf_c_message_free_unpacked(inner, NULL);
}

/* ---- fields ------------------------------------------------------------------------------- */

/* Sets a singular field (the oneof case or has_ flag too). JSON null leaves the default. */
static void
pb_set_singular(pb_ctx_t *c, const ProtobufCMessageDescriptor *desc, const ProtobufCFieldDescriptor *field,
                const cJSON *item, ProtobufCMessage *msg)
{
    uint32_t *oneof_case = NULL;
    void *dst = PB_MEMBER(char, msg, field->offset);

    if (cJSON_IsNull(item) &&
        !(field->type == PROTOBUF_C_TYPE_MESSAGE && pb_wkt_kind(field->descriptor) == PB_WKT_VALUE))
        return;
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        oneof_case = PB_MEMBER(uint32_t, msg, field->quantifier_offset);
        if (*oneof_case != 0 && *oneof_case != field->id) {
            const ProtobufCFieldDescriptor *other;

            other = protobuf_c_message_descriptor_get_field(desc, *oneof_case);

            pb_error(c, "'%s' and '%s' are both set, but they belong to the same oneof; set only one",
                     other != NULL ? other->name : "?", field->name);
            return;
        }
    }
    if (field->type == PROTOBUF_C_TYPE_MESSAGE) {
        ProtobufCMessage *sub = pb_new_message(field->descriptor);

        *(ProtobufCMessage **)dst = sub;
        if (oneof_case != NULL)
            *oneof_case = field->id;
        pb_map_message(c, item, field->descriptor, sub);
        return;
    }
    if (!pb_set_scalar(c, field, item, dst))
        return;
    if (oneof_case != NULL)
        *oneof_case = field->id;
    else if (field->label == PROTOBUF_C_LABEL_OPTIONAL && field->type != PROTOBUF_C_TYPE_STRING)
        *PB_MEMBER(protobuf_c_boolean, msg, field->quantifier_offset) = 1;
}

static void
pb_set_map(pb_ctx_t *c, const ProtobufCFieldDescriptor *field, const cJSON *item, ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *edesc = field->descriptor;
    const ProtobufCFieldDescriptor *kf = protobuf_c_message_descriptor_get_field(edesc, 1);
    const ProtobufCFieldDescriptor *vf = protobuf_c_message_descriptor_get_field(edesc, 2);
    size_t *n_out = PB_MEMBER(size_t, msg, field->quantifier_offset);
    ProtobufCMessage ***arr_out = PB_MEMBER(ProtobufCMessage **, msg, field->offset);
    int n;

    if (!cJSON_IsObject(item)) {
        pb_error(c, "expected an object (map), got %s", pb_kind(item));
        return;
    }
    if ((n = cJSON_GetArraySize(item)) == 0)
        return;
    *arr_out = mcplex_calloc((size_t)n, sizeof(ProtobufCMessage *));
    for (const cJSON *e = item->child; e != NULL; e = e->next) {
        ProtobufCMessage *entry = pb_new_message(edesc);
        size_t mark = pb_path_push_map_key(c, e->string);
        void *kdst = PB_MEMBER(char, entry, kf->offset);

        (*arr_out)[(*n_out)++] = entry;
        /* Keys are always JSON strings; typed keys are parsed from them. */
        if (kf->type == PROTOBUF_C_TYPE_BOOL) {
            if (strcmp(e->string, "true") == 0 || strcmp(e->string, "false") == 0)
                *(protobuf_c_boolean *)kdst = e->string[0] == 't';
            else
                pb_error(c, "map key '%s' is not a bool", e->string);
        } else {
            cJSON key;

            memset(&key, 0, sizeof(key));
            key.type = cJSON_String;
            key.valuestring = e->string;
            pb_set_scalar(c, kf, &key, kdst);
        }
        if (cJSON_IsNull(e) &&
            !(vf->type == PROTOBUF_C_TYPE_MESSAGE && pb_wkt_kind(vf->descriptor) == PB_WKT_VALUE))
            pb_error(c, "null is not allowed as a map value");
        else
            pb_set_singular(c, edesc, vf, e, entry);
        pb_path_pop(c, mark);
    }
}

static void
pb_set_repeated(pb_ctx_t *c, const ProtobufCFieldDescriptor *field, const cJSON *item, ProtobufCMessage *msg)
{
    size_t *n_out = PB_MEMBER(size_t, msg, field->quantifier_offset);
    char **arr_out = PB_MEMBER(char *, msg, field->offset);
    size_t esize = pb_elem_size(field->type);
    size_t i = 0;
    int n;

    if (cJSON_IsNull(item))
        return;
    if (pb_is_map_field(field)) {
        pb_set_map(c, field, item, msg);
        return;
    }
    if (!cJSON_IsArray(item)) {
        pb_error(c, "expected an array, got %s", pb_kind(item));
        return;
    }
    if ((n = cJSON_GetArraySize(item)) == 0)
        return;
    /* Zeroed elements are valid for free_unpacked, so the count covers failed ones too. */
    *arr_out = mcplex_calloc((size_t)n, esize);
    *n_out = (size_t)n;
    for (const cJSON *e = item->child; e != NULL; e = e->next, i++) {
        size_t mark = pb_path_push_index(c, i);
        void *dst = *arr_out + i * esize;

        if (field->type == PROTOBUF_C_TYPE_MESSAGE) {
            ProtobufCMessage *sub = pb_new_message(field->descriptor);

            *(ProtobufCMessage **)dst = sub;
            if (cJSON_IsNull(e) && pb_wkt_kind(field->descriptor) != PB_WKT_VALUE)
                pb_error(c, "null is not allowed in a list");
            else
                pb_map_message(c, e, field->descriptor, sub);
        } else if (cJSON_IsNull(e)) {
            pb_error(c, "null is not allowed in a list");
        } else {
            pb_set_scalar(c, field, e, dst);
        }
        pb_path_pop(c, mark);
    }
}

static void
pb_map_fields(pb_ctx_t *c, const cJSON *json, const ProtobufCMessageDescriptor *desc, ProtobufCMessage *msg,
              bool skip_type_key)
{
    uint8_t *seen = mcplex_calloc(desc->n_fields > 0 ? desc->n_fields : 1, 1);

    for (const cJSON *item = json->child; item != NULL; item = item->next) {
        const ProtobufCFieldDescriptor *field;
        size_t mark;

        if (skip_type_key && strcmp(item->string, "@type") == 0)
            continue;
        field = pb_find_field(desc, item->string);
        mark = pb_path_push_key(c, item->string);
        if (field == NULL) {
            if (!(c->flags & MCPLEX_PBMAP_IGNORE_UNKNOWN))
                pb_error(c, "unknown field '%s'", item->string);
        } else if (seen[field - desc->fields]) {
            pb_error(c, "field '%s' is given more than once", field->name);
        } else {
            seen[field - desc->fields] = 1;
            if (field->label == PROTOBUF_C_LABEL_REPEATED)
                pb_set_repeated(c, field, item, msg);
            else
                pb_set_singular(c, desc, field, item, msg);
        }
        pb_path_pop(c, mark);
    }
    free(seen);
}

static void
pb_map_message(pb_ctx_t *c, const cJSON *json, const ProtobufCMessageDescriptor *desc, ProtobufCMessage *msg)
{
    const ProtobufCFieldDescriptor *field;

    pb_wkt_t wkt = pb_wkt_kind(desc);
    /* Value is the glue between Struct/ListValue levels: one JSON level, one count. */
    int step = wkt == PB_WKT_VALUE ? 0 : 1;

    if (c->depth + step > PB_MAX_DEPTH) {
        pb_error(c, "nesting deeper than %d levels", PB_MAX_DEPTH);
        return;
    }
    c->depth += step;
    switch (wkt) {
    case PB_WKT_ANY:
        pb_map_any(c, json, (Google__Protobuf__Any *)msg);
        break;
    case PB_WKT_DURATION:
        pb_map_duration(c, json, (Google__Protobuf__Duration *)msg);
        break;
    case PB_WKT_TIMESTAMP:
        pb_map_timestamp(c, json, (Google__Protobuf__Timestamp *)msg);
        break;
    case PB_WKT_STRUCT:
        pb_map_struct(c, json, (Google__Protobuf__Struct *)msg);
        break;
    case PB_WKT_VALUE:
        pb_map_value(c, json, (Google__Protobuf__Value *)msg);
        break;
    case PB_WKT_LIST_VALUE:
        pb_map_list_value(c, json, (Google__Protobuf__ListValue *)msg);
        break;
    case PB_WKT_WRAPPER:
        /* A bare scalar: 5 for UInt32Value{value: 5}. */
        field = protobuf_c_message_descriptor_get_field(desc, 1);
        if (cJSON_IsNull(json))
            pb_error(c, "null is not a valid %s", desc->name);
        else
            pb_set_scalar(c, field, json, PB_MEMBER(char, msg, field->offset));
        break;
    case PB_WKT_NONE:
        if (!cJSON_IsObject(json))
            pb_error(c, "expected an object (%s), got %s", desc->name, pb_kind(json));
        else
            pb_map_fields(c, json, desc, msg, false);
        break;
    }
    c->depth -= step;
}

/* ---- public ------------------------------------------------------------------------------- */

ProtobufCMessage *
mcplex_pbmap_from_json(const cJSON *json, const ProtobufCMessageDescriptor *desc, const char *path, int flags,
                       mcplex_errors_t *errs)
{
    ProtobufCMessage *msg = NULL;
    pb_ctx_t c;

    pb_ctx_init(&c, errs, path, flags);
    if (json == NULL) {
        pb_error(&c, "no config given for %s", desc->name);
        goto cleanup;
    }
    msg = pb_new_message(desc);
    pb_map_message(&c, json, desc, msg);
    if (c.nerr > 0 && !(flags & MCPLEX_PBMAP_PARTIAL)) {
        protobuf_c_message_free_unpacked(msg, NULL);
        msg = NULL;
    }
cleanup:
    pb_ctx_dispose(&c);
    return msg;
}

const ProtobufCMessageDescriptor *
mcplex_pb_registry_find(const char *type_url)
{
    const char *name;

    if (type_url == NULL)
        return NULL;
    name = pb_type_name(type_url);
    for (size_t i = 0; i < mcplex_pb_registry_len; i++) {
        if (strcmp(mcplex_pb_registry[i]->name, name) == 0)
            return mcplex_pb_registry[i];
    }
    return NULL;
}

/* Reads TypedStruct{type_url, value} through its descriptor (fields 1 and 2). */
static void
pb_typed_struct_fields(const ProtobufCMessage *ts, const char **type_url, const ProtobufCMessage **value)
{
    const ProtobufCFieldDescriptor *f_url = protobuf_c_message_descriptor_get_field(ts->descriptor, 1);
    const ProtobufCFieldDescriptor *f_val = protobuf_c_message_descriptor_get_field(ts->descriptor, 2);

    *type_url = NULL;
    *value = NULL;
    if (f_url != NULL && f_url->type == PROTOBUF_C_TYPE_STRING)
        *type_url = *PB_MEMBER(const char *, ts, f_url->offset);
    if (f_val != NULL && f_val->type == PROTOBUF_C_TYPE_MESSAGE)
        *value = *PB_MEMBER(const ProtobufCMessage *, ts, f_val->offset);
}

ProtobufCMessage *
mcplex_pb_any_unpack(const ProtobufCMessage *any, const ProtobufCMessageDescriptor **desc_out,
                     const char *path, mcplex_errors_t *errs)
{
    const Google__Protobuf__Any *a = (const Google__Protobuf__Any *)any;
    const ProtobufCMessageDescriptor *desc, *real;
    ProtobufCMessage *ts = NULL, *msg = NULL;
    const ProtobufCMessage *ts_value;
    const char *inner_url;
    cJSON *json = NULL;
    pb_ctx_t c;
    size_t mark;

    pb_ctx_init(&c, errs, path, MCPLEX_PBMAP_IGNORE_UNKNOWN);
    *desc_out = NULL;
    if (any == NULL || pb_wkt_kind(any->descriptor) != PB_WKT_ANY) {
        pb_error(&c, "not a google.protobuf.Any");
        goto cleanup;
    }
    if (a->type_url == NULL || a->type_url[0] == '\0') {
        pb_error(&c, "empty google.protobuf.Any (no type URL)");
        goto cleanup;
    }
    if ((desc = mcplex_pb_registry_find(a->type_url)) == NULL) {
        pb_error(&c, "unknown type '%.200s'", a->type_url);
        goto cleanup;
    }
    if (!pb_is_typed_struct_name(desc->name)) {
        if ((msg = protobuf_c_message_unpack(desc, NULL, a->value.len, a->value.data)) == NULL) {
            pb_error(&c, "cannot decode %s", desc->name);
            goto cleanup;
        }
        *desc_out = desc;
        goto cleanup;
    }
    if ((ts = protobuf_c_message_unpack(desc, NULL, a->value.len, a->value.data)) == NULL) {
        pb_error(&c, "cannot decode %s", desc->name);
        goto cleanup;
    }
    pb_typed_struct_fields(ts, &inner_url, &ts_value);
    if (inner_url == NULL || inner_url[0] == '\0') {
        pb_error(&c, "%s without type_url", desc->name);
        goto cleanup;
    }
    if ((real = mcplex_pb_registry_find(inner_url)) == NULL) {
        pb_error(&c, "unknown type '%.200s' in %s", inner_url, desc->name);
        goto cleanup;
    }
    if (ts_value == NULL) {
        json = pb_json_check(cJSON_CreateObject());
    } else if ((json = mcplex_pb_struct_to_json(ts_value)) == NULL) {
        pb_error(&c, "%s value nested deeper than %d levels", desc->name, PB_MAX_DEPTH);
        goto cleanup;
    }
    /* Dynamic config rule: fields this build does not know are ignored. */
    mark = pb_path_push_key(&c, "value");
    msg = pb_new_message(real);
    pb_map_message(&c, json, real, msg);
    pb_path_pop(&c, mark);
    if (c.nerr > 0) {
        protobuf_c_message_free_unpacked(msg, NULL);
        msg = NULL;
        goto cleanup;
    }
    *desc_out = real;
cleanup:
    if (ts != NULL)
        protobuf_c_message_free_unpacked(ts, NULL);
    cJSON_Delete(json);
    pb_ctx_dispose(&c);
    return msg;
}

const char *
mcplex_pb_any_real_type(const ProtobufCMessage *any, char *buf, size_t buf_len)
{
    const Google__Protobuf__Any *a = (const Google__Protobuf__Any *)any;
    const ProtobufCMessageDescriptor *desc;
    const ProtobufCMessage *ts_value;
    ProtobufCMessage *ts;
    const char *inner_url, *result = NULL;

    if (a == NULL || a->type_url == NULL)
        return NULL;
    if (!pb_is_typed_struct_name(pb_type_name(a->type_url)))
        return a->type_url;
    if ((desc = mcplex_pb_registry_find(a->type_url)) == NULL)
        return NULL;
    if ((ts = protobuf_c_message_unpack(desc, NULL, a->value.len, a->value.data)) == NULL)
        return NULL;
    pb_typed_struct_fields(ts, &inner_url, &ts_value);
    if (inner_url != NULL && inner_url[0] != '\0' && strlen(inner_url) < buf_len) {
        memcpy(buf, inner_url, strlen(inner_url) + 1);
        result = buf;
    }
    protobuf_c_message_free_unpacked(ts, NULL);
    return result;
}

static cJSON *pb_value_to_json(const Google__Protobuf__Value *v, int depth);

static cJSON *
pb_struct_to_json(const Google__Protobuf__Struct *st, int depth)
{
    cJSON *obj = pb_json_check(cJSON_CreateObject());

    for (size_t i = 0; i < st->n_fields; i++) {
        const Google__Protobuf__Struct__FieldsEntry *e = st->fields[i];
        cJSON *v;

        if (e == NULL || e->key == NULL)
            continue;
        if ((v = pb_value_to_json(e->value, depth + 1)) == NULL)
            goto fail;
        /* Last one wins, as for a repeated map key on the wire. */
        if (cJSON_GetObjectItemCaseSensitive(obj, e->key) != NULL)
            cJSON_DeleteItemFromObjectCaseSensitive(obj, e->key);
        if (!cJSON_AddItemToObject(obj, e->key, v))
            mcplex_fatal(__FILE__, __LINE__, "out of memory");
    }
    return obj;
fail:
    cJSON_Delete(obj);
    return NULL;
}

static cJSON *
pb_list_to_json(const Google__Protobuf__ListValue *list, int depth)
{
    cJSON *arr = pb_json_check(cJSON_CreateArray());

    for (size_t i = 0; i < list->n_values; i++) {
        cJSON *v = pb_value_to_json(list->values[i], depth + 1);

        if (v == NULL)
            goto fail;
        cJSON_AddItemToArray(arr, v);
    }
    return arr;
fail:
    cJSON_Delete(arr);
    return NULL;
}

static cJSON *
pb_value_to_json(const Google__Protobuf__Value *v, int depth)
{
    char text[64];
    cJSON *item;
    double d;

    if (depth > PB_MAX_DEPTH)
        return NULL;
    if (v == NULL)
        return pb_json_check(cJSON_CreateNull());
    switch (v->kind_case) {
    case GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE:
        d = v->number_value;
        item = pb_json_check(cJSON_CreateNumber(d));
        /* Keep a source text too, so an integral 3000 maps onto a string field as "3000". */
        if (isfinite(d) && d == floor(d) && fabs(d) < PB_EXACT_DOUBLE_INT)
            snprintf(text, sizeof(text), "%.0f", d);
        else
            snprintf(text, sizeof(text), "%.17g", d);
        if (isfinite(d))
            item->valuestring = pb_json_strdup(text);
        return item;
    case GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE:
        return pb_json_check(cJSON_CreateString(v->string_value != NULL ? v->string_value : ""));
    case GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE:
        return pb_json_check(cJSON_CreateBool(v->bool_value));
    case GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE:
        if (v->struct_value == NULL)
            return pb_json_check(cJSON_CreateObject());
        return pb_struct_to_json(v->struct_value, depth);
    case GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE:
        if (v->list_value == NULL)
            return pb_json_check(cJSON_CreateArray());
        return pb_list_to_json(v->list_value, depth);
    default:
        return pb_json_check(cJSON_CreateNull());
    }
}

cJSON *
mcplex_pb_struct_to_json(const ProtobufCMessage *struct_or_value)
{
    if (struct_or_value == NULL)
        return NULL;
    switch (pb_wkt_kind(struct_or_value->descriptor)) {
    case PB_WKT_STRUCT:
        return pb_struct_to_json((const Google__Protobuf__Struct *)struct_or_value, 0);
    case PB_WKT_VALUE:
        return pb_value_to_json((const Google__Protobuf__Value *)struct_or_value, 0);
    case PB_WKT_LIST_VALUE:
        return pb_list_to_json((const Google__Protobuf__ListValue *)struct_or_value, 0);
    default:
        return NULL;
    }
}
