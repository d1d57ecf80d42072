/*
 * stats.c - the process-wide stats store and its Envoy renderings (see stats.h).
 * Thread: any. Lookups and rendering take the store's read lock, creation its write lock;
 * updates are lock-free atomics.
 */
#include "admin/stats.h"

#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "common/mem.h"
#include "common/strmap.h"

const double mcplex_stats_bucket_bounds[MCPLEX_STATS_N_BUCKETS] = {
    0.5,  1,    5,     10,    25,    50,     100,    250,     500,     1000,
    2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
};

/* Envoy's supported quantiles of the text and JSON renderings. */
static const double quantiles[] = {0, 0.25, 0.5, 0.75, 0.90, 0.95, 0.99, 0.995, 0.999, 1};
static const char *const quantile_names[] = {"P0",  "P25", "P50",   "P75",   "P90",
                                             "P95", "P99", "P99.5", "P99.9", "P100"};
#define N_QUANTILES (sizeof(quantiles) / sizeof(quantiles[0]))

/* Lookups and renderings read (any number of worker threads at once); creation and reset write. */
static pthread_rwlock_t store_lock = PTHREAD_RWLOCK_INITIALIZER;
static mcplex_strmap_t store_by_name; /* Envoy name -> mcplex_stat_t * */
static int store_ready;
static mcplex_stat_t **store_all;
static size_t store_n, store_cap;

/* ---- names ---------------------------------------------------------------------------------- */

static void
prom_sanitize(char *s)
{
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            *s = '_';
}

