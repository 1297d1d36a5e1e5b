#ifdef CONVEYOR_WITH_UCX
#include "worker/transport/ucx_context.h"

#include <cstdlib>
#include <mutex>

#include "worker/transport/ucx_status.h"

namespace conveyor {

Expected<std::shared_ptr<UcxContext>> UcxContext::shared() {
  static std::mutex mutex;
  static std::weak_ptr<UcxContext> current;
  std::lock_guard lock(mutex);
  if (auto existing = current.lock()) return existing;

  ucp_config_t* config = nullptr;
  if (Status s = ucx_status(ucp_config_read(nullptr, nullptr, &config), "ucp_config_read");
      !s.ok()) {
    return s;
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED;
  params.features = UCP_FEATURE_TAG | UCP_FEATURE_WAKEUP;
  // Workers of this context are driven from different threads (one per channel).
  params.mt_workers_shared = 1;
  ucp_context_h context = nullptr;
  const ucs_status_t status = ucp_init(&params, config, &context);
  ucp_config_release(config);
  if (Status s = ucx_status(status, "ucp_init"); !s.ok()) return s;

  std::shared_ptr<UcxContext> made(new UcxContext(context));
  current = made;
  return made;
}

UcxContext::UcxContext(ucp_context_h context) : context_(context) {
  ucp_context_attr_t attr{};
  attr.field_mask = UCP_ATTR_FIELD_MEMORY_TYPES;
  if (ucp_context_query(context_, &attr) == UCS_OK) {
    cuda_memory_ = (attr.memory_types & UCS_BIT(UCS_MEMORY_TYPE_CUDA)) != 0;
  }
  const char* tls = std::getenv("UCX_TLS");
  configured_tls_ = tls != nullptr ? tls : "(all)";
}

UcxContext::~UcxContext() {
  ucp_cleanup(context_);
}

std::string UcxContext::summary() const {
  return std::string("UCX ") + ucp_get_version_string() + ", UCX_TLS=" + configured_tls_ +
         ", CUDA memory: " + (cuda_memory_ ? "yes" : "no");
}

}  // namespace conveyor
#endif  // CONVEYOR_WITH_UCX
