#include "model/model_repository.h"

#include <gtest/gtest.h>

#include <thread>

#include "model/value_validator.h"

namespace doppel::model {
namespace {

SourceDocument Doc(std::string name, std::string text) { return {std::move(name), std::move(text)}; }

const char* kBase = R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:t:Base;1",
  "@type": "Interface", "contents": [{"@type": "Property", "name": "serial", "schema": "string"}]})";
const char* kSensor = R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:t:Sensor;1",
  "@type": "Interface", "contents": [{"@type": "Telemetry", "name": "t", "schema": "double"}]})";
const char* kPump = R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:t:Pump;1",
  "@type": "Interface", "extends": "dtmi:t:Base;1", "contents": [
    {"@type": "Property", "name": "rpm", "schema": "integer", "writable": true},
    {"@type": "Component", "name": "inlet", "schema": "dtmi:t:Sensor;1"},
    {"@type": "Command", "name": "start", "request": {"name": "speed", "schema": "double"}}]})";

TEST(ModelRepository, AddsResolvesAndValidates) {
  ModelRepository repo;
  auto r = repo.Add(std::vector{Doc("pump", kPump), Doc("base", kBase), Doc("sensor", kSensor)});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.added, (std::vector<std::string>{"dtmi:t:Pump;1", "dtmi:t:Base;1", "dtmi:t:Sensor;1"}));
  auto pump = repo.Resolve("dtmi:t:Pump;1");
  ASSERT_TRUE(pump.ok());
  EXPECT_EQ((*pump)->contents().size(), 4u);
  EXPECT_EQ((*pump)->Find("serial")->defined_in, "dtmi:t:Base;1");
  EXPECT_TRUE(ValidateElementValue(**pump, "rpm", boost::json::value(1500)).empty());
  EXPECT_TRUE(ValidateElementValue(**pump, "inlet/t", boost::json::value(21.5)).empty());
  EXPECT_EQ(ValidateElementValue(**pump, "inlet/t", boost::json::value("hot"))[0].code(),
            "VALUE_TYPE_MISMATCH");
  EXPECT_EQ(ValidateElementValue(**pump, "start", boost::json::value(1))[0].code(),
            "VALUE_UNKNOWN_ELEMENT");
  EXPECT_TRUE(ValidateCommandRequest(**pump, "start", boost::json::value(3.0)).empty());
  EXPECT_FALSE(ValidateCommandRequest(**pump, "start", boost::json::value(nullptr)).empty());
}

TEST(ModelRepository, BatchIsAllOrNothing) {
  ModelRepository repo;
  const char* bad = R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:t:Bad;1",
    "@type": "Interface", "contents": [{"@type": "Property", "name": "x", "schema": "int"}]})";
  auto r = repo.Add(std::vector{Doc("base", kBase), Doc("bad", bad)});
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.added.empty());
  EXPECT_EQ(repo.size(), 0u);
  EXPECT_FALSE(repo.Get("dtmi:t:Base;1").has_value());
  ASSERT_EQ(r.diagnostics.size(), 1u);
  EXPECT_EQ(r.diagnostics[0].code, "INVALID_SCHEMA");
  EXPECT_EQ(r.diagnostics[0].document, "bad");
  EXPECT_EQ(r.diagnostics[0].pointer, "/contents/0/schema");
  EXPECT_EQ(r.diagnostics[0].dtmi, "dtmi:t:Bad;1");
}

TEST(ModelRepository, ResolvesAgainstExistingModelsAndRefusesDuplicates) {
  ModelRepository repo;
  ASSERT_TRUE(repo.Add(std::vector{Doc("base", kBase), Doc("sensor", kSensor)}).ok());
  ASSERT_TRUE(repo.Add(std::vector{Doc("pump", kPump)}).ok());
  auto again = repo.Add(std::vector{Doc("base", kBase)});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.diagnostics[0].code, "DUPLICATE_ID");
  EXPECT_EQ(repo.size(), 3u);
}

TEST(ModelRepository, CheckNeverChangesAnything) {
  ModelRepository repo;
  auto r = repo.Check(std::vector{Doc("base", kBase)});
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(repo.size(), 0u);
}

TEST(ModelRepository, ListWithDependencies) {
  ModelRepository repo;
  ASSERT_TRUE(repo.Add(std::vector{Doc("pump", kPump), Doc("base", kBase), Doc("sensor", kSensor)}).ok());
  auto all = repo.List();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
  std::vector<std::string> roots = {"dtmi:t:Pump;1"};
  auto deps = repo.List(roots);
  ASSERT_TRUE(deps.ok());
  ASSERT_EQ(deps->size(), 3u);
  EXPECT_EQ(deps->back().id, "dtmi:t:Pump;1");  // dependencies first
  EXPECT_EQ((*deps)[0].id, "dtmi:t:Base;1");
  std::vector<std::string> unknown = {"dtmi:t:Nope;1"};
  EXPECT_EQ(repo.List(unknown).status().code(), "MODEL_NOT_FOUND");
}

