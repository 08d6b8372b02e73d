// doppel::twin — the durability seam of the twin graph.
//
// The graph turns each group of writes into one LogBatch of key/value puts and deletes and
// hands it to the TwinLog; a write is acknowledged only after Commit returned OK. The store
// component implements it on RocksDB; tests may use an in-memory one.
//
// Keys (all values are UTF-8 JSON):
//   t/<twin id>                      twin document
//   r/<source id> \x00 <rel id>      relationship document
//   meta/seq/<shard index>           highest write sequence number the shard has issued, written
//                                    with every group, so numbers (etags) are never reissued
//                                    after a restart even when their objects were deleted
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace doppel::twin {

struct LogBatch {
  // key -> new value, or nullopt to delete the key. Applied atomically, in order.
  std::vector<std::pair<std::string, std::optional<std::string>>> ops;
  bool empty() const { return ops.empty(); }
};

class TwinLog {
 public:
  virtual ~TwinLog() = default;
  // Makes the batch durable (per the store's sync policy) atomically: all or nothing.
  virtual core::Status Commit(const LogBatch& batch) = 0;
  // Calls fn for every key starting with `prefix`, in key order.
  virtual core::Status Scan(std::string_view prefix,
                            const std::function<void(std::string_view key,
                                                     std::string_view value)>& fn) const = 0;
};

inline std::string TwinKey(std::string_view id) { return "t/" + std::string(id); }
inline std::string RelationshipKey(std::string_view source, std::string_view rel_id) {
  std::string k = "r/";
  k += source;
  k += '\0';
  k += rel_id;
  return k;
}

}  // namespace doppel::twin
