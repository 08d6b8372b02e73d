#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "cli/progress.h"
#include "model/model.h"

namespace doppel::cli {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using model::Diagnostic;
using model::Severity;
using model::SourceDocument;

struct LoadedDocuments {
  std::vector<SourceDocument> documents;
  std::vector<Diagnostic> problems;  // unreadable paths
};

// Every *.json file under the given files/folders, sorted by path within each folder.
LoadedDocuments LoadDocuments(const std::vector<std::string>& paths) {
  LoadedDocuments out;
  std::vector<fs::path> files;
  for (const auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<fs::path> found;
      for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
           it.increment(ec)) {
        if (it->is_regular_file() && it->path().extension() == ".json") found.push_back(it->path());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::exists(p, ec)) {
      files.emplace_back(p);
    } else {
      out.problems.push_back(Diagnostic{Severity::kError, "FILE_NOT_FOUND",
                                        "no such file or folder", p, "", ""});
    }
  }
  Progress progress("reading");
  for (std::size_t i = 0; i < files.size(); ++i) {
    std::ifstream in(files[i], std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    if (!in) {
      out.problems.push_back(Diagnostic{Severity::kError, "FILE_UNREADABLE",
                                        "the file cannot be read", files[i].string(), "", ""});
      continue;
    }
    out.documents.push_back(SourceDocument{files[i].string(), std::move(ss).str()});
    progress.Update(i + 1, files.size());
  }
  return out;
}

model::ParseOptions OptionsWithProgress(Progress* progress) {
  model::ParseOptions options;
  options.progress = [progress](std::size_t done, std::size_t total) {
    progress->Update(done, total);
  };
  return options;
}

int RunCheck(const std::vector<std::string>& paths, bool quiet_notes, bool as_json) {
  LoadedDocuments loaded = LoadDocuments(paths);
  Progress progress("checking");
  model::ModelRepository repo(nullptr, OptionsWithProgress(&progress));
  auto result = repo.Check(loaded.documents);
  progress.Finish();
  auto diags = std::move(loaded.problems);
  diags.insert(diags.end(), result.diagnostics.begin(), result.diagnostics.end());
  std::size_t errors = 0, notes = 0;
  for (const auto& d : diags) (d.severity == Severity::kError ? errors : notes)++;
  if (as_json) {
    json::array arr;
    for (const auto& d : diags) arr.push_back(model::DiagnosticToJson(d));
    json::object summary{{"documents", loaded.documents.size()},
                         {"interfaces", result.added.size()},
                         {"errors", errors},
                         {"notes", notes},
                         {"diagnostics", std::move(arr)}};
    fmt::print("{}\n", json::serialize(summary));
  } else {
    for (const auto& d : diags) {
      if (d.severity == Severity::kInfo && quiet_notes) continue;
      fmt::print("{}\n", model::FormatDiagnostic(d));
    }
    if (errors == 0) {
      fmt::print("{} documents, {} interfaces: valid ({} notes)\n", loaded.documents.size(),
                 result.added.size(), notes);
    } else {
      fmt::print("{} documents: {} errors, {} notes\n", loaded.documents.size(), errors, notes);
    }
  }
  return errors == 0 && !loaded.documents.empty() ? 0 : 1;
}

std::string SchemaText(const model::SchemaRef& r) {
  if (r.schema == nullptr) return r.ref.empty() ? "?" : r.ref;
  if (!model::IsComplex(r.schema->kind)) return model::SchemaKindName(r.schema->kind);
  std::string s = model::SchemaKindName(r.schema->kind);
  switch (r.schema->kind) {
    case model::SchemaKind::kArray: return "Array<" + SchemaText(r.schema->element_schema) + ">";
    case model::SchemaKind::kMap: return "Map<string, " + SchemaText(r.schema->map_value.schema) + ">";
    case model::SchemaKind::kEnum: {
      std::string v;
      for (std::size_t i = 0; i < r.schema->enum_values.size() && i < 6; ++i) {
        v += (i ? "|" : "") + r.schema->enum_values[i].name;
      }
      if (r.schema->enum_values.size() > 6) v += "|...";
      return "Enum{" + v + "}";
    }
    case model::SchemaKind::kObject: {
      std::string v;
      for (const auto& f : r.schema->fields) v += (v.empty() ? "" : ", ") + f.name;
      return "Object{" + v + "}";
    }
    default: return s;
  }
}

void PrintResolved(const model::ResolvedInterface& r, int indent) {
  std::string pad(indent, ' ');
  const auto& i = r.iface();
  fmt::print("{}{}  (DTDL v{})", pad, r.id(), static_cast<int>(i.version));
  if (!i.info.display_name.empty()) fmt::print("  \"{}\"", i.info.display_name.Preferred());
  fmt::print("\n");
  if (!r.extends_closure().empty()) {
    fmt::print("{}  extends ({} levels): ", pad, r.extends_depth());
    for (std::size_t k = 0; k < r.extends_closure().size(); ++k) {
      fmt::print("{}{}", k ? ", " : "", r.extends_closure()[k]);
    }
    fmt::print("\n");
  }
  fmt::print("{}  contents ({}):\n", pad, r.contents().size());
  for (const auto& rc : r.contents()) {
    const auto& c = *rc.content;
    std::string detail;
    switch (c.kind) {
      case model::ContentKind::kProperty:
        detail = SchemaText(c.schema) + (c.writable ? "  writable" : "");
        break;
      case model::ContentKind::kTelemetry: detail = SchemaText(c.schema); break;
      case model::ContentKind::kCommand:
        detail = fmt::format("({}) -> {}", c.request ? SchemaText(c.request->schema) : "",
                             c.response ? SchemaText(c.response->schema) : "void");
        break;
      case model::ContentKind::kRelationship:
        detail = "-> " + (c.target.empty() ? std::string("any") : c.target);
        if (c.max_multiplicity) detail += fmt::format(" [0..{}]", *c.max_multiplicity);
        break;
      case model::ContentKind::kComponent: detail = c.component_schema; break;
    }
    if (c.semantic) detail += fmt::format("  {} [{}]", c.semantic->semantic_type, c.semantic->unit);
    std::string from = rc.defined_in == r.id() ? "" : "  (from " + rc.defined_in + ")";
    fmt::print("{}    {:<12} {:<28} {}{}\n", pad, model::ContentKindName(c.kind), c.name, detail,
               from);
  }
  for (const auto& rc : r.contents()) {
    if (rc.content->kind != model::ContentKind::kComponent) continue;
    if (const auto* ci = r.ComponentInterface(rc.content->name)) {
      fmt::print("{}  component {}:\n", pad, rc.content->name);
      PrintResolved(*ci, indent + 4);
    }
  }
}

int RunShow(const std::string& dtmi, const std::vector<std::string>& from, bool as_json) {
  LoadedDocuments loaded = LoadDocuments(from);
  Progress progress("loading");
  model::ModelRepository repo(nullptr, OptionsWithProgress(&progress));
  auto result = repo.Add(loaded.documents);
  progress.Finish();
  if (!loaded.problems.empty() || !result.ok()) {
    for (const auto& d : loaded.problems) fmt::print(stderr, "{}\n", model::FormatDiagnostic(d));
    for (const auto& d : result.diagnostics) {
      if (d.severity == Severity::kError) fmt::print(stderr, "{}\n", model::FormatDiagnostic(d));
    }
    fmt::print(stderr, "the models in {} are not valid; run `doppel model check` for details\n",
               fmt::join(from, " "));
    return 1;
  }
  auto r = repo.Resolve(dtmi);
  if (!r) {
    fmt::print(stderr, "{}\n", r.status().ToString());
    return 1;
  }
  if (as_json) {
    fmt::print("{}\n", json::serialize(model::ResolvedToJson(**r)));
  } else {
    PrintResolved(**r, 0);
  }
  return 0;
}

}  // namespace

