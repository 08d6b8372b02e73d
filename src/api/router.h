// doppel::api — routes: the table that both dispatches requests and generates /openapi.json.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/auth.h"
#include "core/status.h"

namespace doppel::api {

// What a handler produces.
struct Reply {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static Reply Json(unsigned status, const boost::json::value& v);
  static Reply Empty(unsigned status);
};

using Respond = std::function<void(Reply)>;

// One request as handlers see it.
struct Request {
  std::string method;
  std::string path;                            // decoded path, without the query
  std::vector<std::string> params;             // values of the route's {placeholders}, in order
  std::map<std::string, std::string> query;    // decoded query parameters
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::optional<ApiKey> key;  // the caller (absent with --insecure)

  const std::string* Header(std::string_view name) const;
  const std::string* Query(std::string_view name) const;
};

// How a request may overlap the requests pipelined before it on the same connection (RFC 9112
// §9.3.2 allows parallel processing of safe requests only; doppel also overlaps writes to twin
// documents, which the twin graph applies in submission order per twin and which never depend
// on another twin's document). Anything else waits until every earlier request is answered.
enum class Pipelining {
  kSafe,       // reads (GET, POST /query): overlap other reads
  kTwinWrite,  // PUT/PATCH/DELETE of one twin or component: overlap other twin writes
  kExclusive,  // everything else: runs alone
};

struct Route {
  std::string method;
  std::string path;  // template, e.g. "/digitaltwins/{id}/relationships/{relationshipId}"
  Role min_role = Role::kReader;
  bool public_route = false;  // no key needed even when auth is on
  std::string summary;
  std::string request_body;  // "json", "json-patch", "ndjson", or "" (none)
  Pipelining pipelining = Pipelining::kExclusive;
  std::function<void(Request&, const Respond&)> handler;
};

class Router {
 public:
  void Add(Route r);
  // Finds the route for (method, path); fills params. Returns ROUTE_NOT_FOUND or
  // METHOD_NOT_ALLOWED (with the allowed methods in `allow`).
  core::Result<const Route*> Match(std::string_view method, std::string_view path,
                                   std::vector<std::string>* params, std::string* allow) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
  std::vector<std::vector<std::string>> segments_;  // routes_[i].path split once, at Add
};

// Splits "/a/b%20c/d" into decoded segments {"a","b c","d"}; nullopt on bad escapes.
std::optional<std::vector<std::string>> SplitPath(std::string_view path);
std::string PercentDecode(std::string_view s, bool plus_is_space);
std::string PercentEncode(std::string_view s);

}  // namespace doppel::api
