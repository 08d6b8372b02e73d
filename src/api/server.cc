#include "api/server.h"

#include <fmt/format.h>
#include <pthread.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <deque>
#include <thread>
#include <unordered_map>

#include "api/problem.h"
#include "api/routes.h"
#include "api/static_files.h"
#include "core/json.h"

namespace doppel::api {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = net::ip::tcp;

struct Server::Impl {
  Services services;
  ServerOptions options;
  Metrics metrics;
  Router router;
  std::unique_ptr<RouteContext> route_context;
  std::unique_ptr<StaticFiles> static_files;  // options.web_root, when set
  net::io_context ioc;
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  std::uint16_t port = 0;
  std::atomic<bool> stopped{false};
  // Live /events subscriptions, ended by Stop() so that no notify callback outlives the
  // io_context it posts to.
  std::mutex subs_mu;
  std::vector<std::weak_ptr<twin::Subscription>> subscriptions;
  // Sessions waiting for an asynchronous answer (a write's group commit). The server owns them,
  // not the engine's callbacks, so that a callback finishing after Stop() never destroys a
  // session (and its socket) after the io_context is gone.
  std::mutex inflight_mu;
  bool inflight_closed = false;
  std::unordered_map<const void*, std::shared_ptr<void>> inflight;

  void Accept();
};

namespace {

// The decoded query string.
std::map<std::string, std::string> ParseQuery(std::string_view q) {
  std::map<std::string, std::string> out;
  std::size_t start = 0;
  while (start < q.size()) {
    std::size_t end = q.find('&', start);
    if (end == std::string_view::npos) end = q.size();
    std::string_view kv = q.substr(start, end - start);
    std::size_t eq = kv.find('=');
    if (!kv.empty()) {
      out[PercentDecode(kv.substr(0, eq), true)] =
          eq == std::string_view::npos ? "" : PercentDecode(kv.substr(eq + 1), true);
    }
    start = end + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// WebSocket /events: the change feed, filtered.

class EventsSession : public std::enable_shared_from_this<EventsSession> {
 public:
  EventsSession(tcp::socket socket, Server::Impl& server, std::map<std::string, std::string> q)
      : ws_(std::move(socket)), server_(server), query_(std::move(q)) {}

  void Run(http::request<http::string_body> req) {
    req_ = std::move(req);  // must outlive the asynchronous handshake
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.async_accept(req_, beast::bind_front_handler(&EventsSession::OnAccept, shared_from_this()));
  }

 private:
  void OnAccept(beast::error_code ec) {
    if (ec) return;
    if (auto it = query_.find("twin"); it != query_.end()) twin_ = it->second;
    if (auto it = query_.find("model"); it != query_.end()) model_ = it->second;
    if (auto it = query_.find("path"); it != query_.end()) path_ = it->second;
    std::weak_ptr<EventsSession> weak = shared_from_this();
    auto exec = ws_.get_executor();
    sub_ = server_.services.graph->feed().Subscribe(server_.options.events_queue, [weak, exec] {
      net::post(exec, [weak] {
        if (auto self = weak.lock()) self->Pump();
      });
    });
    {
      std::lock_guard lock(server_.subs_mu);
      server_.subscriptions.push_back(sub_);
    }
    Send(json::serialize(
        json::object{{"type", "subscribed"}, {"twin", twin_}, {"model", model_}, {"path", path_}}));
    DoRead();
  }

  // Reads (and ignores) client messages so that close frames and pings are processed.
  void DoRead() {
    ws_.async_read(in_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->in_.consume(self->in_.size());
      if (ec) {
        self->Close();
        return;
      }
      self->DoRead();
    });
  }

  bool Matches(const twin::ChangeEvent& e) const {
    if (!twin_.empty() && e.twin_id != twin_) return false;
    if (!model_.empty() && e.model != model_) return false;
    if (!path_.empty()) {
      // A twin going stale or fresh again concerns every path of it; an anomaly its own path.
      if (e.kind == twin::ChangeKind::kTwinStale || e.kind == twin::ChangeKind::kTwinFresh) {
        return true;
      }
      if (twin::IsNotice(e.kind)) {
        const auto* p = e.data.is_object() ? e.data.get_object().if_contains("path") : nullptr;
        return p != nullptr && p->is_string() && p->get_string() == path_;
      }
      if (e.patch.is_array()) {
        for (const auto& op : e.patch.get_array()) {
          const auto* p = op.is_object() ? op.get_object().if_contains("path") : nullptr;
          if (p && p->is_string()) {
            std::string_view s = p->get_string();
            if (s == path_ ||
                (s.starts_with(path_) && s.size() > path_.size() && s[path_.size()] == '/')) {
              return true;
            }
          }
        }
        return false;
      }
      // Created/replaced twins carry every property: keep them when the path is present.
      if (e.data.is_object()) {
        std::string first = path_.substr(1, path_.find('/', 1) - 1);
        return e.data.get_object().contains(first);
      }
      return false;
    }
    return true;
  }

  // Moves events from the subscription into the socket only while nothing is waiting to be
  // written, so a client that stops reading leaves its events in the bounded subscription
  // queue, which then overflows (instead of this session buffering without limit).
  void Pump() {
    if (closed_ || !sub_ || !out_.empty()) return;
    std::vector<twin::ChangeEventPtr> events;
    bool ok = sub_->Drain(&events);
    for (const auto& e : events) {
      if (Matches(*e)) Send(json::serialize(e->ToJson()));
    }
    if (!ok && !overflow_sent_) {
      overflow_sent_ = true;
      Send(json::serialize(
          json::object{{"type", "overflow"},
                       {"message",
                        "this subscriber fell behind and events were dropped from here on; "
                        "re-read the state you need and subscribe again"}}));
      close_after_writes_ = true;
      server_.services.graph->feed().Unsubscribe(sub_);
    }
  }

  void Send(std::string text) {
    out_.push_back(std::move(text));
    if (out_.size() == 1) DoWrite();
  }

  void DoWrite() {
    ws_.text(true);
    ws_.async_write(
        net::buffer(out_.front()), [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (ec) {
            self->Close();
            return;
          }
          self->out_.pop_front();
          if (!self->out_.empty()) {
            self->DoWrite();
          } else if (!self->close_after_writes_) {
            self->Pump();
          } else {
            self->ws_.async_close(
                websocket::close_reason(websocket::close_code::policy_error, "subscriber overflow"),
                [self](beast::error_code) { self->Close(); });
          }
        });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    if (sub_) server_.services.graph->feed().Unsubscribe(sub_);
  }

  websocket::stream<tcp::socket> ws_;
  http::request<http::string_body> req_;
  Server::Impl& server_;
  std::map<std::string, std::string> query_;
  std::string twin_, model_, path_;
  std::shared_ptr<twin::Subscription> sub_;
  beast::flat_buffer in_;
  std::deque<std::string> out_;
  bool overflow_sent_ = false;
  bool close_after_writes_ = false;
  bool closed_ = false;
};

// ---------------------------------------------------------------------------------------------
// HTTP

// One keep-alive connection. HTTP/1.1 pipelining: the session keeps reading while earlier
// requests wait for their answers (up to kMaxPipeline outstanding), and writes the answers in
// request order, coalescing every answer that is ready into one write. A client that sends one
// request at a time sees plain keep-alive; a pipelining client keeps the twin graph's group
// commits full.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  static constexpr std::size_t kMaxPipeline = 64;

  HttpSession(tcp::socket socket, Server::Impl& server)
      : stream_(std::move(socket)), server_(server) {}

  void Run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&HttpSession::DoRead, shared_from_this()));
  }

 private:
  // What the answer to one request needs from the request.
  struct Exchange {
    std::uint64_t seq = 0;
    std::string method = "?";
    std::string route;
    unsigned version = 11;
    bool keep_alive = true;
    bool head = false;
    std::vector<std::pair<std::string, std::string>> extra_headers;
    std::chrono::steady_clock::time_point start;
  };
  // A response slot, in request order.
  // A request waiting for the ones before it (Route::pipelining).
  struct Parked {
    Request request;
    const Route* route;
    Exchange exchange;
  };
  struct Slot {
    bool ready = false;
    bool close = false;  // close the connection after writing this answer
    std::string bytes;
  };

  void DoRead() {
    if (reading_ || read_closed_ || parked_ || pending_.size() >= kMaxPipeline) return;
    reading_ = true;
    parser_.emplace();
    parser_->body_limit(server_.options.max_body_bytes);
    parser_->header_limit(64 * 1024);
    stream_.expires_after(std::chrono::seconds(120));
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    reading_ = false;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::connection_reset || ec == net::error::operation_aborted) {
      read_closed_ = true;  // answers already owed are still written
      return Flush();
    }
    Exchange ex;
    ex.seq = next_seq_++;
    ex.start = std::chrono::steady_clock::now();
    pending_.emplace_back();
    if (ec == http::error::body_limit) {
      ex.keep_alive = false;
      read_closed_ = true;
      ex.route = "(body too large)";
      return SendProblem(
          ex,
          core::Status("PAYLOAD_TOO_LARGE", fmt::format("the request body exceeds {} bytes",
                                                        server_.options.max_body_bytes)),
          "");
    }
    if (ec) {
      ex.keep_alive = false;
      read_closed_ = true;  // the stream cannot be re-synchronised after a framing error
      ex.route = "(bad request)";
      return SendProblem(ex, core::Status("BAD_REQUEST", "malformed HTTP request: " + ec.message()),
                         "");
    }
    auto req = parser_->release();
    ex.keep_alive = req.keep_alive();
    ex.version = req.version();
    ex.head = req.method() == http::verb::head;
    if (!ex.keep_alive) read_closed_ = true;
    std::string_view target(req.target().data(), req.target().size());
    std::size_t qpos = target.find('?');
    std::string_view path = target.substr(0, qpos);
    auto query = ParseQuery(qpos == std::string_view::npos ? "" : target.substr(qpos + 1));

    if (websocket::is_upgrade(req) && path == "/events") {
      ex.route = "/events";
      ex.method = "GET";
      if (pending_.size() > 1) {
        ex.keep_alive = false;
        read_closed_ = true;
        return SendProblem(ex,
                           core::Status("BAD_REQUEST",
                                        "a WebSocket upgrade cannot be pipelined behind other "
                                        "requests; wait for their answers first"),
                           std::string(path));
      }
      // Authenticate the upgrade like any request. Browsers cannot set headers on a WebSocket,
      // so the key may also come as ?access_token=<key> (used only when there is no header).
      if (auto tok = query.find("access_token"); tok != query.end()) {
        if (req.find(http::field::authorization) == req.end()) {
          req.set(http::field::authorization, "Bearer " + tok->second);
        }
        query.erase(tok);
      }
      core::Status auth = Authenticate(req, Role::kReader, /*public_route=*/false, nullptr, ex);
      if (!auth.ok()) return SendProblem(ex, auth, std::string(path));
      pending_.pop_back();
      server_.metrics.ObserveRequest("GET", "/events", 101, 0);
      stream_.expires_never();
      read_closed_ = true;
      std::make_shared<EventsSession>(stream_.release_socket(), server_, std::move(query))
          ->Run(std::move(req));
      return;
    }

    Request r;
    r.method = std::string(req.method_string());
    ex.method = r.method;
    r.path = PercentDecode(path, false);
    r.query = std::move(query);
    for (const auto& f : req) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(c));
      r.headers[name] = std::string(f.value());
    }
    r.body = std::move(req.body());

    std::string allow;
    auto route = server_.router.Match(r.method, path, &r.params, &allow);
    if (!route.ok()) {
      ex.route = "(unmatched)";
      // The web UI's files (static_files.h): GET/HEAD of a path no route matched, no key needed.
      if (server_.static_files && allow.empty()) {
        if (auto reply = server_.static_files->Serve(r.method, path, r.Header("if-none-match"))) {
          ex.route = "(static)";
          Finish(ex, std::move(*reply));
          return DoRead();
        }
      }
      // Without a valid key, an unknown path answers 401 like a known one: which paths exist
      // is not disclosed to anonymous callers.
      if (core::Status auth = Authenticate(req, Role::kReader, false, nullptr, ex); !auth.ok()) {
        return SendProblem(ex, auth, r.path);
      }
      if (!allow.empty()) ex.extra_headers.emplace_back("Allow", allow);
      return SendProblem(ex, route.status(), r.path);
    }
    const Route* rt = *route;
    ex.route = rt->path;
    core::Status auth = Authenticate(req, rt->min_role, rt->public_route, &r.key, ex);
    if (!auth.ok()) return SendProblem(ex, auth, r.path);
    // Line protocol is read whatever the Content-Type (as InfluxDB does; curl's default is
    // application/x-www-form-urlencoded).
    if (!rt->request_body.empty() && rt->request_body != "line-protocol") {
      const std::string* ct = r.Header("content-type");
      if (ct != nullptr && !ct->empty()) {
        std::string_view c(*ct);
        bool ok = rt->request_body == "ndjson"
                      ? (c.find("ndjson") != std::string_view::npos ||
                         c.find("json") != std::string_view::npos || c.starts_with("text/plain"))
                      : c.find("json") != std::string_view::npos;
        if (!ok) {
          return SendProblem(ex,
                             core::Status("UNSUPPORTED_MEDIA_TYPE",
                                          fmt::format("Content-Type '{}' is not accepted here; "
                                                      "send application/json",
                                                      *ct)),
                             r.path);
        }
      }
    }
    if (outstanding_ > 0 &&
        (rt->pipelining != group_ || rt->pipelining == Pipelining::kExclusive)) {
      // It must not overlap the requests still being answered: reading resumes after it runs.
      parked_.emplace(Parked{std::move(r), rt, std::move(ex)});
      return;
    }
    Dispatch(std::move(r), *rt, std::move(ex));
    DoRead();  // the next pipelined request, if any
  }

  void Dispatch(Request r, const Route& rt, Exchange ex) {
    // The server keeps the session alive while any answer is outstanding (a write waits for
    // its group commit); the responder only holds a weak reference.
    if (outstanding_++ == 0) {
      std::lock_guard lock(server_.inflight_mu);
      if (server_.inflight_closed) return;
      server_.inflight[this] = shared_from_this();
    }
    group_ = rt.pipelining;
    std::weak_ptr<HttpSession> weak = shared_from_this();
    Server::Impl* server = &server_;
    Respond respond = [weak, server, ex = std::make_shared<Exchange>(std::move(ex))](Reply reply) {
      // Under the server's lock so that nothing is posted once Stop() has closed the gate.
      std::lock_guard lock(server->inflight_mu);
      if (server->inflight_closed) return;
      if (auto self = weak.lock()) self->Deliver(ex, std::move(reply));
    };
    rt.handler(r, respond);
  }

  // Called from any thread (a shard completing a group commit answers many requests in a row):
  // answers collect in the inbox and one task per batch moves them onto the strand.
  void Deliver(const std::shared_ptr<Exchange>& ex, Reply reply) {
    bool post = false;
    {
      std::lock_guard lock(inbox_mu_);
      inbox_.emplace_back(ex, std::move(reply));
      post = !drain_posted_;
      drain_posted_ = true;
    }
    if (post) {
      net::post(stream_.get_executor(), [self = shared_from_this()] { self->DrainInbox(); });
    }
  }

  void DrainInbox() {
    std::vector<std::pair<std::shared_ptr<Exchange>, Reply>> batch;
    {
      std::lock_guard lock(inbox_mu_);
      batch.swap(inbox_);
      drain_posted_ = false;
    }
    for (auto& [ex, reply] : batch) {
      Answered();
      Finish(*ex, std::move(reply), /*flush=*/false);
    }
    Flush();
    if (outstanding_ == 0 && parked_) {
      Parked p = std::move(*parked_);
      parked_.reset();
      Dispatch(std::move(p.request), *p.route, std::move(p.exchange));
      DoRead();
    }
  }

  // One outstanding handler answered; the server stops holding the session when none is left.
  void Answered() {
    if (--outstanding_ != 0) return;
    std::shared_ptr<void> held;  // released after the lock
    std::lock_guard lock(server_.inflight_mu);
    if (auto it = server_.inflight.find(this); it != server_.inflight.end()) {
      held = std::move(it->second);
      server_.inflight.erase(it);
    }
  }

  core::Status Authenticate(const http::request<http::string_body>& req, Role need,
                            bool public_route, std::optional<ApiKey>* key, Exchange& ex) {
    if (server_.options.insecure || public_route) return {};
    auto it = req.find(http::field::authorization);
    if (it == req.end()) {
      ex.extra_headers.emplace_back("WWW-Authenticate", "Bearer");
      return core::Status("UNAUTHORIZED",
                          "an API key is required: send 'Authorization: Bearer <key>' "
                          "(create one with 'doppel key create')");
    }
    std::string_view v(it->value().data(), it->value().size());
    if (!v.starts_with("Bearer ")) {
      ex.extra_headers.emplace_back("WWW-Authenticate", "Bearer");
      return core::Status("UNAUTHORIZED", "the Authorization header must be 'Bearer <key>'");
    }
    auto k = server_.services.keys->Verify(v.substr(7));
    if (!k) {
      ex.extra_headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
      return core::Status("UNAUTHORIZED", "the API key is unknown or revoked");
    }
    if (k->role < need) {
      return core::Status("FORBIDDEN", fmt::format("this needs the {} role; the key has {}",
                                                   RoleName(need), RoleName(k->role)));
    }
    if (key != nullptr) *key = k;
    return {};
  }

  void SendProblem(const Exchange& ex, const core::Status& s, const std::string& instance) {
    unsigned status = HttpStatusFor(s.code());
    Reply r = Reply::Json(status, ProblemJson(s, status, instance));
    r.content_type = "application/problem+json";
    Finish(ex, std::move(r));
    DoRead();
  }

  // Serialises the answer into its slot and writes whatever is ready at the front.
  void Finish(const Exchange& ex, Reply reply, bool flush = true) {
    double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - ex.start).count();
    server_.metrics.ObserveRequest(ex.method, ex.route, reply.status, secs);
    if (ex.seq < first_seq_ || ex.seq - first_seq_ >= pending_.size()) return;  // closed
    Slot& slot = pending_[ex.seq - first_seq_];
    std::string& b = slot.bytes;
    const auto status = static_cast<http::status>(reply.status);
    const auto r = http::obsolete_reason(status);
    const std::string_view reason(r.data(), r.size());
    b.reserve(160 + reply.body.size());
    fmt::format_to(std::back_inserter(b), "HTTP/{}.{} {} {}\r\nServer: doppel\r\n", ex.version / 10,
                   ex.version % 10, reply.status, reason);
    auto header = [&b](std::string_view k, std::string_view v) {
      b += k;
      b += ": ";
      b += v;
      b += "\r\n";
    };
    if (!reply.content_type.empty()) header("Content-Type", reply.content_type);
    for (const auto& [k, v] : ex.extra_headers) header(k, v);
    for (const auto& [k, v] : reply.headers) header(k, v);
    // RFC 9110 §8.6: no Content-Length on 1xx and 204 answers (nor a body on 304).
    const bool bodiless = reply.status < 200 || reply.status == 204 || reply.status == 304;
    if (!bodiless) header("Content-Length", fmt::format_int(reply.body.size()).str());
    if (!ex.keep_alive) {
      header("Connection", "close");
    } else if (ex.version < 11) {
      header("Connection", "keep-alive");
    }
    b += "\r\n";
    if (!bodiless && !ex.head) b += reply.body;
    slot.ready = true;
    slot.close = !ex.keep_alive;
    if (flush) Flush();
  }

  void Flush() {
    if (writing_ || closed_) return;
    out_.clear();
    bool close = false;
    while (!pending_.empty() && pending_.front().ready && !close) {
      out_ += pending_.front().bytes;
      close = pending_.front().close;
      pending_.pop_front();
      ++first_seq_;
    }
    if (out_.empty()) {
      if (read_closed_ && pending_.empty() && !reading_) Shutdown();
      return;
    }
    if (close) read_closed_ = true;
    writing_ = true;
    net::async_write(stream_, net::buffer(out_),
                     [self = shared_from_this(), close](beast::error_code ec, std::size_t) {
                       self->writing_ = false;
                       if (ec || close) return self->Shutdown();
                       self->Flush();
                       self->DoRead();
                     });
  }

  void Shutdown() {
    if (closed_) return;
    closed_ = true;
    read_closed_ = true;
    pending_.clear();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  Server::Impl& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<Slot> pending_;  // pending_[i] answers request first_seq_ + i
  std::uint64_t first_seq_ = 0;
  std::uint64_t next_seq_ = 0;
  std::string out_;
  int outstanding_ = 0;                        // handlers that have not answered yet
  Pipelining group_ = Pipelining::kExclusive;  // what the outstanding handlers are
  std::optional<Parked> parked_;
  std::mutex inbox_mu_;  // guards inbox_ and drain_posted_ (written by engine threads)
  std::vector<std::pair<std::shared_ptr<Exchange>, Reply>> inbox_;
  bool drain_posted_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool read_closed_ = false;  // no more requests will be read
  bool closed_ = false;
};

}  // namespace

