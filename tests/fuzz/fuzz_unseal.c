/*
 * fuzz_unseal.c - client-supplied Mcp-Session-Id values and list cursors are opened with
 * mcplex_unseal: arbitrary text must be refused cleanly, and a sealed value must open to the
 * same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/seal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mcplex_seal_key_t *key;
    char *text = malloc(size + 1), *sealed;
    void *plain = NULL;
    size_t len = 0;

    if (key == NULL)
        key = mcplex_seal_key_create_from_secret("fuzz", 4);
    memcpy(text, data, size);
    text[size] = '\0';
    if (mcplex_unseal(key, text, &plain, &len) == 0)
        free(plain);
    plain = NULL;
    sealed = mcplex_seal(key, data, size);
    if (sealed != NULL) {
        if (mcplex_unseal(key, sealed, &plain, &len) != 0 || len != size || memcmp(plain, data, size) != 0)
            abort();
        free(plain);
        free(sealed);
    }
    free(text);
    return 0;
}
