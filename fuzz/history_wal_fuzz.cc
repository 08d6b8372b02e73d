// libFuzzer target for the history store's write-ahead records (tsdb/history.cc: the record
// format above EncodePoint, DecodeRecord when Open replays the log).
//
// Each input is used two ways:
//   1. as the payload of one record, after a checkpoint, in the log of a store that holds four
//      series (float64, int64, bool, string; ids 1-4): Open must either replay it or refuse with
//      TSDB_CHUNK_CORRUPT "history: write-ahead record 2 is malformed"; after a replay every
//      series reads back in time order with values of its type, one point more than before at
//      least for nothing (a point of an unknown series or of the wrong type is skipped).
//   2. as a recipe for Append calls (series among a few twins and paths, times, values of any
//      type, some of them the wrong type for their series): the store's own records, replayed by
//      a second Open of a copy of the backend taken before any checkpoint, must give back every
//      series bit for bit as the first store reads it, with the same types.
// Besides sanitizer findings, the target aborts when one of these contracts is broken.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tsdb/history.h"

namespace doppel::tsdb {
namespace {

[[noreturn]] void Violation(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "history_wal_fuzz: contract violated: %s\n%s\n", what, detail.c_str());
  std::abort();
}

HistoryOptions Options() {
  HistoryOptions o;
  o.background = false;
  o.chunk_points = 16;  // seals along the way
  o.write_threads = 1;
  return o;
}

std::unique_ptr<HistoryStore> OpenOrDie(HistoryBackend& b) {
  auto h = HistoryStore::Open(b, Options());
  if (!h.ok()) Violation("a store's own backend does not open", h.status().ToString());
  return std::move(*h);
}

std::vector<Point> ReadAll(const HistoryStore& h, const SeriesRef& ref) {
  auto r = h.Read(ref, {});
  if (!r.ok()) Violation("a series does not read", r.status().ToString());
  for (std::size_t i = 1; i < r->size(); ++i) {
    if ((*r)[i].t_ns < (*r)[i - 1].t_ns) Violation("points out of time order");
  }
  return std::move(*r);
}

const SeriesRef kSeries[] = {{"a", "f"}, {"a", "i"}, {"a", "b"}, {"a", "s"}};

// 1. The input as a record replayed after a checkpoint.
void ReplayAsRecord(std::string_view payload) {
  MemoryBackend backend;
  {
    auto h = OpenOrDie(backend);
    const std::vector<Sample> first{{"a", "f", 0, 1.5},
                                    {"a", "i", 0, std::int64_t{7}},
                                    {"a", "b", 0, true},
                                    {"a", "s", 0, std::string("on")}};
    if (!h->Append(first).empty()) Violation("the set-up append failed");
    if (!h->Checkpoint().ok()) Violation("the set-up checkpoint failed");  // record 1 folded
  }
  const LogRecord rec{2, payload};
  if (!backend.AppendLog({&rec, 1}).ok()) Violation("AppendLog failed");
  auto h = HistoryStore::Open(backend, Options());
  if (!h.ok()) {
    if (h.status().code() != "TSDB_CHUNK_CORRUPT" ||
        h.status().message() != "history: write-ahead record 2 is malformed") {
      Violation("a bad record refused with another error", h.status().ToString());
    }
    return;
  }
  const ValueType types[] = {ValueType::kFloat64, ValueType::kInt64, ValueType::kBool,
                             ValueType::kString};
  for (std::size_t k = 0; k < 4; ++k) {
    const std::vector<Point> points = ReadAll(**h, kSeries[k]);
    if (points.empty()) Violation("a series lost its point");
    for (const Point& p : points) {
      if (TypeOf(p.value) != types[k]) Violation("a replayed point of the wrong type");
    }
  }
}

// 2. The input as Append calls whose records replay to what the store holds.
void RoundTrip(FuzzedDataProvider& in) {
  static const char* const kTwins[] = {"a", "b", "c"};
  static const char* const kPaths[] = {"x", "y", "status"};
  MemoryBackend backend;
  auto h = OpenOrDie(backend);
  std::vector<std::string> strings;  // Sample holds views
  strings.reserve(64);
  std::int64_t t = in.ConsumeIntegral<std::int64_t>();
  for (int call = 0; call < 8 && in.remaining_bytes() > 0; ++call) {
    std::vector<Sample> samples;
    const int n = in.ConsumeIntegralInRange<int>(1, 40);
    for (int i = 0; i < n && in.remaining_bytes() > 0; ++i) {
      Sample s;
      s.twin = kTwins[in.ConsumeIntegralInRange<int>(0, 2)];
      s.path = kPaths[in.ConsumeIntegralInRange<int>(0, 2)];
      // The gap: none, forward, back (wrapping at the ends of int64), or anywhere.
      auto step = [&t](std::int64_t d) {
        t = static_cast<std::int64_t>(static_cast<std::uint64_t>(t) +
                                      static_cast<std::uint64_t>(d));
      };
      switch (in.ConsumeIntegralInRange<int>(0, 3)) {
        case 0:
          break;
        case 1:
          step(in.ConsumeIntegralInRange<std::int64_t>(0, 1'000'000'000'000));
          break;
        case 2:
          step(-in.ConsumeIntegralInRange<std::int64_t>(0, 100'000'000'000));
          break;
        default:
          t = in.ConsumeIntegral<std::int64_t>();
          break;
      }
      s.t_ns = t;
      switch (in.ConsumeIntegralInRange<int>(0, 3)) {
        case 0:
          s.value = in.ConsumeFloatingPoint<double>();
          break;
        case 1:
          s.value = in.ConsumeIntegral<std::int64_t>();
          break;
        case 2:
          s.value = in.ConsumeBool();
          break;
        default:
          if (strings.size() < strings.capacity()) {
            strings.push_back(in.ConsumeRandomLengthString(40));
            s.value = strings.back();
          } else {
            s.value = std::string("full");
          }
          break;
      }
      samples.push_back(std::move(s));
    }
    (void)h->Append(samples);  // wrong types are refused per sample; the rest is stored
  }
  MemoryBackend crashed(backend);  // no checkpoint: everything is in records
  auto replayed = HistoryStore::Open(crashed, Options());
  if (!replayed.ok())
    Violation("the store's own records do not replay", replayed.status().ToString());
  for (const char* twin : kTwins) {
    for (const char* path : kPaths) {
      const SeriesRef ref{twin, path};
      const auto before = h->Info(ref);
      const auto after = (*replayed)->Info(ref);
      if (before.has_value() != after.has_value()) Violation("a series appeared or vanished");
      if (!before) continue;
      if (before->type != after->type) Violation("a series changed type on replay");
      const std::vector<Point> a = ReadAll(*h, ref), b = ReadAll(**replayed, ref);
      if (a.size() != b.size()) Violation("replay changed a series' point count");
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (!BitIdentical(a[i], b[i])) Violation("replay changed a point");
      }
    }
  }
}

}  // namespace
}  // namespace doppel::tsdb

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  doppel::tsdb::ReplayAsRecord(std::string_view(reinterpret_cast<const char*>(data), size));
  FuzzedDataProvider in(data, size);
  doppel::tsdb::RoundTrip(in);
  return 0;
}
