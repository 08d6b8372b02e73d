// Tests of the twin graph (twin/twin_graph.h) against an in-memory TwinLog and models loaded
// from inline DTDL. Covers the documented shape, validation, JSON Patch, desired values,
// preconditions, relationships, indexes, the change feed, durability failures, recovery and
// concurrent writers.
#include "twin/twin_graph.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/time.h"
#include "model/model.h"
#include "twin/change_feed.h"
#include "twin/twin_document.h"
#include "twin/twin_log.h"

namespace doppel::twin {
namespace {

namespace json = boost::json;
using core::Status;

// ---------------------------------------------------------------------------------------------
// Models

constexpr char kEquipment[] = "dtmi:com:contoso:factory:Equipment;1";
constexpr char kMachine[] = "dtmi:com:contoso:factory:Machine;1";
constexpr char kCnc[] = "dtmi:com:contoso:factory:CncMachine;1";
constexpr char kDrive[] = "dtmi:com:contoso:factory:DriveUnit;1";
constexpr char kArea[] = "dtmi:com:contoso:factory:Area;1";
constexpr char kCleanRoom[] = "dtmi:com:contoso:factory:CleanRoom;1";
constexpr char kLegacyPress[] = "dtmi:com:contoso:factory:LegacyPress;1";

constexpr char kEquipmentDtdl[] = R"({
  "@context": "dtmi:dtdl:context;3",
  "@id": "dtmi:com:contoso:factory:Equipment;1",
  "@type": "Interface",
  "displayName": "Equipment",
  "contents": [
    {"@type": "Property", "name": "serialNumber", "schema": "string"},
    {"@type": "Property", "name": "assetTag", "schema": "string", "writable": true}
  ]
})";

constexpr char kDriveDtdl[] = R"({
  "@context": "dtmi:dtdl:context;3",
  "@id": "dtmi:com:contoso:factory:DriveUnit;1",
  "@type": "Interface",
  "displayName": "Drive unit",
  "contents": [
    {"@type": "Property", "name": "firmwareVersion", "schema": "string"},
    {"@type": "Property", "name": "targetSpeedRpm", "schema": "double", "writable": true},
    {"@type": "Telemetry", "name": "motorTemperature", "schema": "double"}
  ]
})";

constexpr char kMachineDtdl[] = R"({
  "@context": "dtmi:dtdl:context;3",
  "@id": "dtmi:com:contoso:factory:Machine;1",
  "@type": "Interface",
  "displayName": "Machine",
  "extends": "dtmi:com:contoso:factory:Equipment;1",
  "contents": [
    {"@type": "Telemetry", "name": "temperature", "schema": "double"},
    {"@type": "Property", "name": "targetTemperature", "schema": "double", "writable": true},
    {"@type": "Property", "name": "ratedPowerKw", "schema": "double"},
    {"@type": "Property", "name": "cycleCount", "schema": "long", "writable": true},
    {"@type": "Property", "name": "operatingMode", "writable": true,
     "schema": {"@type": "Enum", "valueSchema": "string", "enumValues": [
       {"name": "idle", "enumValue": "idle"},
       {"name": "running", "enumValue": "running"},
       {"name": "maintenance", "enumValue": "maintenance"}]}},
    {"@type": "Property", "name": "driveMode", "writable": true,
     "schema": {"@type": "Enum", "valueSchema": "string", "enumValues": [
       {"name": "eco", "enumValue": "eco"},
       {"name": "boost", "enumValue": "boost"}]}},
    {"@type": "Property", "name": "location", "writable": true,
     "schema": {"@type": "Object", "fields": [
       {"name": "building", "schema": "string"},
       {"name": "floor", "schema": "integer"}]}},
    {"@type": "Property", "name": "alarmThresholds", "writable": true,
     "schema": {"@type": "Map",
                "mapKey": {"name": "alarmName", "schema": "string"},
                "mapValue": {"name": "limit", "schema": "double"}}},
    {"@type": "Property", "name": "maintenanceNotes", "writable": true,
     "schema": {"@type": "Array", "elementSchema": "string"}},
    {"@type": "Component", "name": "drive", "schema": "dtmi:com:contoso:factory:DriveUnit;1"},
    {"@type": "Relationship", "name": "feeds", "target": "dtmi:com:contoso:factory:Machine;1",
     "maxMultiplicity": 2,
     "properties": [
       {"@type": "Property", "name": "throughputPerHour", "schema": "double"},
       {"@type": "Property", "name": "conveyor", "schema": "string"}]},
    {"@type": "Relationship", "name": "locatedIn", "target": "dtmi:com:contoso:factory:Area;1",
     "maxMultiplicity": 1},
    {"@type": "Relationship", "name": "monitoredBy"}
  ]
})";

constexpr char kCncDtdl[] = R"({
  "@context": "dtmi:dtdl:context;3",
  "@id": "dtmi:com:contoso:factory:CncMachine;1",
  "@type": "Interface",
  "extends": "dtmi:com:contoso:factory:Machine;1",
  "contents": [
    {"@type": "Property", "name": "spindleSpeedRpm", "schema": "double", "writable": true}
  ]
})";

constexpr char kAreaDtdl[] = R"({
  "@context": "dtmi:dtdl:context;3",
  "@id": "dtmi:com:contoso:factory:Area;1",
  "@type": "Interface",
  "contents": [
    {"@type": "Property", "name": "areaCode", "schema": "string", "writable": true}
  ]
})";

constexpr char kCleanRoomDtdl[] = R"({
  "@context": "dtmi:dtdl:context;3",
  "@id": "dtmi:com:contoso:factory:CleanRoom;1",
  "@type": "Interface",
  "extends": "dtmi:com:contoso:factory:Area;1",
  "contents": [
    {"@type": "Property", "name": "isoClass", "schema": "integer"}
  ]
})";

constexpr char kLegacyPressDtdl[] = R"({
  "@context": "dtmi:dtdl:context;3",
  "@id": "dtmi:com:contoso:factory:LegacyPress;1",
  "@type": "Interface",
  "contents": [
    {"@type": "Property", "name": "tonnage", "schema": "double"}
  ]
})";

void LoadModels(model::ModelRepository& repo) {
  std::vector<model::SourceDocument> docs = {
      {"Equipment.json", kEquipmentDtdl}, {"DriveUnit.json", kDriveDtdl},
      {"Machine.json", kMachineDtdl},     {"CncMachine.json", kCncDtdl},
      {"Area.json", kAreaDtdl},           {"CleanRoom.json", kCleanRoomDtdl},
      {"LegacyPress.json", kLegacyPressDtdl}};
  auto r = repo.Add(docs);
  for (const auto& d : r.diagnostics) ADD_FAILURE() << model::FormatDiagnostic(d);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(repo.Decommission(kLegacyPress).ok());
}

// ---------------------------------------------------------------------------------------------
// Logs

// The whole log in a map.
class MemLog : public TwinLog {
 public:
  Status Commit(const LogBatch& batch) override {
    std::lock_guard lock(mu_);
    ++commits_;
    for (const auto& [k, v] : batch.ops) {
      if (v) {
        data_[k] = *v;
      } else {
        data_.erase(k);
      }
    }
    return {};
  }
  Status Scan(std::string_view prefix,
              const std::function<void(std::string_view, std::string_view)>& fn) const override {
    std::map<std::string, std::string> copy;
    {
      std::lock_guard lock(mu_);
      copy = data_;
    }
    for (auto it = copy.lower_bound(std::string(prefix)); it != copy.end(); ++it) {
      if (!std::string_view(it->first).starts_with(prefix)) break;
      fn(it->first, it->second);
    }
    return {};
  }
  std::map<std::string, std::string> Snapshot() const {
    std::lock_guard lock(mu_);
    return data_;
  }
  std::optional<std::string> Get(const std::string& key) const {
    std::lock_guard lock(mu_);
    auto it = data_.find(key);
    if (it == data_.end()) return std::nullopt;
    return it->second;
  }
  void Put(const std::string& key, const std::string& value) {
    std::lock_guard lock(mu_);
    data_[key] = value;
  }
  int commits() const {
    std::lock_guard lock(mu_);
    return commits_;
  }

 protected:
  mutable std::mutex mu_;
  std::map<std::string, std::string> data_;
  int commits_ = 0;
};

// Fails every Commit with STORE_IO while `fail` is set (and then changes nothing).
class FailingLog : public MemLog {
 public:
  std::atomic<bool> fail{false};
  Status Commit(const LogBatch& batch) override {
    if (fail.load()) return Status("STORE_IO", "injected: no space left on device");
    return MemLog::Commit(batch);
  }
};

// When armed, the next Commit blocks until Release(); lets a test queue writes into one group.
class GatedLog : public MemLog {
 public:
  void Arm() {
    std::lock_guard lock(gate_mu_);
    armed_ = true;
    blocked_ = false;
  }
  void WaitUntilBlocked() {
    std::unique_lock lock(gate_mu_);
    gate_cv_.wait(lock, [&] { return blocked_; });
  }
  void Release() {
    {
      std::lock_guard lock(gate_mu_);
      armed_ = false;
    }
    gate_cv_.notify_all();
  }
  Status Commit(const LogBatch& batch) override {
    {
      std::unique_lock lock(gate_mu_);
      if (armed_) {
        blocked_ = true;
        gate_cv_.notify_all();
        gate_cv_.wait(lock, [&] { return !armed_; });
      }
    }
    return MemLog::Commit(batch);
  }

 private:
  std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  bool armed_ = false;
  bool blocked_ = false;
};

// ---------------------------------------------------------------------------------------------
// Helpers

json::value J(std::string_view text) { return json::parse(text); }

std::set<std::string> Keys(const json::object& o) {
  std::set<std::string> out;
  for (const auto& kv : o) out.insert(std::string(kv.key()));
  return out;
}

const json::object& Meta(const TwinPtr& t) { return t->doc.at("$metadata").as_object(); }
const json::object& PropMeta(const TwinPtr& t, std::string_view prop) {
  return Meta(t).at(prop).as_object();
}

using Violations = std::multiset<std::pair<std::string, std::string>>;  // (code, pointer)
Violations DetailsOf(const Status& s) {
  Violations out;
  for (const auto& d : s.details()) out.emplace(d.code(), d.pointer());
  return out;
}

std::string StatusText(const Status& s) {
  std::string out = s.ToString();
  for (const auto& d : s.details()) out += "\n  " + d.ToString();
  return out;
}

json::value FullMachine(std::string_view serial = "SN-4711") {
  json::value v = J(R"({
    "$metadata": {"$model": "dtmi:com:contoso:factory:Machine;1"},
    "serialNumber": "SN-4711",
    "assetTag": "PRS-01",
    "targetTemperature": 180.5,
    "ratedPowerKw": 7.5,
    "cycleCount": 0,
    "operatingMode": "idle",
    "driveMode": "eco",
    "location": {"building": "B2", "floor": 1},
    "alarmThresholds": {"overheat": 250.0},
    "maintenanceNotes": ["installed"],
    "drive": {"$metadata": {}, "firmwareVersion": "1.4.2", "targetSpeedRpm": 1500.0}
  })");
  v.as_object()["serialNumber"] = serial;
  return v;
}

json::value Minimal(std::string_view model) {
  json::object o;
  o["$metadata"] = json::object{{"$model", model}};
  return o;
}

json::value Rel(std::string_view name, std::string_view target) {
  return json::object{{"$relationshipName", name}, {"$targetId", target}};
}

std::chrono::system_clock::time_point FixedSourceTime() {
  return *core::ParseRfc3339("2024-03-01T08:30:00.250000Z");
}

bool HasSourceTime(const json::object& entry, std::chrono::system_clock::time_point t) {
  const json::value* s = entry.if_contains("sourceTime");
  if (s == nullptr || !s->is_string()) return false;
  auto parsed = core::ParseRfc3339(s->as_string());
  return parsed && *parsed == t;
}

std::vector<ChangeEventPtr> DrainAll(Subscription& s) {
  std::vector<ChangeEventPtr> out;
  s.Drain(&out);
  return out;
}

class TwinGraphTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LoadModels(models_);
    graph_ = std::make_unique<TwinGraph>(models_, &log_);
    events_ = graph_->feed().Subscribe(10000, nullptr);
  }

  TwinPtr Create(const std::string& id, json::value body) {
    auto r = graph_->PutTwinSync(id, std::move(body));
    if (!r.ok()) {
      ADD_FAILURE() << "creating " << id << ": " << StatusText(r.status());
      return nullptr;
    }
    return *r;
  }
  RelationshipPtr Relate(const std::string& src, const std::string& rel, json::value body) {
    auto r = graph_->PutRelationshipSync(src, rel, std::move(body));
    if (!r.ok()) {
      ADD_FAILURE() << "relating " << src << "/" << rel << ": " << StatusText(r.status());
      return nullptr;
    }
    return *r;
  }
  std::vector<ChangeEventPtr> Events() { return DrainAll(*events_); }
  // The user view of `t`, against its model.
  json::object View(const TwinPtr& t) {
    auto m = models_.Resolve(t->model);
    EXPECT_TRUE(m.ok());
    return UserView(*t, **m);
  }
  // The log's twin and relationship records (the graph may keep bookkeeping keys besides).
  std::map<std::string, std::string> DataRecords() const {
    std::map<std::string, std::string> out;
    for (auto& [k, v] : log_.Snapshot()) {
      if (k.starts_with("t/") || k.starts_with("r/")) out.emplace(k, v);
    }
    return out;
  }

  model::ModelRepository models_;
  MemLog log_;
  std::unique_ptr<TwinGraph> graph_;
  std::shared_ptr<Subscription> events_;
};

