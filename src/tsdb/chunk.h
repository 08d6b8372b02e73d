// doppel::tsdb — the compressed chunk: one series' points (timestamp, value) in one byte string.
//
// What it does
//   A chunk holds the points of one series of one value type (float64, int64, bool or string),
//   in time order, compressed after Gorilla (Pelkonen et al., "Gorilla: A Fast, Scalable,
//   In-Memory Time Series Database", VLDB 2015): timestamps as delta-of-delta, floats XORed with
//   the previous value — or, when they are exact short decimals (71.23, 2.314, 1500.5: what
//   sensors publish), as integers n of n / 10^k, in first differences. A ChunkWriter is the head
//   chunk points are appended to; Finish gives the bytes to keep. A ChunkReader checks a chunk
//   (checksum, header) and decodes it, point by point or straight into an aggregate, without
//   building a vector.
//
// How to use it
//   ChunkWriter w(ValueType::kFloat64);
//   if (auto s = w.Append(t_ns, 21.5); !s.ok()) ...     // TSDB_OUT_OF_ORDER, TSDB_CHUNK_FULL, ...
//   std::vector<std::uint8_t> bytes = w.Finish();       // w stays usable: Finish is a snapshot
//
//   auto reader = ChunkReader::Open(bytes);              // TSDB_CHUNK_CORRUPT if damaged
//   for (ChunkIterator it = reader->Points(); it.Next();) use(it.t_ns(), it.float_value());
//   // it.status() after the loop: OK, or TSDB_CHUNK_CORRUPT if the streams were bad
//   auto agg = reader->Aggregate(from_ns, to_ns);        // count, sum, min, max, last
//   EncodeChunk / DecodeChunk do a whole vector of points at once. sample_series.h has the
//   C-MAPSS and synthetic plant series the codec is measured on.
//
// Points and order
//   * Timestamps are int64 nanoseconds since the Unix epoch, any value (negative ones included).
//     Appends must not go back in time; equal timestamps are allowed and both points are kept,
//     in append order (a chunk is a log of what was reported, not a map from time to value).
//   * Values are kept bit-exactly: every float64 bit pattern (NaN with any payload and sign, ±Inf,
//     -0.0, denormals) and every int64 (INT64_MIN/MAX; deltas wrap modulo 2^64 and decode back).
//   * A chunk holds at most kMaxChunkPoints points, and a string chunk's distinct strings at most
//     kMaxDictionaryBytes bytes; Append then returns TSDB_CHUNK_FULL and the caller starts a new
//     chunk. The store decides chunk lengths (~120..few thousand points); the format does not.
//
// Byte layout (format versions 1 and 2). Multi-byte fixed fields are little-endian; "varint" is
// LEB128 (7 bits per byte, least significant group first, high bit set on every byte but the last).
//
//   offset  size    field
//   0       1       magic 0xDC
//   1       1       format version: 2 for a float64 chunk in the decimal code, else 1
//   2       1       value type: 1 float64, 2 int64, 3 bool, 4 string
//   3       1       timestamp unit U: 0 ns, 1 us, 2 ms, 3 s
//  (4       1       version 2 only: the decimal scale k, 0 ..= 22)
//   4 (5)   varint  N, the point count (0 ..= 2^24; version 2: >= 1)
//           8       t_0, the first (= smallest) timestamp, int64 ns (0 when N == 0)
//           varint  t_{N-1} - t_0 in ns, as uint64 (0 when N <= 1)
//           varint  T, bits of the timestamp section
//           varint  V, bits of the value section
//           T/8     timestamp section (T/8 rounded up, bytes)
//           V/8     value section (V/8 rounded up, bytes)
//           8       XXH3_64bits (seed 0) of every byte before it
//   The chunk is exactly that long: a shorter one is "truncated", a longer one a "bad header".
//   Version 2 is version 1 plus the scale byte, for one value code; the writer uses it only for
//   the decimal code, so every other chunk (XOR floats included) is byte for byte what the
//   version-1 writer wrote, and readers read both.
//   Sections are bit streams, most significant bit of each byte first, zero-padded to a byte.
//   Lengths are in bits so that the padding never decodes as points: a stream must end exactly
//   after its N-th point.
//
// Bucketed numbers (used for timestamps and int64 values): a prefix, then a two's complement
// payload; the writer picks the shortest bucket that holds the number.
//   0                  0                        1 bit
//   10    + 7 bits     -64 ..= 63               9 bits
//   110   + 12 bits    -2048 ..= 2047          15 bits
//   1110  + 20 bits    -2^19 ..= 2^19-1        24 bits
//   11110 + 32 bits    -2^31 ..= 2^31-1        37 bits
//   11111 + 64 bits    anything, modulo 2^64   69 bits
//
// Timestamp section: N-1 bucketed numbers (none when N <= 1). With D_0 = 0 and
// D_i = (t_i - t_{i-1}) / U, number i is D_i - D_{i-1} modulo 2^64. U is the coarsest of s, ms,
// us, ns that divides every gap t_i - t_{i-1} (t_0 itself is kept in full in the header, so a
// series on a whole-second grid with a nanosecond offset still gets U = s). Why this and these
// buckets: real telemetry is regular in ms or s, so in its own unit a steady series has
// delta-of-delta 0 (1 bit per point) whatever the epoch offset, and the gap sizes the buckets see
// do not depend on whether the clock was ms or ns. Jitter of a few ms in a ms-unit series fits 7
// or 12 bits; a ns clock's jitter (µs..ms) fits 20 or 32 bits; any gap up to the whole int64 range
// fits the 64-bit escape. (Gorilla's buckets, for seconds, were 7/9/12/32 bits with no escape:
// the 9-bit one is dropped, a 20-bit one added for µs/ns jitter.) When a gap needs a finer unit,
// the writer re-encodes the section in it (at most three times per chunk).
//
// Value sections
//   float64 — one of two codes: Gorilla XOR in version 1, the decimal code in version 2.
//   Gorilla XOR. Value 0: its 64 bits. Each later value: X = bits XOR previous bits;
//     0                                   X == 0 (the same bits as before)
//     10 + L bits                         X >> trail in L bits, with the current window's lead,
//                                         trail and L (X has >= lead leading and >= trail
//                                         trailing zeros)
//     11 + 5 bits lead + 6 bits L + L     opens a new window: lead (0..31; more leading zeros are
//                                         written as 31), L = 64 - lead - trail (1..64; 64 is
//                                         written as 0), then X >> trail in L bits
//     The window at the start of a chunk is lead 0, trail 0 (L = 64). lead + L > 64 is corrupt.
//     The writer reuses the window when X fits in it and L_window <= L_new + 11 (the cost of a
//     new window's description), else opens a window fitted to X.
//   Decimal (scale k from the header). A value v is integer-coded as n when
//     static_cast<double>(n) / 10^k has v's bits exactly, |n| <= 2^53 - 1: both operands are then
//     exact doubles and IEEE division rounds once, to the double nearest the decimal n·10^-k (the
//     one strtod gives for its text), so decoding is bit-exact. Other values (NaN, ±Inf, -0.0,
//     denormals, 0.1 + 0.2, ...) are coded raw. With p the last integer-coded n (0 before the
//     first) and z = zigzag(n - p) (2(n - p) when n >= p, else 2(p - n) - 1), each value is one of
//       q zero bits, a 1, r bits          when q = z >> r < 12: Rice code (r low bits of z)
//       12 zero bits, 6 bits w, w bits    otherwise: w = bit_width(z) (1..55), then z
//       12 zero bits, 6 bits 63, 64 bits  a raw value's bits (p and r stay as they are)
//     r starts at 0 and follows the recent z: with m = 0 at the start, after each integer-coded
//     value but the first, m = m - floor(m / 8) + 2z and r = max(0, bit_width(floor(m / 16)) - 1)
//     (m is a running mean of z times 16; r about log2 of the mean, the best Rice parameter). A
//     width of 0 or 56..62, or an n beyond ±(2^53 - 1), is corrupt.
//     Why this code: sensor series are noisy readings at a fixed resolution, so the first
//     differences of n are small noise. Value bits per point, measured on the plant's published
//     telemetry / C-MAPSS FD001 (history_bench part 1 data): XOR 48.4 / 29.8; n in the int64 code
//     (delta-of-delta, buckets) 10.5 / 8.4; first differences in those buckets 9.7 / 7.9; this
//     code 7.3 / 6.0 (the per-chunk entropy of the differences, an optimistic floor: 7.0 / 4.2).
//     Whole chunks (timestamps, headers, checksums), bytes per point from XOR to this: plant
//     float fields 5.1..7.0 -> 1.0..1.3 (all six fields 4.23 -> 0.81), C-MAPSS 4.01 -> 1.04.
//     Delta-of-delta loses on noise (its variance is 6σ² against 2σ²); a steady ramp costs this
//     code 2-4 bits a point where delta-of-delta takes 1, but ramps are mostly counters, and
//     those are int64 series.
//   The decimal writer, point by point (it does not know the values to come): a float64 chunk
//     starts decimal with k = 0. A value with more decimals (k' <= 22) multiplies the earlier n
//     by 10^(k' - k) and re-codes the section (so a rescale costs every point log2(10) bits per
//     decimal), but only when all earlier n are 0, or when k' - k <= 4, no n reaches 2^53, and
//     the chunk has fewer than 16 points or an earlier value since the last rescale also needed
//     more decimals; else the value is raw. So the first values find the scale, a lone value
//     with more decimals (a computed one among readings) is raw, and a resolution that changes
//     for good is followed from its second value. The writer also counts the bits the values
//     would take in XOR; when the decimal section gets more than 64 bits longer, it re-codes the
//     chunk in XOR and keeps it there (the bytes are those of a chunk XOR-coded from its start).
//     Exact decimals thus get the smallest scale that holds them, a NaN or -0.0 among them costs
//     82 bits, full-precision doubles (raw: 82 bits against XOR's ~50-64) are XOR from their
//     third or fourth value on, and no chunk is more than 10 bytes longer than in XOR (8 of
//     values, the scale byte, a varint byte).
//   int64 — N bucketed numbers: v_0 itself, then delta-of-delta: with E_0 = 0 and
//     E_i = v_i - v_{i-1}, number i is E_i - E_{i-1}, all modulo 2^64. Chosen over Simple-8b
//     because it appends bit by bit (Simple-8b packs up to 240 values per word and would make the
//     head chunk buffer them), it is the timestamps' code (one decoder), and the common int series
//     cost 1 bit per point: constants (setpoints, modes) and steady counters; a counter that
//     steps now and then costs 9 bits per step and its return.
//   bool — the first value's bit, then run lengths in Elias gamma (floor(log2 n) zero bits, then n
//     in binary): the first run has the first value, later runs alternate, the runs sum to N.
//     A status that flips every few minutes costs well under 0.1 bit per point; runs of 1 cost
//     1 bit, the same as a bitmap; the worst case (runs of 2-3) 1.5 bits per point.
//   string — dictionary, then runs. The dictionary: varint K (number of distinct strings, 0 iff
//     N == 0), then K times (varint byte length, bytes), in order of first appearance, byte-
//     aligned. Then a bit stream of runs: code in bit_width(S) bits (S = entries that earlier runs
//     introduced; code == S introduces entry S, so the first run's code has 0 bits), then the run
//     length in Elias gamma. Runs sum to N and every entry is used.
//
// Checksum: XXH3_64bits over the bytes from the magic to the end of the value section, in the
// last 8 bytes. Open checks it before looking at the sections, so damage is reported as
// TSDB_CHUNK_CORRUPT unless it happens to keep the 64-bit hash (odds about 2^-64). Behind the
// checksum the decoder still trusts nothing: every read is bounds-checked and every stream must
// hold exactly N points, so even a forged chunk with a valid checksum gives TSDB_CHUNK_CORRUPT or
// well-formed points (N of them, in order, within the header's first..last), never a read
// outside the bytes given.
//
// Aggregates (ChunkReader::Aggregate) decode without materializing points; when [from, to]
// covers the whole chunk they skip the timestamp section, else they stop after the first point
// past `to`. Float sums add in point order. NaN points are counted (count and
// nan_count) but left out of sum, min and max; `last` is the last point's value, NaN or not.
//
// Error codes (stable)
//   TSDB_CHUNK_CORRUPT   the bytes are not a valid chunk. The message starts with what failed:
//                        "truncated: ..." (ends before the header or the sections it announces),
//                        "bad header: ..." (magic, version, type, unit, decimal scale, count
//                        over the limit, fields that contradict each other, bytes after the
//                        checksum),
//                        "checksum mismatch: ...",
//                        "count mismatch: ..." (a stream ends before N points, has bits left
//                        after N points, or the last timestamp is not the header's),
//                        "bad stream: ..." (a code no writer produces: XOR window, decimal escape
//                        width or integer beyond 2^53, dictionary code, run longer than the chunk,
//                        timestamps past the header's last)
//   TSDB_OUT_OF_ORDER    Append with a timestamp before the chunk's last one
//   TSDB_TYPE_MISMATCH   Append of a value of another type than the writer's (or EncodeChunk)
//   TSDB_CHUNK_FULL      Append beyond kMaxChunkPoints, or a new string beyond kMaxDictionaryBytes
//   (sample_series.h adds TSDB_SAMPLE_DATA: a C-MAPSS file missing or unreadable.)
//
// Threads: a ChunkWriter is used by one thread at a time. A ChunkReader is immutable; any number
// of threads may iterate or aggregate it. Readers and iterators point into the chunk's bytes,
// which must outlive them (iterators also need their reader).
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "core/status.h"
#include "tsdb/bit_stream.h"
#include "tsdb/codecs.h"

