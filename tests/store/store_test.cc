// Tests of the RocksDB store (store/store.h): the key/value surface, the TwinLog and ModelStore
// seams, recovery of models, twins and relationships by a new process, locking and sync
// policies. Every test works in its own fresh directory under the system temp dir.
#include "store/store.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "model/model.h"
#include "twin/twin_document.h"
#include "twin/twin_graph.h"

namespace doppel::store {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using core::Status;

constexpr char kVessel[] = "dtmi:com:contoso:plant:Vessel;1";
constexpr char kBurner[] = "dtmi:com:contoso:plant:Burner;1";
constexpr char kBoiler[] = "dtmi:com:contoso:plant:Boiler;1";
constexpr char kChiller[] = "dtmi:com:contoso:plant:Chiller;1";
constexpr char kTank[] = "dtmi:com:contoso:plant:Tank;1";

// Boiler sorts before both of its dependencies (Burner, Vessel): restoring in key order fails.
constexpr char kVesselDtdl[] = R"({
  "@context": "dtmi:dtdl:context;3",
  "@id": "dtmi:com:contoso:plant:Vessel;1",
  "@type": "Interface",
  "displayName": "Pressure vessel",
  "contents": [
    {"@type": "Property", "name": "capacityLiters", "schema": "double"},
    {"@type": "Property", "name": "pressureBar", "schema": "double", "writable": true}
  ]
})";
constexpr char kBurnerDtdl[] = R"({
  "@context": "dtmi:dtdl:context;3",
  "@id": "dtmi:com:contoso:plant:Burner;1",
  "@type": "Interface",
  "contents": [
    {"@type": "Property", "name": "fuelType", "schema": "string"},
    {"@type": "Property", "name": "flameDetected", "schema": "boolean"}
  ]
})";
constexpr char kBoilerDtdl[] = R"({
  "@context": "dtmi:dtdl:context;3",
  "@id": "dtmi:com:contoso:plant:Boiler;1",
  "@type": "Interface",
  "extends": "dtmi:com:contoso:plant:Vessel;1",
  "contents": [
    {"@type": "Property", "name": "steamOutputKgH", "schema": "double", "writable": true},
    {"@type": "Component", "name": "burner", "schema": "dtmi:com:contoso:plant:Burner;1"},
    {"@type": "Relationship", "name": "supplies", "target": "dtmi:com:contoso:plant:Vessel;1",
     "maxMultiplicity": 2,
     "properties": [{"@type": "Property", "name": "pipeDiameterMm", "schema": "double"}]}
  ]
})";
constexpr char kChillerDtdl[] = R"({
  "@context": "dtmi:dtdl:context;3",
  "@id": "dtmi:com:contoso:plant:Chiller;1",
  "@type": "Interface",
  "contents": [{"@type": "Property", "name": "coolingKw", "schema": "double"}]
})";
constexpr char kTankDtdl[] = R"({
  "@context": "dtmi:dtdl:context;3",
  "@id": "dtmi:com:contoso:plant:Tank;1",
  "@type": "Interface",
  "extends": "dtmi:com:contoso:plant:Vessel;1",
  "contents": [{"@type": "Property", "name": "levelPercent", "schema": "double"}]
})";

json::value J(std::string_view s) { return json::parse(s); }

json::value Minimal(std::string_view model) {
  return json::object{{"$metadata", json::object{{"$model", model}}}};
}

std::string StatusText(const Status& s) {
  std::string out = s.ToString();
  for (const auto& d : s.details()) out += "\n  " + d.ToString();
  return out;
}