std::set<std::string> IdsOf(const std::vector<TwinPtr>& twins) {
  std::set<std::string> out;
  for (const auto& t : twins) out.insert(t->id);
  return out;
}
std::set<std::string> RelIdsOf(const std::vector<RelationshipPtr>& rels) {
  std::set<std::string> out;
  for (const auto& r : rels) out.insert(r->source + "/" + r->id);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Create and GET shape

TEST_F(TwinGraphTest, CreateReturnsTheAdtShape) {
  json::value body = FullMachine();
  auto r = graph_->PutTwinSync("press-01", body);
  ASSERT_TRUE(r.ok()) << StatusText(r.status());
  const TwinPtr& t = *r;
  EXPECT_EQ(t->id, "press-01");
  EXPECT_EQ(t->model, kMachine);
  EXPECT_GT(t->seq, 0u);
  EXPECT_EQ(t->etag, EtagOf(t->seq));
  EXPECT_EQ(SeqOfEtag(t->etag), t->seq);
  EXPECT_TRUE(t->etag.starts_with("W/\"")) << t->etag;

  const std::set<std::string> props = {"serialNumber", "assetTag",      "targetTemperature",
                                        "ratedPowerKw", "cycleCount",    "operatingMode",
                                        "driveMode",    "location",      "alarmThresholds",
                                        "maintenanceNotes"};
  std::set<std::string> top = props;
  top.insert({"$dtId", "$etag", "$metadata", "drive"});
  EXPECT_EQ(Keys(t->doc), top);
  EXPECT_EQ(t->doc.at("$dtId"), "press-01");
  EXPECT_EQ(t->doc.at("$etag").as_string(), t->etag);
  for (const auto& p : props) EXPECT_EQ(t->doc.at(p), body.at(p)) << p;

  const json::object& meta = Meta(t);
  std::set<std::string> meta_keys = props;
  meta_keys.insert({"$model", "$lastUpdateTime"});
  EXPECT_EQ(Keys(meta), meta_keys);
  EXPECT_EQ(meta.at("$model"), kMachine);
  ASSERT_TRUE(meta.at("$lastUpdateTime").is_string());
  const std::string lut(meta.at("$lastUpdateTime").as_string());
  EXPECT_TRUE(core::ParseRfc3339(lut).has_value()) << lut;
  for (const auto& p : props) {
    SCOPED_TRACE(p);
    const json::object& e = PropMeta(t, p);
    EXPECT_EQ(Keys(e), std::set<std::string>{"lastUpdateTime"});
    EXPECT_EQ(e.at("lastUpdateTime"), json::value(lut));  // one write, one time
  }

  // The component: its properties plus its own $metadata with per-property entries.
  const json::object& drive = t->doc.at("drive").as_object();
  EXPECT_EQ(Keys(drive), (std::set<std::string>{"$metadata", "firmwareVersion", "targetSpeedRpm"}));
  EXPECT_EQ(drive.at("firmwareVersion"), "1.4.2");
  EXPECT_EQ(drive.at("targetSpeedRpm").to_number<double>(), 1500.0);
  const json::object& dmeta = drive.at("$metadata").as_object();
  EXPECT_EQ(Keys(dmeta), (std::set<std::string>{"firmwareVersion", "targetSpeedRpm"}));
  for (const char* p : {"firmwareVersion", "targetSpeedRpm"}) {
    EXPECT_EQ(dmeta.at(p).as_object().at("lastUpdateTime"), json::value(lut)) << p;
  }

  // GET returns the published version; the log holds the same document.
  TwinPtr got = graph_->FindTwin("press-01");
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->doc, t->doc);
  EXPECT_EQ(got->etag, t->etag);
  EXPECT_EQ(graph_->FindTwin("press-02"), nullptr);
  auto stored = log_.Get(TwinKey("press-01"));
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(json::parse(*stored), json::value(t->doc));

  // The user view is what was written, plus $dtId and a $metadata entry for every writable
  // property (twin_document.h).
  json::value expected_user = body;
  expected_user.as_object()["$dtId"] = "press-01";
  auto& um = expected_user.as_object()["$metadata"].as_object();
  for (const char* w : {"assetTag", "targetTemperature", "cycleCount", "operatingMode",
                        "driveMode", "location", "alarmThresholds", "maintenanceNotes"}) {
    um[w] = json::object{};
  }
  expected_user.as_object()["drive"].as_object()["$metadata"] =
      J(R"({"targetSpeedRpm": {}})");
  EXPECT_EQ(json::value(View(t)), expected_user);

  EXPECT_EQ(graph_->TwinCount(), 1u);
  auto st = graph_->stats();
  EXPECT_EQ(st.twins, 1u);
  EXPECT_EQ(st.writes, 1u);
  EXPECT_EQ(st.failed_writes, 0u);
  EXPECT_GE(st.commits, 1u);
  EXPECT_TRUE(graph_->ModelInUse(kMachine));
  EXPECT_FALSE(graph_->ModelInUse(kCnc));

  auto ev = Events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]->kind, ChangeKind::kTwinCreated);
  EXPECT_EQ(ev[0]->twin_id, "press-01");
  EXPECT_EQ(ev[0]->model, kMachine);
  EXPECT_EQ(ev[0]->etag, t->etag);
  EXPECT_EQ(ev[0]->seq, t->seq);
  EXPECT_EQ(ev[0]->data, json::value(t->doc));
  EXPECT_TRUE(ev[0]->patch.is_null());
}

TEST_F(TwinGraphTest, MinimalTwinAndTwinOfExtendingModel) {
  TwinPtr a = Create("area-7", Minimal(kArea));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(Keys(a->doc), (std::set<std::string>{"$dtId", "$etag", "$metadata"}));
  EXPECT_EQ(Keys(Meta(a)), (std::set<std::string>{"$model", "$lastUpdateTime"}));

  // Inherited properties (Equipment, Machine) are accepted on a CncMachine.
  json::value cnc = FullMachine("SN-9000");
  cnc.as_object()["$metadata"].as_object()["$model"] = kCnc;
  cnc.as_object()["spindleSpeedRpm"] = 12000.0;
  TwinPtr c = Create("cnc-01", cnc);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->model, kCnc);
  EXPECT_EQ(c->doc.at("serialNumber"), "SN-9000");
  EXPECT_TRUE(Meta(c).contains("spindleSpeedRpm"));
}

TEST_F(TwinGraphTest, WriteContextSourceTimeIsRecordedOnTouchedPropertiesOnly) {
  ASSERT_NE(Create("press-01", FullMachine()), nullptr);
  WriteContext ctx;
  ctx.source_time = FixedSourceTime();
  auto r = graph_->PatchTwinSync(
      "press-01", J(R"([{"op": "replace", "path": "/cycleCount", "value": 42}])"), {}, ctx);
  ASSERT_TRUE(r.ok()) << StatusText(r.status());
  EXPECT_TRUE(HasSourceTime(PropMeta(*r, "cycleCount"), FixedSourceTime()));
  EXPECT_FALSE(PropMeta(*r, "assetTag").contains("sourceTime"));
  EXPECT_FALSE(PropMeta(*r, "targetTemperature").contains("sourceTime"));
}

// ---------------------------------------------------------------------------------------------
// Invalid bodies

TEST_F(TwinGraphTest, InvalidBodiesAreRejectedWithExactCodesAndChangeNothing) {
  struct Case {
    std::string name;
    std::string id;
    json::value body;
    std::string code;
    std::string pointer;  // of the top-level status; "-" = don't check
    Violations details;
  };
  auto with = [](json::value base, std::string_view key, json::value v) {
    base.as_object()[key] = std::move(v);
    return base;
  };
  const json::value ok = FullMachine();
  std::vector<Case> cases;
  cases.push_back({"unknown property", "press-01", with(ok, "colour", "red"), "INVALID_TWIN",
                   "/colour", {{"VALUE_UNKNOWN_ELEMENT", "/colour"}}});
  cases.push_back({"wrong type", "press-01", with(ok, "targetTemperature", "hot"),
                   "INVALID_TWIN", "/targetTemperature",
                   {{"VALUE_TYPE_MISMATCH", "/targetTemperature"}}});
  cases.push_back({"telemetry value", "press-01", with(ok, "temperature", 21.5), "INVALID_TWIN",
                   "/temperature", {{"VALUE_UNKNOWN_ELEMENT", "/temperature"}}});
  cases.push_back({"component telemetry", "press-01",
                   with(ok, "drive", J(R"({"$metadata": {}, "motorTemperature": 71.0})")),
                   "INVALID_TWIN", "/drive/motorTemperature",
                   {{"VALUE_UNKNOWN_ELEMENT", "/drive/motorTemperature"}}});
  cases.push_back({"enum value", "press-01", with(ok, "operatingMode", "sleeping"),
                   "INVALID_TWIN", "/operatingMode", {{"VALUE_NOT_IN_ENUM", "/operatingMode"}}});
  cases.push_back({"component not an object", "press-01", with(ok, "drive", 3), "INVALID_TWIN",
                   "/drive", {{"VALUE_TYPE_MISMATCH", "/drive"}}});
  json::value no_model = ok;
  no_model.as_object()["$metadata"] = json::object{};
  cases.push_back(
      {"missing $model", "press-01", no_model, "INVALID_TWIN", "/$metadata/$model", {}});
  cases.push_back({"no $metadata", "press-01", J(R"({"serialNumber": "SN-1"})"),
                   "INVALID_TWIN", "/$metadata/$model", {}});
  cases.push_back({"unknown model", "press-01", Minimal("dtmi:com:contoso:factory:Robot;1"),
                   "MODEL_NOT_FOUND", "/$metadata/$model", {}});
  cases.push_back({"decommissioned model", "press-01", Minimal(kLegacyPress),
                   "MODEL_DECOMMISSIONED", "/$metadata/$model", {}});
  cases.push_back({"$dtId mismatch", "press-01", with(ok, "$dtId", "press-02"), "INVALID_TWIN",
                   "/$dtId", {}});
  cases.push_back({"body not an object", "press-01", J("[1, 2]"), "INVALID_TWIN", "-", {}});
  cases.push_back({"empty id", "", ok, "INVALID_ID", "-", {}});
  cases.push_back({"id too long", std::string(129, 'p'), ok, "INVALID_ID", "-", {}});
  cases.push_back({"control character in id", std::string("press\n01"), ok, "INVALID_ID", "-",
                   {}});

  // Every violation at once, each reported with its pointer.
  json::value all = J(R"({
    "$metadata": {"$model": "dtmi:com:contoso:factory:Machine;1",
                  "serialNumber": {"desiredValue": "SN-X"}},
    "colour": "red",
    "temperature": 21.5,
    "targetTemperature": "hot",
    "operatingMode": "sleeping",
    "location": {"building": "B2", "floor": "first", "wing": "east"},
    "alarmThresholds": {"overheat": "high"},
    "maintenanceNotes": ["ok", 3],
    "drive": {"$metadata": {}, "targetSpeedRpm": true, "motorTemperature": 80}
  })");
  cases.push_back({"every violation",
                   "press-01",
                   all,
                   "INVALID_TWIN",
                   "-",
                   {{"NOT_WRITABLE", "/$metadata/serialNumber/desiredValue"},
                    {"VALUE_UNKNOWN_ELEMENT", "/colour"},
                    {"VALUE_UNKNOWN_ELEMENT", "/temperature"},
                    {"VALUE_TYPE_MISMATCH", "/targetTemperature"},
                    {"VALUE_NOT_IN_ENUM", "/operatingMode"},
                    {"VALUE_TYPE_MISMATCH", "/location/floor"},
                    {"VALUE_UNKNOWN_FIELD", "/location/wing"},
                    {"VALUE_TYPE_MISMATCH", "/alarmThresholds/overheat"},
                    {"VALUE_TYPE_MISMATCH", "/maintenanceNotes/1"},
                    {"VALUE_TYPE_MISMATCH", "/drive/targetSpeedRpm"},
                    {"VALUE_UNKNOWN_ELEMENT", "/drive/motorTemperature"}}});

  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = graph_->PutTwinSync(c.id, c.body);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), c.code) << StatusText(r.status());
    if (c.pointer != "-") {
      EXPECT_EQ(r.status().pointer(), c.pointer);
    }
    EXPECT_EQ(DetailsOf(r.status()), c.details) << StatusText(r.status());
    if (!c.details.empty()) {
      // The top-level pointer is one of the violations'.
      bool found = false;
      for (const auto& d : c.details) found = found || d.second == r.status().pointer();
      EXPECT_TRUE(found) << r.status().pointer();
    }
    EXPECT_FALSE(r.status().message().empty());
  }
  // Nothing changed.
  EXPECT_EQ(graph_->TwinCount(), 0u);
  EXPECT_EQ(graph_->stats().writes, 0u);
  EXPECT_TRUE(log_.Snapshot().empty());  // not even bookkeeping
  EXPECT_TRUE(Events().empty());
}

TEST_F(TwinGraphTest, InvalidReplaceAndPatchLeaveTheTwinUnchanged) {
  TwinPtr t = Create("press-01", FullMachine());
  ASSERT_NE(t, nullptr);
  Events();
  const auto log_before = log_.Snapshot();
  const auto writes_before = graph_->stats().writes;

  json::value bad = FullMachine();
  bad.as_object()["targetTemperature"] = "hot";
  auto r = graph_->PutTwinSync("press-01", bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "INVALID_TWIN");

  auto p = graph_->PatchTwinSync(
      "press-01", J(R"([{"op": "replace", "path": "/cycleCount", "value": 7},
                        {"op": "add", "path": "/location/floor", "value": 1.5},
                        {"op": "add", "path": "/alarmThresholds/vibration", "value": "loud"}])"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), "INVALID_TWIN");
  EXPECT_EQ(DetailsOf(p.status()),
            (Violations{{"VALUE_TYPE_MISMATCH", "/alarmThresholds/vibration"},
                        {"VALUE_OUT_OF_RANGE", "/location/floor"}}))
      << StatusText(p.status());

  auto p2 = graph_->PatchTwinSync("press-01",
                                  J(R"([{"op": "remove", "path": "/$metadata/$model"}])"));
  ASSERT_FALSE(p2.ok());
  EXPECT_EQ(p2.status().code(), "INVALID_TWIN");

  auto p3 = graph_->PatchTwinSync(
      "press-01", J(R"([{"op": "replace", "path": "/$dtId", "value": "press-99"}])"));
  ASSERT_FALSE(p3.ok());
  EXPECT_EQ(p3.status().code(), "INVALID_TWIN");
  EXPECT_EQ(p3.status().pointer(), "/$dtId");

  auto p4 = graph_->PatchTwinSync("press-01", J(R"({"op": "remove", "path": "/cycleCount"})"));
  ASSERT_FALSE(p4.ok());
  EXPECT_EQ(p4.status().code(), "PATCH_NOT_ARRAY");

  auto p5 = graph_->PatchTwinSync("press-01",
                                  J(R"([{"op": "remove", "path": "/targetSpeedRpm"}])"));
  ASSERT_FALSE(p5.ok());
  EXPECT_EQ(p5.status().code(), "PATCH_PATH_NOT_FOUND");

  auto p6 = graph_->PatchTwinSync("press-01", J(R"([{"op": "replace", "path": "", "value": 1}])"));
  ASSERT_FALSE(p6.ok());
  EXPECT_EQ(p6.status().code(), "INVALID_TWIN");

  auto p7 = graph_->PatchTwinSync("press-02", J(R"([])"));
  ASSERT_FALSE(p7.ok());
  EXPECT_EQ(p7.status().code(), "TWIN_NOT_FOUND");

  TwinPtr now = graph_->FindTwin("press-01");
  EXPECT_EQ(now, t);  // the very same published version
  EXPECT_EQ(log_.Snapshot(), log_before);
  EXPECT_EQ(graph_->stats().writes, writes_before);
  EXPECT_TRUE(Events().empty());
}

