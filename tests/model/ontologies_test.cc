// The three real-world ontologies in ../shared/data/dtdl, read as the README of that folder
// describes them.
#include <gtest/gtest.h>

#include <set>

#include "model/model.h"
#include "model/test_util.h"

namespace doppel::model {
namespace {

using testing::LoadFolder;
using testing::OntologyDir;

std::set<std::string> UndefinedTargets(const Diagnostics& diags) {
  std::set<std::string> out;
  for (const auto& d : diags) {
    if (d.code != "UNDEFINED_RELATIONSHIP_TARGET") continue;
    auto start = d.message.find("targets ") + 8;
    out.insert(d.message.substr(start, d.message.find(',', start) - start));
  }
  return out;
}

std::string Errors(const Diagnostics& diags) {
  std::string out;
  for (const auto& d : diags) {
    if (d.severity == Severity::kError) out += FormatDiagnostic(d) + "\n";
  }
  return out;
}

TEST(Ontologies, RealEstateCoreIsValid) {
  ModelRepository repo;
  auto docs = LoadFolder(OntologyDir("RealEstateCore"));
  ASSERT_EQ(docs.size(), 768u);
  auto r = repo.Add(docs);
  ASSERT_TRUE(r.ok()) << Errors(r.diagnostics);
  EXPECT_EQ(r.added.size(), 768u);
  EXPECT_EQ(repo.size(), 768u);
  EXPECT_TRUE(UndefinedTargets(r.diagnostics).empty());

  // The deepest chain: 9 interfaces, the interface itself included.
  auto deep = repo.Resolve("dtmi:digitaltwins:rec_3_3:device:InferredOccupancySetpoint;1");
  ASSERT_TRUE(deep.ok());
  EXPECT_EQ((*deep)->extends_depth(), 8);
  EXPECT_EQ((*deep)->extends_closure().size(), 8u);
  EXPECT_TRUE((*deep)->IsA("dtmi:digitaltwins:rec_3_3:core:Capability;1"));
  const ResolvedContent* name = (*deep)->Find("name");
  ASSERT_NE(name, nullptr);
  EXPECT_EQ(name->defined_in, "dtmi:digitaltwins:rec_3_3:core:Capability;1");
  const ResolvedInterface* comp = (*deep)->ComponentInterface("categorizationProperties");
  ASSERT_NE(comp, nullptr);
  EXPECT_EQ(comp->id(), "dtmi:digitaltwins:rec_3_3:device:CapabilityPropertySet;1");

  // Semantic types with units come from the quantitativeTypes extension.
  std::size_t with_units = 0;
  auto models = repo.List();
  ASSERT_TRUE(models.ok());
  for (const auto& m : *models) {
    for (const auto& c : m.iface->contents) with_units += c->semantic.has_value();
  }
  EXPECT_GT(with_units, 0u);
}

TEST(Ontologies, SmartCitiesIsValidWithOneUndefinedTarget) {
  ModelRepository repo;
  auto docs = LoadFolder(OntologyDir("smartcities"));
  ASSERT_EQ(docs.size(), 63u);
  auto r = repo.Add(docs);
  ASSERT_TRUE(r.ok()) << Errors(r.diagnostics);
  EXPECT_EQ(r.added.size(), 63u);
  EXPECT_EQ(UndefinedTargets(r.diagnostics),
            std::set<std::string>{"dtmi:digitaltwins:ngsi_ld:city:device;1"});
}

// DTDL: a Relationship's target is by reference and need not be defined, so the energy grid
// ontology is valid; doppel lists every target it references but does not define.
TEST(Ontologies, EnergyGridIsValidAndItsUndefinedTargetsAreListed) {
  ModelRepository repo;
  auto docs = LoadFolder(OntologyDir("energygrid"));
  ASSERT_EQ(docs.size(), 113u);
  auto r = repo.Add(docs);
  ASSERT_TRUE(r.ok()) << Errors(r.diagnostics);
  EXPECT_EQ(r.added.size(), 113u);
  auto undefined = UndefinedTargets(r.diagnostics);
  EXPECT_EQ(undefined.size(), 20u);
  EXPECT_TRUE(undefined.contains("dtmi:digitaltwins:ngsi_ld:cim:energy:OperationalLimitSet;1"));
  EXPECT_TRUE(undefined.contains("dtmi:digitaltwins:ngsi_ld:city:EVChargingStation;1"));
  for (const auto& d : r.diagnostics) EXPECT_EQ(d.severity, Severity::kInfo);
  // The upstream typo'd id is still a valid DTMI.
  EXPECT_TRUE(repo.Get("dtmi:igitaltwins:cim:energy:Battery;1").has_value());
}

TEST(Ontologies, EnergyGridResolvesAgainstSmartCitiesInTheRepository) {
  ModelRepository repo;
  ASSERT_TRUE(repo.Add(LoadFolder(OntologyDir("smartcities"))).ok());
  auto r = repo.Add(LoadFolder(OntologyDir("energygrid")));
  ASSERT_TRUE(r.ok()) << Errors(r.diagnostics);
  auto undefined = UndefinedTargets(r.diagnostics);
  EXPECT_EQ(undefined.size(), 19u);
  EXPECT_FALSE(undefined.contains("dtmi:digitaltwins:ngsi_ld:city:EVChargingStation;1"));
}

TEST(Ontologies, AllThreeTogether) {
  ModelRepository repo;
  std::vector<SourceDocument> all;
  for (const char* o : {"RealEstateCore", "energygrid", "smartcities"}) {
    auto docs = LoadFolder(OntologyDir(o));
    all.insert(all.end(), docs.begin(), docs.end());
  }
  auto r = repo.Add(all);
  ASSERT_TRUE(r.ok()) << Errors(r.diagnostics);
  EXPECT_EQ(repo.size(), 944u);
}

}  // namespace
}  // namespace doppel::model
