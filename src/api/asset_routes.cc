// 3D scene assets (glTF 2.0) attached to a model or a twin, for the web UI's 3D scene.
//
//   PUT    /models/{id}/scene         (admin)   body: a glTF asset, Content-Type
//   PUT    /digitaltwins/{id}/scene   (writer)  model/gltf-binary (GLB) or model/gltf+json
//                                               → 201 (new) or 200 (replaced) with
//                                               {"id", "kind", "contentType", "bytes", "etag"}
//   GET    /models/{id}/scene         (reader)  the bytes with their Content-Type and ETag
//   GET    /digitaltwins/{id}/scene   (reader)  (If-None-Match → 304); a twin without a scene
//                                               of its own answers its model's, else that of
//                                               the nearest model its model extends, with
//                                               `Doppel-Scene-Source: model` (else `twin`) and
//                                               `Doppel-Scene-Model: <the model's id>`
//   DELETE /models/{id}/scene, /digitaltwins/{id}/scene   → 204
//   GET    /scenes                    (reader)  every stored scene: {"value": [{"kind", "id",
//                                               "contentType", "bytes", "etag"}]} (the UI asks
//                                               once instead of once per twin)
//
// Checks before anything is kept: a GLB has the 12-byte header (magic "glTF", version 2, total
// length = body length), a first chunk of type JSON, chunks that fit and are 4-byte aligned, at
// most one BIN chunk after it; the JSON (of a .gltf, or the GLB's chunk) has asset.version "2.0",
// and every `uri` of buffers and images is a data: URI (nothing else could be fetched) — a GLB
// buffer without uri needs the BIN chunk. The size limit is the server's request body limit
// (413 PAYLOAD_TOO_LARGE before the handler runs).
// Stored as `as/<kind>/<id>` (kind: model, twin) = "<content type>\n<bytes>", in memory when the
// server has no store.
// Errors: SCENE_INVALID (400, naming what is wrong), UNSUPPORTED_MEDIA_TYPE (415),
// TWIN_NOT_FOUND / MODEL_NOT_FOUND / SCENE_NOT_FOUND (404).
#include <fmt/format.h>

#include <boost/json.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "api/problem.h"
#include "api/routes.h"
#include "core/json.h"
#include "store/store.h"

namespace doppel::api {

namespace json = boost::json;
using core::Status;

namespace {
constexpr std::string_view kGlb = "model/gltf-binary";
constexpr std::string_view kGltf = "model/gltf+json";
}  // namespace

struct AssetStore {
  store::Store* store = nullptr;  // null: kept in `memory`
  std::mutex mu;
  std::map<std::string, std::string> memory;

  std::optional<std::string> Get(const std::string& key) {
    if (store != nullptr) return store->Get(key);
    std::lock_guard lock(mu);
    auto it = memory.find(key);
    if (it == memory.end()) return std::nullopt;
    return it->second;
  }
  Status Put(const std::string& key, std::string value) {
    if (store != nullptr) return store->Put(key, value);
    std::lock_guard lock(mu);
    memory[key] = std::move(value);
    return Status();
  }
  // Every stored scene: key and value.
  void Each(const std::function<void(std::string_view, std::string_view)>& fn) {
    if (store != nullptr) {
      (void)store->Scan("as/", fn);
      return;
    }
    std::lock_guard lock(mu);
    for (const auto& [k, v] : memory) fn(k, v);
  }
  Status Delete(const std::string& key) {
    if (store != nullptr) return store->Delete(key);
    std::lock_guard lock(mu);
    memory.erase(key);
    return Status();
  }
};

namespace {

Status Invalid(std::string what) { return Status("SCENE_INVALID", std::move(what)); }

std::uint32_t U32(std::string_view b, std::size_t at) {
  auto u = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + i]));
  };
  return u(0) | (u(1) << 8) | (u(2) << 16) | (u(3) << 24);
}

