#include "sync/mapping.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/time.h"
#include "model/model_repository.h"

namespace doppel::sync {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

// ---- Helpers ---------------------------------------------------------------------------------

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The example factory models plus a small test model (an integer element with a unit).
const model::ModelRepository& Models() {
  static model::ModelRepository repo;
  static const bool loaded = [] {
    std::vector<model::SourceDocument> docs;
    fs::path dir = fs::path(DOPPEL_SOURCE_DIR) / "examples/models/factory";
    for (const char* f : {"asset.json", "thermal_sensor.json", "production_line.json",
                          "machine.json", "cnc_mill.json"}) {
      docs.push_back({f, ReadFile(dir / f)});
    }
    docs.push_back({"counter", R"({
      "@context": ["dtmi:dtdl:context;3", "dtmi:dtdl:extension:quantitativeTypes;1"],
      "@id": "dtmi:doppel:test:Counter;1", "@type": "Interface",
      "contents": [
        {"@type": ["Telemetry", "TimeSpan"], "name": "uptime", "schema": "long", "unit": "second"},
        {"@type": "Telemetry", "name": "level", "schema": "double"}
      ]})"});
    auto added = repo.Add(docs);
    for (const auto& d : added.diagnostics) {
      if (d.severity == model::Severity::kError) ADD_FAILURE() << d.code << ": " << d.message;
    }
    return added.ok();
  }();
  EXPECT_TRUE(loaded);
  return repo;
}

constexpr const char* kMachine = "dtmi:doppel:example:factory:Machine;1";
const Clock::time_point kArrival = Clock::time_point(std::chrono::seconds(1'717'171'717));

std::optional<Mapping> Make(std::string_view text, const model::ModelRepository* models = nullptr) {
  auto m = Mapping::Parse(text, models);
  EXPECT_TRUE(m.ok()) << text << "\n -> " << (m.ok() ? "" : m.status().ToString()) << [&] {
    std::string all;
    if (!m.ok()) {
      for (const auto& d : m.status().details()) all += "\n    " + d.ToString();
    }
    return all;
  }();
  if (!m.ok()) return std::nullopt;
  return std::move(*m);
}

using Problem = std::pair<std::string, std::string>;  // code, pointer

std::vector<Problem> Problems(std::string_view text,
                              const model::ModelRepository* models = nullptr) {
  auto m = Mapping::Parse(text, models);
  if (m.ok()) return {};
  std::vector<Problem> out;
  for (const auto& d : m.status().details()) out.emplace_back(d.code(), d.pointer());
  return out;
}

std::string Dump(const std::vector<Problem>& ps) {
  std::string s;
  for (const auto& [code, ptr] : ps) s += code + " at '" + ptr + "'; ";
  return s;
}

MappedMessage ApplyOk(const Mapping& m, std::string_view topic, std::string_view payload) {
  auto r = m.Apply(topic, payload, kArrival);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.status().ToString());
  return r.ok() ? std::move(*r) : MappedMessage{};
}

std::string Rejections(const MappedMessage& out) {
  std::string s;
  for (const auto& r : out.rejected) s += r.error.ToString() + "\n";
  return s;
}

// ---- Topic patterns --------------------------------------------------------------------------

bool Matches(std::string_view pattern, std::string_view topic) {
  auto t = TopicPattern::Compile(pattern);
  EXPECT_TRUE(t.ok()) << pattern << ": " << (t.ok() ? "" : t.status().ToString());
  return t.ok() && t->Match(topic);
}

TEST(TopicPattern, SubscriptionFilterAndCaptures) {
  auto t = TopicPattern::Compile("plant/{line}/{machine}/telemetry");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->subscription_filter(), "plant/+/+/telemetry");
  EXPECT_EQ(t->capture_names(), (std::vector<std::string>{"line", "machine"}));
  EXPECT_EQ(t->CaptureIndex("machine"), 1u);
  EXPECT_FALSE(t->CaptureIndex("plant"));
  std::vector<std::string_view> caps;
  ASSERT_TRUE(t->Match("plant/l1/m3/telemetry", &caps));
  EXPECT_EQ(caps, (std::vector<std::string_view>{"l1", "m3"}));
  ASSERT_TRUE(t->Match("plant//m3/telemetry", &caps));  // empty level: an empty capture
  EXPECT_EQ(caps, (std::vector<std::string_view>{"", "m3"}));
  EXPECT_FALSE(t->Match("plant/l1/m3/status", &caps));
  EXPECT_FALSE(t->Match("plant/l1/m3/telemetry/x"));
  EXPECT_FALSE(t->Match("plant/l1/telemetry"));

  auto mixed = TopicPattern::Compile("a/+/{x}/#");
  ASSERT_TRUE(mixed.ok());
  EXPECT_EQ(mixed->subscription_filter(), "a/+/+/#");
  ASSERT_TRUE(mixed->Match("a/b/c/d/e", &caps));
  EXPECT_EQ(caps, (std::vector<std::string_view>{"c"}));
  ASSERT_TRUE(mixed->Match("a/b/c", &caps));
  EXPECT_EQ(caps, (std::vector<std::string_view>{"c"}));
  EXPECT_EQ(TopicPattern::Compile("/a//b/")->subscription_filter(), "/a//b/");
}

// MQTT 3.1.1 §4.7.1.2, §4.7.1.3, §4.7.2, §4.7.3 examples.
TEST(TopicPattern, MqttSpecExamples) {
  EXPECT_TRUE(Matches("sport/tennis/player1/#", "sport/tennis/player1"));
  EXPECT_TRUE(Matches("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
  EXPECT_TRUE(Matches("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon"));
  EXPECT_TRUE(Matches("sport/#", "sport"));
  EXPECT_TRUE(Matches("#", "sport/tennis"));
  EXPECT_TRUE(Matches("#", "/"));
  EXPECT_FALSE(Matches("sport/tennis/#", "sport/tennisplayer1"));
  EXPECT_TRUE(Matches("sport/tennis/+", "sport/tennis/player1"));
  EXPECT_TRUE(Matches("sport/tennis/+", "sport/tennis/player2"));
  EXPECT_FALSE(Matches("sport/tennis/+", "sport/tennis/player1/ranking"));
  EXPECT_FALSE(Matches("sport/+", "sport"));
  EXPECT_TRUE(Matches("sport/+", "sport/"));
  EXPECT_TRUE(Matches("+/+", "/finance"));
  EXPECT_TRUE(Matches("/+", "/finance"));
  EXPECT_FALSE(Matches("+", "/finance"));
  EXPECT_TRUE(Matches("+/tennis/#", "sport/tennis/player1"));
  EXPECT_TRUE(Matches("sport/+/player1", "sport/tennis/player1"));
  EXPECT_FALSE(Matches("sport/+/player1", "sport/tennis/x/player1"));
  // Case-sensitive, and a space is a character.
  EXPECT_FALSE(Matches("ACCOUNTS", "Accounts"));
  EXPECT_TRUE(Matches("Accounts payable", "Accounts payable"));
  EXPECT_FALSE(Matches("a/b", "a/b/"));
  EXPECT_TRUE(Matches("a//b", "a//b"));
}

TEST(TopicPattern, DollarTopics) {
  EXPECT_FALSE(Matches("#", "$SYS/broker/uptime"));
  EXPECT_FALSE(Matches("+/monitor/Clients", "$SYS/monitor/Clients"));
  EXPECT_FALSE(Matches("{root}/monitor/Clients", "$SYS/monitor/Clients"));
  EXPECT_TRUE(Matches("$SYS/#", "$SYS/monitor/Clients"));
  EXPECT_TRUE(Matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
  EXPECT_TRUE(Matches("$SYS/#", "$SYS"));
  // '$' later in the topic is an ordinary character.
  EXPECT_TRUE(Matches("+/$x", "a/$x"));
  EXPECT_TRUE(Matches("#", "a/$SYS"));
}

TEST(TopicPattern, TopicsThatAreNotTopicNames) {
  EXPECT_FALSE(Matches("#", ""));
  EXPECT_FALSE(Matches("#", "a/+"));
  EXPECT_FALSE(Matches("a/+", "a/#"));
  EXPECT_FALSE(Matches("a/#", "a/b#"));
}

TEST(TopicPattern, CompileErrors) {
  struct Case {
    const char* pattern;
    std::size_t problems;
    const char* needle;
  };
  for (const Case& c :
       {Case{"", 1, "empty"}, Case{"a/#/b", 1, "'#' must be the last level"},
        Case{"a/b#", 1, "mixes"}, Case{"a/+b", 1, "mixes"}, Case{"a/{x}y", 1, "mixes"},
        Case{"a/x{y}", 1, "mixes"}, Case{"a/{x}/{x}", 1, "capture 'x' appears twice"},
        Case{"a/{1x}", 1, "capture name"}, Case{"a/{}", 1, "capture name"},
        Case{"a/{x-y}", 1, "capture name"}, Case{"#/+x/{a}{b}", 3, "#"}}) {
    auto t = TopicPattern::Compile(c.pattern);
    ASSERT_FALSE(t.ok()) << c.pattern;
    EXPECT_EQ(t.status().code(), "MAPPING_TOPIC") << c.pattern;
    EXPECT_EQ(t.status().pointer(), "/topic");
    EXPECT_EQ(t.status().details().size(), c.problems)
        << c.pattern << ": " << t.status().ToString();
    EXPECT_NE(t.status().message().find(c.needle), std::string::npos)
        << c.pattern << ": " << t.status().message();
  }
}

// ---- Validation ------------------------------------------------------------------------------

TEST(MappingValidation, TheBriefExampleIsValid) {
  auto m = Make(R"({
    "id": "plant-telemetry",
    "topic": "plant/{line}/{machine}/telemetry",
    "twin": "{machine}",
    "format": "json",
    "model": "dtmi:doppel:example:factory:Machine;1",
    "fields": [
      {"pointer": "/temp", "element": "motorTemperature/temperature", "unit": "degreeFahrenheit",
       "min": -50, "max": 400},
      {"pointer": "/speed", "element": "spindleSpeed"}
    ],
    "timestamp": {"pointer": "/ts", "format": "rfc3339"},
    "qos": 1
  })",
                &Models());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->id(), "plant-telemetry");
  EXPECT_EQ(m->subscription_filter(), "plant/+/+/telemetry");
  EXPECT_EQ(m->format(), PayloadFormat::kJson);
  EXPECT_EQ(m->qos(), 1);
  EXPECT_EQ(m->model(), kMachine);
  EXPECT_EQ(m->document().at("id"), "plant-telemetry");
}

TEST(MappingValidation, Defaults) {
  auto m = Make(
      R"({"id": "a", "topic": "t", "twin": "x", "fields": [{"pointer": "", "element": "e"}]})");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->format(), PayloadFormat::kJson);
  EXPECT_EQ(m->qos(), 1);
  EXPECT_EQ(m->model(), "");
}

