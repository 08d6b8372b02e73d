// doppel::api — API keys and roles.
//
// A key is shown once, at creation: "dpk_<id>_<secret>" (id: 16 hex digits, secret: 64 hex
// digits from the OS CSPRNG). Only SHA-256(secret) is stored (store key "k/<id>"). Requests
// carry it as "Authorization: Bearer <key>".
//
// Roles are ordered: reader < writer < admin.
//   reader  GET everything, POST /query, the /events feed
//   writer  + create/replace/patch/delete twins and relationships, /import of twins
//   admin   + models (upload, decommission, delete), keys
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace doppel::store {
class Store;
}

namespace doppel::api {

enum class Role { kReader = 0, kWriter = 1, kAdmin = 2 };
std::optional<Role> ParseRole(std::string_view s);
const char* RoleName(Role r);

struct ApiKey {
  std::string id;
  Role role = Role::kReader;
  std::string description;
  std::string created;  // RFC 3339
};

class KeyStore {
 public:
  // `store` may be null: keys then live in memory only.
  explicit KeyStore(store::Store* store);

  // Reads the stored keys. Call once at start-up.
  core::Status Load();

  // Creates a key; returns it and the token to hand to the user (never retrievable again).
  core::Result<std::pair<ApiKey, std::string>> Create(Role role, std::string description);
  core::Status Revoke(std::string_view id);
  std::vector<ApiKey> List() const;

  // The key a bearer token belongs to, or nullopt (unknown, revoked or malformed).
  std::optional<ApiKey> Verify(std::string_view token) const;

 private:
  struct Entry {
    ApiKey key;
    std::string secret_hash;  // hex SHA-256
  };
  store::Store* store_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> keys_;
};

}  // namespace doppel::api
