#include "tsdb/chunk.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <bit>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>

namespace doppel::tsdb {
namespace {

using internal::BitReader;
using internal::BitWriter;

constexpr std::uint8_t kMagic = 0xDC;
constexpr std::uint8_t kVersion = 1;         // every chunk but decimal float64 ones
constexpr std::uint8_t kDecimalVersion = 2;  // float64, decimal code: one more header byte
// A decimal chunk switches to XOR when its value section gets this many bits longer than the XOR
// section of the same values would be.
constexpr std::uint64_t kXorSwitchBits = 64;
// Rescaling a decimal chunk: by at most 4 decimals at a time (a value with many more is a
// computed or full-precision double among readings, better raw), and after the first 16 values
// only for the second value that needs it (one odd value is raw: a rescale costs every later
// point log2(10) bits per decimal).
constexpr int kMaxRescaleDecimals = 4;
constexpr std::uint32_t kEagerRescalePoints = 16;
constexpr std::int64_t kRescaleFactors[kMaxRescaleDecimals + 1] = {1, 10, 100, 1'000, 10'000};
constexpr std::size_t kChecksumBytes = 8;
constexpr const char* kCorrupt = "TSDB_CHUNK_CORRUPT";

void PutFixed64(std::uint64_t v, std::vector<std::uint8_t>* out) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

std::uint64_t GetFixed64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::uint64_t Checksum(std::span<const std::uint8_t> bytes) {
  return XXH3_64bits(bytes.data(), bytes.size());
}

bool ValidType(std::uint8_t t) { return t >= 1 && t <= 4; }
bool ValidUnit(std::uint8_t u) { return u <= 3; }

core::Status Corrupt(std::string message) { return {kCorrupt, std::move(message)}; }

// gap_ns in `unit`s into *units when the unit's length divides it exactly. The divisors are
// constants, which the compiler turns into multiplications (a 64-bit division per point was a
// visible part of an append).
bool DivideExactly(std::uint64_t gap_ns, TimeUnit unit, std::uint64_t* units) {
  switch (unit) {
    case TimeUnit::kSeconds:
      *units = gap_ns / 1'000'000'000;
      return *units * 1'000'000'000 == gap_ns;
    case TimeUnit::kMilliseconds:
      *units = gap_ns / 1'000'000;
      return *units * 1'000'000 == gap_ns;
    case TimeUnit::kMicroseconds:
      *units = gap_ns / 1'000;
      return *units * 1'000 == gap_ns;
    case TimeUnit::kNanoseconds:
      break;
  }
  *units = gap_ns;
  return true;
}

// The coarsest unit whose length divides `gap_ns`.
TimeUnit CoarsestUnitDividing(std::uint64_t gap_ns) {
  std::uint64_t units = 0;
  for (TimeUnit u : {TimeUnit::kSeconds, TimeUnit::kMilliseconds, TimeUnit::kMicroseconds}) {
    if (DivideExactly(gap_ns, u, &units)) return u;
  }
  return TimeUnit::kNanoseconds;
}

}  // namespace

std::string_view ValueTypeName(ValueType type) {
  switch (type) {
    case ValueType::kFloat64:
      return "float64";
    case ValueType::kInt64:
      return "int64";
    case ValueType::kBool:
      return "bool";
    case ValueType::kString:
      return "string";
  }
  return "unknown";
}

std::string_view TimeUnitName(TimeUnit unit) {
  switch (unit) {
    case TimeUnit::kNanoseconds:
      return "ns";
    case TimeUnit::kMicroseconds:
      return "us";
    case TimeUnit::kMilliseconds:
      return "ms";
    case TimeUnit::kSeconds:
      return "s";
  }
  return "unknown";
}

std::int64_t NanosecondsPer(TimeUnit unit) {
  switch (unit) {
    case TimeUnit::kNanoseconds:
      return 1;
    case TimeUnit::kMicroseconds:
      return 1'000;
    case TimeUnit::kMilliseconds:
      return 1'000'000;
    case TimeUnit::kSeconds:
      return 1'000'000'000;
  }
  return 1;
}

bool BitIdentical(const Point& a, const Point& b) {
  if (a.t_ns != b.t_ns || a.value.index() != b.value.index()) return false;
  if (const auto* x = std::get_if<double>(&a.value)) {
    return std::bit_cast<std::uint64_t>(*x) ==
           std::bit_cast<std::uint64_t>(std::get<double>(b.value));
  }
  return a.value == b.value;
}

// ---- ChunkWriter ----------------------------------------------------------------------------

ChunkWriter::ChunkWriter(ValueType type) : type_(type) {}

core::Status ChunkWriter::CheckAppend(std::int64_t t_ns, ValueType value_type) const {
  if (value_type != type_) {
    return {"TSDB_TYPE_MISMATCH", fmt::format("cannot append a {} value to a {} chunk",
                                              ValueTypeName(value_type), ValueTypeName(type_))};
  }
  if (count_ >= kMaxChunkPoints) {
    return {"TSDB_CHUNK_FULL", fmt::format("the chunk holds {} points, the most it can", count_)};
  }
  if (count_ > 0 && t_ns < last_t_) {
    return {"TSDB_OUT_OF_ORDER",
            fmt::format("timestamp {} is before the chunk's last timestamp {}", t_ns, last_t_)};
  }
  return {};
}

void ChunkWriter::AppendTimestamp(std::int64_t t_ns) {
  if (count_ == 0) {
    first_t_ = t_ns;
    last_t_ = t_ns;
    return;
  }
  // t_ns >= last_t_, so the gap is exact as uint64 (up to 2^64 - 1).
  const std::uint64_t gap = static_cast<std::uint64_t>(t_ns) - static_cast<std::uint64_t>(last_t_);
  std::uint64_t delta = 0;
  if (!DivideExactly(gap, unit_, &delta)) {
    ChangeUnit(CoarsestUnitDividing(gap));
    (void)DivideExactly(gap, unit_, &delta);
  }
  internal::WriteBucketed(timestamps_, delta - prev_delta_);
  prev_delta_ = delta;
  last_t_ = t_ns;
}

void ChunkWriter::ChangeUnit(TimeUnit finer) {
  const auto factor = static_cast<std::uint64_t>(NanosecondsPer(unit_) / NanosecondsPer(finer));
  std::vector<std::uint8_t> old;
  timestamps_.AppendTo(&old);
  BitReader in(old, timestamps_.bit_count());
  BitWriter out;
  std::uint64_t delta = 0;
  std::uint64_t prev = 0;
  for (std::uint32_t i = 1; i < count_; ++i) {
    delta += internal::ReadBucketed(in);
    const std::uint64_t scaled = delta * factor;  // <= the gap in ns: no overflow
    internal::WriteBucketed(out, scaled - prev);
    prev = scaled;
  }
  timestamps_ = std::move(out);
  prev_delta_ = prev;
  unit_ = finer;
}

core::Status ChunkWriter::Append(std::int64_t t_ns, double value) {
  if (auto s = CheckAppend(t_ns, ValueType::kFloat64); !s.ok()) return s;
  AppendTimestamp(t_ns);
  const auto bits = std::bit_cast<std::uint64_t>(value);
  float_acc_.Add(bits);
  if (xor_mode_) {
    xor_.Append(bits, values_);
    ++count_;
    return {};
  }
  AppendDecimal(value);
  ++count_;
  xor_bits_ += static_cast<std::uint64_t>(xor_.Cost(bits));  // what XOR would take
  if (values_.bit_count() > xor_bits_ + kXorSwitchBits) SwitchToXor();
  return {};
}

// Codes `value` as the decimal chunk's point count_: at the chunk's scale (the common case), at a
// finer scale after rescaling the earlier integers, or raw.
void ChunkWriter::AppendDecimal(double value) {
  std::int64_t n = 0;
  if (internal::ToDecimal(value, scale_, &n)) {
    AppendDecimalInteger(n);
    return;
  }
  // +0.0 is n = 0 at every scale; -0.0, NaN and ±Inf are at none.
  if (std::isfinite(value) && value != 0) {
    for (int k = scale_ + 1; k <= internal::kMaxDecimalScale; ++k) {
      if (!(std::fabs(value) * internal::kPowersOf10[k] < 0x1p53)) break;
      if (internal::ToDecimal(value, k, &n)) {
        if (Rescale(k)) {
          AppendDecimalInteger(n);
          return;
        }
        break;
      }
    }
  }
  internal::DecimalEncoder::AppendRaw(std::bit_cast<std::uint64_t>(value), values_);
}

void ChunkWriter::AppendDecimalInteger(std::int64_t n) {
  const std::uint64_t magnitude =
      n < 0 ? 0 - static_cast<std::uint64_t>(n) : static_cast<std::uint64_t>(n);
  if (magnitude > max_magnitude_) max_magnitude_ = magnitude;
  decimal_.Append(n, values_);
}

// Multiplies the integers coded so far by 10^(scale - scale_) and re-codes the section, when
// the policy above allows it and no n reaches 2^53; else returns false and changes nothing.
bool ChunkWriter::Rescale(int scale) {
  if (max_magnitude_ == 0) {  // all integers are 0 (or none): the section stays as it is
    scale_ = scale;
    finer_pending_ = false;
    return true;
  }
  const int d = scale - scale_;
  if (d > kMaxRescaleDecimals) return false;
  const std::int64_t factor = kRescaleFactors[d];
  if (max_magnitude_ > static_cast<std::uint64_t>(internal::kMaxDecimalMagnitude / factor)) {
    return false;
  }
  if (count_ >= kEagerRescalePoints && !finer_pending_) {
    finer_pending_ = true;  // this one is raw; the next that needs a finer scale rescales
    return false;
  }
  std::vector<std::uint8_t> old;
  values_.AppendTo(&old);
  internal::DecimalDecoder in;
  in.in = BitReader(old, values_.bit_count());
  internal::DecimalEncoder encoder;
  BitWriter out;
  for (std::uint32_t i = 0; i < count_; ++i) {
    bool raw = false;
    std::uint64_t v = 0;
    (void)in.NextCode(&raw, &v);  // our own stream: cannot fail
    if (raw) {
      internal::DecimalEncoder::AppendRaw(v, out);
    } else {
      encoder.Append(static_cast<std::int64_t>(v) * factor, out);
    }
  }
  values_ = std::move(out);
  decimal_ = encoder;
  scale_ = scale;
  max_magnitude_ *= static_cast<std::uint64_t>(factor);
  finer_pending_ = false;
  return true;
}

// Re-codes the values so far in Gorilla XOR; the chunk stays XOR.
void ChunkWriter::SwitchToXor() {
  std::vector<std::uint8_t> old;
  values_.AppendTo(&old);
  internal::DecimalDecoder in;
  in.in = BitReader(old, values_.bit_count());
  in.divisor = internal::kPowersOf10[scale_];
  BitWriter out;
  xor_ = internal::XorEncoder();  // it only counted bits so far
  for (std::uint32_t i = 0; i < count_; ++i) {
    std::uint64_t bits = 0;
    (void)in.Next(&bits);  // our own stream: cannot fail
    xor_.Append(bits, out);
  }
  values_ = std::move(out);
  xor_mode_ = true;
}

core::Status ChunkWriter::Append(std::int64_t t_ns, std::int64_t value) {
  if (auto s = CheckAppend(t_ns, ValueType::kInt64); !s.ok()) return s;
  AppendTimestamp(t_ns);
  int_acc_.Add(value);
  const auto v = static_cast<std::uint64_t>(value);
  if (count_ == 0) {
    internal::WriteBucketed(values_, v);
  } else {
    const std::uint64_t delta = v - prev_int_;
    internal::WriteBucketed(values_, delta - prev_int_delta_);
    prev_int_delta_ = delta;
  }
  prev_int_ = v;
  ++count_;
  return {};
}

core::Status ChunkWriter::Append(std::int64_t t_ns, bool value) {
  if (auto s = CheckAppend(t_ns, ValueType::kBool); !s.ok()) return s;
  AppendTimestamp(t_ns);
  bool_acc_.Add(value);
  if (count_ == 0) {
    values_.WriteBit(value);
    run_bool_ = value;
    run_length_ = 1;
  } else if (value == run_bool_) {
    ++run_length_;
  } else {
    internal::WriteGamma(values_, run_length_);
    run_bool_ = value;
    run_length_ = 1;
  }
  ++count_;
  return {};
}

core::Status ChunkWriter::Append(std::int64_t t_ns, std::string_view value) {
  if (auto s = CheckAppend(t_ns, ValueType::kString); !s.ok()) return s;
  std::uint32_t code = 0;
  if (auto it = index_.find(value); it != index_.end()) {
    code = it->second;
  } else {
    const std::size_t added = internal::VarintSize(value.size()) + value.size();
    if (dictionary_bytes_ + added > kMaxDictionaryBytes) {
      return {"TSDB_CHUNK_FULL",
              fmt::format("a new string of {} bytes would take the chunk's dictionary beyond {} "
                          "bytes",
                          value.size(), kMaxDictionaryBytes)};
    }
    code = static_cast<std::uint32_t>(entries_.size());
    auto [inserted, ok] = index_.emplace(std::string(value), code);
    entries_.push_back(&inserted->first);
    dictionary_bytes_ += added;
  }
  AppendTimestamp(t_ns);
  AppendStringCode(code);
  ++count_;
  return {};
}

void ChunkWriter::AppendStringCode(std::uint32_t code) {
  if (count_ == 0) {
    run_code_ = code;
    run_length_ = 1;
    run_introduced_ = 0;
    return;
  }
  if (code == run_code_) {
    ++run_length_;
    return;
  }
  values_.Write(run_code_, std::bit_width(run_introduced_));
  internal::WriteGamma(values_, run_length_);
  if (run_code_ == run_introduced_) ++run_introduced_;
  run_code_ = code;
  run_length_ = 1;
}

core::Status ChunkWriter::Append(std::int64_t t_ns, const Value& value) {
  return std::visit(
      [&](const auto& v) -> core::Status {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return Append(t_ns, std::string_view(v));
        } else {
          return Append(t_ns, v);
        }
      },
      value);
}