// Components are told apart from properties by the model, so a Map key that looks like
// "$metadata" must not confuse the user view (or be rejected up front).
TEST_F(TwinGraphTest, MapKeyNamedMetadataRoundTripsOrIsRejected) {
  json::value body = Minimal(kMachine);
  body.as_object()["alarmThresholds"] = J(R"({"$metadata": 5.0, "overheat": 250.0})");
  auto r = graph_->PutTwinSync("press-01", body);
  if (!r.ok()) {
    EXPECT_EQ(r.status().code(), "INVALID_TWIN");
    return;
  }
  EXPECT_EQ(View(*r).at("alarmThresholds"), body.at("alarmThresholds"));
  // An unrelated patch must still apply and keep the map as it was.
  auto p = graph_->PatchTwinSync("press-01",
                                 J(R"([{"op": "add", "path": "/assetTag", "value": "A-1"}])"));
  ASSERT_TRUE(p.ok()) << StatusText(p.status());
  EXPECT_EQ((*p)->doc.at("alarmThresholds"), body.at("alarmThresholds"));
}

// ---------------------------------------------------------------------------------------------
// Replace

TEST_F(TwinGraphTest, ReplaceSwapsTheWholeDocument) {
  TwinPtr v1 = Create("press-01", FullMachine());
  ASSERT_NE(v1, nullptr);
  Events();
  json::value body = J(R"({"$metadata": {"$model": "dtmi:com:contoso:factory:Machine;1"},
                           "serialNumber": "SN-4711", "operatingMode": "running"})");
  auto r = graph_->PutTwinSync("press-01", body);
  ASSERT_TRUE(r.ok()) << StatusText(r.status());
  TwinPtr v2 = *r;
  EXPECT_NE(v2->etag, v1->etag);
  EXPECT_GT(v2->seq, v1->seq);
  EXPECT_EQ(Keys(v2->doc), (std::set<std::string>{"$dtId", "$etag", "$metadata", "serialNumber",
                                                  "operatingMode"}));
  EXPECT_EQ(Keys(Meta(v2)), (std::set<std::string>{"$model", "$lastUpdateTime", "serialNumber",
                                                   "operatingMode"}));
  EXPECT_EQ(v2->doc.at("operatingMode"), "running");
  EXPECT_EQ(graph_->FindTwin("press-01"), v2);

  // Replacing with another model moves the twin between model indexes.
  json::value cnc = Minimal(kCnc);
  cnc.as_object()["spindleSpeedRpm"] = 9000.0;
  auto r2 = graph_->PutTwinSync("press-01", cnc);
  ASSERT_TRUE(r2.ok()) << StatusText(r2.status());
  EXPECT_EQ((*r2)->model, kCnc);
  std::vector<std::string> m = {kMachine};
  std::vector<std::string> c = {kCnc};
  EXPECT_TRUE(graph_->TwinsOfModels(m).empty());
  EXPECT_EQ(IdsOf(graph_->TwinsOfModels(c)), std::set<std::string>{"press-01"});
  EXPECT_FALSE(graph_->ModelInUse(kMachine));

  auto ev = Events();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0]->kind, ChangeKind::kTwinReplaced);
  EXPECT_EQ(ev[0]->data, json::value(v2->doc));
  EXPECT_EQ(ev[1]->kind, ChangeKind::kTwinReplaced);
  EXPECT_EQ(ev[1]->model, kCnc);
}

TEST_F(TwinGraphTest, ReplaceMayKeepADecommissionedModelButCreateMayNot) {
  // A twin created before the model was decommissioned keeps working.
  model::ModelRepository repo;
  LoadModels(repo);  // LegacyPress is decommissioned at the end
  std::vector<model::SourceDocument> docs = {
      {"Kiln.json", R"({"@context": "dtmi:dtdl:context;3",
                        "@id": "dtmi:com:contoso:factory:Kiln;1", "@type": "Interface",
                        "contents": [{"@type": "Property", "name": "maxTemperature",
                                      "schema": "double"}]})"}};
  ASSERT_TRUE(repo.Add(docs).ok());
  TwinGraph g(repo, nullptr);
  json::value kiln = Minimal("dtmi:com:contoso:factory:Kiln;1");
  kiln.as_object()["maxTemperature"] = 1200.0;
  ASSERT_TRUE(g.PutTwinSync("kiln-1", kiln).ok());
  ASSERT_TRUE(repo.Decommission("dtmi:com:contoso:factory:Kiln;1").ok());

  kiln.as_object()["maxTemperature"] = 1250.0;
  auto replaced = g.PutTwinSync("kiln-1", kiln);
  EXPECT_TRUE(replaced.ok()) << StatusText(replaced.status());
  auto patched = g.PatchTwinSync(
      "kiln-1", J(R"([{"op": "replace", "path": "/maxTemperature", "value": 1300.0}])"));
  EXPECT_TRUE(patched.ok()) << StatusText(patched.status());
  auto created = g.PutTwinSync("kiln-2", kiln);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().code(), "MODEL_DECOMMISSIONED");
  EXPECT_EQ(g.FindTwin("kiln-2"), nullptr);
}

// ---------------------------------------------------------------------------------------------
// JSON Patch

TEST_F(TwinGraphTest, PatchAddReplaceRemoveTestIncludingComponentsMapsAndObjects) {
  TwinPtr v1 = Create("press-01", FullMachine());
  ASSERT_NE(v1, nullptr);
  Events();
  json::value patch = J(R"([
    {"op": "test", "path": "/serialNumber", "value": "SN-4711"},
    {"op": "replace", "path": "/targetTemperature", "value": 190.0},
    {"op": "remove", "path": "/assetTag"},
    {"op": "add", "path": "/alarmThresholds/vibration", "value": 12.5},
    {"op": "remove", "path": "/alarmThresholds/overheat"},
    {"op": "replace", "path": "/location/floor", "value": 3},
    {"op": "add", "path": "/maintenanceNotes/-", "value": "belt replaced"},
    {"op": "replace", "path": "/drive/targetSpeedRpm", "value": 1750.0},
    {"op": "add", "path": "/operatingMode", "value": "running"}
  ])");
  auto r = graph_->PatchTwinSync("press-01", patch);
  ASSERT_TRUE(r.ok()) << StatusText(r.status());
  TwinPtr v2 = *r;
  const json::object& d = v2->doc;
  EXPECT_EQ(d.at("targetTemperature").to_number<double>(), 190.0);
  EXPECT_FALSE(d.contains("assetTag"));
  EXPECT_FALSE(Meta(v2).contains("assetTag"));
  EXPECT_EQ(d.at("alarmThresholds"), J(R"({"vibration": 12.5})"));
  EXPECT_EQ(d.at("location"), J(R"({"building": "B2", "floor": 3})"));
  EXPECT_EQ(d.at("maintenanceNotes"), J(R"(["installed", "belt replaced"])"));
  EXPECT_EQ(d.at("drive").at("targetSpeedRpm").to_number<double>(), 1750.0);
  EXPECT_EQ(d.at("drive").at("firmwareVersion"), "1.4.2");
  EXPECT_EQ(d.at("operatingMode"), "running");
  EXPECT_EQ(d.at("serialNumber"), "SN-4711");
  EXPECT_NE(v2->etag, v1->etag);
  EXPECT_EQ(graph_->FindTwin("press-01"), v2);
  EXPECT_EQ(json::parse(*log_.Get(TwinKey("press-01"))), json::value(d));

  auto ev = Events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]->kind, ChangeKind::kTwinPatched);
  EXPECT_EQ(ev[0]->patch, patch);
  EXPECT_EQ(ev[0]->etag, v2->etag);
  EXPECT_TRUE(ev[0]->data.is_null());

  // The component can be added back as a whole and removed as a whole.
  auto rm = graph_->PatchTwinSync("press-01", J(R"([{"op": "remove", "path": "/drive"}])"));
  ASSERT_TRUE(rm.ok()) << StatusText(rm.status());
  EXPECT_FALSE((*rm)->doc.contains("drive"));
  auto add = graph_->PatchTwinSync(
      "press-01", J(R"([{"op": "add", "path": "/drive",
                         "value": {"$metadata": {}, "firmwareVersion": "2.0.0"}}])"));
  ASSERT_TRUE(add.ok()) << StatusText(add.status());
  EXPECT_EQ((*add)->doc.at("drive").at("firmwareVersion"), "2.0.0");
  EXPECT_TRUE((*add)->doc.at("drive").at("$metadata").as_object().contains("firmwareVersion"));
}

TEST_F(TwinGraphTest, FailingTestOperationChangesNothing) {
  TwinPtr v1 = Create("press-01", FullMachine());
  ASSERT_NE(v1, nullptr);
  Events();
  const auto log_before = log_.Snapshot();
  auto r = graph_->PatchTwinSync("press-01", J(R"([
    {"op": "replace", "path": "/targetTemperature", "value": 150.0},
    {"op": "test", "path": "/operatingMode", "value": "running"},
    {"op": "replace", "path": "/cycleCount", "value": 99}
  ])"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "PATCH_TEST_FAILED");
  EXPECT_EQ(r.status().pointer(), "/1/value");
  EXPECT_EQ(graph_->FindTwin("press-01"), v1);
  EXPECT_EQ(graph_->FindTwin("press-01")->doc.at("targetTemperature").to_number<double>(), 180.5);
  EXPECT_EQ(log_.Snapshot(), log_before);
  EXPECT_EQ(graph_->stats().writes, 1u);
  EXPECT_TRUE(Events().empty());
}

TEST_F(TwinGraphTest, PatchUpdatesLastUpdateTimeOfTouchedPropertiesOnly) {
  ASSERT_NE(Create("press-01", FullMachine()), nullptr);
  WriteContext ctx;
  ctx.source_time = FixedSourceTime();
  // A "test" reads /serialNumber; it does not update it.
  auto r = graph_->PatchTwinSync("press-01", J(R"([
    {"op": "test", "path": "/serialNumber", "value": "SN-4711"},
    {"op": "replace", "path": "/targetTemperature", "value": 175.0}
  ])"), {}, ctx);
  ASSERT_TRUE(r.ok()) << StatusText(r.status());
  EXPECT_TRUE(HasSourceTime(PropMeta(*r, "targetTemperature"), FixedSourceTime()));
  EXPECT_FALSE(PropMeta(*r, "serialNumber").contains("sourceTime"))
      << json::serialize(PropMeta(*r, "serialNumber"));

  // "copy" reads its "from"; only the destination changes. (A fresh twin, so the above does
  // not leak into this check.)
  ASSERT_NE(Create("press-02", FullMachine()), nullptr);
  auto c = graph_->PatchTwinSync(
      "press-02", J(R"([{"op": "copy", "from": "/serialNumber", "path": "/assetTag"}])"), {},
      ctx);
  ASSERT_TRUE(c.ok()) << StatusText(c.status());
  EXPECT_EQ((*c)->doc.at("assetTag"), "SN-4711");
  EXPECT_TRUE(HasSourceTime(PropMeta(*c, "assetTag"), FixedSourceTime()));
  EXPECT_FALSE(PropMeta(*c, "serialNumber").contains("sourceTime"))
      << json::serialize(PropMeta(*c, "serialNumber"));
}

TEST_F(TwinGraphTest, PatchOfOneComponentPropertyLeavesItsSiblingsMetadataAlone) {
  ASSERT_NE(Create("press-01", FullMachine()), nullptr);
  WriteContext ctx;
  ctx.source_time = FixedSourceTime();
  auto r = graph_->PatchTwinSync(
      "press-01", J(R"([{"op": "replace", "path": "/drive/targetSpeedRpm", "value": 1600.0}])"),
      {}, ctx);
  ASSERT_TRUE(r.ok()) << StatusText(r.status());
  const json::object& dmeta = (*r)->doc.at("drive").at("$metadata").as_object();
  EXPECT_TRUE(HasSourceTime(dmeta.at("targetSpeedRpm").as_object(), FixedSourceTime()));
  EXPECT_FALSE(dmeta.at("firmwareVersion").as_object().contains("sourceTime"))
      << json::serialize(dmeta);
}

// ---------------------------------------------------------------------------------------------
// Desired values

TEST_F(TwinGraphTest, DesiredValueLifecycleOnWritableProperty) {
  ASSERT_NE(Create("press-01", FullMachine()), nullptr);
  // Set a desired value (the property has none yet).
  auto r1 = graph_->PatchTwinSync(
      "press-01",
      J(R"([{"op": "add", "path": "/$metadata/targetTemperature",
             "value": {"desiredValue": 200.0}}])"));
  ASSERT_TRUE(r1.ok()) << StatusText(r1.status());
  const json::object& e1 = PropMeta(*r1, "targetTemperature");
  EXPECT_EQ(e1.at("desiredValue").to_number<double>(), 200.0);
  EXPECT_EQ(e1.at("desiredVersion"), 1);
  ASSERT_TRUE(e1.contains("desiredTime"));
  EXPECT_TRUE(core::ParseRfc3339(e1.at("desiredTime").as_string()).has_value());
  EXPECT_TRUE(e1.contains("lastUpdateTime"));
  EXPECT_EQ((*r1)->doc.at("targetTemperature").to_number<double>(), 180.5);  // reported unchanged
  // The user view shows the desired value and nothing else server-managed.
  const json::object view_meta = View(*r1).at("$metadata").as_object();
  EXPECT_EQ(view_meta.at("$model"), kMachine);
  EXPECT_EQ(view_meta.at("targetTemperature"), J(R"({"desiredValue": 200.0})"));
  EXPECT_FALSE(view_meta.contains("serialNumber"));  // read-only: no desired value
  for (const auto& kv : view_meta) {
    if (kv.key() == "$model") continue;
    EXPECT_TRUE(kv.value().is_object()) << kv.key();
    for (const auto& e : kv.value().as_object()) EXPECT_EQ(e.key(), "desiredValue") << kv.key();
  }

  // Patch the desired value through its path: the version increments.
  auto r2 = graph_->PatchTwinSync(
      "press-01",
      J(R"([{"op": "replace", "path": "/$metadata/targetTemperature/desiredValue",
             "value": 210.0}])"));
  ASSERT_TRUE(r2.ok()) << StatusText(r2.status());
  EXPECT_EQ(PropMeta(*r2, "targetTemperature").at("desiredValue").to_number<double>(), 210.0);
  EXPECT_EQ(PropMeta(*r2, "targetTemperature").at("desiredVersion"), 2);

  // Writing the same desired value again is a new request: the version increments.
  auto r3 = graph_->PatchTwinSync(
      "press-01",
      J(R"([{"op": "replace", "path": "/$metadata/targetTemperature/desiredValue",
             "value": 210.0}])"));
  ASSERT_TRUE(r3.ok()) << StatusText(r3.status());
  EXPECT_EQ(PropMeta(*r3, "targetTemperature").at("desiredVersion"), 3);

  // A reported value (the device acknowledging) keeps the desired value and version.
  auto r4 = graph_->PatchTwinSync(
      "press-01", J(R"([{"op": "replace", "path": "/targetTemperature", "value": 210.0}])"));
  ASSERT_TRUE(r4.ok()) << StatusText(r4.status());
  EXPECT_EQ((*r4)->doc.at("targetTemperature").to_number<double>(), 210.0);
  EXPECT_EQ(PropMeta(*r4, "targetTemperature").at("desiredValue").to_number<double>(), 210.0);
  EXPECT_EQ(PropMeta(*r4, "targetTemperature").at("desiredVersion"), 3);
  EXPECT_EQ(PropMeta(*r4, "targetTemperature").at("desiredTime"),
            PropMeta(*r3, "targetTemperature").at("desiredTime"));

  // An unrelated patch keeps the desired state.
  auto r5 = graph_->PatchTwinSync(
      "press-01", J(R"([{"op": "replace", "path": "/cycleCount", "value": 5}])"));
  ASSERT_TRUE(r5.ok()) << StatusText(r5.status());
  EXPECT_EQ(PropMeta(*r5, "targetTemperature").at("desiredVersion"), 3);

  // Removing the desired value keeps the reported property's metadata.
  auto r6 = graph_->PatchTwinSync(
      "press-01", J(R"([{"op": "remove", "path": "/$metadata/targetTemperature"}])"));
  ASSERT_TRUE(r6.ok()) << StatusText(r6.status());
  EXPECT_FALSE(PropMeta(*r6, "targetTemperature").contains("desiredValue"));
  EXPECT_TRUE(PropMeta(*r6, "targetTemperature").contains("lastUpdateTime"));

  // A desired value of the wrong type is a violation at its pointer.
  auto bad = graph_->PatchTwinSync(
      "press-01", J(R"([{"op": "add", "path": "/$metadata/targetTemperature",
                         "value": {"desiredValue": "warm"}}])"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), "INVALID_TWIN");
  EXPECT_EQ(DetailsOf(bad.status()),
            (Violations{{"VALUE_TYPE_MISMATCH", "/$metadata/targetTemperature/desiredValue"}}));
}

