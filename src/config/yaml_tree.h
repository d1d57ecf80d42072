/*
 * yaml_tree.h - config file text (YAML 1.1/1.2 or JSON) -> cJSON tree, the one input shape the
 * mapper and the agentgateway-style translator read. Plain scalars become numbers, booleans
 * (true/false) or null (null, ~, empty) when they look like one, strings otherwise; quoted
 * scalars are always strings. A number node keeps its source text in valuestring so a string
 * field given 8080 reads "8080" exactly. Numbers are decimal integers, 0x hex, 0o octal and
 * decimal floats; booleans are only true/True/TRUE/false/False/FALSE (yes/no/on/off stay
 * strings). Explicit !!str/!!int/!!float/!!bool/!!null tags are honoured, other tags ignored.
 * Anchors and aliases are expanded, "<<" merge keys applied; duplicate keys are an error. Key
 * order is kept. Guards: nesting deeper than 128 levels or more than 1e6 nodes (aliases counted
 * at their expanded size, against alias bombs) is refused.
 * Pure code, any thread.
 */
#ifndef MCPLEX_CONFIG_YAML_TREE_H
#define MCPLEX_CONFIG_YAML_TREE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "common/errors.h"

/*
 * Parses |len| bytes of |text|. Returns the tree of the first document (caller deletes with
 * cJSON_Delete), or NULL with "line L column C: message" errors added to |errs| (|path| names
 * the file). An empty document gives an empty object.
 */
cJSON *mcplex_yaml_parse(const char *text, size_t len, const char *path, mcplex_errors_t *errs);

/* Reads the whole file at |filename| and parses it. NULL with an error on failure. */
cJSON *mcplex_yaml_parse_file(const char *filename, mcplex_errors_t *errs);

#endif
