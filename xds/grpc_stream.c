/*
 * grpc_stream.c - the ADS bidi call over the gRPC core C API (grpc_stream.h). One mutex guards
 * the call state and the send queue; the CQ thread reaps completions, re-arms RECV_MESSAGE,
 * starts the next queued SEND_MESSAGE and pushes hand-off items. grpc_call_start_batch is
 * thread-safe; we only make sure one op of each kind is outstanding per call (6.3 item 1).
 *
 * Threads: the public functions on the main thread; cq_thread_main on its own pthread.
 */
#include "xds/grpc_stream.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"

typedef enum op_kind {
    OP_SEND = 0,  /* SEND_INITIAL_METADATA, then each SEND_MESSAGE */
    OP_STATUS,    /* RECV_STATUS_ON_CLIENT */
    OP_RECV_INIT, /* RECV_INITIAL_METADATA */
    OP_RECV,      /* RECV_MESSAGE */
    OP_COUNT
} op_kind_t;

struct call_state;

typedef struct op_tag {
    struct call_state *cs;
    op_kind_t kind;
} op_tag_t;

typedef struct send_item {
    grpc_byte_buffer *bb;
    struct send_item *next;
} send_item_t;

typedef struct call_state {
    uint64_t id;
    grpc_call *call;
    op_tag_t tags[OP_COUNT];
    int pending; /* batches started and not reaped */
    int status_done;
    int send_busy;
    send_item_t *send_head; /* queued, not started */
    send_item_t *send_tail;
    grpc_byte_buffer *send_bb; /* the SEND_MESSAGE in flight */
    grpc_byte_buffer *recv_bb;
    grpc_metadata_array initial_md;
    grpc_metadata_array trailing_md;
    grpc_status_code status;
    grpc_slice details;
} call_state_t;

struct mcplex_grpc_stream {
    grpc_channel *channel;
    grpc_completion_queue *cq;
    char *method;
    mcplex_xds_handoff_t *handoff;
    pthread_t thread;
    int thread_started;
    pthread_mutex_t lock;
    pthread_cond_t idle; /* signalled when n_live drops */
    call_state_t *cur;   /* the current call, or NULL */
    int n_live;          /* call states not yet freed */
    uint64_t next_id;
};

/* ---- helpers (lock held) --------------------------------------------------------------------- */

static int
start_op(call_state_t *cs, op_kind_t kind, grpc_op *ops, size_t n)
{
    grpc_call_error e = grpc_call_start_batch(cs->call, ops, n, &cs->tags[kind], NULL);

    if (e != GRPC_CALL_OK) {
        mcplex_log_error("xds", "grpc_call_start_batch(op %d): error %d", (int)kind, (int)e);
        return -1;
    }
    cs->pending++;
    return 0;
}

static void
start_next_send(call_state_t *cs)
{
    send_item_t *it = cs->send_head;
    grpc_op op;

    if (it == NULL || cs->send_busy || cs->status_done)
        return;
    cs->send_head = it->next;
    if (cs->send_head == NULL)
        cs->send_tail = NULL;
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = it->bb;
    cs->send_bb = it->bb;
    free(it);
    if (start_op(cs, OP_SEND, &op, 1) == 0) {
        cs->send_busy = 1;
    } else {
        grpc_byte_buffer_destroy(cs->send_bb);
        cs->send_bb = NULL;
    }
}

static void
start_recv(call_state_t *cs)
{
    grpc_op op;

    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_MESSAGE;
    op.data.recv_message.recv_message = &cs->recv_bb;
    start_op(cs, OP_RECV, &op, 1);
}

static void
call_state_free(mcplex_grpc_stream_t *s, call_state_t *cs)
{
    send_item_t *next;

    for (; cs->send_head != NULL; cs->send_head = next) {
        next = cs->send_head->next;
        grpc_byte_buffer_destroy(cs->send_head->bb);
        free(cs->send_head);
    }
    if (cs->call != NULL)
        grpc_call_unref(cs->call);
    grpc_metadata_array_destroy(&cs->initial_md);
    grpc_metadata_array_destroy(&cs->trailing_md);
    grpc_slice_unref(cs->details);
    if (s->cur == cs)
        s->cur = NULL;
    free(cs);
    s->n_live--;
    pthread_cond_broadcast(&s->idle);
}

static void
push(mcplex_grpc_stream_t *s, mcplex_xds_handoff_kind_t kind, uint64_t id, uint8_t *data, size_t len,
     int status, char *details)
{
    mcplex_xds_handoff_item_t *it = mcplex_calloc(1, sizeof(*it));

    it->kind = kind;
    it->call_id = id;
    it->data = data;
    it->len = len;
    it->status = status;
    it->details = details;
    mcplex_xds_handoff_push(s->handoff, it);
}

/* ---- the CQ thread --------------------------------------------------------------------------- */

