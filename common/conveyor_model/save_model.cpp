#include "common/conveyor_model/save_model.h"

#include "common/conveyor_model/json_fields.h"
#include "common/conveyor_model/model_writer.h"
#include "common/conveyor_model/tensor_role.h"

namespace conveyor {

ModelManifest manifest_of(const ModelSource& source) {
  ModelManifest m;
  m.spec = source.spec();
  m.tokenizer = source.tokenizer();
  if (!m.tokenizer) m.tokenizer_note = source.tokenizer_status().message();
  for (const TensorRef& t : source.tensors()) {
    TensorScheme s = make_tensor_scheme(t.name, t.dtype, t.shape, tensor_role(t.name));
    s.notes = {{"kept", "as stored in the source"}};
    m.tensors.push_back(std::move(s));
  }
  m.producer = {{"source", {{"path", bytes_to_json(source.path())}, {"format", source.format()}}}};
  return m;
}

void save_conveyor_model(const ModelSource& source, const std::string& dir,
                         const nlohmann::json& producer) {
  ModelManifest manifest = manifest_of(source);
  if (!producer.empty()) manifest.producer = producer;
  ConveyorModelWriter writer = ConveyorModelWriter::create(dir, std::move(manifest));
  for (const TensorRef& t : source.tensors())
    writer.write(t);
  writer.finish();
}

}  // namespace conveyor
