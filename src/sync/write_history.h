// doppel::sync — the history of twin writes made through the API (PUT and PATCH of a twin or a
// component).
//
// Ingest appends every reading to history itself (ingest.h). A write through the API changes
// Properties too, and a property's history must hold every value it had, whichever way it came:
// after such a write commits, RecordTwinWrite appends the Property values it set, and the API
// answers once history has them. Which values: every Property (top level and inside Components)
// whose $metadata lastUpdateTime is the write's ($metadata.$lastUpdateTime) — the ones the write
// set, unchanged ones keep their older time. Each is stored at its sourceTime when the write gave
// one (twin::WriteContext), else at its lastUpdateTime, typed as ingest types it (HistoryValue).
//
// Not atomic with the twin write: a crash after the twin write committed and before history
// stored its values leaves a twin value without its history point (the write was never
// acknowledged; the next write of that property is recorded as usual).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/model_repository.h"
#include "tsdb/history.h"
#include "twin/twin_types.h"

namespace doppel::sync {

struct WrittenValue {
  std::string path;  // "name" or "component/name"
  std::int64_t t_ns = 0;
  tsdb::Value value;
};

// The Property values `twin`'s last write set (see the top comment).
std::vector<WrittenValue> WrittenValues(const twin::Twin& twin,
                                        const model::ResolvedInterface& iface);

// Appends WrittenValues(*twin) to `history`, then runs `done` with OK or the first error (a
// model that no longer resolves, TSDB_TYPE_MISMATCH, TSDB_IO) — on the history's committer
// thread, or on the caller's when there is nothing to append.
void RecordTwinWrite(tsdb::HistoryStore& history, const model::ModelRepository& models,
                     const twin::TwinPtr& twin, std::function<void(core::Status)> done);

}  // namespace doppel::sync
