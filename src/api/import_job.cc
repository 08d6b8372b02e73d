#include "api/import_job.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <condition_variable>

#include "core/in_flight.h"
#include "core/json.h"
#include "core/time.h"

namespace doppel::api {

namespace json = boost::json;

json::value ImportJob::ToJson() const {
  json::array errs;
  for (const auto& e : errors) {
    json::object o{{"line", e.line}, {"code", e.error.code()}, {"message", e.error.message()}};
    if (!e.error.pointer().empty()) o["pointer"] = e.error.pointer();
    errs.push_back(std::move(o));
  }
  json::object o{
      {"id", id},
      {"status", status},
      {"createdDateTime", core::FormatRfc3339(created)},
      {"lines", lines},
      {"imported",
       json::object{{"models", models}, {"twins", twins}, {"relationships", relationships}}},
      {"errorCount", error_count},
      {"errors", std::move(errs)}};
  if (status != "running") o["finishedDateTime"] = core::FormatRfc3339(finished);
  return o;
}

ImportJobs::ImportJobs(model::ModelRepository& models, twin::TwinGraph& graph)
    : models_(models), graph_(graph) {}

ImportJobs::~ImportJobs() { Stop(); }

void ImportJobs::Stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
}

std::string ImportJobs::Start(std::string ndjson, bool allow_models) {
  std::string id = fmt::format("import-{}", next_.fetch_add(1));
  {
    std::lock_guard lock(mu_);
    ImportJob& job = jobs_[id];
    job.id = id;
    job.created = std::chrono::system_clock::now();
    threads_.emplace_back([this, id, body = std::move(ndjson), allow_models] {
      ImportJob* job;
      {
        std::lock_guard lock(mu_);
        job = &jobs_[id];
      }
      Run(models_, graph_, body, allow_models, job, &mu_);
    });
  }
  return id;
}

std::optional<ImportJob> ImportJobs::Get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return std::nullopt;
  return it->second;
}

std::vector<ImportJob> ImportJobs::List() const {
  std::lock_guard lock(mu_);
  std::vector<ImportJob> out;
  for (const auto& [id, j] : jobs_) out.push_back(j);
  return out;
}

void ImportJobs::Run(model::ModelRepository& models, twin::TwinGraph& graph,
                     std::string_view ndjson, bool allow_models, ImportJob* job, std::mutex* mu) {
  auto error = [&](std::size_t line, core::Status s) {
    std::lock_guard lock(*mu);
    ++job->error_count;
    if (job->errors.size() < 1000) job->errors.push_back({line, std::move(s)});
  };
  enum class Section { kNone, kHeader, kModels, kTwins, kRelationships };
  Section section = Section::kNone;
  std::vector<model::SourceDocument> model_docs;
  core::InFlight inflight(512);

  // Models are added as one batch before the first twin or relationship that follows them.
  auto add_models = [&] {
    if (model_docs.empty()) return;
    auto r = models.Add(model_docs);
    model_docs.clear();
    if (!r.ok()) {
      for (const auto& d : r.diagnostics) {
        if (d.severity != model::Severity::kError) continue;
        std::size_t line = 0;
        if (d.document.starts_with("line ")) line = std::stoul(d.document.substr(5));
        error(line, core::Status(d.code, d.message, d.pointer));
      }
    } else {
      std::lock_guard lock(*mu);
      job->models += r.added.size();
    }
  };
  auto put_twin = [&](std::size_t line, json::value v) {
    const auto* id = v.is_object() ? v.get_object().if_contains("$dtId") : nullptr;
    if (id == nullptr || !id->is_string()) {
      return error(line, core::Status("INVALID_TWIN", "a twin line needs a string $dtId"));
    }
    inflight.Acquire();
    graph.PutTwin(std::string(id->get_string()), std::move(v), {},
                  [&, line](const core::Result<twin::TwinPtr>& r) {
                    if (r.ok()) {
                      std::lock_guard lock(*mu);
                      ++job->twins;
                    } else {
                      error(line, r.status());
                    }
                    inflight.Release();
                  });
  };
  auto put_relationship = [&](std::size_t line, json::value v) {
    const json::object* o = v.is_object() ? &v.get_object() : nullptr;
    const auto* src = o ? o->if_contains("$sourceId") : nullptr;
    const auto* rid = o ? o->if_contains("$relationshipId") : nullptr;
    if (src == nullptr || !src->is_string() || rid == nullptr || !rid->is_string()) {
      return error(line,
                   core::Status("INVALID_RELATIONSHIP",
                                "a relationship line needs string $sourceId and $relationshipId"));
    }
    inflight.Acquire();
    graph.PutRelationship(std::string(src->get_string()), std::string(rid->get_string()),
                          std::move(v), {},
                          [&, line](const core::Result<twin::RelationshipPtr>& r) {
                            if (r.ok()) {
                              std::lock_guard lock(*mu);
                              ++job->relationships;
                            } else {
                              error(line, r.status());
                            }
                            inflight.Release();
                          });
  };

  {
    std::size_t lines = static_cast<std::size_t>(std::count(ndjson.begin(), ndjson.end(), '\n'));
    if (!ndjson.empty() && ndjson.back() != '\n') ++lines;
    std::lock_guard lock(*mu);
    job->lines = lines;  // known up front, so that progress has a total
  }
  // One pass: lines are parsed on this thread while the shards stage and commit the lines
  // before them. Sections run in file order (ADT's order is Header, Models, Twins,
  // Relationships): a section's writes are all done before the next section starts, so
  // relationships always see the twins imported above them.
  std::size_t line_no = 0, start = 0;
  while (start < ndjson.size()) {
    std::size_t end = ndjson.find('\n', start);
    if (end == std::string_view::npos) end = ndjson.size();
    std::string_view line = ndjson.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    auto v = core::ParseJson(line);
    if (!v.ok()) {
      error(line_no, v.status());
      continue;
    }
    if (v->is_object()) {
      const auto* sec = v->get_object().if_contains("Section");
      if (sec != nullptr && sec->is_string()) {
        std::string_view s = sec->get_string();
        section = s == "Header"          ? Section::kHeader
                  : s == "Models"        ? Section::kModels
                  : s == "Twins"         ? Section::kTwins
                  : s == "Relationships" ? Section::kRelationships
                                         : Section::kNone;
        inflight.WaitAll();
        if (section == Section::kNone) {
          error(line_no, core::Status("IMPORT_SECTION",
                                      fmt::format("unknown section '{}' (Header, Models, Twins, "
                                                  "Relationships)",
                                                  s)));
        }
        continue;
      }
    }
    switch (section) {
      case Section::kHeader:
        break;
      case Section::kModels:
        if (!allow_models) {
          error(line_no, core::Status("FORBIDDEN", "importing models needs the admin role"));
          break;
        }
        model_docs.push_back({fmt::format("line {}", line_no), std::string(line)});
        break;
      case Section::kTwins:
        add_models();
        put_twin(line_no, std::move(*v));
        break;
      case Section::kRelationships:
        add_models();
        put_relationship(line_no, std::move(*v));
        break;
      case Section::kNone:
        error(line_no,
              core::Status("IMPORT_SECTION", "a line before any {\"Section\": ...} header"));
        break;
    }
  }
  add_models();
  inflight.WaitAll();
  std::lock_guard lock(*mu);
  job->finished = std::chrono::system_clock::now();
  bool any = job->models + job->twins + job->relationships > 0;
  job->status = job->error_count == 0 ? "succeeded" : any ? "partiallySucceeded" : "failed";
}

}  // namespace doppel::api
