// The libzmq this process runs against (the shared library, not the headers it was
// built with): which version, and whether it can do CurveZMQ. A coordinator refuses
// libzmq before 4.3.2, whose CURVE handshake has a pre-authentication stack overflow
// (CVE-2019-13132), and refuses keys it cannot use when libzmq lacks CURVE.
#pragma once

#include <string>

#include "common/status.h"

namespace conveyor {

struct ZmqVersion {
  int major = 0;
  int minor = 0;
  int patch = 0;

  std::string to_string() const;
  friend auto operator<=>(const ZmqVersion&, const ZmqVersion&) = default;
};

inline constexpr ZmqVersion kMinimumZmqVersion{4, 3, 2};

// The version of the loaded libzmq (zmq_version()).
ZmqVersion zmq_library_version();

// OK when `version` is at least kMinimumZmqVersion; else kUnsupported naming it.
Status check_zmq_version(const ZmqVersion& version);

// check_zmq_version(zmq_library_version()).
Status check_zmq_library();

// Whether the loaded libzmq was built with CURVE (zmq_has("curve")).
bool curve_available();

}  // namespace conveyor
