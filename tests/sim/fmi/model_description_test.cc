// modelDescription.xml parsing: both versions' layouts, defaults, and exact errors.
#include "sim/fmi/model_description.h"

#include <gtest/gtest.h>

namespace doppel::sim::fmi {
namespace {

TEST(ModelDescriptionTest, Fmi2ScalarVariables) {
  auto md = ParseModelDescription(R"xml(<?xml version="1.0"?>
<fmiModelDescription fmiVersion="2.0" modelName="m" guid="{g}" generationTool="t">
  <ModelExchange modelIdentifier="m"/>
  <CoSimulation modelIdentifier="m_cs" canHandleVariableCommunicationStepSize="true"
                needsExecutionTool="false"/>
  <DefaultExperiment startTime="1" stopTime="2" tolerance="1e-6" stepSize="0.5"/>
  <ModelVariables>
    <ScalarVariable name="x" valueReference="3" causality="local" initial="exact">
      <Real start="1.5" unit="m"/></ScalarVariable>
    <ScalarVariable name="der(x)" valueReference="4"><Real derivative="1"/></ScalarVariable>
    <ScalarVariable name="n" valueReference="5" causality="parameter" variability="fixed">
      <Integer start="+7"/></ScalarVariable>
    <ScalarVariable name="b" valueReference="6" causality="input"><Boolean start="true"/></ScalarVariable>
    <ScalarVariable name="s" valueReference="7" causality="input"><String start="hi"/></ScalarVariable>
    <ScalarVariable name="e" valueReference="8" causality="output">
      <Enumeration declaredType="E"/></ScalarVariable>
  </ModelVariables>
</fmiModelDescription>)xml");
  ASSERT_TRUE(md.ok()) << md.status().ToString();
  EXPECT_EQ(md->version, FmiVersion::kFmi2);
  EXPECT_EQ(md->instantiation_token, "{g}");
  EXPECT_TRUE(md->has_model_exchange);
  ASSERT_TRUE(md->co_simulation);
  EXPECT_EQ(md->co_simulation->model_identifier, "m_cs");
  EXPECT_TRUE(md->co_simulation->can_handle_variable_communication_step_size);
  EXPECT_EQ(md->experiment.start_time, 1.0);
  EXPECT_EQ(md->experiment.tolerance, 1e-6);
  ASSERT_EQ(md->variables.size(), 6u);
  EXPECT_TRUE(md->variables[0].is_state);
  EXPECT_EQ(md->variables[0].unit, "m");
  EXPECT_EQ(md->variables[0].start, Value(1.5));
  EXPECT_FALSE(md->variables[1].is_state);
  EXPECT_EQ(md->variables[1].variability, "continuous");
  EXPECT_EQ(md->variables[2].type, FmiType::kInt32);
  EXPECT_EQ(md->variables[2].start, Value(std::int64_t{7}));
  EXPECT_EQ(md->variables[3].start, Value(true));
  EXPECT_EQ(md->variables[4].start, Value(std::string("hi")));
  EXPECT_EQ(md->variables[5].type, FmiType::kEnumeration);
  EXPECT_FALSE(md->variables[5].start);
}

TEST(ModelDescriptionTest, Fmi3Variables) {
  auto md = ParseModelDescription(R"xml(<fmiModelDescription fmiVersion="3.0.1" modelName="m"
      instantiationToken="tok">
  <CoSimulation modelIdentifier="m" hasEventMode="true"/>
  <ModelVariables>
    <Float64 name="time" valueReference="0" causality="independent"/>
    <Float32 name="x" valueReference="1" start="0.5"/>
    <Float64 name="der(x)" valueReference="2" derivative="1"/>
    <UInt64 name="u" valueReference="3" start="18446744073709551615"/>
    <Int8 name="i" valueReference="4" start="-8"/>
    <String name="s" valueReference="5"><Start value="hello"/></String>
    <Float64 name="a" valueReference="6" start="1 2 3"><Dimension start="3"/></Float64>
    <Binary name="bin" valueReference="7"/>
    <Boolean name="flag" valueReference="8" start="false"/>
  </ModelVariables>
</fmiModelDescription>)xml");
  ASSERT_TRUE(md.ok()) << md.status().ToString();
  EXPECT_EQ(md->version, FmiVersion::kFmi3);
  EXPECT_EQ(md->instantiation_token, "tok");
  EXPECT_TRUE(md->co_simulation->has_event_mode);
  EXPECT_EQ(md->skipped, 3u);  // time, the array, the binary
  ASSERT_EQ(md->variables.size(), 6u);
  EXPECT_EQ(md->variables[0].name, "x");
  EXPECT_TRUE(md->variables[0].is_state);
  EXPECT_EQ(md->variables[0].type, FmiType::kFloat32);
  EXPECT_FALSE(md->variables[2].start);  // UInt64 above INT64_MAX: no sim::Value
  EXPECT_EQ(md->variables[3].start, Value(std::int64_t{-8}));
  EXPECT_EQ(md->variables[3].variability, "discrete");
  EXPECT_EQ(md->variables[4].start, Value(std::string("hello")));
  EXPECT_EQ(md->variables[5].start, Value(false));
}

struct BadCase {
  const char* name;
  const char* xml;
  const char* code;
  const char* in_message;
};

class ModelDescriptionErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(ModelDescriptionErrorTest, ExactCode) {
  auto md = ParseModelDescription(GetParam().xml, "f.fmu:modelDescription.xml");
  ASSERT_FALSE(md.ok());
  EXPECT_EQ(md.status().code(), GetParam().code);
  EXPECT_NE(md.status().message().find(GetParam().in_message), std::string::npos)
      << md.status().message();
  EXPECT_EQ(md.status().message().rfind("f.fmu:modelDescription.xml: ", 0), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ModelDescriptionErrorTest,
    ::testing::Values(
        BadCase{"Malformed", "<fmiModelDescription fmiVersion=\"2.0\">\n  <Co\n",
                "FMI_BAD_MODEL_DESCRIPTION", "line 2, column 6: malformed XML"},
        BadCase{"Empty", "", "FMI_BAD_MODEL_DESCRIPTION", "malformed XML"},
        BadCase{"WrongRoot", "<model/>", "FMI_BAD_MODEL_DESCRIPTION", "<fmiModelDescription>"},
        BadCase{"Fmi1", "<fmiModelDescription fmiVersion=\"1.0\" guid=\"g\"/>",
                "FMI_UNSUPPORTED_VERSION", "\"1.0\""},
        BadCase{"NoVersion", "<fmiModelDescription guid=\"g\"/>", "FMI_UNSUPPORTED_VERSION",
                "\"\""},
        BadCase{"NoGuid", "<fmiModelDescription fmiVersion=\"2.0\"/>", "FMI_BAD_MODEL_DESCRIPTION",
                "no guid"},
        BadCase{"NoToken", "<fmiModelDescription fmiVersion=\"3.0\" guid=\"g\"/>",
                "FMI_BAD_MODEL_DESCRIPTION", "no instantiationToken"},
        BadCase{"NoIdentifier",
                "<fmiModelDescription fmiVersion=\"2.0\" guid=\"g\"><CoSimulation/>"
                "</fmiModelDescription>",
                "FMI_BAD_MODEL_DESCRIPTION", "modelIdentifier"},
        BadCase{"BadBoolean",
                "<fmiModelDescription fmiVersion=\"2.0\" guid=\"g\"><CoSimulation "
                "modelIdentifier=\"m\" canHandleVariableCommunicationStepSize=\"yes\"/>"
                "</fmiModelDescription>",
                "FMI_BAD_MODEL_DESCRIPTION", "is not a boolean"},
        BadCase{"BadStopTime",
                "<fmiModelDescription fmiVersion=\"2.0\" guid=\"g\"><DefaultExperiment "
                "stopTime=\"soon\"/></fmiModelDescription>",
                "FMI_BAD_MODEL_DESCRIPTION", "stopTime=\"soon\""},
        BadCase{"NoValueReference",
                "<fmiModelDescription fmiVersion=\"3.0\" instantiationToken=\"g\"><ModelVariables>"
                "<Float64 name=\"x\"/></ModelVariables></fmiModelDescription>",
                "FMI_BAD_MODEL_DESCRIPTION", "valueReference"},
        BadCase{"IntegerStartNotInteger",
                "<fmiModelDescription fmiVersion=\"3.0\" instantiationToken=\"g\"><ModelVariables>"
                "<Int32 name=\"n\" valueReference=\"1\" start=\"1.5\"/></ModelVariables>"
                "</fmiModelDescription>",
                "FMI_BAD_MODEL_DESCRIPTION", "start=\"1.5\" is not a valid Int32"},
        BadCase{"NoName",
                "<fmiModelDescription fmiVersion=\"2.0\" guid=\"g\"><ModelVariables>"
                "<ScalarVariable valueReference=\"1\"><Real/></ScalarVariable></ModelVariables>"
                "</fmiModelDescription>",
                "FMI_BAD_MODEL_DESCRIPTION", "has no name"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace doppel::sim::fmi
