#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "coordinator/progress.h"

using namespace conveyor;

namespace {

ProgressSnapshot snapshot(std::int64_t done, std::int64_t failed, std::int64_t total,
                          std::int64_t tokens, double elapsed) {
  ProgressSnapshot s;
  s.done = done;
  s.failed = failed;
  s.total = total;
  s.generated_tokens = tokens;
  s.elapsed_seconds = elapsed;
  return s;
}

// A temporary file standing in for stderr; its whole content on demand.
class CapturedStream {
 public:
  CapturedStream() : file_(std::tmpfile()) { REQUIRE(file_ != nullptr); }
  ~CapturedStream() { std::fclose(file_); }
  CapturedStream(const CapturedStream&) = delete;
  CapturedStream& operator=(const CapturedStream&) = delete;

  std::FILE* file() { return file_; }
  std::string text() {
    std::fflush(file_);
    std::rewind(file_);
    std::string content;
    char buffer[4096];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, file_)) > 0)
      content.append(buffer, n);
    std::fseek(file_, 0, SEEK_END);
    return content;
  }
  std::vector<std::string> lines() {
    std::vector<std::string> result;
    const std::string content = text();
    std::size_t start = 0;
    for (std::size_t end; (end = content.find('\n', start)) != std::string::npos; start = end + 1) {
      result.push_back(content.substr(start, end - start));
    }
    CHECK(start == content.size());  // every line ends with a newline
    return result;
  }

 private:
  std::FILE* file_;
};

}  // namespace

TEST_CASE("rates and the ETA come from finished requests over elapsed time") {
  const ProgressSnapshot s = snapshot(12, 1, 50, 1532, 10);
  CHECK(tokens_per_second(s) == doctest::Approx(153.2));
  // 13 finished in 10 s: 1.3 per second, 37 left.
  REQUIRE(estimate_remaining_seconds(s).has_value());
  CHECK(*estimate_remaining_seconds(s) == doctest::Approx(37 / 1.3));

  CHECK(!estimate_remaining_seconds(snapshot(12, 1, -1, 0, 10)));  // total unknown
  CHECK(!estimate_remaining_seconds(snapshot(0, 0, 50, 0, 10)));   // nothing finished yet
  CHECK(!estimate_remaining_seconds(snapshot(3, 0, 50, 0, 0)));    // no time has passed
  CHECK(*estimate_remaining_seconds(snapshot(40, 10, 50, 0, 10)) == 0);
  CHECK(*estimate_remaining_seconds(snapshot(0, 0, 0, 0, 0)) == 0);  // an empty job
  CHECK(tokens_per_second(snapshot(0, 0, 5, 100, 0)) == 0);
}

TEST_CASE("durations") {
  CHECK(format_duration(0) == "0:00");
  CHECK(format_duration(42.4) == "0:42");
  CHECK(format_duration(59.6) == "1:00");
  CHECK(format_duration(725) == "12:05");
  CHECK(format_duration(3723) == "1:02:03");
  CHECK(format_duration(100 * 3600) == "100:00:00");
  CHECK(format_duration(-5) == "0:00");
  CHECK(format_duration(0.0 / 0.0) == "0:00");
}

TEST_CASE("the bar") {
  CHECK(format_progress_bar(snapshot(12, 1, 50, 1532, 10), 10) ==
        "[##........] 12/50 done, 1 failed | 153.2 tok/s | ETA 0:28");
  CHECK(format_progress_bar(snapshot(25, 0, 50, 0, 5), 10) ==
        "[#####.....] 25/50 done, 0 failed | 0.0 tok/s | ETA 0:05");
  CHECK(format_progress_bar(snapshot(48, 2, 50, 5000, 100), 10) ==
        "[##########] 48/50 done, 2 failed | 50.0 tok/s | ETA 0:00");
  // The total is not known while the input is read: an empty bar and no ETA.
  CHECK(format_progress_bar(snapshot(7, 0, -1, 70, 1), 4) ==
        "[....] 7/? done, 0 failed | 70.0 tok/s | ETA ?");
  CHECK(format_progress_bar(snapshot(0, 0, 10, 0, 0), 4) ==
        "[....] 0/10 done, 0 failed | 0.0 tok/s | ETA ?");
  CHECK(format_progress_bar(snapshot(0, 0, 0, 0, 0), 4) ==
        "[####] 0/0 done, 0 failed | 0.0 tok/s | ETA 0:00");
  CHECK(format_progress_bar(snapshot(1, 0, 2, 0, 1), 0) ==
        "1/2 done, 0 failed | 0.0 tok/s | ETA 0:01");
  // More finished than the total (a total that was an estimate) keeps the bar in its box.
  CHECK(format_progress_bar(snapshot(9, 0, 5, 0, 1), 4).rfind("[####] 9/5 done", 0) == 0);
}

