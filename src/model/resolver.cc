#include "model/resolver.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_set>

namespace doppel::model {

const ResolvedContent* ResolvedInterface::Find(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &contents_[it->second];
}

const ResolvedInterface* ResolvedInterface::ComponentInterface(std::string_view name) const {
  auto it = components_.find(name);
  return it == components_.end() ? nullptr : it->second.get();
}

bool ResolvedInterface::IsA(std::string_view dtmi) const {
  return id() == dtmi ||
         std::find(extends_closure_.begin(), extends_closure_.end(), dtmi) !=
             extends_closure_.end();
}

namespace {

constexpr int kMaxExtendsDepth = 10;
constexpr std::size_t kMaxHierarchyInterfaces = 1024;  // v3: values of extends, transitively
constexpr std::size_t kMaxV2Contents = 300;
constexpr std::size_t kMaxV3Elements = 100000;

enum class Edge { kRoot, kExtends, kComponent };

// "an Object", "a Property".
std::string Article(const std::string& cls) {
  bool vowel = !cls.empty() && std::string_view("AEIOU").find(cls[0]) != std::string_view::npos;
  return (vowel ? "an " : "a ") + cls;
}

// Number of DTDL elements in an Interface's own definition, for the v3 100,000-element limit.
std::size_t CountElements(const Interface& iface) {
  std::size_t n = iface.contents.size() + iface.schema_pool.size();
  for (const auto& c : iface.contents) {
    n += c->properties.size() + (c->request ? 1 : 0) + (c->response ? 1 : 0);
  }
  for (const auto& s : iface.schema_pool) {
    n += s->fields.size() + s->enum_values.size() + (s->kind == SchemaKind::kMap ? 2 : 0);
  }
  return n;
}

}  // namespace

class BatchResolver {
 public:
  BatchResolver(const std::vector<std::shared_ptr<Interface>>& batch, const ResolutionBase& base,
                ResolvedBatch* out)
      : base_(base), out_(out) {
    for (const auto& i : batch) {
      batch_by_id_.emplace(i->info.id, i);
      order_.push_back(i.get());
      ForEachExplicitId(*i, [&](const std::string& id, std::string_view cls) {
        batch_classes_.emplace(id, std::string(cls));
      });
    }
  }

  void Run() {
    for (const Interface* i : order_) CheckIdsAgainstBase(*i);
    for (const Interface* i : order_) Resolve(i->info.id, Edge::kRoot, nullptr, "");
  }

 private:
  void Error(const Interface& at, const std::string& code, const std::string& pointer,
             std::string message, Severity sev = Severity::kError) {
    out_->diagnostics.push_back(
        Diagnostic{sev, code, std::move(message), at.document, pointer, at.info.id});
  }

  bool Exists(const std::string& id) const {
    return batch_by_id_.contains(id) || base_.FindResolved(id) != nullptr;
  }

  std::optional<std::string> ClassOf(const std::string& id) const {
    if (batch_by_id_.contains(id)) return "Interface";
    if (auto it = batch_classes_.find(id); it != batch_classes_.end()) return it->second;
    return base_.ElementClass(id);
  }

  void CheckIdsAgainstBase(const Interface& iface) {
    ForEachExplicitId(iface, [&](const std::string& id, std::string_view) {
      if (base_.ElementClass(id)) {
        Error(iface, "DUPLICATE_ID", iface.info.pointer,
              fmt::format("'{}' is already defined by a model in the repository", id));
      }
    });
  }

  // Resolves `id` (batch first, then base). `from` is the Interface that references it through
  // an edge of kind `edge`, written at `pointer`; used for cycle reports.
  ResolvedPtr Resolve(const std::string& id, Edge edge, const Interface* from,
                      const std::string& pointer) {
    auto bit = batch_by_id_.find(id);
    if (bit == batch_by_id_.end()) return base_.FindResolved(id);
    if (auto it = out_->resolved.find(id); it != out_->resolved.end()) return it->second;
    if (failed_.contains(id)) return nullptr;
    auto on_stack = std::find_if(stack_.begin(), stack_.end(),
                                 [&](const auto& e) { return e.first == id; });
    if (on_stack != stack_.end()) {
      ReportCycle(on_stack, edge, *from, pointer);
      return nullptr;
    }
    stack_.emplace_back(id, edge);
    ResolvedPtr r = Build(*bit->second);
    stack_.pop_back();
    if (r) {
      out_->resolved.emplace(id, r);
    } else {
      failed_.insert(id);
    }
    return r;
  }

