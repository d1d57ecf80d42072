/*
 * yaml_tree.c - config text (YAML or JSON) -> cJSON tree (see yaml_tree.h).
 *
 * Owns the scalar resolution rules of config files and the guards against hostile input: a
 * nesting limit, and a node budget that alias expansion counts against (so an "alias bomb" of
 * nested anchors fails cleanly instead of exhausting memory). Built on libyaml's event API so
 * explicit tags (!!str, !!int, ...) and quoting are visible. Merge keys ("<<: *base") are
 * supported; duplicate keys are an error. Pure code: any thread (usually the main thread while
 * loading the bootstrap).
 */
#include "config/yaml_tree.h"

#include "common/mem.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

/* Mapping/sequence nesting limit. */
#define YT_MAX_DEPTH 128
/* Nodes in one document, aliases counted at their expanded size. */
#define YT_MAX_NODES 1000000
/* Largest config file read by mcplex_yaml_parse_file. */
#define YT_MAX_FILE_SIZE (64u * 1024u * 1024u)

typedef struct yt_frame {
    cJSON *node;           /* object or array being filled; owned until attached */
    char *anchor;          /* this container's anchor, registered when it ends */
    size_t nodes_at_start; /* node counter when the container started */
    char *key;             /* object: the pending key, or NULL */
    yaml_mark_t key_mark;
    bool key_is_merge; /* the pending key is "<<" */
    cJSON *merges;     /* object: merge sources in order (array), or NULL */
} yt_frame_t;

typedef struct yt_anchor {
    char *name;
    const cJSON *node; /* points into the tree (or the graveyard); not owned */
    size_t size;       /* nodes in the subtree */
} yt_anchor_t;

typedef struct yt_state {
    const char *path;
    mcplex_errors_t *errs;
    yt_frame_t stack[YT_MAX_DEPTH];
    size_t depth;
    yt_anchor_t *anchors;
    size_t n_anchors;
    size_t cap_anchors;
    size_t nodes;
    cJSON *root;
    cJSON *graveyard; /* merge sources, kept alive for anchors that point into them */
    bool failed;
    bool done;
} yt_state_t;

static void *
yt_check(void *p)
{
    if (p == NULL)
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
    return p;
}

static void
yt_error(yt_state_t *st, const yaml_mark_t *mark, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
yt_error(yt_state_t *st, const yaml_mark_t *mark, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (mark != NULL)
        mcplex_errors_add(st->errs, st->path, "line %zu column %zu: %s", mark->line + 1, mark->column + 1,
                          msg);
    else
        mcplex_errors_add(st->errs, st->path, "%s", msg);
    st->failed = true;
}

/* A string the way cJSON_Delete frees it (cJSON's allocator). */
static char *
yt_json_strdup(const char *s)
{
    size_t len = strlen(s);
    char *copy = yt_check(cJSON_malloc(len + 1));

    memcpy(copy, s, len + 1);
    return copy;
}

static bool
yt_count_nodes(yt_state_t *st, size_t n, const yaml_mark_t *mark)
{
    if (n > YT_MAX_NODES || st->nodes > YT_MAX_NODES - n) {
        yt_error(st, mark, "document exceeds %d nodes (alias expansion included)", YT_MAX_NODES);
        return false;
    }
    st->nodes += n;
    return true;
}

static size_t
yt_subtree_size(const cJSON *node)
{
    size_t n = 1;

    for (const cJSON *c = node->child; c != NULL; c = c->next)
        n += yt_subtree_size(c);
    return n;
}

static void
yt_register_anchor(yt_state_t *st, const char *name, const cJSON *node, size_t size)
{
    if (st->n_anchors == st->cap_anchors) {
        st->cap_anchors = st->cap_anchors ? st->cap_anchors * 2 : 16;
        st->anchors = mcplex_realloc(st->anchors, st->cap_anchors * sizeof(*st->anchors));
    }
    st->anchors[st->n_anchors].name = mcplex_strdup(name);
    st->anchors[st->n_anchors].node = node;
    st->anchors[st->n_anchors].size = size;
    st->n_anchors++;
}

static const yt_anchor_t *
yt_find_anchor(const yt_state_t *st, const char *name)
{
    /* Newest first: YAML lets a later anchor of the same name shadow an earlier one. */
    for (size_t i = st->n_anchors; i > 0; i--) {
        if (strcmp(st->anchors[i - 1].name, name) == 0)
            return &st->anchors[i - 1];
    }
    return NULL;
}

/* ---- scalar resolution -------------------------------------------------------------------- */

static bool
yt_is_null_text(const char *s)
{
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
           strcmp(s, "NULL") == 0;
}

static int
yt_bool_text(const char *s)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
        return 1;
    if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
        return 0;
    return -1;
}

