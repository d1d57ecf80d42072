/*
 * ui.h - the web UI (agentgateway's /ui: overview, live sessions, MCP Playground), plain
 * HTML/CSS/JS from src/admin/ui/ embedded into the binary at build time
 * (bazel-free-build/embed_file.cmake) and served on the admin listener under /ui through the
 * admin's handler registry (mcplex_admin_register).
 *
 * Owns nothing but its registration. Thread: main (the admin listener's thread).
 */
#ifndef MCPLEX_ADMIN_UI_H
#define MCPLEX_ADMIN_UI_H

#include "http/http.h"

/*
 * Registers the UI at /ui on the admin listener (process-wide registry; call before or after
 * the admin starts). Returns 0, or -1 if the admin refused the registration. Thread: main.
 */
int mcplex_ui_register(void);

/*
 * Serves one UI request: GET or HEAD of /ui, /ui/ or /ui/index.html (the page), /ui/app.js,
 * /ui/style.css, with their content types (text/html, text/javascript, text/css; charset=utf-8),
 * Cache-Control: no-cache and X-Content-Type-Options: nosniff; 404 for other paths under /ui,
 * 405 (Allow: GET, HEAD) for other methods. |ctx| is unused. Matches mcplex_admin_handler_fn.
 */
void mcplex_ui_handle(void *ctx, mcplex_http_stream_t *stream, const mcplex_http_request_t *req);

#endif