TEST(ModelRepository, DeleteIsRefusedWhileDependedOn) {
  ModelRepository repo;
  ASSERT_TRUE(repo.Add(std::vector{Doc("pump", kPump), Doc("base", kBase), Doc("sensor", kSensor)}).ok());
  EXPECT_EQ(repo.Delete("dtmi:t:Base;1").code(), "MODEL_IN_USE");
  EXPECT_EQ(repo.Delete("dtmi:t:Sensor;1").code(), "MODEL_IN_USE");
  EXPECT_EQ(repo.size(), 3u);
  EXPECT_TRUE(repo.Delete("dtmi:t:Pump;1").ok());
  EXPECT_TRUE(repo.Delete("dtmi:t:Base;1").ok());
  EXPECT_EQ(repo.Delete("dtmi:t:Base;1").code(), "MODEL_NOT_FOUND");
  EXPECT_EQ(repo.Resolve("dtmi:t:Base;1").status().code(), "MODEL_NOT_FOUND");
  // Once deleted, the id can be added again.
  EXPECT_TRUE(repo.Add(std::vector{Doc("base", kBase)}).ok());
}

TEST(ModelRepository, DeleteGuardCanRefuse) {
  ModelRepository repo;
  ASSERT_TRUE(repo.Add(std::vector{Doc("base", kBase)}).ok());
  repo.SetDeleteGuard([](std::string_view id) {
    return core::Status("MODEL_IN_USE", std::string(id) + " has twins");
  });
  EXPECT_EQ(repo.Delete("dtmi:t:Base;1").code(), "MODEL_IN_USE");
  EXPECT_EQ(repo.size(), 1u);
}

TEST(ModelRepository, Decommission) {
  ModelRepository repo;
  ASSERT_TRUE(repo.Add(std::vector{Doc("base", kBase)}).ok());
  EXPECT_FALSE(repo.Get("dtmi:t:Base;1")->decommissioned);
  EXPECT_TRUE(repo.Decommission("dtmi:t:Base;1").ok());
  EXPECT_TRUE(repo.Get("dtmi:t:Base;1")->decommissioned);
  EXPECT_TRUE(repo.Resolve("dtmi:t:Base;1").ok());
  EXPECT_EQ(repo.Decommission("dtmi:t:X;1").code(), "MODEL_NOT_FOUND");
}

class FailingStore : public ModelStore {
 public:
  core::Status SaveModels(std::span<const ModelInfo> models) override {
    saved += models.size();
    return fail ? core::Status("STORE_IO", "disk full") : core::Status();
  }
  core::Status SaveDecommissioned(std::string_view) override {
    return fail ? core::Status("STORE_IO", "disk full") : core::Status();
  }
  core::Status DeleteModel(std::string_view) override {
    return fail ? core::Status("STORE_IO", "disk full") : core::Status();
  }
  bool fail = false;
  std::size_t saved = 0;
};

TEST(ModelRepository, StoreFailureChangesNothing) {
  FailingStore store;
  ModelRepository repo(&store);
  ASSERT_TRUE(repo.Add(std::vector{Doc("base", kBase)}).ok());
  EXPECT_EQ(store.saved, 1u);
  store.fail = true;
  auto r = repo.Add(std::vector{Doc("sensor", kSensor)});
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.diagnostics.back().code, "STORE_IO");
  EXPECT_FALSE(repo.Get("dtmi:t:Sensor;1").has_value());
  EXPECT_EQ(repo.Decommission("dtmi:t:Base;1").code(), "STORE_IO");
  EXPECT_FALSE(repo.Get("dtmi:t:Base;1")->decommissioned);
  EXPECT_EQ(repo.Delete("dtmi:t:Base;1").code(), "STORE_IO");
  EXPECT_TRUE(repo.Get("dtmi:t:Base;1").has_value());
}

TEST(ModelRepository, RestoreDoesNotCallTheStore) {
  FailingStore store;
  store.fail = true;
  ModelRepository repo(&store);
  auto r = repo.Restore(std::vector{Doc("base", kBase)}, /*decommissioned=*/true,
                        std::chrono::system_clock::now());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(repo.Get("dtmi:t:Base;1")->decommissioned);
}

TEST(ModelRepository, ConcurrentReadersDuringWrites) {
  ModelRepository repo;
  ASSERT_TRUE(repo.Add(std::vector{Doc("base", kBase)}).ok());
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop) {
      auto r = repo.Resolve("dtmi:t:Base;1");
      ASSERT_TRUE(r.ok());
      ASSERT_EQ((*r)->contents().size(), 1u);
    }
  });
  for (int i = 0; i < 200; ++i) {
    std::string doc = R"({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:t:M)" +
                      std::to_string(i) + R"(;1", "@type": "Interface", "extends": "dtmi:t:Base;1"})";
    ASSERT_TRUE(repo.Add(std::vector{Doc("m", doc)}).ok());
  }
  stop = true;
  reader.join();
  EXPECT_EQ(repo.size(), 201u);
}

}  // namespace
}  // namespace doppel::model
