#include "common/zmq/zmq_version.h"

#include <zmq.h>

namespace conveyor {

std::string ZmqVersion::to_string() const {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}

ZmqVersion zmq_library_version() {
  ZmqVersion version;
  zmq_version(&version.major, &version.minor, &version.patch);
  return version;
}

Status check_zmq_version(const ZmqVersion& version) {
  if (version >= kMinimumZmqVersion) return {};
  return Status(ErrorCode::kUnsupported,
                "libzmq " + version.to_string() + " is too old: " + kMinimumZmqVersion.to_string() +
                    " or later is required (CVE-2019-13132 in the CURVE handshake)");
}

Status check_zmq_library() {
  return check_zmq_version(zmq_library_version());
}

bool curve_available() {
  return zmq_has("curve") != 0;
}

}  // namespace conveyor
