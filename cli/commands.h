// Each subcommand of the conveyor binary registers itself on the CLI11 app and
// returns the process exit code from its run function.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace conveyor::cli {

// Set by a subcommand's callback; main() returns it.
using CommandResult = std::function<int()>;

void register_version(CLI::App& app, CommandResult& result);
void register_inspect(CLI::App& app, CommandResult& result);
void register_generate(CLI::App& app, CommandResult& result);
void register_run(CLI::App& app, CommandResult& result);
void register_bench(CLI::App& app, CommandResult& result);
// Perplexity, KL and top-1 agreement on a held-out text (cli/eval_command.cpp).
void register_eval(CLI::App& app, CommandResult& result);
// Quantisation and pruning into a Conveyor model directory (cli/compress_command.cpp).
void register_compress(CLI::App& app, CommandResult& result);
// The producer verbs (cli/submit_command.cpp).
void register_submit(CLI::App& app, CommandResult& result);
void register_status(CLI::App& app, CommandResult& result);
void register_cancel(CLI::App& app, CommandResult& result);
void register_keygen(CLI::App& app, CommandResult& result);
// The cluster's processes (cli/coordinator_command.cpp, cli/worker_command.cpp).
void register_coordinator(CLI::App& app, CommandResult& result);
void register_worker(CLI::App& app, CommandResult& result);

}  // namespace conveyor::cli
