#include "common/zmq/curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace conveyor {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
// Key files are a few lines; an allowed-keys list a few thousand. Anything larger is
// not a key file.
constexpr std::uintmax_t kMaxKeyFileBytes = 1 << 20;

struct KeyLine {
  std::string name;  // "public-key", "secret-key", or another (ignored) name
  std::string value;
  int line = 0;
};

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

std::string errno_text(int error) {
  return std::strerror(error);
}

std::string read_key_file(const fs::path& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) {
    fail(ErrorCode::kNotFound, "key file " + path.string() + ": no such file");
  }
  if (!fs::is_regular_file(status)) {
    fail(ErrorCode::kInvalidArgument, "key file " + path.string() + ": not a regular file");
  }
  const auto size = fs::file_size(path, ec);
  if (!ec && size > kMaxKeyFileBytes) {
    fail(ErrorCode::kOutOfRange, "key file " + path.string() + ": " + std::to_string(size) +
                                     " bytes is too large for a key file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fail(ErrorCode::kIo, "key file " + path.string() + ": cannot be read: " + errno_text(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// `name = value` lines of a key file; throws kMalformed naming the file and line.
std::vector<KeyLine> parse_key_file(const fs::path& path, const std::string& text) {
  std::vector<KeyLine> lines;
  std::istringstream in(text);
  std::string raw;
  int number = 0;
  while (std::getline(in, raw)) {
    ++number;
    const std::string_view line = trim(raw);
    if (line.empty() || line.front() == '#') continue;
    const std::string where = path.string() + ":" + std::to_string(number) + ": ";
    const auto equals = line.find('=');
    if (equals == std::string_view::npos) {
      if (line == "curve" || line == "metadata") continue;  // zcert sections
      fail(ErrorCode::kMalformed, where + "expected 'name = value'");
    }
    KeyLine key{std::string(trim(line.substr(0, equals))),
                std::string(trim(line.substr(equals + 1))), number};
    if (key.value.size() >= 2 && key.value.front() == '"' && key.value.back() == '"') {
      key.value = key.value.substr(1, key.value.size() - 2);
    }
    if (key.name == "public-key" || key.name == "secret-key") {
      if (Status s = check_z85_key(key.value); !s.ok()) {
        fail(ErrorCode::kMalformed, where + key.name + ": " + s.message());
      }
    }
    lines.push_back(std::move(key));
  }
  return lines;
}

std::vector<KeyLine> lines_named(const std::vector<KeyLine>& lines, std::string_view name) {
  std::vector<KeyLine> found;
  for (const KeyLine& line : lines)
    if (line.name == name) found.push_back(line);
  return found;
}

// Exactly one line called `name`.
std::string single_key(const fs::path& path, const std::vector<KeyLine>& lines,
                       std::string_view name) {
  const std::vector<KeyLine> found = lines_named(lines, name);
  if (found.empty()) {
    fail(ErrorCode::kMalformed,
         "key file " + path.string() + ": no " + std::string(name) + " line");
  }
  if (found.size() > 1) {
    fail(ErrorCode::kMalformed, path.string() + ":" + std::to_string(found[1].line) +
                                    ": a second " + std::string(name) + " line");
  }
  return found.front().value;
}

// Public keys are meant to be shared; a secret found among them means a key-pair
// file was copied where public files go, and its secret is now exposed.
void refuse_secret(const fs::path& path, const std::vector<KeyLine>& lines) {
  const std::vector<KeyLine> secrets = lines_named(lines, "secret-key");
  if (!secrets.empty()) {
    fail(ErrorCode::kInvalidArgument,
         path.string() + ":" + std::to_string(secrets.front().line) +
             ": a secret-key line in a public-key file (use the .pub file, and treat this "
             "secret key as leaked)");
  }
}

std::vector<std::string> public_keys_of(const fs::path& path) {
  const std::vector<KeyLine> lines = parse_key_file(path, read_key_file(path));
  refuse_secret(path, lines);
  std::vector<std::string> keys;
  for (const KeyLine& line : lines_named(lines, "public-key"))
    keys.push_back(line.value);
  return keys;
}

std::set<std::string> allowed_keys_in_directory(const fs::path& dir) {
  std::set<std::string> keys;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".") || entry.path().extension() != ".pub") continue;
    if (!fs::is_regular_file(entry.path())) continue;  // follows Secret volume symlinks
    for (std::string& key : public_keys_of(entry.path()))
      keys.insert(std::move(key));
  }
  if (ec) fail(ErrorCode::kIo, "allowed keys " + dir.string() + ": " + ec.message());
  return keys;
}

bool valid_key_name(const std::string& name) {
  if (name.empty() || name.front() == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// Writes `text` to a new file with `mode`; O_EXCL so an existing key is never replaced.
void write_new_file(const fs::path& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    const int error = errno;
    if (error == EEXIST) {
      fail(ErrorCode::kInvalidArgument, path.string() + " already exists; not overwriting a key");
    }
    fail(ErrorCode::kIo, "cannot create " + path.string() + ": " + errno_text(error));
  }
  std::size_t written = 0;
  int error = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = n < 0 ? errno : EIO;
      break;
    }
    written += static_cast<std::size_t>(n);
  }
  if (error == 0 && ::fsync(fd) != 0) error = errno;
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) {
    std::error_code ignored;
    fs::remove(path, ignored);
    fail(ErrorCode::kIo, "cannot write " + path.string() + ": " + errno_text(error));
  }
}

}  // namespace

