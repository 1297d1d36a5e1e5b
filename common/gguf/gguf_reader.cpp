#include "common/gguf/gguf_reader.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <utility>

#include "common/gguf/gguf_cursor.h"
#include "common/gguf/gguf_types.h"

namespace conveyor {
namespace {

constexpr std::uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32

// The fewest bytes one entry can occupy, to bound declared counts by the file:
//   metadata entry: key length (8) + a one-byte key + value type (4) + a one-byte value
//   tensor info:    name length (8) + a one-byte name + n_dims (4) + one dim (8) + type (4)
//                   + offset (8)
//   array element:  a string is at least its length (8); an array its type (4) + count (8)
constexpr std::uint64_t kMinEntryBytes = 8 + 1 + 4 + 1;
constexpr std::uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;
constexpr std::uint64_t kMinStringBytes = 8;
constexpr std::uint64_t kMinArrayBytes = 4 + 8;

std::uint32_t byteswap32(std::uint32_t v) {
  return (v >> 24) | ((v >> 8) & 0xFF00u) | ((v << 8) & 0xFF0000u) | (v << 24);
}

std::string printable_magic(std::span<const std::uint8_t> bytes) {
  std::string out;
  for (std::size_t i = 0; i < 4 && i < bytes.size(); ++i) {
    const auto c = static_cast<char>(bytes[i]);
    out += (c >= 0x20 && c < 0x7F) ? c : '?';
  }
  return out;
}

}  // namespace

// Reads the header, metadata and tensor infos into a GgufFile, throwing Error.
class GgufParser {
 public:
  explicit GgufParser(GgufFile& out) : out_(out), cursor_(out.file_.bytes()) {}

