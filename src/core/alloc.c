/*
 * Checked, aligned allocation.  Every failure is recorded as NS_ENOMEM with
 * the size asked for, so callers only test for NULL.
 */
#include "normscope/core.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

void *ns_malloc(size_t bytes)
{
    void *p = NULL;
    if (bytes == 0)
        bytes = 1;
    /* 64-byte alignment keeps SIMD loads and cache lines aligned. */
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded < bytes || posix_memalign(&p, 64, rounded) != 0) {
        ns_error(NS_ENOMEM, "cannot allocate %zu bytes", bytes);
        return NULL;
    }
    return p;
}

void *ns_calloc(size_t count, size_t size)
{
    size_t bytes = ns_mul_size(count, size);
    if (bytes == 0 && count != 0 && size != 0)
        return NULL;
    void *p = ns_malloc(bytes);
    if (p)
        memset(p, 0, bytes ? bytes : 1);
    return p;
}

void ns_free(void *p)
{
    free(p);
}

size_t ns_mul_size(size_t a, size_t b)
{
    if (a != 0 && b > SIZE_MAX / a) {
        ns_error(NS_ENOMEM, "size overflow (%zu x %zu)", a, b);
        return 0;
    }
    return a * b;
}

size_t ns_peak_rss(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (size_t)ru.ru_maxrss * 1024;
}
