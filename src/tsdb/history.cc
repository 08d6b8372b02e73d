#include "tsdb/history.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <iterator>
#include <latch>
#include <utility>

#include "core/time.h"

namespace doppel::tsdb {

using core::Status;

// ---- MemoryBackend ----------------------------------------------------------------------------

MemoryBackend::MemoryBackend(const MemoryBackend& other) : HistoryBackend() {
  std::lock_guard lock(other.mu_);
  data_ = other.data_;
}

Status MemoryBackend::Write(std::span<const KeyOp> ops) {
  if (fail_) return Status("TSDB_IO", "memory backend: writes fail (test switch)");
  std::lock_guard lock(mu_);
  for (const KeyOp& op : ops) {
    if (op.value) {
      data_.insert_or_assign(op.key, *op.value);
    } else {
      data_.erase(op.key);
    }
  }
  return {};
}

Status MemoryBackend::DeleteRange(std::string_view begin, std::string_view end) {
  if (fail_) return Status("TSDB_IO", "memory backend: writes fail (test switch)");
  std::lock_guard lock(mu_);
  data_.erase(data_.lower_bound(begin), data_.lower_bound(end));
  return {};
}

Status MemoryBackend::Scan(
    std::string_view prefix,
    const std::function<void(std::string_view, std::string_view)>& fn) const {
  std::lock_guard lock(mu_);
  for (auto it = data_.lower_bound(prefix);
       it != data_.end() && std::string_view(it->first).starts_with(prefix); ++it) {
    fn(it->first, it->second);
  }
  return {};
}

std::size_t MemoryBackend::size() const {
  std::lock_guard lock(mu_);
  return data_.size();
}

// ---- Keys and records -------------------------------------------------------------------------

namespace {

constexpr std::string_view kSeriesPrefix = "h/s/";
constexpr std::string_view kChunkPrefix = "h/c/";
constexpr std::string_view kWalPrefix = "h/w/";
constexpr std::string_view kCheckpointKey = "h/k";

void PutBE(std::string* out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
std::uint64_t GetBE(std::string_view s, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<std::uint8_t>(s[at + i]);
  return v;
}

std::string SeriesKey(std::uint64_t id) {
  std::string k(kSeriesPrefix);
  PutBE(&k, id, 8);
  return k;
}
std::string ChunkKey(std::uint64_t id, std::uint32_t no) {
  std::string k(kChunkPrefix);
  PutBE(&k, id, 8);
  PutBE(&k, no, 4);
  return k;
}
std::string WalKey(std::uint64_t seq) {
  std::string k(kWalPrefix);
  PutBE(&k, seq, 8);
  return k;
}

std::string IndexKey(std::string_view twin, std::string_view path) {
  std::string k;
  k.reserve(twin.size() + path.size() + 1);
  k.append(twin);
  k.push_back('\0');
  k.append(path);
  return k;
}

std::uint64_t ZigZag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
std::int64_t UnZigZag(std::uint64_t v) {
  return static_cast<std::int64_t>((v >> 1) ^ (~(v & 1) + 1));
}

bool GetVarintS(std::string_view in, std::size_t* pos, std::uint64_t* v) {
  std::uint64_t r = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*pos >= in.size()) return false;
    const auto b = static_cast<std::uint8_t>(in[(*pos)++]);
    r |= std::uint64_t{b & 0x7Fu} << shift;
    if ((b & 0x80) == 0) {
      *v = r;
      return true;
    }
  }
  return false;
}

char* PutVarint(char* out, std::uint64_t v) {
  while (v >= 0x80) {
    *out++ = static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  *out++ = static_cast<char>(v);
  return out;
}

// Write-ahead record: one or more blocks (a call prepared in parts has one per part), each a
// varint point count, then per point: varint series id, varint zigzag(t - previous t in the
// block; the first against 0), value type byte, value (float64: 8 bytes little-endian bits;
// int64: varint zigzag; bool: 1 byte; string: varint length + bytes). The points of a record,
// block after block, are one call's in arrival order.
// Writes one point at `out` (room for kMaxEncodedPoint bytes, plus a string's length) and
// returns the end.
char* EncodePoint(char* out, std::uint64_t series, std::int64_t t, std::int64_t* prev_t,
                  const Value& v) {
  out = PutVarint(out, series);
  out = PutVarint(out, ZigZag(static_cast<std::int64_t>(static_cast<std::uint64_t>(t) -
                                                        static_cast<std::uint64_t>(*prev_t))));
  *prev_t = t;
  const ValueType type = TypeOf(v);
  *out++ = static_cast<char>(type);
  switch (type) {
    case ValueType::kFloat64: {
      const auto bits = std::bit_cast<std::uint64_t>(std::get<double>(v));
      for (int i = 0; i < 8; ++i) *out++ = static_cast<char>((bits >> (8 * i)) & 0xFF);
      break;
    }
    case ValueType::kInt64:
      out = PutVarint(out, ZigZag(std::get<std::int64_t>(v)));
      break;
    case ValueType::kBool:
      *out++ = std::get<bool>(v) ? 1 : 0;
      break;
    case ValueType::kString: {
      const std::string& s = std::get<std::string>(v);
      out = PutVarint(out, s.size());
      out = std::copy(s.begin(), s.end(), out);
      break;
    }
  }
  return out;
}

struct WalPoint {
  std::uint64_t series = 0;
  std::int64_t t = 0;
  Value value;
};

// One block of a record from *pos; false when it is malformed.
bool DecodeBlock(std::string_view in, std::size_t* at, std::vector<WalPoint>* out) {
  std::size_t pos = *at;
  std::uint64_t n = 0;
  if (!GetVarintS(in, &pos, &n) || n > in.size() - pos) return false;
  std::int64_t prev = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    WalPoint p;
    std::uint64_t dt = 0;
    if (!GetVarintS(in, &pos, &p.series) || !GetVarintS(in, &pos, &dt) || pos >= in.size()) {
      return false;
    }
    p.t = static_cast<std::int64_t>(static_cast<std::uint64_t>(prev) +
                                    static_cast<std::uint64_t>(UnZigZag(dt)));
    prev = p.t;
    const auto type = static_cast<ValueType>(in[pos++]);
    switch (type) {
      case ValueType::kFloat64: {
        if (pos + 8 > in.size()) return false;
        std::uint64_t bits = 0;
        for (int b = 0; b < 8; ++b) {
          bits |= std::uint64_t{static_cast<std::uint8_t>(in[pos + b])} << (8 * b);
        }
        pos += 8;
        p.value = std::bit_cast<double>(bits);
        break;
      }
      case ValueType::kInt64: {
        std::uint64_t z = 0;
        if (!GetVarintS(in, &pos, &z)) return false;
        p.value = UnZigZag(z);
        break;
      }
      case ValueType::kBool:
        if (pos >= in.size()) return false;
        p.value = in[pos++] != 0;
        break;
      case ValueType::kString: {
        std::uint64_t len = 0;
        if (!GetVarintS(in, &pos, &len) || len > in.size() - pos) return false;
        p.value = std::string(in.substr(pos, len));
        pos += len;
        break;
      }
      default:
        return false;
    }
    out->push_back(std::move(p));
  }
  *at = pos;
  return true;
}

bool DecodeRecord(std::string_view in, std::vector<WalPoint>* out) {
  std::size_t pos = 0;
  do {
    if (!DecodeBlock(in, &pos, out)) return false;
  } while (pos < in.size());
  return true;
}

std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// The last time of the window of `span` nanoseconds that holds t (windows start at multiples of
// span): a chunk's (chunk_span_ns, computed once per head so that an append needs no division)
// or a minute cell's.
std::int64_t SpanLast(std::int64_t t, std::int64_t span) {
  __extension__ using Wide = __int128;
  const Wide last = static_cast<Wide>(FloorDiv(t, span)) * span + (span - 1);
  return last > std::numeric_limits<std::int64_t>::max() ? std::numeric_limits<std::int64_t>::max()
                                                         : static_cast<std::int64_t>(last);
}

}  // namespace

std::optional<Agg> ParseAgg(std::string_view s) {
  static constexpr std::pair<std::string_view, Agg> kNames[] = {
      {"mean", Agg::kMean}, {"min", Agg::kMin},     {"max", Agg::kMax},
      {"last", Agg::kLast}, {"count", Agg::kCount}, {"sum", Agg::kSum},
      {"p50", Agg::kP50},   {"p95", Agg::kP95},     {"p99", Agg::kP99}};
  for (const auto& [name, agg] : kNames) {
    if (s == name) return agg;
  }
  return std::nullopt;
}

std::string_view AggName(Agg agg) {
  switch (agg) {
    case Agg::kMean:
      return "mean";
    case Agg::kMin:
      return "min";
    case Agg::kMax:
      return "max";
    case Agg::kLast:
      return "last";
    case Agg::kCount:
      return "count";
    case Agg::kSum:
      return "sum";
    case Agg::kP50:
      return "p50";
    case Agg::kP95:
      return "p95";
    case Agg::kP99:
      return "p99";
  }
  return "?";
}

std::optional<std::int64_t> RetentionPolicy::For(std::string_view twin,
                                                 std::string_view model) const {
  if (auto it = by_twin.find(twin); it != by_twin.end()) return it->second;
  if (auto it = by_model.find(model); it != by_model.end()) return it->second;
  return default_ns;
}