// ADT clients write /$metadata/<prop>/desiredValue directly, whether or not a desired value is
// pending.
TEST_F(TwinGraphTest, FirstDesiredValueCanBeAddedAtItsOwnPath) {
  ASSERT_NE(Create("press-01", FullMachine()), nullptr);
  auto r = graph_->PatchTwinSync(
      "press-01", J(R"([{"op": "add", "path": "/$metadata/targetTemperature/desiredValue",
                         "value": 195.0}])"));
  ASSERT_TRUE(r.ok()) << StatusText(r.status());
  EXPECT_EQ(PropMeta(*r, "targetTemperature").at("desiredValue").to_number<double>(), 195.0);
  EXPECT_EQ(PropMeta(*r, "targetTemperature").at("desiredVersion"), 1);
}

TEST_F(TwinGraphTest, DesiredValueOnReadOnlyPropertyIsRejected) {
  TwinPtr v1 = Create("press-01", FullMachine());
  ASSERT_NE(v1, nullptr);
  auto r = graph_->PatchTwinSync(
      "press-01", J(R"([{"op": "add", "path": "/$metadata/serialNumber",
                         "value": {"desiredValue": "SN-0000"}}])"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "INVALID_TWIN");
  EXPECT_EQ(DetailsOf(r.status()),
            (Violations{{"NOT_WRITABLE", "/$metadata/serialNumber/desiredValue"}}));
  auto r2 = graph_->PatchTwinSync(
      "press-01", J(R"([{"op": "add", "path": "/$metadata/serialNumber/desiredValue",
                         "value": "SN-0000"}])"));
  EXPECT_FALSE(r2.ok());
  // A component's read-only property too.
  auto r3 = graph_->PatchComponentSync(
      "press-01", "drive", J(R"([{"op": "add", "path": "/$metadata/firmwareVersion",
                                  "value": {"desiredValue": "9.9.9"}}])"));
  ASSERT_FALSE(r3.ok());
  EXPECT_EQ(r3.status().code(), "INVALID_TWIN");
  EXPECT_EQ(DetailsOf(r3.status()),
            (Violations{{"NOT_WRITABLE", "/drive/$metadata/firmwareVersion/desiredValue"}}));
  EXPECT_EQ(graph_->FindTwin("press-01"), v1);
}

TEST_F(TwinGraphTest, CreateWithReportedAndDesiredValueKeepsBothMetadata) {
  json::value body = FullMachine();
  body.as_object()["$metadata"].as_object()["targetTemperature"] =
      json::object{{"desiredValue", 200.0}};
  auto r = graph_->PutTwinSync("press-01", body);
  ASSERT_TRUE(r.ok()) << StatusText(r.status());
  const json::object& e = PropMeta(*r, "targetTemperature");
  EXPECT_EQ(e.at("desiredValue").to_number<double>(), 200.0);
  EXPECT_EQ(e.at("desiredVersion"), 1);
  // The reported value was written by this request, so it has a lastUpdateTime like every
  // other property.
  EXPECT_TRUE(e.contains("lastUpdateTime")) << json::serialize(e);
  EXPECT_EQ(e.if_contains("lastUpdateTime") ? *e.if_contains("lastUpdateTime") : json::value(),
            Meta(*r).at("$lastUpdateTime"));

  // A reported update with a source time while the desired value is pending records it.
  WriteContext ctx;
  ctx.source_time = FixedSourceTime();
  auto p = graph_->PatchTwinSync(
      "press-01", J(R"([{"op": "replace", "path": "/targetTemperature", "value": 199.0}])"), {},
      ctx);
  ASSERT_TRUE(p.ok()) << StatusText(p.status());
  EXPECT_TRUE(HasSourceTime(PropMeta(*p, "targetTemperature"), FixedSourceTime()))
      << json::serialize(PropMeta(*p, "targetTemperature"));
  EXPECT_EQ(PropMeta(*p, "targetTemperature").at("desiredVersion"), 1);
}

TEST_F(TwinGraphTest, DesiredValueWithoutReportedValue) {
  json::value body = Minimal(kMachine);
  body.as_object()["$metadata"].as_object()["operatingMode"] =
      json::object{{"desiredValue", "maintenance"}};
  auto r = graph_->PutTwinSync("press-01", body);
  ASSERT_TRUE(r.ok()) << StatusText(r.status());
  EXPECT_FALSE((*r)->doc.contains("operatingMode"));
  const json::object& e = PropMeta(*r, "operatingMode");
  EXPECT_EQ(e.at("desiredValue"), "maintenance");
  EXPECT_EQ(e.at("desiredVersion"), 1);
  EXPECT_TRUE(e.contains("desiredTime"));
  // Not an enum value → rejected.
  body.as_object()["$metadata"].as_object()["operatingMode"] =
      json::object{{"desiredValue", "asleep"}};
  auto bad = graph_->PutTwinSync("press-02", body);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(DetailsOf(bad.status()),
            (Violations{{"VALUE_NOT_IN_ENUM", "/$metadata/operatingMode/desiredValue"}}));
}

// ---------------------------------------------------------------------------------------------
// PatchComponent

TEST_F(TwinGraphTest, PatchComponentUsesPathsRelativeToTheComponent) {
  ASSERT_NE(Create("press-01", FullMachine()), nullptr);
  Events();
  auto r = graph_->PatchComponentSync("press-01", "drive", J(R"([
    {"op": "replace", "path": "/targetSpeedRpm", "value": 1800.0},
    {"op": "add", "path": "/$metadata/targetSpeedRpm", "value": {"desiredValue": 2000.0}},
    {"op": "test", "path": "/firmwareVersion", "value": "1.4.2"}
  ])"));
  ASSERT_TRUE(r.ok()) << StatusText(r.status());
  const json::object& drive = (*r)->doc.at("drive").as_object();
  EXPECT_EQ(drive.at("targetSpeedRpm").to_number<double>(), 1800.0);
  const json::object& e = drive.at("$metadata").at("targetSpeedRpm").as_object();
  EXPECT_EQ(e.at("desiredValue").to_number<double>(), 2000.0);
  EXPECT_EQ(e.at("desiredVersion"), 1);
  // Top-level properties are untouched.
  EXPECT_EQ((*r)->doc.at("targetTemperature").to_number<double>(), 180.5);
  EXPECT_FALSE(Meta(*r).contains("targetSpeedRpm"));

  auto ev = Events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]->kind, ChangeKind::kTwinPatched);
  ASSERT_TRUE(ev[0]->patch.is_array());
  EXPECT_EQ(ev[0]->patch.at(0).at("path"), "/drive/targetSpeedRpm");  // relative to the twin

  auto bad = graph_->PatchComponentSync(
      "press-01", "drive",
      J(R"([{"op": "replace", "path": "/firmwareVersion", "value": 2}])"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), "INVALID_TWIN");
  EXPECT_EQ(DetailsOf(bad.status()), (Violations{{"VALUE_TYPE_MISMATCH", "/drive/firmwareVersion"}}));

  auto not_component = graph_->PatchComponentSync(
      "press-01", "location", J(R"([{"op": "replace", "path": "/floor", "value": 2}])"));
  ASSERT_FALSE(not_component.ok());
  EXPECT_EQ(not_component.status().code(), "COMPONENT_NOT_FOUND");
  auto unknown = graph_->PatchComponentSync("press-01", "nozzle", J("[]"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), "COMPONENT_NOT_FOUND");
  auto no_twin = graph_->PatchComponentSync(
      "press-02", "drive", J(R"([{"op": "replace", "path": "/targetSpeedRpm", "value": 1.0}])"));
  ASSERT_FALSE(no_twin.ok());
  EXPECT_EQ(no_twin.status().code(), "TWIN_NOT_FOUND");
  auto not_array = graph_->PatchComponentSync("press-01", "drive", J(R"({"op": "test"})"));
  ASSERT_FALSE(not_array.ok());
  EXPECT_EQ(not_array.status().code(), "PATCH_NOT_ARRAY");
  EXPECT_TRUE(Events().empty());
}

// As at the top level, writing the same desired value again (at its path) is a new request.
TEST_F(TwinGraphTest, ResendingADesiredValueInAComponentBumpsItsVersion) {
  ASSERT_NE(Create("press-01", FullMachine()), nullptr);
  auto r1 = graph_->PatchComponentSync(
      "press-01", "drive",
      J(R"([{"op": "add", "path": "/$metadata/targetSpeedRpm/desiredValue", "value": 1700.0}])"));
  ASSERT_TRUE(r1.ok()) << StatusText(r1.status());
  auto version = [](const TwinPtr& t) {
    return t->doc.at("drive").at("$metadata").at("targetSpeedRpm").at("desiredVersion");
  };
  EXPECT_EQ(version(*r1), 1);
  auto r2 = graph_->PatchComponentSync(
      "press-01", "drive",
      J(R"([{"op": "replace", "path": "/$metadata/targetSpeedRpm/desiredValue",
             "value": 1700.0}])"));
  ASSERT_TRUE(r2.ok()) << StatusText(r2.status());
  EXPECT_EQ(version(*r2), 2);
  // An unrelated top-level desired value does not touch it.
  auto r3 = graph_->PatchTwinSync(
      "press-01", J(R"([{"op": "add", "path": "/$metadata/cycleCount/desiredValue", "value": 0}])"));
  ASSERT_TRUE(r3.ok()) << StatusText(r3.status());
  EXPECT_EQ(version(*r3), version(*r2));
}

// A pointer without a leading '/' is invalid (RFC 6901); prefixing it with the component must
// not turn it into a valid pointer outside the component (here "Mode" -> "/driveMode").
TEST_F(TwinGraphTest, PatchComponentRejectsPointersThatEscapeTheComponent) {
  TwinPtr v1 = Create("press-01", FullMachine());
  ASSERT_NE(v1, nullptr);
  auto r = graph_->PatchComponentSync(
      "press-01", "drive", J(R"([{"op": "replace", "path": "Mode", "value": "boost"}])"));
  ASSERT_FALSE(r.ok()) << "patched " << json::serialize((*r)->doc);
  EXPECT_EQ(r.status().code(), "PATCH_INVALID_POINTER");
  EXPECT_EQ(graph_->FindTwin("press-01")->doc.at("driveMode"), "eco");
}

// ---------------------------------------------------------------------------------------------
// Etags and preconditions

TEST_F(TwinGraphTest, EveryWriteGetsANewIncreasingEtag) {
  std::vector<std::string> etags;
  std::vector<std::uint64_t> seqs;
  auto note_twin = [&](const core::Result<TwinPtr>& r) {
    ASSERT_TRUE(r.ok()) << StatusText(r.status());
    EXPECT_EQ((*r)->doc.at("$etag").as_string(), (*r)->etag);
    etags.push_back((*r)->etag);
    seqs.push_back((*r)->seq);
  };
  auto note_rel = [&](const core::Result<RelationshipPtr>& r) {
    ASSERT_TRUE(r.ok()) << StatusText(r.status());
    EXPECT_EQ((*r)->doc.at("$etag").as_string(), (*r)->etag);
    etags.push_back((*r)->etag);
    seqs.push_back((*r)->seq);
  };
  note_twin(graph_->PutTwinSync("press-01", FullMachine()));
  note_twin(graph_->PutTwinSync("press-02", FullMachine("SN-2")));
  note_twin(graph_->PutTwinSync("press-01", FullMachine()));  // identical replace
  note_twin(graph_->PatchTwinSync("press-01", J("[]")));      // empty patch
  note_twin(graph_->PatchTwinSync(
      "press-01", J(R"([{"op": "replace", "path": "/cycleCount", "value": 1}])")));
  note_twin(graph_->PatchComponentSync(
      "press-01", "drive", J(R"([{"op": "replace", "path": "/targetSpeedRpm", "value": 1.0}])")));
  note_rel(graph_->PutRelationshipSync("press-01", "feeds-1", Rel("feeds", "press-02")));
  note_rel(graph_->PutRelationshipSync("press-01", "feeds-1", Rel("feeds", "press-02")));
  note_rel(graph_->PatchRelationshipSync(
      "press-01", "feeds-1",
      J(R"([{"op": "add", "path": "/throughputPerHour", "value": 40.0}])")));
  ASSERT_EQ(etags.size(), 9u);
  EXPECT_EQ(std::set<std::string>(etags.begin(), etags.end()).size(), etags.size());
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
  for (std::size_t i = 1; i < seqs.size(); ++i) EXPECT_LT(seqs[i - 1], seqs[i]);
  for (std::size_t i = 0; i < etags.size(); ++i) EXPECT_EQ(SeqOfEtag(etags[i]), seqs[i]);
}

