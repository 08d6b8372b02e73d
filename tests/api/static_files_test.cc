// The web UI's static files (api/static_files.h) over real HTTP: content types, caching headers,
// ETag/If-None-Match, the SPA fallback, path traversal refused (dot segments, encoded, symlinks
// out of the root), no key needed for them, and API routes (and API prefixes) still answered by
// the API.
#include "api/static_files.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "api/auth.h"
#include "api/http_test_client.h"
#include "api/server.h"
#include "model/model_repository.h"
#include "scratch_dir.h"
#include "twin/twin_graph.h"

namespace doppel {
namespace {

namespace fs = std::filesystem;
using apitest::HttpClient;
using apitest::HttpResponse;

void Write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

const std::string kIndex =
    "<!doctype html><title>doppel</title><script src=\"/assets/app-1a2b3c.js\"></script>";
const std::string kSecret = "TOP-SECRET-OUTSIDE-THE-ROOT";

// An in-memory engine and a server with web_root = <scratch>/www.
class StaticFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_ / "www";
    Write(root_ / "index.html", kIndex);
    Write(root_ / "assets/app-1a2b3c.js", "console.log('doppel')");
    Write(root_ / "assets/style-9f8e7d.css", "body{}");
    Write(root_ / "logo.svg", "<svg/>");
    Write(root_ / "scene.glb", "glTF");
    Write(root_ / "healthz", "a file that must not shadow the API route");
    Write(root_ / ".hidden", "dot-file");
    Write(dir_ / "secret.txt", kSecret);
    fs::create_symlink(dir_ / "secret.txt", root_ / "link.txt");
    fs::create_directory_symlink(dir_.path(), root_ / "out");
    Start(/*insecure=*/true, root_);
  }
  void TearDown() override { Stop(); }

  void Start(bool insecure, const fs::path& web_root) {
    models_ = std::make_unique<model::ModelRepository>();
    graph_ = std::make_unique<twin::TwinGraph>(*models_, nullptr);
    keys_ = std::make_unique<api::KeyStore>(nullptr);
    api::ServerOptions o;
    o.address = "127.0.0.1";
    o.port = 0;
    o.io_threads = 1;
    o.insecure = insecure;
    o.web_root = web_root;
    server_ = std::make_unique<api::Server>(
        api::Services{models_.get(), graph_.get(), nullptr, keys_.get(), nullptr}, o);
    ASSERT_TRUE(server_->Start().ok());
    http_ = std::make_unique<HttpClient>(server_->port());
  }
  void Stop() {
    http_.reset();
    if (server_) server_->Stop();
    server_.reset();
    graph_.reset();
    keys_.reset();
    models_.reset();
  }
  void Restart(bool insecure, const fs::path& web_root) {
    Stop();
    Start(insecure, web_root);
  }

  HttpClient& http() { return *http_; }

