#include "model/model_repository.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <set>

namespace doppel::model {

struct ModelRepository::State {
  std::map<std::string, ModelInfo, std::less<>> models;  // top-level, by DTMI
  std::unordered_map<std::string, ResolvedPtr> resolved;  // every Interface, inline included
  // Explicit element @ids -> (class name, owning top-level model).
  std::unordered_map<std::string, std::pair<std::string, std::string>> elements;
  // Interface DTMI (inline included) -> owning top-level model.
  std::unordered_map<std::string, std::string> owner;
};

ModelRepository::ModelRepository(ModelStore* store, ParseOptions options)
    : store_(store), options_(std::move(options)), state_(std::make_unique<State>()) {}

ModelRepository::~ModelRepository() = default;

ResolvedPtr ModelRepository::FindResolved(std::string_view dtmi) const {
  auto it = state_->resolved.find(std::string(dtmi));
  return it == state_->resolved.end() ? nullptr : it->second;
}

std::optional<std::string> ModelRepository::ElementClass(std::string_view dtmi) const {
  auto it = state_->elements.find(std::string(dtmi));
  if (it != state_->elements.end()) return it->second.first;
  if (state_->resolved.contains(std::string(dtmi))) return "Interface";
  return std::nullopt;
}

ModelRepository::AddResult ModelRepository::Validate(
    std::span<const SourceDocument> documents, std::vector<ModelInfo>* models,
    std::unordered_map<std::string, ResolvedPtr>* resolved) const {
  AddResult result;
  ParsedDocuments parsed = ParseDocuments(documents, options_);
  result.diagnostics = std::move(parsed.diagnostics);
  ResolvedBatch batch = ResolveBatch(parsed.interfaces, *this);
  result.diagnostics.insert(result.diagnostics.end(),
                            std::make_move_iterator(batch.diagnostics.begin()),
                            std::make_move_iterator(batch.diagnostics.end()));
  if (!result.ok()) return result;

  // Top-level owner of every Interface in the batch.
  std::unordered_map<std::string, std::string> parent_of;
  for (const auto& i : parsed.interfaces) parent_of[i->info.id] = i->parent_id;
  auto top_of = [&](const std::string& id) -> std::string {
    std::string cur = id;
    for (int guard = 0; guard < 64; ++guard) {
      auto it = parent_of.find(cur);
      if (it == parent_of.end()) {
        auto o = state_->owner.find(cur);
        return o == state_->owner.end() ? cur : o->second;
      }
      if (it->second.empty()) return cur;
      cur = it->second;
    }
    return cur;
  };
  std::map<std::string, std::set<std::string>> deps;
  for (const auto& i : parsed.interfaces) {
    std::string top = top_of(i->info.id);
    auto add_dep = [&](const std::string& d) {
      std::string t = top_of(d);
      if (t != top) deps[top].insert(t);
    };
    for (const auto& e : i->extends) add_dep(e);
    for (const auto& c : i->contents) {
      if (c->kind == ContentKind::kComponent) add_dep(c->component_schema);
    }
  }
  for (const auto& i : parsed.interfaces) {
    if (!i->parent_id.empty()) continue;
    ModelInfo m;
    m.id = i->info.id;
    m.iface = i;
    m.resolved = batch.resolved.at(m.id);
    const auto& d = deps[m.id];
    m.dependencies.assign(d.begin(), d.end());
    result.added.push_back(m.id);
    models->push_back(std::move(m));
  }
  *resolved = std::move(batch.resolved);
  return result;
}

ModelRepository::AddResult ModelRepository::Check(
    std::span<const SourceDocument> documents) const {
  std::shared_lock lock(mu_);
  std::vector<ModelInfo> models;
  std::unordered_map<std::string, ResolvedPtr> resolved;
  return Validate(documents, &models, &resolved);
}

ModelRepository::AddResult ModelRepository::Add(std::span<const SourceDocument> documents) {
  return Commit(documents, /*persist=*/true, false, std::chrono::system_clock::now());
}

ModelRepository::AddResult ModelRepository::Restore(
    std::span<const SourceDocument> documents, bool decommissioned,
    std::chrono::system_clock::time_point upload_time) {
  return Commit(documents, /*persist=*/false, decommissioned, upload_time);
}

ModelRepository::AddResult ModelRepository::Commit(std::span<const SourceDocument> documents,
                                                   bool persist, bool decommissioned,
                                                   std::chrono::system_clock::time_point time) {
  std::unique_lock lock(mu_);
  std::vector<ModelInfo> models;
  std::unordered_map<std::string, ResolvedPtr> resolved;
  AddResult result = Validate(documents, &models, &resolved);
  if (!result.ok()) {
    result.added.clear();
    return result;
  }
  for (auto& m : models) {
    m.upload_time = time;
    m.decommissioned = decommissioned;
  }
  if (persist && store_ != nullptr) {
    if (core::Status s = store_->SaveModels(models); !s.ok()) {
      result.diagnostics.push_back(
          Diagnostic{Severity::kError, s.code(), s.message(), "", "", ""});
      result.added.clear();
      return result;
    }
  }
  // Publish: owners and element index first, then the models.
  for (const auto& [id, r] : resolved) {
    // Inline Interfaces: walk parent_id up to the top-level one.
    const Interface* cur = &r->iface();
    while (!cur->parent_id.empty()) {
      auto p = resolved.find(cur->parent_id);
      if (p == resolved.end()) break;
      cur = &p->second->iface();
    }
    const std::string& top = cur->info.id;
    state_->owner[id] = top;
    ForEachExplicitId(r->iface(), [&](const std::string& eid, std::string_view cls) {
      state_->elements[eid] = {std::string(cls), top};
    });
    state_->resolved[id] = r;
  }
  for (auto& m : models) state_->models[m.id] = std::move(m);
  return result;
}

std::optional<ModelInfo> ModelRepository::Get(std::string_view id) const {
  std::shared_lock lock(mu_);
  auto it = state_->models.find(id);
  if (it == state_->models.end()) return std::nullopt;
  return it->second;
}

core::Result<std::vector<ModelInfo>> ModelRepository::List(
    std::span<const std::string> roots) const {
  std::shared_lock lock(mu_);
  std::vector<ModelInfo> out;
  if (roots.empty()) {
    out.reserve(state_->models.size());
    for (const auto& [id, m] : state_->models) out.push_back(m);
    return out;
  }
  std::set<std::string> done;
  // Depth-first, dependencies first.
  std::function<void(const std::string&)> visit = [&](const std::string& id) {
    if (!done.insert(id).second) return;
    const ModelInfo& m = state_->models.at(id);
    for (const auto& d : m.dependencies) visit(d);
    out.push_back(m);
  };
  for (const auto& r : roots) {
    if (!state_->models.contains(r)) {
      return core::Status("MODEL_NOT_FOUND", fmt::format("no model with id '{}'", r));
    }
  }
  for (const auto& r : roots) visit(r);
  return out;
}

core::Result<ResolvedPtr> ModelRepository::Resolve(std::string_view id) const {
  std::shared_lock lock(mu_);
  if (ResolvedPtr r = FindResolved(id)) return r;
  return core::Status("MODEL_NOT_FOUND", fmt::format("no model with id '{}'", id));
}

core::Status ModelRepository::Decommission(std::string_view id) {
  std::unique_lock lock(mu_);
  auto it = state_->models.find(id);
  if (it == state_->models.end()) {
    return core::Status("MODEL_NOT_FOUND", fmt::format("no model with id '{}'", id));
  }
  if (it->second.decommissioned) return {};
  if (store_ != nullptr) {
    if (core::Status s = store_->SaveDecommissioned(id); !s.ok()) return s;
  }
  it->second.decommissioned = true;
  return {};
}

void ModelRepository::SetDeleteGuard(std::function<core::Status(std::string_view)> guard) {
  std::unique_lock lock(mu_);
  delete_guard_ = std::move(guard);
}

core::Status ModelRepository::Delete(std::string_view id) {
  std::unique_lock lock(mu_);
  auto it = state_->models.find(id);
  if (it == state_->models.end()) {
    return core::Status("MODEL_NOT_FOUND", fmt::format("no model with id '{}'", id));
  }
  std::vector<std::string> users;
  for (const auto& [other, m] : state_->models) {
    if (std::find(m.dependencies.begin(), m.dependencies.end(), id) != m.dependencies.end()) {
      users.push_back(other);
    }
  }
  if (!users.empty()) {
    std::string list;
    for (std::size_t i = 0; i < users.size() && i < 5; ++i) {
      list += (i ? ", " : "") + users[i];
    }
    if (users.size() > 5) list += fmt::format(" and {} more", users.size() - 5);
    return core::Status("MODEL_IN_USE",
                        fmt::format("model '{}' cannot be deleted: {} depend(s) on it", id, list));
  }
  if (delete_guard_) {
    if (core::Status s = delete_guard_(id); !s.ok()) return s;
  }
  if (store_ != nullptr) {
    if (core::Status s = store_->DeleteModel(id); !s.ok()) return s;
  }
  std::string top(id);
  for (auto o = state_->owner.begin(); o != state_->owner.end();) {
    if (o->second == top) {
      state_->resolved.erase(o->first);
      o = state_->owner.erase(o);
    } else {
      ++o;
    }
  }
  for (auto e = state_->elements.begin(); e != state_->elements.end();) {
    e = e->second.second == top ? state_->elements.erase(e) : std::next(e);
  }
  state_->models.erase(it);
  return {};
}

std::size_t ModelRepository::size() const {
  std::shared_lock lock(mu_);
  return state_->models.size();
}

}  // namespace doppel::model