TEST_F(TwinGraphTest, IfMatchAndIfNoneMatch) {
  Preconditions none_match;
  none_match.if_none_match_any = true;
  // If-None-Match: * creates...
  auto c = graph_->PutTwinSync("press-01", FullMachine(), none_match);
  ASSERT_TRUE(c.ok()) << StatusText(c.status());
  const std::string etag1 = (*c)->etag;
  // ...but never overwrites.
  auto c2 = graph_->PutTwinSync("press-01", FullMachine("SN-other"), none_match);
  ASSERT_FALSE(c2.ok());
  EXPECT_EQ(c2.status().code(), "PRECONDITION_FAILED");
  EXPECT_EQ(graph_->FindTwin("press-01")->etag, etag1);

  // If-Match on a missing twin never matches, not even "*".
  Preconditions star;
  star.if_match = "*";
  auto m0 = graph_->PutTwinSync("press-02", FullMachine(), star);
  ASSERT_FALSE(m0.ok());
  EXPECT_EQ(m0.status().code(), "PRECONDITION_FAILED");
  EXPECT_EQ(graph_->FindTwin("press-02"), nullptr);

  Preconditions stale;
  stale.if_match = EtagOf(9999);
  auto m1 = graph_->PutTwinSync("press-01", FullMachine(), stale);
  ASSERT_FALSE(m1.ok());
  EXPECT_EQ(m1.status().code(), "PRECONDITION_FAILED");
  json::value patch = J(R"([{"op": "replace", "path": "/cycleCount", "value": 3}])");
  auto m2 = graph_->PatchTwinSync("press-01", patch, stale);
  ASSERT_FALSE(m2.ok());
  EXPECT_EQ(m2.status().code(), "PRECONDITION_FAILED");
  auto m3 = graph_->PatchComponentSync(
      "press-01", "drive", J(R"([{"op": "replace", "path": "/targetSpeedRpm", "value": 1.0}])"),
      stale);
  ASSERT_FALSE(m3.ok());
  EXPECT_EQ(m3.status().code(), "PRECONDITION_FAILED");
  Status d = graph_->DeleteTwinSync("press-01", stale);
  EXPECT_EQ(d.code(), "PRECONDITION_FAILED");
  EXPECT_EQ(graph_->FindTwin("press-01")->etag, etag1);

  Preconditions current;
  current.if_match = etag1;
  auto ok1 = graph_->PatchTwinSync("press-01", patch, current);
  ASSERT_TRUE(ok1.ok()) << StatusText(ok1.status());
  // The old etag no longer matches.
  auto again = graph_->PatchTwinSync("press-01", patch, current);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), "PRECONDITION_FAILED");
  auto ok2 = graph_->PutTwinSync("press-01", FullMachine(), star);
  ASSERT_TRUE(ok2.ok()) << StatusText(ok2.status());
  Preconditions latest;
  latest.if_match = (*ok2)->etag;
  auto ok3 = graph_->PutTwinSync("press-01", FullMachine(), latest);
  ASSERT_TRUE(ok3.ok()) << StatusText(ok3.status());
  latest.if_match = (*ok3)->etag;
  EXPECT_TRUE(graph_->DeleteTwinSync("press-01", latest).ok());
  EXPECT_EQ(graph_->FindTwin("press-01"), nullptr);
}

// ---------------------------------------------------------------------------------------------
// Delete

TEST_F(TwinGraphTest, DeleteRefusesWhileRelationshipsExist) {
  ASSERT_NE(Create("press-01", FullMachine()), nullptr);
  ASSERT_NE(Create("press-02", FullMachine("SN-2")), nullptr);
  ASSERT_NE(Create("press-03", FullMachine("SN-3")), nullptr);
  ASSERT_NE(Relate("press-01", "feeds-2", Rel("feeds", "press-02")), nullptr);
  Events();
  const auto log_before = log_.Snapshot();

  Status out = graph_->DeleteTwinSync("press-01");  // outgoing
  EXPECT_EQ(out.code(), "TWIN_HAS_RELATIONSHIPS");
  Status in = graph_->DeleteTwinSync("press-02");  // incoming
  EXPECT_EQ(in.code(), "TWIN_HAS_RELATIONSHIPS");
  EXPECT_NE(graph_->FindTwin("press-01"), nullptr);
  EXPECT_NE(graph_->FindTwin("press-02"), nullptr);
  EXPECT_EQ(log_.Snapshot(), log_before);
  EXPECT_TRUE(Events().empty());

  // Without relationships: deleted, from the graph, the log and the indexes.
  ASSERT_TRUE(graph_->DeleteTwinSync("press-03").ok());
  EXPECT_EQ(graph_->FindTwin("press-03"), nullptr);
  EXPECT_FALSE(log_.Get(TwinKey("press-03")).has_value());
  std::vector<std::string> m = {kMachine};
  EXPECT_EQ(IdsOf(graph_->TwinsOfModels(m)), (std::set<std::string>{"press-01", "press-02"}));
  auto ev = Events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]->kind, ChangeKind::kTwinDeleted);
  EXPECT_EQ(ev[0]->twin_id, "press-03");
  EXPECT_EQ(ev[0]->model, kMachine);
  EXPECT_TRUE(ev[0]->etag.empty());

  EXPECT_EQ(graph_->DeleteTwinSync("press-03").code(), "TWIN_NOT_FOUND");

  ASSERT_TRUE(graph_->DeleteRelationshipSync("press-01", "feeds-2").ok());
  EXPECT_TRUE(graph_->DeleteTwinSync("press-01").ok());
  EXPECT_TRUE(graph_->DeleteTwinSync("press-02").ok());
  EXPECT_EQ(graph_->TwinCount(), 0u);
  EXPECT_TRUE(DataRecords().empty());
  EXPECT_FALSE(graph_->ModelInUse(kMachine));
  // The id can be used again.
  EXPECT_NE(Create("press-01", FullMachine()), nullptr);
}

// A relationship created in the same group commit as its target's deletion must not survive
// as a dangling edge (source and target on one shard).
TEST(TwinGraphGroupTest, DeleteTargetQueuedBehindNewRelationshipInOneGroup) {
  model::ModelRepository models;
  LoadModels(models);
  GatedLog log;
  GraphOptions opts;
  opts.shards = 1;
  TwinGraph g(models, &log, opts);
  ASSERT_TRUE(g.PutTwinSync("press-01", FullMachine()).ok());
  ASSERT_TRUE(g.PutTwinSync("press-02", FullMachine("SN-2")).ok());
  ASSERT_TRUE(g.PutTwinSync("press-03", FullMachine("SN-3")).ok());

  // Block the shard inside a commit, queue the two writes, release: they form the next group.
  log.Arm();
  std::promise<void> first_done;
  g.PatchTwin("press-03", J(R"([{"op": "replace", "path": "/cycleCount", "value": 1}])"), {},
              [&](core::Result<TwinPtr>) { first_done.set_value(); });
  log.WaitUntilBlocked();
  std::promise<core::Result<RelationshipPtr>> rel_done;
  std::promise<Status> del_done;
  g.PutRelationship("press-01", "feeds-2", Rel("feeds", "press-02"), {},
                    [&](core::Result<RelationshipPtr> r) { rel_done.set_value(std::move(r)); });
  g.DeleteTwin("press-02", {}, [&](Status s) { del_done.set_value(std::move(s)); });
  log.Release();
  first_done.get_future().wait();
  auto rel = rel_done.get_future().get();
  Status del = del_done.get_future().get();

  ASSERT_TRUE(rel.ok()) << StatusText(rel.status());
  EXPECT_EQ(del.code(), "TWIN_HAS_RELATIONSHIPS") << "the graph now has a dangling relationship";
  EXPECT_NE(g.FindTwin("press-02"), nullptr);
}

// A relationship patch without If-Match applies to the latest version, like a twin patch: a
// write that lands between the caller's call and the shard applying it must not turn into a
// PRECONDITION_FAILED the caller never asked for.
TEST(TwinGraphGroupTest, RelationshipPatchWithoutIfMatchAppliesToTheLatestVersion) {
  model::ModelRepository models;
  LoadModels(models);
  GatedLog log;
  GraphOptions opts;
  opts.shards = 1;
  TwinGraph g(models, &log, opts);
  ASSERT_TRUE(g.PutTwinSync("press-01", FullMachine()).ok());
  ASSERT_TRUE(g.PutTwinSync("press-02", FullMachine("SN-2")).ok());
  ASSERT_TRUE(g.PutRelationshipSync("press-01", "f", Rel("feeds", "press-02")).ok());

  log.Arm();
  std::promise<void> first_done;
  g.PatchTwin("press-02", J(R"([{"op": "replace", "path": "/cycleCount", "value": 1}])"), {},
              [&](core::Result<TwinPtr>) { first_done.set_value(); });
  log.WaitUntilBlocked();
  std::promise<core::Result<RelationshipPtr>> replaced, patched;
  json::value body = J(R"({"$relationshipName": "feeds", "$targetId": "press-02",
                           "conveyor": "C-1"})");
  g.PutRelationship("press-01", "f", body, {},
                    [&](core::Result<RelationshipPtr> r) { replaced.set_value(std::move(r)); });
  g.PatchRelationship("press-01", "f",
                      J(R"([{"op": "add", "path": "/throughputPerHour", "value": 30.0}])"), {},
                      [&](core::Result<RelationshipPtr> r) { patched.set_value(std::move(r)); });
  log.Release();
  first_done.get_future().wait();
  auto rep = replaced.get_future().get();
  auto pat = patched.get_future().get();
  ASSERT_TRUE(rep.ok()) << StatusText(rep.status());
  ASSERT_TRUE(pat.ok()) << StatusText(pat.status());
  EXPECT_EQ((*pat)->doc.at("throughputPerHour").to_number<double>(), 30.0);
  EXPECT_EQ((*pat)->doc.at("conveyor"), "C-1");  // the replace is not lost either
}

// ---------------------------------------------------------------------------------------------
// Relationships

TEST_F(TwinGraphTest, RelationshipCreateShapeAndLookups) {
  ASSERT_NE(Create("press-01", FullMachine()), nullptr);
  ASSERT_NE(Create("press-02", FullMachine("SN-2")), nullptr);
  ASSERT_NE(Create("press-03", FullMachine("SN-3")), nullptr);
  ASSERT_NE(Create("hall-a", Minimal(kArea)), nullptr);
  Events();

  json::value body = J(R"({"$relationshipName": "feeds", "$targetId": "press-02",
                           "throughputPerHour": 42.5, "conveyor": "C-7"})");
  auto r = graph_->PutRelationshipSync("press-01", "feeds-press-02", body);
  ASSERT_TRUE(r.ok()) << StatusText(r.status());
  const RelationshipPtr& rel = *r;
  EXPECT_EQ(rel->id, "feeds-press-02");
  EXPECT_EQ(rel->source, "press-01");
  EXPECT_EQ(rel->target, "press-02");
  EXPECT_EQ(rel->name, "feeds");
  EXPECT_EQ(rel->etag, EtagOf(rel->seq));
  json::value expected = J(R"({"$relationshipId": "feeds-press-02", "$sourceId": "press-01",
      "$targetId": "press-02", "$relationshipName": "feeds", "throughputPerHour": 42.5,
      "conveyor": "C-7"})");
  expected.as_object()["$etag"] = rel->etag;
  EXPECT_EQ(json::value(rel->doc), expected);
  EXPECT_EQ(rel->doc.at("$etag").as_string(), rel->etag);
  auto stored = log_.Get(RelationshipKey("press-01", "feeds-press-02"));
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(json::parse(*stored), json::value(rel->doc));

  ASSERT_NE(Relate("press-01", "in-hall-a", Rel("locatedIn", "hall-a")), nullptr);
  ASSERT_NE(Relate("press-01", "watched", Rel("monitoredBy", "press-03")), nullptr);
  ASSERT_NE(Relate("press-03", "feeds-press-02", Rel("feeds", "press-02")), nullptr);

  EXPECT_EQ(graph_->FindRelationship("press-01", "feeds-press-02"), rel);
  EXPECT_EQ(graph_->FindRelationship("press-01", "nope"), nullptr);
  EXPECT_EQ(graph_->FindRelationship("press-02", "feeds-press-02"), nullptr);
  EXPECT_EQ(RelIdsOf(graph_->Outgoing("press-01")),
            (std::set<std::string>{"press-01/feeds-press-02", "press-01/in-hall-a",
                                   "press-01/watched"}));
  EXPECT_EQ(RelIdsOf(graph_->Outgoing("press-01", "feeds")),
            std::set<std::string>{"press-01/feeds-press-02"});
  EXPECT_EQ(RelIdsOf(graph_->Outgoing("press-01", "locatedIn")),
            std::set<std::string>{"press-01/in-hall-a"});
  EXPECT_TRUE(graph_->Outgoing("press-02").empty());
  EXPECT_TRUE(graph_->Outgoing("press-01", "contains").empty());
  EXPECT_EQ(RelIdsOf(graph_->Incoming("press-02")),
            (std::set<std::string>{"press-01/feeds-press-02", "press-03/feeds-press-02"}));
  EXPECT_EQ(RelIdsOf(graph_->Incoming("hall-a")), std::set<std::string>{"press-01/in-hall-a"});
  EXPECT_TRUE(graph_->Incoming("press-01").empty());
  EXPECT_EQ(graph_->stats().relationships, 4u);

  auto ev = Events();
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0]->kind, ChangeKind::kRelationshipCreated);
  EXPECT_EQ(ev[0]->twin_id, "press-01");
  EXPECT_EQ(ev[0]->model, kMachine);
  EXPECT_EQ(ev[0]->relationship_id, "feeds-press-02");
  EXPECT_EQ(ev[0]->etag, rel->etag);
  EXPECT_EQ(ev[0]->data, json::value(rel->doc));
}

