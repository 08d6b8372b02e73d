#include "api/problem.h"

#include <boost/json.hpp>
#include <string>

namespace doppel::api {

unsigned HttpStatusFor(std::string_view code) {
  struct Entry {
    std::string_view code;
    unsigned status;
  };
  static constexpr Entry kTable[] = {
      {"TWIN_NOT_FOUND", 404},
      {"RELATIONSHIP_NOT_FOUND", 404},
      {"MODEL_NOT_FOUND", 404},
      {"COMPONENT_NOT_FOUND", 404},
      {"ROUTE_NOT_FOUND", 404},
      {"JOB_NOT_FOUND", 404},
      {"KEY_NOT_FOUND", 404},
      {"METHOD_NOT_ALLOWED", 405},
      {"PRECONDITION_FAILED", 412},
      {"MODEL_IN_USE", 409},
      {"MODEL_ALREADY_EXISTS", 409},
      {"TWIN_HAS_RELATIONSHIPS", 409},
      {"UNAUTHORIZED", 401},
      {"FORBIDDEN", 403},
      {"PAYLOAD_TOO_LARGE", 413},
      {"JSON_TOO_LARGE", 413},
      {"UNSUPPORTED_MEDIA_TYPE", 415},
      {"QUERY_TIMEOUT", 408},
      {"STORE_IO", 503},
      {"SHUTTING_DOWN", 503},
      {"STORE_CORRUPT", 500},
      {"INTERNAL", 500},
      {"UPGRADE_REQUIRED", 426},
      {"HISTORY_UNKNOWN_ELEMENT", 404},
      {"HISTORY_DISABLED", 501},
      {"TSDB_CHUNK_CORRUPT", 500},
      {"TSDB_IO", 503},
      {"MAPPING_NOT_FOUND", 404},
      {"DESIRED_UNKNOWN_ELEMENT", 404},
      {"COMMAND_UNKNOWN", 404},
      {"COMMAND_TIMEOUT", 504},
      {"COMMAND_BAD_RESPONSE", 502},
      {"DEVICE_NO_ROUTE", 409},
      {"DEVICE_OFFLINE", 503},
      {"SCENARIO_NOT_FOUND", 404},
      {"SCENARIO_RUN_NOT_FOUND", 404},
      {"SCENARIO_RUN_NOT_FINISHED", 409},
      {"SCENARIO_TOO_MANY_RUNS", 429},
      {"ESTIMATOR_NOT_FOUND", 404},
      {"ESTIMATOR_DISABLED", 404},
      {"FORECAST_NO_DATA", 404},
      {"FORECAST_NO_MODEL", 404},
      {"FORECAST_TOO_SHORT", 422},
      {"FORECAST_GAPS", 422},
      {"FORECAST_BAD_VALUE", 422},
      {"FORECAST_XGBOOST", 500},
      {"FORECAST_MODEL_IO", 500},
      {"FORECAST_SCHEDULE_NOT_FOUND", 404},
      {"FORECAST_BUSY", 503},
      {"SCENE_NOT_FOUND", 404},
      {"RUL_NO_PREDICTION", 404},
  };
  for (const auto& e : kTable) {
    if (e.code == code) return e.status;
  }
  return 400;
}

boost::json::value ProblemJson(const core::Status& s, unsigned http_status,
                               std::string_view instance) {
  std::string type = "urn:doppel:problem:";
  for (char c : s.code()) type += c == '_' ? '-' : static_cast<char>(std::tolower(c));
  boost::json::object o{{"type", type},     {"title", s.code()},     {"status", http_status},
                        {"code", s.code()}, {"detail", s.message()}, {"instance", instance}};
  if (!s.pointer().empty()) o["pointer"] = s.pointer();
  if (!s.details().empty()) {
    boost::json::array errors;
    for (const auto& d : s.details()) {
      boost::json::object e{{"code", d.code()}, {"message", d.message()}};
      if (!d.pointer().empty()) e["pointer"] = d.pointer();
      errors.push_back(std::move(e));
    }
    o["errors"] = std::move(errors);
  }
  return o;
}

}  // namespace doppel::api
