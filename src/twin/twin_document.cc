#include "twin/twin_document.h"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>

#include "core/json.h"
#include "core/time.h"
#include "model/value_validator.h"
#include "twin/json_patch.h"

namespace doppel::twin {

namespace json = boost::json;
using core::PointerAppend;
using core::Status;

core::Status CheckId(std::string_view id, std::string_view what) {
  if (id.empty() || id.size() > 128) {
    return Status("INVALID_ID",
                  fmt::format("{} id must be 1 to 128 bytes long (got {})", what, id.size()));
  }
  for (char c : id) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Status("INVALID_ID", fmt::format("{} id contains a control character", what));
    }
  }
  return {};
}

std::string EtagOf(std::uint64_t seq) { return fmt::format("W/\"{:x}\"", seq); }

std::optional<std::uint64_t> SeqOfEtag(std::string_view etag) {
  if (etag.size() < 5 || !etag.starts_with("W/\"") || etag.back() != '"') return std::nullopt;
  std::string_view hex = etag.substr(3, etag.size() - 4);
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), v, 16);
  if (ec != std::errc() || p != hex.data() + hex.size()) return std::nullopt;
  return v;
}

namespace {

Status Violation(const char* code, const std::string& ptr, std::string msg) {
  return Status(code, std::move(msg), ptr);
}

// Checks a $metadata object of a twin or component.
void ValidateMetadata(const model::ResolvedInterface& iface, const json::object& meta,
                      bool top_level, const std::string& ptr, std::vector<Status>* out) {
  for (const auto& kv : meta) {
    std::string p = PointerAppend(ptr, kv.key());
    if (kv.key() == "$model") {
      if (!top_level) {
        out->push_back(Violation("INVALID_METADATA", p,
                                 "$model belongs on the twin, not on a "
                                 "component"));
      } else if (!kv.value().is_string()) {
        out->push_back(Violation("INVALID_METADATA", p, "$model must be a DTMI string"));
      }
      continue;
    }
    if (kv.key() == "$lastUpdateTime") continue;  // server-managed; ignored on input
    const model::ResolvedContent* rc = iface.Find(kv.key());
    if (rc == nullptr || rc->content->kind != model::ContentKind::kProperty) {
      out->push_back(Violation(
          "INVALID_METADATA", p,
          fmt::format("$metadata entry '{}' names no Property of {}", kv.key(), iface.id())));
      continue;
    }
    if (!kv.value().is_object()) {
      out->push_back(Violation("INVALID_METADATA", p, "a property's $metadata must be an object"));
      continue;
    }
    for (const auto& m : kv.value().get_object()) {
      std::string mp = PointerAppend(p, m.key());
      if (m.key() == "desiredValue") {
        if (!rc->content->writable) {
          out->push_back(
              Violation("NOT_WRITABLE", mp,
                        fmt::format("'{}' is not writable, so it has no desired value", kv.key())));
        } else if (rc->content->schema.schema != nullptr) {
          model::ValidateValue(*rc->content->schema.schema, m.value(), mp, out);
        }
      } else if (m.key() != "lastUpdateTime" && m.key() != "sourceTime" &&
                 m.key() != "desiredVersion" && m.key() != "desiredTime") {
        out->push_back(Violation("INVALID_METADATA", mp,
                                 fmt::format("unknown property metadata '{}' (allowed: "
                                             "desiredValue)",
                                             m.key())));
      }
    }
  }
}

}  // namespace

