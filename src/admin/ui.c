/*
 * ui.c - serves the embedded web UI under /ui on the admin listener (see ui.h). The files are
 * the generated arrays of <build>/gen/ui_*.c (from src/admin/ui/ by embed_file.cmake).
 * Thread: main.
 */
#include "admin/ui.h"

#include <string.h>

#include "admin/admin.h"
#include "common/log.h"
#include "common/mem.h"

extern const char mcplex_ui_index_html[];
extern const unsigned long mcplex_ui_index_html_len;
extern const char mcplex_ui_app_js[];
extern const unsigned long mcplex_ui_app_js_len;
extern const char mcplex_ui_style_css[];
extern const unsigned long mcplex_ui_style_css_len;

typedef struct ui_file {
    const char *path;
    const char *content_type;
    const char *data;
    const unsigned long *len;
} ui_file_t;

static const ui_file_t ui_files[] = {
    {"/ui", "text/html; charset=utf-8", mcplex_ui_index_html, &mcplex_ui_index_html_len},
    {"/ui/", "text/html; charset=utf-8", mcplex_ui_index_html, &mcplex_ui_index_html_len},
    {"/ui/index.html", "text/html; charset=utf-8", mcplex_ui_index_html, &mcplex_ui_index_html_len},
    {"/ui/app.js", "text/javascript; charset=utf-8", mcplex_ui_app_js, &mcplex_ui_app_js_len},
    {"/ui/style.css", "text/css; charset=utf-8", mcplex_ui_style_css, &mcplex_ui_style_css_len},
};

#define HDR(n, v) ((mcplex_http_header_t){n, sizeof(n) - 1, v, strlen(v)})

static void
respond_plain(mcplex_http_stream_t *stream, int status, const char *text, const char *allow)
{
    mcplex_http_header_t hdrs[2];
    size_t n = 0;

    hdrs[n++] = HDR("content-type", "text/plain; charset=utf-8");
    if (allow != NULL)
        hdrs[n++] = HDR("allow", allow);
    mcplex_http_stream_respond(stream, status, hdrs, n, text, strlen(text));
}

void
mcplex_ui_handle(void *ctx, mcplex_http_stream_t *stream, const mcplex_http_request_t *req)
{
    const ui_file_t *f = NULL;
    mcplex_http_header_t hdrs[4];
    int head = strcmp(req->method, "HEAD") == 0;

    (void)ctx;
    if (!head && strcmp(req->method, "GET") != 0) {
        respond_plain(stream, 405, "method not allowed\n", "GET, HEAD");
        return;
    }
    for (size_t i = 0; i < MCPLEX_ARRAY_SIZE(ui_files); i++)
        if (strcmp(req->path, ui_files[i].path) == 0)
            f = &ui_files[i];
    if (f == NULL) {
        respond_plain(stream, 404, "not found\n", NULL);
        return;
    }
    hdrs[0] = HDR("content-type", f->content_type);
    hdrs[1] = HDR("cache-control", "no-cache");
    hdrs[2] = HDR("x-content-type-options", "nosniff");
    /* HEAD: the same headers, no body. */
    mcplex_http_stream_respond(stream, 200, hdrs, 3, head ? NULL : f->data, head ? 0 : (size_t)*f->len);
}

int
mcplex_ui_register(void)
{
    if (mcplex_admin_register("/ui", "the web UI: overview, live sessions, MCP Playground", mcplex_ui_handle,
                              NULL) != 0) {
        mcplex_log_warn("admin", "cannot register the web UI at /ui");
        return -1;
    }
    return 0;
}
