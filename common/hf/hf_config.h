// Hugging Face config.json (and generation_config.json) -> ModelSpec, for model_type
// llama (Llama 2/3/3.1/3.2, SmolLM2, TinyLlama), mistral and qwen2.
//
// Defaults for absent keys follow the transformers config classes, since
// save_pretrained() may omit keys equal to them. RoPE settings are read from the newer
// `rope_parameters` object when present, else from the older top-level `rope_theta`
// plus `rope_scaling` ({"rope_type" or "type": "default" | "linear" | "llama3", ...}).
//
// Errors (Status codes):
//   kUnsupported  an unknown model_type, RoPE type (yarn, dynamic, longrope, ...) or
//                 activation; features the engine's block does not implement (Llama's
//                 attention_bias / mlp_bias, which add biases on o_proj and the MLP;
//                 Qwen2 sliding windows on only some layers);
//   kMalformed    invalid JSON, missing required keys, values of the wrong type, and
//                 whatever validate_model_spec() rejects.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/model_spec.h"
#include "common/status.h"

namespace conveyor {

// Throws Error; `origin` names the file in messages.
ModelSpec model_spec_from_hf_config(const nlohmann::json& config, const std::string& origin);

// generation_config.json refines what the config says about special tokens: its
// eos_token_id (int or list) is added to the spec's end-of-sequence ids, as
// transformers' generate() stops on them, and its bos/pad ids fill ones the config
// left unset. Throws Error(kMalformed) on mistyped values.
void apply_hf_generation_config(const nlohmann::json& generation_config, const std::string& origin,
                                ModelSpec& spec);

Expected<ModelSpec> parse_hf_config(std::string_view json_text, const std::string& origin);
Expected<ModelSpec> read_hf_config(const std::string& config_path);

}  // namespace conveyor
