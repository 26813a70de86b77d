/* Fuzz target: the whatsapp webhook adapter (connectors/webhooks). */
#define FUZZ_IMPL wh_channel_whatsapp
#include "tests/fuzz/fuzz_channel.h"