namespace doppel::tsdb {

enum class ValueType : std::uint8_t { kFloat64 = 1, kInt64 = 2, kBool = 3, kString = 4 };
enum class TimeUnit : std::uint8_t {
  kNanoseconds = 0,
  kMicroseconds = 1,
  kMilliseconds = 2,
  kSeconds = 3
};

std::string_view ValueTypeName(ValueType type);  // "float64", "int64", "bool", "string"
std::string_view TimeUnitName(TimeUnit unit);    // "ns", "us", "ms", "s"
std::int64_t NanosecondsPer(TimeUnit unit);

inline constexpr std::uint32_t kMaxChunkPoints = 1u << 24;
inline constexpr std::size_t kMaxDictionaryBytes = std::size_t{64} << 20;

using Value = std::variant<double, std::int64_t, bool, std::string>;

// The ValueType a Value holds.
inline ValueType TypeOf(const Value& v) {
  switch (v.index()) {
    case 0:
      return ValueType::kFloat64;
    case 1:
      return ValueType::kInt64;
    case 2:
      return ValueType::kBool;
    default:
      return ValueType::kString;
  }
}

struct Point {
  std::int64_t t_ns = 0;
  Value value;
};

// Same timestamp, same alternative, same value; doubles compared by bit pattern (so NaN equals a
// NaN with the same payload, and -0.0 differs from 0.0).
bool BitIdentical(const Point& a, const Point& b);

// Aggregate of the points with from_ns <= t_ns <= to_ns.
struct RangeAggregate {
  std::uint64_t count = 0;      // all points in range (NaN and strings included)
  std::uint64_t nan_count = 0;  // float64: NaN points among them
  // float64: over the non-NaN values (NaN when there are none). int64: the exact sum rounded once
  // to double; min/max exact in int_min/int_max. bool: true = 1, false = 0. string: not set.
  double sum = 0;
  double min = std::numeric_limits<double>::quiet_NaN();
  double max = std::numeric_limits<double>::quiet_NaN();
  double last = std::numeric_limits<double>::quiet_NaN();  // the last point's value (any)
  std::int64_t int_min = 0;                                // int64 only, when count > 0
  std::int64_t int_max = 0;
  std::int64_t int_last = 0;
  std::int64_t first_t_ns = 0;  // when count > 0
  std::int64_t last_t_ns = 0;
};

namespace internal {

__extension__ typedef __int128 Int128;  // NOLINT(modernize-use-using): __extension__ needs typedef

// What an aggregate keeps of a run of values of one type, in order (ChunkReader::Aggregate's
// and ChunkWriter::Summary's, so that both give the same numbers).
struct FloatAccumulator {
  double sum = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  std::uint64_t nan = 0;
  std::uint64_t bits = 0;  // last