std::vector<Status> ValidateTwinContent(const model::ResolvedInterface& iface,
                                        const json::object& doc, bool top_level,
                                        const std::string& pointer) {
  std::vector<Status> out;
  for (const auto& kv : doc) {
    std::string_view key = kv.key();
    std::string p = PointerAppend(pointer, key);
    if (key == "$metadata") {
      if (!kv.value().is_object()) {
        out.push_back(Violation("INVALID_METADATA", p, "$metadata must be an object"));
      } else {
        ValidateMetadata(iface, kv.value().get_object(), top_level, p, &out);
      }
      continue;
    }
    if (top_level && (key == "$dtId" || key == "$etag")) continue;  // checked by the graph
    if (key.starts_with("$")) {
      out.push_back(
          Violation("VALUE_UNKNOWN_ELEMENT", p, fmt::format("'{}' is not a twin member", key)));
      continue;
    }
    const model::ResolvedContent* rc = iface.Find(key);
    if (rc == nullptr) {
      out.push_back(
          Violation("VALUE_UNKNOWN_ELEMENT", p,
                    fmt::format("{} has no Property or Component '{}'", iface.id(), key)));
      continue;
    }
    const model::Content& c = *rc->content;
    if (c.kind == model::ContentKind::kProperty) {
      if (c.schema.schema != nullptr) model::ValidateValue(*c.schema.schema, kv.value(), p, &out);
    } else if (c.kind == model::ContentKind::kComponent && top_level) {
      const model::ResolvedInterface* ci = iface.ComponentInterface(key);
      if (!kv.value().is_object()) {
        out.push_back(Violation("VALUE_TYPE_MISMATCH", p,
                                fmt::format("component '{}' must be an object", key)));
      } else if (ci != nullptr) {
        auto inner = ValidateTwinContent(*ci, kv.value().get_object(), false, p);
        out.insert(out.end(), inner.begin(), inner.end());
      }
    } else {
      out.push_back(Violation(
          "VALUE_UNKNOWN_ELEMENT", p,
          fmt::format("'{}' is a {}; only Properties{} are stored on a twin", key,
                      model::ContentKindName(c.kind), top_level ? " and Components" : "")));
    }
  }
  return out;
}

namespace {

// User view of one level: values as stored, $metadata reduced to $model (top level) and one
// entry per writable property holding its desired value, if any.
json::object UserLevel(const json::object& stored, const model::ResolvedInterface& iface,
                       bool top_level) {
  json::object out;
  const json::object* stored_meta = nullptr;
  if (const auto* m = stored.if_contains("$metadata"); m && m->is_object()) {
    stored_meta = &m->get_object();
  }
  json::object meta;
  if (top_level) meta["$model"] = iface.id();
  for (const auto& rc : iface.contents()) {
    const model::Content& c = *rc.content;
    if (c.kind != model::ContentKind::kProperty || !c.writable) continue;
    json::object entry;
    if (stored_meta != nullptr) {
      if (const auto* e = stored_meta->if_contains(c.name); e && e->is_object()) {
        if (const auto* dv = e->get_object().if_contains("desiredValue")) {
          entry["desiredValue"] = *dv;
        }
      }
    }
    meta[c.name] = std::move(entry);
  }
  out["$metadata"] = std::move(meta);
  // Every component of the model is present (empty if never written), so that a patch can add
  // the first property of a component at its own path.
  if (top_level) {
    for (const auto& rc : iface.contents()) {
      if (rc.content->kind != model::ContentKind::kComponent || stored.contains(rc.content->name)) {
        continue;
      }
      if (const model::ResolvedInterface* ci = iface.ComponentInterface(rc.content->name)) {
        out[rc.content->name] = UserLevel(json::object{}, *ci, false);
      }
    }
  }
  for (const auto& kv : stored) {
    if (kv.key().starts_with("$")) continue;
    const model::ResolvedContent* rc = top_level ? iface.Find(kv.key()) : nullptr;
    const model::ResolvedInterface* ci =
        rc != nullptr && rc->content->kind == model::ContentKind::kComponent
            ? iface.ComponentInterface(kv.key())
            : nullptr;
    if (ci != nullptr && kv.value().is_object()) {
      out[kv.key()] = UserLevel(kv.value().get_object(), *ci, false);
    } else {
      out[kv.key()] = kv.value();
    }
  }
  return out;
}

}  // namespace

json::object UserView(const Twin& twin, const model::ResolvedInterface& iface) {
  json::object out = UserLevel(twin.doc, iface, true);
  out["$dtId"] = twin.id;
  return out;
}

