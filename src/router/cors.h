/*
 * cors.h - Envoy's envoy.filters.http.cors behaviour for one request against the route's
 * effective CORS policy: preflight answers and the Access-Control-* headers of actual responses.
 * Pure code, any thread.
 */
#ifndef MCPLEX_ROUTER_CORS_H
#define MCPLEX_ROUTER_CORS_H

#include <stddef.h>

#include "config/model.h"
#include "http/http.h"

/* Response headers computed for one request; strings point into |storage| or the policy. */
typedef struct mcplex_cors_result {
    int preflight;                   /* 1: answer now with 200 and these headers, no upstream */
    mcplex_http_header_t headers[6];
    size_t n_headers;
    char storage[1024];
} mcplex_cors_result_t;

/*
 * Evaluates |policy| (may be NULL: no headers) for |req|. A request without Origin, or whose
 * Origin the policy does not allow, gets no CORS headers (the browser then blocks it; Envoy does
 * the same). OPTIONS with Origin and Access-Control-Request-Method is a preflight.
 */
void mcplex_cors_evaluate(const mcplex_cors_policy_t *policy, const mcplex_http_request_t *req,
                          mcplex_cors_result_t *out);

#endif
