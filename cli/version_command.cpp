#include <iostream>

#include "cli/commands.h"
#include "worker/platform/build_info.h"

namespace conveyor::cli {

void register_version(CLI::App& app, CommandResult& result) {
  CLI::App* cmd = app.add_subcommand("version", "Print the build: backends, transports, devices");
  cmd->callback([&result] {
    result = [] {
      std::cout << describe(build_info());
      return 0;
    };
  });
}

}  // namespace conveyor::cli
