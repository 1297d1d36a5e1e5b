// The libzmq version gate: CURVE is refused before 4.3.2 (CVE-2019-13132).
#include "common/zmq/zmq_version.h"

#include <doctest/doctest.h>

namespace conveyor {
namespace {

TEST_CASE("the libzmq this test runs against passes the version check and has CURVE") {
  const Status status = check_zmq_library();
  INFO(status.to_string());
  CHECK(status.ok());
  CHECK(zmq_library_version() >= kMinimumZmqVersion);
  CHECK(curve_available());
}

TEST_CASE("a libzmq older than 4.3.2 is refused, naming its version") {
  const Status old = check_zmq_version({4, 3, 1});
  CHECK(old.code() == ErrorCode::kUnsupported);
  CHECK(old.message().find("4.3.1") != std::string::npos);
  CHECK(old.message().find("4.3.2") != std::string::npos);
  CHECK(check_zmq_version({4, 2, 9}).code() == ErrorCode::kUnsupported);
  CHECK(check_zmq_version({3, 9, 9}).code() == ErrorCode::kUnsupported);
  CHECK(check_zmq_version({4, 3, 2}).ok());
  CHECK(check_zmq_version({4, 4, 0}).ok());
  CHECK(check_zmq_version({5, 0, 0}).ok());
}

}  // namespace
}  // namespace conveyor