  void parse() {
    parse_header();
    for (std::uint64_t i = 0; i < kv_count_; ++i) {
      parse_entry(i);
    }
    parse_alignment();
    out_.tensors_.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(tensor_count_, 4096)));
    for (std::uint64_t i = 0; i < tensor_count_; ++i) {
      parse_tensor_info(i);
    }
    place_data_section();
    check_tensor_extents();
  }

 private:
  void parse_header() {
    const auto magic_bytes = cursor_.take(4, "the magic");
    std::uint32_t magic = 0;
    std::memcpy(&magic, magic_bytes.data(), 4);
    if (magic != kMagic) {
      fail(ErrorCode::kMalformed,
           "not a GGUF file: magic is '" + printable_magic(magic_bytes) + "', expected 'GGUF'");
    }
    const auto version = cursor_.read<std::uint32_t>("the version");
    if (version == 1) {
      fail(ErrorCode::kUnsupported,
           "GGUF v1 is not supported (only v2 and v3); convert the model again with a current "
           "llama.cpp");
    }
    if (version != 2 && version != 3) {
      const std::uint32_t swapped = byteswap32(version);
      if (swapped >= 1 && swapped <= 3) {
        fail(ErrorCode::kUnsupported, "big-endian GGUF files are not supported");
      }
      fail(ErrorCode::kUnsupported,
           "GGUF version " + std::to_string(version) + " is not supported (only v2 and v3)");
    }
    out_.version_ = version;
    tensor_count_ = cursor_.read<std::uint64_t>("the tensor count");
    kv_count_ = cursor_.read<std::uint64_t>("the metadata entry count");

    // Bound both counts by what the rest of the file could hold before trusting them.
    const std::uint64_t left = cursor_.remaining();
    if (kv_count_ > left / kMinEntryBytes || tensor_count_ > left / kMinTensorInfoBytes ||
        kv_count_ * kMinEntryBytes + tensor_count_ * kMinTensorInfoBytes > left) {
      fail(ErrorCode::kMalformed, "header declares " + std::to_string(kv_count_) +
                                      " metadata entries and " + std::to_string(tensor_count_) +
                                      " tensors, more than the " + std::to_string(left) +
                                      " bytes left in the file can hold");
    }
    if (tensor_count_ > GgufLimits::kMaxTensors) {
      fail(ErrorCode::kOutOfRange, "tensor count " + std::to_string(tensor_count_) +
                                       " is above the limit of " +
                                       std::to_string(GgufLimits::kMaxTensors));
    }
    if (kv_count_ > GgufLimits::kMaxMetadataEntries) {
      fail(ErrorCode::kOutOfRange, "metadata entry count " + std::to_string(kv_count_) +
                                       " is above the limit of " +
                                       std::to_string(GgufLimits::kMaxMetadataEntries));
    }
  }

  void parse_entry(std::uint64_t index) {
    const std::string what = "the key of metadata entry " + std::to_string(index);
    const std::string_view key = cursor_.read_string(what, GgufLimits::kMaxKeyBytes);
    if (key.empty()) {
      fail(ErrorCode::kMalformed, "metadata entry " + std::to_string(index) + " has an empty key");
    }
    const std::string context = "metadata key " + gguf_quoted(key);
    const auto type_id = cursor_.read<std::uint32_t>("the value type of " + context);
    const auto type = gguf_value_type_from_id(type_id);
    if (!type) {
      fail(ErrorCode::kMalformed, context + " has unknown value type " + std::to_string(type_id));
    }
    out_.metadata_.add(key, parse_value(*type, context, 0));
  }

  GgufValue parse_value(GgufValueType type, const std::string& context, std::uint32_t depth) {
    GgufValue value;
    value.type = type;
    if (type == GgufValueType::kString) {
      const std::string_view s = cursor_.read_string("the string value of " + context,
                                                     std::numeric_limits<std::uint64_t>::max());
      value.raw = {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
    } else if (type == GgufValueType::kArray) {
      parse_array(value, context, depth);
    } else {
      value.raw = cursor_.take(gguf_scalar_size(type), "the value of " + context);
      if (type == GgufValueType::kBool) check_bools(value.raw, context);
    }
    return value;
  }

  void parse_array(GgufValue& value, const std::string& context, std::uint32_t depth) {
    if (depth >= GgufLimits::kMaxArrayDepth) {
      fail(ErrorCode::kOutOfRange, context + " nests arrays deeper than " +
                                       std::to_string(GgufLimits::kMaxArrayDepth) + " levels");
    }
    const auto elem_id = cursor_.read<std::uint32_t>("the element type of " + context);
    const auto elem = gguf_value_type_from_id(elem_id);
    if (!elem) {
      fail(ErrorCode::kMalformed,
           context + " is an array of unknown element type " + std::to_string(elem_id));
    }
    const std::uint64_t at = cursor_.offset();
    const auto count = cursor_.read<std::uint64_t>("the element count of " + context);
    value.element_type = *elem;
    value.count = count;

    const std::uint64_t scalar = gguf_scalar_size(*elem);
    const std::uint64_t min_bytes = scalar != 0                       ? scalar
                                    : *elem == GgufValueType::kString ? kMinStringBytes
                                                                      : kMinArrayBytes;
    if (count > cursor_.remaining() / min_bytes) {
      fail(ErrorCode::kMalformed,
           context + " at offset " + std::to_string(at) + " declares " + std::to_string(count) +
               " elements of type " + gguf_value_type_name(*elem) + ", more than the " +
               std::to_string(cursor_.remaining()) + " bytes left in the file can hold");
    }
    if (scalar != 0) {
      value.raw = cursor_.take(count * scalar, "the elements of " + context);
      if (*elem == GgufValueType::kBool) check_bools(value.raw, context);
    } else if (*elem == GgufValueType::kString) {
      if (count > GgufLimits::kMaxStringArrayElements) {
        fail(ErrorCode::kOutOfRange, context + " holds " + std::to_string(count) +
                                         " strings, above the limit of " +
                                         std::to_string(GgufLimits::kMaxStringArrayElements));
      }
      // Grow with what is actually read, not with what the header claims.
      value.strings.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(count, 1 << 16)));
      const std::string what = "a string element of " + context;
      for (std::uint64_t i = 0; i < count; ++i) {
        value.strings.push_back(
            cursor_.read_string(what, std::numeric_limits<std::uint64_t>::max()));
      }
    } else {
      if (count > GgufLimits::kMaxNestedArrayElements) {
        fail(ErrorCode::kOutOfRange, context + " holds " + std::to_string(count) +
                                         " arrays, above the limit of " +
                                         std::to_string(GgufLimits::kMaxNestedArrayElements));
      }
      for (std::uint64_t i = 0; i < count; ++i) {
        value.arrays.push_back(parse_value(GgufValueType::kArray, context, depth + 1));
      }
    }
  }

  static void check_bools(std::span<const std::uint8_t> bytes, const std::string& context) {
    for (auto b : bytes) {
      if (b > 1) {
        fail(ErrorCode::kMalformed,
             context + " holds a bool of value " + std::to_string(b) + " (only 0 and 1 are valid)");
      }
    }
  }

  void parse_alignment() {
    const auto alignment = out_.metadata_.get_int("general.alignment");
    if (!alignment) return;
    const std::int64_t a = *alignment;
    if (a <= 0 || (a & (a - 1)) != 0) {
      fail(ErrorCode::kMalformed,
           "general.alignment " + std::to_string(a) + " is not a non-zero power of two");
    }
    if (static_cast<std::uint64_t>(a) > GgufLimits::kMaxAlignment) {
      fail(ErrorCode::kOutOfRange, "general.alignment " + std::to_string(a) +
                                       " is above the limit of " +
                                       std::to_string(GgufLimits::kMaxAlignment));
    }
    out_.alignment_ = static_cast<std::uint64_t>(a);
  }

  void parse_tensor_info(std::uint64_t index) {
    GgufTensorInfo info;
    const std::string_view name = cursor_.read_string("the name of tensor " + std::to_string(index),
                                                      GgufLimits::kMaxTensorNameBytes);
    if (name.empty()) {
      fail(ErrorCode::kMalformed, "tensor " + std::to_string(index) + " has an empty name");
    }
    info.name = std::string(name);
    const std::string context = "tensor " + gguf_quoted(name);
    if (out_.tensor_index_.count(name) != 0) {
      fail(ErrorCode::kMalformed, "duplicate tensor name " + gguf_quoted(name));
    }

    info.n_dims = cursor_.read<std::uint32_t>("the dimension count of " + context);
    if (info.n_dims == 0 || info.n_dims > GgufLimits::kMaxDims) {
      fail(ErrorCode::kMalformed,
           context + " has " + std::to_string(info.n_dims) + " dimensions (1 to 4 are valid)");
    }
    std::int64_t elements = 1;
    for (std::uint32_t d = 0; d < info.n_dims; ++d) {
      const auto dim = cursor_.read<std::uint64_t>("the dimensions of " + context);
      if (dim == 0) {
        fail(ErrorCode::kMalformed, context + " has a zero-length dimension " + std::to_string(d) +
                                        ": it holds no elements");
      }
      if (dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
          __builtin_mul_overflow(elements, static_cast<std::int64_t>(dim), &elements)) {
        fail(ErrorCode::kOutOfRange, context +
                                         " has dimensions whose element count "
                                         "overflows a 64-bit integer");
      }
      info.ne[d] = static_cast<std::int64_t>(dim);
    }

    info.ggml_type = cursor_.read<std::uint32_t>("the type of " + context);
    const auto dtype = dtype_from_ggml_type(info.ggml_type);
    if (!dtype) {
      fail(ErrorCode::kUnsupported, context + " has ggml type " +
                                        ggml_type_description(info.ggml_type) +
                                        ", which Conveyor cannot read (F32, F16, BF16, Q8_0, "
                                        "Q4_0, Q4_1, Q4_K and Q6_K are supported)");
    }
    info.dtype = *dtype;
    info.offset = cursor_.read<std::uint64_t>("the data offset of " + context);

    const DTypeLayout layout = dtype_layout(info.dtype);
    if (info.ne[0] % layout.block_elements != 0) {
      fail(ErrorCode::kMalformed, context + " has rows of " + std::to_string(info.ne[0]) +
                                      " elements, not a whole number of " +
                                      std::string(dtype_name(info.dtype)) + " blocks of " +
                                      std::to_string(layout.block_elements));
    }
    const auto bytes = dtype_bytes(info.dtype, static_cast<std::uint64_t>(elements));
    if (!bytes) {
      fail(ErrorCode::kOutOfRange, context + " is too large: its byte size overflows");
    }
    info.size_bytes = *bytes;

    out_.tensor_index_.emplace(name, out_.tensors_.size());
    out_.tensors_.push_back(std::move(info));
  }

  void place_data_section() {
    // The data section starts at the first multiple of the alignment after the infos.
    const std::uint64_t end_of_infos = cursor_.offset();
    const std::uint64_t a = out_.alignment_;
    out_.data_offset_ = (end_of_infos + a - 1) / a * a;
    if (!out_.tensors_.empty() && out_.data_offset_ > cursor_.size()) {
      fail(ErrorCode::kMalformed,
           "the data section would start at offset " + std::to_string(out_.data_offset_) +
               ", past the end of the file (" + std::to_string(cursor_.size()) + " bytes)");
    }
  }

  void check_tensor_extents() {
    auto& tensors = out_.tensors_;
    if (tensors.empty()) return;
    const std::uint64_t data_bytes = cursor_.size() - out_.data_offset_;
    for (const auto& t : tensors) {
      if (t.offset % out_.alignment_ != 0) {
        fail(ErrorCode::kMalformed,
             "tensor " + gguf_quoted(t.name) + " has data offset " + std::to_string(t.offset) +
                 ", not a multiple of the alignment " + std::to_string(out_.alignment_));
      }
      if (t.offset > data_bytes || t.size_bytes > data_bytes - t.offset) {
        fail(ErrorCode::kMalformed,
             "tensor " + gguf_quoted(t.name) + " (" + std::to_string(t.size_bytes) +
                 " bytes at data offset " + std::to_string(t.offset) +
                 ") extends past the end of the file: the data section holds " +
                 std::to_string(data_bytes) + " bytes");
      }
    }
    // Two tensors sharing bytes would make writes through one corrupt the other in
    // any later in-place use; a converter never produces that.
    std::vector<std::size_t> order(tensors.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return tensors[a].offset < tensors[b].offset;
    });
    for (std::size_t i = 1; i < order.size(); ++i) {
      const auto& prev = tensors[order[i - 1]];
      const auto& cur = tensors[order[i]];
      if (prev.offset + prev.size_bytes > cur.offset) {
        fail(ErrorCode::kMalformed,
             "tensors " + gguf_quoted(prev.name) + " and " + gguf_quoted(cur.name) + " overlap");
      }
    }
  }

  GgufFile& out_;
  GgufCursor cursor_;
  std::uint64_t tensor_count_ = 0;
  std::uint64_t kv_count_ = 0;
};