std::map<std::string, std::string> ScanAll(const Store& s, std::string_view prefix,
                                           std::vector<std::string>* order = nullptr) {
  std::map<std::string, std::string> out;
  Status st = s.Scan(prefix, [&](std::string_view k, std::string_view v) {
    out.emplace(std::string(k), std::string(v));
    if (order) order->emplace_back(k);
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return out;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    std::random_device rd;
    dir_ = fs::temp_directory_path() /
           fmt::format("doppel-store-test-{}-{}-{:08x}", ::getpid(), counter++, rd());
    fs::remove_all(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    EXPECT_FALSE(fs::exists(dir_));
  }
  std::unique_ptr<Store> Open(SyncPolicy sync = SyncPolicy::kAlways,
                              std::chrono::milliseconds interval = std::chrono::milliseconds(100)) {
    StoreOptions o;
    o.dir = dir_;
    o.sync = sync;
    o.sync_interval = interval;
    auto r = Store::Open(o);
    if (!r.ok()) {
      ADD_FAILURE() << r.status().ToString();
      return nullptr;
    }
    return std::move(*r);
  }
  fs::path dir_;
};

// ---------------------------------------------------------------------------------------------

TEST(SyncPolicyTest, Parse) {
  EXPECT_EQ(ParseSyncPolicy("always"), SyncPolicy::kAlways);
  EXPECT_EQ(ParseSyncPolicy("interval"), SyncPolicy::kInterval);
  EXPECT_EQ(ParseSyncPolicy("never"), SyncPolicy::kNever);
  EXPECT_FALSE(ParseSyncPolicy("").has_value());
  EXPECT_FALSE(ParseSyncPolicy("Always").has_value());
  EXPECT_FALSE(ParseSyncPolicy("sometimes").has_value());
  EXPECT_FALSE(ParseSyncPolicy(" never").has_value());
  EXPECT_EQ(StoreOptions().sync, SyncPolicy::kAlways);  // the documented default
}

TEST_F(StoreTest, CommitScanGetPutDelete) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(fs::is_directory(dir_));

  twin::LogBatch b;
  b.ops.emplace_back(twin::TwinKey("press-02"), R"({"v":2})");
  b.ops.emplace_back(twin::TwinKey("press-01"), R"({"v":1})");
  b.ops.emplace_back(twin::TwinKey("scrap"), R"({"v":0})");
  b.ops.emplace_back(twin::RelationshipKey("press-01", "feeds"), R"({"r":1})");
  b.ops.emplace_back(twin::TwinKey("scrap"), std::nullopt);     // in order: put, then delete
  b.ops.emplace_back(twin::TwinKey("press-03"), std::nullopt);  // deleting a missing key is fine
  ASSERT_TRUE(s->Commit(b).ok());

  std::vector<std::string> order;
  auto twins = ScanAll(*s, "t/", &order);
  EXPECT_EQ(twins, (std::map<std::string, std::string>{{"t/press-01", R"({"v":1})"},
                                                       {"t/press-02", R"({"v":2})"}}));
  EXPECT_EQ(order, (std::vector<std::string>{"t/press-01", "t/press-02"}));  // key order
  auto rels = ScanAll(*s, "r/");
  ASSERT_EQ(rels.size(), 1u);
  EXPECT_EQ(rels.begin()->first, std::string("r/press-01\0feeds", 16));  // NUL kept
  EXPECT_TRUE(ScanAll(*s, "k/").empty());
  EXPECT_EQ(ScanAll(*s, "").size(), 3u);
  EXPECT_EQ(ScanAll(*s, "t/press-0").size(), 2u);
  EXPECT_EQ(ScanAll(*s, "t/press-01").size(), 1u);

  // Delete, then put the same key in one batch: the put wins.
  twin::LogBatch b2;
  b2.ops.emplace_back(twin::TwinKey("press-01"), std::nullopt);
  b2.ops.emplace_back(twin::TwinKey("press-01"), R"({"v":11})");
  b2.ops.emplace_back(twin::TwinKey("press-02"), std::nullopt);
  ASSERT_TRUE(s->Commit(b2).ok());
  EXPECT_EQ(ScanAll(*s, "t/"), (std::map<std::string, std::string>{{"t/press-01", R"({"v":11})"}}));
  ASSERT_TRUE(s->Commit(twin::LogBatch{}).ok());  // empty batch

  // Single keys.
  EXPECT_FALSE(s->Get("k/ops-team").has_value());
  ASSERT_TRUE(s->Put("k/ops-team", R"({"scope":"read"})").ok());
  EXPECT_EQ(s->Get("k/ops-team"), R"({"scope":"read"})");
  ASSERT_TRUE(s->Put("k/ops-team", R"({"scope":"write"})").ok());
  EXPECT_EQ(s->Get("k/ops-team"), R"({"scope":"write"})");
  const std::string binary("a\0b\xff", 4);
  ASSERT_TRUE(s->Put(std::string("k/bin\0ary", 9), binary).ok());
  EXPECT_EQ(s->Get(std::string("k/bin\0ary", 9)), binary);
  EXPECT_FALSE(s->Get("k/bin").has_value());
  EXPECT_EQ(ScanAll(*s, "k/").size(), 2u);
  ASSERT_TRUE(s->Delete("k/ops-team").ok());
  EXPECT_FALSE(s->Get("k/ops-team").has_value());
  EXPECT_TRUE(s->Delete("k/never-there").ok());
  EXPECT_EQ(s->Get(twin::TwinKey("press-01")), R"({"v":11})");  // Commit and Get agree
  EXPECT_GT(s->ApproximateBytes(), 0u);

  // Everything survives a reopen.
  s.reset();
  s = Open();
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(ScanAll(*s, "t/"), (std::map<std::string, std::string>{{"t/press-01", R"({"v":11})"}}));
  EXPECT_EQ(s->Get(std::string("k/bin\0ary", 9)), binary);
  EXPECT_FALSE(s->Get("k/ops-team").has_value());
}

TEST_F(StoreTest, SecondOpenOfALockedDirectoryFails) {
  auto first = Open();
  ASSERT_NE(first, nullptr);
  StoreOptions o;
  o.dir = dir_;
  auto second = Store::Open(o);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), "STORE_IO");
  EXPECT_FALSE(second.status().message().empty());
  // The first is unaffected; once it is closed the directory opens again.
  ASSERT_TRUE(first->Put("k/x", "1").ok());
  first.reset();
  auto third = Store::Open(o);
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_EQ((*third)->Get("k/x"), "1");
}

