#include "common/config/yaml_section.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <utility>

#include "common/config/size_parse.h"

namespace conveyor {
namespace {

std::string lower(std::string_view text) {
  std::string result(text);
  for (char& c : result)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return result;
}

// What a non-scalar node is, for "must be an integer, got a list".
std::string_view describe_kind(const YAML::Node& node) {
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "something else";
}

}  // namespace

std::string yaml_position(std::string_view origin, const YAML::Mark& mark) {
  std::string result(origin);
  if (mark.line >= 0) result.append(":").append(std::to_string(mark.line + 1));
  return result + ": ";
}

YamlSection::YamlSection(const YAML::Node& node, std::string path, std::string origin)
    : path_(std::move(path)), origin_(std::move(origin)) {
  if (!node.IsDefined() || node.IsNull()) return;
  if (!node.IsMap()) {
    const std::string what = path_.empty() ? "the top level" : "'" + path_ + "'";
    throw Error(ErrorCode::kInvalidArgument, yaml_position(origin_, node.Mark()) + what +
                                                 " must be a mapping of keys, got " +
                                                 (node.IsScalar() ? "a value" : "a list"));
  }
  for (const auto& pair : node) {
    if (!pair.first.IsScalar()) {
      throw Error(ErrorCode::kInvalidArgument,
                  yaml_position(origin_, pair.first.Mark()) + "keys must be plain names");
    }
    const std::string& key = pair.first.Scalar();
    const bool duplicate = std::any_of(entries_.begin(), entries_.end(),
                                       [&](const Entry& entry) { return entry.key == key; });
    if (duplicate) {
      throw Error(ErrorCode::kInvalidArgument, yaml_position(origin_, pair.first.Mark()) +
                                                   "duplicate key '" + key_path(key) + "'");
    }
    entries_.push_back(Entry{key, pair.first, pair.second});
  }
}

std::string YamlSection::key_path(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

void YamlSection::fail_at(const YAML::Node& node, std::string_view key,
                          const std::string& message) const {
  throw Error(ErrorCode::kInvalidArgument,
              yaml_position(origin_, node.Mark()) + key_path(key) + ": " + message);
}

YamlSection::Entry* YamlSection::take(std::string_view key) {
  known_keys_.emplace_back(key);
  for (Entry& entry : entries_) {
    if (entry.key == key) {
      entry.used = true;
      return &entry;
    }
  }
  return nullptr;
}

const YAML::Node* YamlSection::scalar(std::string_view key, std::string_view what) {
  const Entry* entry = take(key);
  if (entry == nullptr || entry->value.IsNull()) return nullptr;
  if (!entry->value.IsScalar()) {
    throw Error(ErrorCode::kInvalidArgument,
                yaml_position(origin_, entry->value.Mark()) + key_path(key) + " must be " +
                    std::string(what) + ", got " + std::string(describe_kind(entry->value)));
  }
  return &entry->value;
}

void YamlSection::read(std::string_view key, std::string& out) {
  if (const YAML::Node* node = scalar(key, "a string")) out = node->Scalar();
}

void YamlSection::read(std::string_view key, bool& out) {
  const YAML::Node* node = scalar(key, "true or false");
  if (node == nullptr) return;
  // The YAML 1.1 spellings, as yaml-cpp itself accepts them.
  const std::string text = lower(node->Scalar());
  if (text == "true" || text == "yes" || text == "on") {
    out = true;
  } else if (text == "false" || text == "no" || text == "off") {
    out = false;
  } else {
    throw Error(ErrorCode::kInvalidArgument, yaml_position(origin_, node->Mark()) + key_path(key) +
                                                 " must be true or false, got '" + node->Scalar() +
                                                 "'");
  }
}

void YamlSection::read(std::string_view key, double& out) {
  const YAML::Node* node = scalar(key, "a number");
  if (node == nullptr) return;
  const std::string& text = node->Scalar();
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) {
    throw Error(ErrorCode::kInvalidArgument, yaml_position(origin_, node->Mark()) + key_path(key) +
                                                 " must be a number, got '" + text + "'");
  }
  out = value;
}

std::optional<std::int64_t> YamlSection::read_integer(std::string_view key, std::int64_t min,
                                                      std::int64_t max) {
  const YAML::Node* node = scalar(key, "an integer");
  if (node == nullptr) return std::nullopt;
  const std::string& text = node->Scalar();
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  bool out_of_range = error == std::errc::result_out_of_range;
  if (error != std::errc() || end != text.data() + text.size()) {
    // Not a plain integer: perhaps a count with a suffix, such as "4k".
    Expected<std::int64_t> count = parse_count(text);
    if (count.ok()) {
      value = *count;
      out_of_range = false;
    } else if (count.status().code() == ErrorCode::kOutOfRange) {
      out_of_range = true;
    } else if (!out_of_range) {
      throw Error(ErrorCode::kInvalidArgument, yaml_position(origin_, node->Mark()) +
                                                   key_path(key) + " must be an integer, got '" +
                                                   text + "'");
    }
  }
  if (out_of_range || value < min || value > max) {
    throw Error(ErrorCode::kOutOfRange, yaml_position(origin_, node->Mark()) + key_path(key) +
                                            " is out of range: '" + text + "'");
  }
  return value;
}

void YamlSection::read(std::string_view key, std::int64_t& out) {
  const auto value = read_integer(key, std::numeric_limits<std::int64_t>::min(),
                                  std::numeric_limits<std::int64_t>::max());
  if (value) out = *value;
}

void YamlSection::read(std::string_view key, std::int32_t& out) {
  const auto value = read_integer(key, std::numeric_limits<std::int32_t>::min(),
                                  std::numeric_limits<std::int32_t>::max());
  if (value) out = static_cast<std::int32_t>(*value);
}

void YamlSection::read_size(std::string_view key, std::uint64_t& out) {
  const YAML::Node* node = scalar(key, "a size");
  if (node == nullptr) return;
  Expected<std::uint64_t> size = parse_size(node->Scalar());
  if (!size.ok()) {
    throw Error(size.status().code(), yaml_position(origin_, node->Mark()) + key_path(key) + ": " +
                                          size.status().message());
  }
  out = *size;
}

YamlSection YamlSection::section(std::string_view key) {
  const Entry* entry = take(key);
  return YamlSection(entry != nullptr ? entry->value : YAML::Node(), key_path(key), origin_);
}

void YamlSection::finish() const {
  for (const Entry& entry : entries_) {
    if (entry.used) continue;
    std::string known;
    for (const std::string& key : known_keys_)
      known += (known.empty() ? "" : ", ") + key;
    throw Error(ErrorCode::kInvalidArgument, yaml_position(origin_, entry.key_node.Mark()) +
                                                 "unknown key '" + key_path(entry.key) + "' (" +
                                                 (path_.empty() ? "known" : path_) +
                                                 " keys: " + known + ")");
  }
}

}  // namespace conveyor
