// glTF scenes over the API on a real server and store: PUT/GET/DELETE of /models/{id}/scene and
// /digitaltwins/{id}/scene with a GLB and a .gltf built here, the twin → model fallback
// (Doppel-Scene-Source), ETag and 304, every refused asset (SCENE_INVALID naming what is
// wrong), unknown owners, content types, and the scene kept across reopening the store.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/json.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "http_test_client.h"
#include "test_server.h"

namespace doppel {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using apitest::Headers;
using apitest::HttpResponse;
using apitest::Serve;

constexpr char kModelId[] = "dtmi:doppel:test:Robot;1";
constexpr char kModelPath[] = "/models/dtmi:doppel:test:Robot;1/scene";
constexpr char kModel[] = R"({
  "@context": "dtmi:dtdl:context;3", "@id": "dtmi:doppel:test:Robot;1", "@type": "Interface",
  "contents": [{"@type": "Property", "name": "speed", "schema": "double"}]})";

// A one-triangle glTF JSON (positions in buffer 0, 36 bytes) with the given buffer uri (none:
// the GLB's BIN chunk).
std::string TriangleJson(const std::string& buffer_uri = "", const std::string& version = "2.0") {
  std::string buffer = buffer_uri.empty()
                           ? R"({"byteLength": 36})"
                           : fmt::format(R"({{"byteLength": 36, "uri": "{}"}})", buffer_uri);
  return fmt::format(
      R"({{"asset": {{"version": "{}", "generator": "doppel test"}}, "scene": 0,)"
      R"( "scenes": [{{"nodes": [0]}}], "nodes": [{{"mesh": 0}}],)"
      R"( "meshes": [{{"primitives": [{{"attributes": {{"POSITION": 0}}}}]}}],)"
      R"( "accessors": [{{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",)"
      R"( "min": [0, 0, 0], "max": [1, 1, 0]}}],)"
      R"( "bufferViews": [{{"buffer": 0, "byteLength": 36}}], "buffers": [{}]}})",
      version, buffer);
}

std::string TriangleBin() {
  const float v[9] = {0, 0, 0, 1, 0, 0, 0, 1, 0};
  return std::string(reinterpret_cast<const char*>(v), sizeof v);
}

void PutU32(std::string& s, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
}

// A GLB: header, the JSON chunk padded with spaces to 4 bytes, optionally a BIN chunk.
std::string Glb(std::string json_chunk, const std::string& bin = TriangleBin(),
                std::uint32_t version = 2) {
  while (json_chunk.size() % 4 != 0) json_chunk += ' ';
  std::string bin_padded = bin;
  while (bin_padded.size() % 4 != 0) bin_padded += '\0';
  std::string out = "glTF";
  PutU32(out, version);
  std::size_t total = 12 + 8 + json_chunk.size() + (bin.empty() ? 0 : 8 + bin_padded.size());
  PutU32(out, static_cast<std::uint32_t>(total));
  PutU32(out, static_cast<std::uint32_t>(json_chunk.size()));
  PutU32(out, 0x4E4F534Au);  // JSON
  out += json_chunk;
  if (!bin.empty()) {
    PutU32(out, static_cast<std::uint32_t>(bin_padded.size()));
    PutU32(out, 0x004E4942u);  // BIN
    out += bin_padded;
  }
  return out;
}

const Headers kGlbType{{"Content-Type", "model/gltf-binary"}};
const Headers kGltfType{{"Content-Type", "model/gltf+json"}};

class AssetApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "doppel-asset-api-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    Open();
    std::vector<model::SourceDocument> docs{{"robot", kModel}};
    ASSERT_TRUE(serve_->models->Add(docs).ok());
    for (const char* id : {"r1", "r2"}) {
      auto t = serve_->graph->PutTwinSync(
          id, json::parse(R"({"$metadata": {"$model": "dtmi:doppel:test:Robot;1"}})"));
      ASSERT_TRUE(t.ok()) << t.status().ToString();
    }
  }
  void TearDown() override {
    serve_.reset();
    fs::remove_all(dir_);
  }
  void Open() {
    serve_.reset();  // one process holds the store at a time
    serve_ = std::make_unique<Serve>(dir_);
  }
  apitest::HttpClient& http() { return *serve_->http; }

  // A refused PUT: its status, code, and that the detail mentions `words`.
  void ExpectRefused(const std::string& path, const std::string& body, const Headers& h,
                     unsigned status, const std::string& code, const std::string& words) {
    HttpResponse r = http().Send("PUT", path, body, h);
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.header("content-type"), "application/problem+json") << r.body;
    json::value p = r.json();
    ASSERT_TRUE(p.is_object()) << r.body;
    EXPECT_EQ(json::value_to<std::string>(p.at("code")), code) << r.body;
    EXPECT_NE(json::value_to<std::string>(p.at("detail")).find(words), std::string::npos)
        << "detail should mention '" << words << "': " << r.body;
  }

  std::string dir_;
  std::unique_ptr<Serve> serve_;
};

TEST_F(AssetApiTest, GlbOnATwinRoundTripsWithEtagAndDelete) {
  const std::string glb = Glb(TriangleJson());
  ASSERT_EQ(glb.size() % 4, 0u);
  HttpResponse put = http().Send("PUT", "/digitaltwins/r1/scene", glb, kGlbType);
  ASSERT_EQ(put.status, 201u) << put.body;
  json::value d = put.json();
  EXPECT_EQ(d.at("id").as_string(), "r1");
  EXPECT_EQ(d.at("kind").as_string(), "twin");
  EXPECT_EQ(d.at("contentType").as_string(), "model/gltf-binary");
  EXPECT_EQ(d.at("bytes").to_number<std::size_t>(), glb.size());
  const std::string etag = put.header("etag");
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(d.at("etag").as_string(), etag);

  HttpResponse get = http().Get("/digitaltwins/r1/scene");
  ASSERT_EQ(get.status, 200u) << get.body;
  EXPECT_EQ(get.body, glb);  // byte for byte
  EXPECT_EQ(get.header("content-type"), "model/gltf-binary");
  EXPECT_EQ(get.header("etag"), etag);
  EXPECT_EQ(get.header("doppel-scene-source"), "twin");

  // Conditional GET.
  HttpResponse cached = http().Send("GET", "/digitaltwins/r1/scene", "", {{"If-None-Match", etag}});
  EXPECT_EQ(cached.status, 304u);
  EXPECT_TRUE(cached.body.empty());
  HttpResponse other =
      http().Send("GET", "/digitaltwins/r1/scene", "", {{"If-None-Match", "\"nope\""}});
  EXPECT_EQ(other.status, 200u);

  // Replacing answers 200 and a new ETag; the other twin has none.
  const std::string glb2 = Glb(TriangleJson("", "2.0") + "    ");
  HttpResponse put2 = http().Send("PUT", "/digitaltwins/r1/scene", glb2, kGlbType);
  EXPECT_EQ(put2.status, 200u) << put2.body;
  EXPECT_NE(put2.header("etag"), etag);
  HttpResponse none = http().Get("/digitaltwins/r2/scene");
  EXPECT_EQ(none.status, 404u);
  EXPECT_EQ(none.json().at("code").as_string(), "SCENE_NOT_FOUND");

  // Kept in the store.
  Open();
  HttpResponse again = http().Get("/digitaltwins/r1/scene");
  EXPECT_EQ(again.status, 200u);
  EXPECT_EQ(again.body, glb2);

  EXPECT_EQ(http().Send("DELETE", "/digitaltwins/r1/scene").status, 204u);
  EXPECT_EQ(http().Get("/digitaltwins/r1/scene").status, 404u);
  HttpResponse twice = http().Send("DELETE", "/digitaltwins/r1/scene");
  EXPECT_EQ(twice.status, 404u);
  EXPECT_EQ(twice.json().at("code").as_string(), "SCENE_NOT_FOUND");
}