  void Add(std::uint64_t b) {
    bits = b;
    const double v = std::bit_cast<double>(b);
    if (std::isnan(v)) {
      ++nan;
      return;
    }
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  void Into(RangeAggregate* a) const;
};

struct IntAccumulator {
  Int128 sum = 0;
  std::int64_t min = std::numeric_limits<std::int64_t>::max();
  std::int64_t max = std::numeric_limits<std::int64_t>::min();
  std::int64_t last = 0;

  void Add(std::int64_t v) {
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
    last = v;
  }
  void Into(RangeAggregate* a) const;
};

struct BoolAccumulator {
  std::uint64_t trues = 0;
  bool any_false = false;
  bool last = false;

  void Add(bool v) {
    trues += v ? 1 : 0;
    any_false = any_false || !v;
    last = v;
  }
  void Into(RangeAggregate* a) const;
};

struct StringAccumulator {
  void Add(std::string_view /*v*/) {}
  void Into(RangeAggregate* /*a*/) const {}
};

}  // namespace internal

// The appendable head chunk of one series.
class ChunkWriter {
 public:
  explicit ChunkWriter(ValueType type);
  ChunkWriter(ChunkWriter&&) noexcept = default;
  ChunkWriter& operator=(ChunkWriter&&) noexcept = default;
  ChunkWriter(const ChunkWriter&) = delete;
  ChunkWriter& operator=(const ChunkWriter&) = delete;
  ~ChunkWriter() = default;