static bool
yt_all_digits(const char *s, int base)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (base == 16 && !((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
            return false;
        if (base == 8 && !(*s >= '0' && *s <= '7'))
            return false;
        if (base == 10 && !(*s >= '0' && *s <= '9'))
            return false;
    }
    return true;
}

/*
 * Recognizes the number forms of a plain scalar: decimal integers, 0x hex and 0o octal
 * integers, and decimal floats with optional exponent. Sets *value; returns false otherwise.
 */
static bool
yt_number_text(const char *s, double *value)
{
    const char *p = s;
    bool digits = false;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        int base = s[1] == 'x' ? 16 : 8;

        if (!yt_all_digits(s + 2, base))
            return false;
        errno = 0;
        *value = (double)strtoull(s + 2, NULL, base);
        return errno == 0;
    }
    if (*p == '-' || *p == '+')
        p++;
    while (*p >= '0' && *p <= '9') {
        p++;
        digits = true;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            p++;
            digits = true;
        }
    }
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p != '\0')
        return false;
    *value = strtod(s, NULL);
    return true;
}

static cJSON *
yt_number(double value, const char *text)
{
    cJSON *item = yt_check(cJSON_CreateNumber(value));

    item->valuestring = yt_json_strdup(text);
    return item;
}

static cJSON *
yt_scalar(yt_state_t *st, const yaml_event_t *ev)
{
    const char *text = (const char *)ev->data.scalar.value;
    const char *tag = (const char *)ev->data.scalar.tag;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    double num;
    int b;

    if (strlen(text) != ev->data.scalar.length) {
        yt_error(st, &ev->start_mark, "NUL character in scalar");
        return NULL;
    }
    if (tag != NULL) {
        if (strcmp(tag, YAML_STR_TAG) == 0 || strcmp(tag, "!") == 0)
            return yt_check(cJSON_CreateString(text));
        if (strcmp(tag, YAML_INT_TAG) == 0 || strcmp(tag, YAML_FLOAT_TAG) == 0) {
            if (!yt_number_text(text, &num)) {
                yt_error(st, &ev->start_mark, "'%.64s' is not a %s", text,
                         strcmp(tag, YAML_INT_TAG) == 0 ? "!!int" : "!!float");
                return NULL;
            }
            return yt_number(num, text);
        }
        if (strcmp(tag, YAML_BOOL_TAG) == 0) {
            if ((b = yt_bool_text(text)) < 0) {
                yt_error(st, &ev->start_mark, "'%.64s' is not a !!bool", text);
                return NULL;
            }
            return yt_check(cJSON_CreateBool(b));
        }
        if (strcmp(tag, YAML_NULL_TAG) == 0) {
            if (!yt_is_null_text(text)) {
                yt_error(st, &ev->start_mark, "'%.64s' is not a !!null", text);
                return NULL;
            }
            return yt_check(cJSON_CreateNull());
        }
        /* Any other tag (application tags such as !Ref) is ignored: resolve by content. */
    }
    if (!plain)
        return yt_check(cJSON_CreateString(text));
    if (yt_is_null_text(text))
        return yt_check(cJSON_CreateNull());
    if ((b = yt_bool_text(text)) >= 0)
        return yt_check(cJSON_CreateBool(b));
    if (yt_number_text(text, &num))
        return yt_number(num, text);
    return yt_check(cJSON_CreateString(text));
}