struct BadCase {
  const char* name;
  const char* doc;
  std::vector<Problem> expected;
  bool with_models = false;
};

// Each case: a document and exactly the problems it must report.
TEST(MappingValidation, EveryProblemWithItsPointer) {
  const std::vector<BadCase> cases = {
      {"not an object", R"([1])", {{"MAPPING_INVALID", ""}}},
      {"unknown member",
       R"({"id":"a","topic":"t","twin":"x","colour":1,
         "fields":[{"pointer":"/a","element":"e"}]})",
       {{"MAPPING_INVALID", "/colour"}}},
      {"missing members",
       R"({"fields":[{"pointer":"/a","element":"e"}]})",
       {{"MAPPING_INVALID", "/id"}, {"MAPPING_INVALID", "/topic"}, {"MAPPING_INVALID", "/twin"}}},
      {"wrong types",
       R"({"id":5,"topic":["t"],"twin":null,"description":1,"fields":{}})",
       {{"MAPPING_INVALID", "/id"},
        {"MAPPING_INVALID", "/description"},
        {"MAPPING_INVALID", "/topic"},
        {"MAPPING_INVALID", "/twin"},
        {"MAPPING_INVALID", "/fields"}}},
      {"bad id",
       R"({"id":"a b","topic":"t","twin":"x","fields":[{"pointer":"/a","element":"e"}]})",
       {{"MAPPING_INVALID", "/id"}}},
      {"id too long",
       R"({"id":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","topic":"t",
         "twin":"x","fields":[{"pointer":"/a","element":"e"}]})",
       {{"MAPPING_INVALID", "/id"}}},
      {"empty id",
       R"({"id":"","topic":"t","twin":"x","fields":[{"pointer":"/a","element":"e"}]})",
       {{"MAPPING_INVALID", "/id"}}},
      {"bad format",
       R"({"id":"a","topic":"t","twin":"x","format":"xml",
         "fields":[{"pointer":"/a","element":"e"}]})",
       {{"MAPPING_INVALID", "/format"}}},
      {"bad qos",
       R"({"id":"a","topic":"t","twin":"x","qos":2,
         "fields":[{"pointer":"/a","element":"e"}]})",
       {{"MAPPING_INVALID", "/qos"}}},
      {"qos not integer",
       R"({"id":"a","topic":"t","twin":"x","qos":"1",
         "fields":[{"pointer":"/a","element":"e"}]})",
       {{"MAPPING_INVALID", "/qos"}}},
      {"empty twin",
       R"({"id":"a","topic":"t","twin":"","fields":[{"pointer":"/a","element":"e"}]})",
       {{"MAPPING_INVALID", "/twin"}}},
      {"bad topic",
       R"({"id":"a","topic":"a/#/b","twin":"x",
         "fields":[{"pointer":"/a","element":"e"}]})",
       {{"MAPPING_TOPIC", "/topic"}}},
      {"two topic problems",
       R"({"id":"a","topic":"a/{m}/{m}/x+","twin":"x",
         "fields":[{"pointer":"/a","element":"e"}]})",
       {{"MAPPING_TOPIC", "/topic"}, {"MAPPING_TOPIC", "/topic"}}},
      {"twin: unknown capture",
       R"({"id":"a","topic":"p/{machine}","twin":"m-{machin}",
         "fields":[{"pointer":"/a","element":"e"}]})",
       {{"MAPPING_TEMPLATE", "/twin"}}},
      {"twin: tag outside line-protocol",
       R"({"id":"a","topic":"p/{m}","twin":"{tag:m}",
         "fields":[{"pointer":"/a","element":"e"}]})",
       {{"MAPPING_TEMPLATE", "/twin"}}},
      {"twin: stray braces",
       R"({"id":"a","topic":"p/{m}","twin":"x}{m",
         "fields":[{"pointer":"/a","element":"e"}]})",
       {{"MAPPING_TEMPLATE", "/twin"}, {"MAPPING_TEMPLATE", "/twin"}}},
      {"twin: bad placeholder",
       R"({"id":"a","topic":"p/{m}","twin":"{m-1}",
         "fields":[{"pointer":"/a","element":"e"}]})",
       {{"MAPPING_TEMPLATE", "/twin"}}},
      {"element: unknown capture",
       R"({"id":"a","topic":"p/{m}","twin":"{m}",
         "fields":[{"pointer":"/a","element":"e"},{"pointer":"/b","element":"{sensor}"}]})",
       {{"MAPPING_TEMPLATE", "/fields/1/element"}}},
      {"fields empty",
       R"({"id":"a","topic":"t","twin":"x","fields":[]})",
       {{"MAPPING_INVALID", "/fields"}}},
      {"field not an object",
       R"({"id":"a","topic":"t","twin":"x","fields":["/a"]})",
       {{"MAPPING_INVALID", "/fields/0"}}},
      {"field members",
       R"({"id":"a","topic":"t","twin":"x","fields":[
         {"pointer":"/a","element":"e","colour":1,"field":"f"}]})",
       {{"MAPPING_INVALID", "/fields/0/colour"}, {"MAPPING_INVALID", "/fields/0/field"}}},
      {"field missing pointer and element",
       R"({"id":"a","topic":"t","twin":"x","fields":[{}]})",
       {{"MAPPING_INVALID", "/fields/0/pointer"}, {"MAPPING_INVALID", "/fields/0/element"}}},
      {"bad pointers",
       R"({"id":"a","topic":"t","twin":"x","fields":[
         {"pointer":"temp","element":"e"},{"pointer":"/a~2","element":"f"},
         {"pointer":"/a~","element":"g"}]})",
       {{"MAPPING_INVALID", "/fields/0/pointer"},
        {"MAPPING_INVALID", "/fields/1/pointer"},
        {"MAPPING_INVALID", "/fields/2/pointer"}}},
      {"optional not bool",
       R"({"id":"a","topic":"t","twin":"x","fields":[
         {"pointer":"/a","element":"e","optional":"yes"}]})",
       {{"MAPPING_INVALID", "/fields/0/optional"}}},
      {"range",
       R"({"id":"a","topic":"t","twin":"x","fields":[
         {"pointer":"/a","element":"e","min":10,"max":5},{"pointer":"/b","element":"f","min":"0"}]})",
       {{"MAPPING_INVALID", "/fields/0/max"}, {"MAPPING_INVALID", "/fields/1/min"}}},
      {"same element twice",
       R"({"id":"a","topic":"t","twin":"x","fields":[
         {"pointer":"/a","element":"e"},{"pointer":"/b","element":"e"}]})",
       {{"MAPPING_INVALID", "/fields/1/element"}}},
      {"number: two fields",
       R"({"id":"a","topic":"t","twin":"x","format":"number","fields":[
         {"element":"e"},{"element":"f"}]})",
       {{"MAPPING_INVALID", "/fields"}}},
      {"number: pointer and optional",
       R"({"id":"a","topic":"t","twin":"x","format":"number",
         "fields":[{"pointer":"/a","element":"e","optional":true}]})",
       {{"MAPPING_INVALID", "/fields/0/pointer"}, {"MAPPING_INVALID", "/fields/0/optional"}}},
      {"number: timestamp",
       R"({"id":"a","topic":"t","twin":"x","format":"number",
         "fields":[{"element":"e"}],"timestamp":{"pointer":"/ts"}})",
       {{"MAPPING_INVALID", "/timestamp"}}},
      {"number: no fields",
       R"({"id":"a","topic":"t","twin":"x","format":"number"})",
       {{"MAPPING_INVALID", "/fields"}}},
      {"json: line-protocol members",
       R"({"id":"a","topic":"t","twin":"x","measurement":"m",
         "precision":"ms","fields":[{"pointer":"/a","element":"e"}]})",
       {{"MAPPING_INVALID", "/measurement"}, {"MAPPING_INVALID", "/precision"}}},
      {"timestamp problems",
       R"({"id":"a","topic":"t","twin":"x","fields":[
         {"pointer":"/a","element":"e"}],"timestamp":{"pointer":"ts","format":"unix","x":1,
         "optional":1}})",
       {{"MAPPING_INVALID", "/timestamp/x"},
        {"MAPPING_INVALID", "/timestamp/pointer"},
        {"MAPPING_INVALID", "/timestamp/format"},
        {"MAPPING_INVALID", "/timestamp/optional"}}},
      {"timestamp not an object",
       R"({"id":"a","topic":"t","twin":"x","fields":[
         {"pointer":"/a","element":"e"}],"timestamp":"/ts"})",
       {{"MAPPING_INVALID", "/timestamp"}}},
      {"timestamp without pointer",
       R"({"id":"a","topic":"t","twin":"x","fields":[
         {"pointer":"/a","element":"e"}],"timestamp":{"format":"unix-s"}})",
       {{"MAPPING_INVALID", "/timestamp/pointer"}}},
      {"line-protocol: members",
       R"({"id":"a","topic":"t","twin":"x","format":"line-protocol",
         "precision":"fortnight","measurement":"","timestamp":{"pointer":"/t"},
         "fields":[{"pointer":"/a","element":"e"},{"element":"f"}]})",
       {{"MAPPING_INVALID", "/measurement"},
        {"MAPPING_INVALID", "/precision"},
        {"MAPPING_INVALID", "/timestamp"},
        {"MAPPING_INVALID", "/fields/0/pointer"},
        {"MAPPING_INVALID", "/fields/0/field"},
        {"MAPPING_INVALID", "/fields/1/field"}}},
      {"line-protocol: empty fields",
       R"({"id":"a","topic":"t","twin":"x",
         "format":"line-protocol","fields":[]})",
       {{"MAPPING_INVALID", "/fields"}}},
      {"unknown unit",
       R"({"id":"a","topic":"t","twin":"x","fields":[
         {"pointer":"/a","element":"e","unit":"degF","targetUnit":"degreeCelsius"}]})",
       {{"MAPPING_UNIT", "/fields/0/unit"}}},
      {"unknown target unit",
       R"({"id":"a","topic":"t","twin":"x","fields":[
         {"pointer":"/a","element":"e","unit":"degreeFahrenheit","targetUnit":"celsius"}]})",
       {{"MAPPING_UNIT", "/fields/0/targetUnit"}}},
      {"unit without a target",
       R"({"id":"a","topic":"t","twin":"x","fields":[
         {"pointer":"/a","element":"e","unit":"degreeFahrenheit"}]})",
       {{"MAPPING_UNIT", "/fields/0/unit"}}},
      {"target without unit",
       R"({"id":"a","topic":"t","twin":"x","fields":[
         {"pointer":"/a","element":"e","targetUnit":"degreeCelsius"}]})",
       {{"MAPPING_UNIT", "/fields/0/targetUnit"}}},
      {"different quantities",
       R"({"id":"a","topic":"t","twin":"x","fields":[
         {"pointer":"/a","element":"e","unit":"bar","targetUnit":"degreeCelsius"}]})",
       {{"MAPPING_UNIT", "/fields/0/unit"}}},
      {"ambiguous unit",
       R"({"id":"a","topic":"t","twin":"x","fields":[
         {"pointer":"/a","element":"e","unit":"ton","targetUnit":"newton"}]})",
       {{"MAPPING_UNIT", "/fields/0/unit"}}},
      // With the factory models.
      {"unknown model",
       R"({"id":"a","topic":"t","twin":"x","model":"dtmi:nope;1",
         "fields":[{"pointer":"/a","element":"e"}]})",
       {{"MAPPING_ELEMENT", "/model"}},
       true},
      {"model without repository",
       R"({"id":"a","topic":"t","twin":"x","model":"dtmi:nope;1",
         "fields":[{"pointer":"/a","element":"e"}]})",
       {{"MAPPING_ELEMENT", "/model"}},
       false},
      {"unknown elements",
       R"({"id":"a","topic":"t","twin":"x",
         "model":"dtmi:doppel:example:factory:Machine;1","fields":[
         {"pointer":"/a","element":"temperature"},
         {"pointer":"/b","element":"motorTemperature/nope"},
         {"pointer":"/c","element":"setMode"},
         {"pointer":"/d","element":"feeds"},
         {"pointer":"/e","element":"motorTemperature"},
         {"pointer":"/f","element":"nope/temperature"},
         {"pointer":"/g","element":"motorTemperature/temperature/x"}]})",
       {{"MAPPING_ELEMENT", "/fields/0/element"},
        {"MAPPING_ELEMENT", "/fields/1/element"},
        {"MAPPING_ELEMENT", "/fields/2/element"},
        {"MAPPING_ELEMENT", "/fields/3/element"},
        {"MAPPING_ELEMENT", "/fields/4/element"},
        {"MAPPING_ELEMENT", "/fields/5/element"},
        {"MAPPING_ELEMENT", "/fields/6/element"}},
       true},
      {"unit or range on a non-numeric element",
       R"({"id":"a","topic":"t","twin":"x",
         "model":"dtmi:doppel:example:factory:Machine;1","fields":[
         {"pointer":"/a","element":"serialNumber","unit":"metre","targetUnit":"metre"},
         {"pointer":"/b","element":"status","min":0},
         {"pointer":"/c","element":"commissioned","max":1}]})",
       {{"MAPPING_ELEMENT", "/fields/0/unit"},
        {"MAPPING_ELEMENT", "/fields/1/min"},
        {"MAPPING_ELEMENT", "/fields/2/max"}},
       true},
      {"target unit contradicts the model",
       R"({"id":"a","topic":"t","twin":"x",
         "model":"dtmi:doppel:example:factory:Machine;1","fields":[
         {"pointer":"/a","element":"power","unit":"watt","targetUnit":"watt"}]})",
       {{"MAPPING_UNIT", "/fields/0/targetUnit"}},
       true},
      {"unit of another quantity than the model's",
       R"({"id":"a","topic":"t","twin":"x",
         "model":"dtmi:doppel:example:factory:Machine;1","fields":[
         {"pointer":"/a","element":"spindleSpeed","unit":"kilopascal"}]})",
       {{"MAPPING_UNIT", "/fields/0/unit"}},
       true},
      {"element without a unit in the model",
       R"({"id":"a","topic":"t","twin":"x",
         "model":"dtmi:doppel:example:factory:Machine;1","fields":[
         {"pointer":"/a","element":"operatingHours","unit":"minute"}]})",
       {{"MAPPING_UNIT", "/fields/0/unit"}},
       true},
      {"template element with model needs targetUnit",
       R"({"id":"a","topic":"p/{s}","twin":"x",
         "model":"dtmi:doppel:example:factory:Machine;1","fields":[
         {"pointer":"/a","element":"{s}","unit":"minute"}]})",
       {{"MAPPING_UNIT", "/fields/0/unit"}},
       true},
  };
  for (const BadCase& c : cases) {
    auto got = Problems(c.doc, c.with_models ? &Models() : nullptr);
    EXPECT_EQ(got, c.expected) << c.name << "\n  got:      " << Dump(got)
                               << "\n  expected: " << Dump(c.expected);
  }
}