  // Appends one point. REQUIRES nothing: a bad append returns an error and changes nothing.
  // Errors: TSDB_TYPE_MISMATCH (the value is not of type()), TSDB_OUT_OF_ORDER (t_ns < the last
  // timestamp; equal is fine), TSDB_CHUNK_FULL (count() == kMaxChunkPoints, or a new distinct
  // string would take the dictionary beyond kMaxDictionaryBytes).
  core::Status Append(std::int64_t t_ns, double value);
  core::Status Append(std::int64_t t_ns, std::int64_t value);
  core::Status Append(std::int64_t t_ns, bool value);
  core::Status Append(std::int64_t t_ns, std::string_view value);
  core::Status Append(std::int64_t t_ns, const char* value) {  // not the bool overload
    return Append(t_ns, std::string_view(value));
  }
  core::Status Append(std::int64_t t_ns, const std::string& value) {
    return Append(t_ns, std::string_view(value));
  }
  core::Status Append(std::int64_t t_ns, const Value& value);

  // The chunk of every point appended so far. The writer is unchanged and can keep appending.
  // O(size of the chunk).
  std::vector<std::uint8_t> Finish() const;

  // Bytes Finish() would return now (exact), without building them.
  std::size_t EncodedBytes() const;

  // What ChunkReader::Aggregate over the whole of Finish() returns, kept as points are appended
  // (no decoding).
  RangeAggregate Summary() const;

