/*
 * Shared by the libFuzzer harnesses (make fuzz): the library's error
 * handler silenced, and the input written to a file in /dev/shm for the
 * readers that take a path.
 */
#ifndef NS_FUZZ_UTIL_H
#define NS_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "normscope/core.h"

/* Once per process: no printing by the library, one thread. */
static void fuzz_setup(void)
{
    static int done;
    if (!done) {
        ns_set_error_handler(NULL);
        ns_progress_set_quiet(1);
        done = 1;
    }
}

/* The path of this process's scratch file, holding data[0..n-1]; NULL when
 * it cannot be written. */
static const char *fuzz_file(const uint8_t *data, size_t n, const char *suffix)
{
    static char path[128];
    snprintf(path, sizeof path, "/dev/shm/nsfuzz-%ld%s", (long)getpid(), suffix);
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    if (fclose(f) != 0 || w != n)
        return NULL;
    return path;
}

/* data as a NUL-terminated string of at most max bytes (caller frees). */
static char *fuzz_string(const uint8_t *data, size_t n, size_t max)
{
    if (n > max)
        n = max;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, data, n);
        s[n] = 0;
    }
    return s;
}

#endif