std::vector<std::int64_t> GgufTensorInfo::shape() const {
  std::vector<std::int64_t> out;
  out.reserve(n_dims);
  for (std::uint32_t d = n_dims; d > 0; --d) {
    out.push_back(ne[d - 1]);
  }
  return out;
}

Expected<GgufFile> GgufFile::open(const std::string& path) {
  auto mapped = MappedFile::open(path);
  if (!mapped.ok()) return mapped.status();
  return parse(std::move(mapped).value());
}

Expected<GgufFile> GgufFile::parse(MappedFile file) {
  const std::string path = file.path();
  GgufFile out;
  out.file_ = std::move(file);
  try {
    GgufParser(out).parse();
  } catch (const Error& e) {
    return Status(e.code(), path + ": " + e.what());
  } catch (const std::bad_alloc&) {
    return Status(ErrorCode::kResourceExhausted, path + ": out of memory reading the GGUF header");
  }
  return out;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const std::uint8_t> GgufFile::tensor_bytes(const GgufTensorInfo& info) const {
  return file_.bytes().subspan(static_cast<std::size_t>(data_offset_ + info.offset),
                               static_cast<std::size_t>(info.size_bytes));
}

TensorRef GgufFile::tensor_ref(const GgufTensorInfo& info) const {
  TensorRef ref;
  ref.name = info.name;
  ref.dtype = info.dtype;
  ref.shape = info.shape();
  ref.bytes = tensor_bytes(info);
  return ref;
}

}  // namespace conveyor