TEST_CASE("JSON lines: keys in order, nulls while unknown") {
  CHECK(format_progress_json(snapshot(12, 1, 50, 1532, 10)) ==
        R"({"event":"progress","done":12,"failed":1,"total":50,"generated_tokens":1532,)"
        R"("tokens_per_second":153.2,"elapsed_seconds":10.0,"eta_seconds":28.462})");
  CHECK(format_progress_json(snapshot(3, 0, -1, 9, 0.5)) ==
        R"({"event":"progress","done":3,"failed":0,"total":null,"generated_tokens":9,)"
        R"("tokens_per_second":18.0,"elapsed_seconds":0.5,"eta_seconds":null})");
  const auto last = nlohmann::json::parse(format_progress_json(snapshot(5, 0, 5, 50, 2), true));
  CHECK(last["final"] == true);
  CHECK(last["eta_seconds"] == 0.0);
  CHECK(!nlohmann::json::parse(format_progress_json(snapshot(5, 0, 5, 50, 2))).contains("final"));
}

TEST_CASE("kAuto writes JSON lines to a file that is not a terminal") {
  CapturedStream out;
  ProgressReporter reporter(ProgressMode::kAuto, 0, out.file());
  CHECK(reporter.mode() == ProgressMode::kJsonl);
}

TEST_CASE("interval 0: every update writes; finish writes a final line, then nothing more") {
  CapturedStream out;
  ProgressReporter reporter(ProgressMode::kJsonl, 0, out.file());
  for (int i = 1; i <= 3; ++i)
    reporter.update(snapshot(i, 0, 5, 10 * i, i));
  reporter.finish(snapshot(5, 0, 5, 50, 5));
  reporter.update(snapshot(6, 0, 5, 60, 6));
  reporter.finish(snapshot(6, 0, 5, 60, 6));

  const std::vector<std::string> lines = out.lines();
  REQUIRE(lines.size() == 4);
  for (int i = 0; i < 3; ++i) {
    const auto line = nlohmann::json::parse(lines[static_cast<std::size_t>(i)]);
    CHECK(line["done"] == i + 1);
    CHECK(!line.contains("final"));
  }
  const auto last = nlohmann::json::parse(lines[3]);
  CHECK(last["done"] == 5);
  CHECK(last["final"] == true);
}

TEST_CASE("a long interval writes the first update, then only the final line") {
  CapturedStream out;
  ProgressReporter reporter(ProgressMode::kJsonl, 3600, out.file());
  for (int i = 1; i <= 20; ++i)
    reporter.update(snapshot(i, 0, 100, 0, i));
  reporter.finish(snapshot(100, 0, 100, 0, 100));
  const std::vector<std::string> lines = out.lines();
  REQUIRE(lines.size() == 2);
  CHECK(nlohmann::json::parse(lines[0])["done"] == 1);
  CHECK(nlohmann::json::parse(lines[1])["done"] == 100);
}

TEST_CASE("the bar redraws in place and ends with a newline") {
  CapturedStream out;
  ProgressReporter reporter(ProgressMode::kBar, 0, out.file());
  reporter.update(snapshot(1, 0, -1, 123456, 1));  // a long line: 123456.0 tok/s
  reporter.update(snapshot(2, 0, 4, 0, 1));
  reporter.finish(snapshot(4, 0, 4, 0, 2));

  const std::string text = out.text();
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  CHECK(text.find('\n') == text.size() - 1);  // only the final line ends the bar
  // Three draws, each from the start of the line.
  std::vector<std::string> draws;
  for (std::size_t start = 0; (start = text.find('\r', start)) != std::string::npos; ++start) {
    const std::size_t end = text.find_first_of("\r\n", start + 1);
    draws.push_back(text.substr(start + 1, end - start - 1));
  }
  REQUIRE(draws.size() == 3);
  CHECK(draws[0].find("1/? done") != std::string::npos);
  // The shorter second draw is padded with blanks over the end of the first.
  CHECK(draws[1].size() == draws[0].size());
  CHECK(draws[1].find("2/4 done") != std::string::npos);
  CHECK(draws[1].back() == ' ');
  CHECK(draws[2].find("4/4 done") != std::string::npos);
}

TEST_CASE("the bar redraws at most about ten times a second, whatever the interval") {
  CapturedStream out;
  ProgressReporter reporter(ProgressMode::kBar, 3600, out.file());
  for (int i = 0; i < 50; ++i)
    reporter.update(snapshot(i, 0, 50, 0, 1));
  const std::string text = out.text();
  // The loop takes far less than 0.1 s: one draw (two only on a very slow machine).
  const auto draws = std::count(text.begin(), text.end(), '\r');
  CHECK(draws >= 1);
  CHECK(draws <= 2);
}

TEST_CASE("kOff writes nothing, not even the final line") {
  CapturedStream out;
  ProgressReporter reporter(ProgressMode::kOff, 0, out.file());
  reporter.update(snapshot(1, 0, 2, 0, 1));
  reporter.finish(snapshot(2, 0, 2, 0, 2));
  CHECK(out.text().empty());
  CHECK(reporter.mode() == ProgressMode::kOff);
}