/* Appends |v| escaped as a Prometheus label value (backslash, quote, newline). */
static void
label_escape(FILE *f, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(f, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

/*
 * Builds the three names of |tmpl| with the placeholder values from |ap|: the Envoy name (values
 * in place), the Prometheus family name ("envoy_" + the name without the tagged segments) and
 * the label list.
 */
static void
build_names(const char *tmpl, va_list ap, char **name, char **prom_name, char **labels)
{
    char *nbuf = NULL, *pbuf = NULL, *lbuf = NULL;
    size_t nlen = 0, plen = 0, llen = 0;
    FILE *nf = open_memstream(&nbuf, &nlen);
    FILE *pf = open_memstream(&pbuf, &plen);
    FILE *lf = open_memstream(&lbuf, &llen);
    const char *p = tmpl;
    int first_label = 1, first_seg = 1;

    if (nf == NULL || pf == NULL || lf == NULL)
        abort();
    fputs("envoy", pf);
    while (*p != '\0') {
        const char *end = strchr(p, '.');
        size_t seglen = end != NULL ? (size_t)(end - p) : strlen(p);
        if (!first_seg)
            fputc('.', nf);
        first_seg = 0;
        if (seglen > 2 && p[0] == '{' && p[seglen - 1] == '}') {
            const char *v = va_arg(ap, const char *);
            if (v == NULL)
                v = "";
            fputs(v, nf);
            fprintf(lf, "%s%.*s=\"", first_label ? "" : ",", (int)(seglen - 2), p + 1);
            label_escape(lf, v);
            fputc('"', lf);
            first_label = 0;
        } else {
            fprintf(nf, "%.*s", (int)seglen, p);
            fprintf(pf, "_%.*s", (int)seglen, p);
        }
        p += seglen;
        if (*p == '.')
            p++;
    }
    fclose(nf);
    fclose(pf);
    fclose(lf);
    prom_sanitize(pbuf);
    *name = nbuf;
    *prom_name = pbuf;
    *labels = lbuf;
}

/*
 * The Envoy name of |tmpl| with the placeholder values from |ap| into |buf| (|cap| bytes, NUL
 * terminated). Returns 0, or -1 if it does not fit. The hot path: no allocation.
 */
static int
envoy_name(char *buf, size_t cap, const char *tmpl, va_list ap)
{
    size_t len = 0;
    const char *p = tmpl;

    while (*p != '\0') {
        const char *end = strchr(p, '.');
        size_t seglen = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *v = p;
        size_t vlen = seglen;

        if (seglen > 2 && p[0] == '{' && p[seglen - 1] == '}') {
            v = va_arg(ap, const char *);
            if (v == NULL)
                v = "";
            vlen = strlen(v);
        }
        if (len + (len > 0) + vlen + 1 > cap)
            return -1;
        if (len > 0)
            buf[len++] = '.';
        memcpy(buf + len, v, vlen);
        len += vlen;
        p += seglen;
        if (*p == '.')
            p++;
    }
    buf[len] = '\0';
    return 0;
}

static mcplex_stat_t *
stats_get(mcplex_stat_type_t type, const char *tmpl, va_list ap)
{
    char *name, *prom_name, *labels;
    char fast[512];
    mcplex_stat_t *s = NULL;
    va_list copy;
    int fits;

    /* Most calls find an existing stat: look it up by its Envoy name built on the stack. */
    va_copy(copy, ap);
    fits = envoy_name(fast, sizeof(fast), tmpl, copy) == 0;
    va_end(copy);
    if (fits) {
        pthread_rwlock_rdlock(&store_lock);
        if (store_ready)
            s = mcplex_strmap_get(&store_by_name, fast);
        pthread_rwlock_unlock(&store_lock);
        if (s != NULL)
            return s;
    }
    build_names(tmpl, ap, &name, &prom_name, &labels);
    pthread_rwlock_wrlock(&store_lock);
    if (!store_ready) {
        mcplex_strmap_init(&store_by_name);
        store_ready = 1;
    }
    s = mcplex_strmap_get(&store_by_name, name);
    if (s == NULL) {
        s = mcplex_calloc(1, sizeof(*s));
        s->type = type;
        s->name = name;
        s->prom_name = prom_name;
        s->prom_labels = labels;
        name = prom_name = labels = NULL;
        mcplex_strmap_put(&store_by_name, s->name, s);
        if (store_n == store_cap) {
            store_cap = store_cap ? store_cap * 2 : 64;
            store_all = mcplex_realloc(store_all, store_cap * sizeof(*store_all));
        }
        store_all[store_n++] = s;
    }
    pthread_rwlock_unlock(&store_lock);
    free(name);
    free(prom_name);
    free(labels);
    return s;
}

mcplex_stat_t *
mcplex_stats_counter(const char *tmpl, ...)
{
    va_list ap;
    mcplex_stat_t *s;

    va_start(ap, tmpl);
    s = stats_get(MCPLEX_STAT_COUNTER, tmpl, ap);
    va_end(ap);
    return s;
}

mcplex_stat_t *
mcplex_stats_gauge(const char *tmpl, ...)
{
    va_list ap;
    mcplex_stat_t *s;

    va_start(ap, tmpl);
    s = stats_get(MCPLEX_STAT_GAUGE, tmpl, ap);
    va_end(ap);
    return s;
}

mcplex_stat_t *
mcplex_stats_histogram(const char *tmpl, ...)
{
    va_list ap;
    mcplex_stat_t *s;

    va_start(ap, tmpl);
    s = stats_get(MCPLEX_STAT_HISTOGRAM, tmpl, ap);
    va_end(ap);
    return s;
}

mcplex_stat_t *
mcplex_stats_find(const char *name)
{
    mcplex_stat_t *s = NULL;

    pthread_rwlock_rdlock(&store_lock);
    if (store_ready)
        s = mcplex_strmap_get(&store_by_name, name);
    pthread_rwlock_unlock(&store_lock);
    return s;
}

void
mcplex_stats_reset_counters(void)
{
    pthread_rwlock_rdlock(&store_lock);
    for (size_t i = 0; i < store_n; i++)
        if (store_all[i]->type == MCPLEX_STAT_COUNTER)
            atomic_store_explicit(&store_all[i]->value, 0, memory_order_relaxed);
    pthread_rwlock_unlock(&store_lock);
}

void
mcplex_stats_reset(void)
{
    pthread_rwlock_wrlock(&store_lock);
    for (size_t i = 0; i < store_n; i++) {
        free(store_all[i]->name);
        free(store_all[i]->prom_name);
        free(store_all[i]->prom_labels);
        free(store_all[i]);
    }
    free(store_all);
    store_all = NULL;
    store_n = store_cap = 0;
    if (store_ready)
        mcplex_strmap_dispose(&store_by_name);
    store_ready = 0;
    pthread_rwlock_unlock(&store_lock);
}

/* ---- histograms ----------------------------------------------------------------------------- */

void
mcplex_stat_record(mcplex_stat_t *s, double value)
{
    size_t b = 0;

    if (s == NULL)
        return;
    if (!(value >= 0))
        value = 0;
    while (b < MCPLEX_STATS_N_BUCKETS && value > mcplex_stats_bucket_bounds[b])
        b++;
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_micro, (uint64_t)llround(value * 1e6), memory_order_relaxed);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
    atomic_store_explicit(&s->used, 1, memory_order_relaxed);
}

double
mcplex_stat_quantile(const mcplex_stat_t *s, double q)
{
    uint64_t counts[MCPLEX_STATS_N_BUCKETS + 1], total = 0, seen = 0;
    double rank;

    for (size_t b = 0; b <= MCPLEX_STATS_N_BUCKETS; b++) {
        counts[b] = atomic_load_explicit(&((mcplex_stat_t *)s)->buckets[b], memory_order_relaxed);
        total += counts[b];
    }
    if (total == 0)
        return NAN;
    rank = q * (double)total;
    for (size_t b = 0; b <= MCPLEX_STATS_N_BUCKETS; b++) {
        double lo = b == 0 ? 0 : mcplex_stats_bucket_bounds[b - 1];
        double hi = b < MCPLEX_STATS_N_BUCKETS ? mcplex_stats_bucket_bounds[b] : lo;
        if (counts[b] == 0)
            continue;
        if ((double)(seen + counts[b]) >= rank) {
            double frac = counts[b] ? (rank - (double)seen) / (double)counts[b] : 0;
            if (frac < 0)
                frac = 0;
            return lo + (hi - lo) * frac;
        }
        seen += counts[b];
    }
    return mcplex_stats_bucket_bounds[MCPLEX_STATS_N_BUCKETS - 1];
}

/* ---- renderings ----------------------------------------------------------------------------- */

static int
cmp_stat_name(const void *a, const void *b)
{
    const mcplex_stat_t *x = *(mcplex_stat_t *const *)a, *y = *(mcplex_stat_t *const *)b;
    int c = strcmp(x->prom_name, y->prom_name);
    return c != 0 ? c : strcmp(x->name, y->name);
}

static int
cmp_stat_envoy_name(const void *a, const void *b)
{
    const mcplex_stat_t *x = *(mcplex_stat_t *const *)a, *y = *(mcplex_stat_t *const *)b;
    return strcmp(x->name, y->name);
}

/* The stats |q| selects, sorted (by Envoy name, or by Prometheus family when |by_family|).
 * Returns a malloc'ed array (|*n| entries; may be empty), or NULL on a bad regex. */
static mcplex_stat_t **
select_stats(const mcplex_stats_query_t *q, int by_family, size_t *n, char *err, size_t err_len)
{
    regex_t re;
    int have_re = 0, rc;
    mcplex_stat_t **out;
    size_t k = 0;

    if (q != NULL && q->filter != NULL && q->filter[0] != '\0') {
        rc = regcomp(&re, q->filter, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char why[128];
            regerror(rc, &re, why, sizeof(why));
            snprintf(err, err_len, "Invalid re2 regex: %s", why);
            return NULL;
        }
        have_re = 1;
    }
    pthread_rwlock_rdlock(&store_lock);
    out = mcplex_calloc(store_n + 1, sizeof(*out));
    for (size_t i = 0; i < store_n; i++) {
        mcplex_stat_t *s = store_all[i];
        if (have_re && regexec(&re, s->name, 0, NULL, 0) != 0)
            continue;
        if (q != NULL && q->used_only && !atomic_load(&s->used))
            continue;
        if (q != NULL && q->type != NULL && strcmp(q->type, "All") != 0) {
            if ((strcmp(q->type, "Counters") == 0 && s->type != MCPLEX_STAT_COUNTER) ||
                (strcmp(q->type, "Gauges") == 0 && s->type != MCPLEX_STAT_GAUGE) ||
                (strcmp(q->type, "Histograms") == 0 && s->type != MCPLEX_STAT_HISTOGRAM))
                continue;
        }
        out[k++] = s;
    }
    pthread_rwlock_unlock(&store_lock);
    if (have_re)
        regfree(&re);
    qsort(out, k, sizeof(*out), by_family ? cmp_stat_name : cmp_stat_envoy_name);
    *n = k;
    return out;
}

/* Writes |v| escaped for a JSON string (without the quotes). */
static void
json_escape(FILE *f, const char *v)
{
    for (; *v != '\0'; v++) {
        unsigned char c = (unsigned char)*v;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

/* Writes |v| escaped for a # HELP line (backslash and newline). */
static void
help_escape(FILE *f, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\')
            fputs("\\\\", f);
        else if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static void
print_number(FILE *f, double v)
{
    if (isnan(v))
        fputs("nan", f);
    else if (v == floor(v) && fabs(v) < 1e15)
        fprintf(f, "%.0f", v);
    else
        fprintf(f, "%.6g", v);
}

char *
mcplex_stats_render_text(const mcplex_stats_query_t *q, char *err, size_t err_len)
{
    size_t n, len = 0;
    mcplex_stat_t **all = select_stats(q, 0, &n, err, err_len);
    char *buf = NULL;
    FILE *f;

    if (all == NULL)
        return NULL;
    f = open_memstream(&buf, &len);
    if (f == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (all[i]->type == MCPLEX_STAT_COUNTER)
            fprintf(f, "%s: %llu\n", all[i]->name, (unsigned long long)mcplex_stat_value(all[i]));
        else if (all[i]->type == MCPLEX_STAT_GAUGE)
            fprintf(f, "%s: %lld\n", all[i]->name, (long long)(int64_t)mcplex_stat_value(all[i]));
    }
    for (size_t i = 0; i < n; i++) {
        if (all[i]->type != MCPLEX_STAT_HISTOGRAM)
            continue;
        fprintf(f, "%s: ", all[i]->name);
        if (atomic_load(&all[i]->count) == 0) {
            fputs("No recorded values\n", f);
            continue;
        }
        for (size_t k = 0; k < N_QUANTILES; k++) {
            double v = mcplex_stat_quantile(all[i], quantiles[k]);
            fprintf(f, "%s%s(nan,", k ? " " : "", quantile_names[k]);
            print_number(f, v);
            fputc(')', f);
        }
        fputc('\n', f);
    }
    fclose(f);
    free(all);
    return buf;
}

char *
mcplex_stats_render_json(const mcplex_stats_query_t *q, char *err, size_t err_len)
{
    size_t n, len = 0;
    mcplex_stat_t **all = select_stats(q, 0, &n, err, err_len);
    char *buf = NULL;
    int first = 1, any_hist = 0;
    FILE *f;

    if (all == NULL)
        return NULL;
    f = open_memstream(&buf, &len);
    if (f == NULL)
        abort();
    fputs("{\"stats\":[", f);
    for (size_t i = 0; i < n; i++) {
        if (all[i]->type == MCPLEX_STAT_HISTOGRAM) {
            any_hist = 1;
            continue;
        }
        fprintf(f, "%s{\"name\":\"", first ? "" : ",");
        json_escape(f, all[i]->name);
        if (all[i]->type == MCPLEX_STAT_COUNTER)
            fprintf(f, "\",\"value\":%llu}", (unsigned long long)mcplex_stat_value(all[i]));
        else
            fprintf(f, "\",\"value\":%lld}", (long long)(int64_t)mcplex_stat_value(all[i]));
        first = 0;
    }
    if (any_hist) {
        fprintf(f, "%s{\"histograms\":{\"supported_quantiles\":[", first ? "" : ",");
        for (size_t k = 0; k < N_QUANTILES; k++)
            fprintf(f, "%s%g", k ? "," : "", quantiles[k] * 100);
        fputs("],\"computed_quantiles\":[", f);
        first = 1;
        for (size_t i = 0; i < n; i++) {
            if (all[i]->type != MCPLEX_STAT_HISTOGRAM)
                continue;
            fprintf(f, "%s{\"name\":\"", first ? "" : ",");
            json_escape(f, all[i]->name);
            fputs("\",\"values\":[", f);
            for (size_t k = 0; k < N_QUANTILES; k++) {
                double v = mcplex_stat_quantile(all[i], quantiles[k]);
                fprintf(f, "%s{\"interval\":null,\"cumulative\":", k ? "," : "");
                if (isnan(v))
                    fputs("null", f);
                else
                    print_number(f, v);
                fputc('}', f);
            }
            fputs("]}", f);
            first = 0;
        }
        fputs("]}}", f);
    }
    fputs("]}\n", f);
    fclose(f);
    free(all);
    return buf;
}

/* The exposed family name: counters end in _total (the exposition format's rule, which promtool
 * checks; Envoy's own names mostly do already). Returns a malloc'ed string. */
static char *
family_name(const mcplex_stat_t *s)
{
    size_t len = strlen(s->prom_name);
    char *out;

    if (s->type != MCPLEX_STAT_COUNTER || (len >= 6 && strcmp(s->prom_name + len - 6, "_total") == 0))
        return mcplex_strdup(s->prom_name);
    out = mcplex_malloc(len + 7);
    memcpy(out, s->prom_name, len);
    memcpy(out + len, "_total", 7);
    return out;
}

static void
labels_with(FILE *f, const char *labels, const char *extra)
{
    int has = labels[0] != '\0';
    if (!has && extra == NULL)
        return;
    fprintf(f, "{%s%s%s}", labels, has && extra != NULL ? "," : "", extra != NULL ? extra : "");
}

char *
mcplex_stats_render_prometheus(const mcplex_stats_query_t *q, char *err, size_t err_len)
{
    size_t n, len = 0;
    mcplex_stat_t **all = select_stats(q, 1, &n, err, err_len);
    char *buf = NULL, *prev = NULL;
    FILE *f;
    static const char *const type_names[] = {"counter", "gauge", "histogram"};

    if (all == NULL)
        return NULL;
    f = open_memstream(&buf, &len);
    if (f == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        mcplex_stat_t *s = all[i];
        char *fam = family_name(s);
        if (prev == NULL || strcmp(prev, fam) != 0) {
            fprintf(f, "# HELP %s ", fam);
            help_escape(f, s->name);
            fprintf(f, "\n# TYPE %s %s\n", fam, type_names[s->type]);
            free(prev);
            prev = fam;
        } else {
            free(fam);
            /* A family mixing types (two names colliding after sanitising) keeps the first. */
        }
        if (s->type == MCPLEX_STAT_COUNTER) {
            fputs(prev, f);
            labels_with(f, s->prom_labels, NULL);
            fprintf(f, " %llu\n", (unsigned long long)mcplex_stat_value(s));
        } else if (s->type == MCPLEX_STAT_GAUGE) {
            fputs(prev, f);
            labels_with(f, s->prom_labels, NULL);
            fprintf(f, " %lld\n", (long long)(int64_t)mcplex_stat_value(s));
        } else {
            uint64_t cum = 0;
            char le[64];
            for (size_t b = 0; b <= MCPLEX_STATS_N_BUCKETS; b++) {
                cum += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
                if (b < MCPLEX_STATS_N_BUCKETS)
                    snprintf(le, sizeof(le), "le=\"%.10g\"", mcplex_stats_bucket_bounds[b]);
                else
                    snprintf(le, sizeof(le), "le=\"+Inf\"");
                fprintf(f, "%s_bucket", prev);
                labels_with(f, s->prom_labels, le);
                fprintf(f, " %llu\n", (unsigned long long)cum);
            }
            fprintf(f, "%s_sum", prev);
            labels_with(f, s->prom_labels, NULL);
            fputc(' ', f);
            print_number(f, (double)atomic_load(&s->sum_micro) / 1e6);
            fprintf(f, "\n%s_count", prev);
            labels_with(f, s->prom_labels, NULL);
            fprintf(f, " %llu\n", (unsigned long long)cum);
        }
    }
    free(prev);
    fclose(f);
    free(all);
    return buf;
}
