// CurveZMQ key files: what keygen writes loads back; malformed, misplaced and missing
// key files are errors that say what is wrong and where.
#include "common/zmq/curve_keys.h"

#include <sys/stat.h>

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/temp_dir.h"

namespace conveyor {
namespace {

using testing::TempDir;

std::filesystem::path write_text(const TempDir& dir, const std::string& name,
                                 const std::string& text) {
  const std::filesystem::path path = dir.file(name);
  std::ofstream(path) << text;
  return path;
}

bool mentions(const Status& status, const std::string& text) {
  return status.message().find(text) != std::string::npos;
}

TEST_CASE("a written key pair loads back, private, with its public file") {
  TempDir dir;
  const std::filesystem::path out = dir.path() / "keys";  // created by write_key_pair
  REQUIRE(write_key_pair(out, "producer-1").ok());

  const Expected<CurveKeyPair> pair = load_key_pair(out / "producer-1.key");
  REQUIRE(pair.ok());
  CHECK(pair->public_key.size() == kZ85KeyLength);
  CHECK(pair->secret_key.size() == kZ85KeyLength);
  CHECK(pair->public_key != pair->secret_key);
  const Expected<std::string> shared = load_public_key(out / "producer-1.pub");
  REQUIRE(shared.ok());
  CHECK(*shared == pair->public_key);

  struct stat info {};
  REQUIRE(::stat((out / "producer-1.key").c_str(), &info) == 0);
  CHECK((info.st_mode & 0777) == 0600);
  CHECK(check_key_file_private(out / "producer-1.key").ok());

  SUBCASE("an existing key is never overwritten") {
    const Status again = write_key_pair(out, "producer-1");
    CHECK(again.code() == ErrorCode::kInvalidArgument);
    CHECK(mentions(again, "already exists"));
    CHECK(load_key_pair(out / "producer-1.key")->secret_key == pair->secret_key);
  }
  SUBCASE("two key pairs differ") {
    REQUIRE(write_key_pair(out, "producer-2").ok());
    CHECK(load_key_pair(out / "producer-2.key")->public_key != pair->public_key);
  }
}

TEST_CASE("a key name that could escape the directory or hide the file is refused") {
  TempDir dir;
  for (const char* name : {"", "../evil", "a/b", ".hidden", "sp ace"}) {
    CAPTURE(name);
    CHECK(write_key_pair(dir.path(), name).code() == ErrorCode::kInvalidArgument);
  }
  CHECK(std::filesystem::is_empty(dir.path()));
}

TEST_CASE("a secret key file readable by others is reported, not refused") {
  TempDir dir;
  REQUIRE(write_key_pair(dir.path(), "server").ok());
  const std::filesystem::path key = dir.file("server.key");
  REQUIRE(::chmod(key.c_str(), 0644) == 0);
  const Status status = check_key_file_private(key);
  CHECK(status.code() == ErrorCode::kInvalidArgument);
  CHECK(mentions(status, "0644"));
  CHECK(load_key_pair(key).ok());
  CHECK(check_key_file_private(dir.file("absent.key")).code() == ErrorCode::kNotFound);
}

TEST_CASE("Z85 keys: length, alphabet and 32-bit groups are checked") {
  const Expected<CurveKeyPair> pair = generate_key_pair();
  REQUIRE(pair.ok());
  CHECK(check_z85_key(pair->public_key).ok());

  const Status short_key = check_z85_key(pair->public_key.substr(1));
  CHECK(short_key.code() == ErrorCode::kMalformed);
  CHECK(mentions(short_key, "has 39"));

  std::string bad = pair->public_key;
  bad[7] = '~';
  const Status bad_char = check_z85_key(bad);
  CHECK(bad_char.code() == ErrorCode::kMalformed);
  CHECK(mentions(bad_char, "'~' at position 7"));

  // Every character is Z85, but "#####" is 85^5 - 1, more than 32 bits hold.
  const Status overflow = check_z85_key(std::string(kZ85KeyLength, '#'));
  CHECK(overflow.code() == ErrorCode::kMalformed);
  CHECK(mentions(overflow, "32 bits"));
}

TEST_CASE("malformed key files are errors naming the file, line and fault") {
  TempDir dir;
  const CurveKeyPair pair = generate_key_pair().value();
  const CurveKeyPair other = generate_key_pair().value();

  SUBCASE("missing file") {
    const Expected<CurveKeyPair> missing = load_key_pair(dir.file("none.key"));
    CHECK(missing.status().code() == ErrorCode::kNotFound);
    CHECK(mentions(missing.status(), "none.key"));
    CHECK(load_public_key(dir.file("none.pub")).status().code() == ErrorCode::kNotFound);
    CHECK(load_allowed_keys(dir.file("none")).status().code() == ErrorCode::kNotFound);
  }
  SUBCASE("wrong length") {
    const auto path = write_text(dir, "short.pub", "# a comment\npublic-key = abc\n");
    const Status status = load_public_key(path).status();
    CHECK(status.code() == ErrorCode::kMalformed);
    CHECK(mentions(status, "short.pub:2"));
    CHECK(mentions(status, "40"));
  }
  SUBCASE("bad characters") {
    std::string key = pair.public_key;
    key[0] = '"';
    const auto path = write_text(dir, "bad.pub", "public-key = " + key + "\n");
    const Status status = load_public_key(path).status();
    CHECK(status.code() == ErrorCode::kMalformed);
    CHECK(mentions(status, "not Z85"));
  }
  SUBCASE("a line that is not name = value") {
    const auto path = write_text(dir, "junk.pub", "just a key\n");
    const Status status = load_public_key(path).status();
    CHECK(status.code() == ErrorCode::kMalformed);
    CHECK(mentions(status, "junk.pub:1"));
  }
  SUBCASE("no secret-key line in a key-pair file") {
    const auto path = write_text(dir, "half.key", "public-key = " + pair.public_key + "\n");
    const Status status = load_key_pair(path).status();
    CHECK(status.code() == ErrorCode::kMalformed);
    CHECK(mentions(status, "no secret-key"));
  }
  SUBCASE("a public key that is not the secret key's") {
    const auto path =
        write_text(dir, "mixed.key",
                   "public-key = " + other.public_key + "\nsecret-key = " + pair.secret_key + "\n");
    CHECK(mentions(load_key_pair(path).status(), "does not belong"));
  }
  SUBCASE("two public keys where one is expected") {
    const auto path = write_text(
        dir, "two.pub", "public-key = " + pair.public_key + "\npublic-key = " + other.public_key);
    const Status status = load_public_key(path).status();
    CHECK(status.code() == ErrorCode::kMalformed);
    CHECK(mentions(status, "two.pub:2"));
  }
  SUBCASE("a secret key where only public keys belong") {
    const auto path =
        write_text(dir, "leak.pub",
                   "public-key = " + pair.public_key + "\nsecret-key = " + pair.secret_key + "\n");
    CHECK(load_public_key(path).status().code() == ErrorCode::kInvalidArgument);
    const Status status = load_allowed_keys(path).status();
    CHECK(status.code() == ErrorCode::kInvalidArgument);
    CHECK(mentions(status, "leaked"));
  }
}

TEST_CASE("a czmq zcert certificate reads as a key pair") {
  TempDir dir;
  const CurveKeyPair pair = generate_key_pair().value();
  const auto path =
      write_text(dir, "zcert_secret",
                 "#   ****  Generated by CZMQ  ****\n\nmetadata\n"
                 "    name = \"coordinator\"\ncurve\n    public-key = \"" +
                     pair.public_key + "\"\n    secret-key = \"" + pair.secret_key + "\"\n");
  const Expected<CurveKeyPair> loaded = load_key_pair(path);
  REQUIRE(loaded.ok());
  CHECK(loaded->public_key == pair.public_key);
  CHECK(loaded->secret_key == pair.secret_key);
}

TEST_CASE("allowed keys from a directory of .pub files or from one list file") {
  TempDir dir;
  const std::filesystem::path keys = dir.path() / "allowed";
  REQUIRE(write_key_pair(keys, "a").ok());
  REQUIRE(write_key_pair(keys, "b").ok());
  // Not public-key files: a key pair (.key) and Kubernetes' own dot entries.
  write_text(dir, "allowed/..data.pub", "garbage");
  const std::string a = load_public_key(keys / "a.pub").value();
  const std::string b = load_public_key(keys / "b.pub").value();

  const Expected<std::set<std::string>> from_dir = load_allowed_keys(keys);
  REQUIRE(from_dir.ok());
  CHECK(*from_dir == std::set<std::string>{a, b});

  const auto list = write_text(dir, "list.txt",
                               "# producers\npublic-key = " + a + "\n\n  public-key = " + b +
                                   "\r\npublic-key = " + a + "\n");
  const Expected<std::set<std::string>> from_file = load_allowed_keys(list);
  REQUIRE(from_file.ok());
  CHECK(*from_file == std::set<std::string>{a, b});

  SUBCASE("one bad file in the directory fails the whole list") {
    write_text(dir, "allowed/c.pub", "public-key = tooshort\n");
    CHECK(load_allowed_keys(keys).status().code() == ErrorCode::kMalformed);
  }
  SUBCASE("an empty list admits nobody, so it is refused") {
    const auto empty = write_text(dir, "empty.txt", "# nobody\n");
    CHECK(load_allowed_keys(empty).status().code() == ErrorCode::kInvalidArgument);
    std::filesystem::create_directory(dir.path() / "none");
    CHECK(load_allowed_keys(dir.path() / "none").status().code() == ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace conveyor
