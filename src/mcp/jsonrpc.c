/*
 * jsonrpc.c - the JSON-RPC 2.0 codec for MCP messages (see jsonrpc.h). Owns the classification
 * of one message (request, notification, result, error), the raw-id scanner that keeps ids as
 * their exact JSON text, and the builders of the replies mcplex generates.
 *
 * Relies on cJSON for the tree; cJSON stores numbers as doubles, so ids never go through it:
 * they are read from the raw bytes by mcplex_jsonrpc_scan_id() and written back as cJSON raw
 * items, which cJSON prints verbatim. parse() cross-checks the scanner against the tree so the
 * id we route on is always the id cJSON saw (duplicate or oddly escaped "id" keys are refused).
 *
 * Pure code, no globals: any thread.
 */
#include "mcp/jsonrpc.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

/* Deepest nesting the raw scanner follows; deeper documents yield no id (cJSON stops at 1000). */
#define SCAN_MAX_DEPTH 1024

/* ---- raw scanner (private) ---------------------------------------------------------------- */

static const char *
scan_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int
hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Scans the JSON string starting at |p| (which points at '"'). Returns the position after the
 * closing quote, or NULL if the string is malformed or unterminated. When |key| is non-NULL,
 * sets |*is_key| to 1 iff the decoded string equals |key| (ASCII, no NUL), so "\u0069d" matches
 * "id" but "id\u0000" does not.
 */
static const char *
scan_string(const char *p, const char *end, const char *key, int *is_key)
{
    size_t klen = key != NULL ? strlen(key) : 0;
    size_t kpos = 0;
    int match = key != NULL;

    p++; /* opening quote */
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        unsigned int decoded;

        if (c == '"') {
            if (is_key != NULL)
                *is_key = match && kpos == klen;
            return p + 1;
        }
        if (c < 0x20)
            return NULL;
        if (c != '\\') {
            decoded = c;
            p++;
        } else {
            if (p + 1 >= end)
                return NULL;
            switch (p[1]) {
            case '"': decoded = '"'; break;
            case '\\': decoded = '\\'; break;
            case '/': decoded = '/'; break;
            case 'b': decoded = '\b'; break;
            case 'f': decoded = '\f'; break;
            case 'n': decoded = '\n'; break;
            case 'r': decoded = '\r'; break;
            case 't': decoded = '\t'; break;
            case 'u': {
                int i;

                if (end - p < 6)
                    return NULL;
                decoded = 0;
                for (i = 2; i < 6; i++) {
                    int h = hex_val(p[i]);
                    if (h < 0)
                        return NULL;
                    decoded = decoded << 4 | (unsigned int)h;
                }
                p += 4;
                break;
            }
            default:
                return NULL;
            }
            p += 2;
        }
        /* A decoded NUL or non-ASCII unit never equals an ASCII key byte. */
        if (match) {
            if (kpos < klen && decoded != 0 && decoded < 0x80 && (char)decoded == key[kpos])
                kpos++;
            else
                match = 0;
        }
    }
    return NULL;
}

/* Scans a JSON number token (strict grammar). Returns the position after it, or NULL. */
static const char *
scan_number(const char *p, const char *end)
{
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !(*p >= '0' && *p <= '9'))
            return NULL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !(*p >= '0' && *p <= '9'))
            return NULL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    return p;
}

/* Scans the literal |lit| at |p|. Returns the position after it, or NULL. */
static const char *
scan_literal(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(end - p) < n || memcmp(p, lit, n) != 0)
        return NULL;
    return p + n;
}

/*
 * Scans one JSON value of any kind at |p| (no leading whitespace), following nested objects
 * and arrays without recursion: a bit stack remembers which closer each level expects.
 * Returns the position after the value, or NULL if it is malformed or nested too deeply.
 */