std::size_t ChunkWriter::ValueSectionBits() const {
  if (count_ == 0) return 0;
  switch (type_) {
    case ValueType::kFloat64:
    case ValueType::kInt64:
      return values_.bit_count();
    case ValueType::kBool:
      return values_.bit_count() + internal::GammaBits(run_length_);
    case ValueType::kString:
      return 8 * (internal::VarintSize(entries_.size()) + dictionary_bytes_) + values_.bit_count() +
             std::bit_width(run_introduced_) + internal::GammaBits(run_length_);
  }
  return 0;
}

std::size_t ChunkWriter::HeaderBytes() const {
  const std::uint64_t span =
      static_cast<std::uint64_t>(last_t_) - static_cast<std::uint64_t>(first_t_);
  return 4 + (DecimalCoded() ? 1 : 0) + internal::VarintSize(count_) + 8 +
         internal::VarintSize(count_ > 0 ? span : 0) +
         internal::VarintSize(timestamps_.bit_count()) + internal::VarintSize(ValueSectionBits());
}

std::size_t ChunkWriter::EncodedBytes() const {
  return HeaderBytes() + timestamps_.byte_count() + (ValueSectionBits() + 7) / 8 + kChecksumBytes;
}

void ChunkWriter::AppendValueSection(std::vector<std::uint8_t>* out) const {
  if (count_ == 0) return;
  switch (type_) {
    case ValueType::kFloat64:
    case ValueType::kInt64:
      values_.AppendTo(out);
      return;
    case ValueType::kBool: {
      BitWriter runs = values_;
      internal::WriteGamma(runs, run_length_);
      runs.AppendTo(out);
      return;
    }
    case ValueType::kString: {
      internal::PutVarint(entries_.size(), out);
      for (const std::string* s : entries_) {
        internal::PutVarint(s->size(), out);
        out->insert(out->end(), s->begin(), s->end());
      }
      BitWriter runs = values_;
      runs.Write(run_code_, std::bit_width(run_introduced_));
      internal::WriteGamma(runs, run_length_);
      runs.AppendTo(out);
      return;
    }
  }
}