TEST_F(AssetApiTest, TwinFallsBackToItsModelsScene) {
  // A .gltf with its buffer as a data: URI on the model.
  const std::string gltf = TriangleJson(
      "data:application/octet-stream;base64,AAAAAAAAAAAAAAAAAACAPwAAAAAAAAAAAAAAAAAAgD8AAAAA");
  HttpResponse put = http().Send("PUT", kModelPath, gltf, kGltfType);
  ASSERT_EQ(put.status, 201u) << put.body;
  EXPECT_EQ(put.json().at("kind").as_string(), "model");

  HttpResponse m = http().Get(kModelPath);
  EXPECT_EQ(m.status, 200u);
  EXPECT_EQ(m.header("content-type"), "model/gltf+json");
  EXPECT_EQ(m.body, gltf);
  EXPECT_EQ(m.header("doppel-scene-source"), "model");

  // Both twins show the model's scene...
  for (const char* t : {"r1", "r2"}) {
    HttpResponse r = http().Get(fmt::format("/digitaltwins/{}/scene", t));
    EXPECT_EQ(r.status, 200u) << t;
    EXPECT_EQ(r.body, gltf) << t;
    EXPECT_EQ(r.header("doppel-scene-source"), "model") << t;
    EXPECT_EQ(r.header("doppel-scene-model"), kModelId) << t;
    EXPECT_EQ(r.header("etag"), m.header("etag")) << t;
  }
  // ... until one has its own.
  const std::string glb = Glb(TriangleJson());
  ASSERT_EQ(http().Send("PUT", "/digitaltwins/r2/scene", glb, kGlbType).status, 201u);
  HttpResponse own = http().Get("/digitaltwins/r2/scene");
  EXPECT_EQ(own.body, glb);
  EXPECT_EQ(own.header("doppel-scene-source"), "twin");
  EXPECT_EQ(http().Get("/digitaltwins/r1/scene").header("doppel-scene-source"), "model");

  // Deleting the model's scene leaves the twin without one.
  EXPECT_EQ(http().Send("DELETE", kModelPath).status, 204u);
  HttpResponse gone = http().Get("/digitaltwins/r1/scene");
  EXPECT_EQ(gone.status, 404u);
  EXPECT_NE(gone.json().at("detail").as_string().find(kModelId), std::string::npos) << gone.body;
  EXPECT_EQ(http().Get("/digitaltwins/r2/scene").status, 200u);
}

// A twin whose model has no scene shows the nearest scene up its model's `extends` chain: a
// scene on a base model reaches the twins of every model derived from it, until a model nearer
// to the twin has one of its own.
TEST_F(AssetApiTest, TwinFallsBackAlongItsModelsExtendsChain) {
  std::vector<model::SourceDocument> docs{
      {"welder", R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:doppel:test:Welder;1",
                     "@type": "Interface", "extends": "dtmi:doppel:test:Robot;1"})"},
      {"arc", R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:doppel:test:ArcWelder;1",
                  "@type": "Interface", "extends": "dtmi:doppel:test:Welder;1"})"}};
  ASSERT_TRUE(serve_->models->Add(docs).ok());
  ASSERT_TRUE(
      serve_->graph
          ->PutTwinSync("w1",
                        json::parse(R"({"$metadata": {"$model": "dtmi:doppel:test:ArcWelder;1"}})"))
          .ok());
  HttpResponse none = http().Get("/digitaltwins/w1/scene");
  EXPECT_EQ(none.status, 404u);
  EXPECT_EQ(none.json().at("code").as_string(), "SCENE_NOT_FOUND");

  auto made_by = [](const std::string& generator) {  // three different scenes
    std::string j = TriangleJson();
    j.replace(j.find("doppel test"), 11, generator);
    return Glb(j);
  };
  const std::string robot = made_by("robot"), welder = made_by("welder"), arc = made_by("arc");
  auto from = [&](const char* twin) {
    HttpResponse r = http().Get(fmt::format("/digitaltwins/{}/scene", twin));
    EXPECT_EQ(r.status, 200u) << twin << " " << r.body;
    EXPECT_EQ(r.header("doppel-scene-source"), "model") << twin;
    return std::make_pair(r.header("doppel-scene-model"), r.body);
  };
  ASSERT_EQ(http().Send("PUT", kModelPath, robot, kGlbType).status, 201u);
  EXPECT_EQ(from("w1"), std::make_pair(std::string(kModelId), robot));  // two levels up
  ASSERT_EQ(http().Send("PUT", "/models/dtmi:doppel:test:Welder;1/scene", welder, kGlbType).status,
            201u);
  EXPECT_EQ(from("w1"), std::make_pair(std::string("dtmi:doppel:test:Welder;1"), welder));
  EXPECT_EQ(from("r1"), std::make_pair(std::string(kModelId), robot));  // a base's twins: its own
  ASSERT_EQ(http().Send("PUT", "/models/dtmi:doppel:test:ArcWelder;1/scene", arc, kGlbType).status,
            201u);
  EXPECT_EQ(from("w1"), std::make_pair(std::string("dtmi:doppel:test:ArcWelder;1"), arc));
  // A model's own scene answers for the model only, never its base's.
  EXPECT_EQ(http().Send("DELETE", "/models/dtmi:doppel:test:Welder;1/scene").status, 204u);
  EXPECT_EQ(http().Get("/models/dtmi:doppel:test:Welder;1/scene").status, 404u);
}