Status check_z85_key(std::string_view key) {
  if (key.size() != kZ85KeyLength) {
    return Status(ErrorCode::kMalformed, "a CURVE key is " + std::to_string(kZ85KeyLength) +
                                             " Z85 characters, this one has " +
                                             std::to_string(key.size()));
  }
  const auto bad = key.find_first_not_of(kZ85Alphabet);
  if (bad != std::string_view::npos) {
    const auto byte = static_cast<unsigned char>(key[bad]);
    char shown[8];
    std::snprintf(shown, sizeof(shown), byte >= 0x21 && byte < 0x7f ? "'%c'" : "0x%02x", byte);
    return Status(ErrorCode::kMalformed, std::string("not Z85: character ") + shown +
                                             " at position " + std::to_string(bad));
  }
  // Valid characters can still spell a 5-character group above 2^32 - 1.
  const std::string terminated(key);
  std::array<std::uint8_t, 32> decoded{};
  if (zmq_z85_decode(decoded.data(), terminated.c_str()) == nullptr) {
    return Status(ErrorCode::kMalformed, "not Z85: a group of five characters exceeds 32 bits");
  }
  return {};
}

Expected<CurveKeyPair> generate_key_pair() {
  char public_key[kZ85KeyLength + 1] = {};
  char secret_key[kZ85KeyLength + 1] = {};
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    const int error = zmq_errno();
    if (error == ENOTSUP) {
      return Status(ErrorCode::kUnsupported, "this libzmq was built without CURVE");
    }
    return Status(ErrorCode::kInternal,
                  std::string("zmq_curve_keypair failed: ") + zmq_strerror(error));
  }
  return CurveKeyPair{public_key, secret_key};
}

Expected<CurveKeyPair> load_key_pair(const std::filesystem::path& path) {
  return to_expected([&] {
    const std::vector<KeyLine> lines = parse_key_file(path, read_key_file(path));
    CurveKeyPair pair{single_key(path, lines, "public-key"), single_key(path, lines, "secret-key")};
    char derived[kZ85KeyLength + 1] = {};
    // Without CURVE (ENOTSUP) the check is impossible; using the keys will fail anyway.
    if (zmq_curve_public(derived, pair.secret_key.c_str()) == 0 && pair.public_key != derived) {
      fail(ErrorCode::kMalformed,
           "key file " + path.string() + ": public-key does not belong to secret-key");
    }
    return pair;
  });
}

Expected<std::string> load_public_key(const std::filesystem::path& path) {
  return to_expected([&] {
    const std::vector<KeyLine> lines = parse_key_file(path, read_key_file(path));
    refuse_secret(path, lines);
    return single_key(path, lines, "public-key");
  });
}

Expected<std::set<std::string>> load_allowed_keys(const std::filesystem::path& path) {
  return to_expected([&] {
    std::error_code ec;
    std::set<std::string> keys;
    if (fs::is_directory(path, ec)) {
      keys = allowed_keys_in_directory(path);
    } else {
      for (std::string& key : public_keys_of(path))
        keys.insert(std::move(key));
    }
    if (keys.empty()) {
      fail(ErrorCode::kInvalidArgument,
           "allowed keys " + path.string() + ": no public keys (nobody could connect)");
    }
    return keys;
  });
}

Status write_key_pair(const std::filesystem::path& dir, const std::string& name) {
  if (!valid_key_name(name)) {
    return Status(
        ErrorCode::kInvalidArgument,
        "key name '" + name + "': use letters, digits, '.', '_' and '-', not starting with '.'");
  }
  Expected<CurveKeyPair> pair = generate_key_pair();
  if (!pair) return pair.status();
  const Expected<bool> written = to_expected([&] {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) fail(ErrorCode::kIo, "cannot create " + dir.string() + ": " + ec.message());
    const fs::path secret_path = dir / (name + ".key");
    const fs::path public_path = dir / (name + ".pub");
    if (fs::exists(public_path, ec)) {
      fail(ErrorCode::kInvalidArgument,
           public_path.string() + " already exists; not overwriting a key");
    }
    write_new_file(secret_path,
                   "# CurveZMQ key pair '" + name +
                       "'. Secret: keep this file private (mode 0600).\n"
                       "public-key = " +
                       pair->public_key + "\nsecret-key = " + pair->secret_key + "\n",
                   0600);
    try {
      write_new_file(public_path,
                     "# CurveZMQ public key '" + name +
                         "': give it to the servers that must admit this key.\n"
                         "public-key = " +
                         pair->public_key + "\n",
                     0644);
    } catch (const Error&) {
      fs::remove(secret_path, ec);  // no half-written pair left behind
      throw;
    }
    return true;
  });
  return written.status();
}

Status check_key_file_private(const std::filesystem::path& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    const int error = errno;
    return Status(error == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                  "key file " + path.string() + ": " + errno_text(error));
  }
  if ((info.st_mode & 077) == 0) return {};
  char mode[8];
  std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(info.st_mode & 07777));
  return Status(ErrorCode::kInvalidArgument, "secret key file " + path.string() + " has mode " +
                                                 mode +
                                                 ": readable by group or others (chmod 600)");
}

}  // namespace conveyor
