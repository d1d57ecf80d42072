/*
 * fuzz_sse.c - the SSE parser on arbitrary bytes, fed whole and then split at a point the input
 * chooses (its first byte): both feedings must dispatch the same events.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct tally {
    size_t events;
    size_t bytes;
} tally_t;

static void
on_event(void *arg, const mcplex_sse_event_t *ev)
{
    tally_t *t = arg;

    t->events++;
    t->bytes += ev->data_len + strlen(ev->event) + (ev->id != NULL ? strlen(ev->id) : 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tally_t whole = {0, 0}, split = {0, 0};
    mcplex_sse_parser_t *a = mcplex_sse_parser_create(on_event, &whole, 4096);
    mcplex_sse_parser_t *b = mcplex_sse_parser_create(on_event, &split, 4096);
    size_t cut = size > 0 ? data[0] % (size + 1) : 0;
    int ra, rb;

    ra = mcplex_sse_parser_feed(a, (const char *)data, size);
    rb = mcplex_sse_parser_feed(b, (const char *)data, cut);
    if (rb == 0)
        rb = mcplex_sse_parser_feed(b, (const char *)data + cut, size - cut);
    if (ra == 0 && rb == 0 && (whole.events != split.events || whole.bytes != split.bytes))
        abort();
    mcplex_sse_parser_destroy(a);
    mcplex_sse_parser_destroy(b);
    return 0;
}
