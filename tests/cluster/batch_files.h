// Batch files for the cluster tests: test inputs written, output and error files and
// the coordinator's result streams read back keyed by custom_id.
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/model_registry.h"
#include "tests/json_lines.h"

namespace conveyor::testing {

inline constexpr const char* kModel = "smollm2-135m-instruct";

inline bool model_installed() {
  return resolve_model_path(kModel).ok();
}

// `count` completion requests "story-<prefix><i>", greedy. Their lengths differ (16 to
// 72 tokens), so that results finish over many steps rather than all in the last one:
// a test can act while some results exist and others do not yet.
inline void write_story_input(const std::filesystem::path& path, int count,
                              const std::string& prefix = "") {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (int i = 0; i < count; ++i) {
    const nlohmann::json line = {
        {"custom_id", "story-" + prefix + std::to_string(i)},
        {"method", "POST"},
        {"url", "/v1/completions"},
        {"body",
         {{"model", kModel},
          {"prompt", "Story number " + std::to_string(i) + ": Once upon a time"},
          {"max_tokens", 16 + (i % 8) * 8},
          {"temperature", 0}}}};
    out << line.dump() << '\n';
  }
  REQUIRE_MESSAGE(out.good(), "cannot write ", path.string());
}

// What a result line says, without what differs between runs (ids, timestamps): the
// choices, texts and finish reasons included.
inline std::string answer_of(const nlohmann::json& line) {
  return line.at("response").at("body").at("choices").dump();
}

// custom_id -> answer of each output line; a custom_id seen twice fails the test.
inline std::map<std::string, std::string> answers_by_custom_id(
    const std::filesystem::path& output) {
  std::map<std::string, std::string> answers;
  for (const nlohmann::json& line : read_json_lines(output)) {
    const std::string id = line.at("custom_id").get<std::string>();
    CHECK_MESSAGE(answers.emplace(id, answer_of(line)).second, "custom_id ", id, " twice in ",
                  output.string());
  }
  return answers;
}

// custom_id -> how many lines of `file` carry it.
inline std::map<std::string, int> custom_id_counts(const std::filesystem::path& file) {
  std::map<std::string, int> counts;
  for (const nlohmann::json& line : read_json_lines(file))
    ++counts[line.at("custom_id").get<std::string>()];
  return counts;
}

inline std::set<std::string> custom_ids_of(const std::filesystem::path& file) {
  std::set<std::string> ids;
  for (const auto& [id, count] : custom_id_counts(file))
    ids.insert(id);
  return ids;
}

// The custom_ids of a coordinator's result stream (journal/results/<job>.jsonl), each
// record 'R' or 'E' followed by the JSON line, in order, repeats included.
inline std::vector<std::string> result_stream_custom_ids(const std::filesystem::path& stream) {
  std::vector<std::string> ids;
  std::ifstream in(stream);
  std::string record;
  while (std::getline(in, record)) {
    if (record.empty()) continue;
    REQUIRE_MESSAGE((record[0] == 'R' || record[0] == 'E'), "bad record in ", stream.string());
    ids.push_back(nlohmann::json::parse(record.substr(1)).at("custom_id").get<std::string>());
  }
  return ids;
}

inline std::size_t line_count(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::size_t n = 0;
  std::string line;
  while (std::getline(in, line))
    n += line.empty() ? 0 : 1;
  return n;
}

}  // namespace conveyor::testing
