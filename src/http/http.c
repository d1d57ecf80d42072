/*
 * http.c - the codec-independent half of the stream API (see http.h): the dispatch through each
 * codec's ops table, request header lookup and reason phrases. Owns nothing.
 * Thread: the worker that owns the stream (the helpers without a stream: any).
 */
#include "http/http.h"

#include <event2/event.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

/* --- response observer (issue 7) --- */
uint64_t
mcplex_http_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void
mcplex_http_stream_observe(mcplex_http_stream_t *stream, const mcplex_http_request_t *req,
                           mcplex_http_complete_fn fn, void *arg)
{
    stream->on_complete = fn;
    stream->on_complete_arg = arg;
    stream->observed_req = req;
    stream->started_us = mcplex_http_now_us();
}

/* Tells the observer once, before the codec may free the stream. */
static void
observe_complete(mcplex_http_stream_t *stream)
{
    mcplex_http_complete_fn fn = stream->on_complete;

    if (fn == NULL)
        return;
    stream->on_complete = NULL;
    fn(stream->on_complete_arg, stream, stream->resp_status, stream->resp_bytes, stream->started_us);
}
/* --- end response observer --- */

int
mcplex_http_stream_respond(mcplex_http_stream_t *stream, int status, const mcplex_http_header_t *hdrs,
                           size_t n_hdrs, const void *body, size_t body_len)
{
    if (stream->on_complete != NULL && stream->resp_status == 0) {
        stream->resp_status = status;
        stream->resp_bytes = body_len;
        observe_complete(stream);
    }
    return stream->ops->respond(stream, status, hdrs, n_hdrs, body, body_len);
}

int
mcplex_http_stream_start(mcplex_http_stream_t *stream, int status, const mcplex_http_header_t *hdrs,
                         size_t n_hdrs)
{
    if (stream->resp_status == 0)
        stream->resp_status = status;
    return stream->ops->start(stream, status, hdrs, n_hdrs);
}

int
mcplex_http_stream_write(mcplex_http_stream_t *stream, const void *data, size_t len)
{
    stream->resp_bytes += len;
    return stream->ops->write(stream, data, len);
}

int
mcplex_http_stream_finish(mcplex_http_stream_t *stream)
{
    observe_complete(stream);
    return stream->ops->finish(stream);
}

size_t
mcplex_http_stream_pending_bytes(const mcplex_http_stream_t *stream)
{
    return stream->ops->pending_bytes(stream);
}

void
mcplex_http_stream_set_close_cb(mcplex_http_stream_t *stream, mcplex_http_stream_close_fn cb, void *arg)
{
    stream->on_close = cb;
    stream->on_close_arg = cb != NULL ? arg : NULL;
}

const char *
mcplex_http_stream_peer(const mcplex_http_stream_t *stream)
{
    return stream->peer;
}

const char *
mcplex_http_request_header(const mcplex_http_request_t *req, const char *lname)
{
    size_t len = strlen(lname);

    for (size_t i = 0; i < req->n_headers; i++) {
        const mcplex_http_header_t *h = &req->headers[i];
        if (h->name_len == len && memcmp(h->name, lname, len) == 0)
            return h->value;
    }
    return NULL;
}

const char *
mcplex_http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Entity";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: break;
    }
    if (status >= 100 && status < 200)
        return "Informational";
    if (status >= 200 && status < 300)
        return "Success";
    if (status >= 300 && status < 400)
        return "Redirection";
    if (status >= 400 && status < 500)
        return "Client Error";
    return "Server Error";
}

bool
mcplex_http_name_is(const char *name, size_t len, const char *lname)
{
    return strlen(lname) == len && strncasecmp(name, lname, len) == 0;
}

const char *
mcplex_http_date(struct event_base *base)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char cached[80];
    struct timeval tv;
    struct tm tm;

    event_base_gettimeofday_cached(base, &tv);
    if (tv.tv_sec != cached_sec) {
        time_t t = tv.tv_sec;
        gmtime_r(&t, &tm);
        snprintf(cached, sizeof(cached), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
                 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_sec = tv.tv_sec;
    }
    return cached;
}
