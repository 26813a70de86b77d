/* Fuzz target: the vk webhook adapter (connectors/webhooks). */
#define FUZZ_IMPL wh_channel_vk
#include "tests/fuzz/fuzz_channel.h"