static const char *
scan_value(const char *p, const char *end)
{
    unsigned char stack[SCAN_MAX_DEPTH / 8] = {0}; /* bit set = object level */
    size_t depth = 0;

    for (;;) {
        /* Here |p| is at the start of a value. */
        if (p >= end)
            return NULL;
        switch (*p) {
        case '"':
            p = scan_string(p, end, NULL, NULL);
            break;
        case 't':
            p = scan_literal(p, end, "true");
            break;
        case 'f':
            p = scan_literal(p, end, "false");
            break;
        case 'n':
            p = scan_literal(p, end, "null");
            break;
        case '{':
        case '[': {
            int is_obj = *p == '{';

            if (depth >= SCAN_MAX_DEPTH)
                return NULL;
            if (is_obj)
                stack[depth / 8] |= (unsigned char)(1u << (depth % 8));
            else
                stack[depth / 8] &= (unsigned char)~(1u << (depth % 8));
            depth++;
            p = scan_ws(p + 1, end);
            if (p < end && *p == (is_obj ? '}' : ']')) {
                depth--;
                p++;
                break;
            }
            if (is_obj) {
                if (p >= end || *p != '"')
                    return NULL;
                p = scan_string(p, end, NULL, NULL);
                if (p == NULL)
                    return NULL;
                p = scan_ws(p, end);
                if (p >= end || *p != ':')
                    return NULL;
                p = scan_ws(p + 1, end);
            }
            continue; /* to the first element's value */
        }
        default:
            p = scan_number(p, end);
            break;
        }
        if (p == NULL)
            return NULL;
        /* After a complete value: close containers or move to the next element. */
        for (;;) {
            int is_obj;

            if (depth == 0)
                return p;
            is_obj = (stack[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1;
            p = scan_ws(p, end);
            if (p >= end)
                return NULL;
            if (*p == (is_obj ? '}' : ']')) {
                depth--;
                p++;
                continue;
            }
            if (*p != ',')
                return NULL;
            p = scan_ws(p + 1, end);
            if (is_obj) {
                if (p >= end || *p != '"')
                    return NULL;
                p = scan_string(p, end, NULL, NULL);
                if (p == NULL)
                    return NULL;
                p = scan_ws(p, end);
                if (p >= end || *p != ':')
                    return NULL;
                p = scan_ws(p + 1, end);
            }
            break;
        }
    }
}

char *
mcplex_jsonrpc_scan_id(const char *text, size_t len)
{
    const char *p = text, *end = text + len;

    if (text == NULL)
        return NULL;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) /* cJSON skips a UTF-8 BOM too */
        p += 3;
    p = scan_ws(p, end);
    if (p >= end || *p != '{')
        return NULL;
    p = scan_ws(p + 1, end);
    if (p < end && *p == '}')
        return NULL;
    for (;;) {
        const char *value, *value_end;
        int is_id = 0;

        if (p >= end || *p != '"')
            return NULL;
        p = scan_string(p, end, "id", &is_id);
        if (p == NULL)
            return NULL;
        p = scan_ws(p, end);
        if (p >= end || *p != ':')
            return NULL;
        value = scan_ws(p + 1, end);
        value_end = scan_value(value, end);
        if (value_end == NULL)
            return NULL;
        p = scan_ws(value_end, end);
        if (p >= end || (*p != ',' && *p != '}'))
            return NULL; /* malformed, e.g. "01" read as 0 followed by 1 */
        if (is_id) {
            /* The first "id" member decides; duplicates are refused by parse(). */
            if (*value == '"' || *value == '-' || (*value >= '0' && *value <= '9'))
                return mcplex_strndup(value, (size_t)(value_end - value));
            return NULL;
        }
        if (*p == '}')
            return NULL; /* end of the object: no id */
        p = scan_ws(p + 1, end);
    }
}

/* ---- parse (private helpers) -------------------------------------------------------------- */

/* Number of members of |obj| named exactly |name| (cJSON compares decoded keys with strcmp). */
static int
count_members(const cJSON *obj, const char *name)
{
    const cJSON *it;
    int n = 0;

    for (it = obj->child; it != NULL; it = it->next) {
        if (it->string != NULL && strcmp(it->string, name) == 0)
            n++;
    }
    return n;
}

/* 1 if |raw| (the scanner's id text) denotes the same value as cJSON's |id| item. */
static int
raw_id_matches(const char *raw, const cJSON *id)
{
    cJSON *parsed = cJSON_ParseWithLength(raw, strlen(raw));
    int same;

    if (parsed == NULL)
        return 0;
    same = cJSON_Compare(parsed, id, 1);
    cJSON_Delete(parsed);
    return same;
}

/* 1 if |item| is a JSON number with an integral value that fits an int. */
static int
is_int_number(const cJSON *item)
{
    double d;

    if (!cJSON_IsNumber(item))
        return 0;
    d = item->valuedouble;
    return isfinite(d) && d == floor(d) && d >= INT32_MIN && d <= INT32_MAX;
}

/* Classifies the object |root| into |out| (root not yet attached). Returns NULL or a reason. */
static const char *
classify(cJSON *root, mcplex_jsonrpc_msg_t *out)
{
    const cJSON *version;
    cJSON *method, *id, *params, *result, *error;
    static const char *const once[] = {"jsonrpc", "id", "method", "params", "result", "error"};
    size_t i;

    for (i = 0; i < MCPLEX_ARRAY_SIZE(once); i++) {
        if (count_members(root, once[i]) > 1)
            return "duplicate member";
    }
    version = cJSON_GetObjectItemCaseSensitive(root, "jsonrpc");
    if (!cJSON_IsString(version) || strcmp(version->valuestring, "2.0") != 0)
        return "\"jsonrpc\" must be \"2.0\"";
    method = cJSON_GetObjectItemCaseSensitive(root, "method");
    id = cJSON_GetObjectItemCaseSensitive(root, "id");
    params = cJSON_GetObjectItemCaseSensitive(root, "params");
    result = cJSON_GetObjectItemCaseSensitive(root, "result");
    error = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (id != NULL && !cJSON_IsString(id) && !cJSON_IsNumber(id) && !cJSON_IsNull(id))
        return "\"id\" must be a string or a number";

    if (method != NULL) {
        if (!cJSON_IsString(method))
            return "\"method\" must be a string";
        if (result != NULL || error != NULL)
            return "a request cannot carry \"result\" or \"error\"";
        if (params != NULL && !cJSON_IsObject(params) && !cJSON_IsArray(params))
            return "\"params\" must be an object or an array";
        if (id != NULL && cJSON_IsNull(id))
            return "a request id cannot be null";
        out->kind = id != NULL ? MCPLEX_JSONRPC_REQUEST : MCPLEX_JSONRPC_NOTIFICATION;
        out->method = method->valuestring;
        out->params = params;
        return NULL;
    }

    if (id == NULL)
        return "neither \"method\" nor \"id\"";
    if (params != NULL)
        return "a response cannot carry \"params\"";
    if ((result != NULL) == (error != NULL))
        return "a response needs exactly one of \"result\" and \"error\"";
    if (result != NULL) {
        if (cJSON_IsNull(id))
            return "a result id cannot be null";
        out->kind = MCPLEX_JSONRPC_RESULT;
        out->result = result;
        return NULL;
    }
    if (!cJSON_IsObject(error))
        return "\"error\" must be an object";
    if (!is_int_number(cJSON_GetObjectItemCaseSensitive(error, "code")))
        return "\"error.code\" must be an integer";
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(error, "message")))
        return "\"error.message\" must be a string";
    out->kind = MCPLEX_JSONRPC_ERROR;
    out->error = error;
    return NULL;
}

