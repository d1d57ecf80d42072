/*
 * fuzz_config.c - a config file of arbitrary bytes through the whole loader: YAML/JSON tree,
 * format detection, the agentgateway-style translator, the protobuf-c mapper and the Envoy
 * translators. Every input either loads or gives errors; none crashes or leaks.
 */
#include <stdint.h>
#include <stdlib.h>

#include "common/errors.h"
#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mcplex_errors_t errs;
    mcplex_snapshot_t *s;

    mcplex_errors_init(&errs);
    s = mcplex_config_load_text((const char *)data, size, "fuzz", MCPLEX_CONFIG_FORMAT_AUTO, &errs);
    if (s != NULL && errs.count != 0)
        abort(); /* a snapshot never comes with errors */
    if (s != NULL)
        mcplex_snapshot_unref(s);
    mcplex_errors_dispose(&errs);
    return 0;
}
