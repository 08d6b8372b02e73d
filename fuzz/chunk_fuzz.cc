// libFuzzer target for the tsdb chunk codec (tsdb/chunk.h).
//
// Each input is used three ways:
//   1. as a chunk, as is (Open, DecodeChunk, the iterator, Aggregate);
//   2. as a chunk with its trailing checksum rewritten, so the fuzzer gets past XXH3 and into the
//      header and stream checks, which only guard against forged chunks;
//   3. as a recipe for points: the first byte picks the value type, the rest gives timestamp gaps
//      (zero, small, on a unit grid, or any 64-bit gap) and values (raw bits, specials, decimals
//      n / 10^k that walk or jump and change scale — the decimal code's rescales, raw values and
//      switch to XOR —, strings); they are encoded with ChunkWriter, snapshotted with Finish
//      midway, and decoded back.
//
// Besides sanitizer findings, the target aborts when the codec breaks a documented contract:
//   * a decode error whose code is not TSDB_CHUNK_CORRUPT or whose message does not start with
//     one of the documented kinds;
//   * DecodeChunk, the iterator and Aggregate disagreeing on whether a chunk is good;
//   * decoded points with the wrong type, out of order, outside [first, last] of the header, or a
//     count other than the header's;
//   * decoded points that do not survive EncodeChunk + DecodeChunk bit for bit;
//   * a recipe whose points do not come back bit for bit, whose chunk size differs from
//     EncodedBytes(), or whose aggregate over a recipe range differs from a naive computation.
#include <fuzzer/FuzzedDataProvider.h>
#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tsdb/chunk.h"