TEST_F(AssetApiTest, DeletingTheOwnerDeletesItsScene) {
  const std::string glb = Glb(TriangleJson());
  ASSERT_EQ(http().Send("PUT", "/digitaltwins/r1/scene", glb, kGlbType).status, 201u);
  ASSERT_EQ(http().Send("PUT", kModelPath, glb, kGlbType).status, 201u);
  ASSERT_EQ(http().Send("DELETE", "/digitaltwins/r1").status, 204u);
  ASSERT_EQ(http().Send("DELETE", "/digitaltwins/r2").status, 204u);
  // A twin made again under the same id starts without the old twin's scene (the model's shows).
  ASSERT_TRUE(serve_->graph
                  ->PutTwinSync(
                      "r1", json::parse(R"({"$metadata": {"$model": "dtmi:doppel:test:Robot;1"}})"))
                  .ok());
  EXPECT_EQ(http().Get("/digitaltwins/r1/scene").header("doppel-scene-source"), "model");
  ASSERT_EQ(http().Send("DELETE", "/digitaltwins/r1").status, 204u);
  HttpResponse del = http().Send("DELETE", fmt::format("/models/{}", kModelId));
  ASSERT_EQ(del.status, 204u) << del.body;
  HttpResponse scenes = http().Get("/scenes");
  ASSERT_EQ(scenes.status, 200u);
  EXPECT_TRUE(scenes.json().at("value").as_array().empty()) << scenes.body;
}

TEST_F(AssetApiTest, UnknownOwnersAndContentTypes) {
  const std::string glb = Glb(TriangleJson());
  for (const char* m : {"PUT", "GET", "DELETE"}) {
    HttpResponse t =
        http().Send(m, "/digitaltwins/nope/scene", m == std::string("PUT") ? glb : "", kGlbType);
    EXPECT_EQ(t.status, 404u) << m;
    EXPECT_EQ(t.json().at("code").as_string(), "TWIN_NOT_FOUND") << m;
    HttpResponse md =
        http().Send(m, "/models/dtmi:nope:X;1/scene", m == std::string("PUT") ? glb : "", kGlbType);
    EXPECT_EQ(md.status, 404u) << m;
    EXPECT_EQ(md.json().at("code").as_string(), "MODEL_NOT_FOUND") << m;
  }
  HttpResponse j =
      http().Send("PUT", "/digitaltwins/r1/scene", glb, {{"Content-Type", "application/json"}});
  EXPECT_EQ(j.status, 415u);
  EXPECT_EQ(j.json().at("code").as_string(), "UNSUPPORTED_MEDIA_TYPE");
  HttpResponse none = http().Send("PUT", "/digitaltwins/r1/scene", glb, {{"Content-Type", ""}});
  EXPECT_EQ(none.status, 415u);
  // Parameters and case are fine.
  EXPECT_EQ(http()
                .Send("PUT", "/digitaltwins/r1/scene", glb,
                      {{"Content-Type", "Model/GLTF-Binary; charset=binary"}})
                .status,
            201u);
  // Nothing was stored by the refused requests of another twin.
  EXPECT_EQ(http().Get("/digitaltwins/r2/scene").status, 404u);
}

