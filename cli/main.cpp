#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/commands.h"
#include "common/status.h"

int main(int argc, char** argv) {
  CLI::App app{"conveyor: LLM batch inference"};
  app.require_subcommand(1);
  conveyor::cli::CommandResult command;
  conveyor::cli::register_version(app, command);
  conveyor::cli::register_inspect(app, command);
  conveyor::cli::register_generate(app, command);
  conveyor::cli::register_run(app, command);
  conveyor::cli::register_bench(app, command);
  conveyor::cli::register_eval(app, command);
  conveyor::cli::register_compress(app, command);
  conveyor::cli::register_submit(app, command);
  conveyor::cli::register_status(app, command);
  conveyor::cli::register_cancel(app, command);
  conveyor::cli::register_keygen(app, command);
  conveyor::cli::register_coordinator(app, command);
  conveyor::cli::register_worker(app, command);
  CLI11_PARSE(app, argc, argv);
  try {
    return command ? command() : 0;
  } catch (const conveyor::Error& e) {
    std::cerr << "error: " << e.status().to_string() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
  }
  return 1;
}
