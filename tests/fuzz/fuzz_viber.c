/* Fuzz target: the viber webhook adapter (connectors/webhooks). */
#define FUZZ_IMPL wh_channel_viber
#include "tests/fuzz/fuzz_channel.h"
