// Live remaining useful life over HTTP (analytics/rul/live.h; `doppel serve --rul-model <dir>`).
//
//   GET /digitaltwins/{id}/rul   the twin's latest RUL prediction: {twin, rul, intervals [{level,
//                                low, high}], cycle, at (the cycle's source time), predictedAt,
//                                cycles, base, factors [{sensor, contribution}] (SHAP, largest
//                                |contribution| first), model {path, trainedOn, cvRmse, rulCap,
//                                features}}; TWIN_NOT_FOUND (404), RUL_NO_PREDICTION (404: live
//                                RUL is off, the twin is not followed, or has too few cycles yet)
// The same values are the twin's Properties remainingUsefulLife, rulLow80/rulHigh80 and
// rulLow95/rulHigh95 (GET /digitaltwins/{id}, history, change feed).
#include <fmt/format.h>

#include <boost/json.hpp>
#include <string>

#include "analytics/rul/live.h"
#include "api/problem.h"
#include "api/routes.h"

namespace doppel::api {

namespace json = boost::json;
using core::Status;

void RegisterRulRoutes(const AddRoute& add, RouteContext& ctx) {
  RouteContext* c = &ctx;
  add(
      "GET", "/digitaltwins/{id}/rul", Role::kReader,
      "The twin's latest remaining-useful-life prediction with its intervals and risk factors", "",
      [c](Request& req, const Respond& respond) {
        const std::string& id = req.params[0];
        if (!c->services.graph->FindTwin(id)) {
          return respond(Problem(twin::TwinNotFound(id), req));
        }
        analytics::LiveRul* live = c->services.rul;
        std::optional<analytics::LiveRulPrediction> p;
        if (live != nullptr) p = live->Latest(id);
        if (!p) {
          const Status s(
              "RUL_NO_PREDICTION",
              live == nullptr
                  ? std::string("live RUL is off (start the server with --rul-model <dir>)")
                  : fmt::format("no RUL prediction for twin '{}' yet: live RUL follows twins of "
                                "model {} and predicts once {} complete cycles have arrived",
                                id, live->options().model_id, live->model().info().windows.back()));
          return respond(Problem(s, req));
        }
        respond(Reply::Json(200, live->ToJson(*p)));
      },
      false);
}

}  // namespace doppel::api