std::vector<std::uint8_t> ChunkWriter::Finish() const {
  std::vector<std::uint8_t> out;
  out.reserve(EncodedBytes());
  out.push_back(kMagic);
  out.push_back(DecimalCoded() ? kDecimalVersion : kVersion);
  out.push_back(static_cast<std::uint8_t>(type_));
  out.push_back(static_cast<std::uint8_t>(unit_));
  if (DecimalCoded()) out.push_back(static_cast<std::uint8_t>(scale_));
  internal::PutVarint(count_, &out);
  PutFixed64(count_ > 0 ? static_cast<std::uint64_t>(first_t_) : 0, &out);
  internal::PutVarint(
      count_ > 0 ? static_cast<std::uint64_t>(last_t_) - static_cast<std::uint64_t>(first_t_) : 0,
      &out);
  internal::PutVarint(timestamps_.bit_count(), &out);
  internal::PutVarint(ValueSectionBits(), &out);
  timestamps_.AppendTo(&out);
  AppendValueSection(&out);
  PutFixed64(Checksum(out), &out);
  return out;
}

// ---- ChunkReader ----------------------------------------------------------------------------

core::Result<ChunkReader> ChunkReader::Open(std::span<const std::uint8_t> chunk) {
  const std::size_t size = chunk.size();
  std::size_t pos = 0;
  auto truncated_header = [&] {
    return Corrupt(fmt::format("truncated: the chunk ends inside its header ({} bytes)", size));
  };
  if (size < 4) {
    if (size > 0 && chunk[0] != kMagic) {
      return Corrupt(fmt::format("bad header: magic byte {:#04x}, want {:#04x}", chunk[0], kMagic));
    }
    return truncated_header();
  }
  if (chunk[0] != kMagic) {
    return Corrupt(fmt::format("bad header: magic byte {:#04x}, want {:#04x}", chunk[0], kMagic));
  }
  if (chunk[1] != kVersion && chunk[1] != kDecimalVersion) {
    return Corrupt(fmt::format("bad header: format version {}, this build reads {} and {}",
                               chunk[1], kVersion, kDecimalVersion));
  }
  if (!ValidType(chunk[2])) {
    return Corrupt(fmt::format("bad header: unknown value type {}", chunk[2]));
  }
  if (!ValidUnit(chunk[3])) {
    return Corrupt(fmt::format("bad header: unknown timestamp unit {}", chunk[3]));
  }
  pos = 4;
  int decimal_scale = -1;
  if (chunk[1] == kDecimalVersion) {
    if (chunk[2] != static_cast<std::uint8_t>(ValueType::kFloat64)) {
      return Corrupt(fmt::format("bad header: format version {} for a {} chunk", kDecimalVersion,
                                 ValueTypeName(static_cast<ValueType>(chunk[2]))));
    }
    if (size < 5) return truncated_header();
    if (chunk[4] > internal::kMaxDecimalScale) {
      return Corrupt(fmt::format("bad header: decimal scale {}, more than {}", chunk[4],
                                 internal::kMaxDecimalScale));
    }
    decimal_scale = chunk[4];
    pos = 5;
  }
  std::uint64_t count = 0;
  if (!internal::GetVarint(chunk, &pos, &count)) return truncated_header();
  if (count > kMaxChunkPoints) {
    return Corrupt(
        fmt::format("bad header: {} points, more than the limit {}", count, kMaxChunkPoints));
  }
  if (size - pos < 8) return truncated_header();
  const auto first = static_cast<std::int64_t>(GetFixed64(chunk.data() + pos));
  pos += 8;
  std::uint64_t span = 0;
  std::uint64_t ts_bits = 0;
  std::uint64_t value_bits = 0;
  if (!internal::GetVarint(chunk, &pos, &span) || !internal::GetVarint(chunk, &pos, &ts_bits) ||
      !internal::GetVarint(chunk, &pos, &value_bits)) {
    return truncated_header();
  }
  const std::uint64_t ts_bytes = ts_bits / 8 + (ts_bits % 8 != 0 ? 1 : 0);
  const std::uint64_t value_bytes = value_bits / 8 + (value_bits % 8 != 0 ? 1 : 0);
  // The announced length, saturating (each section is at most `size` bytes if the chunk is valid).
  const std::uint64_t announced = (ts_bytes > size || value_bytes > size)
                                      ? std::numeric_limits<std::uint64_t>::max()
                                      : pos + ts_bytes + value_bytes + kChecksumBytes;
  if (announced > size) {
    return Corrupt(
        announced == std::numeric_limits<std::uint64_t>::max()
            ? fmt::format("truncated: the chunk is {} bytes, its header announces sections of {} "
                          "and {} bits",
                          size, ts_bits, value_bits)
            : fmt::format("truncated: the chunk is {} bytes, its header announces {}", size,
                          announced));
  }
  if (announced < size) {
    return Corrupt(fmt::format(
        "bad header: the chunk is {} bytes, its header announces {} (bytes after the checksum)",
        size, announced));
  }
  const std::uint64_t stored = GetFixed64(chunk.data() + size - kChecksumBytes);
  const std::uint64_t computed = Checksum(chunk.first(size - kChecksumBytes));
  if (stored != computed) {
    return Corrupt(
        fmt::format("checksum mismatch: stored {:016x}, computed {:016x}", stored, computed));
  }

  // The checksum matched: what follows only catches chunks no ChunkWriter wrote.
  ChunkReader r;
  r.info_.type = static_cast<ValueType>(chunk[2]);
  r.info_.unit = static_cast<TimeUnit>(chunk[3]);
  r.info_.count = static_cast<std::uint32_t>(count);
  r.info_.first_t_ns = first;
  r.info_.bytes = size;
  r.info_.decimal_scale = decimal_scale;
  if (span > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) -
                 static_cast<std::uint64_t>(first)) {
    return Corrupt("bad header: the last timestamp is beyond the int64 range");
  }
  r.info_.last_t_ns = static_cast<std::int64_t>(static_cast<std::uint64_t>(first) + span);
  if (count == 0 && (first != 0 || span != 0 || ts_bits != 0 || value_bits != 0)) {
    return Corrupt("bad header: an empty chunk with timestamps or sections");
  }
  if (count == 0 && decimal_scale >= 0) {
    return Corrupt("bad header: an empty chunk with a decimal scale");
  }
  if (count == 1 && (span != 0 || ts_bits != 0)) {
    return Corrupt("bad header: a one-point chunk with a time span or timestamp section");
  }
  // Every timestamp after the first takes at least one bit.
  if (count > 1 && ts_bits < count - 1) {
    return Corrupt(fmt::format("count mismatch: {} points cannot fit a {}-bit timestamp section",
                               count, ts_bits));
  }
  r.timestamps_ = chunk.subspan(pos, ts_bytes);
  r.timestamp_bits_ = ts_bits;
  r.values_ = chunk.subspan(pos + ts_bytes, value_bytes);
  r.value_bits_ = value_bits;

  if (r.info_.type == ValueType::kString && count > 0) {
    std::span<const std::uint8_t> section = r.values_;
    std::size_t at = 0;
    std::uint64_t entries = 0;
    if (!internal::GetVarint(section, &at, &entries)) {
      return Corrupt("bad stream: the dictionary's size is cut off");
    }
    if (entries == 0 || entries > count || entries > section.size()) {
      return Corrupt(
          fmt::format("bad stream: a dictionary of {} strings for {} points", entries, count));
    }
    r.dictionary_.reserve(entries);
    for (std::uint64_t i = 0; i < entries; ++i) {
      std::uint64_t length = 0;
      if (!internal::GetVarint(section, &at, &length) || length > section.size() - at) {
        return Corrupt(fmt::format("bad stream: dictionary entry {} is cut off", i));
      }
      r.dictionary_.emplace_back(reinterpret_cast<const char*>(section.data() + at), length);
      at += length;
    }
    if (8 * at > value_bits) {
      return Corrupt("bad stream: the dictionary is longer than the value section");
    }
    r.values_ = section.subspan(at);
    r.value_bits_ = value_bits - 8 * at;
  }
  return r;
}