bool RetentionPolicy::AddSpec(std::string_view spec,
                              std::map<std::string, std::int64_t, std::less<>>* into) {
  const std::size_t eq = spec.rfind('=');
  if (eq == std::string_view::npos || eq == 0) return false;
  auto d = core::ParseDurationNs(spec.substr(eq + 1));
  if (!d || *d <= 0) return false;
  (*into)[std::string(spec.substr(0, eq))] = *d;
  return true;
}

// ---- HistoryBackend's write-ahead log as keys ---------------------------------------------------

Status HistoryBackend::AppendLog(std::span<const LogRecord> records) {
  std::vector<KeyOp> ops;
  ops.reserve(records.size());
  for (const LogRecord& r : records) ops.push_back({WalKey(r.seq), std::string(r.bytes)});
  return Write(ops);
}

Status HistoryBackend::TrimLog(std::uint64_t upto) {
  return DeleteRange(WalKey(0), WalKey(upto + 1));
}

Status HistoryBackend::ScanLog(
    const std::function<void(std::uint64_t, std::string_view)>& fn) const {
  return Scan(kWalPrefix, [&](std::string_view key, std::string_view value) {
    if (key.size() == kWalPrefix.size() + 8) fn(GetBE(key, kWalPrefix.size(), 8), value);
  });
}

// ---- The store --------------------------------------------------------------------------------

namespace {

constexpr std::int64_t kMinuteNs = std::int64_t{60} * 1'000'000'000;

// One minute of a chunk (the rollup that answers aggregates whose step is a whole number of
// minutes without decoding points). min, max and last hold a double (float64; bool as 0/1) or an
// int64 (int64 series), by the series' type; min and max only when count > nan.
struct MinuteCell {
  std::int64_t last_t = 0;  // the newest point's time; its minute is the cell's
  double sum = 0;
  std::uint64_t min = 0, max = 0, last = 0;
  std::uint32_t count = 0, nan = 0;
};
using MinuteCells = std::vector<MinuteCell>;

// The minute cells of points given in time order (one chunk's), built one point at a time.
class MinuteCellBuilder {
 public:
  explicit MinuteCellBuilder(ValueType type) : type_(type) {}

  void Add(std::int64_t t, double v) {  // float64
    MinuteCell& c = Cell(t);
    c.last = std::bit_cast<std::uint64_t>(v);
    if (std::isnan(v)) {
      ++c.nan;
      return;
    }
    AddNumber(c, v);
  }
  void Add(std::int64_t t, std::int64_t v) {
    MinuteCell& c = Cell(t);
    c.last = static_cast<std::uint64_t>(v);
    c.sum += static_cast<double>(v);
    imin_ = std::min(imin_, v);
    imax_ = std::max(imax_, v);
  }
  void Add(std::int64_t t, bool b) {
    const double v = b ? 1.0 : 0.0;
    MinuteCell& c = Cell(t);
    c.last = std::bit_cast<std::uint64_t>(v);
    AddNumber(c, v);
  }
  void Add(std::int64_t t, const Value& v) {  // strings have no cells
    if (const auto* d = std::get_if<double>(&v)) Add(t, *d);
    if (const auto* i = std::get_if<std::int64_t>(&v)) Add(t, *i);
    if (const auto* b = std::get_if<bool>(&v)) Add(t, *b);
  }

  // The cells so far; the builder starts over.
  MinuteCells Take() {
    Close();
    MinuteCells out = std::move(cells_);
    cells_.clear();
    out.shrink_to_fit();
    return out;
  }

 private:
  // The cell of t (a new one when t is past the open cell's minute), counted and timed.
  MinuteCell& Cell(std::int64_t t) {
    if (cells_.empty() || t > minute_last_) {
      Close();
      cells_.emplace_back();
      minute_last_ = SpanLast(t, kMinuteNs);
      fmin_ = std::numeric_limits<double>::infinity();
      fmax_ = -fmin_;
      imin_ = std::numeric_limits<std::int64_t>::max();
      imax_ = std::numeric_limits<std::int64_t>::min();
    }
    MinuteCell& c = cells_.back();
    ++c.count;
    c.last_t = t;
    return c;
  }
  void AddNumber(MinuteCell& c, double v) {
    c.sum += v;
    fmin_ = std::min(fmin_, v);
    fmax_ = std::max(fmax_, v);
  }
  // Writes the open cell's min and max.
  void Close() {
    if (cells_.empty()) return;
    MinuteCell& c = cells_.back();
    if (type_ == ValueType::kInt64) {
      c.min = static_cast<std::uint64_t>(imin_);
      c.max = static_cast<std::uint64_t>(imax_);
    } else {
      c.min = std::bit_cast<std::uint64_t>(fmin_);
      c.max = std::bit_cast<std::uint64_t>(fmax_);
    }
  }

  ValueType type_;
  MinuteCells cells_;             // the last one is open: min and max not written yet
  std::int64_t minute_last_ = 0;  // the last time of the open cell's minute
  double fmin_ = 0, fmax_ = 0;
  std::int64_t imin_ = 0, imax_ = 0;
};

// A chunk worth a minute rollup: numeric, over two minutes or more, and dense.
bool WantsMinutes(const ChunkInfo& info, double density) {
  if (info.count == 0 || info.type == ValueType::kString) return false;
  const std::int64_t minutes =
      FloorDiv(info.last_t_ns, kMinuteNs) - FloorDiv(info.first_t_ns, kMinuteNs) + 1;
  return minutes >= 2 && static_cast<double>(info.count) >= density * static_cast<double>(minutes);
}

}  // namespace

struct HistoryStore::ChunkRef {
  std::uint32_t no = 0;
  ChunkInfo info;
  RangeAggregate summary;  // of the whole chunk
  std::shared_ptr<const std::vector<std::uint8_t>> bytes;
  bool persisted = false;
  // Per-minute rollup of a dense chunk (options.rollup_density); null otherwise.
  std::shared_ptr<const MinuteCells> minutes;
};

struct HistoryStore::Series {
  std::uint64_t id = 0;
  std::string twin, path;
  ValueType type = ValueType::kFloat64;
  std::atomic<bool> meta_persisted{false};
  // The newest time of any point applied (a hint read without the lock: a point newer than it
  // cannot repeat a stored one).
  std::atomic<std::int64_t> max_t{std::numeric_limits<std::int64_t>::min()};

  mutable std::mutex mu;
  std::vector<ChunkRef> chunks;  // by info.first_t_ns, then chunk number
  std::optional<ChunkWriter> head;
  std::optional<MinuteCellBuilder> head_cells;  // the head's minute cells (not for strings)
  std::uint32_t head_no = 0;
  std::int64_t head_span_last = 0;  // the last time of the chunk_span_ns window of the head
  bool head_dirty = false;
  std::vector<Point> late;  // older than the head; a chunk at the next checkpoint
  std::uint32_t next_chunk = 0;
  bool deleted = false;
  std::vector<std::string> corrupt;  // chunks that failed their checks at Open

  void Insert(ChunkRef c) {
    if (c.info.count > 0 && c.info.last_t_ns > max_t.load(std::memory_order_relaxed)) {
      max_t.store(c.info.last_t_ns, std::memory_order_relaxed);
    }
    auto at =
        std::upper_bound(chunks.begin(), chunks.end(), c, [](const ChunkRef& a, const ChunkRef& b) {
          return a.info.first_t_ns != b.info.first_t_ns ? a.info.first_t_ns < b.info.first_t_ns
                                                        : a.no < b.no;
        });
    chunks.insert(at, std::move(c));
  }
};

// What a query needs from one series, copied under its lock.
struct HistoryStore::Snapshot {
  ValueType type = ValueType::kFloat64;
  std::vector<ChunkRef> chunks;  // overlapping the range, by first time; head and late included
};

namespace {

core::Result<RangeAggregate> Summarize(const ChunkReader& r) {
  return r.Aggregate(std::numeric_limits<std::int64_t>::min(),
                     std::numeric_limits<std::int64_t>::max());
}

// The minute cells of a chunk, in time order. Errors: TSDB_CHUNK_CORRUPT.
core::Result<MinuteCells> BuildMinuteCells(const ChunkReader& r) {
  const ValueType type = r.info().type;
  if (type == ValueType::kString) return Status("TSDB_BAD_QUERY", "no minute rollups for strings");
  MinuteCellBuilder cells(type);
  ChunkIterator it = r.Points();
  while (it.Next()) {
    switch (type) {
      case ValueType::kFloat64:
        cells.Add(it.t_ns(), it.float_value());
        break;
      case ValueType::kInt64:
        cells.Add(it.t_ns(), it.int_value());
        break;
      default:
        cells.Add(it.t_ns(), it.bool_value());
        break;
    }
  }
  if (!it.status().ok()) return it.status();
  return cells.Take();
}

}  // namespace

