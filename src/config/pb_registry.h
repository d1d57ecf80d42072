/*
 * pb_registry.h - every message descriptor of the generated protobuf-c code (api/ and the
 * well-known types), generated at build time by bazel-free-build/gen_registry.cmake into
 * <build>/gen/pb_registry.c. Read-only; any thread.
 */
#ifndef MCPLEX_CONFIG_PB_REGISTRY_H
#define MCPLEX_CONFIG_PB_REGISTRY_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

extern const ProtobufCMessageDescriptor *const mcplex_pb_registry[];
extern const size_t mcplex_pb_registry_len;

#endif