// The glTF JSON's own checks: asset.version, external URIs. `has_bin`: a GLB with a BIN chunk.
Status CheckGltfJson(std::string_view text, const RouteContext& ctx, bool glb, bool has_bin) {
  core::JsonLimits limits;
  limits.max_bytes = ctx.options->max_body_bytes;
  limits.max_depth = ctx.options->max_json_depth;
  // The GLB JSON chunk is padded with spaces (allowed JSON whitespace); be lenient with NULs.
  while (glb && !text.empty() && text.back() == '\0') text.remove_suffix(1);
  auto v = core::ParseJson(text, limits);
  if (!v.ok()) {
    if (v.status().code() == "JSON_TOO_LARGE")
      return Status("PAYLOAD_TOO_LARGE", v.status().message());
    return Invalid(fmt::format("the glTF JSON{} is not valid JSON: {}", glb ? " chunk" : "",
                               v.status().message()));
  }
  const json::object* root = v->if_object();
  if (root == nullptr) return Invalid("the glTF JSON is not an object");
  const json::value* asset = root->if_contains("asset");
  const json::object* ao = asset != nullptr ? asset->if_object() : nullptr;
  if (ao == nullptr) return Invalid("the glTF JSON has no \"asset\" object");
  const json::value* ver = ao->if_contains("version");
  if (ver == nullptr || !ver->is_string()) return Invalid("asset.version is missing");
  if (ver->get_string() != "2.0") {
    return Invalid(fmt::format("asset.version is \"{}\"; only glTF 2.0 is supported",
                               std::string_view(ver->get_string())));
  }
  for (std::string_view list : {"buffers", "images"}) {
    const json::value* l = root->if_contains(list);
    if (l == nullptr) continue;
    const json::array* a = l->if_array();
    if (a == nullptr) return Invalid(fmt::format("\"{}\" is not an array", list));
    for (std::size_t i = 0; i < a->size(); ++i) {
      const json::object* o = (*a)[i].if_object();
      if (o == nullptr) return Invalid(fmt::format("{}[{}] is not an object", list, i));
      const json::value* uri = o->if_contains("uri");
      if (uri == nullptr) {
        // A buffer without uri is the GLB's BIN chunk (only the first, only in a GLB); an image
        // without uri takes its bytes from a bufferView.
        if (list == "buffers" && (!glb || i != 0 || !has_bin)) {
          return Invalid(fmt::format(
              "buffers[{}] has no uri{}", i,
              glb ? " and the GLB has no BIN chunk for it" : " (a .gltf needs data: URIs)"));
        }
        continue;
      }
      if (!uri->is_string()) return Invalid(fmt::format("{}[{}].uri is not a string", list, i));
      std::string_view u = uri->get_string();
      if (!u.starts_with("data:")) {
        return Invalid(fmt::format(
            "{}[{}].uri '{}' is external; only data: URIs can be used (embed the file, or send "
            "a GLB)",
            list, i, u.substr(0, 80)));
      }
    }
  }
  return Status();
}

Status CheckGlb(std::string_view b, const RouteContext& ctx) {
  if (b.size() < 20) {
    return Invalid(
        fmt::format("a GLB is at least 20 bytes (header and a chunk header); got {}", b.size()));
  }
  if (b.substr(0, 4) != "glTF") return Invalid("the GLB header's magic is not \"glTF\"");
  if (std::uint32_t version = U32(b, 4); version != 2) {
    return Invalid(fmt::format("the GLB header's version is {}; only 2 is supported", version));
  }
  if (std::uint32_t length = U32(b, 8); length != b.size()) {
    return Invalid(
        fmt::format("the GLB header's length is {} but the body has {} bytes", length, b.size()));
  }
  std::size_t at = 12;
  int chunk = 0;
  std::string_view json_chunk;
  bool has_bin = false;
  while (at < b.size()) {
    if (b.size() - at < 8) return Invalid(fmt::format("chunk {} header is cut off", chunk));
    std::uint32_t len = U32(b, at);
    std::uint32_t type = U32(b, at + 4);
    if (len > b.size() - at - 8) {
      return Invalid(fmt::format("chunk {} of {} bytes runs past the end", chunk, len));
    }
    if (len % 4 != 0) {
      return Invalid(fmt::format("chunk {} length {} is not a multiple of 4", chunk, len));
    }
    if (chunk == 0) {
      if (type != 0x4E4F534Au) return Invalid("the first GLB chunk is not of type JSON");
      json_chunk = b.substr(at + 8, len);
    } else if (type == 0x004E4942u) {
      if (chunk != 1) return Invalid("the BIN chunk must be the second chunk");
      has_bin = true;
    } else if (type == 0x4E4F534Au) {
      return Invalid("a GLB has one JSON chunk");
    }  // other chunk types are ignored, as the spec says
    at += 8 + len;
    ++chunk;
  }
  return CheckGltfJson(json_chunk, ctx, true, has_bin);
}