/* ---- tree building ------------------------------------------------------------------------ */

static bool
yt_merge_source_ok(const cJSON *v)
{
    if (cJSON_IsObject(v))
        return true;
    if (!cJSON_IsArray(v))
        return false;
    for (const cJSON *c = v->child; c != NULL; c = c->next) {
        if (!cJSON_IsObject(c))
            return false;
    }
    return true;
}

static void
yt_add(cJSON *obj, const char *key, cJSON *item)
{
    if (!cJSON_AddItemToObject(obj, key, item))
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
}

/* Adds a complete node to the open container (or makes it the root). Takes ownership. */
static void
yt_attach(yt_state_t *st, cJSON *node)
{
    yt_frame_t *top;

    if (st->depth == 0) {
        if (st->root == NULL)
            st->root = node;
        else
            cJSON_Delete(node);
        return;
    }
    top = &st->stack[st->depth - 1];
    if (cJSON_IsArray(top->node)) {
        cJSON_AddItemToArray(top->node, node);
        return;
    }
    /* Object: |node| is the value of top->key (keys are taken in yt_on_scalar). */
    if (top->key_is_merge) {
        if (!yt_merge_source_ok(node)) {
            yt_error(st, &top->key_mark, "the value of '<<' must be a mapping or a sequence of mappings");
            cJSON_Delete(node);
        } else {
            if (top->merges == NULL)
                top->merges = yt_check(cJSON_CreateArray());
            cJSON_AddItemToArray(top->merges, node);
        }
    } else if (cJSON_GetObjectItemCaseSensitive(top->node, top->key) != NULL) {
        yt_error(st, &top->key_mark, "duplicate key '%.128s'", top->key);
        cJSON_Delete(node);
    } else {
        yt_add(top->node, top->key, node);
    }
    free(top->key);
    top->key = NULL;
    top->key_is_merge = false;
}

static void
yt_merge_one(yt_state_t *st, cJSON *obj, const cJSON *src, const yaml_mark_t *mark)
{
    for (const cJSON *c = src->child; c != NULL && !st->failed; c = c->next) {
        cJSON *copy;

        if (cJSON_GetObjectItemCaseSensitive(obj, c->string) != NULL)
            continue;
        if (!yt_count_nodes(st, yt_subtree_size(c), mark))
            return;
        copy = yt_check(cJSON_Duplicate(c, 1));
        yt_add(obj, c->string, copy);
    }
}

/* Applies "<<" merge sources: keys of the mapping itself win, then earlier sources. */
static void
yt_apply_merges(yt_state_t *st, yt_frame_t *f, const yaml_mark_t *mark)
{
    for (const cJSON *m = f->merges->child; m != NULL && !st->failed; m = m->next) {
        if (cJSON_IsObject(m)) {
            yt_merge_one(st, f->node, m, mark);
            continue;
        }
        for (const cJSON *e = m->child; e != NULL && !st->failed; e = e->next)
            yt_merge_one(st, f->node, e, mark);
    }
    /* Anchors may point into the sources: keep them until the parse ends. */
    cJSON_AddItemToArray(st->graveyard, f->merges);
    f->merges = NULL;
}

static void
yt_push(yt_state_t *st, cJSON *node, const yaml_char_t *anchor, const yaml_mark_t *mark)
{
    yt_frame_t *f;

    if (st->depth == YT_MAX_DEPTH) {
        yt_error(st, mark, "nesting deeper than %d levels", YT_MAX_DEPTH);
        cJSON_Delete(node);
        return;
    }
    if (!yt_count_nodes(st, 1, mark)) {
        cJSON_Delete(node);
        return;
    }
    f = &st->stack[st->depth++];
    memset(f, 0, sizeof(*f));
    f->node = node;
    f->anchor = anchor != NULL ? mcplex_strdup((const char *)anchor) : NULL;
    f->nodes_at_start = st->nodes;
}

