// Test helpers for the API integration tests: a small HTTP/1.1 client (Boost.Beast, keep-alive,
// one connection reused until the server closes it) and a WebSocket client for /events whose
// reads happen only when the test asks for a message (so a test can "not read" on purpose).
//
// Every network operation has a generous timeout so that a broken server fails a test instead
// of hanging it; no test asserts on how long anything takes.
#pragma once

#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace doppel::apitest {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

using Headers = std::vector<std::pair<std::string, std::string>>;

inline constexpr std::chrono::seconds kIoTimeout{30};

struct HttpResponse {
  unsigned status = 0;                         // 0: the request failed at the transport level
  std::string transport_error;                 // set when status == 0
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  bool keep_alive = false;

  bool has(std::string_view name) const { return headers.contains(Lower(name)); }
  std::string header(std::string_view name) const {
    auto it = headers.find(Lower(name));
    return it == headers.end() ? std::string() : it->second;
  }
  // The body as JSON (null when it is not JSON).
  boost::json::value json() const {
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    return ec ? boost::json::value() : v;
  }

  static std::string Lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  }
};

class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port, std::string bearer = {})
      : port_(port), bearer_(std::move(bearer)) {}
  ~HttpClient() { Close(); }
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  void set_bearer(std::string key) { bearer_ = std::move(key); }
  // TCP connections opened so far (keep-alive: stays 1 while the server keeps the connection).
  int connections_opened() const { return connections_; }
  bool connected() const { return stream_.has_value(); }

  // Sends one request. A JSON body gets Content-Type application/json unless `headers` sets
  // one. The connection is reused; if the server closed a kept-alive connection in between,
  // one reconnect is attempted (and counted).
  HttpResponse Send(std::string_view method, const std::string& target, std::string body = {},
                    const Headers& headers = {}) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool fresh = false;
      if (!stream_) {
        if (auto err = Connect(); !err.empty()) return Failed(err);
        fresh = true;
      }
      http::request<http::string_body> req{http::string_to_verb(method), target, 11};
      if (req.method() == http::verb::unknown) req.method_string(method);
      req.set(http::field::host, "127.0.0.1");
      req.set(http::field::user_agent, "doppel-api-test");
      if (!bearer_.empty()) req.set(http::field::authorization, "Bearer " + bearer_);
      bool has_ct = false;
      for (const auto& [k, v] : headers) {
        req.set(k, v);
        has_ct |= HttpResponse::Lower(k) == "content-type";
      }
      if (!body.empty() && !has_ct) req.set(http::field::content_type, "application/json");
      req.body() = body;
      bool has_connection = false;
      for (const auto& [k, v] : headers) has_connection |= HttpResponse::Lower(k) == "connection";
      if (!has_connection) req.keep_alive(true);
      req.prepare_payload();

      beast::error_code ec = RunOp([&](auto handler) {
        http::async_write(*stream_, req, std::move(handler));
      });
      http::response_parser<http::string_body> parser;
      parser.body_limit(1ull << 30);
      if (!ec) {
        ec = RunOp([&](auto handler) {
          http::async_read(*stream_, buffer_, parser, std::move(handler));
        });
      }
      if (ec) {
        Close();
        // A kept-alive connection the server closed before our request: reconnect once.
        if (!fresh && attempt == 0) continue;
        return Failed(ec.message());
      }
      auto res = parser.release();
      HttpResponse out;
      out.status = res.result_int();
      for (const auto& f : res) {
        std::string name = HttpResponse::Lower(std::string_view(f.name_string().data(),
                                                                f.name_string().size()));
        auto [it, inserted] = out.headers.emplace(name, std::string(f.value()));
        if (!inserted) it->second += ", " + std::string(f.value());
      }
      out.body = std::move(res.body());
      out.keep_alive = res.keep_alive();
      if (!out.keep_alive) Close();
      return out;
    }
    return Failed("unreachable");
  }

  HttpResponse Get(const std::string& target, const Headers& h = {}) {
    return Send("GET", target, {}, h);
  }
  HttpResponse Delete(const std::string& target, const Headers& h = {}) {
    return Send("DELETE", target, {}, h);
  }
  HttpResponse Put(const std::string& target, std::string body, const Headers& h = {}) {
    return Send("PUT", target, std::move(body), h);
  }
  HttpResponse Post(const std::string& target, std::string body, const Headers& h = {}) {
    return Send("POST", target, std::move(body), h);
  }
  HttpResponse Patch(const std::string& target, std::string body, const Headers& h = {}) {
    Headers all = h;
    bool has_ct = false;
    for (const auto& [k, v] : h) has_ct |= HttpResponse::Lower(k) == "content-type";
    if (!has_ct) all.emplace_back("Content-Type", "application/json-patch+json");
    return Send("PATCH", target, std::move(body), all);
  }

  void Close() {
    if (stream_) {
      beast::error_code ec;
      stream_->socket().shutdown(tcp::socket::shutdown_both, ec);
      stream_->socket().close(ec);
      stream_.reset();
    }
    buffer_.clear();
  }

 private:
  std::string Connect() {
    stream_.emplace(ioc_);
    tcp::endpoint ep(net::ip::make_address("127.0.0.1"), port_);
    beast::error_code ec = RunOp([&](auto handler) {
      stream_->async_connect(ep, [h = std::move(handler)](beast::error_code e) mutable {
        h(e, 0);
      });
    });
    if (ec) {
      stream_.reset();
      return "connect: " + ec.message();
    }
    ++connections_;
    return {};
  }

  // Runs one asynchronous operation to completion with a timeout.
  template <typename Start>
  beast::error_code RunOp(Start&& start) {
    beast::error_code result = net::error::would_block;
    stream_->expires_after(kIoTimeout);
    start([&result](beast::error_code ec, std::size_t) { result = ec; });
    ioc_.restart();
    ioc_.run();
    return result;
  }

  static HttpResponse Failed(std::string why) {
    HttpResponse r;
    r.transport_error = std::move(why);
    return r;
  }

  std::uint16_t port_;
  std::string bearer_;
  net::io_context ioc_;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
  int connections_ = 0;
};