  ValueType type() const { return type_; }
  std::uint32_t count() const { return count_; }
  TimeUnit unit() const { return unit_; }
  // REQUIRES: count() > 0.
  std::int64_t first_t_ns() const { return first_t_; }
  std::int64_t last_t_ns() const { return last_t_; }

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  core::Status CheckAppend(std::int64_t t_ns, ValueType value_type) const;
  void AppendTimestamp(std::int64_t t_ns);
  void ChangeUnit(TimeUnit finer);
  bool DecimalCoded() const { return type_ == ValueType::kFloat64 && count_ > 0 && !xor_mode_; }
  void AppendDecimal(double value);
  void AppendDecimalInteger(std::int64_t n);
  bool Rescale(int scale);
  void SwitchToXor();
  void AppendStringCode(std::uint32_t code);
  std::size_t HeaderBytes() const;
  std::size_t ValueSectionBits() const;
  void AppendValueSection(std::vector<std::uint8_t>* out) const;

  ValueType type_;
  std::uint32_t count_ = 0;
  std::int64_t first_t_ = 0;
  std::int64_t last_t_ = 0;
  TimeUnit unit_ = TimeUnit::kSeconds;
  std::uint64_t prev_delta_ = 0;  // in unit_
  internal::BitWriter timestamps_;
  internal::BitWriter values_;

  // float64: decimal (version 2) until XOR would be shorter, then Gorilla XOR for good.
  bool xor_mode_ = false;
  int scale_ = 0;                    // decimal: k
  std::uint64_t max_magnitude_ = 0;  // decimal: the largest |n| coded
  bool finer_pending_ = false;       // decimal: a value needing a finer scale was coded raw
  std::uint64_t xor_bits_ = 0;       // decimal: bits the values would take in XOR
  internal::DecimalEncoder decimal_;
  internal::XorEncoder xor_;          // XOR; in decimal mode it only counts xor_bits_
  std::uint64_t prev_int_ = 0;        // int64
  std::uint64_t prev_int_delta_ = 0;  // int64
  bool run_bool_ = false;             // bool: the open run's value
  std::uint64_t run_length_ = 0;      // bool, string: points in the open run
  std::uint32_t run_code_ = 0;        // string: the open run's dictionary code
  std::uint32_t run_introduced_ = 0;  // string: entries introduced before the open run
  // string: distinct values; entries_ points at the keys (node-stable, also across moves).
  std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>> index_;
  std::vector<const std::string*> entries_;
  std::size_t dictionary_bytes_ = 0;  // the dictionary as written: lengths and bytes
  // Summary: the accumulator of type_.
  internal::FloatAccumulator float_acc_;
  internal::IntAccumulator int_acc_;
  internal::BoolAccumulator bool_acc_;
};

struct ChunkInfo {
  ValueType type = ValueType::kFloat64;
  TimeUnit unit = TimeUnit::kSeconds;
  std::uint32_t count = 0;
  std::int64_t first_t_ns = 0;  // meaningful when count > 0
  std::int64_t last_t_ns = 0;
  std::size_t bytes = 0;  // the whole chunk, checksum included
  // float64 only: the scale k of a decimal chunk (format version 2), -1 for Gorilla XOR.
  int decimal_scale = -1;
};

class ChunkReader;

// Decodes a chunk's points in order. Obtained from ChunkReader::Points().
class ChunkIterator {
 public:
  // Advances to the next point. False at the end, or when the streams are bad (status() then
  // says why; points already returned were decoded before the damage was found — with a matching
  // checksum that means a chunk no ChunkWriter wrote).
  bool Next();

