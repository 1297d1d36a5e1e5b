// The per-job request counts the coordinator exports (conveyor_job_requests): they
// follow the results as they are written, count error lines as failed, and a
// released job leaves the list.
#include <doctest/doctest.h>

#include <algorithm>

#include "tests/jobs/job_manager_harness.h"

using namespace conveyor;
using namespace conveyor::testing;

namespace {

JobProgress progress_of(const JobManager& manager, const std::string& job_id) {
  const std::vector<JobProgress> jobs = manager.progress();
  const auto it = std::find_if(jobs.begin(), jobs.end(),
                               [&](const JobProgress& p) { return p.job_id == job_id; });
  REQUIRE(it != jobs.end());
  return *it;
}

}  // namespace

TEST_CASE("job progress: totals, completed and failed per job; a released job is gone") {
  JobManagerHarness h;
  std::vector<std::string> lines = completion_lines("a", 3);
  lines.push_back("not json");  // an error line: failed at once
  REQUIRE(h.manager().submit(chunk_of("alpha", 0, true, lines)).outcome ==
          SubmitOutcome::kAccepted);
  REQUIRE(h.manager().submit(chunk_of("beta", 0, false, completion_lines("b", 2))).outcome ==
          SubmitOutcome::kAccepted);
  const std::vector<EngineRequest> taken = h.take(5);

  JobProgress alpha = progress_of(h.manager(), "alpha");
  CHECK(alpha.total == 4);
  CHECK(alpha.completed + alpha.failed <= 1);

  // The queue holds alpha's three requests first, then beta's.
  for (std::size_t i = 0; i < 3; ++i)
    h.manager().complete(answer(taken[i]));
  h.wait_for_records("alpha", 4);
  alpha = progress_of(h.manager(), "alpha");
  CHECK(alpha.total == 4);
  CHECK(alpha.completed == 3);
  CHECK(alpha.failed == 1);
  CHECK(alpha.state == "finished");
  const JobProgress beta = progress_of(h.manager(), "beta");
  CHECK(beta.total == 2);
  CHECK(beta.completed == 0);
  CHECK(beta.state != "finished");

  REQUIRE(h.manager().release("alpha").ok());
  const std::vector<JobProgress> left = h.manager().progress();
  REQUIRE(left.size() == 1);
  CHECK(left[0].job_id == "beta");
}
