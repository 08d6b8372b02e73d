// doppel::api — the web UI's static files (ServerOptions::web_root), served at / (internal to
// the api component; the server asks it about GET/HEAD requests no API route matched).
//
// * A file under the root is served with its Content-Type (by extension), a strong ETag (size
//   and modification time) and If-None-Match → 304.
// * Caching: Vite's content-hashed files under /assets/ are immutable (a year); everything else
//   (index.html, favicon, ...) is `no-cache` (always revalidated, so a new build shows at once).
// * SPA fallback: a path that names no file and does not look like a file (no extension in its
//   last segment, not under /assets/) answers index.html, so the UI's own routes can be
//   bookmarked. Paths whose first segment is an API prefix (digitaltwins, models, ...) are never
//   static: the API answers them (404 ROUTE_NOT_FOUND, 401 without a key), so API clients keep
//   their errors.
// * Refused (404): `..` or `.` segments, encoded slashes, backslashes or NUL, dot-files, and any
//   path that resolves (through symlinks) outside the root.
// * No API key is needed: the UI asks for one itself and sends it with its API calls.
#pragma once

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "api/router.h"

namespace doppel::api {

class StaticFiles {
 public:
  // `root`: the folder with index.html; `api_prefixes`: the first path segments of the API's
  // routes ("digitaltwins", "models", ...), which never fall back to index.html.
  StaticFiles(const std::filesystem::path& root, std::set<std::string> api_prefixes);

  // The answer to `method` `raw_path` (still percent-encoded, without the query), or nullopt
  // when this is not a static request (not GET/HEAD, or an API prefix): the API answers it.
  std::optional<Reply> Serve(std::string_view method, std::string_view raw_path,
                             const std::string* if_none_match) const;

  // The Content-Type for a file name (by extension; application/octet-stream if unknown).
  static std::string ContentType(std::string_view filename);

  // The API prefixes of a router's routes.
  static std::set<std::string> ApiPrefixes(const Router& router);

 private:
  std::optional<Reply> File(const std::filesystem::path& file, std::string_view rel,
                            const std::string* if_none_match) const;

  std::filesystem::path root_;  // canonical
  std::set<std::string> api_prefixes_;
};

}  // namespace doppel::api
