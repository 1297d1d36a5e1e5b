// The pipeline stages' metrics (conveyor_stage_*), for `conveyor worker` (its one
// stage) and `conveyor run`/`bench` (the in-process stages, labelled stage="0", "1",
// ...): steps, time computing and waiting for the previous stage's activations, the
// recent bubble ratio, and activation bytes sent by transport.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/collectable.h>

#include "worker/stage_actor.h"

namespace conveyor::cli {

// Each stage's labels and statistics, read at scrape time (on the server's threads).
using StageStatsFn =
    std::function<std::vector<std::pair<std::map<std::string, std::string>, StageStats>>()>;

std::shared_ptr<prometheus::Collectable> stage_metrics(StageStatsFn stages);

}  // namespace conveyor::cli