// ---- ChunkIterator --------------------------------------------------------------------------

ChunkIterator::ChunkIterator(const ChunkReader& reader)
    : type_(reader.info_.type), count_(reader.info_.count), last_t_(reader.info_.last_t_ns) {
  ts_.in = BitReader(reader.timestamps_, reader.timestamp_bits_);
  ts_.unit_ns = static_cast<std::uint64_t>(NanosecondsPer(reader.info_.unit));
  ts_.t = reader.info_.first_t_ns;
  ts_.max_t = reader.info_.last_t_ns;
  const BitReader values(reader.values_, reader.value_bits_);
  switch (type_) {
    case ValueType::kFloat64:
      is_decimal_ = reader.info_.decimal_scale >= 0;
      if (is_decimal_) {
        decimal_.in = values;
        decimal_.divisor = internal::kPowersOf10[reader.info_.decimal_scale];
      } else {
        float_.in = values;
      }
      break;
    case ValueType::kInt64:
      int_.in = values;
      break;
    case ValueType::kBool:
      bool_.in = values;
      bool_.points_left = count_;
      break;
    case ValueType::kString:
      string_.in = values;
      string_.points_left = count_;
      string_.dictionary = reader.dictionary_;
      break;
  }
}

bool ChunkIterator::Fail(const char* what) {
  status_ = Corrupt(fmt::format("{} (point {} of {})", what, index_ + 1, count_));
  index_ = count_;
  return false;
}

