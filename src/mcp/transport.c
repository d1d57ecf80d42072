/*
 * transport.c - helpers shared by the target transports (see transport.h): splitting a JSON-RPC
 * batch (a top-level JSON array) into its messages without parsing them, so request ids keep
 * their exact text. Pure code; any thread.
 */
#include "mcp/transport.h"

static int
is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int
mcplex_json_array_next(const char *text, size_t len, size_t *pos, size_t *off, size_t *elem_len)
{
    size_t i = *pos;
    size_t start, end;
    int depth = 0;
    int in_string = 0;

    if (i == 0) {
        while (i < len && is_json_space(text[i]))
            i++;
        if (i == len || text[i] != '[')
            return -1;
        i++;
    }
    while (i < len && is_json_space(text[i]))
        i++;
    if (i == len)
        return -1;
    if (text[i] == ']') {
        /* The end of the array: only whitespace may follow. An empty array ends here too. */
        for (size_t j = i + 1; j < len; j++) {
            if (!is_json_space(text[j]))
                return -1;
        }
        *pos = i;
        return 0;
    }
    start = i;
    for (; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++; /* skip the escaped character */
            else if (c == '"')
                in_string = 0;
            continue;
        }
        if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                break; /* the closing bracket of the array itself */
            depth--;
        } else if (c == ',' && depth == 0) {
            break;
        }
    }
    if (i >= len || (text[i] == ']' && depth != 0) || text[i] == '}')
        return -1;
    end = i;
    while (end > start && is_json_space(text[end - 1]))
        end--;
    if (end == start)
        return -1;
    *off = start;
    *elem_len = end - start;
    /* After a comma another element must follow; after ']' the next call reports the end. */
    *pos = text[i] == ',' ? i + 1 : i;
    if (text[i] == ',') {
        size_t j = i + 1;
        while (j < len && is_json_space(text[j]))
            j++;
        if (j < len && text[j] == ']')
            return -1; /* trailing comma */
    }
    return 1;
}