  void ReportCycle(std::vector<std::pair<std::string, Edge>>::iterator start, Edge closing,
                   const Interface& from, const std::string& pointer) {
    bool through_component = closing == Edge::kComponent;
    std::string path;
    for (auto it = start; it != stack_.end(); ++it) {
      if (it != start && it->second == Edge::kComponent) through_component = true;
      path += it->first;
      path += " -> ";
      failed_.insert(it->first);
    }
    path += start->first;
    if (through_component) {
      Error(from, "COMPONENT_CYCLE", pointer,
            fmt::format("Interface {} contains itself through its Components: {}", start->first,
                        path));
    } else {
      Error(from, "EXTENDS_CYCLE", pointer,
            fmt::format("Interface {} extends itself: {}", start->first, path));
    }
  }

  // Explains why `ref` (written at `pointer` in `at`) could not be used as an Interface.
  void ReportMissingInterface(const Interface& at, const std::string& ref,
                              const std::string& pointer, std::string_view role) {
    if (failed_.contains(ref)) return;  // already reported where it failed
    if (batch_by_id_.contains(ref) || base_.FindResolved(ref)) return;
    if (auto cls = ClassOf(ref)) {
      bool extends = role == "extends";
      Error(at, extends ? "EXTENDS_NOT_INTERFACE" : "REFERENCE_WRONG_KIND", pointer,
            fmt::format("{} names {}, which is {}, not an Interface", role, ref, Article(*cls)));
      return;
    }
    Error(at, "UNRESOLVED_REFERENCE", pointer,
          fmt::format("{} names {}, which is neither in this batch nor in the repository", role,
                      ref));
  }

