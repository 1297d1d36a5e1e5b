// libFuzzer entry point for the job journal's record payload decoder.
//
// Sources it needs: coordinator/journal/*.cpp, common/wire/*.cpp, common/status.cpp
// (include root: the repository root).
//
// Property checked beyond "no crash": whatever decodes encodes back to the same bytes,
// so a record cannot carry state that a rewrite (compaction) would silently change.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "coordinator/journal/journal_record.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> payload(data, size);
  const auto record = conveyor::decode_journal_record(payload);
  if (!record.ok()) {
    if (record.status().code() != conveyor::ErrorCode::kMalformed) std::abort();
    return 0;
  }
  const auto encoded = conveyor::encode_journal_record(*record);
  if (!encoded.ok()) std::abort();
  if (encoded->size() != size || !std::equal(encoded->begin(), encoded->end(), payload.begin())) {
    std::abort();
  }
  return 0;
}