// One message from the server, or the end of the stream.
struct WsMessage {
  bool closed = false;        // the stream ended (close frame or transport error)
  std::string text;           // the message (when !closed)
  std::string close_reason;   // when closed: the close frame's reason or the error
  unsigned close_code = 0;    // when closed by a close frame
  boost::json::value json() const {
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    return ec ? boost::json::value() : v;
  }
};

// WebSocket client for /events. Reads are issued only by Next(): until a test calls it, nothing
// is read from the socket (the server's writes pile up in the kernel buffers).
class WsClient {
 public:
  WsClient() = default;
  ~WsClient() { Shutdown(); }
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // Connects and upgrades. Returns the HTTP status of the handshake answer (101 on success).
  unsigned Connect(std::uint16_t port, const std::string& target, std::string bearer = {},
                   std::string* response_body = nullptr) {
    ws_.emplace(ioc_);
    beast::error_code ec;
    tcp::endpoint ep(net::ip::make_address("127.0.0.1"), port);
    beast::get_lowest_layer(*ws_).connect(ep, ec);
    if (ec) return 0;
    if (!bearer.empty()) {
      ws_->set_option(websocket::stream_base::decorator(
          [bearer](websocket::request_type& req) {
            req.set(http::field::authorization, "Bearer " + bearer);
          }));
    }
    websocket::response_type res;
    ws_->handshake(res, "127.0.0.1", target, ec);
    if (response_body != nullptr) *response_body = res.body();
    if (ec) return res.result_int();
    connected_ = true;
    reader_ = std::thread([this] { ReadLoop(); });
    return res.result_int();
  }

  // The next message, or nullopt after `timeout` (the read stays pending: its message is what
  // the following Next returns).
  std::optional<WsMessage> Next(std::chrono::milliseconds timeout = kIoTimeout) {
    std::unique_lock lock(mu_);
    if (!connected_) return WsMessage{true, {}, "not connected", 0};
    if (ended_ && results_.empty()) return WsMessage{true, {}, "the stream already ended", 0};
    if (results_.empty() && !read_requested_ && !ended_) {
      read_requested_ = true;
      cv_.notify_all();
    }
    if (!cv_.wait_for(lock, timeout, [&] { return !results_.empty(); })) return std::nullopt;
    WsMessage m = std::move(results_.front());
    results_.pop_front();
    return m;
  }

  void Shutdown() {
    if (ws_ && connected_) {
      {
        std::lock_guard lock(mu_);
        stopping_ = true;
        cv_.notify_all();
      }
      // Unblocks a pending blocking read in the reader thread.
      ::shutdown(beast::get_lowest_layer(*ws_).socket().native_handle(), SHUT_RDWR);
    }
    if (reader_.joinable()) reader_.join();
    connected_ = false;
  }

 private:
  void ReadLoop() {
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return read_requested_ || stopping_; });
        if (stopping_) return;
      }
      beast::flat_buffer buf;
      beast::error_code ec;
      ws_->read(buf, ec);
      WsMessage m;
      if (ec) {
        m.closed = true;
        m.close_reason = ws_->reason().reason.empty()
                             ? ec.message()
                             : std::string(ws_->reason().reason.data(),
                                           ws_->reason().reason.size());
        m.close_code = ws_->reason().code;
      } else {
        m.text = beast::buffers_to_string(buf.data());
      }
      std::lock_guard lock(mu_);
      results_.push_back(std::move(m));
      read_requested_ = false;
      if (ec) ended_ = true;
      cv_.notify_all();
      if (ec) return;
    }
  }

  net::io_context ioc_;
  std::optional<websocket::stream<beast::tcp_stream>> ws_;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<WsMessage> results_;
  bool read_requested_ = false;
  bool stopping_ = false;
  bool ended_ = false;
  bool connected_ = false;
};

}  // namespace doppel::apitest