TEST_F(StoreTest, OpenFailsWhenTheDirectoryCannotBeCreated) {
  fs::create_directories(dir_);
  const fs::path file = dir_ / "not-a-dir";
  std::ofstream(file) << "x";
  StoreOptions o;
  o.dir = file / "data";
  auto r = Store::Open(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "STORE_IO");
}

TEST_F(StoreTest, EverySyncPolicyPersists) {
  const std::vector<std::pair<SyncPolicy, const char*>> policies = {
      {SyncPolicy::kAlways, "always"},
      {SyncPolicy::kInterval, "interval"},
      {SyncPolicy::kNever, "never"}};
  const fs::path root = dir_;
  for (const auto& [policy, name] : policies) {
    SCOPED_TRACE(name);
    dir_ = root / name;
    {
      auto s = Open(policy, std::chrono::milliseconds(5));
      ASSERT_NE(s, nullptr);
      for (int i = 0; i < 20; ++i) {
        twin::LogBatch b;
        b.ops.emplace_back(twin::TwinKey(fmt::format("twin-{:02}", i)), fmt::format("{}", i));
        if (i > 0)
          b.ops.emplace_back(twin::TwinKey(fmt::format("twin-{:02}", i - 1)), std::nullopt);
        ASSERT_TRUE(s->Commit(b).ok());
      }
      ASSERT_TRUE(s->Put(std::string("k/") + name, name).ok());
    }
    auto s = Open();
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(ScanAll(*s, "t/"), (std::map<std::string, std::string>{{"t/twin-19", "19"}}));
    EXPECT_EQ(s->Get(std::string("k/") + name), name);
  }
  dir_ = root;
}

// ---------------------------------------------------------------------------------------------
// Recovery of models, twins and relationships

void AddModels(model::ModelRepository& repo, std::vector<model::SourceDocument> docs) {
  auto r = repo.Add(docs);
  for (const auto& d : r.diagnostics) ADD_FAILURE() << model::FormatDiagnostic(d);
  ASSERT_TRUE(r.ok());
}