TEST(MappingValidation, SummaryStatus) {
  // One code throughout: that code; mixed codes: MAPPING_INVALID. Pointer: the first problem's.
  auto units = Mapping::Parse(std::string_view(R"({"id":"a","topic":"t","twin":"x","fields":[
      {"pointer":"/a","element":"e","unit":"degF","targetUnit":"degreeCelsius"},
      {"pointer":"/b","element":"f","unit":"bar"}]})"),
                              nullptr);
  ASSERT_FALSE(units.ok());
  EXPECT_EQ(units.status().code(), "MAPPING_UNIT");
  EXPECT_EQ(units.status().pointer(), "/fields/0/unit");
  EXPECT_EQ(units.status().details().size(), 2u);
  EXPECT_NE(units.status().message().find("2 problems"), std::string::npos);
  EXPECT_NE(units.status().details()[0].message().find("did you mean 'degreeFahrenheit'"),
            std::string::npos)
      << units.status().details()[0].message();

  auto mixed = Mapping::Parse(std::string_view(R"({"id":"a b","topic":"a/#/b","twin":"{x}",
      "fields":[{"pointer":"/a","element":"e","unit":"bar"}]})"),
                              nullptr);
  ASSERT_FALSE(mixed.ok());
  EXPECT_EQ(mixed.status().code(), "MAPPING_INVALID");
  EXPECT_EQ(mixed.status().pointer(), "/id");
  // The twin template is not checked against a topic that did not compile.
  EXPECT_EQ(mixed.status().details().size(), 3u) << mixed.status().ToString();

  auto not_json = Mapping::Parse(std::string_view("{\"id\": "), nullptr);
  ASSERT_FALSE(not_json.ok());
  EXPECT_EQ(not_json.status().code(), "MAPPING_INVALID");
  EXPECT_NE(not_json.status().message().find("not JSON"), std::string::npos);
}

