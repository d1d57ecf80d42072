/*
 * load.c - config loading from a file or text to a validated snapshot: parse (YAML or JSON),
 * detect the format (Envoy bootstrap or agentgateway-style local file), turn a local file into
 * a bootstrap tree, map the tree onto the protobuf-c Bootstrap, translate (config.h).
 * Owns no state (generation numbers come from snapshot.c).
 *
 * Thread: config loading, main thread.
 */
#include "config/config.h"

#include <string.h>
#include <time.h>

#include <protobuf-c/protobuf-c.h>

#include "common/log.h"
#include "config/pbmap.h"
#include "config/yaml_tree.h"

#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"

static const char *const envoy_keys[] = {"static_resources", "dynamic_resources", "admin", "node", NULL};
static const char *const local_keys[] = {"binds", "listeners", "backends", "mcp", NULL};

static int
has_any_key(const cJSON *tree, const char *const *keys)
{
    for (size_t i = 0; keys[i] != NULL; i++) {
        if (cJSON_GetObjectItemCaseSensitive(tree, keys[i]) != NULL)
            return 1;
    }
    return 0;
}

mcplex_config_format_t
mcplex_config_detect_format(const cJSON *tree, mcplex_config_format_t hint)
{
    int envoy, local;

    if (!cJSON_IsObject(tree))
        return hint;
    envoy = has_any_key(tree, envoy_keys);
    local = has_any_key(tree, local_keys);
    if (envoy && !local)
        return MCPLEX_CONFIG_FORMAT_ENVOY;
    if (local && !envoy)
        return MCPLEX_CONFIG_FORMAT_LOCAL;
    return hint;
}

/* Parsed tree -> snapshot (the tree is borrowed). */
static mcplex_snapshot_t *
load_tree(const cJSON *tree, mcplex_config_format_t hint, mcplex_errors_t *errs)
{
    mcplex_config_format_t format = mcplex_config_detect_format(tree, hint);
    size_t before = errs->count;
    cJSON *bootstrap_json = NULL;
    ProtobufCMessage *msg = NULL;
    mcplex_snapshot_t *snap = NULL;

    if (!cJSON_IsObject(tree)) {
        mcplex_errors_add(errs, NULL,
                          "the config must be a mapping (YAML) or an object (JSON) at the top level");
        goto fail;
    }
    switch (format) {
    case MCPLEX_CONFIG_FORMAT_LOCAL:
        bootstrap_json = mcplex_local_config_to_bootstrap(tree, errs);
        if (bootstrap_json == NULL)
            goto fail;
        tree = bootstrap_json;
        break;
    case MCPLEX_CONFIG_FORMAT_ENVOY:
        break;
    default:
        mcplex_errors_add(
            errs, NULL,
            "cannot tell the config format: an Envoy bootstrap has static_resources, "
            "dynamic_resources, admin or node at the top level; an agentgateway-style local file "
            "has binds, backends or mcp (use -c for an Envoy bootstrap, -f for a local file)");
        goto fail;
    }
    if (tree->child == NULL) {
        mcplex_errors_add(errs, NULL, "the config is empty: it has no listeners, clusters or backends");
        goto fail;
    }
    /* Map what can be mapped and translate it even if some fields failed, so one run reports
     * the errors of both steps; unknown extension types are the translators' call (Envoy's
     * rule, is_optional included). */
    msg = mcplex_pbmap_from_json(tree, &envoy__config__bootstrap__v3__bootstrap__descriptor, "",
                                 MCPLEX_PBMAP_PARTIAL | MCPLEX_PBMAP_DEFER_UNKNOWN_TYPES, errs);
    if (msg == NULL)
        goto fail;
    snap = mcplex_config_translate_bootstrap((const Envoy__Config__Bootstrap__V3__Bootstrap *)msg, errs);
    if (snap != NULL && errs->count != before) {
        mcplex_snapshot_free(snap);
        snap = NULL;
    }
    if (snap != NULL) {
        /* --- admin /config_dump (issue 7): the mapped bootstrap tree and its load time --- */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        snap->bootstrap_json = cJSON_PrintUnformatted(tree);
        snap->loaded_at_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    }
fail:
    if (msg != NULL)
        protobuf_c_message_free_unpacked(msg, NULL);
    cJSON_Delete(bootstrap_json);
    return snap;
}

mcplex_snapshot_t *
mcplex_config_load_text(const char *text, size_t len, const char *name, mcplex_config_format_t hint,
                        mcplex_errors_t *errs)
{
    cJSON *tree = mcplex_yaml_parse(text, len, name, errs);
    mcplex_snapshot_t *snap;

    if (tree == NULL)
        return NULL;
    snap = load_tree(tree, hint, errs);
    cJSON_Delete(tree);
    if (snap != NULL)
        mcplex_log_debug("config", "%s: loaded generation %llu (%zu listeners, %zu clusters)",
                         name != NULL ? name : "config", (unsigned long long)snap->generation,
                         snap->n_listeners, snap->n_clusters);
    return snap;
}

mcplex_snapshot_t *
mcplex_config_load_file(const char *filename, mcplex_config_format_t hint, mcplex_errors_t *errs)
{
    cJSON *tree = mcplex_yaml_parse_file(filename, errs);
    mcplex_snapshot_t *snap;

    if (tree == NULL)
        return NULL;
    snap = load_tree(tree, hint, errs);
    cJSON_Delete(tree);
    if (snap != NULL)
        mcplex_log_debug("config", "%s: loaded generation %llu (%zu listeners, %zu clusters)", filename,
                         (unsigned long long)snap->generation, snap->n_listeners, snap->n_clusters);
    return snap;
}