static void
yt_pop(yt_state_t *st, const yaml_mark_t *mark)
{
    yt_frame_t *f = &st->stack[st->depth - 1];
    cJSON *node = f->node;
    char *anchor = f->anchor;
    size_t size;

    if (f->merges != NULL)
        yt_apply_merges(st, f, mark);
    free(f->key);
    st->depth--;
    size = st->nodes - f->nodes_at_start + 1;
    if (anchor != NULL && !st->failed)
        yt_register_anchor(st, anchor, node, size);
    free(anchor);
    yt_attach(st, node);
}

static void
yt_on_scalar(yt_state_t *st, const yaml_event_t *ev)
{
    yt_frame_t *top = st->depth > 0 ? &st->stack[st->depth - 1] : NULL;
    cJSON *node;

    if (top != NULL && cJSON_IsObject(top->node) && top->key == NULL) {
        /* A mapping key: its text, whatever it looks like ("8080", "true", "null"). */
        if (strlen((const char *)ev->data.scalar.value) != ev->data.scalar.length) {
            yt_error(st, &ev->start_mark, "NUL character in key");
            return;
        }
        top->key = mcplex_strdup((const char *)ev->data.scalar.value);
        top->key_mark = ev->start_mark;
        top->key_is_merge = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && strcmp(top->key, "<<") == 0;
        return;
    }
    if (!yt_count_nodes(st, 1, &ev->start_mark))
        return;
    if ((node = yt_scalar(st, ev)) == NULL)
        return;
    if (ev->data.scalar.anchor != NULL)
        yt_register_anchor(st, (const char *)ev->data.scalar.anchor, node, 1);
    yt_attach(st, node);
}

static bool
yt_expecting_key(const yt_state_t *st)
{
    const yt_frame_t *top = st->depth > 0 ? &st->stack[st->depth - 1] : NULL;

    return top != NULL && cJSON_IsObject(top->node) && top->key == NULL;
}

static void
yt_on_alias(yt_state_t *st, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    const yt_anchor_t *a = yt_find_anchor(st, name);

    if (yt_expecting_key(st)) {
        yt_error(st, &ev->start_mark, "aliases as mapping keys are not supported");
        return;
    }
    if (a == NULL) {
        /* Also what a recursive alias (one inside its own anchor) looks like. */
        yt_error(st, &ev->start_mark, "unknown anchor '%.128s'", name);
        return;
    }
    if (!yt_count_nodes(st, a->size, &ev->start_mark))
        return;
    yt_attach(st, yt_check(cJSON_Duplicate(a->node, 1)));
}

static void
yt_on_event(yt_state_t *st, const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        yt_on_scalar(st, ev);
        break;
    case YAML_ALIAS_EVENT:
        yt_on_alias(st, ev);
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (yt_expecting_key(st)) {
            yt_error(st, &ev->start_mark, "mapping keys must be scalars");
            break;
        }
        if (ev->type == YAML_SEQUENCE_START_EVENT)
            yt_push(st, yt_check(cJSON_CreateArray()), ev->data.sequence_start.anchor, &ev->start_mark);
        else
            yt_push(st, yt_check(cJSON_CreateObject()), ev->data.mapping_start.anchor, &ev->start_mark);
        break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (st->depth > 0)
            yt_pop(st, &ev->start_mark);
        break;
    case YAML_DOCUMENT_END_EVENT:
    case YAML_STREAM_END_EVENT:
        /* Only the first document is read. */
        st->done = true;
        break;
    default:
        break;
    }
}