TEST(MappingValidation, Messages) {
  auto m =
      Mapping::Parse(std::string_view(R"({"id":"a","topic":"p/{line}/{machine}","twin":"{mach}",
      "model":"dtmi:doppel:example:factory:Machine;1",
      "fields":[{"pointer":"/a","element":"temprature"}]})"),
                     &Models());
  ASSERT_FALSE(m.ok());
  ASSERT_EQ(m.status().details().size(), 2u);
  EXPECT_NE(m.status().details()[0].message().find("captures: line, machine"), std::string::npos)
      << m.status().details()[0].message();
  EXPECT_NE(m.status().details()[1].message().find("motorTemperature/temperature"),
            std::string::npos)
      << "lists the elements: " << m.status().details()[1].message();
}

TEST(MappingValidation, ModelUnitsAndTargetUnits) {
  // targetUnit equal to the model's unit is fine; so is targetUnit where the model has none.
  EXPECT_TRUE(
      Make(R"({"id":"a","topic":"t","twin":"x","model":"dtmi:doppel:example:factory:Machine;1",
      "fields":[{"pointer":"/a","element":"power","unit":"watt","targetUnit":"kilowatt"},
                {"pointer":"/b","element":"operatingHours","unit":"minute","targetUnit":"hour"},
                {"pointer":"/c","element":"partsProduced","min":0}]})",
           &Models()));
  // A template element with a model: checked at ingest, not now; targetUnit makes the unit work.
  EXPECT_TRUE(
      Make(R"({"id":"a","topic":"p/{s}","twin":"x","model":"dtmi:doppel:example:factory:Machine;1",
      "fields":[{"pointer":"/a","element":"{s}","unit":"minute","targetUnit":"second"}]})",
           &Models()));
}

// ---- Apply: json -----------------------------------------------------------------------------

std::optional<Mapping> Telemetry() {
  return Make(R"({
    "id": "plant-telemetry",
    "topic": "plant/{line}/{machine}/telemetry",
    "twin": "m-{machine}",
    "model": "dtmi:doppel:example:factory:Machine;1",
    "fields": [
      {"pointer": "/temp", "element": "motorTemperature/temperature", "unit": "degreeFahrenheit",
       "min": -50, "max": 400},
      {"pointer": "/speed", "element": "spindleSpeed"},
      {"pointer": "/power", "element": "power", "unit": "kilowatt"},
      {"pointer": "/parts", "element": "partsProduced", "optional": true}
    ]
  })",
              &Models());
}

TEST(MappingApply, Json) {
  auto m = Telemetry();
  ASSERT_TRUE(m);
  auto out = ApplyOk(*m, "plant/l1/m3/telemetry",
                     R"({"temp": 212, "speed": 1200, "power": 7, "parts": 17, "extra": true})");
  EXPECT_TRUE(out.rejected.empty()) << Rejections(out);
  ASSERT_EQ(out.readings.size(), 4u);
  const Reading& t = out.readings[0];
  EXPECT_EQ(t.twin, "m-m3");
  EXPECT_EQ(t.element, "motorTemperature/temperature");
  ASSERT_TRUE(t.value.is_double());  // converted: a double
  EXPECT_EQ(t.value.get_double(), 100.0);
  EXPECT_EQ(t.source_time, kArrival);
  EXPECT_EQ(t.origin, "mqtt plant/l1/m3/telemetry field /temp");
  // No unit: the value as sent (an integer stays one).
  EXPECT_EQ(out.readings[1].element, "spindleSpeed");
  ASSERT_TRUE(out.readings[1].value.is_int64());
  EXPECT_EQ(out.readings[1].value.get_int64(), 1200);
  // Unit equal to the model's: the identity, the integer stays.
  EXPECT_TRUE(out.readings[2].value.is_int64());
  EXPECT_EQ(out.readings[3].element, "partsProduced");
  EXPECT_EQ(out.skipped_fields, 0u);

  auto http = m->Apply("plant/l1/m3/telemetry", R"({"temp": 32, "speed": 1, "power": 1})", kArrival,
                       "POST /mqtt");
  ASSERT_TRUE(http.ok());
  EXPECT_EQ(http->readings[0].value.get_double(), 0.0);
  EXPECT_EQ(http->readings[0].origin, "POST /mqtt plant/l1/m3/telemetry field /temp");
}