void Server::Impl::Accept() {
  acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || stopped) return;
    } else {
      socket.set_option(tcp::no_delay(true));
      std::make_shared<HttpSession>(std::move(socket), *this)->Run();
    }
    Accept();
  });
}

Server::Server(Services services, ServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->services = services;
  impl_->options = std::move(options);
  impl_->route_context = std::make_unique<RouteContext>();
  impl_->route_context->services = services;
  impl_->route_context->options = &impl_->options;
  impl_->route_context->metrics = &impl_->metrics;
  impl_->route_context->router = &impl_->router;
  RegisterRoutes(impl_->router, *impl_->route_context);
  if (!impl_->options.web_root.empty()) {
    impl_->static_files = std::make_unique<StaticFiles>(impl_->options.web_root,
                                                        StaticFiles::ApiPrefixes(impl_->router));
  }
}

Server::~Server() { Stop(); }

core::Status Server::Start() {
  beast::error_code ec;
  auto address = net::ip::make_address(impl_->options.address, ec);
  if (ec) {
    return core::Status("STARTUP_FAILED",
                        fmt::format("'{}' is not an IP address", impl_->options.address));
  }
  tcp::endpoint ep(address, impl_->options.port);
  impl_->acceptor.emplace(impl_->ioc);
  impl_->acceptor->open(ep.protocol(), ec);
  if (!ec) impl_->acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor->bind(ep, ec);
  if (!ec) impl_->acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return core::Status("STARTUP_FAILED",
                        fmt::format("cannot listen on {}:{}: {}", impl_->options.address,
                                    impl_->options.port, ec.message()));
  }
  impl_->port = impl_->acceptor->local_endpoint().port();
  impl_->Accept();
  int n = std::max(1, impl_->options.io_threads);
  for (int i = 0; i < n; ++i) {
    impl_->threads.emplace_back([this] {
      pthread_setname_np(pthread_self(), "doppel-http");
      impl_->ioc.run();
    });
  }
  return {};
}

void Server::Stop() {
  if (impl_->stopped.exchange(true)) return;
  {
    std::lock_guard lock(impl_->subs_mu);
    for (const auto& w : impl_->subscriptions) {
      if (auto s = w.lock()) impl_->services.graph->feed().Unsubscribe(s);
    }
    impl_->subscriptions.clear();
  }
  net::post(impl_->ioc, [this] {
    beast::error_code ec;
    if (impl_->acceptor) impl_->acceptor->close(ec);
  });
  impl_->ioc.stop();
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  // Sessions still waiting for the engine are closed now, while the io_context exists.
  std::unordered_map<const void*, std::shared_ptr<void>> inflight;
  {
    std::lock_guard lock(impl_->inflight_mu);
    impl_->inflight_closed = true;
    inflight.swap(impl_->inflight);
  }
  inflight.clear();
  if (impl_->route_context->imports) impl_->route_context->imports->Stop();
}

std::uint16_t Server::port() const { return impl_->port; }
Metrics& Server::metrics() { return impl_->metrics; }

}  // namespace doppel::api
