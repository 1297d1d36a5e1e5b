#include "common/hf/safetensors_file.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <limits>
#include <string_view>
#include <utility>

#include "common/hf/bounded_json.h"

namespace conveyor {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors stores little-endian data; this reader maps it as is");

struct SafetensorsDType {
  std::string_view name;
  std::uint32_t bits;  // per element; sub-byte types (F4, F6) pack several per byte
  std::optional<DType> engine_type;
};

// Every dtype the safetensors format defines, so that the size of any tensor can be
// checked even when the engine cannot compute in its type.
constexpr std::array<SafetensorsDType, 20> kDTypes = {{
    {"F32", 32, DType::kF32},     {"F16", 16, DType::kF16},     {"BF16", 16, DType::kBF16},
    {"F64", 64, std::nullopt},    {"I64", 64, std::nullopt},    {"U64", 64, std::nullopt},
    {"C64", 64, std::nullopt},    {"I32", 32, std::nullopt},    {"U32", 32, std::nullopt},
    {"I16", 16, std::nullopt},    {"U16", 16, std::nullopt},    {"I8", 8, std::nullopt},
    {"U8", 8, std::nullopt},      {"BOOL", 8, std::nullopt},    {"F8_E5M2", 8, std::nullopt},
    {"F8_E4M3", 8, std::nullopt}, {"F8_E8M0", 8, std::nullopt}, {"F6_E2M3", 6, std::nullopt},
    {"F6_E3M2", 6, std::nullopt}, {"F4", 4, std::nullopt},
}};

const SafetensorsDType* find_dtype(std::string_view name) {
  for (const auto& t : kDTypes) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

// A non-negative JSON integer; `what` names it in the error.
std::uint64_t read_unsigned(const nlohmann::json& v, const std::string& what) {
  if (!v.is_number_integer()) fail(ErrorCode::kMalformed, what + " is not an integer");
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  const auto value = v.get<std::int64_t>();
  if (value < 0) fail(ErrorCode::kMalformed, what + " is negative (" + std::to_string(value) + ")");
  return static_cast<std::uint64_t>(value);
}

// An entry whose bytes have been checked against its own dtype and shape but not yet
// against its neighbours.
struct PendingEntry {
  SafetensorsEntry entry;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

PendingEntry parse_entry(const std::string& name, const nlohmann::json& value,
                         std::span<const std::uint8_t> data, const std::string& where) {
  const std::string what = where + ": tensor '" + name + "'";
  if (name.empty()) fail(ErrorCode::kMalformed, where + ": a tensor has an empty name");
  if (!value.is_object()) fail(ErrorCode::kMalformed, what + " is not a JSON object");

  const auto dtype_it = value.find("dtype");
  const auto shape_it = value.find("shape");
  const auto offsets_it = value.find("data_offsets");
  if (dtype_it == value.end() || !dtype_it->is_string()) {
    fail(ErrorCode::kMalformed, what + " has no string 'dtype'");
  }
  if (shape_it == value.end() || !shape_it->is_array()) {
    fail(ErrorCode::kMalformed, what + " has no array 'shape'");
  }
  if (offsets_it == value.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
    fail(ErrorCode::kMalformed, what + " has no two-element array 'data_offsets'");
  }

  PendingEntry pending;
  SafetensorsEntry& entry = pending.entry;
  entry.name = name;
  entry.dtype_name = dtype_it->get<std::string>();
  const SafetensorsDType* dtype = find_dtype(entry.dtype_name);
  if (dtype == nullptr) {
    fail(ErrorCode::kUnsupported,
         what + " has dtype '" + entry.dtype_name + "', which safetensors does not define");
  }
  entry.dtype = dtype->engine_type;

  // Element count, refusing products that do not fit: a shape like [2^40, 2^40] must not
  // wrap around to a small number that happens to match the byte range.
  std::int64_t elements = 1;
  for (const auto& dim : *shape_it) {
    const std::uint64_t d = read_unsigned(dim, what + " shape dimension");
    if (d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      fail(ErrorCode::kOutOfRange, what + " has a shape dimension above 2^63");
    }
    entry.shape.push_back(static_cast<std::int64_t>(d));
  }
  for (const std::int64_t d : entry.shape) {
    if (__builtin_mul_overflow(elements, d, &elements)) {
      fail(ErrorCode::kOutOfRange,
           what + " shape " + shape_string(entry.shape) + " has more elements than fit in 64 bits");
    }
  }
  std::uint64_t bits = 0;
  if (__builtin_mul_overflow(static_cast<std::uint64_t>(elements),
                             static_cast<std::uint64_t>(dtype->bits), &bits)) {
    fail(ErrorCode::kOutOfRange, what + " shape " + shape_string(entry.shape) + " of " +
                                     entry.dtype_name + " is larger than 2^61 bytes");
  }
  if (bits % 8 != 0) {
    fail(ErrorCode::kMalformed, what + " shape " + shape_string(entry.shape) + " of " +
                                    entry.dtype_name + " is not a whole number of bytes");
  }
  const std::uint64_t expected_bytes = bits / 8;

  pending.begin = read_unsigned((*offsets_it)[0], what + " data_offsets begin");
  pending.end = read_unsigned((*offsets_it)[1], what + " data_offsets end");
  if (pending.end < pending.begin) {
    fail(ErrorCode::kMalformed, what + " has data_offsets end " + std::to_string(pending.end) +
                                    " before begin " + std::to_string(pending.begin));
  }
  if (pending.end > data.size()) {
    fail(ErrorCode::kOutOfRange, what + " data_offsets end " + std::to_string(pending.end) +
                                     " is past the end of the data (" +
                                     std::to_string(data.size()) + " bytes)");
  }
  if (pending.end - pending.begin != expected_bytes) {
    fail(ErrorCode::kMalformed, what + " shape " + shape_string(entry.shape) + " of " +
                                    entry.dtype_name + " needs " + std::to_string(expected_bytes) +
                                    " bytes but data_offsets span " +
                                    std::to_string(pending.end - pending.begin));
  }
  entry.bytes = data.subspan(pending.begin, pending.end - pending.begin);
  return pending;
}

std::map<std::string, std::string> parse_metadata(const nlohmann::json& value,
                                                  const std::string& where) {
  if (!value.is_object()) fail(ErrorCode::kMalformed, where + ": __metadata__ is not an object");
  std::map<std::string, std::string> metadata;
  for (const auto& [key, v] : value.items()) {
    if (!v.is_string()) {
      fail(ErrorCode::kMalformed, where + ": __metadata__ value '" + key + "' is not a string");
    }
    metadata.emplace(key, v.get<std::string>());
  }
  return metadata;
}

// The tensors must tile the data buffer: sorted by begin, each starts where the previous
// one ended and the last ends at the end of the buffer. Anything else hides bytes that
// no tensor owns or lets two tensors alias the same bytes.
void check_coverage(std::vector<PendingEntry>& pending, std::uint64_t data_size,
                    const std::string& where) {
  std::sort(pending.begin(), pending.end(), [](const PendingEntry& a, const PendingEntry& b) {
    return std::pair(a.begin, a.end) < std::pair(b.begin, b.end);
  });
  std::uint64_t cursor = 0;
  const std::string* previous = nullptr;
  for (const auto& p : pending) {
    if (p.begin < cursor) {
      fail(ErrorCode::kMalformed, where + ": tensor '" + p.entry.name + "' overlaps tensor '" +
                                      *previous + "' (bytes " + std::to_string(p.begin) + ".." +
                                      std::to_string(cursor) + ")");
    }
    if (p.begin > cursor) {
      fail(ErrorCode::kMalformed,
           where + ": bytes " + std::to_string(cursor) + ".." + std::to_string(p.begin) +
               " of the data belong to no tensor (a hole before '" + p.entry.name + "')");
    }
    cursor = p.end;
    previous = &p.entry.name;
  }
  if (cursor != data_size) {
    fail(ErrorCode::kMalformed, where + ": bytes " + std::to_string(cursor) + ".." +
                                    std::to_string(data_size) +
                                    " at the end of the data belong to no tensor");
  }
}

}  // namespace

Expected<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped.ok()) return mapped.status();
  return to_expected([&]() -> SafetensorsFile {
    SafetensorsFile file;
    file.file_ = std::move(mapped).value();
    file.parse();
    return file;
  });
}

