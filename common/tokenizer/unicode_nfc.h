// Unicode Normalization Form C, for tokenizers whose tokenizer.json asks for it
// (Qwen2). Most text is already in NFC; that case costs one scan and no copy.
#pragma once

#include <string>
#include <string_view>

namespace conveyor {

// text must be valid UTF-8.
std::string nfc_normalize(std::string_view text);

}  // namespace conveyor