TEST_F(TwinGraphTest, InvalidRelationshipsAreRejectedAndChangeNothing) {
  ASSERT_NE(Create("press-01", FullMachine()), nullptr);
  ASSERT_NE(Create("press-02", FullMachine("SN-2")), nullptr);
  ASSERT_NE(Create("hall-a", Minimal(kArea)), nullptr);
  Events();
  const auto log_before = log_.Snapshot();
  struct Case {
    std::string name;
    std::string source;
    std::string rel;
    json::value body;
    std::string code;
    Violations details;  // checked when non-empty
  };
  std::vector<Case> cases = {
      {"unknown name", "press-01", "r1", Rel("powers", "press-02"), "INVALID_RELATIONSHIP",
       {{"INVALID_RELATIONSHIP", "/$relationshipName"}}},
      {"property name, not a relationship", "press-01", "r1", Rel("serialNumber", "press-02"),
       "INVALID_RELATIONSHIP", {{"INVALID_RELATIONSHIP", "/$relationshipName"}}},
      {"target not found", "press-01", "r1", Rel("feeds", "press-77"), "TARGET_NOT_FOUND", {}},
      {"target model not matching", "press-01", "r1", Rel("feeds", "hall-a"),
       "INVALID_RELATIONSHIP", {{"INVALID_RELATIONSHIP", "/$targetId"}}},
      {"target model not matching (locatedIn)", "press-01", "r1", Rel("locatedIn", "press-02"),
       "INVALID_RELATIONSHIP", {{"INVALID_RELATIONSHIP", "/$targetId"}}},
      {"source not found", "press-77", "r1", Rel("feeds", "press-02"), "TWIN_NOT_FOUND", {}},
      {"property of the wrong type", "press-01", "r1",
       J(R"({"$relationshipName": "feeds", "$targetId": "press-02",
             "throughputPerHour": "fast"})"),
       "INVALID_RELATIONSHIP", {{"VALUE_TYPE_MISMATCH", "/throughputPerHour"}}},
      {"unknown property", "press-01", "r1",
       J(R"({"$relationshipName": "feeds", "$targetId": "press-02", "speed": 1,
             "conveyor": 7})"),
       "INVALID_RELATIONSHIP",
       {{"VALUE_UNKNOWN_ELEMENT", "/speed"}, {"VALUE_TYPE_MISMATCH", "/conveyor"}}},
      {"unknown $ member", "press-01", "r1",
       J(R"({"$relationshipName": "feeds", "$targetId": "press-02", "$colour": "red"})"),
       "INVALID_RELATIONSHIP", {{"VALUE_UNKNOWN_ELEMENT", "/$colour"}}},
      {"$sourceId mismatch", "press-01", "r1",
       J(R"({"$relationshipName": "feeds", "$targetId": "press-02", "$sourceId": "press-02"})"),
       "INVALID_RELATIONSHIP", {{"INVALID_RELATIONSHIP", "/$sourceId"}}},
      {"$relationshipId mismatch", "press-01", "r1",
       J(R"({"$relationshipName": "feeds", "$targetId": "press-02",
             "$relationshipId": "r2"})"),
       "INVALID_RELATIONSHIP", {{"INVALID_RELATIONSHIP", "/$relationshipId"}}},
      {"missing name", "press-01", "r1", J(R"({"$targetId": "press-02"})"),
       "INVALID_RELATIONSHIP", {}},
      {"missing target", "press-01", "r1", J(R"({"$relationshipName": "feeds"})"),
       "INVALID_RELATIONSHIP", {}},
      {"name not a string", "press-01", "r1",
       J(R"({"$relationshipName": 5, "$targetId": "press-02"})"), "INVALID_RELATIONSHIP",
       {{"VALUE_TYPE_MISMATCH", "/$relationshipName"}}},
      {"body not an object", "press-01", "r1", J("[]"), "INVALID_RELATIONSHIP", {}},
      {"empty relationship id", "press-01", "", Rel("feeds", "press-02"), "INVALID_ID", {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto r = graph_->PutRelationshipSync(c.source, c.rel, c.body);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), c.code) << StatusText(r.status());
    if (!c.details.empty()) {
      EXPECT_EQ(DetailsOf(r.status()), c.details) << StatusText(r.status());
    }
  }
  EXPECT_TRUE(graph_->Outgoing("press-01").empty());
  EXPECT_TRUE(graph_->Incoming("press-02").empty());
  EXPECT_TRUE(graph_->Incoming("hall-a").empty());
  EXPECT_EQ(graph_->stats().relationships, 0u);
  EXPECT_EQ(log_.Snapshot(), log_before);
  EXPECT_TRUE(Events().empty());
}

TEST_F(TwinGraphTest, RelationshipTargetMatchesThroughExtends) {
  json::value cnc = Minimal(kCnc);
  ASSERT_NE(Create("cnc-01", cnc), nullptr);
  ASSERT_NE(Create("press-01", FullMachine()), nullptr);
  ASSERT_NE(Create("cleanroom-1", Minimal(kCleanRoom)), nullptr);
  // feeds → Machine: a CncMachine is a Machine.
  EXPECT_NE(Relate("press-01", "feeds-cnc", Rel("feeds", "cnc-01")), nullptr);
  // locatedIn → Area: a CleanRoom is an Area.
  EXPECT_NE(Relate("press-01", "in-cleanroom", Rel("locatedIn", "cleanroom-1")), nullptr);
  // Relationships are inherited too: a CncMachine can feed a Machine.
  EXPECT_NE(Relate("cnc-01", "feeds-press", Rel("feeds", "press-01")), nullptr);
  // monitoredBy has no target restriction.
  EXPECT_NE(Relate("press-01", "watched", Rel("monitoredBy", "cleanroom-1")), nullptr);
}

TEST_F(TwinGraphTest, MaxMultiplicityIsEnforced) {
  for (const char* id : {"press-01", "press-02", "press-03", "press-04"}) {
    ASSERT_NE(Create(id, FullMachine(id)), nullptr);
  }
  ASSERT_NE(Create("hall-a", Minimal(kArea)), nullptr);
  ASSERT_NE(Create("hall-b", Minimal(kArea)), nullptr);
  ASSERT_NE(Relate("press-01", "f2", Rel("feeds", "press-02")), nullptr);
  ASSERT_NE(Relate("press-01", "f3", Rel("feeds", "press-03")), nullptr);
  auto third = graph_->PutRelationshipSync("press-01", "f4", Rel("feeds", "press-04"));
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), "RELATIONSHIP_LIMIT");
  EXPECT_EQ(graph_->FindRelationship("press-01", "f4"), nullptr);
  // Replacing one of the two does not count it twice.
  auto replaced = graph_->PutRelationshipSync("press-01", "f3", Rel("feeds", "press-04"));
  EXPECT_TRUE(replaced.ok()) << StatusText(replaced.status());
  // Other names have their own count; other sources too.
  EXPECT_NE(Relate("press-01", "in-a", Rel("locatedIn", "hall-a")), nullptr);
  auto second_area = graph_->PutRelationshipSync("press-01", "in-b", Rel("locatedIn", "hall-b"));
  ASSERT_FALSE(second_area.ok());
  EXPECT_EQ(second_area.status().code(), "RELATIONSHIP_LIMIT");
  EXPECT_NE(Relate("press-02", "f3", Rel("feeds", "press-03")), nullptr);
  // After a delete there is room again.
  ASSERT_TRUE(graph_->DeleteRelationshipSync("press-01", "f2").ok());
  EXPECT_NE(Relate("press-01", "f4", Rel("feeds", "press-04")), nullptr);
  EXPECT_EQ(graph_->Outgoing("press-01", "feeds").size(), 2u);
}

TEST_F(TwinGraphTest, ReplaceRelationshipWithDifferentTargetMovesIncoming) {
  ASSERT_NE(Create("press-01", FullMachine()), nullptr);
  ASSERT_NE(Create("press-02", FullMachine("SN-2")), nullptr);
  ASSERT_NE(Create("press-03", FullMachine("SN-3")), nullptr);
  RelationshipPtr v1 = Relate("press-01", "downstream", Rel("feeds", "press-02"));
  ASSERT_NE(v1, nullptr);
  Events();
  auto r = graph_->PutRelationshipSync("press-01", "downstream", Rel("feeds", "press-03"));
  ASSERT_TRUE(r.ok()) << StatusText(r.status());
  EXPECT_NE((*r)->etag, v1->etag);
  EXPECT_EQ((*r)->target, "press-03");
  EXPECT_TRUE(graph_->Incoming("press-02").empty());
  EXPECT_EQ(RelIdsOf(graph_->Incoming("press-03")), std::set<std::string>{"press-01/downstream"});
  EXPECT_EQ(graph_->stats().relationships, 1u);
  // press-02 is free to go now; press-03 is not.
  EXPECT_EQ(graph_->DeleteTwinSync("press-03").code(), "TWIN_HAS_RELATIONSHIPS");
  EXPECT_TRUE(graph_->DeleteTwinSync("press-02").ok());
  auto ev = Events();
  ASSERT_GE(ev.size(), 1u);
  EXPECT_EQ(ev[0]->kind, ChangeKind::kRelationshipReplaced);
  EXPECT_EQ(ev[0]->data, json::value((*r)->doc));
}

TEST_F(TwinGraphTest, RelationshipPreconditionsPatchAndDelete) {
  ASSERT_NE(Create("press-01", FullMachine()), nullptr);
  ASSERT_NE(Create("press-02", FullMachine("SN-2")), nullptr);
  Preconditions none_match;
  none_match.if_none_match_any = true;
  auto c = graph_->PutRelationshipSync("press-01", "f", Rel("feeds", "press-02"), none_match);
  ASSERT_TRUE(c.ok()) << StatusText(c.status());
  auto c2 = graph_->PutRelationshipSync("press-01", "f", Rel("feeds", "press-02"), none_match);
  ASSERT_FALSE(c2.ok());
  EXPECT_EQ(c2.status().code(), "PRECONDITION_FAILED");
  Events();

  Preconditions stale;
  stale.if_match = EtagOf(123456);
  json::value patch = J(R"([{"op": "add", "path": "/throughputPerHour", "value": 12.0}])");
  auto p0 = graph_->PatchRelationshipSync("press-01", "f", patch, stale);
  ASSERT_FALSE(p0.ok());
  EXPECT_EQ(p0.status().code(), "PRECONDITION_FAILED");
  Preconditions current;
  current.if_match = (*c)->etag;
  auto p1 = graph_->PatchRelationshipSync("press-01", "f", patch, current);
  ASSERT_TRUE(p1.ok()) << StatusText(p1.status());
  EXPECT_EQ((*p1)->doc.at("throughputPerHour").to_number<double>(), 12.0);
  EXPECT_NE((*p1)->etag, (*c)->etag);
  EXPECT_EQ(graph_->FindRelationship("press-01", "f"), *p1);

  auto bad = graph_->PatchRelationshipSync(
      "press-01", "f", J(R"([{"op": "add", "path": "/throughputPerHour", "value": "lots"}])"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), "INVALID_RELATIONSHIP");
  auto failed_test = graph_->PatchRelationshipSync(
      "press-01", "f", J(R"([{"op": "test", "path": "/$targetId", "value": "press-09"}])"));
  ASSERT_FALSE(failed_test.ok());
  EXPECT_EQ(failed_test.status().code(), "PATCH_TEST_FAILED");
  EXPECT_EQ(graph_->FindRelationship("press-01", "f"), *p1);
  auto missing = graph_->PatchRelationshipSync("press-01", "g", patch);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), "RELATIONSHIP_NOT_FOUND");

  EXPECT_EQ(graph_->DeleteRelationshipSync("press-01", "f", stale).code(),
            "PRECONDITION_FAILED");
  EXPECT_NE(graph_->FindRelationship("press-01", "f"), nullptr);
  Preconditions latest;
  latest.if_match = (*p1)->etag;
  EXPECT_TRUE(graph_->DeleteRelationshipSync("press-01", "f", latest).ok());
  EXPECT_EQ(graph_->FindRelationship("press-01", "f"), nullptr);
  EXPECT_TRUE(graph_->Incoming("press-02").empty());
  EXPECT_TRUE(graph_->Outgoing("press-01").empty());
  EXPECT_FALSE(log_.Get(RelationshipKey("press-01", "f")).has_value());
  EXPECT_EQ(graph_->stats().relationships, 0u);
  EXPECT_EQ(graph_->DeleteRelationshipSync("press-01", "f").code(), "RELATIONSHIP_NOT_FOUND");

  auto ev = Events();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1]->kind, ChangeKind::kRelationshipDeleted);
  EXPECT_EQ(ev[1]->relationship_id, "f");
  EXPECT_TRUE(ev[1]->etag.empty());
}

// PatchRelationship is a patch: the feed says so and carries the patch (like twin patches).
TEST_F(TwinGraphTest, RelationshipPatchEmitsAPatchedEvent) {
  ASSERT_NE(Create("press-01", FullMachine()), nullptr);
  ASSERT_NE(Create("press-02", FullMachine("SN-2")), nullptr);
  ASSERT_NE(Relate("press-01", "f", Rel("feeds", "press-02")), nullptr);
  Events();
  json::value patch = J(R"([{"op": "add", "path": "/conveyor", "value": "C-9"}])");
  auto p = graph_->PatchRelationshipSync("press-01", "f", patch);
  ASSERT_TRUE(p.ok()) << StatusText(p.status());
  auto ev = Events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0]->kind, ChangeKind::kRelationshipPatched) << ChangeKindName(ev[0]->kind);
  EXPECT_EQ(ev[0]->patch, patch);
  EXPECT_EQ(ev[0]->etag, (*p)->etag);
}

// ---------------------------------------------------------------------------------------------
// Indexes

TEST_F(TwinGraphTest, TwinsOfModelsIsExact) {
  ASSERT_NE(Create("press-01", FullMachine()), nullptr);
  ASSERT_NE(Create("press-02", FullMachine("SN-2")), nullptr);
  ASSERT_NE(Create("cnc-01", Minimal(kCnc)), nullptr);
  ASSERT_NE(Create("hall-a", Minimal(kArea)), nullptr);
  std::vector<std::string> machine = {kMachine};
  std::vector<std::string> both = {kMachine, kCnc};
  std::vector<std::string> area = {kArea, kCleanRoom};
  std::vector<std::string> unknown = {"dtmi:com:contoso:factory:Robot;1"};
  EXPECT_EQ(IdsOf(graph_->TwinsOfModels(machine)),
            (std::set<std::string>{"press-01", "press-02"}));
  EXPECT_EQ(graph_->TwinsOfModels(machine).size(), 2u);
  EXPECT_EQ(IdsOf(graph_->TwinsOfModels(both)),
            (std::set<std::string>{"press-01", "press-02", "cnc-01"}));
  EXPECT_EQ(IdsOf(graph_->TwinsOfModels(area)), std::set<std::string>{"hall-a"});
  EXPECT_TRUE(graph_->TwinsOfModels(unknown).empty());
  // The returned versions are current.
  auto p = graph_->PatchTwinSync("press-02",
                                 J(R"([{"op": "replace", "path": "/cycleCount", "value": 8}])"));
  ASSERT_TRUE(p.ok());
  for (const auto& t : graph_->TwinsOfModels(machine)) {
    EXPECT_EQ(t, graph_->FindTwin(t->id));
  }
  ASSERT_TRUE(graph_->DeleteTwinSync("press-01").ok());
  EXPECT_EQ(IdsOf(graph_->TwinsOfModels(machine)), std::set<std::string>{"press-02"});

  std::set<std::string> seen;
  graph_->ForEachTwin([&](const TwinPtr& t) {
    seen.insert(t->id);
    return true;
  });
  EXPECT_EQ(seen, (std::set<std::string>{"press-02", "cnc-01", "hall-a"}));
  int calls = 0;
  graph_->ForEachTwin([&](const TwinPtr&) { return ++calls < 2; });
  EXPECT_EQ(calls, 2);
}

