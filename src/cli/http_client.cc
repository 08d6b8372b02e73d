#include "cli/http_client.h"

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <optional>

#include "core/json.h"

namespace doppel::cli {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct HttpClient::Impl {
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;
};

HttpClient::HttpClient(const std::string& base, std::string key)
    : key_(std::move(key)), impl_(std::make_unique<Impl>()) {
  std::string_view b = base;
  if (b.starts_with("http://")) b.remove_prefix(7);
  while (!b.empty() && b.back() == '/') b.remove_suffix(1);
  std::size_t colon = b.rfind(':');
  host_ = std::string(b.substr(0, colon));
  port_ = colon == std::string_view::npos ? "80" : std::string(b.substr(colon + 1));
}

HttpClient::~HttpClient() = default;

core::Result<HttpResponse> HttpClient::Request(const std::string& method,
                                               const std::string& target,
                                               const std::string& body,
                                               const std::string& content_type,
                                               const std::map<std::string, std::string>& headers) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    beast::error_code ec;
    if (!impl_->stream) {
      tcp::resolver resolver(impl_->ioc);
      auto results = resolver.resolve(host_, port_, ec);
      if (ec) {
        return core::Status("CONNECTION_FAILED",
                            fmt::format("cannot resolve {}:{}: {}", host_, port_, ec.message()));
      }
      impl_->stream.emplace(impl_->ioc);
      impl_->stream->connect(results, ec);
      if (ec) {
        impl_->stream.reset();
        return core::Status("CONNECTION_FAILED",
                            fmt::format("cannot connect to http://{}:{} ({}); is `doppel serve` "
                                        "running?",
                                        host_, port_, ec.message()));
      }
    }
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, host_);
    req.set(http::field::user_agent, "doppel-cli");
    if (!key_.empty()) req.set(http::field::authorization, "Bearer " + key_);
    for (const auto& [k, v] : headers) req.set(k, v);
    if (!body.empty()) {
      req.set(http::field::content_type, content_type);
      req.body() = body;
    }
    req.keep_alive(true);
    req.prepare_payload();
    http::write(*impl_->stream, req, ec);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ull << 30);
    if (!ec) http::read(*impl_->stream, buffer, parser, ec);
    if (ec) {
      impl_->stream.reset();  // the server closed a kept-alive connection: reconnect once
      if (attempt == 0) continue;
      return core::Status("CONNECTION_FAILED", "the connection failed: " + ec.message());
    }
    auto res = parser.release();
    HttpResponse out;
    out.status = res.result_int();
    out.body = std::move(res.body());
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(c));
      out.headers[name] = std::string(f.value());
    }
    if (!res.keep_alive()) impl_->stream.reset();
    return out;
  }
  return core::Status("CONNECTION_FAILED", "the connection failed");
}

int PrintProblem(const HttpResponse& r) {
  auto v = core::ParseJson(r.body);
  if (!v.ok() || !v->is_object() || !v->get_object().contains("code")) {
    fmt::print(stderr, "HTTP {}: {}\n", r.status, r.body);
    return 1;
  }
  const auto& o = v->get_object();
  auto str = [&](const char* k) {
    const auto* x = o.if_contains(k);
    return x && x->is_string() ? std::string(x->get_string()) : std::string();
  };
  fmt::print(stderr, "error {}: {}: {}", r.status, str("code"), str("detail"));
  if (!str("pointer").empty()) fmt::print(stderr, " (at {})", str("pointer"));
  fmt::print(stderr, "\n");
  if (const auto* errs = o.if_contains("errors"); errs && errs->is_array()) {
    for (const auto& e : errs->get_array()) {
      if (!e.is_object()) continue;
      const auto& eo = e.get_object();
      auto s = [&](const char* k) {
        const auto* x = eo.if_contains(k);
        return x && x->is_string() ? std::string(x->get_string()) : std::string();
      };
      fmt::print(stderr, "  {}: {}: {}\n", s("pointer").empty() ? "/" : s("pointer"), s("code"),
                 s("message"));
    }
  }
  return 1;
}

}  // namespace doppel::cli
