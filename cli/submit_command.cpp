// `conveyor submit`, `conveyor status` and `conveyor cancel`: the reference producer of
// a Conveyor cluster, speaking the producer protocol (docs/protocol.md) to a
// coordinator over ZeroMQ.
//
// submit uploads a batch file in chunks (each acknowledged only once the coordinator
// has journaled it), and with --wait pulls the results as they finish into the output
// and error files. Everything is resumable: the default job id is derived from the
// input file, so rerunning the same command names the same job; chunks the
// coordinator already holds are skipped or answered DUPLICATE; results already in the
// output files are not written twice.
#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "common/zmq/curve_keys.h"
#include "common/zmq/curve_socket.h"
#include "coordinator/batch/file_lock.h"
#include "coordinator/batch/jsonl_appender.h"
#include "coordinator/batch/line_reader.h"
#include "coordinator/batch/request_line.h"
#include "coordinator/batch/resume.h"
#include "coordinator/batch_job.h"
#include "coordinator/producer/job_id.h"
#include "coordinator/producer/producer_client.h"
#include "coordinator/progress.h"

namespace conveyor::cli {
namespace {

using Clock = std::chrono::steady_clock;

// A chunk closes at this many bytes (or --chunk-lines lines), well under the
// coordinator's default 64 MiB message limit.
constexpr std::size_t kMaxChunkBytes = std::size_t{16} << 20;
// Longer lines are sent cut to this (+1 byte): the coordinator answers them with a
// line_too_long error line instead of the whole chunk being refused.
constexpr std::size_t kMaxSubmitLineBytes = std::size_t{32} << 20;
constexpr std::uint32_t kFetchLines = 1000;
constexpr std::uint32_t kFetchWaitMs = 5000;

template <typename T>
T value_or_throw(Expected<T> e) {
  if (!e.ok()) throw Error(e.status().code(), e.status().message());
  return std::move(e).value();
}

void throw_if_error(const Status& s) {
  if (!s.ok()) throw Error(s.code(), s.message());
}

struct ConnectionFlags {
  std::string coordinator;
  std::string server_key;  // the coordinator's public-key file
  std::string client_key;  // this producer's key-pair file
};

void add_connection_flags(CLI::App& cmd, ConnectionFlags& f) {
  cmd.add_option("--coordinator", f.coordinator, "the coordinator's producer endpoint")
      ->envname("CONVEYOR_COORDINATOR")
      ->required();
  cmd.add_option("--server-key", f.server_key,
                 "the coordinator's CURVE public-key file: encrypt and authenticate (CurveZMQ)")
      ->envname("CONVEYOR_SERVER_KEY");
  cmd.add_option("--client-key", f.client_key,
                 "this producer's CURVE key-pair file (default with --server-key: a "
                 "throw-away key pair)")
      ->envname("CONVEYOR_CLIENT_KEY");
}

ProducerClientOptions client_options(const ConnectionFlags& f) {
  ProducerClientOptions o;
  o.endpoint = f.coordinator;
  if (f.server_key.empty()) {
    if (!f.client_key.empty()) {
      fail(ErrorCode::kInvalidArgument, "--client-key needs --server-key");
    }
    return o;
  }
  const std::string server = value_or_throw(load_public_key(f.server_key));
  const CurveKeyPair own = f.client_key.empty() ? value_or_throw(generate_key_pair())
                                                : value_or_throw(load_key_pair(f.client_key));
  o.configure_socket = [own, server](zmq::socket_t& socket) {
    make_curve_client(socket, own, server);
  };
  return o;
}

// "<stem>-<16 hex>": the hash of the input's absolute path, size and modification
// time, so the same command names the same job and an edited file a new one.
std::string derive_job_id(const std::filesystem::path& input) {
  const std::filesystem::path absolute = std::filesystem::absolute(input).lexically_normal();
  const auto size = std::filesystem::file_size(absolute);
  const auto mtime = std::filesystem::last_write_time(absolute).time_since_epoch().count();
  const std::string key = absolute.string() + '\n' + std::to_string(size) + '\n' +
                          std::to_string(static_cast<long long>(mtime));
  std::uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (const char c : key) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  std::string stem;
  for (const char c : input.stem().string().substr(0, 64)) {
    const bool ok =
        std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '-';
    stem += ok ? c : '_';
  }
  char suffix[24];
  std::snprintf(suffix, sizeof(suffix), "%s%016llx", stem.empty() ? "" : "-",
                static_cast<unsigned long long>(hash));
  return stem + suffix;
}

// The input file cut into chunks of whole lines.
class ChunkReader {
 public:
  ChunkReader(const std::filesystem::path& path, std::size_t max_lines)
      : file_(std::fopen(path.c_str(), "rb"), &std::fclose), max_lines_(max_lines) {
    if (!file_) fail(ErrorCode::kIo, "cannot open " + path.string());
    reader_.emplace(file_.get(), kMaxSubmitLineBytes);
  }

