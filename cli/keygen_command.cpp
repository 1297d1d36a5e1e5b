#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "common/zmq/curve_keys.h"

namespace conveyor::cli {

void register_keygen(CLI::App& app, CommandResult& result) {
  CLI::App* cmd = app.add_subcommand(
      "keygen", "Write a CurveZMQ key pair: NAME.key (secret, mode 0600) and NAME.pub");
  auto out = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  cmd->add_option("--out", *out, "directory for the key files (created if absent)")->required();
  cmd->add_option("--name", *name, "key name: letters, digits, '.', '_', '-'")->required();
  cmd->callback([&result, out, name] {
    result = [out, name] {
      if (Status s = write_key_pair(*out, *name); !s.ok()) throw Error(s.code(), s.message());
      const std::filesystem::path dir(*out);
      std::cout << "secret key pair: " << (dir / (*name + ".key")).string() << "\n"
                << "public key:      " << (dir / (*name + ".pub")).string()
                << "  (give this file to the servers that must admit the key)\n";
      return 0;
    };
  });
}

}  // namespace conveyor::cli