core::Result<HistoryStore::ChunkRef> HistoryStore::MakeChunkRef(
    std::uint32_t no, std::shared_ptr<const std::vector<std::uint8_t>> bytes,
    bool persisted) const {
  auto reader = ChunkReader::Open(*bytes);
  if (!reader.ok()) return reader.status();
  auto summary = Summarize(*reader);
  if (!summary.ok()) return summary.status();
  ChunkRef c{no, reader->info(), *summary, std::move(bytes), persisted, nullptr};
  if (WantsMinutes(c.info, options_.rollup_density)) {
    auto cells = BuildMinuteCells(*reader);
    if (!cells.ok()) return cells.status();
    c.minutes = std::make_shared<const MinuteCells>(std::move(*cells));
  }
  return c;
}

HistoryStore::HistoryStore(HistoryBackend& backend, HistoryOptions options)
    : backend_(backend), options_(options) {
  if (options_.chunk_points == 0) options_.chunk_points = 1;
  if (options_.chunk_span_ns <= 0) options_.chunk_span_ns = std::int64_t{3600} * 1'000'000'000;
  parallel_ = options_.write_threads >= 2 && std::thread::hardware_concurrency() >= 2;
}

core::Result<std::unique_ptr<HistoryStore>> HistoryStore::Open(HistoryBackend& backend,
                                                               HistoryOptions options) {
  std::unique_ptr<HistoryStore> store(new HistoryStore(backend, options));
  if (Status s = store->Load(); !s.ok()) return s;
  if (store->options_.background) {
    store->bg_ = std::thread([raw = store.get()] { raw->BackgroundLoop(); });
  }
  return store;
}

HistoryStore::~HistoryStore() {
  {
    std::lock_guard lock(commit_mu_);
    commit_stop_ = true;
  }
  commit_cv_.notify_all();
  if (appender_.joinable()) appender_.join();  // prepares, commits and applies what is queued
  if (committer_.joinable()) committer_.join();
  {
    std::lock_guard lock(helper_mu_);
    helper_stop_ = true;
  }
  helper_cv_.notify_all();
  if (helper_.joinable()) helper_.join();
  {
    std::lock_guard lock(bg_mu_);
    stop_ = true;
  }
  bg_cv_.notify_all();
  if (bg_.joinable()) bg_.join();
}

