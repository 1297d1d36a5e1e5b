// The ModelSpec of a GGUF file, built from its <arch>.* and tokenizer.ggml.*
// metadata and the presence of optional tensors (output.weight, biases,
// rope_freqs.weight). Llama-family GGUF conversions store q/k rows permuted for
// interleaved-pair RoPE; Qwen2 ones do not.
#pragma once

#include "common/gguf/gguf_reader.h"
#include "common/model_spec.h"

namespace conveyor {

// Throws Error: kUnsupported for architectures other than llama, mistral and qwen2
// (or features of theirs Conveyor does not implement: YaRN, partial rotary),
// kNotFound for a missing required key, kMalformed for inconsistent values.
// Calls validate_model_spec() before returning.
ModelSpec gguf_model_spec(const GgufFile& file);

}  // namespace conveyor
