#include "api/metrics.h"

#include <fmt/format.h>

namespace doppel::api {

void Metrics::ObserveRequest(std::string_view method, std::string_view route, unsigned status,
                             double seconds) {
  std::lock_guard lock(mu_);
  ++requests_[{std::string(method), std::string(route), status}];
  Histogram& h = latency_[{std::string(method), std::string(route)}];
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  }
  ++h.count;
  h.sum += seconds;
}

std::string Metrics::Render(std::string_view extra) const {
  std::string out;
  out += "# HELP doppel_http_requests_total HTTP requests by method, route and status.\n";
  out += "# TYPE doppel_http_requests_total counter\n";
  std::lock_guard lock(mu_);
  for (const auto& [k, n] : requests_) {
    out +=
        fmt::format("doppel_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}\n",
                    std::get<0>(k), std::get<1>(k), std::get<2>(k), n);
  }
  out += "# HELP doppel_http_request_duration_seconds Time to answer a request.\n";
  out += "# TYPE doppel_http_request_duration_seconds histogram\n";
  for (const auto& [k, h] : latency_) {
    std::string labels = fmt::format("method=\"{}\",route=\"{}\"", k.first, k.second);
    for (std::size_t i = 0; i < kBuckets.size(); ++i) {
      out += fmt::format("doppel_http_request_duration_seconds_bucket{{{},le=\"{}\"}} {}\n", labels,
                         kBuckets[i], h.buckets[i]);
    }
    out += fmt::format("doppel_http_request_duration_seconds_bucket{{{},le=\"+Inf\"}} {}\n", labels,
                       h.count);
    out += fmt::format("doppel_http_request_duration_seconds_sum{{{}}} {}\n", labels, h.sum);
    out += fmt::format("doppel_http_request_duration_seconds_count{{{}}} {}\n", labels, h.count);
  }
  out += extra;
  return out;
}

}  // namespace doppel::api
