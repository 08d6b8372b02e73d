// Live RUL end to end, as a user runs it: `doppel train rul --quick`, `doppel serve --rul-model`,
// the Engine model and a twin over the API, `doppel replay cmapss` for one FD001 test engine,
// then the twin, its /rul, and the RUL's history.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "analytics/rul/test_data.h"
#include "api/http_test_client.h"

extern char** environ;

namespace doppel::analytics::rul {
namespace {

namespace json = boost::json;
using testing::CmapssDir;

constexpr const char* kEngineModel = "dtmi:doppel:example:turbofan:Engine;1";

class LiveRulCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bin_ = std::getenv("DOPPEL_BINARY") != nullptr ? std::getenv("DOPPEL_BINARY") : "";
    ASSERT_FALSE(bin_.empty()) << "DOPPEL_BINARY is not set (run through ctest)";
    std::filesystem::create_directories(dir_ / "data");
    testing::WriteFile(dir_ / "data" / "train_FD001.txt",
                       testing::FirstUnits(CmapssDir() / "train_FD001.txt", 20));
    testing::WriteFile(dir_ / "test.txt", testing::FirstUnits(CmapssDir() / "test_FD001.txt", 2));
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  // Runs the doppel binary; exit code, stdout in *out.
  int Run(const std::string& args, std::string* out = nullptr) {
    const std::string o = (dir_ / "stdout").string(), e = (dir_ / "stderr").string();
    const int status = std::system((bin_ + " " + args + " >" + o + " 2>" + e).c_str());
    if (out != nullptr) *out = testing::ReadAll(o);
    err_ = testing::ReadAll(e);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // Starts `doppel serve` on a free port; the port, or 0.
  std::uint16_t Serve() {
    const std::string port_file = (dir_ / "port").string(), log = (dir_ / "serve.log").string();
    std::vector<std::string> args = {bin_,         "serve",       "--data-dir",  Path("store"),
                                     "--listen",   "127.0.0.1:0", "--port-file", port_file,
                                     "--insecure", "--fsync",     "never",       "--rul-model",
                                     Path("model")};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    const int rc = posix_spawn(&pid_, bin_.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return 0;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < give_up) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "doppel serve exited:\n" << testing::ReadAll(log);
        return 0;
      }
      const std::string text = testing::ReadAll(port_file);
      if (!text.empty() && text.back() == '\n') return static_cast<std::uint16_t>(std::stoi(text));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "no port file after 60 s:\n" << testing::ReadAll(log);
    return 0;
  }

  std::string Path(const std::string& name) { return (dir_ / name).string(); }

