/* fuzz_client_reply: libFuzzer driver for qe_fuzz_client_reply (fuzz/targets.h); seeds and
 * reproducers in fuzz/corpus/fuzz_client_reply/, replayed by tests/test_fuzz_regress. */
#include "targets.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return qe_fuzz_client_reply(data, size);
}