TEST_F(StoreTest, ANewProcessRestoresModelsTwinsAndRelationships) {
  std::set<std::string> old_etags;
  std::uint64_t max_seq = 0;
  std::map<std::string, json::object> twin_docs;
  std::map<std::string, json::object> rel_docs;
  std::map<std::string, std::chrono::system_clock::time_point> upload_times;
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    model::ModelRepository repo(store.get());
    AddModels(repo, {{"Vessel.json", kVesselDtdl}, {"Burner.json", kBurnerDtdl}});
    AddModels(repo, {{"Boiler.json", kBoilerDtdl}});
    AddModels(repo, {{"Chiller.json", kChillerDtdl}, {"Tank.json", kTankDtdl}});
    ASSERT_EQ(repo.size(), 5u);
    // The models are in the store as documented.
    auto rec = store->Get(std::string("m/") + kBoiler);
    ASSERT_TRUE(rec.has_value());
    json::value r = json::parse(*rec);
    EXPECT_EQ(r.at("decommissioned"), false);
    EXPECT_EQ(r.at("dependencies"), J(R"(["dtmi:com:contoso:plant:Burner;1",
                                          "dtmi:com:contoso:plant:Vessel;1"])"));
    EXPECT_EQ(r.at("source"), J(kBoilerDtdl));
    EXPECT_TRUE(r.at("uploadTime").is_string());

    twin::TwinGraph g(repo, store.get());
    ASSERT_TRUE(g.Load().ok());  // empty store
    auto note = [&](const auto& res) {
      ASSERT_TRUE(res.ok()) << StatusText(res.status());
      old_etags.insert((*res)->etag);
      max_seq = std::max(max_seq, (*res)->seq);
    };
    json::value boiler = J(R"({"$metadata": {"$model": "dtmi:com:contoso:plant:Boiler;1",
                                             "pressureBar": {"desiredValue": 12.5}},
                               "capacityLiters": 4000.0, "pressureBar": 11.0,
                               "steamOutputKgH": 850.0,
                               "burner": {"$metadata": {}, "fuelType": "natural gas",
                                          "flameDetected": true}})");
    note(g.PutTwinSync("boiler-1", boiler));
    note(g.PutTwinSync("tank-1", Minimal(kTank)));
    note(g.PutTwinSync("tank-2", Minimal(kTank)));
    note(g.PutTwinSync("chiller-1", Minimal(kChiller)));
    note(g.PutRelationshipSync("boiler-1", "s1",
                               J(R"({"$relationshipName": "supplies", "$targetId": "tank-1",
                                     "pipeDiameterMm": 80.0})")));
    note(g.PutRelationshipSync("boiler-1", "s2", J(R"({"$relationshipName": "supplies",
                                     "$targetId": "tank-2"})")));
    note(g.PatchTwinSync("tank-1", J(R"([{"op": "add", "path": "/levelPercent",
                                          "value": 55.5}])")));
    // The newest writes are to twins and a relationship that are deleted again, so the
    // highest sequence numbers issued are in no surviving record.
    note(g.PutTwinSync("tank-3", Minimal(kTank)));
    note(g.PutTwinSync("boiler-2", Minimal(kBoiler)));
    note(g.PutRelationshipSync("boiler-2", "s3", J(R"({"$relationshipName": "supplies",
                                     "$targetId": "tank-3"})")));
    note(g.PatchTwinSync("tank-3", J(R"([{"op": "add", "path": "/levelPercent",
                                          "value": 10.0}])")));
    note(g.PatchTwinSync("boiler-2", J(R"([{"op": "add", "path": "/steamOutputKgH",
                                            "value": 10.0}])")));
    ASSERT_TRUE(g.DeleteRelationshipSync("boiler-2", "s3").ok());
    ASSERT_TRUE(g.DeleteTwinSync("tank-3").ok());
    ASSERT_TRUE(g.DeleteTwinSync("boiler-2").ok());

    ASSERT_TRUE(repo.Decommission(kChiller).ok());
    g.ForEachTwin([&](const twin::TwinPtr& t) {
      twin_docs[t->id] = t->doc;
      return true;
    });
    for (const auto& rel : g.Outgoing("boiler-1")) rel_docs[rel->id] = rel->doc;
    auto all = repo.List();
    ASSERT_TRUE(all.ok());
    for (const auto& m : *all) upload_times[m.id] = m.upload_time;
  }

  // A new process: a new Store, repository and graph on the same directory.
  auto store = Open();
  ASSERT_NE(store, nullptr);
  model::ModelRepository repo(store.get());
  Status rs = store->RestoreModels(repo);
  ASSERT_TRUE(rs.ok()) << rs.ToString();
  ASSERT_EQ(repo.size(), 5u);
  for (const char* id : {kVessel, kBurner, kBoiler, kChiller, kTank}) {
    SCOPED_TRACE(id);
    auto m = repo.Get(id);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->decommissioned, std::string_view(id) == kChiller);
    // Upload times survive at the store's precision (microseconds).
    auto diff = m->upload_time - upload_times[id];
    EXPECT_LT(std::chrono::abs(diff), std::chrono::microseconds(1));
  }
  EXPECT_EQ(repo.Get(kBoiler)->dependencies, (std::vector<std::string>{kBurner, kVessel}));
  EXPECT_EQ(repo.Get(kTank)->dependencies, std::vector<std::string>{kVessel});
  EXPECT_TRUE(repo.Get(kVessel)->dependencies.empty());
  auto boiler_model = repo.Resolve(kBoiler);
  ASSERT_TRUE(boiler_model.ok());
  EXPECT_TRUE((*boiler_model)->IsA(kVessel));
  EXPECT_NE((*boiler_model)->ComponentInterface("burner"), nullptr);
  // The dependency graph is enforced again.
  EXPECT_EQ(repo.Delete(kVessel).code(), "MODEL_IN_USE");

  twin::TwinGraph g(repo, store.get());
  Status ls = g.Load();
  ASSERT_TRUE(ls.ok()) << ls.ToString();
  EXPECT_EQ(g.TwinCount(), twin_docs.size());
  for (const auto& [id, doc] : twin_docs) {
    SCOPED_TRACE(id);
    twin::TwinPtr t = g.FindTwin(id);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->doc, doc);
    EXPECT_EQ(t->etag, doc.at("$etag").as_string());
  }
  EXPECT_EQ(g.FindTwin("tank-3"), nullptr);
  EXPECT_EQ(g.FindTwin("boiler-2"), nullptr);
  EXPECT_TRUE(g.Outgoing("boiler-2").empty());
  EXPECT_TRUE(g.Incoming("tank-3").empty());
  EXPECT_EQ(g.FindTwin("boiler-1")->model, kBoiler);
  auto boiler = g.FindTwin("boiler-1");
  EXPECT_EQ(boiler->doc.at("$metadata").at("pressureBar").at("desiredVersion"), 1);
  std::vector<std::string> tanks = {kTank};
  std::set<std::string> tank_ids;
  for (const auto& t : g.TwinsOfModels(tanks)) tank_ids.insert(t->id);
  EXPECT_EQ(tank_ids, (std::set<std::string>{"tank-1", "tank-2"}));
  EXPECT_TRUE(g.ModelInUse(kChiller));

  EXPECT_EQ(g.stats().relationships, 2u);
  for (const auto& [id, doc] : rel_docs) {
    SCOPED_TRACE(id);
    auto r = g.FindRelationship("boiler-1", id);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->doc, doc);
    EXPECT_EQ(r->source, "boiler-1");
    EXPECT_EQ(r->name, "supplies");
  }
  EXPECT_EQ(g.FindRelationship("boiler-2", "s3"), nullptr);
  ASSERT_EQ(g.Incoming("tank-1").size(), 1u);
  EXPECT_EQ(g.Incoming("tank-1")[0]->id, "s1");
  ASSERT_EQ(g.Incoming("tank-2").size(), 1u);
  EXPECT_EQ(g.Incoming("tank-2")[0]->id, "s2");
  EXPECT_EQ(g.Outgoing("boiler-1", "supplies").size(), 2u);
  EXPECT_EQ(g.DeleteTwinSync("tank-1").code(), "TWIN_HAS_RELATIONSHIPS");
  EXPECT_EQ(g.DeleteTwinSync("boiler-1").code(), "TWIN_HAS_RELATIONSHIPS");

  // Models: decommissioned stays decommissioned; validation works on restored models.
  auto chiller2 = g.PutTwinSync("chiller-2", Minimal(kChiller));
  ASSERT_FALSE(chiller2.ok());
  EXPECT_EQ(chiller2.status().code(), "MODEL_DECOMMISSIONED");
  auto bad = g.PatchTwinSync("boiler-1", J(R"([{"op": "replace", "path": "/burner/flameDetected",
                                                "value": "yes"}])"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), "INVALID_TWIN");

  // New writes continue above every sequence number issued before, so etags never repeat.
  std::vector<std::string> new_etags;
  auto fresh = [&](const auto& res) {
    ASSERT_TRUE(res.ok()) << StatusText(res.status());
    EXPECT_GT((*res)->seq, max_seq);
    EXPECT_FALSE(old_etags.contains((*res)->etag)) << (*res)->etag << " was issued before";
    new_etags.push_back((*res)->etag);
  };
  fresh(g.PutTwinSync("tank-3", Minimal(kTank)));
  fresh(g.PatchTwinSync("tank-2", J(R"([{"op": "add", "path": "/levelPercent", "value": 1}])")));
  fresh(g.PutRelationshipSync("boiler-1", "s2",
                              J(R"({"$relationshipName": "supplies", "$targetId": "tank-3"})")));
  for (int i = 0; i < 4; ++i) fresh(g.PutTwinSync("tank-4", Minimal(kTank)));
  // Relationship limits count restored relationships.
  EXPECT_EQ(g.PutRelationshipSync("boiler-1", "s9", J(R"({"$relationshipName": "supplies",
                                        "$targetId": "tank-4"})"))
                .status()
                .code(),
            "RELATIONSHIP_LIMIT");
  EXPECT_EQ(g.Incoming("tank-2").size(), 0u);
  EXPECT_EQ(g.Incoming("tank-3").size(), 1u);
}

