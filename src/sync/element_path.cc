#include "sync/element_path.h"

namespace doppel::sync {

const model::Content* FindElement(const model::ResolvedInterface& iface, std::string_view path) {
  const model::ResolvedInterface* level = &iface;
  std::size_t slash = path.find('/');
  if (slash != std::string_view::npos) {
    level = iface.ComponentInterface(path.substr(0, slash));
    if (level == nullptr) return nullptr;
    path = path.substr(slash + 1);
    if (path.find('/') != std::string_view::npos) return nullptr;
  }
  const model::ResolvedContent* rc = level->Find(path);
  if (rc == nullptr) return nullptr;
  const model::Content* c = rc->content;
  return c->kind == model::ContentKind::kProperty || c->kind == model::ContentKind::kTelemetry
             ? c
             : nullptr;
}

}  // namespace doppel::sync