void SafetensorsFile::parse() {
  const std::string& where = file_.path();
  const std::uint64_t size = file_.size();
  if (size < 8) {
    fail(ErrorCode::kMalformed, where + ": " + std::to_string(size) +
                                    " bytes is too short for a safetensors header length");
  }
  std::uint64_t header_len = 0;
  std::memcpy(&header_len, file_.data(), sizeof header_len);  // little-endian on disk
  if (header_len > kSafetensorsMaxHeaderBytes) {
    fail(ErrorCode::kOutOfRange,
         where + ": header length " + std::to_string(header_len) + " exceeds the 100 MB limit");
  }
  if (header_len > size - 8) {
    fail(ErrorCode::kOutOfRange, where + ": header length " + std::to_string(header_len) +
                                     " runs past the end of the file (" + std::to_string(size) +
                                     " bytes)");
  }
  const auto* header_begin = reinterpret_cast<const char*>(file_.data() + 8);
  const std::string_view header_text(header_begin, static_cast<std::size_t>(header_len));
  const std::span<const std::uint8_t> data = file_.bytes().subspan(8 + header_len);

  const nlohmann::json header = parse_json_bounded(header_text, where + " header");
  if (!header.is_object()) fail(ErrorCode::kMalformed, where + ": header is not a JSON object");

  std::vector<PendingEntry> pending;
  pending.reserve(header.size());
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      metadata_ = parse_metadata(value, where);
      continue;
    }
    pending.push_back(parse_entry(name, value, data, where));
  }
  check_coverage(pending, data.size(), where);

  entries_.reserve(pending.size());
  for (auto& p : pending)
    entries_.push_back(std::move(p.entry));
  std::sort(entries_.begin(), entries_.end(),
            [](const SafetensorsEntry& a, const SafetensorsEntry& b) { return a.name < b.name; });
}

const SafetensorsEntry* SafetensorsFile::find(const std::string& name) const {
  auto it =
      std::lower_bound(entries_.begin(), entries_.end(), name,
                       [](const SafetensorsEntry& e, const std::string& n) { return e.name < n; });
  if (it == entries_.end() || it->name != name) return nullptr;
  return &*it;
}

TensorRef to_tensor_ref(const SafetensorsEntry& entry, const std::string& canonical_name,
                        const std::string& origin) {
  if (!entry.dtype) {
    fail(ErrorCode::kUnsupported, origin + ": tensor '" + entry.name + "' has dtype " +
                                      entry.dtype_name +
                                      "; model weights must be F32, F16 or BF16");
  }
  TensorRef ref;
  ref.name = canonical_name;
  ref.dtype = *entry.dtype;
  ref.shape = entry.shape;
  ref.bytes = entry.bytes;
  return ref;
}

}  // namespace conveyor
