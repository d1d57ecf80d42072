/*
 * access_log_config.c - the HCM's access_log[] (envoy.config.accesslog.v3.AccessLog with the
 * envoy.access_loggers.file sink, envoy.extensions.access_loggers.file.v3.FileAccessLog) into the
 * model (see mcplex_access_log_translate in access_log.h). Thread: config loading (pure code).
 */
#include <cjson/cJSON.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/access_log.h"
#include "common/errors.h"
#include "common/mem.h"
#include "config/pbmap.h"

#include "envoy/config/accesslog/v3/accesslog.pb-c.h"
#include "envoy/config/core/v3/substitution_format_string.pb-c.h"
#include "envoy/extensions/access_loggers/file/v3/file.pb-c.h"
#include "google/protobuf/struct.pb-c.h"

typedef Envoy__Config__Accesslog__V3__AccessLog pb_access_log_t;
typedef Envoy__Extensions__AccessLoggers__File__V3__FileAccessLog pb_file_log_t;
typedef Envoy__Config__Core__V3__SubstitutionFormatString pb_format_t;

/* json_format (a Struct of key -> format string) into |cfg|. */
static void
json_format(const ProtobufCMessage *st, const char *path, mcplex_access_log_cfg_t *cfg, mcplex_errors_t *errs)
{
    cJSON *tree = mcplex_pb_struct_to_json(st), *item;
    size_t n = 0;

    if (tree == NULL || !cJSON_IsObject(tree)) {
        mcplex_errors_add(errs, path, "expected an object of key: format string");
        cJSON_Delete(tree);
        return;
    }
    cfg->json_keys = mcplex_calloc((size_t)cJSON_GetArraySize(tree) + 1, sizeof(char *));
    cfg->json_formats = mcplex_calloc((size_t)cJSON_GetArraySize(tree) + 1, sizeof(char *));
    cJSON_ArrayForEach(item, tree)
    {
        if (!cJSON_IsString(item)) {
            mcplex_errors_add(errs, path, "%s: only string values (format strings) are supported",
                              item->string);
            continue;
        }
        cfg->json_keys[n] = mcplex_strdup(item->string);
        cfg->json_formats[n] = mcplex_strdup(item->valuestring);
        n++;
    }
    cfg->n_json = n;
    cJSON_Delete(tree);
}

static void
file_log(const pb_file_log_t *fl, const char *path, mcplex_access_log_cfg_t *cfg, mcplex_errors_t *errs)
{
    char p[1024];

    if (fl->path == NULL || fl->path[0] == '\0')
        mcplex_errors_add(errs, path, "path: is required");
    cfg->path = mcplex_strdup(fl->path != NULL ? fl->path : "");
    switch (fl->access_log_format_case) {
    case ENVOY__EXTENSIONS__ACCESS_LOGGERS__FILE__V3__FILE_ACCESS_LOG__ACCESS_LOG_FORMAT_FORMAT:
        cfg->format = mcplex_strdup(fl->format);
        break;
    case ENVOY__EXTENSIONS__ACCESS_LOGGERS__FILE__V3__FILE_ACCESS_LOG__ACCESS_LOG_FORMAT_JSON_FORMAT:
        snprintf(p, sizeof(p), "%s.json_format", path);
        json_format((const ProtobufCMessage *)fl->json_format, p, cfg, errs);
        break;
    case ENVOY__EXTENSIONS__ACCESS_LOGGERS__FILE__V3__FILE_ACCESS_LOG__ACCESS_LOG_FORMAT_TYPED_JSON_FORMAT:
        snprintf(p, sizeof(p), "%s.typed_json_format", path);
        json_format((const ProtobufCMessage *)fl->typed_json_format, p, cfg, errs);
        break;
    case ENVOY__EXTENSIONS__ACCESS_LOGGERS__FILE__V3__FILE_ACCESS_LOG__ACCESS_LOG_FORMAT_LOG_FORMAT: {
        const pb_format_t *lf = fl->log_format;
        switch (lf->format_case) {
        case ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT_TEXT_FORMAT:
            cfg->format = mcplex_strdup(lf->text_format);
            break;
        case ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT_JSON_FORMAT:
            snprintf(p, sizeof(p), "%s.log_format.json_format", path);
            json_format((const ProtobufCMessage *)lf->json_format, p, cfg, errs);
            break;
        case ENVOY__CONFIG__CORE__V3__SUBSTITUTION_FORMAT_STRING__FORMAT_TEXT_FORMAT_SOURCE: {
            const Envoy__Config__Core__V3__DataSource *ds = lf->text_format_source;
            snprintf(p, sizeof(p), "%s.log_format.text_format_source", path);
            if (ds != NULL &&
                ds->specifier_case == ENVOY__CONFIG__CORE__V3__DATA_SOURCE__SPECIFIER_INLINE_STRING)
                cfg->format = mcplex_strdup(ds->inline_string);
            else
                mcplex_errors_add(errs, p, "only inline_string is supported");
            break;
        }
        default:
            break;
        }
        if (lf->n_formatters > 0) {
            snprintf(p, sizeof(p), "%s.log_format.formatters", path);
            mcplex_errors_add(errs, p, "custom formatters are not supported by mcplex");
        }
        break;
    }
    default:
        break;
    }
}

int
mcplex_access_log_translate(const void *const *logs, size_t n, const char *path,
                            mcplex_access_log_cfg_t **out, size_t *n_out, struct mcplex_errors *errs)
{
    size_t before = errs->count;
    mcplex_access_log_cfg_t *cfgs = n > 0 ? mcplex_calloc(n, sizeof(*cfgs)) : NULL;
    char p[512];

    for (size_t i = 0; i < n; i++) {
        const pb_access_log_t *al = logs[i];
        const ProtobufCMessageDescriptor *desc = NULL;
        ProtobufCMessage *m;
        snprintf(p, sizeof(p), "%s[%zu]", path, i);
        if (al->filter != NULL) {
            char q[600];
            snprintf(q, sizeof(q), "%s.filter", p);
            mcplex_errors_add(errs, q, "access log filters are not supported by mcplex");
        }
        if (al->config_type_case != ENVOY__CONFIG__ACCESSLOG__V3__ACCESS_LOG__CONFIG_TYPE_TYPED_CONFIG ||
            al->typed_config == NULL) {
            mcplex_errors_add(errs, p, "typed_config: is required (envoy.access_loggers.file)");
            continue;
        }
        {
            char q[600];
            snprintf(q, sizeof(q), "%s.typed_config", p);
            m = mcplex_pb_any_unpack((const ProtobufCMessage *)al->typed_config, &desc, q, errs);
            if (m == NULL)
                continue;
            if (desc != &envoy__extensions__access_loggers__file__v3__file_access_log__descriptor)
                mcplex_errors_add(
                    errs, q, "unsupported access logger %s (only %s)", desc->name,
                    envoy__extensions__access_loggers__file__v3__file_access_log__descriptor.name);
            else
                file_log((const pb_file_log_t *)m, q, &cfgs[i], errs);
            protobuf_c_message_free_unpacked(m, NULL);
        }
    }
    if (errs->count != before) {
        for (size_t i = 0; i < n; i++) {
            free(cfgs[i].path);
            free(cfgs[i].format);
            for (size_t k = 0; k < cfgs[i].n_json; k++) {
                free(cfgs[i].json_keys[k]);
                free(cfgs[i].json_formats[k]);
            }
            free(cfgs[i].json_keys);
            free(cfgs[i].json_formats);
        }
        free(cfgs);
        *out = NULL;
        *n_out = 0;
        return -1;
    }
    *out = cfgs;
    *n_out = n;
    return 0;
}
