/* libFuzzer entry for the config loader (cmake -DAQ_FUZZ=ON with clang): any bytes must load or
 * fail with AQ_ECONFIG and a message, never crash, leak or read outside the buffer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "aq_error.h"
#include "aq_node_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    aq_node_config *cfg = NULL;
    char err[256];
    int rc = aq_node_config_load_buffer(data, size, "fuzz", &cfg, err, sizeof err);
    if (rc == 0) {
        char *text = aq_node_config_to_text(cfg);
        aq_node_config *again = NULL;
        /* What to_text writes must load back. */
        if (text && aq_node_config_load_string(text, "again", &again, err, sizeof err) != 0)
            abort();
        aq_node_config_free(again);
        free(text);
        aq_node_config_free(cfg);
    } else if (rc != AQ_ECONFIG || cfg) {
        abort();
    }
    return 0;
}