/* ---- API ---------------------------------------------------------------------------------- */

int
mcplex_jsonrpc_parse(const char *text, size_t len, mcplex_jsonrpc_msg_t *out, const char **why)
{
    const char *parse_end = NULL, *reason = NULL;
    cJSON *root = NULL, *id;
    int rc;

    memset(out, 0, sizeof(*out));
    root = cJSON_ParseWithLengthOpts(text, len, &parse_end, 0);
    if (root == NULL || scan_ws(parse_end, text + len) != text + len) {
        rc = MCPLEX_JSONRPC_PARSE_ERROR;
        reason = root == NULL ? "invalid JSON" : "trailing data after the JSON value";
        goto fail;
    }
    rc = MCPLEX_JSONRPC_INVALID_REQUEST;
    if (cJSON_IsArray(root)) {
        reason = "batches are not supported";
        goto fail;
    }
    if (!cJSON_IsObject(root)) {
        reason = "a JSON-RPC message must be an object";
        goto fail;
    }
    out->id_raw = mcplex_jsonrpc_scan_id(text, len);
    id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (out->id_raw != NULL &&
        (id == NULL || count_members(root, "id") > 1 || !raw_id_matches(out->id_raw, id))) {
        /* Duplicate ids, or the scanner and cJSON disagree: trust neither. */
        free(out->id_raw);
        out->id_raw = NULL;
        reason = "ambiguous \"id\"";
        goto fail;
    }
    if (out->id_raw == NULL && id != NULL && !cJSON_IsNull(id)) {
        reason = cJSON_IsString(id) || cJSON_IsNumber(id) ? "ambiguous \"id\""
                                                          : "\"id\" must be a string or a number";
        goto fail;
    }
    reason = classify(root, out);
    if (reason != NULL)
        goto fail;
    out->root = root;
    if (why != NULL)
        *why = NULL;
    return 0;

fail:
    out->method = NULL;
    out->params = out->result = out->error = NULL;
    cJSON_Delete(root);
    if (why != NULL)
        *why = reason;
    return rc;
}