TEST(MappingApply, MissingOptionalAndNullFields) {
  auto m = Telemetry();
  ASSERT_TRUE(m);
  auto out = ApplyOk(*m, "plant/l1/m3/telemetry", R"({"temp": 100, "power": null})");
  // speed missing, power null: rejected each; parts missing but optional: skipped.
  ASSERT_EQ(out.readings.size(), 1u);
  EXPECT_EQ(out.skipped_fields, 1u);
  ASSERT_EQ(out.rejected.size(), 2u) << Rejections(out);
  EXPECT_EQ(out.rejected[0].field, 1u);
  EXPECT_EQ(out.rejected[0].error.code(), "MAPPING_PAYLOAD");
  EXPECT_EQ(out.rejected[0].error.pointer(), "/speed");
  EXPECT_EQ(out.rejected[0].twin, "m-m3");
  EXPECT_EQ(out.rejected[0].element, "spindleSpeed");
  EXPECT_EQ(out.rejected[0].origin, "mqtt plant/l1/m3/telemetry field /speed");
  EXPECT_NE(out.rejected[0].error.message().find("no value at '/speed'"), std::string::npos);
  EXPECT_EQ(out.rejected[1].field, 2u);
  EXPECT_NE(out.rejected[1].error.message().find("null"), std::string::npos);

  auto null_optional = ApplyOk(*m, "plant/l1/m3/telemetry",
                               R"({"temp": 100, "speed": 1, "power": 2, "parts": null})");
  EXPECT_EQ(null_optional.readings.size(), 3u);
  EXPECT_EQ(null_optional.skipped_fields, 1u);
  EXPECT_TRUE(null_optional.rejected.empty());
}

TEST(MappingApply, Ranges) {
  auto m = Telemetry();
  ASSERT_TRUE(m);
  // 842 °F = 450 °C > 400; -76 °F = -60 °C < -50.
  auto high = ApplyOk(*m, "plant/l1/m3/telemetry", R"({"temp": 842, "speed": 1, "power": 1})");
  ASSERT_EQ(high.rejected.size(), 1u);
  EXPECT_EQ(high.readings.size(), 2u);
  const auto& r = high.rejected[0];
  EXPECT_EQ(r.field, 0u);
  EXPECT_EQ(r.error.code(), "MAPPING_RANGE");
  EXPECT_EQ(r.error.pointer(), "/temp");
  EXPECT_EQ(r.value, "842");
  EXPECT_NE(r.error.message().find("450"), std::string::npos) << r.error.message();
  EXPECT_NE(r.error.message().find("842 degreeFahrenheit"), std::string::npos) << r.error.message();
  EXPECT_NE(r.error.message().find("above the maximum 400"), std::string::npos)
      << r.error.message();
  EXPECT_NE(r.error.message().find("-50..400"), std::string::npos) << r.error.message();
  auto low = ApplyOk(*m, "plant/l1/m3/telemetry", R"({"temp": -76, "speed": 1, "power": 1})");
  ASSERT_EQ(low.rejected.size(), 1u);
  EXPECT_NE(low.rejected[0].error.message().find("below the minimum -50"), std::string::npos)
      << low.rejected[0].error.message();
  // The bounds themselves are in range: 752 °F = 400 °C.
  auto edge = ApplyOk(*m, "plant/l1/m3/telemetry", R"({"temp": 752, "speed": 1, "power": 1})");
  EXPECT_TRUE(edge.rejected.empty()) << Rejections(edge);
  // A string where a number is needed.
  auto text = ApplyOk(*m, "plant/l1/m3/telemetry", R"({"temp": "hot", "speed": 1, "power": 1})");
  ASSERT_EQ(text.rejected.size(), 1u);
  EXPECT_EQ(text.rejected[0].error.code(), "MAPPING_PAYLOAD");
  EXPECT_NE(text.rejected[0].error.message().find("is a string, not a number"), std::string::npos);
  // A range without unit, without model: integers compared as numbers, and kept as integers.
  auto plain = Make(R"({"id":"a","topic":"t","twin":"x","fields":[
      {"pointer":"/v","element":"e","min":0,"max":10}]})");
  ASSERT_TRUE(plain);
  auto ok = ApplyOk(*plain, "t", R"({"v": 10})");
  ASSERT_EQ(ok.readings.size(), 1u);
  EXPECT_TRUE(ok.readings[0].value.is_int64());
  EXPECT_EQ(ApplyOk(*plain, "t", R"({"v": 10.5})").rejected.at(0).error.code(), "MAPPING_RANGE");
  EXPECT_EQ(ApplyOk(*plain, "t", R"({"v": true})").rejected.at(0).error.code(), "MAPPING_PAYLOAD");
}

TEST(MappingApply, ConversionToAnIntegerElementRounds) {
  auto m = Make(R"({"id":"a","topic":"t","twin":"x","model":"dtmi:doppel:test:Counter;1",
      "fields":[{"pointer":"/up","element":"uptime","unit":"minute"},
                {"pointer":"/lvl","element":"level","unit":"percent","targetUnit":"unity"}]})",
                &Models());
  ASSERT_TRUE(m);
  auto out = ApplyOk(*m, "t", R"({"up": 1.51, "lvl": 50})");
  ASSERT_EQ(out.readings.size(), 2u) << Rejections(out);
  ASSERT_TRUE(out.readings[0].value.is_int64());
  EXPECT_EQ(out.readings[0].value.get_int64(), 91);  // 90.6 s
  EXPECT_EQ(out.readings[1].value.get_double(), 0.5);
}

TEST(MappingApply, Templates) {
  auto m = Make(R"({"id":"a","topic":"site/{site}/sensor/{sensor}","twin":"{site}-hall",
      "fields":[{"pointer":"/v","element":"{sensor}"},
                {"pointer":"/q","element":"quality/{sensor}"}]})");
  ASSERT_TRUE(m);
  auto out = ApplyOk(*m, "site/berlin/sensor/humidity", R"({"v": 41.5, "q": "good"})");
  ASSERT_EQ(out.readings.size(), 2u);
  EXPECT_EQ(out.readings[0].twin, "berlin-hall");
  EXPECT_EQ(out.readings[0].element, "humidity");
  EXPECT_EQ(out.readings[1].element, "quality/humidity");
  EXPECT_EQ(out.readings[1].value, "good");
  // Templated elements may repeat: they differ per message.
  EXPECT_TRUE(Make(R"({"id":"a","topic":"p/{s}","twin":"x","fields":[
      {"pointer":"/a","element":"{s}"},{"pointer":"/b","element":"{s}"}]})"));
}

TEST(MappingApply, JsonPointers) {
  auto m = Make(R"({"id":"a","topic":"t","twin":"x","fields":[
      {"pointer":"/a~1b","element":"slash"},
      {"pointer":"/m~0n","element":"tilde"},
      {"pointer":"/values/1","element":"second"},
      {"pointer":"/values/01","element":"leadingZero","optional":true},
      {"pointer":"/values/-","element":"pastEnd","optional":true},
      {"pointer":"/values/9","element":"outOfRange","optional":true},
      {"pointer":"/deep/x/y","element":"deep"},
      {"pointer":"/","element":"emptyKey"},
      {"pointer":"/values/0/z","element":"intoNumber","optional":true},
      {"pointer":"/obj","element":"object"}]})");
  ASSERT_TRUE(m);
  auto out = ApplyOk(*m, "t", R"({"a/b": 1, "m~n": 2, "values": [10, 20], "deep": {"x": {"y": 3}},
                                  "": 4, "obj": {"k": [1]}})");
  EXPECT_TRUE(out.rejected.empty()) << Rejections(out);
  EXPECT_EQ(out.skipped_fields, 4u);
  ASSERT_EQ(out.readings.size(), 6u);
  EXPECT_EQ(out.readings[0].value, 1);
  EXPECT_EQ(out.readings[1].value, 2);
  EXPECT_EQ(out.readings[2].value, 20);
  EXPECT_EQ(out.readings[3].value, 3);
  EXPECT_EQ(out.readings[4].value, 4);
  EXPECT_EQ(out.readings[5].value, (json::value{{"k", json::array{1}}}));

  // A JSON array payload works with index pointers; the empty pointer takes the whole payload.
  auto arr = Make(R"({"id":"a","topic":"t","twin":"x","fields":[{"pointer":"/1","element":"e"}]})");
  ASSERT_TRUE(arr);
  EXPECT_EQ(ApplyOk(*arr, "t", "[5, 6]").readings.at(0).value, 6);
  auto whole = Make(R"({"id":"a","topic":"t","twin":"x","fields":[{"pointer":"","element":"e"}]})");
  ASSERT_TRUE(whole);
  EXPECT_EQ(ApplyOk(*whole, "t", "42").readings.at(0).value, 42);
  EXPECT_EQ(ApplyOk(*whole, "t", "\"on\"").readings.at(0).value, "on");
}

