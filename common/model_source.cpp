#include "common/model_source.h"

namespace conveyor {

const TensorRef* ModelSource::find(const std::string& name) const {
  for (const auto& t : tensors()) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const TensorRef& ModelSource::require(const std::string& name) const {
  const TensorRef* t = find(name);
  if (t == nullptr) fail(ErrorCode::kNotFound, "tensor " + name + " not found in " + path());
  return *t;
}

}  // namespace conveyor