Touched TouchedByPatch(const json::value& patch) {
  Touched out;
  if (!patch.is_array()) return out;
  for (const auto& op : patch.get_array()) {
    if (!op.is_object()) continue;
    const json::value* kind = op.get_object().if_contains("op");
    if (kind == nullptr || !kind->is_string() || kind->get_string() == "test") continue;
    const bool move = kind->get_string() == "move";
    for (const char* member : {"path", "from"}) {
      if (std::string_view(member) == "from" && !move) continue;
      const json::value* p = op.get_object().if_contains(member);
      if (p == nullptr || !p->is_string()) continue;
      std::string_view s = p->get_string();
      if (s.empty()) {
        out.insert("*");
        continue;
      }
      // Unescaped first two tokens.
      std::vector<std::string> tokens;
      std::size_t start = 1;
      while (start <= s.size() && tokens.size() < 3) {
        std::size_t end = s.find('/', start);
        if (end == std::string_view::npos) end = s.size();
        std::string t;
        for (std::size_t i = start; i < end; ++i) {
          if (s[i] == '~' && i + 1 < end) {
            t += s[i + 1] == '1' ? '/' : '~';
            ++i;
          } else {
            t += s[i];
          }
        }
        tokens.push_back(std::move(t));
        start = end + 1;
      }
      if (tokens.empty()) continue;
      if (tokens[0] == "$metadata") {
        // /$metadata/<prop>/desiredValue touches the desired value of <prop>.
        if (tokens.size() >= 2) out.insert("$desired/" + tokens[1]);
        continue;
      }
      if (tokens.size() >= 3 && tokens[1] == "$metadata") {
        // /<component>/$metadata/<prop>/desiredValue
        out.insert("$desired/" + tokens[0] + "/" + tokens[2]);
        continue;
      }
      out.insert(tokens.size() == 1 ? tokens[0] : tokens[0] + "/" + tokens[1]);
    }
  }
  return out;
}

namespace {

// "$desired/<prefix><name>": the Touched entry of a desired value.
std::string DesiredKey(const std::string& prefix, const std::string& name) {
  std::string k = "$desired/";
  k += prefix;
  k += name;
  return k;
}

// Builds one level's stored properties and $metadata.
void BuildLevel(const json::object& user, const json::object* prev_level,
                const model::ResolvedInterface& iface, const Touched& touched,
                const std::string& prefix, const std::string& now,
                const std::optional<std::string>& source, bool top_level, json::object* out,
                json::object* meta) {
  const json::object* prev_meta = nullptr;
  if (prev_level != nullptr) {
    if (const auto* m = prev_level->if_contains("$metadata"); m && m->is_object()) {
      prev_meta = &m->get_object();
    }
  }
  const bool all = touched.contains("*");
  auto was_touched = [&](const std::string& name) {
    if (all) return true;
    if (prefix.empty()) {
      // A top-level property: the whole of it, or something inside it (Object/Map member).
      if (touched.contains(name)) return true;
      auto it = touched.lower_bound(name + "/");
      return it != touched.end() && it->starts_with(name + "/");
    }
    // A component's property: the whole component, or this property (or inside it).
    return touched.contains(prefix.substr(0, prefix.size() - 1)) || touched.contains(prefix + name);
  };
  const json::object* user_meta = nullptr;
  if (const auto* m = user.if_contains("$metadata"); m && m->is_object()) {
    user_meta = &m->get_object();
  }
  for (const auto& kv : user) {
    if (kv.key().starts_with("$")) continue;
    std::string name(kv.key());
    const model::ResolvedContent* rc = iface.Find(name);
    if (top_level && rc != nullptr && rc->content->kind == model::ContentKind::kComponent) {
      const model::ResolvedInterface* ci = iface.ComponentInterface(name);
      const json::object* prev_comp = nullptr;
      if (prev_level != nullptr) {
        if (const auto* pc = prev_level->if_contains(name); pc && pc->is_object()) {
          prev_comp = &pc->get_object();
        }
      }
      json::object comp;
      json::object comp_meta;
      if (ci != nullptr) {
        BuildLevel(kv.value().get_object(), prev_comp, *ci, touched, name + "/", now, source, false,
                   &comp, &comp_meta);
      }
      json::object stored;
      stored["$metadata"] = std::move(comp_meta);
      for (auto& c : comp) stored[c.key()] = std::move(c.value());
      (*out)[name] = std::move(stored);
      continue;
    }
    (*out)[name] = kv.value();
    json::object entry;
    const json::object* prev_entry = nullptr;
    if (prev_meta != nullptr) {
      if (const auto* e = prev_meta->if_contains(name); e && e->is_object()) {
        prev_entry = &e->get_object();
      }
    }
    if (was_touched(name) || prev_entry == nullptr || !prev_entry->contains("lastUpdateTime")) {
      entry["lastUpdateTime"] = now;
      if (source) entry["sourceTime"] = *source;
    } else {
      for (const char* k : {"lastUpdateTime", "sourceTime"}) {
        if (const auto* v = prev_entry->if_contains(k)) entry[k] = *v;
      }
    }
    (*meta)[name] = std::move(entry);
  }
  // Desired values (writable properties), whether or not a reported value exists yet.
  if (user_meta != nullptr) {
    for (const auto& m : *user_meta) {
      if (m.key().starts_with("$") || !m.value().is_object()) continue;
      const json::value* desired = m.value().get_object().if_contains("desiredValue");
      if (desired == nullptr) continue;
      std::string name(m.key());
      json::value& slot = (*meta)[name];
      if (!slot.is_object()) slot.emplace_object();
      json::object& entry = slot.get_object();
      if (entry.empty()) {
        // No reported value: still keep the entry's history if there was one.
        if (prev_meta != nullptr) {
          if (const auto* e = prev_meta->if_contains(name); e && e->is_object()) {
            for (const char* k : {"lastUpdateTime", "sourceTime"}) {
              if (const auto* v = e->get_object().if_contains(k)) entry[k] = *v;
            }
          }
        }
      }
      const json::object* prev_entry = nullptr;
      if (prev_meta != nullptr) {
        if (const auto* e = prev_meta->if_contains(name); e && e->is_object()) {
          prev_entry = &e->get_object();
        }
      }
      const json::value* prev_desired =
          prev_entry != nullptr ? prev_entry->if_contains("desiredValue") : nullptr;
      std::int64_t prev_version = 0;
      if (prev_entry != nullptr) {
        if (const auto* v = prev_entry->if_contains("desiredVersion"); v && v->is_int64()) {
          prev_version = v->get_int64();
        }
      }
      entry["desiredValue"] = *desired;
      if (prev_desired == nullptr || *prev_desired != *desired ||
          touched.contains(DesiredKey(prefix, name))) {
        entry["desiredVersion"] = prev_version + 1;
        entry["desiredTime"] = now;
      } else {
        entry["desiredVersion"] = prev_version;
        if (const auto* t = prev_entry->if_contains("desiredTime")) entry["desiredTime"] = *t;
      }
    }
  }
}

}  // namespace