void
mcplex_jsonrpc_msg_dispose(mcplex_jsonrpc_msg_t *msg)
{
    if (msg == NULL)
        return;
    cJSON_Delete(msg->root);
    free(msg->id_raw);
    memset(msg, 0, sizeof(*msg));
}

void
mcplex_jsonrpc_set_id(cJSON *root, const char *id_raw)
{
    cJSON *item = id_raw != NULL ? cJSON_CreateRaw(id_raw) : cJSON_CreateNull();

    if (item == NULL)
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
    if (cJSON_GetObjectItemCaseSensitive(root, "id") != NULL) {
        /* Replaces in place, so the member keeps its position in the printed text. */
        if (!cJSON_ReplaceItemInObjectCaseSensitive(root, "id", item))
            mcplex_fatal(__FILE__, __LINE__, "out of memory");
    } else if (!cJSON_AddItemToObject(root, "id", item)) {
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
    }
}

char *
mcplex_json_print(const cJSON *item)
{
    char *text = cJSON_PrintUnformatted(item);

    if (text == NULL)
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
    return text;
}

/* {"jsonrpc":"2.0","id":<id_raw or null>} with |body| added under |key| (ownership taken). */
static char *
envelope_text(const char *id_raw, const char *key, cJSON *body)
{
    cJSON *root = cJSON_CreateObject();
    char *text;

    if (root == NULL || cJSON_AddStringToObject(root, "jsonrpc", "2.0") == NULL)
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
    mcplex_jsonrpc_set_id(root, id_raw);
    if (!cJSON_AddItemToObject(root, key, body))
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
    text = mcplex_json_print(root);
    cJSON_Delete(root);
    return text;
}

char *
mcplex_jsonrpc_error_text(const char *id_raw, int code, const char *message, const cJSON *data)
{
    cJSON *error = cJSON_CreateObject();

    if (error == NULL || cJSON_AddNumberToObject(error, "code", code) == NULL ||
        cJSON_AddStringToObject(error, "message", message != NULL ? message : "") == NULL)
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
    if (data != NULL) {
        cJSON *copy = cJSON_Duplicate(data, 1);

        if (copy == NULL || !cJSON_AddItemToObject(error, "data", copy))
            mcplex_fatal(__FILE__, __LINE__, "out of memory");
    }
    return envelope_text(id_raw, "error", error);
}

char *
mcplex_jsonrpc_result_text(const char *id_raw, cJSON *result)
{
    if (result == NULL) {
        result = cJSON_CreateObject();
        if (result == NULL)
            mcplex_fatal(__FILE__, __LINE__, "out of memory");
    }
    return envelope_text(id_raw, "result", result);
}