// The body's media type (without parameters), lower case.
std::string MediaType(const Request& req) {
  const std::string* ct = req.Header("content-type");
  if (ct == nullptr) return "";
  std::string m = ct->substr(0, ct->find(';'));
  while (!m.empty() && (m.back() == ' ' || m.back() == '\t')) m.pop_back();
  for (char& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return m;
}

std::string Etag(std::string_view bytes) {
  std::uint64_t h = 14695981039346656037ull;  // FNV-1a 64
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return fmt::format("\"{:016x}-{:x}\"", h, bytes.size());
}

// If-None-Match: "*", or a list naming the ETag (weak comparison: W/"x" matches "x").
bool Matches(const std::string* if_none_match, const std::string& etag) {
  if (if_none_match == nullptr) return false;
  return *if_none_match == "*" || if_none_match->find(etag) != std::string::npos;
}

struct Kind {
  std::string_view name;       // "model" | "twin"
  std::string_view not_found;  // MODEL_NOT_FOUND | TWIN_NOT_FOUND
};
constexpr Kind kModel{"model", "MODEL_NOT_FOUND"};
constexpr Kind kTwin{"twin", "TWIN_NOT_FOUND"};

std::string Key(const Kind& k, std::string_view id) { return fmt::format("as/{}/{}", k.name, id); }

// The owner exists? For a twin, its model id (for the fallback) in `model`.
Status Owner(const RouteContext& c, const Kind& k, const std::string& id, std::string* model) {
  if (k.name == "model") {
    if (!c.services.models->Get(id)) {
      return Status("MODEL_NOT_FOUND", fmt::format("no model '{}'", id));
    }
    return Status();
  }
  twin::TwinPtr t = c.services.graph->FindTwin(id);
  if (!t) return twin::TwinNotFound(id);
  if (model != nullptr) *model = t->model;
  return Status();
}

Reply AssetReply(const Request& req, std::string_view stored, std::string_view source) {
  std::size_t nl = stored.find('\n');
  std::string type(stored.substr(0, nl));
  std::string_view bytes =
      nl == std::string_view::npos ? std::string_view() : stored.substr(nl + 1);
  std::string etag = Etag(bytes);
  Reply r;
  r.headers.emplace_back("ETag", etag);
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("Doppel-Scene-Source", std::string(source));
  if (Matches(req.Header("if-none-match"), etag)) {
    r.status = 304;
    r.content_type.clear();
    return r;
  }
  r.status = 200;
  r.content_type = type;
  r.body.assign(bytes);
  return r;
}

}  // namespace