void AddModelCommands(CLI::App& app, int* exit_code) {
  auto* model_cmd = app.add_subcommand("model", "Check and inspect DTDL models");
  model_cmd->require_subcommand(1);

  auto* check = model_cmd->add_subcommand(
      "check", "Validate DTDL files or folders (all *.json, recursively) as one batch");
  auto check_paths = std::make_shared<std::vector<std::string>>();
  auto check_quiet = std::make_shared<bool>(false);
  auto check_json = std::make_shared<bool>(false);
  check->add_option("paths", *check_paths, "Files or folders")->required();
  check->add_flag("--no-notes", *check_quiet, "Do not print informational notes");
  check->add_flag("--json", *check_json, "Print the result as JSON");
  check->callback([=] { *exit_code = RunCheck(*check_paths, *check_quiet, *check_json); });

  auto* show = model_cmd->add_subcommand("show", "Print the resolved view of an Interface");
  auto show_id = std::make_shared<std::string>();
  auto show_from = std::make_shared<std::vector<std::string>>();
  auto show_json = std::make_shared<bool>(false);
  show->add_option("dtmi", *show_id, "Interface DTMI")->required();
  show->add_option("--from", *show_from, "Files or folders holding the models")->required();
  show->add_flag("--json", *show_json, "Print as JSON");
  show->callback([=] { *exit_code = RunShow(*show_id, *show_from, *show_json); });
}

}  // namespace doppel::cli
