/*
 * pbmap.h - the generic config mapper: a JSON tree (cJSON; YAML files are first turned into the
 * same tree by yaml_tree.c) onto protobuf-c messages, driven only by the generated descriptors.
 * It follows the proto3 JSON mapping as Envoy reads bootstrap files: snake_case and lowerCamel
 * field names, enums by name or number, int64 as numbers or strings, bytes as base64,
 * google.protobuf.Any with "@type" and the message's fields inline, Duration strings ("1.5s"),
 * Timestamp strings, wrapper types as bare scalars, Struct/Value/ListValue as plain JSON, and
 * xds.type.v3.TypedStruct / udpa.type.v1.TypedStruct inside Any (resolved to the real type).
 *
 * Unknown fields: error by default (Envoy rejects unknown bootstrap fields), or ignored with
 * MCPLEX_PBMAP_IGNORE_UNKNOWN. Every error is collected as "path.to.field: message": the JSON
 * keys as written, "[i]" for list indexes and "[\"key\"]" for map and Struct keys; an unknown
 * field is reported at its own path ("a.b.bogus: unknown field 'bogus'"). Mapping goes on after
 * an error, so one call reports every problem. Coercions: a number into a string field gives
 * its source text (yaml_tree.h keeps it); integers may be strings and integral floats ("1e3");
 * 32-bit fields are range-checked; bools only from true/false; a bare number is seconds for a
 * Duration. Nesting deeper than 64 messages is refused.
 * Pure code, any thread (the registry is read-only).
 */
#ifndef MCPLEX_CONFIG_PBMAP_H
#define MCPLEX_CONFIG_PBMAP_H

#include <cjson/cJSON.h>
#include <protobuf-c/protobuf-c.h>

#include "common/errors.h"

#define MCPLEX_PBMAP_IGNORE_UNKNOWN 0x1
/* Return the message even when errors were added (fields that failed stay unset), so the
 * caller can go on validating and report every error at once. The caller must check |errs|. */
#define MCPLEX_PBMAP_PARTIAL 0x2
/* An Any whose "@type" is not in the registry is kept as Any{type_url, empty value} instead of
 * being an error: the translators look extensions up, as Envoy does, and can honour
 * HttpFilter.is_optional ("Didn't find a registered implementation for ..."). */
#define MCPLEX_PBMAP_DEFER_UNKNOWN_TYPES 0x4

/*
 * Maps |json| (an object) onto a new message of type |desc|. |path| prefixes error paths (may
 * be "" or NULL). Returns the message (free with protobuf_c_message_free_unpacked(msg, NULL))
 * or NULL when any error was added to |errs|.
 */
ProtobufCMessage *mcplex_pbmap_from_json(const cJSON *json, const ProtobufCMessageDescriptor *desc, const char *path,
                                         int flags, mcplex_errors_t *errs);

/*
 * Resolves a type URL ("type.googleapis.com/envoy.config.cluster.v3.Cluster", or any prefix
 * up to the last '/') or a full message name to its descriptor, or NULL if unknown.
 */
const ProtobufCMessageDescriptor *mcplex_pb_registry_find(const char *type_url);

/*
 * Unpacks an Any into a new message (free with protobuf_c_message_free_unpacked). A TypedStruct
 * payload is converted through its Struct with the mapper (unknown fields ignored, as for
 * dynamic config). Sets |*desc_out| to the real type. Returns NULL with errors in |errs| for
 * unknown types or bad payloads.
 */
ProtobufCMessage *mcplex_pb_any_unpack(const ProtobufCMessage *any, const ProtobufCMessageDescriptor **desc_out,
                                       const char *path, mcplex_errors_t *errs);

/* The real type URL inside |any|: its own type_url (pointing into |any|), or for a TypedStruct
 * the inner type_url copied into |buf|; NULL if the TypedStruct cannot be decoded, has no
 * type_url or it does not fit in |buf_len| bytes. */
const char *mcplex_pb_any_real_type(const ProtobufCMessage *any, char *buf, size_t buf_len);

/* google.protobuf.Struct (or Value, ListValue) -> cJSON tree (caller deletes). Integral numbers
 * also get a source text ("3000") as yaml_tree.h gives them. NULL for any other message type or
 * nesting deeper than 64 levels. */
cJSON *mcplex_pb_struct_to_json(const ProtobufCMessage *struct_or_value);

#endif