TEST_F(TwinGraphTest, PropertyIndexAfterThresholdStaysCorrect) {
  const std::vector<std::pair<std::string, std::string>> modes = {
      {"press-01", "idle"}, {"press-02", "running"}, {"press-03", "idle"},
      {"press-04", "maintenance"}, {"press-05", "running"}, {"press-06", "idle"}};
  for (const auto& [id, mode] : modes) {
    json::value b = FullMachine(id);
    b.as_object()["operatingMode"] = mode;
    ASSERT_NE(Create(id, b), nullptr);
  }
  ASSERT_NE(Create("press-07", Minimal(kMachine)), nullptr);  // no operatingMode
  const json::value idle("idle"), running("running");
  EXPECT_FALSE(graph_->TwinsWithProperty("operatingMode", idle).has_value());
  graph_->NoteFilteredProperty("operatingMode");
  graph_->NoteFilteredProperty("operatingMode");
  EXPECT_FALSE(graph_->TwinsWithProperty("operatingMode", idle).has_value());
  EXPECT_EQ(graph_->stats().indexed_properties, 0u);
  graph_->NoteFilteredProperty("operatingMode");  // third: indexed
  EXPECT_EQ(graph_->stats().indexed_properties, 1u);

  auto ids = [&](const json::value& v) -> std::set<std::string> {
    auto r = graph_->TwinsWithProperty("operatingMode", v);
    if (!r) {
      ADD_FAILURE() << "no index";
      return {};
    }
    for (const auto& t : *r) EXPECT_EQ(t, graph_->FindTwin(t->id));  // current versions
    return IdsOf(*r);
  };
  EXPECT_EQ(ids(idle), (std::set<std::string>{"press-01", "press-03", "press-06"}));
  EXPECT_EQ(ids(running), (std::set<std::string>{"press-02", "press-05"}));
  EXPECT_TRUE(ids(json::value("stopped")).empty());
  EXPECT_FALSE(graph_->TwinsWithProperty("operatingMode", J(R"({"a": 1})")).has_value());
  EXPECT_FALSE(graph_->TwinsWithProperty("cycleCount", json::value(0)).has_value());

  // Later writes keep the index right.
  ASSERT_TRUE(graph_
                  ->PatchTwinSync("press-01", J(R"([{"op": "replace", "path": "/operatingMode",
                                                     "value": "running"}])"))
                  .ok());
  ASSERT_TRUE(graph_
                  ->PatchTwinSync("press-03",
                                  J(R"([{"op": "remove", "path": "/operatingMode"}])"))
                  .ok());
  ASSERT_TRUE(graph_
                  ->PatchTwinSync("press-07", J(R"([{"op": "add", "path": "/operatingMode",
                                                     "value": "idle"}])"))
                  .ok());
  ASSERT_TRUE(graph_->DeleteTwinSync("press-05").ok());
  json::value b8 = FullMachine("press-08");
  b8.as_object()["operatingMode"] = "running";
  ASSERT_NE(Create("press-08", b8), nullptr);
  json::value b2 = FullMachine("press-02");
  b2.as_object()["operatingMode"] = "maintenance";
  ASSERT_TRUE(graph_->PutTwinSync("press-02", b2).ok());  // replace
  // A failed write changes nothing in the index either.
  EXPECT_FALSE(graph_
                   ->PatchTwinSync("press-06", J(R"([{"op": "replace", "path": "/operatingMode",
                                                      "value": "asleep"}])"))
                   .ok());

  EXPECT_EQ(ids(idle), (std::set<std::string>{"press-06", "press-07"}));
  EXPECT_EQ(ids(running), (std::set<std::string>{"press-01", "press-08"}));
  EXPECT_EQ(ids(json::value("maintenance")), (std::set<std::string>{"press-02", "press-04"}));

  // Extra notes do not rebuild or duplicate.
  graph_->NoteFilteredProperty("operatingMode");
  EXPECT_EQ(graph_->TwinsWithProperty("operatingMode", idle)->size(), 2u);
  EXPECT_EQ(graph_->stats().indexed_properties, 1u);
}

// The index must agree with JSON equality, the semantics of the scan it replaces.
TEST_F(TwinGraphTest, PropertyIndexNumbersCompareLikeJson) {
  for (int i = 0; i < 3; ++i) {
    graph_->NoteFilteredProperty("targetTemperature");
    graph_->NoteFilteredProperty("cycleCount");
  }
  auto make = [&](const std::string& id, const char* prop, json::value v) {
    json::value b = Minimal(kMachine);
    b.as_object()[prop] = std::move(v);
    ASSERT_NE(Create(id, b), nullptr);
  };
  make("m-int", "targetTemperature", json::value(std::int64_t{20}));
  make("m-dbl", "targetTemperature", json::value(20.0));
  make("m-zero", "targetTemperature", json::value(0.0));
  make("m-negzero", "targetTemperature", json::value(-0.0));
  make("m-big1", "cycleCount", json::value(std::int64_t{9007199254740993}));
  make("m-big2", "cycleCount", json::value(std::int64_t{9007199254740992}));

  auto ids = [&](const char* prop, const json::value& v) {
    auto r = graph_->TwinsWithProperty(prop, v);
    return r ? IdsOf(*r) : std::set<std::string>{"<no index>"};
  };
  EXPECT_EQ(ids("targetTemperature", json::value(20.0)),
            (std::set<std::string>{"m-int", "m-dbl"}));
  EXPECT_EQ(ids("targetTemperature", json::value(std::int64_t{20})),
            (std::set<std::string>{"m-int", "m-dbl"}));
  // 0 == -0 in JSON (and IEEE) equality.
  EXPECT_EQ(ids("targetTemperature", json::value(0.0)),
            (std::set<std::string>{"m-zero", "m-negzero"}));
  // An integral double beyond int64 equals the same unsigned integer.
  make("m-huge", "targetTemperature", J("10000000000000000000"));  // parsed as uint64
  EXPECT_EQ(ids("targetTemperature", json::value(1e19)), std::set<std::string>{"m-huge"});
  // Distinct 64-bit integers must not collide.
  EXPECT_EQ(ids("cycleCount", json::value(std::int64_t{9007199254740993})),
            std::set<std::string>{"m-big1"});
}

// ---------------------------------------------------------------------------------------------
// Change feed

TEST_F(TwinGraphTest, ChangeFeedDeliversEveryWriteInOrderPerTwin) {
  std::atomic<int> notified{0};
  auto sub = graph_->feed().Subscribe(1000, [&] { ++notified; });
  EXPECT_EQ(graph_->feed().subscribers(), 2u);  // the fixture's + this one

  ASSERT_NE(Create("press-01", FullMachine()), nullptr);
  ASSERT_NE(Create("press-02", FullMachine("SN-2")), nullptr);
  json::value p1 = J(R"([{"op": "replace", "path": "/cycleCount", "value": 1}])");
  json::value p2 = J(R"([{"op": "replace", "path": "/cycleCount", "value": 2}])");
  auto a = graph_->PatchTwinSync("press-01", p1);
  auto b = graph_->PatchTwinSync("press-01", p2);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_NE(Relate("press-01", "f", Rel("feeds", "press-02")), nullptr);
  ASSERT_TRUE(graph_->DeleteRelationshipSync("press-01", "f").ok());
  ASSERT_TRUE(graph_->DeleteTwinSync("press-01").ok());
  // Failed writes publish nothing.
  EXPECT_FALSE(graph_->PatchTwinSync("press-02", J(R"([{"op": "remove", "path": "/x"}])")).ok());

  std::vector<ChangeEventPtr> ev;
  EXPECT_TRUE(sub->Drain(&ev));
  EXPECT_FALSE(sub->overflowed());
  std::vector<ChangeKind> kinds;
  for (const auto& e : ev) kinds.push_back(e->kind);
  EXPECT_EQ(kinds, (std::vector<ChangeKind>{
                       ChangeKind::kTwinCreated, ChangeKind::kTwinCreated,
                       ChangeKind::kTwinPatched, ChangeKind::kTwinPatched,
                       ChangeKind::kRelationshipCreated, ChangeKind::kRelationshipDeleted,
                       ChangeKind::kTwinDeleted}));
  ASSERT_EQ(ev.size(), 7u);
  EXPECT_EQ(ev[2]->patch, p1);
  EXPECT_EQ(ev[2]->etag, (*a)->etag);
  EXPECT_EQ(ev[3]->patch, p2);
  EXPECT_EQ(ev[3]->etag, (*b)->etag);
  for (std::size_t i = 1; i < ev.size(); ++i) EXPECT_LT(ev[i - 1]->seq, ev[i]->seq);
  EXPECT_GE(notified.load(), 1);

  auto j = ev[2]->ToJson();
  EXPECT_EQ(j.at("type"), "twin.patched");
  EXPECT_EQ(j.at("twinId"), "press-01");
  EXPECT_EQ(j.at("patch"), p1);
  EXPECT_EQ(j.at("model"), kMachine);
  auto jr = ev[4]->ToJson();
  EXPECT_EQ(jr.at("type"), "relationship.created");
  EXPECT_EQ(jr.at("relationshipId"), "f");
  EXPECT_FALSE(ev[6]->ToJson().as_object().contains("etag"));

  // Nothing more until the next write; unsubscribed feeds get nothing.
  ev.clear();
  EXPECT_TRUE(sub->Drain(&ev));
  EXPECT_TRUE(ev.empty());
  graph_->feed().Unsubscribe(sub);
  EXPECT_EQ(graph_->feed().subscribers(), 1u);
  ASSERT_TRUE(graph_->PatchTwinSync("press-02", p1).ok());
  EXPECT_TRUE(sub->Drain(&ev));
  EXPECT_TRUE(ev.empty());
}

TEST_F(TwinGraphTest, SlowSubscriberOverflowsInsteadOfSkipping) {
  ASSERT_NE(Create("press-01", FullMachine()), nullptr);
  std::atomic<int> notified{0};
  auto slow = graph_->feed().Subscribe(3, [&] { ++notified; });
  auto fast = graph_->feed().Subscribe(100, nullptr);
  std::vector<std::uint64_t> seqs;
  for (int i = 1; i <= 10; ++i) {
    auto r = graph_->PatchTwinSync(
        "press-01",
        json::value(json::array{json::object{{"op", "replace"}, {"path", "/cycleCount"},
                                             {"value", i}}}));
    ASSERT_TRUE(r.ok());
    seqs.push_back((*r)->seq);
  }
  EXPECT_TRUE(slow->overflowed());
  std::vector<ChangeEventPtr> got;
  EXPECT_FALSE(slow->Drain(&got));  // reports the overflow...
  ASSERT_EQ(got.size(), 3u);        // ...after what was queued before it, in order
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i]->seq, seqs[i]);
    EXPECT_EQ(got[i]->patch.at(0).at("value"), static_cast<int>(i + 1));
  }
  EXPECT_EQ(notified.load(), 4);  // three events, then the overflow; nothing after
  got.clear();
  EXPECT_FALSE(slow->Drain(&got));  // stays overflowed, never skips ahead
  EXPECT_TRUE(got.empty());

  std::vector<ChangeEventPtr> all;
  EXPECT_TRUE(fast->Drain(&all));
  ASSERT_EQ(all.size(), 10u);
  for (std::size_t i = 0; i < 10; ++i) EXPECT_EQ(all[i]->seq, seqs[i]);

  // Resubscribing starts clean.
  graph_->feed().Unsubscribe(slow);
  auto again = graph_->feed().Subscribe(3, nullptr);
  ASSERT_TRUE(graph_->PatchTwinSync("press-01", J("[]")).ok());
  got.clear();
  EXPECT_TRUE(again->Drain(&got));
  EXPECT_EQ(got.size(), 1u);
}

TEST(ChangeFeedTest, DirectPublishOverflow) {
  ChangeFeed feed;
  int notified = 0;
  auto sub = feed.Subscribe(3, [&] { ++notified; });
  for (int i = 1; i <= 10; ++i) {
    auto e = std::make_shared<ChangeEvent>();
    e->kind = ChangeKind::kTwinPatched;
    e->seq = static_cast<std::uint64_t>(i);
    e->twin_id = "press-01";
    feed.Publish(e);
  }
  std::vector<ChangeEventPtr> out;
  EXPECT_FALSE(sub->Drain(&out));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0]->seq, 1u);
  EXPECT_EQ(out[2]->seq, 3u);
  EXPECT_EQ(notified, 4);
  EXPECT_STREQ(ChangeKindName(ChangeKind::kRelationshipPatched), "relationship.patched");
  EXPECT_STREQ(ChangeKindName(ChangeKind::kTwinCreated), "twin.created");
}

// ---------------------------------------------------------------------------------------------
// Durability failures

TEST(TwinGraphStoreFailureTest, StoreIoFailsTheWriteAndChangesNothing) {
  model::ModelRepository models;
  LoadModels(models);
  FailingLog log;
  TwinGraph g(models, &log);
  auto sub = g.feed().Subscribe(1000, nullptr);
  ASSERT_TRUE(g.PutTwinSync("press-01", FullMachine()).ok());
  ASSERT_TRUE(g.PutTwinSync("press-02", FullMachine("SN-2")).ok());
  ASSERT_TRUE(g.PutRelationshipSync("press-01", "f", Rel("feeds", "press-02")).ok());
  TwinPtr p1 = g.FindTwin("press-01");
  RelationshipPtr rel = g.FindRelationship("press-01", "f");
  std::vector<ChangeEventPtr> ev;
  sub->Drain(&ev);
  ev.clear();
  const auto log_before = log.Snapshot();
  const auto stats_before = g.stats();
  std::set<std::string> seen_etags = {p1->etag, rel->etag, g.FindTwin("press-02")->etag};

  log.fail = true;
  auto expect_io = [](const Status& s) { EXPECT_EQ(s.code(), "STORE_IO") << s.ToString(); };
  auto c = g.PutTwinSync("press-03", FullMachine("SN-3"));
  ASSERT_FALSE(c.ok());
  expect_io(c.status());
  auto rp = g.PutTwinSync("press-01", FullMachine("SN-1b"));
  ASSERT_FALSE(rp.ok());
  expect_io(rp.status());
  auto pt = g.PatchTwinSync("press-01", J(R"([{"op": "replace", "path": "/cycleCount",
                                                "value": 9}])"));
  ASSERT_FALSE(pt.ok());
  expect_io(pt.status());
  auto pr = g.PutRelationshipSync("press-02", "f", Rel("feeds", "press-01"));
  ASSERT_FALSE(pr.ok());
  expect_io(pr.status());
  auto prp = g.PatchRelationshipSync("press-01", "f",
                                     J(R"([{"op": "add", "path": "/conveyor", "value": "C"}])"));
  ASSERT_FALSE(prp.ok());
  expect_io(prp.status());
  expect_io(g.DeleteRelationshipSync("press-01", "f"));
  auto cc = g.PutTwinSync("cnc-01", Minimal(kCnc));
  ASSERT_FALSE(cc.ok());
  expect_io(cc.status());

  EXPECT_EQ(g.FindTwin("press-03"), nullptr);
  EXPECT_EQ(g.FindTwin("cnc-01"), nullptr);
  EXPECT_EQ(g.FindTwin("press-01"), p1);
  EXPECT_EQ(g.FindRelationship("press-01", "f"), rel);
  EXPECT_EQ(g.FindRelationship("press-02", "f"), nullptr);
  EXPECT_EQ(RelIdsOf(g.Incoming("press-02")), std::set<std::string>{"press-01/f"});
  EXPECT_TRUE(g.Incoming("press-01").empty());
  std::vector<std::string> cnc = {kCnc};
  EXPECT_TRUE(g.TwinsOfModels(cnc).empty());
  EXPECT_EQ(log.Snapshot(), log_before);
  EXPECT_TRUE(sub->Drain(&ev));
  EXPECT_TRUE(ev.empty());
  auto st = g.stats();
  EXPECT_EQ(st.writes, stats_before.writes);
  EXPECT_EQ(st.failed_writes, stats_before.failed_writes + 7);
  EXPECT_EQ(st.twins, 2u);
  EXPECT_EQ(st.relationships, 1u);

  // Once the log works again, so do writes; their etags are new.
  log.fail = false;
  auto ok = g.PatchTwinSync("press-01", J(R"([{"op": "replace", "path": "/cycleCount",
                                                "value": 9}])"));
  ASSERT_TRUE(ok.ok()) << StatusText(ok.status());
  EXPECT_FALSE(seen_etags.contains((*ok)->etag));
  EXPECT_GT((*ok)->seq, p1->seq);
  Preconditions pre;
  pre.if_match = (*ok)->etag;
  EXPECT_TRUE(g.PatchTwinSync("press-01", J("[]"), pre).ok());
}

