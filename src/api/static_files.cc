#include "api/static_files.h"

#include <fmt/format.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

#include "api/problem.h"

namespace doppel::api {

namespace fs = std::filesystem;

namespace {

Reply NotFound(std::string_view raw_path) {
  core::Status s("ROUTE_NOT_FOUND", fmt::format("no file or route for '{}'", raw_path));
  Reply r = Reply::Json(404, ProblemJson(s, 404, raw_path));
  r.content_type = "application/problem+json";
  return r;
}

// Is `p` (canonical) `root` (canonical) or inside it?
bool Inside(const fs::path& root, const fs::path& p) {
  auto r = root.begin();
  auto q = p.begin();
  for (; r != root.end(); ++r, ++q) {
    if (q == p.end() || *r != *q) return false;
  }
  return true;
}

// One entity tag of an If-None-Match list matches `etag` (weak comparison, RFC 9110 §13.1.2).
bool NoneMatch(std::string_view header, std::string_view etag) {
  auto strip_weak = [](std::string_view t) { return t.starts_with("W/") ? t.substr(2) : t; };
  std::size_t start = 0;
  while (start <= header.size()) {
    std::size_t end = header.find(',', start);
    if (end == std::string_view::npos) end = header.size();
    std::string_view t = header.substr(start, end - start);
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (t == "*" || (!t.empty() && strip_weak(t) == strip_weak(etag))) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

StaticFiles::StaticFiles(const fs::path& root, std::set<std::string> api_prefixes)
    : api_prefixes_(std::move(api_prefixes)) {
  std::error_code ec;
  root_ = fs::canonical(root, ec);
  if (ec) root_ = fs::absolute(root).lexically_normal();
}

std::set<std::string> StaticFiles::ApiPrefixes(const Router& router) {
  std::set<std::string> out;
  for (const auto& r : router.routes()) {
    auto segs = SplitPath(r.path);
    if (segs && !segs->empty() && !(*segs)[0].empty()) out.insert((*segs)[0]);
  }
  return out;
}

std::string StaticFiles::ContentType(std::string_view filename) {
  std::size_t dot = filename.rfind('.');
  std::string ext = dot == std::string_view::npos ? "" : std::string(filename.substr(dot + 1));
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  struct Entry {
    std::string_view ext, type;
  };
  static constexpr Entry kTypes[] = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"mjs", "text/javascript; charset=utf-8"},
      {"css", "text/css; charset=utf-8"},
      {"json", "application/json"},
      {"map", "application/json"},
      {"webmanifest", "application/manifest+json"},
      {"txt", "text/plain; charset=utf-8"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"ico", "image/x-icon"},
      {"woff", "font/woff"},
      {"woff2", "font/woff2"},
      {"ttf", "font/ttf"},
      {"wasm", "application/wasm"},
      {"glb", "model/gltf-binary"},
      {"gltf", "model/gltf+json"},
  };
  for (const auto& e : kTypes) {
    if (e.ext == ext) return std::string(e.type);
  }
  return "application/octet-stream";
}

std::optional<Reply> StaticFiles::Serve(std::string_view method, std::string_view raw_path,
                                        const std::string* if_none_match) const {
  if (method != "GET" && method != "HEAD") return std::nullopt;
  auto segs = SplitPath(raw_path);
  if (!segs) return NotFound(raw_path);
  if (!segs->empty() && api_prefixes_.contains((*segs)[0])) return std::nullopt;
  fs::path rel;
  for (const auto& s : *segs) {
    if (s.empty()) continue;  // "//" and a trailing "/"
    // No way up or sideways: dot segments, dot-files, separators smuggled in by encoding.
    if (s.front() == '.' || s.find_first_of(std::string_view("/\\\0", 3)) != std::string::npos) {
      return NotFound(raw_path);
    }
    rel /= s;
  }
  const bool asset = !segs->empty() && (*segs)[0] == "assets";
  if (!rel.empty()) {
    std::error_code ec;
    fs::path file = fs::canonical(root_ / rel, ec);
    if (!ec) {
      if (!Inside(root_, file)) return NotFound(raw_path);  // a symlink out of the root
      if (fs::is_regular_file(file, ec)) {
        if (auto r = File(file, rel.generic_string(), if_none_match)) return r;
        return NotFound(raw_path);
      }
    }
    // Not a file: a missing asset is a 404; anything else is a route of the UI.
    const std::string& last = segs->back();
    if (asset || last.find('.') != std::string::npos) return NotFound(raw_path);
  }
  std::error_code ec;
  fs::path index = fs::canonical(root_ / "index.html", ec);
  if (ec || !Inside(root_, index)) return NotFound(raw_path);
  if (auto r = File(index, "index.html", if_none_match)) return r;
  return NotFound(raw_path);
}

std::optional<Reply> StaticFiles::File(const fs::path& file, std::string_view rel,
                                       const std::string* if_none_match) const {
  std::error_code ec;
  auto size = fs::file_size(file, ec);
  if (ec) return std::nullopt;
  auto mtime = fs::last_write_time(file, ec);
  if (ec) return std::nullopt;
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(mtime.time_since_epoch()).count();
  std::string etag = fmt::format("\"{:x}-{:x}\"", size, static_cast<std::uint64_t>(ns));
  // Vite names the files under assets/ by content hash: they never change.
  const bool immutable = rel.starts_with("assets/");
  std::string cache = immutable ? "public, max-age=31536000, immutable" : std::string("no-cache");
  Reply r;
  r.headers.emplace_back("ETag", etag);
  r.headers.emplace_back("Cache-Control", cache);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (if_none_match != nullptr && NoneMatch(*if_none_match, etag)) {
    r.status = 304;
    r.content_type.clear();
    return r;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  std::string body;
  body.resize(size);
  in.read(body.data(), static_cast<std::streamsize>(size));
  body.resize(static_cast<std::size_t>(in.gcount()));
  r.status = 200;
  r.content_type = ContentType(file.filename().string());
  r.body = std::move(body);
  return r;
}

}  // namespace doppel::api