  // One request written as raw bytes (targets a client library would normalise), with
  // Connection: close; the whole answer as text.
  std::string Raw(const std::string& request) {
    namespace net = boost::asio;
    net::io_context ioc;
    net::ip::tcp::socket s(ioc);
    s.connect({net::ip::make_address("127.0.0.1"), server_->port()});
    net::write(s, net::buffer(request));
    std::string out;
    boost::system::error_code ec;
    char buf[4096];
    for (;;) {
      std::size_t n = s.read_some(net::buffer(buf), ec);
      out.append(buf, n);
      if (ec) break;
    }
    return out;
  }
  std::string RawGet(const std::string& target) {
    return Raw("GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  }

  testing::ScratchDir dir_{"doppel-static-test"};
  fs::path root_;
  std::unique_ptr<model::ModelRepository> models_;
  std::unique_ptr<twin::TwinGraph> graph_;
  std::unique_ptr<api::KeyStore> keys_;
  std::unique_ptr<api::Server> server_;
  std::unique_ptr<HttpClient> http_;
};

TEST(StaticFilesContentType, ByExtension) {
  EXPECT_EQ(api::StaticFiles::ContentType("index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(api::StaticFiles::ContentType("a.JS"), "text/javascript; charset=utf-8");
  EXPECT_EQ(api::StaticFiles::ContentType("a.css"), "text/css; charset=utf-8");
  EXPECT_EQ(api::StaticFiles::ContentType("a.svg"), "image/svg+xml");
  EXPECT_EQ(api::StaticFiles::ContentType("a.woff2"), "font/woff2");
  EXPECT_EQ(api::StaticFiles::ContentType("m.glb"), "model/gltf-binary");
  EXPECT_EQ(api::StaticFiles::ContentType("noext"), "application/octet-stream");
}

TEST_F(StaticFilesTest, ServesFilesWithContentTypes) {
  struct Case {
    std::string path, type, body;
  };
  for (const Case& c :
       {Case{"/", "text/html; charset=utf-8", kIndex},
        Case{"/index.html", "text/html; charset=utf-8", kIndex},
        Case{"/assets/app-1a2b3c.js", "text/javascript; charset=utf-8", "console.log('doppel')"},
        Case{"/assets/style-9f8e7d.css", "text/css; charset=utf-8", "body{}"},
        Case{"/logo.svg", "image/svg+xml", "<svg/>"},
        Case{"/scene.glb", "model/gltf-binary", "glTF"}}) {
    HttpResponse r = http().Get(c.path);
    EXPECT_EQ(r.status, 200u) << c.path;
    EXPECT_EQ(r.header("content-type"), c.type) << c.path;
    EXPECT_EQ(r.body, c.body) << c.path;
    EXPECT_EQ(r.header("x-content-type-options"), "nosniff") << c.path;
  }
}

TEST_F(StaticFilesTest, HashedAssetsAreImmutableTheRestRevalidated) {
  EXPECT_EQ(http().Get("/assets/app-1a2b3c.js").header("cache-control"),
            "public, max-age=31536000, immutable");
  EXPECT_EQ(http().Get("/").header("cache-control"), "no-cache");
  EXPECT_EQ(http().Get("/logo.svg").header("cache-control"), "no-cache");
  EXPECT_EQ(http().Get("/some/ui/route").header("cache-control"), "no-cache");
}

TEST_F(StaticFilesTest, EtagAndIfNoneMatchAnswer304) {
  HttpResponse first = http().Get("/assets/app-1a2b3c.js");
  std::string etag = first.header("etag");
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(etag.front(), '"');
  HttpResponse again = http().Get("/assets/app-1a2b3c.js", {{"If-None-Match", etag}});
  EXPECT_EQ(again.status, 304u);
  EXPECT_TRUE(again.body.empty());
  EXPECT_EQ(again.header("etag"), etag);
  EXPECT_EQ(again.header("cache-control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(http().Get("/assets/app-1a2b3c.js", {{"If-None-Match", "\"x\", W/" + etag}}).status,
            304u);
  EXPECT_EQ(http().Get("/assets/app-1a2b3c.js", {{"If-None-Match", "\"other\""}}).status, 200u);
  // A changed file has a new tag.
  std::string index_etag = http().Get("/").header("etag");
  Write(root_ / "index.html", kIndex + "<!-- v2 -->");
  HttpResponse changed = http().Get("/", {{"If-None-Match", index_etag}});
  EXPECT_EQ(changed.status, 200u);
  EXPECT_NE(changed.header("etag"), index_etag);
}

TEST_F(StaticFilesTest, UnknownUiRoutesFallBackToIndexButMissingAssetsAre404) {
  for (std::string p : {"/explorer", "/twin/machine-1", "/a/b/c/"}) {
    HttpResponse r = http().Get(p);
    EXPECT_EQ(r.status, 200u) << p;
    EXPECT_EQ(r.body, kIndex) << p;
  }
  for (std::string p : {"/assets/gone-123.js", "/assets/x", "/missing.png", "/deep/missing.css"}) {
    HttpResponse r = http().Get(p);
    EXPECT_EQ(r.status, 404u) << p;
    EXPECT_NE(r.body, kIndex) << p;
    EXPECT_EQ(r.header("content-type"), "application/problem+json") << p;
  }
}

TEST_F(StaticFilesTest, TraversalIsRefused) {
  for (std::string target :
       {"/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt",
        "/assets/..%2f..%2fsecret.txt", "/..%5csecret.txt", "/link.txt", "/out/secret.txt",
        "/.hidden", "/./index.html", "/%00index.html", "/index.html%00"}) {
    std::string answer = RawGet(target);
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 404")) << target << "\n" << answer.substr(0, 200);
    EXPECT_EQ(answer.find(kSecret), std::string::npos) << target;
    EXPECT_EQ(answer.find("dot-file"), std::string::npos) << target;
  }
  // Sanity: the same bytes through a path that is allowed.
  EXPECT_TRUE(RawGet("/logo.svg").starts_with("HTTP/1.1 200"));
}

TEST_F(StaticFilesTest, ApiRoutesAndApiPrefixesWin) {
  HttpResponse health = http().Get("/healthz");
  EXPECT_EQ(health.status, 200u);
  EXPECT_EQ(health.header("content-type"), "application/json");
  EXPECT_TRUE(health.json().is_object());
  EXPECT_TRUE(http().Get("/models").json().as_object().contains("value"));
  HttpResponse missing = http().Get("/digitaltwins/nobody");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_EQ(missing.json().at("code"), "TWIN_NOT_FOUND");
  // Unknown paths under an API prefix keep the API's 404, not the UI's index.
  HttpResponse unknown = http().Get("/digitaltwins/a/b/c/d/e/f");
  EXPECT_EQ(unknown.status, 404u);
  EXPECT_EQ(unknown.json().at("code"), "ROUTE_NOT_FOUND");
  // Only GET and HEAD are static: a POST to a UI path is the API's answer.
  HttpResponse post = http().Post("/explorer", "{}");
  EXPECT_EQ(post.status, 404u);
  EXPECT_EQ(post.json().at("code"), "ROUTE_NOT_FOUND");
  // A wrong method on an API route stays 405.
  EXPECT_EQ(http().Send("DELETE", "/healthz").status, 405u);
}

TEST_F(StaticFilesTest, HeadAnswersHeadersWithoutBody) {
  std::string answer =
      Raw("HEAD /assets/app-1a2b3c.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200")) << answer;
  EXPECT_NE(answer.find("Content-Length: 21\r\n"), std::string::npos) << answer;
  EXPECT_TRUE(answer.ends_with("\r\n\r\n")) << answer;
}

TEST_F(StaticFilesTest, StaticFilesNeedNoKeyTheApiStillDoes) {
  Restart(/*insecure=*/false, root_);
  EXPECT_EQ(http().Get("/").status, 200u);
  EXPECT_EQ(http().Get("/assets/app-1a2b3c.js").status, 200u);
  EXPECT_EQ(http().Get("/twin/machine-1").status, 200u);
  EXPECT_EQ(http().Get("/models").status, 401u);
  EXPECT_EQ(http().Get("/digitaltwins/a/b/c/d/e/f").status, 401u);
}

TEST_F(StaticFilesTest, WithoutWebRootNothingIsServed) {
  Restart(/*insecure=*/true, fs::path());
  HttpResponse r = http().Get("/");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.json().at("code"), "ROUTE_NOT_FOUND");
}

}  // namespace
}  // namespace doppel