TEST(MappingApply, MalformedJsonPayloads) {
  auto m = Telemetry();
  ASSERT_TRUE(m);
  for (std::string_view payload :
       {std::string_view("not json"), std::string_view(""), std::string_view("{\"temp\": NaN}"),
        std::string_view("{\"temp\": 1,}"), std::string_view("{\"temp\": 1} {}"),
        std::string_view("42"), std::string_view("\"text\""), std::string_view("null")}) {
    auto out = ApplyOk(*m, "plant/l1/m3/telemetry", payload);
    EXPECT_TRUE(out.readings.empty()) << payload;
    ASSERT_EQ(out.rejected.size(), 1u) << payload << ": " << Rejections(out);
    EXPECT_FALSE(out.rejected[0].field.has_value());
    EXPECT_EQ(out.rejected[0].error.code(), "MAPPING_PAYLOAD") << payload;
    EXPECT_EQ(out.rejected[0].twin, "m-m3");
    EXPECT_EQ(out.rejected[0].origin, "mqtt plant/l1/m3/telemetry");
    EXPECT_EQ(out.rejected[0].value, payload);
  }
  auto scalar = ApplyOk(*m, "plant/l1/m3/telemetry", "42");
  EXPECT_NE(scalar.rejected[0].error.message().find("payload is a number, not an object"),
            std::string::npos)
      << scalar.rejected[0].error.message();
  auto syntax = ApplyOk(*m, "plant/l1/m3/telemetry", "{\"temp\": NaN}");
  EXPECT_NE(syntax.rejected[0].error.message().find("line 1, column"), std::string::npos)
      << syntax.rejected[0].error.message();
  // A long payload is abbreviated in the rejection.
  auto long_payload = ApplyOk(*m, "plant/l1/m3/telemetry", std::string(500, 'x'));
  EXPECT_EQ(long_payload.rejected.at(0).value, std::string(60, 'x') + "...");
}

TEST(MappingApply, HugeNumbers) {
  auto m = Telemetry();
  ASSERT_TRUE(m);
  // Boost.JSON reads 1e400 as infinity: that is out of range, for that field only.
  auto inf = ApplyOk(*m, "plant/l1/m3/telemetry", R"({"temp": 1, "speed": 1e400, "power": 1})");
  ASSERT_EQ(inf.rejected.size(), 1u);
  EXPECT_EQ(inf.rejected[0].field, 1u);
  EXPECT_EQ(inf.rejected[0].error.code(), "MAPPING_PAYLOAD");
  EXPECT_EQ(inf.readings.size(), 2u);
  // Integers beyond uint64 read as doubles and pass through.
  auto big = ApplyOk(*m, "plant/l1/m3/telemetry",
                     R"({"temp": 1, "speed": 123456789012345678901234567890, "power": 1})");
  ASSERT_TRUE(big.rejected.empty());
  EXPECT_TRUE(big.readings[1].value.is_double());
  // A conversion that overflows is a range error.
  auto over = Make(R"({"id":"a","topic":"t","twin":"x","fields":[
      {"pointer":"/v","element":"e","unit":"kilometre","targetUnit":"millimetre"}]})");
  ASSERT_TRUE(over);
  auto o = ApplyOk(*over, "t", R"({"v": 1e305})");
  ASSERT_EQ(o.rejected.size(), 1u);
  EXPECT_EQ(o.rejected[0].error.code(), "MAPPING_RANGE");
  EXPECT_EQ(ApplyOk(*over, "t", R"({"v": 1.5})").readings.at(0).value, 1.5e6);
}

// ---- Apply: timestamps -----------------------------------------------------------------------

