/* fuzz_http: libFuzzer driver for qe_fuzz_http (fuzz/targets.h); seeds and
 * reproducers in fuzz/corpus/fuzz_http/, replayed by tests/test_fuzz_regress. */
#include "targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return qe_fuzz_http(data, size);
}
