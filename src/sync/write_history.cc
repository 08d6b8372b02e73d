#include "sync/write_history.h"

#include <boost/json.hpp>
#include <chrono>
#include <memory>
#include <utility>

#include "core/time.h"
#include "sync/element_path.h"

namespace doppel::sync {

namespace json = boost::json;

namespace {

std::string_view StringAt(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

// The properties of one level (the twin, or a component) that the write stamped `written_at`.
void Collect(const json::object& level, const model::ResolvedInterface& iface,
             std::string_view written_at, const std::string& prefix,
             std::vector<WrittenValue>* out) {
  const json::value* meta_v = level.if_contains("$metadata");
  if (meta_v == nullptr || !meta_v->is_object()) return;
  for (const auto& [key, entry] : meta_v->get_object()) {
    if (key.starts_with("$") || !entry.is_object()) continue;
    const json::object& e = entry.get_object();
    if (StringAt(e, "lastUpdateTime") != written_at) continue;
    const json::value* value = level.if_contains(key);
    if (value == nullptr) continue;  // a desired value without a reported one
    std::string path = prefix + std::string(key);
    const model::Content* element = FindElement(iface, path);
    if (element == nullptr || element->kind != model::ContentKind::kProperty) continue;
    std::string_view when = StringAt(e, "sourceTime");
    if (when.empty()) when = written_at;
    auto t = core::ParseRfc3339(when);
    if (!t) continue;
    out->push_back(
        {std::move(path),
         std::chrono::duration_cast<std::chrono::nanoseconds>(t->time_since_epoch()).count(),
         HistoryValue(*element, *value)});
  }
}

}  // namespace

std::vector<WrittenValue> WrittenValues(const twin::Twin& twin,
                                        const model::ResolvedInterface& iface) {
  std::vector<WrittenValue> out;
  const json::value* meta = twin.doc.if_contains("$metadata");
  if (meta == nullptr || !meta->is_object()) return out;
  const std::string_view written_at = StringAt(meta->get_object(), "$lastUpdateTime");
  if (written_at.empty()) return out;
  Collect(twin.doc, iface, written_at, "", &out);
  for (const auto& [key, value] : twin.doc) {
    if (key.starts_with("$") || !value.is_object()) continue;
    const model::ResolvedContent* rc = iface.Find(key);
    if (rc == nullptr || rc->content->kind != model::ContentKind::kComponent) continue;
    Collect(value.get_object(), iface, written_at, std::string(key) + "/", &out);
  }
  return out;
}

void RecordTwinWrite(tsdb::HistoryStore& history, const model::ModelRepository& models,
                     const twin::TwinPtr& twin, std::function<void(core::Status)> done) {
  auto iface = models.Resolve(twin->model);
  if (!iface.ok()) return done(iface.status());
  struct State {
    twin::TwinPtr twin;
    std::vector<WrittenValue> values;
    std::vector<tsdb::Sample> samples;  // views into twin and values
  };
  auto state = std::make_shared<State>();
  state->twin = twin;
  state->values = WrittenValues(*twin, **iface);
  if (state->values.empty()) return done({});
  state->samples.reserve(state->values.size());
  for (const WrittenValue& v : state->values) {
    state->samples.push_back({state->twin->id, v.path, v.t_ns, v.value});
  }
  history.AppendAsync(state->samples,
                      [state, done = std::move(done)](const std::vector<core::Status>& stored) {
                        for (const core::Status& s : stored) {
                          if (!s.ok() && s.code() != "TSDB_DUPLICATE") return done(s);
                        }
                        done({});
                      });
}

}  // namespace doppel::sync