static void
yt_parser_error(yt_state_t *st, const yaml_parser_t *parser)
{
    const char *problem = parser->problem != NULL ? parser->problem : "invalid YAML";

    if (parser->error == YAML_MEMORY_ERROR)
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
    if (parser->error == YAML_READER_ERROR) {
        yt_error(st, NULL, "byte offset %zu: %s", parser->problem_offset, problem);
        return;
    }
    if (parser->context != NULL) {
        yt_error(st, &parser->problem_mark, "%s (%s at line %zu column %zu)", problem, parser->context,
                 parser->context_mark.line + 1, parser->context_mark.column + 1);
    } else {
        yt_error(st, &parser->problem_mark, "%s", problem);
    }
}

static void
yt_state_dispose(yt_state_t *st)
{
    for (size_t i = 0; i < st->depth; i++) {
        cJSON_Delete(st->stack[i].node);
        cJSON_Delete(st->stack[i].merges);
        free(st->stack[i].anchor);
        free(st->stack[i].key);
    }
    for (size_t i = 0; i < st->n_anchors; i++)
        free(st->anchors[i].name);
    free(st->anchors);
    cJSON_Delete(st->graveyard);
}

cJSON *
mcplex_yaml_parse(const char *text, size_t len, const char *path, mcplex_errors_t *errs)
{
    yaml_parser_t parser;
    yt_state_t st;
    cJSON *root = NULL;

    memset(&st, 0, sizeof(st));
    st.path = path;
    st.errs = errs;
    st.graveyard = yt_check(cJSON_CreateArray());
    if (!yaml_parser_initialize(&parser))
        mcplex_fatal(__FILE__, __LINE__, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!st.done && !st.failed) {
        yaml_event_t ev;

        if (!yaml_parser_parse(&parser, &ev)) {
            yt_parser_error(&st, &parser);
            break;
        }
        yt_on_event(&st, &ev);
        yaml_event_delete(&ev);
    }
    if (st.failed)
        goto cleanup;
    root = st.root;
    st.root = NULL;
    if (root == NULL || cJSON_IsNull(root)) {
        cJSON_Delete(root);
        root = yt_check(cJSON_CreateObject());
    }
cleanup:
    cJSON_Delete(st.root);
    yt_state_dispose(&st);
    yaml_parser_delete(&parser);
    return root;
}

cJSON *
mcplex_yaml_parse_file(const char *filename, mcplex_errors_t *errs)
{
    FILE *fp = NULL;
    struct stat sb;
    char *text = NULL;
    size_t len = 0;
    cJSON *root = NULL;

    if ((fp = fopen(filename, "rb")) == NULL) {
        mcplex_errors_add(errs, filename, "cannot open: %s", strerror(errno));
        goto cleanup;
    }
    if (fstat(fileno(fp), &sb) != 0) {
        mcplex_errors_add(errs, filename, "cannot stat: %s", strerror(errno));
        goto cleanup;
    }
    if (!S_ISREG(sb.st_mode) && !S_ISFIFO(sb.st_mode) && !S_ISCHR(sb.st_mode)) {
        mcplex_errors_add(errs, filename, "not a regular file");
        goto cleanup;
    }
    /* Read in chunks: works for pipes too; the cap protects against huge inputs. */
    for (size_t cap = 0;;) {
        size_t n;

        if (len == cap) {
            if (cap >= YT_MAX_FILE_SIZE) {
                mcplex_errors_add(errs, filename, "file larger than %u bytes", YT_MAX_FILE_SIZE);
                goto cleanup;
            }
            cap = cap ? cap * 2 : 64 * 1024;
            text = mcplex_realloc(text, cap + 1);
        }
        n = fread(text + len, 1, cap - len, fp);
        len += n;
        if (n == 0) {
            if (ferror(fp)) {
                mcplex_errors_add(errs, filename, "cannot read: %s", strerror(errno));
                goto cleanup;
            }
            break;
        }
    }
    root = mcplex_yaml_parse(text != NULL ? text : "", len, filename, errs);
cleanup:
    if (fp != NULL)
        fclose(fp);
    free(text);
    return root;
}