std::optional<Mapping> WithTimestamp(std::string_view format, bool optional = false) {
  return Make(
      std::string(R"({"id":"a","topic":"t","twin":"x","fields":[{"pointer":"/v","element":"e"}],
      "timestamp":{"pointer":"/ts","format":")") +
      std::string(format) + "\"" + (optional ? ",\"optional\":true" : "") + "}}");
}

Clock::time_point At(std::string_view rfc3339) { return *core::ParseRfc3339(rfc3339); }

TEST(MappingApply, TimestampFormats) {
  struct Case {
    const char* format;
    const char* ts;
    const char* expected;
  };
  for (const Case& c : {
           Case{"rfc3339", R"("2024-05-31T13:45:00.123456Z")", "2024-05-31T13:45:00.123456Z"},
           Case{"rfc3339", R"("2024-05-31T15:45:00+02:00")", "2024-05-31T13:45:00Z"},
           Case{"unix-s", "1717163100", "2024-05-31T13:45:00Z"},
           Case{"unix-s", "1717163100.25", "2024-05-31T13:45:00.25Z"},
           Case{"unix-ms", "1717163100123", "2024-05-31T13:45:00.123Z"},
           Case{"unix-us", "1717163100123456", "2024-05-31T13:45:00.123456Z"},
           Case{"unix-ns", "1717163100123456789", "2024-05-31T13:45:00.123456Z"},
           Case{"unix-s", "-1", "1969-12-31T23:59:59Z"},
           Case{"unix-s", "-1.5", "1969-12-31T23:59:58.5Z"},
           Case{"unix-ms", "1717163100123.5", "2024-05-31T13:45:00.1235Z"},
       }) {
    auto m = WithTimestamp(c.format);
    ASSERT_TRUE(m);
    auto out = ApplyOk(*m, "t", std::string(R"({"v": 1, "ts": )") + c.ts + "}");
    ASSERT_EQ(out.readings.size(), 1u) << c.format << " " << c.ts << ": " << Rejections(out);
    ASSERT_TRUE(out.readings[0].source_time);
    EXPECT_EQ(std::chrono::floor<std::chrono::microseconds>(*out.readings[0].source_time),
              At(c.expected))
        << c.format << " " << c.ts;
  }
  auto ns = WithTimestamp("unix-ns");
  auto exact = ApplyOk(*ns, "t", R"({"v": 1, "ts": 1717163100123456789})");
  EXPECT_EQ(exact.readings.at(0).source_time->time_since_epoch(),
            std::chrono::nanoseconds(1717163100123456789));
}

TEST(MappingApply, BadTimestamps) {
  struct Case {
    const char* format;
    const char* payload;
    const char* needle;
  };
  for (const Case& c : {
           Case{"rfc3339", R"({"v": 1})", "missing"},
           Case{"rfc3339", R"({"v": 1, "ts": null})", "missing"},
           Case{"rfc3339", R"({"v": 1, "ts": 1717163100})", "not an RFC 3339 string"},
           Case{"rfc3339", R"({"v": 1, "ts": "2024-05-31 13:45"})", "not an RFC 3339"},
           Case{"rfc3339", R"({"v": 1, "ts": "2024-02-30T00:00:00Z"})", "not an RFC 3339"},
           Case{"rfc3339", R"({"v": 1, "ts": "3000-01-01T00:00:00Z"})", "1678..2261"},
           Case{"rfc3339", R"({"v": 1, "ts": "0001-01-01T00:00:00Z"})", "1678..2261"},
           Case{"rfc3339", R"({"v": 1, "ts": "9999-12-31T23:59:59+23:59"})", "1678..2261"},
           Case{"unix-ms", R"({"v": 1, "ts": "1717163100123"})", "needs a number"},
           Case{"unix-s", R"({"v": 1, "ts": 1e12})", "out of range"},
           Case{"unix-s", R"({"v": 1, "ts": 9300000000})", "out of range"},
           Case{"unix-ns", R"({"v": 1, "ts": 18446744073709551615})", "out of range"},
           Case{"unix-s", R"({"v": 1, "ts": true})", "needs a number"},
       }) {
    auto m = WithTimestamp(c.format);
    ASSERT_TRUE(m);
    auto out = ApplyOk(*m, "t", c.payload);
    EXPECT_TRUE(out.readings.empty()) << c.payload;
    ASSERT_EQ(out.rejected.size(), 1u) << c.payload;
    EXPECT_FALSE(out.rejected[0].field.has_value());
    EXPECT_EQ(out.rejected[0].error.code(), "MAPPING_TIMESTAMP") << c.payload;
    EXPECT_EQ(out.rejected[0].error.pointer(), "/ts");
    EXPECT_NE(out.rejected[0].error.message().find(c.needle), std::string::npos)
        << c.payload << ": " << out.rejected[0].error.message();
  }
  // Optional: absent means arrival time; present but bad is still an error.
  auto m = WithTimestamp("unix-ms", true);
  ASSERT_TRUE(m);
  auto absent = ApplyOk(*m, "t", R"({"v": 1})");
  ASSERT_EQ(absent.readings.size(), 1u);
  EXPECT_EQ(absent.readings[0].source_time, kArrival);
  EXPECT_EQ(ApplyOk(*m, "t", R"({"v": 1, "ts": "x"})").rejected.at(0).error.code(),
            "MAPPING_TIMESTAMP");
}

// ---- Apply: number ---------------------------------------------------------------------------

TEST(MappingApply, NumberFormat) {
  auto m = Make(R"({"id":"a","topic":"plant/{machine}/speed","twin":"{machine}","format":"number",
      "fields":[{"element":"spindleSpeed"}]})");
  ASSERT_TRUE(m);
  struct Good {
    const char* payload;
    json::value expected;
  };
  for (const Good& g : {Good{"21.5", 21.5}, Good{" 42\n", 42}, Good{"-7", -7}, Good{"1e3", 1000.0},
                        Good{".5", 0.5}, Good{"5.", 5.0}, Good{"-0.25E-2", -0.0025},
                        Good{"18446744073709551615", json::value(18446744073709551615ull)},
                        Good{"1e-400", 0.0}, Good{"true", true}, Good{"false", false}}) {
    auto out = ApplyOk(*m, "plant/m3/speed", g.payload);
    ASSERT_EQ(out.readings.size(), 1u) << g.payload << ": " << Rejections(out);
    EXPECT_EQ(out.readings[0].value, g.expected) << g.payload;
    EXPECT_EQ(out.readings[0].value.kind(), g.expected.kind()) << g.payload;
    EXPECT_EQ(out.readings[0].twin, "m3");
    EXPECT_EQ(out.readings[0].element, "spindleSpeed");
    EXPECT_EQ(out.readings[0].origin, "mqtt plant/m3/speed");
    EXPECT_EQ(out.readings[0].source_time, kArrival);
  }
  EXPECT_TRUE(
      ApplyOk(*m, "plant/m3/speed", "99999999999999999999").readings.at(0).value.is_double());
  for (const char* bad :
       {"NaN", "nan", "inf", "-Infinity", "0x10", "+1", "1e400", "-1e400", "", "  ", "1.2.3", "1e",
        "-", ".", "12 13", "\"12\"", "{\"v\":1}", "TRUE", "1,5"}) {
    auto out = ApplyOk(*m, "plant/m3/speed", bad);
    EXPECT_TRUE(out.readings.empty()) << bad;
    ASSERT_EQ(out.rejected.size(), 1u) << bad;
    EXPECT_EQ(out.rejected[0].error.code(), "MAPPING_PAYLOAD") << bad;
    EXPECT_FALSE(out.rejected[0].field.has_value());
    EXPECT_EQ(out.rejected[0].element, "spindleSpeed");
  }
  EXPECT_NE(
      ApplyOk(*m, "plant/m3/speed", "1e400").rejected[0].error.message().find("out of the range"),
      std::string::npos);
}

TEST(MappingApply, NumberWithUnitAndRange) {
  auto m = Make(R"({"id":"a","topic":"m/{id}/temp","twin":"{id}","format":"number",
      "model":"dtmi:doppel:example:factory:Machine;1",
      "fields":[{"element":"motorTemperature/temperature","unit":"kelvin","max":100}]})",
                &Models());
  ASSERT_TRUE(m);
  auto out = ApplyOk(*m, "m/x/temp", "373.15");
  ASSERT_EQ(out.readings.size(), 1u) << Rejections(out);
  EXPECT_NEAR(out.readings[0].value.as_double(), 100.0, 1e-12);
  auto hot = ApplyOk(*m, "m/x/temp", "400");
  ASSERT_EQ(hot.rejected.size(), 1u);
  EXPECT_EQ(hot.rejected[0].field, 0u);
  EXPECT_EQ(hot.rejected[0].error.code(), "MAPPING_RANGE");
  EXPECT_EQ(hot.rejected[0].value, "400");
  auto flag = ApplyOk(*m, "m/x/temp", "true");
  ASSERT_EQ(flag.rejected.size(), 1u);
  EXPECT_EQ(flag.rejected[0].error.code(), "MAPPING_PAYLOAD");
}

TEST(MappingApply, TopicThatDoesNotMatch) {
  auto m = Telemetry();
  ASSERT_TRUE(m);
  auto r = m->Apply("plant/l1/m3/status", "{}", kArrival);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "MAPPING_NO_MATCH");
  EXPECT_TRUE(m->Matches("plant/l1/m3/telemetry"));
  EXPECT_FALSE(m->Matches("plant/l1/m3/status"));
}

// ---- Apply: line protocol --------------------------------------------------------------------

