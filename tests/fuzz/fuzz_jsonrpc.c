/*
 * fuzz_jsonrpc.c - the JSON-RPC codec on arbitrary bytes: parse, classify, read the raw id,
 * re-set it and print again. Nothing may crash, leak, or lose the id's exact text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcp/jsonrpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mcplex_jsonrpc_msg_t msg;
    const char *why = NULL;
    char *text = malloc(size + 1), *id, *out;

    memcpy(text, data, size);
    text[size] = '\0';
    id = mcplex_jsonrpc_scan_id(text, size);
    memset(&msg, 0, sizeof(msg));
    if (mcplex_jsonrpc_parse(text, size, &msg, &why) == 0) {
        if (msg.id_raw != NULL) {
            mcplex_jsonrpc_set_id(msg.root, msg.id_raw);
            out = mcplex_json_print(msg.root);
            /* The id survives a print byte for byte. */
            if (out != NULL && strstr(out, msg.id_raw) == NULL)
                abort();
            free(out);
        }
    }
    mcplex_jsonrpc_msg_dispose(&msg);
    free(id);
    free(text);
    return 0;
}
