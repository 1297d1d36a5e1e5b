// Strict reading of one YAML mapping of a config file. Each read() consumes a key if present
// (a missing key or one with no value keeps the caller's default); finish() then rejects the
// keys nobody read. Errors are conveyor::Error with "origin:line: key.path ..." messages.
// Internal to common/config: callers use parse_run_config and friends.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace conveyor {

class YamlSection {
 public:
  // `node` is a mapping, or null for an absent or empty section. `path` is the key path of
  // the section ("" at the top level, "kv" for the kv mapping).
  YamlSection(const YAML::Node& node, std::string path, std::string origin);

  void read(std::string_view key, std::string& out);
  void read(std::string_view key, bool& out);
  void read(std::string_view key, double& out);
  // An integer: plain ("-3", "512") or a count with a suffix ("4k"); range-checked for the type.
  void read(std::string_view key, std::int64_t& out);
  void read(std::string_view key, std::int32_t& out);
  // A byte size: an integer or a string such as "64MiB" (see size_parse.h).
  void read_size(std::string_view key, std::uint64_t& out);
  // A name turned into a value by `parse` (parse_backend, parse_progress_mode).
  template <typename Value>
  void read_with(std::string_view key, Value& out, Expected<Value> (*parse)(std::string_view)) {
    const YAML::Node* node = scalar(key, "a name");
    if (node == nullptr) return;
    Expected<Value> parsed = parse(node->Scalar());
    if (!parsed.ok()) fail_at(*node, key, parsed.status().message());
    out = *parsed;
  }

  // The nested mapping under `key` (an empty section when absent).
  YamlSection section(std::string_view key);

  // Throws for the first key in the file that no read() asked for.
  void finish() const;

 private:
  struct Entry {
    std::string key;
    YAML::Node key_node;
    YAML::Node value;
    bool used = false;
  };

  // The entry for `key` marked used, or nullptr when absent.
  Entry* take(std::string_view key);
  // The scalar value of `key`, nullptr when absent or null; throws "must be <what>" otherwise.
  const YAML::Node* scalar(std::string_view key, std::string_view what);
  // The integer under `key` if present; throws unless it is within [min, max].
  std::optional<std::int64_t> read_integer(std::string_view key, std::int64_t min,
                                           std::int64_t max);
  std::string key_path(std::string_view key) const;
  [[noreturn]] void fail_at(const YAML::Node& node, std::string_view key,
                            const std::string& message) const;

  std::string path_;
  std::string origin_;
  std::vector<Entry> entries_;
  std::vector<std::string> known_keys_;  // every key asked for, for the unknown-key message
};

// "origin:line: " for a node with a position, "origin: " without.
std::string yaml_position(std::string_view origin, const YAML::Mark& mark);

}  // namespace conveyor
