// The structured logs: JSON lines that parse and carry their fields, the text format,
// level filtering, escaping and the configuration from the environment.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "common/log/escape.h"
#include "common/log/log.h"

namespace conveyor::log {
namespace {

// Sends every line to a string for the test's life, at `format` and `level`; restores
// stderr, JSON, info and no process fields after.
class CapturedLogs {
 public:
  explicit CapturedLogs(Format format = Format::kJson, Level level = Level::kInfo) {
    LogConfig config;
    config.format = format;
    config.level = level;
    configure(config);
    clear_process_fields();
    set_writer([this](std::string_view line) { text_.append(line); });
  }
  ~CapturedLogs() {
    set_writer(nullptr);
    configure(LogConfig{});
    clear_process_fields();
  }
  CapturedLogs(const CapturedLogs&) = delete;
  CapturedLogs& operator=(const CapturedLogs&) = delete;

  const std::string& text() const { return text_; }
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    std::istringstream in(text_);
    for (std::string line; std::getline(in, line);)
      out.push_back(line);
    return out;
  }
  std::vector<nlohmann::json> json() const {
    std::vector<nlohmann::json> out;
    for (const std::string& line : lines())
      out.push_back(nlohmann::json::parse(line));
    return out;
  }

 private:
  std::string text_;
};

bool is_iso8601_utc_ms(const std::string& ts) {
  // 2026-11-26T03:40:00.123Z
  if (ts.size() != 24 || ts[4] != '-' || ts[7] != '-' || ts[10] != 'T' || ts[13] != ':' ||
      ts[16] != ':' || ts[19] != '.' || ts[23] != 'Z')
    return false;
  for (std::size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22})
    if (ts[i] < '0' || ts[i] > '9') return false;
  return true;
}

TEST_CASE("a JSON line carries time, level, logger, message and the call's fields") {
  CapturedLogs logs;
  info(conveyor::logger("cluster"), "replica 3 live: w2 [0-14] -> w1 [15-29]",
       {{"epoch", 3}, {"layout", "w2 [0-14] -> w1 [15-29]"}});
  const std::vector<nlohmann::json> lines = logs.json();
  REQUIRE(lines.size() == 1);
  const nlohmann::json& line = lines[0];
  CHECK(is_iso8601_utc_ms(line.at("ts").get<std::string>()));
  CHECK(line.at("level") == "info");
  CHECK(line.at("logger") == "cluster");
  CHECK(line.at("msg") == "replica 3 live: w2 [0-14] -> w1 [15-29]");
  CHECK(line.at("epoch") == "3");
  CHECK(line.at("layout") == "w2 [0-14] -> w1 [15-29]");
  // One object per line: the line is the whole record.
  CHECK(logs.text().back() == '\n');
  CHECK(logs.text().find('\n') == logs.text().size() - 1);
}

TEST_CASE("process fields go on every line, of every logger, before the call's") {
  CapturedLogs logs;
  set_process_field("worker", "w1");
  set_process_field("incarnation", "00000000000000ff");
  info(conveyor::logger("worker"), "registered");
  warn(conveyor::logger("transport"), "link lost", {{"epoch", 7}});
  set_process_field("worker", "w2");  // replaces, does not add
  conveyor::logger("engine").error("plain spdlog call");
  const std::vector<nlohmann::json> lines = logs.json();
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].at("worker") == "w1");
  CHECK(lines[0].at("incarnation") == "00000000000000ff");
  CHECK(lines[1].at("worker") == "w1");
  CHECK(lines[1].at("logger") == "transport");
  CHECK(lines[1].at("level") == "warn");
  CHECK(lines[1].at("epoch") == "7");
  CHECK(lines[2].at("worker") == "w2");
  CHECK(lines[2].at("level") == "error");
  CHECK(lines[2].at("msg") == "plain spdlog call");
  CHECK_FALSE(lines[2].contains("epoch"));  // the call's fields end with the call
  // Keys in order: the fixed ones, the process's, the call's.
  const std::string first = logs.lines()[1];
  CHECK(first.find("\"msg\"") < first.find("\"worker\""));
  CHECK(first.find("\"incarnation\"") < first.find("\"epoch\""));
}

TEST_CASE("the same name is the same logger") {
  CHECK(&conveyor::logger("jobs") == &conveyor::logger("jobs"));
  CHECK(&conveyor::logger("jobs") != &conveyor::logger("coordinator"));
  CHECK(conveyor::logger("jobs").name() == "jobs");
}

TEST_CASE("JSON escaping: quotes, backslashes, newlines, control characters, UTF-8") {
  CapturedLogs logs;
  const std::string nasty =
      "say \"hi\" C:\\path\nnext\tline\r\x01\x1f\x7f caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80";
  info(conveyor::logger("coordinator"), nasty, {{"field \"key\"", nasty}});
  REQUIRE(logs.lines().size() == 1);  // the newline in the message did not split the line
  const nlohmann::json line = logs.json().at(0);
  CHECK(line.at("msg") == nasty);
  CHECK(line.at("field \"key\"") == nasty);
  const std::string raw = logs.lines()[0];
  CHECK(raw.find(R"(say \"hi\" C:\\path\nnext\tline\r\u0001\u001f\u007f)") != std::string::npos);
  CHECK(raw.find("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") != std::string::npos);  // as is
}