  testing::ScratchDir dir_;
  std::string bin_, err_;
  pid_t pid_ = -1;
};

TEST_F(LiveRulCliTest, ReplayedEngineGetsItsRul) {
  ASSERT_EQ(Run("train rul --quick --data " + Path("data") + " --out " + Path("model")), 0) << err_;
  const std::uint16_t port = Serve();
  ASSERT_NE(port, 0);
  apitest::HttpClient http(port);

  const std::string engine = testing::ReadAll(std::filesystem::path(DOPPEL_SOURCE_DIR) /
                                              "examples/models/turbofan/Engine.json");
  auto r = http.Post("/models", "[" + engine + "]");
  ASSERT_EQ(r.status, 201u) << r.body;
  const std::string twin_body =
      json::serialize(json::object{{"$metadata", {{"$model", kEngineModel}}}});
  ASSERT_EQ(http.Put("/digitaltwins/engine-1", twin_body).status, 200u);
  ASSERT_EQ(http.Put("/digitaltwins/engine-2", twin_body).status, 200u);

  // No prediction yet; no such twin.
  r = http.Get("/digitaltwins/engine-1/rul");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.json().at("code").as_string(), "RUL_NO_PREDICTION") << r.body;
  r = http.Get("/digitaltwins/nosuch/rul");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.json().at("code").as_string(), "TWIN_NOT_FOUND") << r.body;

  std::string out;
  ASSERT_EQ(Run("replay cmapss --data " + Path("test.txt") +
                    " --unit 1 --twin engine-1 --url "
                    "http://127.0.0.1:" +
                    std::to_string(port),
                &out),
            0)
      << err_;
  EXPECT_NE(out.find("replayed 31 cycles (1..31) of unit 1"), std::string::npos) << out;

  // Predictions run on their own thread: wait for the one of the last cycle.
  json::value rul;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    r = http.Get("/digitaltwins/engine-1/rul");
    if (r.status == 200 && r.json().at("cycle").to_number<int>() == 31) {
      rul = r.json();
      break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), give_up) << r.status << " " << r.body;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double value = rul.at("rul").to_number<double>();
  EXPECT_EQ(rul.at("cycles").to_number<int>(), 31);
  const json::array& intervals = rul.at("intervals").as_array();
  ASSERT_EQ(intervals.size(), 2u);
  EXPECT_EQ(intervals[0].at("level").to_number<double>(), 0.8);
  EXPECT_LE(intervals[1].at("low").to_number<double>(), intervals[0].at("low").to_number<double>());
  EXPECT_LE(intervals[0].at("low").to_number<double>(), value);
  EXPECT_LE(value, intervals[0].at("high").to_number<double>());
  EXPECT_LE(intervals[0].at("high").to_number<double>(),
            intervals[1].at("high").to_number<double>());
  const json::array& factors = rul.at("factors").as_array();
  ASSERT_FALSE(factors.empty()) << rul;
  const std::string top(factors[0].at("sensor").as_string());
  EXPECT_TRUE(top == "cycle" || (top.size() >= 2 && top[0] == 's')) << rul;
  EXPECT_EQ(rul.at("model").at("path").as_string(), Path("model"));
  EXPECT_EQ(rul.at("model").at("trainedOn").at("engines").to_number<int>(), 20);

  // The twin carries the same values.
  r = http.Get("/digitaltwins/engine-1");
  ASSERT_EQ(r.status, 200u);
  const json::value twin = r.json();
  EXPECT_EQ(twin.at("remainingUsefulLife").to_number<double>(), value) << r.body;
  EXPECT_EQ(twin.at("rulLow95").to_number<double>(), intervals[1].at("low").to_number<double>());
  EXPECT_EQ(twin.at("rulHigh95").to_number<double>(), intervals[1].at("high").to_number<double>());
  EXPECT_EQ(twin.at("cycle").to_number<int>(), 31);
  EXPECT_EQ(twin.at("$metadata").at("remainingUsefulLife").at("sourceTime"),
            twin.at("$metadata").at("cycle").at("sourceTime"))
      << r.body;

  // As `doppel predict rul` says for unit 1 at its last cycle (printed to 0.1).
  ASSERT_EQ(Run("predict rul --model " + Path("model") + " --data " + Path("test.txt"), &out), 0)
      << err_;
  std::istringstream lines(out);
  std::string header, line;
  std::getline(lines, header);
  std::getline(lines, line);
  std::istringstream unit1(line);
  int unit = 0, cycles = 0;
  double predicted = 0;
  unit1 >> unit >> cycles >> predicted;
  EXPECT_EQ(unit, 1);
  EXPECT_EQ(cycles, 31);
  EXPECT_NEAR(value, predicted, 0.051) << out;

  // History holds the written RULs (cycles 30 and 31, unless cycle 30's was coalesced), the last
  // one the current value.
  r = http.Get("/digitaltwins/engine-1/history/remainingUsefulLife");
  ASSERT_EQ(r.status, 200u) << r.body;
  const json::value h = r.json();
  const json::array* points = nullptr;
  if (h.is_object() && h.as_object().contains("points")) {
    points = &h.at("points").as_array();
  } else if (h.is_object() && h.as_object().contains("series")) {
    points = &h.at("series").as_array().at(0).at("points").as_array();
  }
  ASSERT_NE(points, nullptr) << r.body;
  ASSERT_GE(points->size(), 1u) << r.body;
  ASSERT_LE(points->size(), 2u) << r.body;
  EXPECT_EQ(points->back().as_array().at(1).to_number<double>(), value) << r.body;

  // The other engine has no readings: no prediction.
  r = http.Get("/digitaltwins/engine-2/rul");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.json().at("code").as_string(), "RUL_NO_PREDICTION") << r.body;
}

TEST_F(LiveRulCliTest, ReplayReportsBadInput) {
  std::string out;
  EXPECT_EQ(
      Run("replay cmapss --data " + Path("test.txt") + " --unit 7 --url http://127.0.0.1:1", &out),
      1);
  EXPECT_NE(err_.find("RUL_BAD_DATA"), std::string::npos) << err_;
  EXPECT_NE(err_.find("no rows of unit 7"), std::string::npos) << err_;
  // Nothing listens on port 1.
  EXPECT_EQ(
      Run("replay cmapss --data " + Path("test.txt") + " --unit 1 --url http://127.0.0.1:1", &out),
      1);
  EXPECT_NE(err_.find("error:"), std::string::npos) << err_;
}

}  // namespace
}  // namespace doppel::analytics::rul
