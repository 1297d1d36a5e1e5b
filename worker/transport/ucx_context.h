// The process's UCP context: one per process, shared by every UCX channel (each has
// its own worker). Held through shared_ptr so it lives while any channel does and is
// released when the last one goes.
#pragma once
#ifdef CONVEYOR_WITH_UCX

#include <ucp/api/ucp.h>

#include <memory>
#include <string>

#include "common/status.h"

namespace conveyor {

class UcxContext {
 public:
  // The shared context, created on first use with the tag-matching and wake-up
  // features. Configuration comes from the UCX_* environment variables as UCX reads
  // them (UCX_TLS selects transports; unset lets UCX use all it finds); no defaults
  // are imposed, as TCP over loopback or the host's interfaces works where nothing
  // else does. With the wake-up feature (sleeping instead of spinning while a stage
  // waits), UCX 1.13 selects no shared-memory lanes even when UCX_TLS allows them, so
  // a link between two processes of one host runs over TCP.
  static Expected<std::shared_ptr<UcxContext>> shared();

  ~UcxContext();
  UcxContext(const UcxContext&) = delete;
  UcxContext& operator=(const UcxContext&) = delete;

  ucp_context_h handle() const { return context_; }
  // The UCX build can send CUDA device memory (UCS_MEMORY_TYPE_CUDA is among the
  // context's memory types).
  bool cuda_memory() const { return cuda_memory_; }
  // UCX_TLS as configured, "(all)" when unset.
  const std::string& configured_tls() const { return configured_tls_; }
  // "UCX 1.13.1, UCX_TLS=..., CUDA memory: yes|no"
  std::string summary() const;

 private:
  explicit UcxContext(ucp_context_h context);

  ucp_context_h context_;
  bool cuda_memory_ = false;
  std::string configured_tls_;
};

}  // namespace conveyor

#endif  // CONVEYOR_WITH_UCX