  // The next chunk; nullopt at the end. An empty file is one empty chunk, so that
  // even an empty job gets its final chunk.
  std::optional<std::vector<std::string>> next() {
    std::vector<std::string> lines;
    std::size_t bytes = 0;
    if (pending_) {
      bytes += pending_->size() + 1;
      lines.push_back(std::move(*pending_));
      pending_.reset();
    }
    while (lines.size() < max_lines_) {
      std::optional<LineReader::Line> line = reader_->next();
      if (!line) break;
      std::string text(line->text);
      if (!lines.empty() && bytes + text.size() + 1 > kMaxChunkBytes) {
        pending_ = std::move(text);
        break;
      }
      bytes += text.size() + 1;
      lines.push_back(std::move(text));
    }
    if (reader_->error()) fail(ErrorCode::kIo, "cannot read the input file");
    if (lines.empty() && (produced_ > 0)) return std::nullopt;
    ++produced_;
    return lines;
  }

 private:
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_;
  std::optional<LineReader> reader_;
  std::size_t max_lines_;
  std::optional<std::string> pending_;
  std::size_t produced_ = 0;
};

struct SubmitOptions {
  ConnectionFlags connection;
  std::string input;
  std::string output;
  std::string errors;
  std::string job_id;
  std::size_t chunk_lines = 1000;
  bool wait = false;
  double timeout_seconds = 0;  // 0: no limit
};

void upload(ProducerClient& client, const SubmitOptions& o, const std::string& job_id) {
  const JobStatusReply known = value_or_throw(client.status(job_id));
  if (known.found && known.final_received) {
    std::fprintf(stderr, "[submit] job %s: the coordinator has all %u chunks already\n",
                 job_id.c_str(), known.chunks);
    return;
  }
  // Chunks go one at a time, in order: the chunks a coordinator holds are the first ones.
  const std::uint32_t skip = known.found ? known.chunks : 0;
  ChunkReader reader(o.input, o.chunk_lines);
  std::optional<std::vector<std::string>> chunk = reader.next();
  std::uint32_t index = 0;
  std::size_t lines = 0;
  std::size_t duplicates = 0;
  while (chunk) {
    std::optional<std::vector<std::string>> following = reader.next();
    if (index >= skip) {
      const SubmitResult r =
          value_or_throw(client.submit_chunk(job_id, index, !following.has_value(), *chunk));
      if (r.duplicate) ++duplicates;
      lines += chunk->size();
    }
    chunk = std::move(following);
    ++index;
  }
  std::fprintf(stderr, "[submit] job %s: %u chunks, %zu lines sent (%u chunks already there)\n",
               job_id.c_str(), index, lines, skip + static_cast<std::uint32_t>(duplicates));
}

// The custom_id of a result line, "" when it has none (it is written all the same).
std::string custom_id_of(const std::string& line) {
  const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return "";
  const auto it = j.find("custom_id");
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

void on_signal(int signal) {
  static const char message[] =
      "\nstopped: received lines are saved; run the same command again to resume\n";
  (void)!::write(STDERR_FILENO, message, sizeof(message) - 1);
  ::_exit(128 + signal);
}

int run_submit(const SubmitOptions& o) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(o.input, ec)) {
    fail(ErrorCode::kNotFound, "input " + o.input + " is not a readable file");
  }
  if (o.chunk_lines < 1 || o.chunk_lines > kMaxChunkLines) {
    fail(ErrorCode::kInvalidArgument, "--chunk-lines must be 1.." + std::to_string(kMaxChunkLines));
  }
  if (o.wait && o.output.empty()) fail(ErrorCode::kInvalidArgument, "--wait needs --output");
  const std::string job_id = o.job_id.empty() ? derive_job_id(o.input) : o.job_id;
  throw_if_error(validate_job_id(job_id));