bool ChunkIterator::Next() {
  if (index_ >= count_) return false;
  if (index_ > 0 && !ts_.Next()) return Fail(ts_.error);
  switch (type_) {
    case ValueType::kFloat64:
      if (is_decimal_) {
        if (!decimal_.Next(&float_bits_)) return Fail(decimal_.error);
      } else if (!float_.Next(&float_bits_)) {
        return Fail(float_.error);
      }
      break;
    case ValueType::kInt64:
      if (!int_.Next(&int_value_)) return Fail(int_.error);
      break;
    case ValueType::kBool:
      if (!bool_.Next(&bool_value_)) return Fail(bool_.error);
      break;
    case ValueType::kString:
      if (!string_.Next(&string_value_)) return Fail(string_.error);
      break;
  }
  if (index_ + 1 == count_ && !CheckEnd()) return false;
  ++index_;
  return true;
}

// After the last point: both streams used up exactly, the header's last timestamp reached.
bool ChunkIterator::CheckEnd() {
  if (ts_.t != last_t_) {
    return Fail("count mismatch: the last timestamp is not the header's");
  }
  if (!ts_.in.AtCleanEnd()) {
    return Fail("count mismatch: the timestamp stream goes on after the last point");
  }
  bool clean = true;
  switch (type_) {
    case ValueType::kFloat64:
      clean = is_decimal_ ? decimal_.in.AtCleanEnd() : float_.in.AtCleanEnd();
      break;
    case ValueType::kInt64:
      clean = int_.in.AtCleanEnd();
      break;
    case ValueType::kBool:
      clean = bool_.in.AtCleanEnd();
      break;
    case ValueType::kString:
      clean = string_.in.AtCleanEnd();
      if (clean && string_.seen != string_.dictionary.size()) {
        return Fail("bad stream: dictionary entries no point uses");
      }
      break;
  }
  if (!clean) return Fail("count mismatch: the value stream goes on after the last point");
  return true;
}