void RegisterAssetRoutes(const AddRoute& add, RouteContext& ctx) {
  auto assets = std::make_shared<AssetStore>();
  assets->store = ctx.services.store;
  ctx.assets = assets;
  RouteContext* c = &ctx;

  add(
      "GET", "/scenes", Role::kReader, "Every glTF scene attached to a model or a twin", "",
      [assets](Request&, const Respond& respond) {
        json::array list;
        assets->Each([&](std::string_view key, std::string_view value) {
          key.remove_prefix(3);  // as/
          std::size_t slash = key.find('/');
          if (slash == std::string_view::npos) return;
          std::size_t nl = value.find('\n');
          std::string_view bytes =
              nl == std::string_view::npos ? std::string_view() : value.substr(nl + 1);
          list.push_back(json::object{{"kind", key.substr(0, slash)},
                                      {"id", key.substr(slash + 1)},
                                      {"contentType", value.substr(0, nl)},
                                      {"bytes", bytes.size()},
                                      {"etag", Etag(bytes)}});
        });
        respond(Reply::Json(200, json::object{{"value", std::move(list)}}));
      },
      false);

  for (const Kind* k : {&kModel, &kTwin}) {
    const bool model = k->name == "model";
    const std::string path = model ? "/models/{id}/scene" : "/digitaltwins/{id}/scene";
    const std::string what = model ? "the model" : "the twin";

    add(
        "PUT", path, model ? Role::kAdmin : Role::kWriter,
        fmt::format("Attach a glTF 2.0 scene (model/gltf-binary or model/gltf+json) to {}", what),
        "",
        [c, k, assets](Request& req, const Respond& respond) {
          const std::string& id = req.params[0];
          if (Status s = Owner(*c, *k, id, nullptr); !s.ok()) return respond(Problem(s, req));
          std::string media = MediaType(req);
          if (media != kGlb && media != kGltf) {
            return respond(Problem(
                Status("UNSUPPORTED_MEDIA_TYPE",
                       fmt::format("Content-Type '{}' is not accepted here; send {} (GLB) or {}",
                                   media, kGlb, kGltf)),
                req));
          }
          if (req.body.empty()) return respond(Problem(Invalid("the body is empty"), req));
          Status ok =
              media == kGlb ? CheckGlb(req.body, *c) : CheckGltfJson(req.body, *c, false, false);
          if (!ok.ok()) return respond(Problem(ok, req));
          const std::string key = Key(*k, id);
          const bool existed = assets->Get(key).has_value();
          std::string etag = Etag(req.body);
          std::size_t bytes = req.body.size();
          if (Status s = assets->Put(key, fmt::format("{}\n", media) + req.body); !s.ok()) {
            return respond(Problem(s, req));
          }
          Reply r = Reply::Json(existed ? 200 : 201, json::object{{"id", id},
                                                                  {"kind", std::string(k->name)},
                                                                  {"contentType", media},
                                                                  {"bytes", bytes},
                                                                  {"etag", etag}});
          r.headers.emplace_back("ETag", etag);
          respond(std::move(r));
        },
        false);

    add(
        "GET", path, Role::kReader,
        model ? "The model's glTF scene"
              : "The twin's glTF scene, else its model's, else its nearest ancestor model's "
                "(Doppel-Scene-Source: twin|model; Doppel-Scene-Model: which model)",
        "",
        [c, k, assets, model](Request& req, const Respond& respond) {
          const std::string& id = req.params[0];
          std::string model_id;
          if (Status s = Owner(*c, *k, id, &model_id); !s.ok()) return respond(Problem(s, req));
          if (auto v = assets->Get(Key(*k, id))) {
            return respond(AssetReply(req, *v, k->name));
          }
          if (!model && !model_id.empty()) {
            // The twin's model's, else its nearest ancestor's that has one.
            std::vector<std::string> models{model_id};
            if (auto m = c->services.models->Get(model_id); m && m->resolved) {
              const auto& closure = m->resolved->extends_closure();
              models.insert(models.end(), closure.begin(), closure.end());
            }
            for (const std::string& from : models) {
              if (auto v = assets->Get(Key(kModel, from))) {
                Reply r = AssetReply(req, *v, "model");
                r.headers.emplace_back("Doppel-Scene-Model", from);
                return respond(std::move(r));
              }
            }
          }
          respond(Problem(
              Status("SCENE_NOT_FOUND",
                     model ? fmt::format("model '{}' has no scene", id)
                           : fmt::format("twin '{}' has no scene, nor has its model '{}' or a "
                                         "model it extends",
                                         id, model_id)),
              req));
        },
        false);

    add(
        "DELETE", path, model ? Role::kAdmin : Role::kWriter,
        fmt::format("Remove {}'s glTF scene", what), "",
        [c, k, assets](Request& req, const Respond& respond) {
          const std::string& id = req.params[0];
          if (Status s = Owner(*c, *k, id, nullptr); !s.ok()) return respond(Problem(s, req));
          const std::string key = Key(*k, id);
          if (!assets->Get(key)) {
            return respond(Problem(
                Status("SCENE_NOT_FOUND", fmt::format("{} '{}' has no scene", k->name, id)), req));
          }
          if (Status s = assets->Delete(key); !s.ok()) return respond(Problem(s, req));
          respond(Reply::Empty(204));
        },
        false);
  }
}

void DeleteScene(const RouteContext& ctx, std::string_view kind, const std::string& id) {
  if (ctx.assets) (void)ctx.assets->Delete(Key(Kind{kind, {}}, id));
}

}  // namespace doppel::api
