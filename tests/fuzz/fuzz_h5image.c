/*
 * libFuzzer harness of the run-file reader on raw bytes: an HDF5 image
 * (the seed corpus is run files written by `normscope train`).  It goes
 * through the path every command uses (ns_run_check: format, version,
 * /config, /data, every checkpoint's shapes and values), then ns_run_load
 * and a forward pass in eval mode, whose logits must be finite: a file
 * the checks accept must be usable.
 */
#include "fuzz_util.h"

#include <math.h>

#include "fuzz_run.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_setup();
    const char *path = fuzz_file(data, size, ".h5");
    if (!path)
        return 0;
    fuzz_read_run(path);
    unlink(path);
    return 0;
}
