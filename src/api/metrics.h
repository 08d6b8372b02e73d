// doppel::api — request metrics in Prometheus text format (exposition format 0.0.4).
#pragma once

#include <array>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>

namespace doppel::api {

class Metrics {
 public:
  // One finished request: `route` is the route template ("/digitaltwins/{id}").
  void ObserveRequest(std::string_view method, std::string_view route, unsigned status,
                      double seconds);

  // doppel_http_requests_total{method,route,status}, doppel_http_request_duration_seconds
  // histogram per route, then `extra` (already formatted gauges) appended.
  std::string Render(std::string_view extra) const;

  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

 private:
  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};
    std::uint64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, unsigned>, std::uint64_t> requests_;
  std::map<std::pair<std::string, std::string>, Histogram> latency_;
};

}  // namespace doppel::api