TEST_CASE("bytes that are not UTF-8 become U+FFFD, so the line still parses") {
  const std::string replacement = "\xEF\xBF\xBD";
  const auto escaped = [](std::string_view text) {
    std::string out;
    append_json_escaped(out, text);
    return out;
  };
  CHECK(escaped("a\xFF"
                "b") == "a" + replacement + "b");
  CHECK(escaped("\xC3") == replacement);                                      // truncated
  CHECK(escaped("\xC0\xAF") == replacement + replacement);                    // overlong
  CHECK(escaped("\xED\xA0\x80") == replacement + replacement + replacement);  // surrogate
  CHECK(escaped("\xF4\x90\x80\x80").find("\xF4") == std::string::npos);       // past U+10FFFF
  CapturedLogs logs;
  info(conveyor::logger("coordinator"), "bad \xFF\xFE bytes");
  CHECK(logs.json().at(0).at("msg") == "bad " + replacement + replacement + " bytes");
}

TEST_CASE("text format: time, upper-case level, [logger], message, key=value") {
  CapturedLogs logs(Format::kText);
  set_process_field("worker", "w1");
  info(conveyor::logger("worker"), "epoch 2: stage 1/2",
       {{"epoch", 2}, {"address", "10.0.0.2:4000"}, {"why", "a b=c \"d\""}, {"empty", ""}});
  const std::vector<std::string> lines = logs.lines();
  REQUIRE(lines.size() == 1);
  const std::string& line = lines[0];
  CHECK(is_iso8601_utc_ms(line.substr(0, 24)));
  CHECK(line.substr(24) ==
        " INFO [worker] epoch 2: stage 1/2 worker=w1 epoch=2 address=10.0.0.2:4000 "
        "why=\"a b=c \\\"d\\\"\" empty=\"\"");
}

TEST_CASE("text format keeps a message on one line") {
  CapturedLogs logs(Format::kText, Level::kDebug);
  warn(conveyor::logger("cluster"), "plan: replica 0\nidle: w3");
  debug(conveyor::logger("cluster"), "caf\xC3\xA9");
  REQUIRE(logs.lines().size() == 2);
  CHECK(logs.lines()[0].find(" WARN [cluster] plan: replica 0\\nidle: w3") != std::string::npos);
  CHECK(logs.lines()[1].find(" DEBUG [cluster] caf\xC3\xA9") != std::string::npos);
}

TEST_CASE("level filtering: lines below the configured level are not written") {
  CapturedLogs logs(Format::kJson, Level::kWarn);
  spdlog::logger& out = conveyor::logger("coordinator");
  debug(out, "d");
  info(out, "i");
  warn(out, "w");
  error(out, "e");
  out.info("plain info");
  out.critical("plain critical");
  const std::vector<nlohmann::json> lines = logs.json();
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].at("msg") == "w");
  CHECK(lines[1].at("msg") == "e");
  CHECK(lines[2].at("level") == "error");  // spdlog's critical counts as error

  // A logger created after configure() gets the level too; debug lets all through.
  CHECK_FALSE(conveyor::logger("created-later").should_log(spdlog::level::info));
  configure({Format::kJson, Level::kDebug, {}});
  debug(conveyor::logger("created-later"), "now seen");
  CHECK(logs.json().back().at("msg") == "now seen");
}

TEST_CASE("configuration from the environment") {
  CHECK(LogConfig::from(nullptr, nullptr, false).format == Format::kJson);
  CHECK(LogConfig::from(nullptr, nullptr, true).format == Format::kText);
  CHECK(LogConfig::from(nullptr, nullptr, true).level == Level::kInfo);
  CHECK(LogConfig::from("json", nullptr, true).format == Format::kJson);
  CHECK(LogConfig::from("text", nullptr, false).format == Format::kText);
  CHECK(LogConfig::from(nullptr, "debug", false).level == Level::kDebug);
  CHECK(LogConfig::from(nullptr, "warn", false).level == Level::kWarn);
  CHECK(LogConfig::from(nullptr, "error", false).level == Level::kError);
  CHECK(LogConfig::from("", "", false).problems.empty());
  const LogConfig bad = LogConfig::from("xml", "loud", true);
  CHECK(bad.format == Format::kText);  // the default stays
  CHECK(bad.level == Level::kInfo);
  CHECK(bad.problems.find("CONVEYOR_LOG_FORMAT=xml") != std::string::npos);
  CHECK(bad.problems.find("CONVEYOR_LOG_LEVEL=loud") != std::string::npos);
}

}  // namespace
}  // namespace conveyor::log