Status HistoryStore::Load() {
  std::uint64_t checkpoint = 0;
  Status bad;
  Status s = backend_.Scan(kCheckpointKey, [&](std::string_view key, std::string_view value) {
    if (key == kCheckpointKey && value.size() == 8) checkpoint = GetBE(value, 0, 8);
  });
  if (!s.ok()) return s;
  s = backend_.Scan(kSeriesPrefix, [&](std::string_view key, std::string_view value) {
    if (key.size() != kSeriesPrefix.size() + 8 || value.empty()) {
      bad = Status("TSDB_CHUNK_CORRUPT",
                   fmt::format("history: malformed series record ({} bytes)", value.size()));
      return;
    }
    auto series = std::make_shared<Series>();
    series->id = GetBE(key, kSeriesPrefix.size(), 8);
    series->type = static_cast<ValueType>(value[0]);
    const std::string_view rest = value.substr(1);
    const std::size_t nul = rest.find('\0');
    if (nul == std::string_view::npos) {
      bad = Status("TSDB_CHUNK_CORRUPT", "history: malformed series record (no separator)");
      return;
    }
    series->twin = std::string(rest.substr(0, nul));
    series->path = std::string(rest.substr(nul + 1));
    series->meta_persisted = true;
    next_series_ = std::max(next_series_, series->id + 1);
    by_id_[series->id] = series.get();
    by_key_[IndexKey(series->twin, series->path)] = std::move(series);
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  std::vector<std::string> orphans;
  s = backend_.Scan(kChunkPrefix, [&](std::string_view key, std::string_view value) {
    if (key.size() != kChunkPrefix.size() + 12) return;
    const std::uint64_t id = GetBE(key, kChunkPrefix.size(), 8);
    const auto no = static_cast<std::uint32_t>(GetBE(key, kChunkPrefix.size() + 8, 4));
    auto it = by_id_.find(id);
    if (it == by_id_.end()) {  // its series was deleted and the crash came before the chunks
      orphans.emplace_back(key);
      return;
    }
    Series& series = *it->second;
    series.next_chunk = std::max(series.next_chunk, no + 1);
    auto ref = MakeChunkRef(
        no, std::make_shared<const std::vector<std::uint8_t>>(value.begin(), value.end()), true);
    if (!ref.ok()) {  // kept on disk as evidence; queries of the series report it
      series.corrupt.push_back(fmt::format("chunk {}: {}", no, ref.status().message()));
      return;
    }
    series.Insert(std::move(*ref));
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  for (const std::string& k : orphans) {
    KeyOp op{k, std::nullopt};
    if (Status d = backend_.Write({&op, 1}); !d.ok()) return d;
  }
  // Replay what came after the checkpoint.
  std::uint64_t max_seq = checkpoint;
  std::vector<WalPoint> points;
  s = backend_.ScanLog([&](std::uint64_t seq, std::string_view value) {
    if (!bad.ok()) return;
    max_seq = std::max(max_seq, seq);
    if (seq <= checkpoint) return;
    points.clear();
    if (!DecodeRecord(value, &points)) {
      bad = Status("TSDB_CHUNK_CORRUPT",
                   fmt::format("history: write-ahead record {} is malformed", seq));
      return;
    }
    wal_bytes_ += value.size();
    ++wal_records_;
    for (WalPoint& p : points) {
      auto it = by_id_.find(p.series);
      if (it == by_id_.end() || TypeOf(p.value) != it->second->type) continue;
      ApplyPoint(*it->second, p.t, p.value);
    }
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  next_seq_ = max_seq + 1;
  return {};
}

HistoryStore::Series* HistoryStore::Find(const SeriesRef& ref) const {
  auto it = by_key_.find(internal::SeriesView{ref.twin, ref.path});
  return it == by_key_.end() ? nullptr : it->second.get();
}

void HistoryStore::SealHead(Series& s) {
  if (s.head && s.head->count() > 0) {
    // Our own writer's chunk (Open cannot fail); its summary and minute cells were kept as its
    // points came, so nothing is decoded.
    auto bytes = std::make_shared<const std::vector<std::uint8_t>>(s.head->Finish());
    if (auto reader = ChunkReader::Open(*bytes); reader.ok()) {
      ChunkRef c{s.head_no, reader->info(), s.head->Summary(), std::move(bytes), false, nullptr};
      if (WantsMinutes(c.info, options_.rollup_density) && s.head_cells) {
        c.minutes = std::make_shared<const MinuteCells>(s.head_cells->Take());
      }
      s.Insert(std::move(c));
    }
  }
  s.head.reset();
  s.head_cells.reset();
  s.head_dirty = false;
}

void HistoryStore::ApplyPoint(Series& s, std::int64_t t, const Value& v) {
  auto start_head = [&] {
    s.head.emplace(s.type);
    if (s.type != ValueType::kString) s.head_cells.emplace(s.type);
    s.head_no = s.next_chunk++;
  };
  if (!s.head) start_head();
  ChunkWriter* h = &*s.head;
  s.head_dirty = true;
  if (t > s.max_t.load(std::memory_order_relaxed)) s.max_t.store(t, std::memory_order_relaxed);
  if (h->count() > 0 && t < h->last_t_ns()) {
    if (t < h->first_t_ns()) {
      s.late.push_back({t, v});
      late_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // Within the head: re-encode it with the point in place (after equal timestamps).
    auto points = DecodeChunk(h->Finish());
    if (points.ok()) {
      auto at = std::upper_bound(points->begin(), points->end(), t,
                                 [](std::int64_t x, const Point& p) { return x < p.t_ns; });
      points->insert(at, Point{t, v});
      ChunkWriter rebuilt(s.type);
      std::optional<MinuteCellBuilder> cells;
      if (s.head_cells) cells.emplace(s.type);
      for (const Point& p : *points) {
        if (rebuilt.Append(p.t_ns, p.value).ok() && cells) cells->Add(p.t_ns, p.value);
      }
      *h = std::move(rebuilt);
      s.head_cells = std::move(cells);
    }
    late_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // t >= the head's first time here, so it is in the head's window unless after its end.
  if (h->count() >= options_.chunk_points || (h->count() > 0 && t > s.head_span_last)) {
    SealHead(s);
    start_head();
    h = &*s.head;
    s.head_dirty = true;
  }
  if (!h->Append(t, v).ok()) {  // TSDB_CHUNK_FULL (a string dictionary at its limit)
    SealHead(s);
    start_head();
    s.head_dirty = true;
    (void)s.head->Append(t, v);
  }
  if (s.head_cells) s.head_cells->Add(t, v);
  if (s.head->count() == 1) s.head_span_last = SpanLast(t, options_.chunk_span_ns);
}

namespace {

// The bytes EncodePoint may write for one sample (strings: plus their length).
constexpr std::size_t kMaxEncodedPoint = 10 + 10 + 1 + 10;

}  // namespace

// One Append (or AppendAsync) call on its way: its samples resolved to series and grouped by
// series, its write-ahead record, and what it answers.
struct HistoryStore::Prepared {
  std::span<const Sample> samples;
  // The stored samples grouped by series: runs[k].series' samples are the indices
  // order[runs[k-1].end, runs[k].end), in arrival order.
  struct Run {
    Series* series;
    std::uint32_t end;
  };
  std::vector<Run> runs;
  std::vector<std::uint32_t> order;
  std::vector<std::shared_ptr<Series>> keep;  // the series stay alive until applied
  std::vector<KeyOp> meta;                    // series records not yet written
  std::vector<Series*> new_meta;
  std::string record;  // the write-ahead record is record[record_begin, end)
  std::size_t record_begin = 0;
  std::size_t stored = 0;
  std::vector<Status> result;
  std::function<void(std::vector<Status>)> done;
  std::latch indexed{1};  // counted down once its series are found or created

  std::string_view Record() const { return std::string_view(record).substr(record_begin); }

  // Becomes the call whose halves (its samples' first and second half) were prepared as `a`
  // and `b`: the same runs, order, results and record points as one Prepare would have made
  // (the record has a block per half that stored points).
  void Merge(Prepared& a, Prepared& b) {
    const auto mid = static_cast<std::uint32_t>(a.samples.size());
    const auto base = static_cast<std::uint32_t>(a.order.size());
    runs = std::move(a.runs);
    for (const Run& r : b.runs) runs.push_back({r.series, r.end + base});
    order = std::move(a.order);
    order.reserve(order.size() + b.order.size());
    for (std::uint32_t i : b.order) order.push_back(i + mid);
    auto append = [](auto& to, auto& from) {
      to.insert(to.end(), std::make_move_iterator(from.begin()),
                std::make_move_iterator(from.end()));
    };
    keep = std::move(a.keep);
    append(keep, b.keep);
    meta = std::move(a.meta);
    append(meta, b.meta);
    new_meta = std::move(a.new_meta);
    append(new_meta, b.new_meta);
    Prepared& first = a.stored > 0 ? a : b;
    record = std::move(first.record);
    record_begin = first.record_begin;
    if (a.stored > 0 && b.stored > 0) record.append(b.Record());
    stored = a.stored + b.stored;
    if (!a.result.empty() || !b.result.empty()) {
      result.resize(samples.size());
      std::move(a.result.begin(), a.result.end(), result.begin());
      std::move(b.result.begin(), b.result.end(), result.begin() + mid);
    }
  }
};

bool HistoryStore::Holds(Series& s, std::int64_t t, const Value& v) const {
  auto in = [&](std::span<const std::uint8_t> bytes) {
    auto reader = ChunkReader::Open(bytes);
    if (!reader.ok()) return false;
    for (ChunkIterator it = reader->Points(); it.Next();) {
      if (it.t_ns() > t) break;
      if (it.t_ns() == t && it.value() == v) return true;
    }
    return false;
  };
  std::lock_guard lock(s.mu);
  for (const Point& p : s.late) {
    if (p.t_ns == t && p.value == v) return true;
  }
  if (s.head && s.head->count() > 0 && s.head->first_t_ns() <= t && t <= s.head->last_t_ns() &&
      in(s.head->Finish())) {
    return true;
  }
  for (const ChunkRef& c : s.chunks) {
    if (c.info.first_t_ns > t) break;  // by first time
    if (t <= c.info.last_t_ns && in(*c.bytes)) return true;
  }
  return false;
}

void HistoryStore::Prepare(Prepared& p, Prepared* after) {
  const std::span<const Sample> samples = p.samples;
  // 1. The batch's distinct series. Samples of one twin usually come together, so a sample's
  // twin is compared with the previous one's, and its path with the (few) paths of that twin
  // seen so far in the batch; the index is looked up once per distinct series.
  using internal::SeriesView;
  struct Distinct {
    SeriesView view;
    std::size_t first = 0;  // its first sample
    Series* series = nullptr;
    std::uint32_t count = 0;
    // Read from the series once per call, not once per sample.
    ValueType type = ValueType::kFloat64;
    std::uint64_t id = 0;
    std::int64_t max_t = 0;
    bool seen = false;
  };
  struct TwinGroup {
    std::string_view twin;
    std::vector<std::uint32_t> members;  // indices into distinct
  };
  constexpr std::size_t kLinear = 16;  // a twin with more paths in the batch: hashed
  std::vector<Distinct> distinct;
  std::vector<TwinGroup> groups;
  std::unordered_map<std::string_view, std::uint32_t> group_of;
  std::unordered_map<SeriesView, std::uint32_t, internal::IndexHash> many;  // for big groups
  std::vector<std::uint32_t> local(samples.size());
  std::uint32_t group = 0;
  bool have_group = false;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const Sample& smp = samples[i];
    if (!have_group || groups[group].twin != smp.twin) {
      auto [it, fresh] = group_of.try_emplace(smp.twin, static_cast<std::uint32_t>(groups.size()));
      if (fresh) groups.push_back({smp.twin, {}});
      group = it->second;
      have_group = true;
    }
    TwinGroup& g = groups[group];
    std::uint32_t at = UINT32_MAX;
    if (g.members.size() <= kLinear) {
      for (std::uint32_t m : g.members) {
        if (distinct[m].view.path == smp.path) {
          at = m;
          break;
        }
      }
    } else if (auto it = many.find({smp.twin, smp.path}); it != many.end()) {
      at = it->second;
    }
    if (at == UINT32_MAX) {
      at = static_cast<std::uint32_t>(distinct.size());
      distinct.push_back({{smp.twin, smp.path}, i, nullptr, 0});
      g.members.push_back(at);
      if (g.members.size() == kLinear + 1) {
        for (std::uint32_t m : g.members) many.emplace(distinct[m].view, m);
      } else if (g.members.size() > kLinear + 1) {
        many.emplace(distinct[at].view, at);
      }
    }
    local[i] = at;
  }
  // 2. Their series, from the index (created when new, in call order: a new series takes the
  // type of its first sample of all).
  bool missing = false;
  {
    std::shared_lock lock(index_mu_);
    for (Distinct& d : distinct) {
      auto found = by_key_.find(d.view);
      if (found == by_key_.end()) {
        missing = true;
        continue;
      }
      d.series = found->second.get();
      p.keep.push_back(found->second);
    }
  }
  if (after != nullptr) after->indexed.wait();
  if (missing) {
    std::unique_lock lock(index_mu_);
    for (Distinct& d : distinct) {
      if (d.series != nullptr) continue;
      auto it = by_key_.find(d.view);
      if (it == by_key_.end()) {
        auto series = std::make_shared<Series>();
        series->id = next_series_++;
        series->twin = std::string(d.view.twin);
        series->path = std::string(d.view.path);
        series->type = TypeOf(samples[d.first].value);  // its first sample's
        by_id_[series->id] = series.get();
        it = by_key_.emplace(IndexKey(d.view.twin, d.view.path), std::move(series)).first;
      }
      d.series = it->second.get();
      p.keep.push_back(it->second);
    }
  }
  p.indexed.count_down();
  // 3. Checks, the write-ahead record (arrival order) and the grouping by series.
  auto refuse = [&](std::size_t i, Status st) {
    if (p.result.empty()) p.result.resize(samples.size());
    p.result[i] = std::move(st);
    local[i] = UINT32_MAX;
  };
  std::size_t string_bytes = 0;
  for (const Sample& smp : samples) {
    if (const auto* str = std::get_if<std::string>(&smp.value)) string_bytes += str->size();
  }
  std::string& rec = p.record;
  rec.resize(10 + samples.size() * kMaxEncodedPoint + string_bytes);
  char* out = rec.data() + 10;  // the count goes in front once known
  std::int64_t prev_t = 0;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    Distinct& d = distinct[local[i]];
    Series& s = *d.series;
    const Sample& smp = samples[i];
    if (!d.seen) {
      d.seen = true;
      d.type = s.type;
      d.id = s.id;
      d.max_t = s.max_t.load(std::memory_order_relaxed);
      if (!s.meta_persisted.load(std::memory_order_acquire)) {
        p.new_meta.push_back(&s);
        std::string meta(1, static_cast<char>(s.type));
        meta += s.twin;
        meta.push_back('\0');
        meta += s.path;
        p.meta.push_back({SeriesKey(s.id), std::move(meta)});
      }
    }
    if (TypeOf(smp.value) != d.type) {
      refuse(i,
             Status("TSDB_TYPE_MISMATCH",
                    fmt::format("history of twin '{}' path '{}' holds {} values, not {}", s.twin,
                                s.path, ValueTypeName(s.type), ValueTypeName(TypeOf(smp.value)))));
      mismatches_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (options_.drop_duplicates && smp.t_ns <= d.max_t && Holds(s, smp.t_ns, smp.value)) {
      refuse(i, Status("TSDB_DUPLICATE",
                       fmt::format("history of twin '{}' path '{}' already holds this value "
                                   "at this time",
                                   s.twin, s.path)));
      duplicates_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    out = EncodePoint(out, d.id, smp.t_ns, &prev_t, smp.value);
    ++d.count;
    ++p.stored;
  }
  // The count, as a varint right before the points.
  char count[10];
  char* const count_end = PutVarint(count, p.stored);
  const auto count_size = static_cast<std::size_t>(count_end - count);
  std::memcpy(rec.data() + 10 - count_size, count, count_size);
  rec.resize(static_cast<std::size_t>(out - rec.data()));
  p.record_begin = 10 - count_size;
  // Counting sort of the stored samples by series (stable: arrival order within a series).
  std::vector<std::uint32_t> start(distinct.size());
  std::uint32_t total = 0;
  for (std::size_t k = 0; k < distinct.size(); ++k) {
    start[k] = total;
    total += distinct[k].count;
    if (distinct[k].count > 0) p.runs.push_back({distinct[k].series, total});
  }
  p.order.resize(total);
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (local[i] != UINT32_MAX) p.order[start[local[i]]++] = static_cast<std::uint32_t>(i);
  }
}

void HistoryStore::GateEnter() {
  std::unique_lock lock(gate_mu_);
  gate_cv_.wait(lock, [&] { return !gate_closed_; });
  ++gate_inflight_;
}

void HistoryStore::GateLeave() {
  std::lock_guard lock(gate_mu_);
  if (--gate_inflight_ == 0 && gate_closed_) gate_cv_.notify_all();
}

bool HistoryStore::Write(std::span<Prepared* const> group) {
  std::vector<KeyOp> meta;
  std::vector<LogRecord> records;
  std::size_t record_bytes = 0;
  for (Prepared* p : group) {
    if (p->stored == 0) continue;
    for (KeyOp& m : p->meta) meta.push_back(std::move(m));
    record_bytes += p->Record().size();
    records.push_back({0, p->Record()});
  }
  if (records.empty()) return false;
  auto fail = [&](const Status& s) {
    for (Prepared* p : group) {
      if (p->stored > 0) p->result = {Status("TSDB_IO", fmt::format("history: {}", s.ToString()))};
    }
    return false;
  };
  std::lock_guard log(log_mu_);
  // New series' records first: a replayed point always finds its series.
  if (!meta.empty()) {
    if (Status s = backend_.Write(meta); !s.ok()) return fail(s);
  }
  for (LogRecord& r : records) r.seq = next_seq_.fetch_add(1);
  if (Status s = backend_.AppendLog(records); !s.ok()) return fail(s);
  wal_bytes_.fetch_add(record_bytes, std::memory_order_relaxed);
  wal_records_.fetch_add(records.size(), std::memory_order_relaxed);
  return true;
}

namespace {

// A write is shared between two threads from this many points on. Below, waking the helper
// (tens of microseconds on a busy VM) can cost what the split saves: measured with
// history_bench, batches of 30,000 gain about 40%, single calls of 5,000 nothing reliable, and
// at 4,096 AppendAsync calls of 5,000 lost 40% (the helper then competes with the committer
// and the callers for two cores).
constexpr std::size_t kParallelPoints = 8192;

int HalfOf(std::uint64_t series_id) {
  return static_cast<int>((series_id * 0x9E3779B97F4A7C15ULL) >> 63);
}

}  // namespace

struct HistoryStore::SharedJob {
  std::size_t n = 0;
  std::atomic<std::size_t> next{0};
  const std::function<void(std::size_t)>* task = nullptr;

  void Work() {
    for (std::size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) (*task)(i);
  }
};

void HistoryStore::Share(std::size_t n, const std::function<void(std::size_t)>& task) {
  std::unique_lock use(helper_use_mu_, std::defer_lock);
  if (!parallel_ || n < 2 || !use.try_lock()) {
    for (std::size_t i = 0; i < n; ++i) task(i);
    return;
  }
  SharedJob job;
  job.n = n;
  job.task = &task;
  {
    std::lock_guard lock(helper_mu_);
    if (!helper_.joinable()) helper_ = std::thread([this] { HelperLoop(); });
    helper_job_ = &job;
  }
  helper_cv_.notify_all();
  job.Work();
  std::unique_lock lock(helper_mu_);
  if (!helper_on_job_) {  // it has not woken up yet: nothing left for it
    helper_job_ = nullptr;
    return;
  }
  helper_cv_.wait(lock, [&] { return helper_job_ == nullptr; });
}

void HistoryStore::HelperLoop() {
  std::unique_lock lock(helper_mu_);
  while (true) {
    helper_cv_.wait(lock, [&] { return helper_stop_ || helper_job_ != nullptr; });
    if (helper_job_ == nullptr) return;
    SharedJob* job = helper_job_;
    helper_on_job_ = true;
    lock.unlock();
    job->Work();
    lock.lock();
    helper_on_job_ = false;
    helper_job_ = nullptr;
    helper_cv_.notify_all();
  }
}

void HistoryStore::PrepareCalls(std::span<Prepared* const> calls) {
  std::size_t total = 0;
  for (const Prepared* p : calls) total += p->samples.size();
  if (!parallel_ || total < kParallelPoints) {
    for (std::size_t i = 0; i < calls.size(); ++i)
      Prepare(*calls[i], i > 0 ? calls[i - 1] : nullptr);
    return;
  }
  // The parts: the calls, a large one cut in two halves (merged back into it after).
  std::vector<Prepared*> parts;
  std::vector<std::unique_ptr<Prepared>> halves;
  for (Prepared* p : calls) {
    if (p->samples.size() < kParallelPoints) {
      parts.push_back(p);
      continue;
    }
    const std::size_t mid = p->samples.size() / 2;
    for (std::span<const Sample> half : {p->samples.first(mid), p->samples.subspan(mid)}) {
      halves.push_back(std::make_unique<Prepared>());
      halves.back()->samples = half;
      parts.push_back(halves.back().get());
    }
  }
  Share(parts.size(), [&](std::size_t i) { Prepare(*parts[i], i > 0 ? parts[i - 1] : nullptr); });
  std::size_t h = 0;
  for (Prepared* p : calls) {
    if (p->samples.size() < kParallelPoints) continue;
    p->Merge(*halves[h], *halves[h + 1]);
    h += 2;
  }
}

void HistoryStore::ApplyHalf(std::span<Prepared* const> group, int half) {
  // A series is in one half only, so its points keep their order across the group's calls.
  for (Prepared* p : group) {
    if (p->stored == 0) continue;
    std::uint32_t begin = 0;
    for (const Prepared::Run& run : p->runs) {
      if (half < 0 || HalfOf(run.series->id) == half) {
        std::lock_guard lock(run.series->mu);
        for (std::uint32_t k = begin; k < run.end; ++k) {
          const Sample& smp = p->samples[p->order[k]];
          ApplyPoint(*run.series, smp.t_ns, smp.value);
        }
      }
      begin = run.end;
    }
  }
}

void HistoryStore::Apply(std::span<Prepared* const> group) {
  std::size_t stored = 0;
  for (Prepared* p : group) {
    stored += p->stored;
    if (p->stored == 0) continue;
    for (Series* s : p->new_meta) s->meta_persisted.store(true, std::memory_order_release);
  }
  if (stored >= kParallelPoints) {
    Share(2, [&](std::size_t half) { ApplyHalf(group, static_cast<int>(half)); });
  } else {
    ApplyHalf(group, -1);
  }
  appended_.fetch_add(stored, std::memory_order_relaxed);
  if (wal_bytes_.load(std::memory_order_relaxed) >= options_.checkpoint_bytes) {
    bg_cv_.notify_one();
  }
}

std::vector<Status> HistoryStore::Append(std::span<const Sample> samples) {
  if (samples.empty()) return {};
  Prepared p;
  p.samples = samples;
  Prepared* one = &p;
  PrepareCalls({&one, 1});
  GateEnter();
  if (Write({&one, 1})) Apply({&one, 1});
  GateLeave();
  return std::move(p.result);
}

void HistoryStore::AppendAsync(std::span<const Sample> samples,
                               std::function<void(std::vector<Status>)> done) {
  if (samples.empty()) {
    done({});
    return;
  }
  auto p = std::make_unique<Prepared>();
  p->samples = samples;
  p->done = std::move(done);
  {
    std::lock_guard lock(commit_mu_);
    if (!appender_.joinable()) {
      appender_ = std::thread([this] { AppendLoop(); });
      committer_ = std::thread([this] { CommitLoop(); });
    }
    incoming_.push_back(std::move(p));
    ++commit_pending_;
  }
  commit_cv_.notify_all();
}

void HistoryStore::WaitIdle() {
  std::unique_lock lock(commit_mu_);
  idle_cv_.wait(lock, [&] { return commit_pending_ == 0; });
}

// The appender: prepares the calls that came in and hands them to the committer as one group;
// applies the groups the committer has written (in order) and answers their calls. All the
// per-sample work of a call happens on this one thread, so samples, series and buffers stay in
// one core's cache; the committer only sees the records' bytes.
void HistoryStore::AppendLoop() {
  std::unique_lock lock(commit_mu_);
  while (true) {
    commit_cv_.wait(lock, [&] {
      return !apply_queue_.empty() || !incoming_.empty() || (commit_stop_ && in_commit_ == 0);
    });
    if (!apply_queue_.empty()) {
      std::vector<WrittenGroup> groups;
      groups.swap(apply_queue_);
      lock.unlock();
      std::size_t calls = 0;
      for (WrittenGroup& w : groups) {
        if (w.written) Apply(w.calls);
        GateLeave();
        for (auto& g : w.group) g->done(std::move(g->result));
        calls += w.group.size();
      }
      groups.clear();
      lock.lock();
      commit_pending_ -= calls;
      if (commit_pending_ == 0) idle_cv_.notify_all();
      continue;
    }
    if (!incoming_.empty()) {
      std::vector<std::unique_ptr<Prepared>> group;
      group.swap(incoming_);
      lock.unlock();
      std::vector<Prepared*> calls;
      calls.reserve(group.size());
      for (auto& g : group) calls.push_back(g.get());
      PrepareCalls(calls);
      lock.lock();
      ++in_commit_;
      commit_queue_.push_back(std::move(group));
      commit_cv_.notify_all();
      continue;
    }
    break;  // stopping: nothing came in, everything handed over came back and was applied
  }
  writer_stop_ = true;
  commit_cv_.notify_all();
}

// The committer: writes the records of every group the appender handed over in one backend
// write (one fsync), and hands them back; the appender prepares and applies meanwhile.
void HistoryStore::CommitLoop() {
  std::unique_lock lock(commit_mu_);
  while (true) {
    commit_cv_.wait(lock, [&] { return writer_stop_ || !commit_queue_.empty(); });
    if (commit_queue_.empty()) return;  // the appender stopped
    std::vector<std::vector<std::unique_ptr<Prepared>>> groups;
    groups.swap(commit_queue_);
    lock.unlock();
    WrittenGroup w;
    for (auto& g : groups) {
      for (auto& p : g) w.group.push_back(std::move(p));
    }
    w.calls.reserve(w.group.size());
    for (auto& g : w.group) w.calls.push_back(g.get());
    GateEnter();  // left by the appender once the points are in heads
    w.written = Write(w.calls);
    lock.lock();
    in_commit_ -= groups.size();
    apply_queue_.push_back(std::move(w));
    commit_cv_.notify_all();
  }
}

Status HistoryStore::Checkpoint() {
  std::lock_guard cp(checkpoint_mu_);
  std::vector<KeyOp> ops;
  struct Written {
    std::shared_ptr<Series> series;
    std::vector<std::uint32_t> chunks;
    bool head = false;
  };
  std::vector<Written> written;
  std::uint64_t seq = 0;
  {
    // Close the gate: no record is written meanwhile, and every written one is applied.
    {
      std::unique_lock lock(gate_mu_);
      gate_cv_.wait(lock, [&] { return !gate_closed_; });
      gate_closed_ = true;
      gate_cv_.wait(lock, [&] { return gate_inflight_ == 0; });
    }
    struct Reopen {
      HistoryStore* h;
      ~Reopen() {
        std::lock_guard lock(h->gate_mu_);
        h->gate_closed_ = false;
        h->gate_cv_.notify_all();
      }
    } reopen{this};
    seq = next_seq_.load() - 1;
    std::shared_lock index(index_mu_);
    for (auto& [key, series] : by_key_) {
      std::lock_guard lock(series->mu);
      Series& s = *series;
      if (!s.late.empty()) {
        std::stable_sort(s.late.begin(), s.late.end(),
                         [](const Point& a, const Point& b) { return a.t_ns < b.t_ns; });
        std::size_t at = 0;
        while (at < s.late.size()) {
          ChunkWriter w(s.type);
          const std::int64_t span = FloorDiv(s.late[at].t_ns, options_.chunk_span_ns);
          while (at < s.late.size() && w.count() < options_.chunk_points &&
                 FloorDiv(s.late[at].t_ns, options_.chunk_span_ns) == span &&
                 w.Append(s.late[at].t_ns, s.late[at].value).ok()) {
            ++at;
          }
          auto ref = MakeChunkRef(
              s.next_chunk++, std::make_shared<const std::vector<std::uint8_t>>(w.Finish()), false);
          if (ref.ok()) s.Insert(std::move(*ref));
        }
        s.late.clear();
      }
      Written w{series, {}, false};
      for (const ChunkRef& c : s.chunks) {
        if (c.persisted) continue;
        ops.push_back({ChunkKey(s.id, c.no), std::string(c.bytes->begin(), c.bytes->end())});
        w.chunks.push_back(c.no);
      }
      if (s.head && s.head_dirty && s.head->count() > 0) {
        std::vector<std::uint8_t> head = s.head->Finish();
        ops.push_back({ChunkKey(s.id, s.head_no), std::string(head.begin(), head.end())});
        s.head_dirty = false;
        w.head = true;
      }
      if (!w.chunks.empty() || w.head) written.push_back(std::move(w));
    }
    wal_bytes_ = 0;
    wal_records_ = 0;
  }
  std::string cp_value;
  PutBE(&cp_value, seq, 8);
  ops.push_back({std::string(kCheckpointKey), std::move(cp_value)});
  Status s = backend_.Write(ops);
  for (Written& w : written) {
    std::lock_guard lock(w.series->mu);
    if (!s.ok()) {
      if (w.head) w.series->head_dirty = true;
      continue;
    }
    for (ChunkRef& c : w.series->chunks) {
      if (std::find(w.chunks.begin(), w.chunks.end(), c.no) != w.chunks.end()) c.persisted = true;
    }
  }
  if (!s.ok()) return Status("TSDB_IO", fmt::format("history checkpoint: {}", s.ToString()));
  checkpoints_.fetch_add(1, std::memory_order_relaxed);
  return backend_.TrimLog(seq);
}

void HistoryStore::BackgroundLoop() {
  std::unique_lock lock(bg_mu_);
  while (!stop_) {
    bg_cv_.wait_for(lock, options_.checkpoint_interval, [&] {
      return stop_ || wal_bytes_.load(std::memory_order_relaxed) >= options_.checkpoint_bytes;
    });
    if (stop_) break;
    if (wal_records_.load(std::memory_order_relaxed) == 0) continue;
    lock.unlock();
    (void)Checkpoint();  // a failure keeps the records; the next round tries again
    lock.lock();
  }
}

core::Result<HistoryStore::Snapshot> HistoryStore::Collect(const SeriesRef& ref,
                                                           const RangeQuery& q) const {
  if (q.from_ns > q.to_ns) {
    return Status("TSDB_BAD_QUERY", "from is after to");
  }
  if (q.step_ns < 0) return Status("TSDB_BAD_QUERY", "step must not be negative");
  Snapshot snap;
  std::vector<Point> late;
  std::optional<std::vector<std::uint8_t>> head;
  std::uint32_t head_no = 0;
  {
    std::shared_lock index(index_mu_);
    const Series* s = Find(ref);
    if (s == nullptr) {
      return Status("TSDB_NOT_FOUND",
                    fmt::format("no history for twin '{}' path '{}'", ref.twin, ref.path));
    }
    std::lock_guard lock(s->mu);
    if (!s->corrupt.empty()) {
      return Status("TSDB_CHUNK_CORRUPT",
                    fmt::format("history of twin '{}' path '{}' has {} damaged chunk(s): {}",
                                ref.twin, ref.path, s->corrupt.size(), s->corrupt.front()));
    }
    snap.type = s->type;
    for (const ChunkRef& c : s->chunks) {
      if (c.info.last_t_ns < q.from_ns || c.info.first_t_ns > q.to_ns) continue;
      snap.chunks.push_back(c);
    }
    if (s->head && s->head->count() > 0 && s->head->last_t_ns() >= q.from_ns &&
        s->head->first_t_ns() <= q.to_ns) {
      head = s->head->Finish();
      head_no = s->head_no;
    }
    for (const Point& p : s->late) {
      if (p.t_ns >= q.from_ns && p.t_ns <= q.to_ns) late.push_back(p);
    }
  }
  auto add = [&](std::vector<std::uint8_t> bytes, std::uint32_t no) {
    auto ref = MakeChunkRef(no, std::make_shared<const std::vector<std::uint8_t>>(std::move(bytes)),
                            false);
    if (!ref.ok()) return;  // our own writer's chunk: cannot fail
    ChunkRef& c = *ref;
    auto at =
        std::upper_bound(snap.chunks.begin(), snap.chunks.end(), c.info.first_t_ns,
                         [](std::int64_t t, const ChunkRef& x) { return t < x.info.first_t_ns; });
    snap.chunks.insert(at, std::move(c));
  };
  if (head) add(std::move(*head), head_no);
  if (!late.empty()) {
    std::stable_sort(late.begin(), late.end(),
                     [](const Point& a, const Point& b) { return a.t_ns < b.t_ns; });
    auto bytes = EncodeChunk(snap.type, late);
    if (bytes.ok()) add(std::move(*bytes), std::numeric_limits<std::uint32_t>::max());
  }
  return snap;
}

namespace {

Status Corrupt(const SeriesRef& ref, const Status& s) {
  return Status("TSDB_CHUNK_CORRUPT",
                fmt::format("history of twin '{}' path '{}': {}", ref.twin, ref.path, s.message()));
}

// Appends the points of `c` within [from, to] to out.
Status DecodeRange(const std::vector<std::uint8_t>& bytes, std::int64_t from, std::int64_t to,
                   std::vector<Point>* out) {
  auto reader = ChunkReader::Open(bytes);
  if (!reader.ok()) return reader.status();
  ChunkIterator it = reader->Points();
  while (it.Next()) {
    if (it.t_ns() < from) continue;
    if (it.t_ns() > to) break;
    out->push_back({it.t_ns(), it.value()});
  }
  return it.status();
}

bool ByTime(const Point& a, const Point& b) { return a.t_ns < b.t_ns; }

}  // namespace

core::Result<std::vector<Point>> HistoryStore::Read(const SeriesRef& ref,
                                                    const RangeQuery& q) const {
  auto snap = Collect(ref, q);
  if (!snap.ok()) return snap.status();
  std::vector<Point> out;
  const auto& chunks = snap->chunks;
  if (q.latest && q.limit > 0) {
    // Newest first: stop once `limit` points are held and no earlier chunk can hold a newer one.
    std::vector<std::int64_t> max_last(chunks.size());
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      max_last[i] = std::max(i ? max_last[i - 1] : std::numeric_limits<std::int64_t>::min(),
                             chunks[i].info.last_t_ns);
    }
    std::vector<Point> held;
    for (std::size_t i = chunks.size(); i-- > 0;) {
      if (held.size() >= q.limit) {
        std::nth_element(held.begin(), held.end() - static_cast<std::ptrdiff_t>(q.limit),
                         held.end(), ByTime);
        const std::int64_t nth = (held.end() - static_cast<std::ptrdiff_t>(q.limit))->t_ns;
        if (max_last[i] < nth) break;
      }
      if (Status s = DecodeRange(*chunks[i].bytes, q.from_ns, q.to_ns, &held); !s.ok()) {
        return Corrupt(ref, s);
      }
    }
    // Chunks were visited newest first; restore time order (equal timestamps keep chunk order).
    std::stable_sort(held.begin(), held.end(), ByTime);
    if (held.size() > q.limit)
      held.erase(held.begin(), held.end() - static_cast<std::ptrdiff_t>(q.limit));
    return held;
  }
  for (const ChunkRef& c : chunks) {
    if (Status s = DecodeRange(*c.bytes, q.from_ns, q.to_ns, &out); !s.ok()) {
      return Corrupt(ref, s);
    }
  }
  if (!std::is_sorted(out.begin(), out.end(), ByTime)) {
    std::stable_sort(out.begin(), out.end(), ByTime);
  }
  if (q.limit > 0 && out.size() > q.limit) out.resize(q.limit);
  return out;
}

namespace {

struct Acc {
  std::uint64_t count = 0, nan = 0;
  double sum = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  std::int64_t int_min = std::numeric_limits<std::int64_t>::max();
  std::int64_t int_max = std::numeric_limits<std::int64_t>::min();
  std::int64_t last_t = std::numeric_limits<std::int64_t>::min();
  std::int64_t first_t = std::numeric_limits<std::int64_t>::max();
  // The newest point's value (ties: the later one), by type; no variant per point.
  double last_f = std::numeric_limits<double>::quiet_NaN();
  std::int64_t last_i = 0;
  bool last_b = false;
  std::string last_s;
  std::vector<double> values;  // percentiles only

  // A summary of `n` points (`nans` of them NaN); min/max (and int_min/int_max for int64) only
  // count when n > nans.
  void AddSummary(std::uint64_t n, std::uint64_t nans, double s, double lo, double hi,
                  std::int64_t ilo, std::int64_t ihi) {
    count += n;
    nan += nans;
    if (n == nans) return;
    sum += s;
    min = std::min(min, lo);
    max = std::max(max, hi);
    int_min = std::min(int_min, ilo);
    int_max = std::max(int_max, ihi);
  }
  void AddNumber(double v) {
    if (std::isnan(v)) {
      ++nan;
      return;
    }
    sum += v;
    min = std::min(min, v);
    max = std::max(max, v);
  }
  // Notes a point at t; true when it is the newest so far (its value becomes `last`).
  bool Newer(std::int64_t t) {
    first_t = std::min(first_t, t);
    if (t < last_t) return false;
    last_t = t;
    return true;
  }
  Value Last(ValueType type) const {
    switch (type) {
      case ValueType::kFloat64:
        return last_f;
      case ValueType::kInt64:
        return last_i;
      case ValueType::kBool:
        return last_b;
      case ValueType::kString:
        return last_s;
    }
    return last_f;
  }
};

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  // The two closest ranks by selection, not a sort: O(n).
  const double h = (static_cast<double>(v.size()) - 1) * p;
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const auto at = v.begin() + static_cast<std::ptrdiff_t>(lo);
  std::nth_element(v.begin(), at, v.end());
  const double a = *at;
  if (lo + 1 >= v.size()) return a;
  const double b = *std::min_element(at + 1, v.end());
  return a + (h - static_cast<double>(lo)) * (b - a);
}

}  // namespace

core::Result<std::vector<Bucket>> HistoryStore::Aggregate(const SeriesRef& ref,
                                                          const RangeQuery& q) const {
  auto snap = Collect(ref, q);
  if (!snap.ok()) return snap.status();
  const ValueType type = snap->type;
  const bool percentile = q.agg == Agg::kP50 || q.agg == Agg::kP95 || q.agg == Agg::kP99;
  if (type == ValueType::kString && q.agg != Agg::kCount && q.agg != Agg::kLast) {
    return Status("TSDB_BAD_QUERY",
                  fmt::format("'{}' of twin '{}' holds strings: only count and last apply, not {}",
                              ref.path, ref.twin, AggName(q.agg)));
  }
  if (q.step_ns > 0 && q.from_ns != std::numeric_limits<std::int64_t>::min() &&
      q.to_ns != std::numeric_limits<std::int64_t>::max()) {
    const auto buckets = static_cast<double>(q.to_ns - q.from_ns) / static_cast<double>(q.step_ns);
    if (buckets > static_cast<double>(options_.max_buckets)) {
      return Status("TSDB_BAD_QUERY",
                    fmt::format("{:.0f} buckets asked for; at most {} (use a larger step)", buckets,
                                options_.max_buckets));
    }
  }
  auto bucket_of = [&](std::int64_t t) -> std::int64_t {
    return q.step_ns > 0 ? FloorDiv(t, q.step_ns) : 0;
  };
  // Buckets by key. Chunks come by first time, so keys mostly arrive in order: appending is the
  // common case; an overlapping chunk inserts (a reference from acc_for is good until its next
  // call).
  std::vector<std::pair<std::int64_t, Acc>> buckets;
  Acc* current = nullptr;
  std::int64_t current_key = 0;
  auto acc_for = [&](std::int64_t t) -> Acc& {
    const std::int64_t k = bucket_of(t);
    if (current != nullptr && k == current_key) return *current;
    if (buckets.empty() || buckets.back().first < k) {
      buckets.emplace_back(k, Acc{});
      current = &buckets.back().second;
    } else {
      auto at = std::lower_bound(buckets.begin(), buckets.end(), k,
                                 [](const auto& b, std::int64_t key) { return b.first < key; });
      if (at == buckets.end() || at->first != k) at = buckets.emplace(at, k, Acc{});
      current = &at->second;
    }
    current_key = k;
    return *current;
  };
  // A percentile over one bucket gathers every value of the range: into this thread's buffer,
  // kept between queries (in a VM, faulting in fresh pages for 1M values costs more than the
  // selection); returned below unless it grew beyond kKeepValues.
  constexpr std::size_t kKeepValues = std::size_t{8} << 20;
  static thread_local std::vector<double> scratch;
  Acc* single = nullptr;
  if (percentile && q.step_ns == 0) {
    single = &acc_for(0);
    single->values.swap(scratch);
    single->values.clear();
    std::size_t total = 0;
    for (const ChunkRef& c : snap->chunks) total += c.info.count;
    single->values.reserve(total);
  }
  if (single != nullptr) {
    // One bucket of a percentile: only the values matter (and the first time, the count).
    Acc& a = *single;
    for (const ChunkRef& c : snap->chunks) {
      auto reader = ChunkReader::Open(*c.bytes);
      if (!reader.ok()) return Corrupt(ref, reader.status());
      auto got = reader->CollectNumbers(q.from_ns, q.to_ns, &a.values);
      if (!got.ok()) return Corrupt(ref, got.status());
      if (got->count == 0) continue;
      a.count += got->count;
      a.nan += got->nan_count;
      a.first_t = std::min(a.first_t, got->first_t_ns);
    }
    snap->chunks.clear();  // done: nothing for the loop below
  }
  // Whole-minute steps can take a chunk's minute cells instead of its points.
  const bool minute_steps = q.step_ns > 0 && q.step_ns % kMinuteNs == 0;
  for (const ChunkRef& c : snap->chunks) {
    const bool inside = c.info.first_t_ns >= q.from_ns && c.info.last_t_ns <= q.to_ns;
    if (inside && !percentile && c.info.count > 0 &&
        bucket_of(c.info.first_t_ns) == bucket_of(c.info.last_t_ns) &&
        !(q.agg == Agg::kLast && type == ValueType::kString)) {
      Acc& a = acc_for(c.info.first_t_ns);
      const RangeAggregate& s = c.summary;
      if (type == ValueType::kInt64) {
        a.AddSummary(s.count, s.nan_count, s.sum, s.min, s.max, s.int_min, s.int_max);
      } else {
        a.AddSummary(s.count, s.nan_count, s.sum, s.min, s.max, 0, 0);
      }
      if (a.Newer(s.last_t_ns)) {
        a.last_f = s.last;
        a.last_i = s.int_last;
        a.last_b = s.last != 0;
      }
      a.first_t = std::min(a.first_t, s.first_t_ns);
      continue;
    }
    if (inside && !percentile && minute_steps && c.minutes) {  // never strings
      for (const MinuteCell& m : *c.minutes) {
        Acc& a = acc_for(m.last_t);
        if (type == ValueType::kInt64) {
          const auto lo = static_cast<std::int64_t>(m.min), hi = static_cast<std::int64_t>(m.max);
          a.AddSummary(m.count, m.nan, m.sum, static_cast<double>(lo), static_cast<double>(hi), lo,
                       hi);
          if (a.Newer(m.last_t)) a.last_i = static_cast<std::int64_t>(m.last);
        } else {
          a.AddSummary(m.count, m.nan, m.sum, std::bit_cast<double>(m.min),
                       std::bit_cast<double>(m.max), 0, 0);
          if (a.Newer(m.last_t)) {
            a.last_f = std::bit_cast<double>(m.last);
            a.last_b = a.last_f != 0;
          }
        }
      }
      continue;
    }
    auto reader = ChunkReader::Open(*c.bytes);
    if (!reader.ok()) return Corrupt(ref, reader.status());
    ChunkIterator it = reader->Points();
    while (it.Next()) {
      const std::int64_t t = it.t_ns();
      if (t < q.from_ns) continue;
      if (t > q.to_ns) break;
      Acc& a = acc_for(t);
      ++a.count;
      switch (type) {
        case ValueType::kFloat64: {
          const double v = it.float_value();
          a.AddNumber(v);
          if (percentile && !std::isnan(v)) a.values.push_back(v);
          if (a.Newer(t)) a.last_f = v;
          break;
        }
        case ValueType::kInt64: {
          const std::int64_t v = it.int_value();
          a.AddNumber(static_cast<double>(v));
          a.int_min = std::min(a.int_min, v);
          a.int_max = std::max(a.int_max, v);
          if (percentile) a.values.push_back(static_cast<double>(v));
          if (a.Newer(t)) a.last_i = v;
          break;
        }
        case ValueType::kBool: {
          const bool v = it.bool_value();
          a.AddNumber(v ? 1.0 : 0.0);
          if (percentile) a.values.push_back(v ? 1.0 : 0.0);
          if (a.Newer(t)) a.last_b = v;
          break;
        }
        case ValueType::kString:
          if (a.Newer(t)) a.last_s.assign(it.string_value());
          break;
      }
    }
    if (!it.status().ok()) return Corrupt(ref, it.status());
  }
  std::vector<Bucket> out;
  out.reserve(buckets.size());
  for (auto& [k, a] : buckets) {
    if (a.count == 0) continue;  // the percentile bucket made in advance, and nothing in range
    Bucket b;
    b.t_ns = q.step_ns > 0 ? k * q.step_ns : a.first_t;
    b.count = a.count;
    const bool any = a.count > a.nan;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    switch (q.agg) {
      case Agg::kMean:
        b.value = any ? a.sum / static_cast<double>(a.count - a.nan) : nan;
        break;
      case Agg::kSum:
        b.value = a.sum;
        break;
      case Agg::kMin:
        if (type == ValueType::kInt64 && any) {
          b.value = a.int_min;
        } else {
          b.value = any ? a.min : nan;
        }
        break;
      case Agg::kMax:
        if (type == ValueType::kInt64 && any) {
          b.value = a.int_max;
        } else {
          b.value = any ? a.max : nan;
        }
        break;
      case Agg::kLast:
        b.value = a.Last(type);
        break;
      case Agg::kCount:
        b.value = static_cast<std::int64_t>(a.count);
        break;
      case Agg::kP50:
        b.value = Percentile(a.values, 0.50);
        break;
      case Agg::kP95:
        b.value = Percentile(a.values, 0.95);
        break;
      case Agg::kP99:
        b.value = Percentile(a.values, 0.99);
        break;
    }
    out.push_back(std::move(b));
  }
  if (single != nullptr && single->values.capacity() <= kKeepValues) {
    single->values.swap(scratch);
  }
  return out;
}

std::optional<SeriesInfo> HistoryStore::Info(const SeriesRef& ref) const {
  std::shared_lock index(index_mu_);
  const Series* s = Find(ref);
  if (s == nullptr) return std::nullopt;
  std::lock_guard lock(s->mu);
  SeriesInfo info{s->twin, s->path, s->type};
  bool any = false;
  auto span = [&](std::int64_t first, std::int64_t last, std::uint64_t n) {
    if (n == 0) return;
    info.points += n;
    info.first_t_ns = any ? std::min(info.first_t_ns, first) : first;
    info.last_t_ns = any ? std::max(info.last_t_ns, last) : last;
    any = true;
  };
  for (const ChunkRef& c : s->chunks) {
    span(c.info.first_t_ns, c.info.last_t_ns, c.info.count);
    ++info.chunks;
    info.bytes += c.bytes->size();
  }
  if (s->head && s->head->count() > 0) {
    span(s->head->first_t_ns(), s->head->last_t_ns(), s->head->count());
  }
  for (const Point& p : s->late) span(p.t_ns, p.t_ns, 1);
  return info;
}

std::vector<SeriesInfo> HistoryStore::ListSeries(std::string_view twin) const {
  std::vector<SeriesRef> refs;
  {
    std::shared_lock index(index_mu_);
    for (const auto& [key, s] : by_key_) {
      if (twin.empty() || s->twin == twin) refs.push_back({s->twin, s->path});
    }
  }
  std::sort(refs.begin(), refs.end(), [](const SeriesRef& a, const SeriesRef& b) {
    return std::tie(a.twin, a.path) < std::tie(b.twin, b.path);
  });
  std::vector<SeriesInfo> out;
  for (const SeriesRef& r : refs) {
    if (auto info = Info(r)) out.push_back(std::move(*info));
  }
  return out;
}

core::Result<std::size_t> HistoryStore::DeleteTwin(std::string_view twin) {
  std::lock_guard cp(checkpoint_mu_);
  std::vector<std::shared_ptr<Series>> gone;
  {
    std::unique_lock index(index_mu_);
    for (auto it = by_key_.begin(); it != by_key_.end();) {
      if (it->second->twin == twin) {
        gone.push_back(it->second);
        by_id_.erase(it->second->id);
        it = by_key_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (gone.empty()) return std::size_t{0};
  std::vector<KeyOp> ops;
  for (const auto& s : gone) {
    std::lock_guard lock(s->mu);
    s->deleted = true;
    ops.push_back({SeriesKey(s->id), std::nullopt});
  }
  // The series records go first: a crash between the two leaves orphan chunks, which Load
  // deletes.
  if (Status s = backend_.Write(ops); !s.ok()) return s;
  for (const auto& s : gone) {
    if (Status d = backend_.DeleteRange(ChunkKey(s->id, 0),
                                        ChunkKey(s->id, std::numeric_limits<std::uint32_t>::max()));
        !d.ok()) {
      return d;
    }
    KeyOp last{ChunkKey(s->id, std::numeric_limits<std::uint32_t>::max()), std::nullopt};
    if (Status d = backend_.Write({&last, 1}); !d.ok()) return d;
  }
  return gone.size();
}

core::Result<std::uint64_t> HistoryStore::ApplyRetention(
    const std::function<std::optional<std::int64_t>(std::string_view)>& cutoff_ns) {
  std::lock_guard cp(checkpoint_mu_);
  std::vector<std::shared_ptr<Series>> all;
  {
    std::shared_lock index(index_mu_);
    for (const auto& [key, s] : by_key_) all.push_back(s);
  }
  std::vector<KeyOp> ops;
  std::uint64_t dropped = 0;
  for (const auto& series : all) {
    const std::optional<std::int64_t> cutoff = cutoff_ns(series->twin);
    if (!cutoff) continue;
    std::lock_guard lock(series->mu);
    auto& chunks = series->chunks;
    for (auto it = chunks.begin(); it != chunks.end();) {
      if (it->info.last_t_ns < *cutoff) {
        dropped += it->info.count;
        if (it->persisted) ops.push_back({ChunkKey(series->id, it->no), std::nullopt});
        it = chunks.erase(it);
      } else {
        ++it;
      }
    }
    std::erase_if(series->late, [&](const Point& p) { return p.t_ns < *cutoff; });
  }
  if (!ops.empty()) {
    if (Status s = backend_.Write(ops); !s.ok()) return s;
  }
  return dropped;
}

HistoryStats HistoryStore::Stats() const {
  HistoryStats st;
  {
    std::shared_lock index(index_mu_);
    st.series = by_key_.size();
    for (const auto& [key, s] : by_key_) {
      std::lock_guard lock(s->mu);
      for (const ChunkRef& c : s->chunks) {
        st.points += c.info.count;
        ++st.chunks;
        st.chunk_bytes += c.bytes->size();
        if (c.minutes) st.rollup_bytes += c.minutes->size() * sizeof(MinuteCell);
      }
      if (s->head) {
        st.points += s->head->count();
        st.head_bytes += s->head->EncodedBytes();
      }
      st.corrupt_chunks += s->corrupt.size();
      st.points += s->late.size();
    }
  }
  st.appended = appended_.load();
  st.late = late_.load();
  st.type_mismatches = mismatches_.load();
  st.duplicates = duplicates_.load();
  st.checkpoints = checkpoints_.load();
  st.wal_records = wal_records_.load();
  st.wal_bytes = wal_bytes_.load();
  return st;
}

}  // namespace doppel::tsdb