// ---------------------------------------------------------------------------------------------
// Recovery (Load)

TEST(TwinGraphLoadTest, LoadRestoresTwinsRelationshipsAndIndexes) {
  model::ModelRepository models;
  LoadModels(models);
  MemLog log;
  std::set<std::string> old_etags;
  std::map<std::string, json::object> twin_docs;
  std::uint64_t max_seq = 0;
  {
    TwinGraph g(models, &log);
    auto note = [&](const auto& r) {
      ASSERT_TRUE(r.ok()) << StatusText(r.status());
      old_etags.insert((*r)->etag);
      max_seq = std::max(max_seq, (*r)->seq);
    };
    note(g.PutTwinSync("press-01", FullMachine()));
    note(g.PutTwinSync("press-02", FullMachine("SN-2")));
    note(g.PutTwinSync("hall-a", Minimal(kArea)));
    note(g.PutTwinSync("cnc-01", Minimal(kCnc)));
    note(g.PutRelationshipSync("press-01", "f", Rel("feeds", "press-02")));
    note(g.PutRelationshipSync("press-01", "in", Rel("locatedIn", "hall-a")));
    note(g.PutRelationshipSync("cnc-01", "f", Rel("feeds", "press-02")));
    note(g.PatchTwinSync("press-02", J(R"([{"op": "replace", "path": "/cycleCount",
                                           "value": 77}])")));
    // The newest writes go to a twin and relationship that are then deleted.
    note(g.PutTwinSync("scrap-1", FullMachine("SN-scrap")));
    note(g.PutRelationshipSync("scrap-1", "f", Rel("feeds", "press-01")));
    note(g.PatchTwinSync("scrap-1", J(R"([{"op": "replace", "path": "/cycleCount",
                                          "value": 1}])")));
    ASSERT_TRUE(g.DeleteRelationshipSync("scrap-1", "f").ok());
    ASSERT_TRUE(g.DeleteTwinSync("scrap-1").ok());
    g.ForEachTwin([&](const TwinPtr& t) {
      twin_docs[t->id] = t->doc;
      return true;
    });
  }
  TwinGraph g(models, &log);
  ASSERT_TRUE(g.Load().ok());
  EXPECT_EQ(g.TwinCount(), 4u);
  for (const auto& [id, doc] : twin_docs) {
    TwinPtr t = g.FindTwin(id);
    ASSERT_NE(t, nullptr) << id;
    EXPECT_EQ(t->doc, doc);
    EXPECT_EQ(t->etag, doc.at("$etag").as_string());
    EXPECT_EQ(t->seq, SeqOfEtag(t->etag));
  }
  EXPECT_EQ(g.FindTwin("press-01")->model, kMachine);
  EXPECT_EQ(g.FindTwin("scrap-1"), nullptr);
  std::vector<std::string> machine = {kMachine};
  EXPECT_EQ(IdsOf(g.TwinsOfModels(machine)), (std::set<std::string>{"press-01", "press-02"}));
  EXPECT_TRUE(g.ModelInUse(kCnc));
  EXPECT_EQ(g.stats().relationships, 3u);
  RelationshipPtr f = g.FindRelationship("press-01", "f");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->target, "press-02");
  EXPECT_EQ(f->name, "feeds");
  EXPECT_EQ(f->seq, SeqOfEtag(f->etag));
  EXPECT_EQ(RelIdsOf(g.Incoming("press-02")),
            (std::set<std::string>{"press-01/f", "cnc-01/f"}));
  EXPECT_EQ(RelIdsOf(g.Incoming("hall-a")), std::set<std::string>{"press-01/in"});
  EXPECT_TRUE(g.Incoming("press-01").empty());
  EXPECT_EQ(g.DeleteTwinSync("press-02").code(), "TWIN_HAS_RELATIONSHIPS");
  // maxMultiplicity counts restored relationships.
  ASSERT_TRUE(g.PutTwinSync("hall-b", Minimal(kArea)).ok());
  EXPECT_EQ(g.PutRelationshipSync("press-01", "in2", Rel("locatedIn", "hall-b")).status().code(),
            "RELATIONSHIP_LIMIT");

  // New writes never reuse an etag issued before the restart.
  for (int i = 0; i < 6; ++i) {
    auto r = g.PutTwinSync("scrap-1", FullMachine("SN-scrap"));
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(old_etags.contains((*r)->etag)) << (*r)->etag << " was issued before";
    EXPECT_GT((*r)->seq, max_seq);
  }
}

TEST(TwinGraphLoadTest, CorruptRecordsAreReported) {
  model::ModelRepository models;
  LoadModels(models);
  {
    MemLog log;
    log.Put(TwinKey("press-01"), "{not json");
    TwinGraph g(models, &log);
    EXPECT_EQ(g.Load().code(), "STORE_CORRUPT");
  }
  {
    MemLog log;
    log.Put(TwinKey("press-01"), R"({"$dtId": "press-01", "$metadata": {}})");
    TwinGraph g(models, &log);
    EXPECT_EQ(g.Load().code(), "STORE_CORRUPT");
  }
  {
    MemLog log;
    log.Put(RelationshipKey("press-01", "f"), "[");
    TwinGraph g(models, &log);
    EXPECT_EQ(g.Load().code(), "STORE_CORRUPT");
  }
  TwinGraph no_log(models, nullptr);
  EXPECT_TRUE(no_log.Load().ok());
}

// The model repository's delete guard: a model in use by twins cannot be deleted.
TEST_F(TwinGraphTest, ModelUsedByTwinsCannotBeDeleted) {
  ASSERT_NE(Create("hall-a", Minimal(kCleanRoom)), nullptr);
  Status s = models_.Delete(kCleanRoom);
  EXPECT_EQ(s.code(), "MODEL_IN_USE") << s.ToString();
  EXPECT_TRUE(models_.Get(kCleanRoom).has_value());
  ASSERT_TRUE(graph_->DeleteTwinSync("hall-a").ok());
  EXPECT_TRUE(models_.Delete(kCleanRoom).ok());
}

// ---------------------------------------------------------------------------------------------
// Concurrency

TEST(TwinGraphConcurrencyTest, ParallelAsyncPatchesStayConsistent) {
  model::ModelRepository models;
  LoadModels(models);
  MemLog log;
  GraphOptions opts;
  opts.shards = 4;
  TwinGraph g(models, &log, opts);
  constexpr int kTwins = 100, kThreads = 4, kPerThread = 2000;
  auto id_of = [](int i) { return fmt::format("press-{:03}", i); };
  for (int i = 0; i < kTwins; ++i) {
    json::value b = Minimal(kMachine);
    b.as_object()["cycleCount"] = -1;
    ASSERT_TRUE(g.PutTwinSync(id_of(i), b).ok());
  }
  const auto base = g.stats();
  ASSERT_EQ(base.writes, static_cast<std::uint64_t>(kTwins));

  struct Ack {
    int thread;
    int index;
    std::uint64_t seq;
    std::string etag;
    std::int64_t value;
    bool doc_ok;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::vector<Ack>> acks(kTwins);
  int completed = 0, failed = 0;
  std::vector<std::string> failures;

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int j = 0; j < kPerThread; ++j) {
        int twin = (j * 7 + t * 31) % kTwins;
        std::int64_t value = std::int64_t{t} * 1'000'000 + j;
        json::value patch = json::array{
            json::object{{"op", "replace"}, {"path", "/cycleCount"}, {"value", value}}};
        g.PatchTwin(id_of(twin), std::move(patch), {},
                    [&, t, j, twin, value](core::Result<TwinPtr> r) {
                      std::lock_guard lock(mu);
                      if (r.ok()) {
                        const json::value* v = (*r)->doc.if_contains("cycleCount");
                        bool doc_ok = v && v->is_int64() && v->get_int64() == value &&
                                      (*r)->doc.at("$etag").as_string() == (*r)->etag;
                        acks[twin].push_back({t, j, (*r)->seq, (*r)->etag, value, doc_ok});
                      } else {
                        ++failed;
                        if (failures.size() < 5) failures.push_back(r.status().ToString());
                      }
                      ++completed;
                      cv.notify_all();
                    });
      }
    });
  }
  for (auto& th : threads) th.join();
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return completed == kThreads * kPerThread; });
  }
  EXPECT_EQ(failed, 0) << (failures.empty() ? "" : failures[0]);

  std::size_t acknowledged = 0;
  std::set<std::string> all_etags;
  for (int i = 0; i < kTwins; ++i) {
    SCOPED_TRACE(id_of(i));
    const auto& a = acks[i];
    acknowledged += a.size();
    ASSERT_FALSE(a.empty());
    const Ack* last = &a[0];
    std::map<int, int> last_index_per_thread;
    std::map<int, std::uint64_t> last_seq_per_thread;
    for (const auto& x : a) {
      EXPECT_TRUE(x.doc_ok);
      all_etags.insert(x.etag);
      EXPECT_EQ(SeqOfEtag(x.etag), x.seq);
      if (x.seq > last->seq) last = &x;
      // One thread's writes to one twin apply in the order they were submitted.
      if (last_seq_per_thread.contains(x.thread)) {
        if (x.index > last_index_per_thread[x.thread]) {
          EXPECT_GT(x.seq, last_seq_per_thread[x.thread]);
        }
      }
      if (!last_index_per_thread.contains(x.thread) ||
          x.index > last_index_per_thread[x.thread]) {
        last_index_per_thread[x.thread] = x.index;
        last_seq_per_thread[x.thread] = x.seq;
      }
    }
    TwinPtr t = g.FindTwin(id_of(i));
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->etag, last->etag);
    EXPECT_EQ(t->seq, last->seq);
    EXPECT_EQ(t->doc.at("cycleCount"), last->value);
    EXPECT_EQ(t->doc.at("$etag").as_string(), t->etag);
    auto stored = log.Get(TwinKey(id_of(i)));
    ASSERT_TRUE(stored.has_value());
    EXPECT_EQ(json::parse(*stored), json::value(t->doc));
  }
  EXPECT_EQ(acknowledged, static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(all_etags.size(), acknowledged);  // every acknowledged write has its own etag
  auto st = g.stats();
  EXPECT_EQ(st.writes - base.writes, acknowledged);
  EXPECT_EQ(st.failed_writes, 0u);
  EXPECT_LE(st.commits, st.writes);
  EXPECT_EQ(st.twins, static_cast<std::size_t>(kTwins));
}

// Readers never see a half-applied version while writers run.
TEST(TwinGraphConcurrencyTest, ReadersSeeWholeVersions) {
  model::ModelRepository models;
  LoadModels(models);
  TwinGraph g(models, nullptr);
  json::value b = FullMachine();
  b.as_object()["assetTag"] = "A-0";
  ASSERT_TRUE(g.PutTwinSync("press-01", b).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    while (!stop.load()) {
      TwinPtr t = g.FindTwin("press-01");
      const auto& d = t->doc;
      // Each write sets cycleCount and assetTag to matching values.
      if (d.contains("assetTag") &&
          d.at("assetTag").as_string() != fmt::format("A-{}", d.at("cycleCount").as_int64())) {
        ++bad;
      }
      if (d.at("$etag").as_string() != t->etag) ++bad;
    }
  });
  for (int i = 0; i < 300; ++i) {
    json::value patch = json::array{
        json::object{{"op", "replace"}, {"path", "/cycleCount"}, {"value", i}},
        json::object{{"op", "replace"}, {"path", "/assetTag"}, {"value", fmt::format("A-{}", i)}}};
    ASSERT_TRUE(g.PatchTwinSync("press-01", patch).ok());
  }
  stop = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0);
}

// The sync wrappers report exactly what the async calls deliver.
TEST(TwinGraphAsyncTest, AsyncCallbacksAndSyncWrappersAgree) {
  model::ModelRepository models;
  LoadModels(models);
  TwinGraph g(models, nullptr);
  std::promise<core::Result<TwinPtr>> created;
  g.PutTwin("press-01", FullMachine(), {},
            [&](core::Result<TwinPtr> r) { created.set_value(std::move(r)); });
  auto c = created.get_future().get();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(g.FindTwin("press-01"), *c);  // visible once acknowledged

  std::promise<core::Result<TwinPtr>> bad;
  g.PatchTwin("", J("[]"), {}, [&](core::Result<TwinPtr> r) { bad.set_value(std::move(r)); });
  auto b = bad.get_future().get();
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), "INVALID_ID");

  std::promise<Status> deleted;
  g.DeleteTwin("press-02", {}, [&](Status s) { deleted.set_value(std::move(s)); });
  EXPECT_EQ(deleted.get_future().get().code(), "TWIN_NOT_FOUND");
  EXPECT_EQ(g.DeleteTwinSync("press-02").code(), "TWIN_NOT_FOUND");

  std::promise<core::Result<TwinPtr>> comp;
  g.PatchComponent("press-01", "drive",
                   J(R"([{"op": "replace", "path": "/targetSpeedRpm", "value": 1.0}])"), {},
                   [&](core::Result<TwinPtr> r) { comp.set_value(std::move(r)); });
  ASSERT_TRUE(comp.get_future().get().ok());
  ASSERT_TRUE(g.PutTwinSync("press-02", FullMachine("SN-2")).ok());
  std::promise<core::Result<RelationshipPtr>> rel;
  g.PutRelationship("press-01", "f", Rel("feeds", "press-02"), {},
                    [&](core::Result<RelationshipPtr> r) { rel.set_value(std::move(r)); });
  auto rr = rel.get_future().get();
  ASSERT_TRUE(rr.ok());
  std::promise<core::Result<RelationshipPtr>> relp;
  g.PatchRelationship("press-01", "f", J(R"([{"op": "add", "path": "/conveyor", "value": "X"}])"),
                      {}, [&](core::Result<RelationshipPtr> r) { relp.set_value(std::move(r)); });
  ASSERT_TRUE(relp.get_future().get().ok());
  std::promise<Status> reld;
  g.DeleteRelationship("press-01", "f", {}, [&](Status s) { reld.set_value(std::move(s)); });
  EXPECT_TRUE(reld.get_future().get().ok());
  EXPECT_EQ(g.stats().writes, 6u);
}

}  // namespace
}  // namespace doppel::twin
