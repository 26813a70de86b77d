/* Fuzz target: the messenger webhook adapter (connectors/webhooks). */
#define FUZZ_IMPL wh_channel_messenger
#include "tests/fuzz/fuzz_channel.h"