  std::optional<Clock::time_point> deadline;
  ProducerClientOptions options = client_options(o.connection);
  if (o.timeout_seconds > 0) {
    const auto limit = std::chrono::milliseconds(static_cast<long long>(o.timeout_seconds * 1000));
    deadline = Clock::now() + limit;
    options.busy_limit = limit;
    // A coordinator that never answers (down, or refusing our key) must not outlast
    // the limit either: the attempts of one request fit in it.
    options.timeout = std::clamp(limit / std::max(1, options.attempts),
                                 std::chrono::milliseconds(100), options.timeout);
    options.backoff_max = std::min(options.backoff_max, options.timeout);
  } else {
    options.busy_limit = std::chrono::hours(24 * 365);  // BUSY means wait, not fail
  }

  // Before anything is sent: a second producer on the same files stops here.
  std::optional<FileLock> lock;
  ResumeState resume;
  const std::filesystem::path output = o.output;
  const std::filesystem::path errors =
      o.errors.empty() ? default_errors_path(output) : std::filesystem::path(o.errors);
  std::int64_t request_lines = -1;
  if (o.wait) {
    lock.emplace(value_or_throw(FileLock::acquire(output)));
    resume = value_or_throw(scan_for_resume(output, errors));
    RequestLineLimits limits;
    limits.max_line_bytes = kMaxSubmitLineBytes;
    request_lines = count_request_lines(o.input, limits);
  }
  std::printf("%s\n", job_id.c_str());
  std::fflush(stdout);
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  std::int64_t have = resume.results + resume.errors;
  if (o.wait && request_lines >= 0 && have >= request_lines) {
    std::fprintf(stderr, "[submit] every request of %s already has a line in %s or %s\n",
                 o.input.c_str(), output.c_str(), errors.c_str());
    return resume.errors > 0 ? 2 : 0;
  }

  zmq::context_t context;
  ProducerClient client(context, options);
  upload(client, o, job_id);
  if (!o.wait) {
    std::fprintf(stderr, "[submit] follow it with: conveyor status --coordinator %s --job-id %s\n",
                 o.connection.coordinator.c_str(), job_id.c_str());
    return 0;
  }

  if (resume.results + resume.errors > 0 || resume.repaired_bytes > 0) {
    std::fprintf(stderr, "[submit] resumed: %lld results and %lld errors were already written",
                 static_cast<long long>(resume.results), static_cast<long long>(resume.errors));
    if (resume.repaired_bytes > 0) {
      std::fprintf(stderr, "; a cut last line (%lld bytes) was removed and is fetched again",
                   static_cast<long long>(resume.repaired_bytes));
    }
    std::fprintf(stderr, "\n");
  }
  JsonlAppender out = value_or_throw(JsonlAppender::open(output));
  JsonlAppender err = value_or_throw(JsonlAppender::open(errors));
  std::int64_t written_errors = resume.errors;
  // Each line written came from its own record of the result stream, in order, so
  // the stream position is at least the number of lines in the files: start there,
  // and let the custom_id check skip whatever is read twice.
  std::uint64_t offset = static_cast<std::uint64_t>(have);
  ProgressReporter progress(ProgressMode::kAuto, 5.0);
  const auto started = Clock::now();
  ProgressSnapshot snapshot;
  while (true) {
    if (deadline && Clock::now() > *deadline) {
      fail(ErrorCode::kUnavailable, "--timeout passed before job " + job_id +
                                        " finished; run the same command again to resume");
    }
    const FetchReply r = value_or_throw(client.fetch(job_id, offset, kFetchLines, kFetchWaitMs));
    if (!r.found) {
      fail(ErrorCode::kNotFound, "the coordinator no longer knows job " + job_id +
                                     " (released, or lost with its journal)");
    }
    bool wrote = false;
    for (const ResultRecord& record : r.records) {
      const std::string id = custom_id_of(record.line);
      if (!id.empty() && !resume.finished.insert(id).second) continue;  // already written
      throw_if_error((record.error ? err : out).append(record.line + '\n'));
      if (record.error) ++written_errors;
      ++have;
      wrote = true;
    }
    if (wrote) {
      throw_if_error(out.sync());
      throw_if_error(err.sync());
    }
    offset = r.next_offset;
    snapshot.done = r.completed;
    snapshot.failed = r.failed;
    snapshot.total = r.total;
    snapshot.elapsed_seconds = std::chrono::duration<double>(Clock::now() - started).count();
    if (r.job_done) break;
    progress.update(snapshot);
  }
  progress.finish(snapshot);
  throw_if_error(out.close());
  throw_if_error(err.close());

