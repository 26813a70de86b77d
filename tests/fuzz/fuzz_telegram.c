/* Fuzz target: the telegram webhook adapter (connectors/webhooks). */
#define FUZZ_IMPL wh_channel_telegram
#include "tests/fuzz/fuzz_channel.h"
