// The UCX activation transport: UcxActivationReceiver (stage k + 1 listens) and
// UcxActivationSender (stage k connects). Both compile in every build; without UCX
// their factories return kUnsupported.
#pragma once

#include "worker/transport/ucx_activation_receiver.h"
#include "worker/transport/ucx_activation_sender.h"
