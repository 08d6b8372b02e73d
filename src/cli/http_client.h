// doppel::cli — a small blocking HTTP/1.1 client for the CLI commands that talk to a server.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "core/status.h"

namespace doppel::cli {

struct HttpResponse {
  unsigned status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

class HttpClient {
 public:
  // `base` like "http://127.0.0.1:8080"; `key` the API key (may be empty).
  HttpClient(const std::string& base, std::string key);
  ~HttpClient();

  // CONNECTION_FAILED when the server cannot be reached.
  core::Result<HttpResponse> Request(const std::string& method, const std::string& target,
                                     const std::string& body = {},
                                     const std::string& content_type = "application/json",
                                     const std::map<std::string, std::string>& headers = {});

 private:
  struct Impl;
  std::string host_, port_, key_;
  std::unique_ptr<Impl> impl_;
};

// Prints a problem+json body as "CODE: detail" plus each listed error; returns exit code 1.
int PrintProblem(const HttpResponse& r);

}  // namespace doppel::cli