  const Status released = client.release(job_id);
  if (!released.ok()) {
    std::fprintf(stderr, "[submit] warning: release failed: %s\n", released.to_string().c_str());
  }
  std::fprintf(stderr, "[submit] job %s: %lld lines (%lld errors) | output: %s | errors: %s\n",
               job_id.c_str(), static_cast<long long>(have), static_cast<long long>(written_errors),
               output.c_str(), errors.c_str());
  if (request_lines >= 0 && have < request_lines) {
    std::fprintf(stderr, "[submit] %lld requests have no line: the job was cancelled\n",
                 static_cast<long long>(request_lines - have));
    return 1;
  }
  return written_errors > 0 ? 2 : 0;
}

int run_status(const ConnectionFlags& connection, const std::string& job_id) {
  throw_if_error(validate_job_id(job_id));
  zmq::context_t context;
  ProducerClient client(context, client_options(connection));
  const JobStatusReply s = value_or_throw(client.status(job_id));
  if (!s.found) fail(ErrorCode::kNotFound, "the coordinator has no job " + job_id);
  const nlohmann::json j = {
      {"id", job_id},
      {"status", s.state},
      {"request_counts", {{"total", s.total}, {"completed", s.completed}, {"failed", s.failed}}},
      {"chunks", s.chunks},
      {"final_chunk_received", s.final_received},
  };
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

int run_cancel(const ConnectionFlags& connection, const std::string& job_id) {
  throw_if_error(validate_job_id(job_id));
  zmq::context_t context;
  ProducerClient client(context, client_options(connection));
  throw_if_error(client.cancel(job_id));
  std::fprintf(stderr, "[cancel] job %s: cancelled\n", job_id.c_str());
  return 0;
}

}  // namespace

void register_submit(CLI::App& app, CommandResult& result) {
  CLI::App* cmd = app.add_subcommand(
      "submit", "Submit a batch file to a coordinator; with --wait, collect its results");
  auto o = std::make_shared<SubmitOptions>();
  add_connection_flags(*cmd, o->connection);
  cmd->add_option("-i,--input", o->input, "input JSONL (OpenAI Batch lines)")->required();
  cmd->add_option("-o,--output", o->output, "output JSONL (appended; a rerun resumes)");
  cmd->add_option("--errors", o->errors, "error JSONL (default: <output stem>.errors.jsonl)");
  cmd->add_option("--job-id", o->job_id,
                  "job id, 1-128 of [A-Za-z0-9._:-] (default: derived from the input file, "
                  "so a rerun resumes the same job)");
  cmd->add_option("--chunk-lines", o->chunk_lines,
                  "lines per chunk (keep it the same when resuming)")
      ->capture_default_str();
  cmd->add_flag("--wait", o->wait, "wait for the results and write them to --output");
  cmd->add_option("--timeout", o->timeout_seconds,
                  "give up after this many seconds (0: never); a rerun resumes")
      ->capture_default_str();
  cmd->callback([&result, o] { result = [o] { return run_submit(*o); }; });
}

void register_status(CLI::App& app, CommandResult& result) {
  CLI::App* cmd = app.add_subcommand("status", "Print a submitted job's status as JSON");
  auto connection = std::make_shared<ConnectionFlags>();
  auto job_id = std::make_shared<std::string>();
  add_connection_flags(*cmd, *connection);
  cmd->add_option("--job-id", *job_id, "the job")->required();
  cmd->callback([&result, connection, job_id] {
    result = [connection, job_id] { return run_status(*connection, *job_id); };
  });
}

void register_cancel(CLI::App& app, CommandResult& result) {
  CLI::App* cmd = app.add_subcommand("cancel", "Cancel a submitted job");
  auto connection = std::make_shared<ConnectionFlags>();
  auto job_id = std::make_shared<std::string>();
  add_connection_flags(*cmd, *connection);
  cmd->add_option("--job-id", *job_id, "the job")->required();
  cmd->callback([&result, connection, job_id] {
    result = [connection, job_id] { return run_cancel(*connection, *job_id); };
  });
}

}  // namespace conveyor::cli
