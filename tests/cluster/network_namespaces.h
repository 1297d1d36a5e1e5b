// Network namespaces for a test: a bridge in the root namespace and namespaces each
// joined to it by a veth pair, as if the processes ran on separate hosts of one
// subnet. Names carry the test's pid and the subnet is chosen by it too, so parallel
// runs do not clash. Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN): `create` returns
// nullopt when it is not allowed. Everything made is removed again in every case.
#pragma once

#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/cli/conveyor_process.h"

namespace conveyor::testing {

class NetworkNamespaces {
 public:
  // A bridge with <subnet>.1/24 and `count` namespaces with <subnet>.2, .3, ...; the
  // failing command's output in `why` when it cannot be made.
  static std::unique_ptr<NetworkNamespaces> create(int count, std::string& why) {
    const std::string tag = std::to_string(::getpid());
    auto made = std::unique_ptr<NetworkNamespaces>(new NetworkNamespaces(tag));
    const std::string subnet = made->subnet_;
    if (!made->run("ip link add " + made->bridge_ + " type bridge", why)) return nullptr;
    made->bridge_made_ = true;
    if (!made->run("ip addr add " + subnet + ".1/24 dev " + made->bridge_, why) ||
        !made->run("ip link set " + made->bridge_ + " up", why))
      return nullptr;
    for (int i = 0; i < count; ++i) {
      const std::string suffix = std::string(1, static_cast<char>('a' + i));
      const std::string ns = "cvn" + tag + suffix;
      const std::string host_end = "cvh" + tag + suffix;
      const std::string ns_end = "cvp" + tag + suffix;
      if (!made->run("ip netns add " + ns, why)) return nullptr;
      made->namespaces_.push_back(ns);
      const std::string in_ns = "ip netns exec " + ns + " ";
      const std::string address = subnet + "." + std::to_string(2 + i);
      if (!made->run("ip link add " + host_end + " type veth peer name " + ns_end, why) ||
          !made->run("ip link set " + ns_end + " netns " + ns, why) ||
          !made->run("ip link set " + host_end + " master " + made->bridge_, why) ||
          !made->run("ip link set " + host_end + " up", why) ||
          !made->run(in_ns + "ip addr add " + address + "/24 dev " + ns_end, why) ||
          !made->run(in_ns + "ip link set " + ns_end + " up", why) ||
          !made->run(in_ns + "ip link set lo up", why))
        return nullptr;
      made->addresses_.push_back(address);
    }
    return made;
  }

  // Deleting a namespace deletes its end of the veth pair, and with it the other end.
  ~NetworkNamespaces() {
    std::string ignored;
    for (const std::string& ns : namespaces_)
      run("ip netns delete " + ns, ignored);
    if (bridge_made_) run("ip link delete " + bridge_, ignored);
  }

  NetworkNamespaces(const NetworkNamespaces&) = delete;
  NetworkNamespaces& operator=(const NetworkNamespaces&) = delete;

  // The bridge's address: the root namespace as the namespaces reach it.
  std::string root_address() const { return subnet_ + ".1"; }
  const std::string& name(std::size_t i) const { return namespaces_.at(i); }
  const std::string& address(std::size_t i) const { return addresses_.at(i); }
  // The command prefix that runs a program in namespace `i`.
  std::vector<std::string> exec_prefix(std::size_t i) const {
    return {"ip", "netns", "exec", namespaces_.at(i)};
  }

 private:
  explicit NetworkNamespaces(const std::string& tag)
      : bridge_("cvb" + tag),
        subnet_("10.231." + std::to_string(static_cast<unsigned>(::getpid()) % 250 + 1)) {}

  static bool run(const std::string& command, std::string& why) {
    const CommandOutput out = run_shell(command);
    if (out.exit_code == 0) return true;
    why = command + ": " + out.out;
    return false;
  }

  std::string bridge_;
  std::string subnet_;
  bool bridge_made_ = false;
  std::vector<std::string> namespaces_;
  std::vector<std::string> addresses_;
};

}  // namespace conveyor::testing