double ChunkIterator::float_value() const { return std::bit_cast<double>(float_bits_); }

Value ChunkIterator::value() const {
  switch (type_) {
    case ValueType::kFloat64:
      return float_value();
    case ValueType::kInt64:
      return int_value_;
    case ValueType::kBool:
      return bool_value_;
    case ValueType::kString:
      return std::string(string_value_);
  }
  return {};
}

// ---- Aggregates -----------------------------------------------------------------------------

namespace internal {

void FloatAccumulator::Into(RangeAggregate* a) const {
  a->nan_count = nan;
  a->sum = sum;
  if (a->count > nan) {
    a->min = min;
    a->max = max;
  }
  a->last = std::bit_cast<double>(bits);
}

void IntAccumulator::Into(RangeAggregate* a) const {
  a->sum = static_cast<double>(sum);
  a->min = static_cast<double>(min);
  a->max = static_cast<double>(max);
  a->last = static_cast<double>(last);
  a->int_min = min;
  a->int_max = max;
  a->int_last = last;
}

void BoolAccumulator::Into(RangeAggregate* a) const {
  a->sum = static_cast<double>(trues);
  a->min = any_false ? 0 : 1;
  a->max = trues > 0 ? 1 : 0;
  a->last = last ? 1 : 0;
}

}  // namespace internal

