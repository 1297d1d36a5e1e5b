// PyTorch pickle checkpoints (pytorch_model.bin, *.pt, *.pth, *.ckpt, *.pkl) run code
// chosen by whoever wrote the file when they are unpickled. Conveyor never reads them;
// it refuses them with a message that says why and what to do instead.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace conveyor {

// True for names ending in .bin, .pt, .pth, .ckpt, .pkl or .pickle, and for the index
// of a sharded pickle checkpoint (pytorch_model.bin.index.json).
bool is_pickle_checkpoint_name(std::string_view path);

// kUnsupported, naming `path`: pickle files can execute arbitrary code when loaded and
// are refused; convert the checkpoint to safetensors.
Status pickle_refusal(const std::string& path);

}  // namespace conveyor