namespace doppel::tsdb {
namespace {

using Bytes = std::vector<std::uint8_t>;
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

[[noreturn]] void Violation(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "chunk_fuzz: contract violated: %s\n%s\n", what, detail.c_str());
  std::abort();
}

void CheckCorruptStatus(const core::Status& s) {
  if (s.code() != "TSDB_CHUNK_CORRUPT") Violation("decode error with another code", s.ToString());
  static constexpr std::string_view kKinds[] = {
      "truncated: ", "bad header: ", "checksum mismatch: ", "count mismatch: ", "bad stream: "};
  for (std::string_view k : kKinds) {
    if (s.message().rfind(k, 0) == 0) return;
  }
  Violation("decode error of no documented kind", s.ToString());
}

// Decodes `chunk` every way and checks they agree and that what decodes is well formed.
void DecodeAndCheck(std::span<const std::uint8_t> chunk) {
  auto decoded = DecodeChunk(chunk);
  auto reader = ChunkReader::Open(chunk);
  if (!reader.ok()) {
    CheckCorruptStatus(reader.status());
    if (decoded.ok()) Violation("DecodeChunk accepted what Open refused");
    return;
  }
  const ChunkInfo& info = reader->info();
  if (!decoded.ok()) {
    CheckCorruptStatus(decoded.status());
    // Open was fine, so the streams are bad: the iterator must stop with the same error.
    ChunkIterator it = reader->Points();
    while (it.Next()) {
    }
    if (it.status().ok()) Violation("DecodeChunk failed but the iterator did not");
    return;
  }
  if (decoded->size() != info.count) Violation("decoded count differs from the header");
  for (std::size_t i = 0; i < decoded->size(); ++i) {
    const Point& p = (*decoded)[i];
    if (TypeOf(p.value) != info.type) Violation("decoded value of another type");
    if (p.t_ns < info.first_t_ns || p.t_ns > info.last_t_ns) Violation("timestamp outside header");
    if (i > 0 && p.t_ns < (*decoded)[i - 1].t_ns) Violation("decoded timestamps go back");
  }
  auto whole = reader->Aggregate(kMin, kMax);
  if (!whole.ok()) Violation("Aggregate failed on a chunk that decodes", whole.status().ToString());
  if (whole->count != info.count) Violation("Aggregate count differs");
  if (info.count > 0) {
    // A partial range decodes the timestamps too.
    const std::int64_t mid = (*decoded)[decoded->size() / 2].t_ns;
    auto part = reader->Aggregate(mid, kMax);
    if (!part.ok()) Violation("partial Aggregate failed", part.status().ToString());
  }
  // What decodes re-encodes to the same points (the bytes may differ: a forged chunk may use a
  // finer unit or longer buckets than the writer would).
  auto again = EncodeChunk(info.type, *decoded);
  if (!again.ok()) Violation("decoded points do not encode", again.status().ToString());
  auto back = DecodeChunk(*again);
  if (!back.ok() || back->size() != decoded->size()) Violation("re-encoded chunk does not decode");
  for (std::size_t i = 0; i < decoded->size(); ++i) {
    if (!BitIdentical((*back)[i], (*decoded)[i])) Violation("re-encoded point differs");
  }
}

// ---- Recipes --------------------------------------------------------------------------------

double Special(std::uint8_t k) {
  static const std::uint64_t kBits[] = {
      0x0000000000000000, 0x8000000000000000, 0x7FF0000000000000, 0xFFF0000000000000,
      0x7FF8000000000000, 0xFFF8000000000000, 0x7FF0000000000001, 0x7FFFFFFFFFFFFFFF,
      0x0000000000000001, 0x000FFFFFFFFFFFFF, 0x3FF0000000000000, 0x4059000000000000,
  };
  return std::bit_cast<double>(kBits[k % std::size(kBits)]);
}

std::vector<Point> PointsFromRecipe(FuzzedDataProvider& in, ValueType type) {
  std::vector<Point> points;
  std::int64_t t = in.ConsumeIntegral<std::int64_t>();
  const std::int64_t units[] = {1, 1'000, 1'000'000, 1'000'000'000};
  std::vector<std::string> strings;
  int scale = 2;       // decimals: the current scale k ...
  std::int64_t n = 0;  // ... and n
  while (in.remaining_bytes() > 0 && points.size() < 5000) {
    const auto op = in.ConsumeIntegral<std::uint8_t>();
    if (!points.empty()) {
      std::uint64_t gap = 0;
      switch (op & 3) {
        case 0:
          break;
        case 1:
          gap = in.ConsumeIntegral<std::uint8_t>();
          break;
        case 2:
          gap = static_cast<std::uint64_t>(units[(op >> 2) & 3]) *
                (1 + (in.ConsumeIntegral<std::uint8_t>() & 3));
          break;
        default:
          gap = in.ConsumeIntegral<std::uint64_t>();
          break;
      }
      const std::uint64_t room = static_cast<std::uint64_t>(kMax) - static_cast<std::uint64_t>(t);
      t = static_cast<std::int64_t>(static_cast<std::uint64_t>(t) + std::min(gap, room));
    }
    Point p;
    p.t_ns = t;
    switch (type) {
      case ValueType::kFloat64:
        if ((op & 0x10) != 0) {
          p.value = std::bit_cast<double>(in.ConsumeIntegral<std::uint64_t>());
        } else if ((op & 0x20) != 0) {
          const auto how = in.ConsumeIntegral<std::uint8_t>();
          if ((how & 0x80) != 0) scale = how % (internal::kMaxDecimalScale + 1);
          if ((how & 0x40) != 0) {
            n = in.ConsumeIntegralInRange<std::int64_t>(-internal::kMaxDecimalMagnitude,
                                                        internal::kMaxDecimalMagnitude);
          } else {
            n = std::clamp<std::int64_t>(n + in.ConsumeIntegral<std::int8_t>(),
                                         -internal::kMaxDecimalMagnitude,
                                         internal::kMaxDecimalMagnitude);
          }
          p.value = static_cast<double>(n) / internal::kPowersOf10[static_cast<std::size_t>(scale)];
        } else {
          p.value = Special(in.ConsumeIntegral<std::uint8_t>());
        }
        break;
      case ValueType::kInt64:
        p.value = (op & 0x10) != 0 ? in.ConsumeIntegral<std::int64_t>()
                                   : std::int64_t{in.ConsumeIntegral<std::int8_t>()};
        break;
      case ValueType::kBool:
        p.value = (op & 0x10) != 0;
        break;
      case ValueType::kString:
        if ((op & 0x10) != 0 || strings.empty()) {
          strings.push_back(in.ConsumeRandomLengthString(64));
        }
        p.value = strings[in.ConsumeIntegral<std::uint8_t>() % strings.size()];
        break;
    }
    points.push_back(std::move(p));
  }
  return points;
}

// The naive aggregate's count, sum (bit pattern; NaN folded), min and max.
void CheckAggregate(const ChunkReader& reader, const std::vector<Point>& points, std::int64_t from,
                    std::int64_t to) {
  auto got = reader.Aggregate(from, to);
  if (!got.ok()) Violation("Aggregate failed on a good chunk", got.status().ToString());
  std::uint64_t count = 0;
  std::uint64_t nan = 0;
  double sum = 0;
  __extension__ __int128 isum = 0;
  for (const Point& p : points) {
    if (p.t_ns < from || p.t_ns > to) continue;
    ++count;
    if (const auto* d = std::get_if<double>(&p.value)) {
      if (std::isnan(*d)) {
        ++nan;
      } else {
        sum += *d;
      }
    } else if (const auto* i = std::get_if<std::int64_t>(&p.value)) {
      isum += *i;
    } else if (const auto* b = std::get_if<bool>(&p.value)) {
      sum += *b ? 1 : 0;
    }
  }
  if (reader.info().type == ValueType::kInt64) sum = static_cast<double>(isum);
  if (got->count != count) Violation("Aggregate count differs from naive");
  if (got->nan_count != nan) Violation("Aggregate nan_count differs from naive");
  if (count > 0 && reader.info().type != ValueType::kString &&
      std::bit_cast<std::uint64_t>(got->sum) != std::bit_cast<std::uint64_t>(sum) &&
      !(std::isnan(got->sum) && std::isnan(sum))) {
    Violation("Aggregate sum differs from naive");
  }
}

void RoundTripRecipe(std::span<const std::uint8_t> data) {
  if (data.empty()) return;
  FuzzedDataProvider in(data.data(), data.size());
  const auto type = static_cast<ValueType>(1 + in.ConsumeIntegral<std::uint8_t>() % 4);
  const auto snapshot_at = in.ConsumeIntegral<std::uint16_t>();
  const auto from = in.ConsumeIntegral<std::int64_t>();
  const auto to = in.ConsumeIntegral<std::int64_t>();
  const std::vector<Point> points = PointsFromRecipe(in, type);

  ChunkWriter writer(type);
  for (std::size_t i = 0; i < points.size(); ++i) {
    const core::Status s = writer.Append(points[i].t_ns, points[i].value);
    if (!s.ok()) Violation("Append refused a recipe point", s.ToString());
    if (i == snapshot_at) {
      const Bytes head = writer.Finish();
      auto decoded = DecodeChunk(head);
      if (!decoded.ok() || decoded->size() != i + 1) Violation("head snapshot does not decode");
      for (std::size_t k = 0; k <= i; ++k) {
        if (!BitIdentical((*decoded)[k], points[k])) Violation("head snapshot point differs");
      }
    }
  }
  const Bytes chunk = writer.Finish();
  if (chunk.size() != writer.EncodedBytes()) Violation("EncodedBytes differs from Finish");
  auto decoded = DecodeChunk(chunk);
  if (!decoded.ok()) Violation("recipe chunk does not decode", decoded.status().ToString());
  if (decoded->size() != points.size()) Violation("recipe chunk count differs");
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (!BitIdentical((*decoded)[i], points[i])) {
      Violation("recipe point differs", "point " + std::to_string(i));
    }
  }
  auto reader = ChunkReader::Open(chunk);
  if (!reader.ok()) Violation("recipe chunk does not open");
  CheckAggregate(*reader, points, from, to);
  CheckAggregate(*reader, points, kMin, kMax);
}

void FuzzOne(std::span<const std::uint8_t> data) {
  DecodeAndCheck(data);
  if (data.size() >= 8) {
    Bytes sealed(data.begin(), data.end());
    const std::uint64_t h = XXH3_64bits(sealed.data(), sealed.size() - 8);
    for (int i = 0; i < 8; ++i) {
      sealed[sealed.size() - 8 + i] = static_cast<std::uint8_t>(h >> (8 * i));
    }
    DecodeAndCheck(sealed);
  }
  RoundTripRecipe(data);
}

}  // namespace
}  // namespace doppel::tsdb

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  doppel::tsdb::FuzzOne(std::span<const std::uint8_t>(data, size));
  return 0;
}
