/*
 * The growing string of core.h (ns_sb): appends of text and printf-style
 * formats, and the two JSON scalars (RFC 8259 section 7 strings, numbers)
 * that the JSON writers of io and the CLI build on.  The buffer doubles, so
 * n appends cost O(total length); a failed append leaves the text as it
 * was and sets a flag instead of returning a status from every call.
 */
#include "normscope/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ns_sb_init(ns_sb *b)
{
    memset(b, 0, sizeof *b);
}

/* Room for need more bytes of text and the NUL; 0 (failed set) when there
 * is not. */
static int reserve(ns_sb *b, size_t need)
{
    if (b->failed)
        return 0;
    if (need >= SIZE_MAX - b->len) {
        b->failed = 1;
        return 0;
    }
    if (b->len + need < b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 64;
    while (cap <= b->len + need)
        cap = cap > SIZE_MAX / 2 ? b->len + need + 1 : 2 * cap;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->failed = 1;
        return 0;
    }
    b->s = s;
    b->cap = cap;
    return 1;
}

static void append_n(ns_sb *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void ns_sb_append(ns_sb *b, const char *s)
{
    append_n(b, s, strlen(s));
}

void ns_sb_vappendf(ns_sb *b, const char *fmt, va_list ap)
{
    if (b->failed)
        return;
    va_list again;
    va_copy(again, ap);
    size_t room = b->cap - b->len;
    int k = vsnprintf(b->s ? b->s + b->len : NULL, room, fmt, ap);
    if (k < 0) {
        b->failed = 1;
    } else if ((size_t)k >= room) {
        /* Did not fit: grow and format again from the copy. */
        if (reserve(b, (size_t)k))
            vsnprintf(b->s + b->len, b->cap - b->len, fmt, again);
        else
            k = -1;
    }
    if (k >= 0)
        b->len += (size_t)k;
    else if (b->s)
        b->s[b->len] = '\0';   /* a truncated attempt may have overwritten it */
    va_end(again);
}

void ns_sb_appendf(ns_sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ns_sb_vappendf(b, fmt, ap);
    va_end(ap);
}

void ns_sb_json_str(ns_sb *b, const char *s)
{
    if (!s) {
        append_n(b, "null", 4);
        return;
    }
    append_n(b, "\"", 1);
    const char *run = s;   /* characters that go through unchanged */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p != '"' && *p != '\\' && *p >= 0x20)
            continue;
        append_n(b, run, (size_t)((const char *)p - run));
        if (*p == '"' || *p == '\\')
            ns_sb_appendf(b, "\\%c", *p);
        else if (*p == '\n')
            append_n(b, "\\n", 2);
        else if (*p == '\t')
            append_n(b, "\\t", 2);
        else
            ns_sb_appendf(b, "\\u%04x", *p);
        run = (const char *)p + 1;
    }
    append_n(b, run, strlen(run));
    append_n(b, "\"", 1);
}

void ns_sb_json_num(ns_sb *b, double v)
{
    if (!isfinite(v))
        append_n(b, "null", 4);
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        ns_sb_appendf(b, "%.0f", v);
    else
        ns_sb_appendf(b, "%.15g", v);
}

const char *ns_sb_str(const ns_sb *b)
{
    return b->s ? b->s : "";
}

void ns_sb_reset(ns_sb *b)
{
    b->len = 0;
    b->failed = 0;
    if (b->s)
        b->s[0] = '\0';
}

void ns_sb_release(ns_sb *b)
{
    if (!b)
        return;
    free(b->s);
    memset(b, 0, sizeof *b);
}
