#include "api/auth.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <boost/json.hpp>
#include <chrono>

#include "core/json.h"
#include "core/time.h"
#include "store/store.h"

namespace doppel::api {

namespace json = boost::json;

std::optional<Role> ParseRole(std::string_view s) {
  if (s == "reader") return Role::kReader;
  if (s == "writer") return Role::kWriter;
  if (s == "admin") return Role::kAdmin;
  return std::nullopt;
}

const char* RoleName(Role r) {
  switch (r) {
    case Role::kReader:
      return "reader";
    case Role::kWriter:
      return "writer";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

namespace {

std::string Hex(const unsigned char* p, std::size_t n) {
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) out += fmt::format("{:02x}", p[i]);
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return Hex(md, len);
}

std::optional<std::string> RandomHex(std::size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1) return std::nullopt;
  return Hex(buf.data(), buf.size());
}

}  // namespace

KeyStore::KeyStore(store::Store* store) : store_(store) {}

core::Status KeyStore::Load() {
  if (store_ == nullptr) return {};
  core::Status bad;
  core::Status s = store_->Scan("k/", [&](std::string_view key, std::string_view value) {
    auto v = core::ParseJson(value);
    if (!v.ok() || !v->is_object()) {
      bad = core::Status("STORE_CORRUPT", fmt::format("key record {} is not valid JSON", key));
      return;
    }
    const auto& o = v->get_object();
    Entry e;
    e.key.id = std::string(key.substr(2));
    auto str = [&](const char* k) {
      const auto* x = o.if_contains(k);
      return x && x->is_string() ? std::string(x->get_string()) : std::string();
    };
    e.key.role = ParseRole(str("role")).value_or(Role::kReader);
    e.key.description = str("description");
    e.key.created = str("created");
    e.secret_hash = str("secretSha256");
    std::lock_guard lock(mu_);
    keys_[e.key.id] = std::move(e);
  });
  return s.ok() ? bad : s;
}

core::Result<std::pair<ApiKey, std::string>> KeyStore::Create(Role role, std::string description) {
  auto id = RandomHex(8);
  auto secret = RandomHex(32);
  if (!id || !secret) return core::Status("INTERNAL", "the OS random generator failed");
  Entry e;
  e.key.id = *id;
  e.key.role = role;
  e.key.description = std::move(description);
  e.key.created = core::FormatRfc3339(std::chrono::system_clock::now());
  e.secret_hash = Sha256Hex(*secret);
  if (store_ != nullptr) {
    json::object rec{{"role", RoleName(role)},
                     {"description", e.key.description},
                     {"created", e.key.created},
                     {"secretSha256", e.secret_hash}};
    if (core::Status s = store_->Put("k/" + e.key.id, json::serialize(rec)); !s.ok()) return s;
  }
  ApiKey key = e.key;
  {
    std::lock_guard lock(mu_);
    keys_[key.id] = std::move(e);
  }
  return std::make_pair(key, fmt::format("dpk_{}_{}", *id, *secret));
}

core::Status KeyStore::Revoke(std::string_view id) {
  std::lock_guard lock(mu_);
  auto it = keys_.find(std::string(id));
  if (it == keys_.end()) return core::Status("KEY_NOT_FOUND", fmt::format("no API key '{}'", id));
  if (store_ != nullptr) {
    if (core::Status s = store_->Delete("k/" + std::string(id)); !s.ok()) return s;
  }
  keys_.erase(it);
  return {};
}

std::vector<ApiKey> KeyStore::List() const {
  std::lock_guard lock(mu_);
  std::vector<ApiKey> out;
  for (const auto& [id, e] : keys_) out.push_back(e.key);
  return out;
}

std::optional<ApiKey> KeyStore::Verify(std::string_view token) const {
  // dpk_<16 hex>_<64 hex>
  if (token.size() != 4 + 16 + 1 + 64 || !token.starts_with("dpk_") || token[20] != '_') {
    return std::nullopt;
  }
  std::string id(token.substr(4, 16));
  std::string hash = Sha256Hex(token.substr(21));
  std::lock_guard lock(mu_);
  auto it = keys_.find(id);
  if (it == keys_.end() || it->second.secret_hash.size() != hash.size()) return std::nullopt;
  if (CRYPTO_memcmp(it->second.secret_hash.data(), hash.data(), hash.size()) != 0) {
    return std::nullopt;
  }
  return it->second.key;
}

}  // namespace doppel::api