RangeAggregate ChunkWriter::Summary() const {
  RangeAggregate a;
  if (count_ == 0) return a;
  a.count = count_;
  a.first_t_ns = first_t_;
  a.last_t_ns = last_t_;
  switch (type_) {
    case ValueType::kFloat64:
      float_acc_.Into(&a);
      break;
    case ValueType::kInt64:
      int_acc_.Into(&a);
      break;
    case ValueType::kBool:
      bool_acc_.Into(&a);
      break;
    case ValueType::kString:
      break;
  }
  return a;
}

namespace {

using internal::BoolAccumulator;
using internal::FloatAccumulator;
using internal::IntAccumulator;
using internal::StringAccumulator;

// Decodes points in order into `acc` while from_ns <= t <= to_ns. With `whole` (the range covers
// the chunk) the timestamp stream is not read at all. Returns a corruption message or nullptr.
template <typename Value, typename Decoder, typename Accumulator>
const char* Scan(Decoder& values, internal::TimestampDecoder& ts, std::uint32_t count,
                 std::int64_t from_ns, std::int64_t to_ns, bool whole, Accumulator& acc,
                 RangeAggregate* agg) {
  Value v{};
  if (whole) {
    for (std::uint32_t i = 0; i < count; ++i) {
      if (!values.Next(&v)) return values.error;
      acc.Add(v);
    }
    if (!values.in.AtCleanEnd())
      return "count mismatch: the value stream goes on after the last point";
    agg->count = count;
    return nullptr;
  }
  std::uint64_t n = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    if (i > 0 && !ts.Next()) return ts.error;
    if (!values.Next(&v)) return values.error;
    if (ts.t < from_ns) continue;
    if (ts.t > to_ns) break;
    if (n == 0) agg->first_t_ns = ts.t;
    agg->last_t_ns = ts.t;
    ++n;
    acc.Add(v);
  }
  agg->count = n;
  return nullptr;
}

}  // namespace

// The range test, the timestamp decoder and the value decoder of this chunk's type, shared by
// Aggregate and CollectNumbers: visit(std::type_identity<value type>, decoder, timestamps, whole,
// &agg) scans and returns a corruption message or nullptr.
template <class Visit>
core::Result<RangeAggregate> ChunkReader::ScanRange(std::int64_t from_ns, std::int64_t to_ns,
                                                    Visit&& visit) const {
  RangeAggregate agg;
  if (info_.count == 0 || from_ns > to_ns || to_ns < info_.first_t_ns ||
      from_ns > info_.last_t_ns) {
    return agg;
  }
  const bool whole = from_ns <= info_.first_t_ns && info_.last_t_ns <= to_ns;
  if (whole) {
    agg.first_t_ns = info_.first_t_ns;
    agg.last_t_ns = info_.last_t_ns;
  }
  internal::TimestampDecoder ts;
  ts.in = BitReader(timestamps_, timestamp_bits_);
  ts.unit_ns = static_cast<std::uint64_t>(NanosecondsPer(info_.unit));
  ts.t = info_.first_t_ns;
  ts.max_t = info_.last_t_ns;
  const BitReader values(values_, value_bits_);
  const char* error = nullptr;
  switch (info_.type) {
    case ValueType::kFloat64:
      if (info_.decimal_scale >= 0) {
        internal::DecimalDecoder d;
        d.in = values;
        d.divisor = internal::kPowersOf10[info_.decimal_scale];
        error = visit(std::type_identity<std::uint64_t>(), d, ts, whole, &agg);
      } else {
        internal::XorDecoder d;
        d.in = values;
        error = visit(std::type_identity<std::uint64_t>(), d, ts, whole, &agg);
      }
      break;
    case ValueType::kInt64: {
      internal::IntDecoder d;
      d.in = values;
      error = visit(std::type_identity<std::int64_t>(), d, ts, whole, &agg);
      break;
    }
    case ValueType::kBool: {
      internal::BoolDecoder d;
      d.in = values;
      d.points_left = info_.count;
      error = visit(std::type_identity<bool>(), d, ts, whole, &agg);
      break;
    }
    case ValueType::kString: {
      internal::StringDecoder d;
      d.in = values;
      d.points_left = info_.count;
      d.dictionary = dictionary_;
      error = visit(std::type_identity<std::string_view>(), d, ts, whole, &agg);
      if (error == nullptr && whole && d.seen != dictionary_.size()) {
        error = "bad stream: dictionary entries no point uses";
      }
      break;
    }
  }
  if (error != nullptr) return Corrupt(error);
  return agg;
}

