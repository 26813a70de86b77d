/* Fuzz target: the instagram webhook adapter (connectors/webhooks). */
#define FUZZ_IMPL wh_channel_instagram
#include "tests/fuzz/fuzz_channel.h"