static void
on_complete(mcplex_grpc_stream_t *s, op_tag_t *tag, int success)
{
    call_state_t *cs = tag->cs;

    pthread_mutex_lock(&s->lock);
    cs->pending--;
    switch (tag->kind) {
    case OP_SEND:
        if (cs->send_bb != NULL) {
            grpc_byte_buffer_destroy(cs->send_bb);
            cs->send_bb = NULL;
        }
        cs->send_busy = 0;
        if (success)
            start_next_send(cs);
        break;
    case OP_RECV_INIT:
        if (success) {
            push(s, MCPLEX_XDS_HANDOFF_READY, cs->id, NULL, 0, 0, NULL);
            start_recv(cs);
        }
        break;
    case OP_RECV:
        if (success && cs->recv_bb != NULL) {
            grpc_byte_buffer_reader r;
            grpc_slice all;
            uint8_t *data = NULL;
            size_t len = 0;

            if (grpc_byte_buffer_reader_init(&r, cs->recv_bb)) {
                all = grpc_byte_buffer_reader_readall(&r);
                len = GRPC_SLICE_LENGTH(all);
                data = mcplex_malloc(len > 0 ? len : 1);
                memcpy(data, GRPC_SLICE_START_PTR(all), len);
                grpc_slice_unref(all);
                grpc_byte_buffer_reader_destroy(&r);
                push(s, MCPLEX_XDS_HANDOFF_MESSAGE, cs->id, data, len, 0, NULL);
            }
            grpc_byte_buffer_destroy(cs->recv_bb);
            cs->recv_bb = NULL;
            start_recv(cs);
        }
        /* else: the server half-closed or the call broke; the status follows */
        break;
    case OP_STATUS: {
        char *details = grpc_slice_to_c_string(cs->details);

        cs->status_done = 1;
        push(s, MCPLEX_XDS_HANDOFF_CLOSED, cs->id, NULL, 0, (int)cs->status, mcplex_strdup(details));
        gpr_free(details);
        if (s->cur == cs)
            s->cur = NULL;
        break;
    }
    default:
        break;
    }
    if (cs->status_done && cs->pending == 0)
        call_state_free(s, cs);
    pthread_mutex_unlock(&s->lock);
}

static void *
cq_thread_main(void *arg)
{
    mcplex_grpc_stream_t *s = arg;

    for (;;) {
        grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE)
            on_complete(s, ev.tag, ev.success);
    }
    return NULL;
}

/* ---- public ---------------------------------------------------------------------------------- */

mcplex_grpc_stream_t *
mcplex_grpc_stream_create(const char *target, const char *method, const mcplex_grpc_tls_t *tls,
                          mcplex_xds_handoff_t *handoff)
{
    mcplex_grpc_stream_t *s = mcplex_calloc(1, sizeof(*s));
    grpc_channel_credentials *creds;
    grpc_arg args[8];
    grpc_channel_args cargs;
    int n = 0;

    grpc_init();
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->idle, NULL);
    s->method = mcplex_strdup(method);
    s->handoff = handoff;
    s->next_id = 1;
