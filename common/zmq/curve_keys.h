// CurveZMQ keys on disk. Keys come from files (mounted Kubernetes Secrets in a
// cluster), never from the config file, so a config can be shared without its keys.
//
// Format: text lines `name = value`; blank lines and lines starting with '#' are
// ignored ('#' is a Z85 character, so a comment must start its line). Values are Z85
// keys of 40 characters, optionally in double quotes, and the bare section lines
// `curve` and `metadata` are skipped, so that czmq's zcert certificate files read too.
// Other names (czmq's metadata) are ignored.
//  - A key-pair file (`NAME.key`, secret): one `public-key = ...` and one
//    `secret-key = ...` line.
//  - A public-key file (`NAME.pub`): one `public-key = ...` line.
//  - An allowed-keys list: a directory of `*.pub` files, or one file with any number
//    of `public-key = ...` lines.
//
// A secret key file readable by group or others is not refused: Kubernetes mounts
// Secret volumes with mode 0644 by default, where the container is the only reader.
// check_key_file_private() reports it so the caller can log a warning.
#pragma once

#include <cstddef>
#include <filesystem>
#include <set>
#include <string>
#include <string_view>

#include "common/status.h"

namespace conveyor {

// A CURVE key in Z85 text: 40 characters for 32 bytes.
inline constexpr std::size_t kZ85KeyLength = 40;

struct CurveKeyPair {
  std::string public_key;  // Z85
  std::string secret_key;  // Z85
};

// OK when `key` is 40 Z85 characters that decode to 32 bytes; else kMalformed saying
// which rule it breaks.
Status check_z85_key(std::string_view key);

// A fresh key pair from libzmq (zmq_curve_keypair); kUnsupported without CURVE.
Expected<CurveKeyPair> generate_key_pair();

// Reads a key-pair file; the public key must belong to the secret key.
Expected<CurveKeyPair> load_key_pair(const std::filesystem::path& path);

// Reads a public-key file: exactly one public-key line (a secret-key line is refused,
// so a key pair is never mistaken for a shareable file).
Expected<std::string> load_public_key(const std::filesystem::path& path);

// The public keys admitted by a ZAP handler: from every `*.pub` file in a directory
// (names starting with '.' skipped: Kubernetes keeps its own entries there), or from
// one file. An empty list is an error: it would admit nobody.
Expected<std::set<std::string>> load_allowed_keys(const std::filesystem::path& path);

// Generates a key pair and writes `dir/NAME.key` (mode 0600) and `dir/NAME.pub`,
// creating `dir` if needed. Refuses to overwrite either file; NAME is letters, digits,
// '.', '_' and '-', not starting with '.'.
Status write_key_pair(const std::filesystem::path& dir, const std::string& name);

// kInvalidArgument when the file (a secret key) can be read by group or others, with
// its mode in the message; meant to be logged as a warning, not to stop a start.
Status check_key_file_private(const std::filesystem::path& path);

}  // namespace conveyor