json::object BuildStoredDoc(const std::string& id, std::uint64_t seq, const json::object& user,
                            const Twin* previous, const model::ResolvedInterface& iface,
                            const Touched& touched, std::chrono::system_clock::time_point now,
                            std::optional<std::chrono::system_clock::time_point> source) {
  std::string now_s = core::FormatRfc3339(now);
  std::optional<std::string> source_s;
  if (source) source_s = core::FormatRfc3339(*source);
  json::object props;
  json::object meta;
  meta["$model"] = iface.id();
  meta["$lastUpdateTime"] = now_s;
  BuildLevel(user, previous != nullptr ? &previous->doc : nullptr, iface, touched, "", now_s,
             source_s, true, &props, &meta);
  json::object doc;
  doc.reserve(props.size() + 3);
  doc["$dtId"] = id;
  doc["$etag"] = EtagOf(seq);
  doc["$metadata"] = std::move(meta);
  for (auto& p : props) doc[p.key()] = std::move(p.value());
  return doc;
}

core::Result<json::object> BuildRelationshipDoc(
    const std::string& source_id, const std::string& rel_id, std::uint64_t seq,
    const json::object& body, const model::ResolvedInterface& source_model, const TwinPtr& target,
    const model::ResolvedInterface* target_model, std::size_t existing_same_name) {
  std::vector<Status> v;
  auto str = [&](const char* key, bool required) -> std::string {
    const json::value* x = body.if_contains(key);
    if (x == nullptr) {
      if (required) {
        v.push_back(Violation("MISSING_MEMBER", "", fmt::format("'{}' is required", key)));
      }
      return {};
    }
    if (!x->is_string()) {
      v.push_back(Violation("VALUE_TYPE_MISMATCH", PointerAppend("", key),
                            fmt::format("'{}' must be a string", key)));
      return {};
    }
    return std::string(x->get_string());
  };
  std::string name = str("$relationshipName", true);
  std::string target_id = str("$targetId", true);
  std::string src = str("$sourceId", false);
  std::string rid = str("$relationshipId", false);
  if (!src.empty() && src != source_id) {
    v.push_back(Violation("INVALID_RELATIONSHIP", "/$sourceId",
                          fmt::format("$sourceId '{}' differs from the source twin '{}' in the "
                                      "URL",
                                      src, source_id)));
  }
  if (!rid.empty() && rid != rel_id) {
    v.push_back(
        Violation("INVALID_RELATIONSHIP", "/$relationshipId",
                  fmt::format("$relationshipId '{}' differs from '{}' in the URL", rid, rel_id)));
  }
  const model::Content* def = nullptr;
  if (!name.empty()) {
    const model::ResolvedContent* rc = source_model.Find(name);
    if (rc == nullptr || rc->content->kind != model::ContentKind::kRelationship) {
      v.push_back(Violation("INVALID_RELATIONSHIP", "/$relationshipName",
                            fmt::format("{} (the model of '{}') defines no Relationship '{}'",
                                        source_model.id(), source_id, name)));
    } else {
      def = rc->content;
    }
  }
  if (!target_id.empty() && !v.empty()) {
    // keep collecting
  }
  if (def != nullptr) {
    if (target == nullptr && !target_id.empty()) {
      return Status("TARGET_NOT_FOUND", fmt::format("target twin '{}' does not exist", target_id),
                    "/$targetId");
    }
    if (!def->target.empty() && target_model != nullptr && !target_model->IsA(def->target)) {
      v.push_back(Violation("INVALID_RELATIONSHIP", "/$targetId",
                            fmt::format("Relationship '{}' must target a {} (or an Interface "
                                        "extending it); twin '{}' is a {}",
                                        name, def->target, target_id, target_model->id())));
    }
    if (def->max_multiplicity && existing_same_name + 1 > std::size_t(*def->max_multiplicity)) {
      return Status("RELATIONSHIP_LIMIT",
                    fmt::format("twin '{}' already has {} '{}' relationship(s); the model allows "
                                "at most {}",
                                source_id, existing_same_name, name, *def->max_multiplicity),
                    "/$relationshipName");
    }
    for (const auto& kv : body) {
      if (kv.key().starts_with("$")) {
        if (kv.key() != "$relationshipName" && kv.key() != "$targetId" && kv.key() != "$sourceId" &&
            kv.key() != "$relationshipId" && kv.key() != "$etag") {
          v.push_back(Violation("VALUE_UNKNOWN_ELEMENT", PointerAppend("", kv.key()),
                                fmt::format("'{}' is not a relationship member", kv.key())));
        }
        continue;
      }
      const model::Content* prop = nullptr;
      for (const auto& p : def->properties) {
        if (p->name == kv.key()) prop = p.get();
      }
      if (prop == nullptr) {
        v.push_back(
            Violation("VALUE_UNKNOWN_ELEMENT", PointerAppend("", kv.key()),
                      fmt::format("Relationship '{}' has no property '{}'", name, kv.key())));
      } else if (prop->schema.schema != nullptr) {
        model::ValidateValue(*prop->schema.schema, kv.value(), PointerAppend("", kv.key()), &v);
      }
    }
  } else if (target == nullptr && !target_id.empty() && v.empty()) {
    return Status("TARGET_NOT_FOUND", fmt::format("target twin '{}' does not exist", target_id),
                  "/$targetId");
  }
  if (!v.empty()) {
    Status error("INVALID_RELATIONSHIP",
                 fmt::format("the relationship is not valid: {} problem(s), first: {}", v.size(),
                             v.front().message()),
                 v.front().pointer());
    return std::move(error).WithDetails(std::move(v));
  }
  json::object doc;
  doc["$relationshipId"] = rel_id;
  doc["$etag"] = EtagOf(seq);
  doc["$sourceId"] = source_id;
  doc["$targetId"] = target_id;
  doc["$relationshipName"] = name;
  for (const auto& kv : body) {
    if (!kv.key().starts_with("$")) doc[kv.key()] = kv.value();
  }
  return doc;
}

json::object RelationshipUserView(const Relationship& r) {
  json::object out = r.doc;
  out.erase("$etag");
  return out;
}

std::optional<std::chrono::system_clock::time_point> PropertySourceTime(const Twin& twin,
                                                                        std::string_view pointer) {
  auto tokens = ParsePointer(pointer);
  if (!tokens.ok() || tokens->empty() || tokens->size() > 2) return std::nullopt;
  const json::object* level = &twin.doc;
  if (tokens->size() == 2) {
    const auto* comp = level->if_contains((*tokens)[0]);
    if (comp == nullptr || !comp->is_object()) return std::nullopt;
    level = &comp->get_object();
  }
  const auto* meta = level->if_contains("$metadata");
  const auto* entry = meta != nullptr && meta->is_object()
                          ? meta->get_object().if_contains(tokens->back())
                          : nullptr;
  const auto* st = entry != nullptr && entry->is_object()
                       ? entry->get_object().if_contains("sourceTime")
                       : nullptr;
  if (st == nullptr || !st->is_string()) return std::nullopt;
  return core::ParseRfc3339(st->get_string());
}

}  // namespace doppel::twin
