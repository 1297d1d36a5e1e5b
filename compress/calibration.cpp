#include "compress/calibration.h"

#include <algorithm>
#include <fstream>
#include <iterator>

#include "common/status.h"
#include "common/tokenizer/tokenizer.h"

namespace conveyor::compress {

std::vector<std::int32_t> text_tokens(const ModelSource& source, const std::string& text,
                                      std::int64_t max_tokens, const std::string& flag) {
  if (max_tokens < 2) fail(ErrorCode::kInvalidArgument, flag + ": at least 2 tokens");
  if (!source.tokenizer()) {
    const Status& why = source.tokenizer_status();
    fail(ErrorCode::kUnsupported, source.path() +
                                      " has no tokenizer to read calibration text with" +
                                      (why.ok() ? "" : " (" + why.message() + ")"));
  }
  const Tokenizer tokenizer(*source.tokenizer());
  std::vector<std::int32_t> tokens =
      tokenizer.encode(text, /*add_special=*/true, /*parse_special=*/false);
  if (tokens.size() < 2) {
    fail(ErrorCode::kInvalidArgument, flag + ": the text holds fewer than 2 tokens");
  }
  if (static_cast<std::int64_t>(tokens.size()) > max_tokens) {
    tokens.resize(static_cast<std::size_t>(max_tokens));
  }
  return tokens;
}

std::string read_text_file(const std::string& path, const std::string& flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorCode::kNotFound, flag + ": cannot open " + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail(ErrorCode::kIo, flag + ": reading " + path + " failed");
  if (text.empty()) fail(ErrorCode::kInvalidArgument, flag + ": " + path + " is empty");
  return text;
}

std::vector<std::int64_t> calibration_sequences(std::int64_t tokens, std::int64_t context) {
  std::vector<std::int64_t> lengths;
  for (std::int64_t done = 0; done < tokens;) {
    const std::int64_t n = std::min(context, tokens - done);
    lengths.push_back(n);
    done += n;
  }
  return lengths;
}

}  // namespace conveyor::compress
