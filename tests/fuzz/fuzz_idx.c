/*
 * libFuzzer harness of the IDX reader (src/data/idx.c): any bytes, plain or
 * gzip, must give NS_OK with dimensions that account for every byte read,
 * or an error status; never a crash, a leak or an unbounded allocation.
 */
#include "fuzz_util.h"

#include "normscope/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_setup();
    const char *path = fuzz_file(data, size, ".idx");
    if (!path)
        return 0;
    uint8_t *out = NULL;
    size_t dims[4];
    int ndim;
    if (ns_idx_read(path, &out, dims, &ndim) == NS_OK) {
        if (ndim < 1 || ndim > 4)
            abort();
        size_t total = 1;
        for (int i = 0; i < ndim; i++)
            total *= dims[i];
        /* Every value must be readable: ASan catches a short buffer. */
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < total; i++)
            sink ^= out[i];
        (void)sink;
    }
    free(out);
    unlink(path);
    return 0;
}