#define INT_ARG(k, v)                                                                                        \
    do {                                                                                                     \
        args[n].type = GRPC_ARG_INTEGER;                                                                     \
        args[n].key = (char *)(k);                                                                           \
        args[n].value.integer = (v);                                                                         \
        n++;                                                                                                 \
    } while (0)
    INT_ARG(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 256 * 1024 * 1024); /* big CDS/LDS responses */
    INT_ARG(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
    INT_ARG(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    INT_ARG(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 500);
    INT_ARG(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 500);
    INT_ARG(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 30000);
#undef INT_ARG
    args[n].type = GRPC_ARG_STRING;
    args[n].key = (char *)GRPC_ARG_PRIMARY_USER_AGENT_STRING;
    args[n].value.string = (char *)"mcplex/" MCPLEX_VERSION;
    n++;
    if (tls != NULL && tls->target_name_override != NULL) {
        args[n].type = GRPC_ARG_STRING;
        args[n].key = (char *)GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
        args[n].value.string = (char *)tls->target_name_override;
        n++;
    }
    cargs.num_args = (size_t)n;
    cargs.args = args;
    if (tls != NULL) {
        grpc_ssl_pem_key_cert_pair pair = {tls->private_key, tls->cert_chain};
        creds = grpc_ssl_credentials_create(tls->root_certs, tls->cert_chain != NULL ? &pair : NULL, NULL, NULL);
    } else {
        creds = grpc_insecure_credentials_create();
    }
    s->channel = grpc_channel_create(target, creds, &cargs);
    grpc_channel_credentials_release(creds);
    if (s->channel == NULL) {
        mcplex_log_error("xds", "cannot create a gRPC channel to '%s'", target);
        goto fail;
    }
    s->cq = grpc_completion_queue_create_for_next(NULL);
    if (pthread_create(&s->thread, NULL, cq_thread_main, s) != 0) {
        mcplex_log_error("xds", "cannot start the gRPC completion-queue thread");
        goto fail;
    }
    s->thread_started = 1;
    return s;
fail:
    mcplex_grpc_stream_destroy(s);
    return NULL;
}

uint64_t
mcplex_grpc_stream_start(mcplex_grpc_stream_t *s)
{
    call_state_t *cs;
    grpc_op op;
    uint64_t id = 0;
    int status_started = 0;

    pthread_mutex_lock(&s->lock);
    if (s->cur != NULL) {
        mcplex_log_error("xds", "a gRPC call is still live; not starting another");
        goto done;
    }
    cs = mcplex_calloc(1, sizeof(*cs));
    cs->id = s->next_id++;
    for (int k = 0; k < OP_COUNT; k++) {
        cs->tags[k].cs = cs;
        cs->tags[k].kind = (op_kind_t)k;
    }
    grpc_metadata_array_init(&cs->initial_md);
    grpc_metadata_array_init(&cs->trailing_md);
    cs->details = grpc_empty_slice();
    cs->call = grpc_channel_create_call(s->channel, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq,
                                        grpc_slice_from_static_string(s->method), NULL,
                                        gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    s->n_live++;
    if (cs->call == NULL) {
        mcplex_log_error("xds", "grpc_channel_create_call failed");
        call_state_free(s, cs);
        goto done;
    }
    /* 1: initial metadata, waiting for the channel instead of failing UNAVAILABLE at once */
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_SEND_INITIAL_METADATA;
    op.flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
    if (start_op(cs, OP_SEND, &op, 1) != 0)
        goto broken;
    cs->send_busy = 1;
    /* 2: the status, pending for the life of the call */
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &cs->trailing_md;
    op.data.recv_status_on_client.status = &cs->status;
    op.data.recv_status_on_client.status_details = &cs->details;
    if (start_op(cs, OP_STATUS, &op, 1) != 0)
        goto broken;
    status_started = 1;
    /* 3: the server's initial metadata on its own (servers may send it lazily) */
    memset(&op, 0, sizeof(op));
    op.op = GRPC_OP_RECV_INITIAL_METADATA;
    op.data.recv_initial_metadata.recv_initial_metadata = &cs->initial_md;
    if (start_op(cs, OP_RECV_INIT, &op, 1) != 0)
        goto broken;
    s->cur = cs;
    id = cs->id;
    goto done;
broken:
    /* return 0 (the caller retries later); the batches already started complete after the
     * cancel and the last one frees the state (the status, if it was started, reports nothing
     * the caller waits for: its call id was never returned) */
    grpc_call_cancel(cs->call, NULL);
    if (!status_started)
        cs->status_done = 1;
    if (cs->pending == 0)
        call_state_free(s, cs);
done:
    pthread_mutex_unlock(&s->lock);
    return id;
}

int
mcplex_grpc_stream_send(mcplex_grpc_stream_t *s, const uint8_t *data, size_t len)
{
    send_item_t *it;
    grpc_slice slice;
    int rc = -1;

    pthread_mutex_lock(&s->lock);
    if (s->cur == NULL || s->cur->status_done)
        goto done;
    it = mcplex_calloc(1, sizeof(*it));
    slice = grpc_slice_from_copied_buffer((const char *)data, len);
    it->bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    if (s->cur->send_tail != NULL)
        s->cur->send_tail->next = it;
    else
        s->cur->send_head = it;
    s->cur->send_tail = it;
    start_next_send(s->cur);
    rc = 0;
done:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void
mcplex_grpc_stream_cancel(mcplex_grpc_stream_t *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->cur != NULL && s->cur->call != NULL)
        grpc_call_cancel(s->cur->call, NULL);
    pthread_mutex_unlock(&s->lock);
}

void
mcplex_grpc_stream_destroy(mcplex_grpc_stream_t *s)
{
    if (s == NULL)
        return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->lock);
        if (s->cur != NULL && s->cur->call != NULL)
            grpc_call_cancel(s->cur->call, NULL);
        while (s->n_live > 0)
            pthread_cond_wait(&s->idle, &s->lock);
        pthread_mutex_unlock(&s->lock);
        grpc_completion_queue_shutdown(s->cq);
        pthread_join(s->thread, NULL);
    } else if (s->cq != NULL) {
        grpc_completion_queue_shutdown(s->cq);
        while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
               GRPC_QUEUE_SHUTDOWN)
            ;
    }
    if (s->cq != NULL)
        grpc_completion_queue_destroy(s->cq);
    if (s->channel != NULL)
        grpc_channel_destroy(s->channel);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->lock);
    free(s->method);
    free(s);
    grpc_shutdown();
}