  ResolvedPtr Build(const Interface& iface) {
    // Shared ownership: the batch vector owns the Interface; the resolved view shares it.
    auto r = std::make_shared<ResolvedInterface>();
    r->iface_ = batch_by_id_.at(iface.info.id);
    bool ok = true;
    const bool v2 = iface.version == DtdlVersion::kV2;

    // extends
    for (std::size_t i = 0; i < iface.extends.size(); ++i) {
      const std::string& e = iface.extends[i];
      const std::string& p = iface.extends_pointers[i];
      ResolvedPtr parent = Resolve(e, Edge::kExtends, &iface, p);
      if (!parent) {
        ReportMissingInterface(iface, e, p, "extends");
        ok = false;
        continue;
      }
      r->parents_.push_back(parent);
      r->extends_depth_ = std::max(r->extends_depth_, parent->extends_depth_ + 1);
      auto add = [&](const std::string& a) {
        if (std::find(r->extends_closure_.begin(), r->extends_closure_.end(), a) ==
            r->extends_closure_.end()) {
          r->extends_closure_.push_back(a);
        }
      };
      add(parent->id());
      for (const auto& a : parent->extends_closure_) add(a);
    }
    // Missing parents are reported; go on with the others so that every problem is found.
    if (r->extends_depth_ > kMaxExtendsDepth) {
      Error(iface, "EXTENDS_TOO_DEEP",
            iface.extends_pointers.empty() ? iface.info.pointer : iface.extends_pointers[0],
            fmt::format("the extends chain of {} is {} levels deep; DTDL allows {}",
                        iface.info.id, r->extends_depth_, kMaxExtendsDepth));
    }
    if (!v2 && r->extends_closure_.size() > kMaxHierarchyInterfaces) {
      Error(iface, "TOO_MANY_EXTENDS", iface.extends_pointers[0],
            fmt::format("{} extends {} Interfaces in all; DTDL v3 allows {}", iface.info.id,
                        r->extends_closure_.size(), kMaxHierarchyInterfaces));
    }

    // contents: own, then inherited
    for (const auto& c : iface.contents) {
      r->by_name_.emplace(c->name, r->contents_.size());
      r->contents_.push_back({c.get(), iface.info.id});
    }
    for (const auto& parent : r->parents_) {
      for (const auto& rc : parent->contents_) {
        auto [it, inserted] = r->by_name_.emplace(rc.content->name, r->contents_.size());
        if (inserted) {
          r->contents_.push_back(rc);
          continue;
        }
        const ResolvedContent& existing = r->contents_[it->second];
        if (existing.content == rc.content) continue;  // same element through two paths
        if (existing.defined_in == iface.info.id) {
          Error(iface, "INHERITED_NAME_CONFLICT", existing.content->info.pointer,
                fmt::format("{} '{}' in {} redefines an element inherited from {}",
                            ContentKindName(existing.content->kind), rc.content->name,
                            iface.info.id, rc.defined_in));
        } else {
          Error(iface, "INHERITED_NAME_CONFLICT", iface.info.pointer,
                fmt::format("{} inherits two different elements named '{}', from {} and {}",
                            iface.info.id, rc.content->name, existing.defined_in,
                            rc.defined_in));
        }
        ok = false;
      }
    }
    if (v2 && r->contents_.size() > kMaxV2Contents) {
      Error(iface, "TOO_MANY_CONTENTS", iface.info.pointer,
            fmt::format("{} has {} contents including inherited ones; DTDL v2 allows {}",
                        iface.info.id, r->contents_.size(), kMaxV2Contents));
    }

    // Components
    std::size_t elements = CountElements(iface);
    for (const auto& parent : r->parents_) elements += CountElements(parent->iface());
    for (const auto& rc : r->contents_) {
      if (rc.content->kind != ContentKind::kComponent) continue;
      const Content& c = *rc.content;
      bool own = rc.defined_in == iface.info.id;
      if (c.component_schema.empty()) {
        ok = false;
        continue;
      }
      ResolvedPtr target = Resolve(c.component_schema, Edge::kComponent, &iface,
                                   c.schema.pointer);
      if (!target) {
        if (own) ReportMissingInterface(iface, c.component_schema, c.schema.pointer,
                                        "a Component's schema");
        ok = false;
        continue;
      }
      if (own) {
        for (const auto& tc : target->contents_) {
          if (tc.content->kind == ContentKind::kComponent) {
            Error(iface, "NESTED_COMPONENT", c.schema.pointer,
                  fmt::format("Component '{}' has schema {}, which itself contains Component "
                              "'{}'; a Component's Interface may not contain Components",
                              c.name, target->id(), tc.content->name));
            ok = false;
            break;
          }
        }
      }
      elements += CountElements(target->iface());
      r->components_.emplace(c.name, target);
    }
    if (!v2 && elements > kMaxV3Elements) {
      Error(iface, "TOO_MANY_CONTENTS", iface.info.pointer,
            fmt::format("{} has about {} elements in its hierarchy; DTDL v3 allows {}",
                        iface.info.id, elements, kMaxV3Elements));
    }

    // References that name nothing inside the Interface.
    for (const auto& ref : iface.foreign_refs) {
      ok = false;
      auto cls = ClassOf(ref.dtmi);
      if (!cls) {
        Error(iface, "UNRESOLVED_REFERENCE", ref.pointer,
              fmt::format("{} {} is not defined in {}", ref.member, ref.dtmi, iface.info.id));
      } else if (*cls == "Interface") {
        Error(iface, "REFERENCE_WRONG_KIND", ref.pointer,
              fmt::format("{} {} names an Interface; use a Component to embed an Interface",
                          ref.member, ref.dtmi));
      } else {
        Error(iface, "NOT_REFERENCEABLE", ref.pointer,
              fmt::format("{} {} is {} defined in another Interface; such elements can only be "
                          "referenced from the Interface that defines them",
                          ref.member, ref.dtmi, Article(*cls)));
      }
    }

    // Relationship targets are by-reference: undefined ones are only noted.
    for (const auto& c : iface.contents) {
      if (c->kind == ContentKind::kRelationship && !c->target.empty() && !Exists(c->target)) {
        Error(iface, "UNDEFINED_RELATIONSHIP_TARGET", c->info.pointer,
              fmt::format("Relationship '{}' targets {}, which is not defined here (allowed: "
                          "targets are by reference)",
                          c->name, c->target),
              Severity::kInfo);
      }
    }
    if (!ok) return nullptr;
    return r;
  }

  const ResolutionBase& base_;
  ResolvedBatch* out_;
  std::unordered_map<std::string, std::shared_ptr<Interface>> batch_by_id_;
  std::unordered_map<std::string, std::string> batch_classes_;
  std::vector<const Interface*> order_;
  std::vector<std::pair<std::string, Edge>> stack_;
  std::unordered_set<std::string> failed_;
};

ResolvedBatch ResolveBatch(const std::vector<std::shared_ptr<Interface>>& batch,
                           const ResolutionBase& base) {
  ResolvedBatch out;
  BatchResolver(batch, base, &out).Run();
  return out;
}

}  // namespace doppel::model