TEST(MappingApply, LineProtocolWithTagCapture) {
  auto m = Make(R"({"id":"lp","topic":"telegraf/{host}","twin":"{tag:machine}",
      "format":"line-protocol","measurement":"machine","precision":"ms",
      "model":"dtmi:doppel:example:factory:Machine;1",
      "fields":[{"field":"rpm","element":"spindleSpeed"},
                {"field":"temp_f","element":"motorTemperature/temperature",
                 "unit":"degreeFahrenheit"},
                {"field":"parts","element":"partsProduced","optional":true}]})",
                &Models());
  ASSERT_TRUE(m);
  EXPECT_EQ(m->subscription_filter(), "telegraf/+");
  const std::string payload =
      "machine,machine=m1,line=l1 rpm=1500i,temp_f=212,parts=3i 1717163100123\n"
      "machine,machine=m2 rpm=1400.5,temp_f=32\n"
      "cpu,host=a usage=0.5 1717163100000\n"
      "machine,machine=m3 rpm=\n"
      "machine,line=l1 rpm=1i\n"
      "machine,machine=m4 temp_f=50\n"
      "machine,machine=m5 rpm=\"fast\" 1717163100000\n";
  auto out = ApplyOk(*m, "telegraf/gw1", payload);
  EXPECT_EQ(out.skipped_lines, 1u);   // cpu
  EXPECT_EQ(out.skipped_fields, 3u);  // parts of m2, m4 and m5
  ASSERT_EQ(out.readings.size(), 7u) << Rejections(out);
  EXPECT_EQ(out.readings[0].twin, "m1");
  EXPECT_EQ(out.readings[0].element, "spindleSpeed");
  EXPECT_TRUE(out.readings[0].value.is_int64());
  EXPECT_EQ(out.readings[0].value.get_int64(), 1500);
  EXPECT_EQ(out.readings[0].source_time, At("2024-05-31T13:45:00.123Z"));
  EXPECT_EQ(out.readings[0].origin, "mqtt telegraf/gw1 line 1 field rpm");
  EXPECT_EQ(out.readings[1].value.get_double(), 100.0);
  EXPECT_EQ(out.readings[2].element, "partsProduced");
  EXPECT_EQ(out.readings[3].twin, "m2");
  EXPECT_EQ(out.readings[3].source_time, kArrival);  // no timestamp in the line
  EXPECT_EQ(out.readings[4].value.get_double(), 0.0);
  EXPECT_EQ(out.readings[5].twin, "m4");  // its rpm is missing, its temp_f is not
  EXPECT_EQ(out.readings[5].value.get_double(), 10.0);
  // m5's rpm is a string: passed on (the Ingestor rejects it against the model).
  EXPECT_EQ(out.readings[6].twin, "m5");
  EXPECT_EQ(out.readings[6].value, "fast");
  // Rejections: line 4 is bad line protocol; line 5 has no machine tag; m4 has no rpm; m5 no
  // temp_f.
  ASSERT_EQ(out.rejected.size(), 4u) << Rejections(out);
  EXPECT_FALSE(out.rejected[0].field.has_value());
  EXPECT_EQ(out.rejected[0].error.code(), "MAPPING_PAYLOAD");
  EXPECT_NE(out.rejected[0].error.message().find("LP_BAD_FIELD_VALUE"), std::string::npos)
      << out.rejected[0].error.message();
  EXPECT_EQ(out.rejected[0].origin, "mqtt telegraf/gw1 line 4");
  EXPECT_NE(out.rejected[1].error.message().find("line 5 has no tag 'machine'"), std::string::npos)
      << out.rejected[1].error.message();
  EXPECT_EQ(out.rejected[2].field, 0u);
  EXPECT_EQ(out.rejected[2].twin, "m4");
  EXPECT_NE(out.rejected[2].error.message().find("no field 'rpm'"), std::string::npos);
  EXPECT_EQ(out.rejected[3].field, 1u);
  EXPECT_EQ(out.rejected[3].twin, "m5");
}

TEST(MappingApply, LineProtocolEveryField) {
  auto m =
      Make(R"({"id":"lp","topic":"lp/{machine}","twin":"{machine}","format":"line-protocol"})");
  ASSERT_TRUE(m);
  auto out = ApplyOk(*m, "lp/m9", "anything,sensor=s1 temperature=21.5,running=true,count=3u 5\n");
  ASSERT_EQ(out.readings.size(), 3u) << Rejections(out);
  EXPECT_EQ(out.readings[0].twin, "m9");
  EXPECT_EQ(out.readings[0].element, "temperature");
  EXPECT_EQ(out.readings[0].value, 21.5);
  EXPECT_EQ(out.readings[1].element, "running");
  EXPECT_EQ(out.readings[1].value, true);
  EXPECT_TRUE(out.readings[2].value.is_uint64());
  EXPECT_EQ(out.readings[0].source_time->time_since_epoch(), std::chrono::nanoseconds(5));
  EXPECT_EQ(out.readings[2].origin, "mqtt lp/m9 line 1 field count");
  EXPECT_TRUE(ApplyOk(*m, "lp/m9", "").readings.empty());
}

TEST(MappingApply, LineProtocolElementFromTagsAndDefaults) {
  auto m = Make(R"({"id":"lp","topic":"lp","twin":"plant-{tag:plant}","format":"line-protocol",
      "fields":[{"field":"value","element":"{tag:sensor}","unit":"bar","targetUnit":"kilopascal",
                 "min":0},
                {"field":"status"}]})");
  ASSERT_TRUE(m);
  auto out = ApplyOk(*m, "lp",
                     "p,plant=a,sensor=inlet value=2.5,status=\"ok\"\n"
                     "p,plant=a value=-1\n"
                     "p,plant=a,sensor=x value=-1\n");
  ASSERT_EQ(out.readings.size(), 2u) << Rejections(out);
  EXPECT_EQ(out.readings[0].twin, "plant-a");
  EXPECT_EQ(out.readings[0].element, "inlet");
  EXPECT_EQ(out.readings[0].value, 250.0);
  EXPECT_EQ(out.readings[1].element, "status");  // element defaults to the field key
  ASSERT_EQ(out.rejected.size(), 4u) << Rejections(out);
  EXPECT_NE(out.rejected[0].error.message().find("no tag 'sensor'"), std::string::npos);
  EXPECT_EQ(out.rejected[1].error.code(), "MAPPING_PAYLOAD");  // line 2 has no status
  EXPECT_EQ(out.rejected[2].error.code(), "MAPPING_RANGE");    // -100 kPa < 0
  EXPECT_EQ(out.rejected[2].element, "x");
  EXPECT_EQ(out.rejected[3].error.code(), "MAPPING_PAYLOAD");
}

// ---- MappingSet ------------------------------------------------------------------------------

Mapping Simple(std::string_view id, std::string_view topic, int qos = 1) {
  auto m = Mapping::Parse(
      std::string_view("{\"id\":\"" + std::string(id) + "\",\"topic\":\"" + std::string(topic) +
                       "\",\"twin\":\"x\",\"qos\":" + std::to_string(qos) +
                       ",\"fields\":[{\"pointer\":\"/v\",\"element\":\"e\"}]}"),
      nullptr);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return std::move(*m);
}

TEST(MappingSet, PutGetListRemoveMatch) {
  MappingSet set;
  EXPECT_EQ(set.Put(Simple("b", "plant/+/telemetry")), nullptr);
  EXPECT_EQ(set.Put(Simple("a", "plant/#", 0)), nullptr);
  EXPECT_EQ(set.Put(Simple("c", "other/{x}")), nullptr);
  EXPECT_EQ(set.size(), 3u);
  auto old = set.Put(Simple("c", "plant/{m}/telemetry", 0));
  ASSERT_NE(old, nullptr);
  EXPECT_EQ(old->topic().pattern(), "other/{x}");
  EXPECT_EQ(set.size(), 3u);
  ASSERT_NE(set.Get("c"), nullptr);
  EXPECT_EQ(set.Get("c")->topic().pattern(), "plant/{m}/telemetry");
  EXPECT_EQ(set.Get("zz"), nullptr);

  auto list = set.List();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0]->id(), "a");
  EXPECT_EQ(list[2]->id(), "c");

  auto matched = set.Match("plant/m1/telemetry");
  ASSERT_EQ(matched.size(), 3u);
  EXPECT_EQ(set.Match("plant").size(), 1u);
  EXPECT_TRUE(set.Match("elsewhere").empty());

  EXPECT_EQ(set.Subscriptions(),
            (std::vector<std::pair<std::string, int>>{{"plant/#", 0}, {"plant/+/telemetry", 1}}));

  auto removed = set.Remove("b");
  ASSERT_NE(removed, nullptr);
  EXPECT_EQ(removed->id(), "b");
  EXPECT_EQ(set.Remove("b"), nullptr);
  EXPECT_EQ(set.size(), 2u);
  EXPECT_EQ(set.Subscriptions(),
            (std::vector<std::pair<std::string, int>>{{"plant/#", 0}, {"plant/+/telemetry", 0}}));
  // A mapping handed out stays valid after removal.
  EXPECT_EQ(matched[1]->id(), "b");
  EXPECT_TRUE(matched[1]->Matches("plant/x/telemetry"));
}

TEST(MappingSet, ConcurrentReadersAndWriters) {
  MappingSet set;
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> matches{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        for (const auto& m : set.Match("plant/m1/telemetry")) {
          auto out = m->Apply("plant/m1/telemetry", R"({"v": 1})", kArrival);
          if (out.ok() && out->readings.size() == 1) matches.fetch_add(1);
        }
      }
    });
  }
  for (int i = 0; i < 200; ++i) {
    set.Put(Simple("m" + std::to_string(i % 7), "plant/+/telemetry"));
    if (i % 3 == 0) set.Remove("m" + std::to_string((i + 1) % 7));
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_LE(set.size(), 7u);
}

}  // namespace
}  // namespace doppel::sync