TEST_F(StoreTest, DeletedModelsStayDeleted) {
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    model::ModelRepository repo(store.get());
    AddModels(repo, {{"Vessel.json", kVesselDtdl}, {"Tank.json", kTankDtdl}});
    AddModels(repo, {{"Chiller.json", kChillerDtdl}});
    ASSERT_TRUE(repo.Delete(kTank).ok());
    ASSERT_TRUE(repo.Delete(kChiller).ok());
    EXPECT_FALSE(store->Get(std::string("m/") + kTank).has_value());
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  model::ModelRepository repo(store.get());
  ASSERT_TRUE(store->RestoreModels(repo).ok());
  EXPECT_EQ(repo.size(), 1u);
  EXPECT_TRUE(repo.Get(kVessel).has_value());
  EXPECT_FALSE(repo.Get(kTank).has_value());
}

TEST_F(StoreTest, BrokenModelRecordsAreReported) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  {
    model::ModelRepository repo(store.get());
    AddModels(repo, {{"Vessel.json", kVesselDtdl}, {"Tank.json", kTankDtdl}});
  }
  {
    // A dependency is missing.
    ASSERT_TRUE(store->Delete(std::string("m/") + kVessel).ok());
    model::ModelRepository repo;
    EXPECT_EQ(store->RestoreModels(repo).code(), "STORE_CORRUPT");
  }
  {
    ASSERT_TRUE(store->Put(std::string("m/") + kVessel, "{oops").ok());
    model::ModelRepository repo;
    EXPECT_EQ(store->RestoreModels(repo).code(), "STORE_CORRUPT");
  }
  {
    ASSERT_TRUE(
        store->Put(std::string("m/") + kVessel, R"({"source": {"@type": "Interface"}})").ok());
    model::ModelRepository repo;
    EXPECT_EQ(store->RestoreModels(repo).code(), "STORE_CORRUPT");
  }
  // Decommissioning a model the store does not know fails instead of inventing a record.
  EXPECT_FALSE(store->SaveDecommissioned("dtmi:com:contoso:plant:Unknown;1").ok());
}