  // The current point. REQUIRES: the last Next() returned true; the typed accessor matches the
  // chunk's type.
  std::int64_t t_ns() const { return ts_.t; }
  double float_value() const;
  std::int64_t int_value() const { return int_value_; }
  bool bool_value() const { return bool_value_; }
  std::string_view string_value() const { return string_value_; }
  Value value() const;

  // OK, or TSDB_CHUNK_CORRUPT after Next() stopped on bad streams.
  const core::Status& status() const { return status_; }

 private:
  friend class ChunkReader;
  explicit ChunkIterator(const ChunkReader& reader);
  bool Fail(const char* what);
  bool CheckEnd();

  ValueType type_;
  std::uint32_t count_ = 0;
  std::uint32_t index_ = 0;  // points returned so far
  std::int64_t last_t_ = 0;
  internal::TimestampDecoder ts_;
  internal::XorDecoder float_;
  internal::DecimalDecoder decimal_;
  bool is_decimal_ = false;
  internal::IntDecoder int_;
  internal::BoolDecoder bool_;
  internal::StringDecoder string_;
  std::uint64_t float_bits_ = 0;
  std::int64_t int_value_ = 0;
  bool bool_value_ = false;
  std::string_view string_value_;
  core::Status status_;
};

// A checked chunk. Open verifies the header and the checksum (O(bytes)); decoding is lazy.
class ChunkReader {
 public:
  // Errors: TSDB_CHUNK_CORRUPT (see the manual for the message kinds).
  static core::Result<ChunkReader> Open(std::span<const std::uint8_t> chunk);

  const ChunkInfo& info() const { return info_; }

  ChunkIterator Points() const { return ChunkIterator(*this); }

  // Aggregates the points with from_ns <= t_ns <= to_ns (none when from_ns > to_ns) by decoding
  // in place. Errors: TSDB_CHUNK_CORRUPT when the streams are bad (only possible for a chunk no
  // ChunkWriter wrote: Open checked the checksum).
  core::Result<RangeAggregate> Aggregate(std::int64_t from_ns, std::int64_t to_ns) const;

  // Appends the values of the points with from_ns <= t_ns <= to_ns to *out as numbers (float64;
  // int64 and bool as doubles; NaN left out), decoding in place (the timestamps only when the
  // range cuts the chunk). Returns count (points in range, NaN included), nan_count and, when
  // count > 0, first_t_ns/last_t_ns; nothing else. Errors: TSDB_CHUNK_CORRUPT (out unchanged),
  // TSDB_TYPE_MISMATCH for a string chunk.
  core::Result<RangeAggregate> CollectNumbers(std::int64_t from_ns, std::int64_t to_ns,
                                              std::vector<double>* out) const;

 private:
  friend class ChunkIterator;
  ChunkReader() = default;
  template <class Visit>
  core::Result<RangeAggregate> ScanRange(std::int64_t from_ns, std::int64_t to_ns,
                                         Visit&& visit) const;

  ChunkInfo info_;
  std::span<const std::uint8_t> timestamps_;
  std::size_t timestamp_bits_ = 0;
  std::span<const std::uint8_t> values_;  // string: the run stream after the dictionary
  std::size_t value_bits_ = 0;
  std::vector<std::string_view> dictionary_;
};

// Encodes `points` (in time order, all of `type`) as one chunk. Errors as ChunkWriter::Append.
core::Result<std::vector<std::uint8_t>> EncodeChunk(ValueType type, std::span<const Point> points);

// Decodes a whole chunk. Errors: TSDB_CHUNK_CORRUPT; never a partial result.
core::Result<std::vector<Point>> DecodeChunk(std::span<const std::uint8_t> chunk);

}  // namespace doppel::tsdb