TEST_F(AssetApiTest, BadAssetsAreRefusedWithWhatIsWrong) {
  const std::string twin = "/digitaltwins/r1/scene";
  const std::string good = Glb(TriangleJson());
  auto patched = [&](std::size_t at, std::string_view bytes) {
    std::string s = good;
    s.replace(at, bytes.size(), bytes);
    return s;
  };
  std::string u32;
  ExpectRefused(twin, "", kGlbType, 400, "SCENE_INVALID", "empty");
  ExpectRefused(twin, "glTF", kGlbType, 400, "SCENE_INVALID", "at least 20 bytes");
  ExpectRefused(twin, patched(0, "GLTF"), kGlbType, 400, "SCENE_INVALID", "magic");
  u32.clear();
  PutU32(u32, 1);
  ExpectRefused(twin, patched(4, u32), kGlbType, 400, "SCENE_INVALID", "version is 1");
  u32.clear();
  PutU32(u32, static_cast<std::uint32_t>(good.size() + 4));
  ExpectRefused(twin, patched(8, u32), kGlbType, 400, "SCENE_INVALID", "length");
  ExpectRefused(twin, good + "XXXX", kGlbType, 400, "SCENE_INVALID", "length");
  ExpectRefused(twin, patched(16, "BIN"), kGlbType, 400, "SCENE_INVALID", "first GLB chunk");
  // A chunk longer than the body.
  u32.clear();
  PutU32(u32, static_cast<std::uint32_t>(good.size()));
  ExpectRefused(twin, patched(12, u32), kGlbType, 400, "SCENE_INVALID", "runs past the end");
  // The JSON chunk: not JSON, wrong version, no asset, external uri, no BIN for buffer 0.
  ExpectRefused(twin, Glb("{\"asset\": "), kGlbType, 400, "SCENE_INVALID", "not valid JSON");
  ExpectRefused(twin, Glb(TriangleJson("", "1.0")), kGlbType, 400, "SCENE_INVALID",
                "asset.version is \"1.0\"");
  ExpectRefused(twin, Glb(R"({"scenes": []})"), kGlbType, 400, "SCENE_INVALID", "\"asset\"");
  ExpectRefused(twin, Glb(TriangleJson("triangle.bin")), kGlbType, 400, "SCENE_INVALID",
                "buffers[0].uri 'triangle.bin' is external");
  ExpectRefused(twin, Glb(TriangleJson(), ""), kGlbType, 400, "SCENE_INVALID", "no BIN chunk");
  {
    std::string j = TriangleJson();
    j.insert(j.size() - 1, R"(, "images": [{"uri": "https://example.com/t.png"}])");
    ExpectRefused(twin, Glb(j), kGlbType, 400, "SCENE_INVALID", "images[0].uri");
  }
  // .gltf JSON.
  ExpectRefused(twin, "not json", kGltfType, 400, "SCENE_INVALID", "not valid JSON");
  ExpectRefused(twin, "[1, 2]", kGltfType, 400, "SCENE_INVALID", "not an object");
  ExpectRefused(twin, R"({"asset": {}})", kGltfType, 400, "SCENE_INVALID", "asset.version");
  ExpectRefused(twin, TriangleJson(), kGltfType, 400, "SCENE_INVALID", "buffers[0] has no uri");
  ExpectRefused(twin, TriangleJson("../../etc/passwd"), kGltfType, 400, "SCENE_INVALID",
                "external");
  // A GLB sent as .gltf JSON and the other way round.
  ExpectRefused(twin, good, kGltfType, 400, "SCENE_INVALID", "not valid JSON");
  ExpectRefused(twin, TriangleJson("data:,"), kGlbType, 400, "SCENE_INVALID", "magic");
  // Nothing was stored.
  EXPECT_EQ(http().Get(twin).status, 404u);
  // The same checks on a model.
  ExpectRefused(kModelPath, patched(0, "GLTF"), kGlbType, 400, "SCENE_INVALID", "magic");
  EXPECT_EQ(http().Get(kModelPath).status, 404u);
}

}  // namespace
}  // namespace doppel