TEST_F(StoreTest, CorruptTwinRecordFailsLoad) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(twin::TwinKey("tank-1"), "not json").ok());
  model::ModelRepository repo(store.get());
  twin::TwinGraph g(repo, store.get());
  EXPECT_EQ(g.Load().code(), "STORE_CORRUPT");
}

// The history's write-ahead records live in <dir>/history-wal, not in the database: points
// appended and never checkpointed come back from there in a new process, and a checkpoint
// removes the files. Every sync policy.
TEST_F(StoreTest, HistoryRecordsAreReplayedFromTheLogFilesAndTrimmedByACheckpoint) {
  for (SyncPolicy sync : {SyncPolicy::kAlways, SyncPolicy::kInterval, SyncPolicy::kNever}) {
    SCOPED_TRACE(static_cast<int>(sync));
    fs::remove_all(dir_);
    tsdb::HistoryOptions ho;
    ho.background = false;  // nothing checkpoints behind the test's back
    const std::int64_t t0 = 1'700'000'000'000'000'000;
    {
      auto store = Open(sync);
      ASSERT_NE(store, nullptr);
      auto h = tsdb::HistoryStore::Open(*store, ho);
      ASSERT_TRUE(h.ok()) << h.status().ToString();
      for (int b = 0; b < 3; ++b) {
        std::vector<tsdb::Sample> batch;
        for (int i = 0; i < 100; ++i) {
          batch.push_back(
              {"pump-1", "temperature", t0 + (b * 100 + i) * 1'000'000'000LL, 20.0 + i * 0.25});
          batch.push_back({"pump-1", "status", t0 + (b * 100 + i) * 1'000'000'000LL,
                           std::string(i % 2 ? "on" : "off")});
        }
        ASSERT_TRUE((*h)->Append(batch).empty());
      }
      EXPECT_EQ(ScanAll(*store, "h/w/").size(), 0u);  // no records in the database
      EXPECT_FALSE(fs::is_empty(dir_ / "history-wal"));
    }
    auto store = Open(sync);
    ASSERT_NE(store, nullptr);
    auto h = tsdb::HistoryStore::Open(*store, ho);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    auto pts = (*h)->Read({"pump-1", "temperature"}, {});
    ASSERT_TRUE(pts.ok()) << pts.status().ToString();
    ASSERT_EQ(pts->size(), 300u);
    EXPECT_EQ(pts->back().t_ns, t0 + 299 * 1'000'000'000LL);
    EXPECT_EQ(std::get<double>(pts->back().value), 20.0 + 99 * 0.25);
    auto status = (*h)->Read({"pump-1", "status"}, {});
    ASSERT_TRUE(status.ok());
    EXPECT_EQ(status->size(), 300u);
    ASSERT_TRUE((*h)->Checkpoint().ok());
    EXPECT_TRUE(fs::is_empty(dir_ / "history-wal"));
    h->reset();
    auto again = tsdb::HistoryStore::Open(*store, ho);
    ASSERT_TRUE(again.ok());
    auto after = (*again)->Read({"pump-1", "temperature"}, {});
    ASSERT_TRUE(after.ok());
    EXPECT_EQ(after->size(), 300u);  // from the chunks now
  }
}

// A damaged history log stops the history store from opening, naming the file; a store opened
// with recover_history_log starts from the last intact record before the damage: the points of
// the calls before it are there, the rest is set aside in history-wal/damaged-<time>/.
TEST_F(StoreTest, ADamagedHistoryLogIsRecoveredToItsLastIntactRecordOnlyWhenAsked) {
  tsdb::HistoryOptions ho;
  ho.background = false;
  const std::int64_t t0 = 1'700'000'000'000'000'000;
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    auto h = tsdb::HistoryStore::Open(*store, ho);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    for (int b = 0; b < 4; ++b) {  // four calls: four records in one segment
      std::vector<tsdb::Sample> batch;
      for (int i = 0; i < 10; ++i) {
        batch.push_back({"pump-1", "temperature", t0 + (b * 10 + i) * 1'000'000'000LL, 1.0 * i});
      }
      ASSERT_TRUE((*h)->Append(batch).empty());
    }
  }
  std::vector<fs::path> segments;
  for (const auto& e : fs::directory_iterator(dir_ / "history-wal")) segments.push_back(e.path());
  ASSERT_EQ(segments.size(), 1u);
  {  // damage the third record: skip two records (each a 20-byte header and its payload)
    std::fstream f(segments[0], std::ios::in | std::ios::out | std::ios::binary);
    std::uint64_t at = 0;
    for (int r = 0; r < 2; ++r) {
      f.seekg(static_cast<std::streamoff>(at));
      unsigned char len[4];
      f.read(reinterpret_cast<char*>(len), 4);
      at += 20 + (len[0] | len[1] << 8 | len[2] << 16 | static_cast<std::uint32_t>(len[3]) << 24);
    }
    f.seekp(static_cast<std::streamoff>(at + 25));
    f.put('\x7f');
  }
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    EXPECT_FALSE(store->history_log_cut().has_value());
    auto h = tsdb::HistoryStore::Open(*store, ho);
    ASSERT_FALSE(h.ok());
    EXPECT_EQ(h.status().code(), "TSDB_CHUNK_CORRUPT");
    EXPECT_NE(h.status().message().find(segments[0].filename().string()), std::string::npos)
        << h.status().message();
  }
  StoreOptions o;
  o.dir = dir_;
  o.recover_history_log = true;
  auto store = Store::Open(o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE((*store)->history_log_cut().has_value());
  const tsdb::LogCut& cut = *(*store)->history_log_cut();
  EXPECT_EQ(cut.records_kept, 2u);
  EXPECT_EQ(cut.segments, 1u);
  EXPECT_TRUE(fs::exists(cut.aside / segments[0].filename()));
  auto h = tsdb::HistoryStore::Open(**store, ho);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  auto pts = (*h)->Read({"pump-1", "temperature"}, {});
  ASSERT_TRUE(pts.ok()) << pts.status().ToString();
  ASSERT_EQ(pts->size(), 20u);  // the first two calls
  EXPECT_EQ(pts->back().t_ns, t0 + 19 * 1'000'000'000LL);
  // Appends go on, and survive a reopen without recovery.
  std::vector<tsdb::Sample> more{{"pump-1", "temperature", t0 + 100 * 1'000'000'000LL, 7.0}};
  ASSERT_TRUE((*h)->Append(more).empty());
  h->reset();
  store->reset();
  auto plain = Open();
  ASSERT_NE(plain, nullptr);
  auto again = tsdb::HistoryStore::Open(*plain, ho);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  auto all = (*again)->Read({"pump-1", "temperature"}, {});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 21u);
}

// A store written by a version that kept write-ahead records as h/w/ keys: they are replayed,
// and the first checkpoint deletes them.
TEST_F(StoreTest, HistoryRecordsKeptAsKeysByAnOlderVersionAreReplayed) {
  tsdb::MemoryBackend old;  // its records are h/w/ keys, as the old store's were
  const std::int64_t t0 = 1'700'000'000'000'000'000;
  {
    tsdb::HistoryOptions ho;
    ho.background = false;
    auto h = tsdb::HistoryStore::Open(old, ho);
    ASSERT_TRUE(h.ok());
    std::vector<tsdb::Sample> batch;
    for (int i = 0; i < 50; ++i) {
      batch.push_back({"pump-2", "power", t0 + i * 1'000'000'000LL, std::int64_t{i}});
    }
    ASSERT_TRUE((*h)->Append(batch).empty());
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<tsdb::KeyOp> copy;
  ASSERT_TRUE(old.Scan("h/",
                       [&](std::string_view k, std::string_view v) {
                         copy.push_back({std::string(k), std::string(v)});
                       })
                  .ok());
  ASSERT_TRUE(store->Write(copy).ok());
  ASSERT_EQ(ScanAll(*store, "h/w/").size(), 1u);
  tsdb::HistoryOptions ho;
  ho.background = false;
  auto h = tsdb::HistoryStore::Open(*store, ho);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  auto pts = (*h)->Read({"pump-2", "power"}, {});
  ASSERT_TRUE(pts.ok()) << pts.status().ToString();
  EXPECT_EQ(pts->size(), 50u);
  // New appends go to the files, after the old records' sequence numbers.
  std::vector<tsdb::Sample> more{{"pump-2", "power", t0 + 50 * 1'000'000'000LL, std::int64_t{50}}};
  ASSERT_TRUE((*h)->Append(more).empty());
  ASSERT_TRUE((*h)->Checkpoint().ok());
  EXPECT_EQ(ScanAll(*store, "h/w/").size(), 0u);
  h->reset();
  auto again = tsdb::HistoryStore::Open(*store, ho);
  ASSERT_TRUE(again.ok());
  auto after = (*again)->Read({"pump-2", "power"}, {});
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->size(), 51u);
}

}  // namespace
}  // namespace doppel::store
