/*
 * Option declarations (normscope/opt.h): reading and storing a setting's
 * field, checking a value against the declared range or choices, the texts
 * of ranges and values that messages and --help-norm show, and the strict
 * parser of command-line values.
 */
#include "normscope/opt.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

double ns_opt_get(const ns_opt *o, const void *base)
{
    const char *p = (const char *)base + o->offset;
    switch (o->type) {
    case NS_OPT_DOUBLE: return *(const double *)p;
    case NS_OPT_SIZE: return (double)*(const size_t *)p;
    case NS_OPT_INT: return *(const int *)p;
    case NS_OPT_U64: return (double)*(const uint64_t *)p;
    }
    return NAN;
}

void ns_opt_set(const ns_opt *o, void *base, double v)
{
    char *p = (char *)base + o->offset;
    switch (o->type) {
    case NS_OPT_DOUBLE: *(double *)p = v; break;
    case NS_OPT_SIZE: *(size_t *)p = (size_t)v; break;
    case NS_OPT_INT: *(int *)p = (int)v; break;
    case NS_OPT_U64: *(uint64_t *)p = (uint64_t)v; break;
    }
}

void ns_opt_defaults(const ns_opt *opt, size_t n, void *base)
{
    for (size_t i = 0; i < n; i++)
        ns_opt_set(&opt[i], base, opt[i].def);
}

int ns_opt_choice_value(const ns_opt *o, const char *s, int *value)
{
    for (size_t i = 0; i < o->nchoices; i++)
        if (!strcmp(o->choices[i].name, s)) {
            *value = o->choices[i].value;
            return 0;
        }
    return -1;
}

const char *ns_opt_choice_name(const ns_opt *o, double v)
{
    for (size_t i = 0; i < o->nchoices; i++)
        if (v == o->choices[i].value)
            return o->choices[i].name;
    return NULL;
}

static int value_ok(const ns_opt *o, double v, int cli)
{
    if (!isfinite(v))
        return 0;
    if (o->choices)
        return ns_opt_choice_name(o, v) != NULL;
    if (o->type != NS_OPT_DOUBLE && v != floor(v))
        return 0;
    if (o->type == NS_OPT_U64)
        return v >= 0 && v < 18446744073709551616.0;
    if ((o->flags & NS_OPT_UNSET) && !cli && v == o->unset)
        return 1;
    int lo = o->flags & NS_OPT_MIN_OPEN ? v > o->min : v >= o->min;
    int hi = o->flags & NS_OPT_MAX_OPEN ? v < o->max : v <= o->max;
    return lo && hi;
}

/* "group or last", "a, b or c"; numbers instead of names unless named. */
static void choice_text(const ns_opt *o, int named, char *buf, size_t len)
{
    size_t u = 0;
    if (len)
        buf[0] = 0;
    for (size_t i = 0; i < o->nchoices && u < len; i++) {
        const char *sep = i == 0 ? "" : i + 1 == o->nchoices ? " or " : ", ";
        if (named)
            u += (size_t)snprintf(buf + u, len - u, "%s%s", sep, o->choices[i].name);
        else
            u += (size_t)snprintf(buf + u, len - u, "%s%d", sep, o->choices[i].value);
    }
}

void ns_opt_range(const ns_opt *o, int cli, char *buf, size_t len)
{
    if (o->choices) {
        choice_text(o, cli || (o->flags & NS_OPT_BY_NAME), buf, len);
        return;
    }
    int lo = isfinite(o->min), hi = isfinite(o->max);
    const char *gt = o->flags & NS_OPT_MIN_OPEN ? ">" : ">=";
    const char *lt = o->flags & NS_OPT_MAX_OPEN ? "<" : "<=";
    size_t u;
    if (o->type == NS_OPT_U64)
        u = (size_t)snprintf(buf, len, "an integer in 0..18446744073709551615");
    else if (o->type != NS_OPT_DOUBLE)
        u = (size_t)snprintf(buf, len, "an integer in %.0f..%.0f", o->min, o->max);
    else if (lo && hi)
        u = (size_t)snprintf(buf, len, "a number in %c%g, %g%c",
                             o->flags & NS_OPT_MIN_OPEN ? '(' : '[', o->min, o->max,
                             o->flags & NS_OPT_MAX_OPEN ? ')' : ']');
    else if (lo)
        u = (size_t)snprintf(buf, len, "a finite number %s %g", gt, o->min);
    else if (hi)
        u = (size_t)snprintf(buf, len, "a finite number %s %g", lt, o->max);
    else
        u = (size_t)snprintf(buf, len, "a finite number");
    if ((o->flags & NS_OPT_UNSET) && !cli && u < len)
        snprintf(buf + u, len - u, " or %g", o->unset);
}

void ns_opt_value_text(const ns_opt *o, double v, char *buf, size_t len)
{
    const char *name = o->choices ? ns_opt_choice_name(o, v) : NULL;
    if (name)
        snprintf(buf, len, "%s", name);
    else if (o->flag)
        snprintf(buf, len, "%s", v ? "on" : "off");
    else if (o->type == NS_OPT_DOUBLE)
        snprintf(buf, len, "%g", v);
    else
        snprintf(buf, len, "%.0f", v);
}

int ns_opt_check(const ns_opt *o, double v, int cli, char *why, size_t len)
{
    if (value_ok(o, v, cli))
        return 0;
    char r[256];
    ns_opt_range(o, cli, r, sizeof r);
    const char *name = o->choices && (cli || (o->flags & NS_OPT_BY_NAME))
                       ? ns_opt_choice_name(o, v) : NULL;
    if (name)
        snprintf(why, len, "must be %s, got '%s'", r, name);
    else
        snprintf(why, len, "must be %s, got %.15g", r, v);
    return -1;
}

int ns_opt_parse(const ns_opt *o, const char *s, void *base)
{
    const char *name = o->option ? o->option : o->key;
    double v;
    char *end;
    char r[256];
    if (o->choices) {
        int k;
        if (ns_opt_choice_value(o, s, &k)) {
            ns_opt_range(o, 1, r, sizeof r);
            return ns_error(NS_EINVAL, "%s is %s, got '%s'", name, r, s);
        }
        ns_opt_set(o, base, k);
        return NS_OK;
    }
    if (o->type == NS_OPT_DOUBLE) {
        v = strtod(s, &end);
        if (end == s || *end || isnan(v))
            return ns_error(NS_EINVAL, "%s expects a number, got '%s'", name, s);
    } else {
        /* Decimal digits only: strtoull alone takes blanks and signs, and
         * wraps " -3" round to 2^64 - 3. */
        errno = 0;
        unsigned long long x = *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
        if (*s < '0' || *s > '9' || *end || errno)
            return ns_error(NS_EINVAL, "%s expects a non-negative integer, got '%s'", name, s);
        if (o->type == NS_OPT_U64) {
            *(uint64_t *)((char *)base + o->offset) = x;
            return NS_OK;
        }
        v = (double)x;
    }
    if (!value_ok(o, v, 1)) {
        ns_opt_range(o, 1, r, sizeof r);
        return ns_error(NS_EINVAL, "%s must be %s, got '%s'", name, r, s);
    }
    ns_opt_set(o, base, v);
    return NS_OK;
}
