#include "cli/model_loading.h"

#include "common/loader/open_model.h"
#include "common/model_registry.h"

namespace conveyor::cli {

std::unique_ptr<ModelSource> open_model_or_throw(const std::string& model) {
  Expected<std::string> path = resolve_model_path(model);
  if (!path.ok()) throw Error(path.status().code(), path.status().message());
  Expected<std::unique_ptr<ModelSource>> source = open_model_source(*path);
  if (!source.ok()) throw Error(source.status().code(), source.status().message());
  return std::move(source).value();
}

}  // namespace conveyor::cli