core::Result<RangeAggregate> ChunkReader::Aggregate(std::int64_t from_ns,
                                                    std::int64_t to_ns) const {
  return ScanRange(
      from_ns, to_ns,
      [&]<typename T, typename D>(std::type_identity<T>, D& d, internal::TimestampDecoder& ts,
                                  bool whole, RangeAggregate* agg) -> const char* {
        using Acc = std::conditional_t<
            std::is_same_v<T, std::uint64_t>, FloatAccumulator,
            std::conditional_t<
                std::is_same_v<T, std::int64_t>, IntAccumulator,
                std::conditional_t<std::is_same_v<T, bool>, BoolAccumulator, StringAccumulator>>>;
        Acc acc;
        const char* error = Scan<T>(d, ts, info_.count, from_ns, to_ns, whole, acc, agg);
        if (error == nullptr && agg->count > 0) acc.Into(agg);
        return error;
      });
}

namespace {

// Gathers numbers for CollectNumbers: float64 bits (NaN left out), int64 and bool as doubles.
struct NumberCollector {
  std::vector<double>* out;
  void Add(std::uint64_t bits) {
    const double v = std::bit_cast<double>(bits);
    if (!std::isnan(v)) out->push_back(v);
  }
  void Add(std::int64_t v) { out->push_back(static_cast<double>(v)); }
  void Add(bool v) { out->push_back(v ? 1.0 : 0.0); }
};

}  // namespace

core::Result<RangeAggregate> ChunkReader::CollectNumbers(std::int64_t from_ns, std::int64_t to_ns,
                                                         std::vector<double>* out) const {
  if (info_.type == ValueType::kString) {
    return core::Status("TSDB_TYPE_MISMATCH", "a string chunk holds no numbers");
  }
  const std::size_t before = out->size();
  auto agg = ScanRange(
      from_ns, to_ns,
      [&]<typename T, typename D>(std::type_identity<T>, D& d, internal::TimestampDecoder& ts,
                                  bool whole, RangeAggregate* a) -> const char* {
        if constexpr (std::is_same_v<T, std::string_view>) {
          return "a string chunk holds no numbers";  // refused above
        } else {
          NumberCollector acc{out};
          return Scan<T>(d, ts, info_.count, from_ns, to_ns, whole, acc, a);
        }
      });
  if (!agg.ok()) {
    out->resize(before);
    return agg;
  }
  agg->nan_count = agg->count - (out->size() - before);
  return agg;
}

// ---- Whole chunks ---------------------------------------------------------------------------

core::Result<std::vector<std::uint8_t>> EncodeChunk(ValueType type, std::span<const Point> points) {
  ChunkWriter writer(type);
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (auto s = writer.Append(points[i].t_ns, points[i].value); !s.ok()) {
      return core::Status(s.code(), fmt::format("point {}: {}", i, s.message()));
    }
  }
  return writer.Finish();
}

core::Result<std::vector<Point>> DecodeChunk(std::span<const std::uint8_t> chunk) {
  auto reader = ChunkReader::Open(chunk);
  if (!reader.ok()) return reader.status();
  std::vector<Point> points;
  // Not reserve(count): a forged count must not allocate before the streams prove it.
  ChunkIterator it = reader->Points();
  while (it.Next()) points.push_back({it.t_ns(), it.value()});
  if (!it.status().ok()) return it.status();
  return points;
}

}  // namespace doppel::tsdb
