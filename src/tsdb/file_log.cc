#include "tsdb/file_log.h"

#include <fcntl.h>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <system_error>

namespace doppel::tsdb {

namespace fs = std::filesystem;
using core::Status;

namespace {

constexpr std::size_t kHeader = 4 + 8 + 8;
constexpr std::size_t kMaxIov = 1024;  // IOV_MAX on Linux

std::uint64_t Checksum(std::uint64_t seq, std::string_view payload) {
  return XXH3_64bits_withSeed(payload.data(), payload.size(), seq ^ payload.size());
}

void PutLE(char* out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}
std::uint64_t GetLE(const char* in, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= std::uint64_t{static_cast<std::uint8_t>(in[i])} << (8 * i);
  return v;
}

Status Io(std::string_view what, const fs::path& path, int err) {
  return Status("TSDB_IO", fmt::format("history log: {} {}: {}", what, path.string(),
                                       std::generic_category().message(err)));
}

// Reads a whole file. TSDB_IO.
core::Result<std::string> ReadFile(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Io("cannot open", path, errno);
  std::string out;
  struct stat st {};
  if (::fstat(fd, &st) == 0) out.reserve(static_cast<std::size_t>(st.st_size));
  std::array<char, 1 << 16> buf{};
  while (true) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return Io("cannot read", path, err);
    }
    if (n == 0) break;
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

// Walks a segment's records. Returns the length of its intact prefix; *damage says why it ended
// early (nullopt: the whole segment is intact), *torn whether that is an incomplete or unchecked
// final record (nothing after it) rather than damage in the middle.
std::size_t ParseSegment(std::string_view bytes,
                         const std::function<void(std::uint64_t, std::string_view)>& fn,
                         std::optional<std::string>* damage, bool* torn) {
  std::size_t pos = 0;
  *torn = false;
  while (pos < bytes.size()) {
    if (bytes.size() - pos < kHeader) {
      *damage = "a record header is cut off";
      *torn = true;
      return pos;
    }
    const std::size_t length = GetLE(bytes.data() + pos, 4);
    const std::uint64_t seq = GetLE(bytes.data() + pos + 4, 8);
    const std::uint64_t sum = GetLE(bytes.data() + pos + 12, 8);
    if (bytes.size() - pos - kHeader < length) {
      *damage = "a record is cut off";
      *torn = true;
      return pos;
    }
    const std::string_view payload = bytes.substr(pos + kHeader, length);
    if (Checksum(seq, payload) != sum) {
      *damage = "a record fails its checksum";
      *torn = pos + kHeader + length == bytes.size();
      return pos;
    }
    if (fn) fn(seq, payload);
    pos += kHeader + length;
  }
  return pos;
}

std::optional<std::uint64_t> SegmentFirst(const fs::path& p) {
  const std::string stem = p.stem().string();
  if (p.extension() != ".wal" || stem.size() != 20 ||
      !std::all_of(stem.begin(), stem.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return std::stoull(stem);
}

// The segments in `dir` (first sequence number, path), by first. TSDB_IO.
core::Result<std::vector<std::pair<std::uint64_t, fs::path>>> ListSegments(const fs::path& dir) {
  std::vector<std::pair<std::uint64_t, fs::path>> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (auto first = SegmentFirst(entry.path())) out.emplace_back(*first, entry.path());
  }
  if (ec) return Io("cannot list", dir, ec.value());
  std::sort(out.begin(), out.end());
  return out;
}

// Writes `bytes` as the file at `path` (replacing it) and syncs it. TSDB_IO.
Status WriteFileSynced(const fs::path& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Io("cannot create", path, errno);
  std::size_t at = 0;
  while (at < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + at, bytes.size() - at);
    if (w < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return Io("cannot write", path, err);
    }
    at += static_cast<std::size_t>(w);
  }
  const int r = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  return r == 0 ? Status() : Io("cannot sync", path, err);
}

Status SyncDir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Io("cannot open directory", dir, errno);
  const int r = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  return r == 0 ? Status() : Io("cannot sync directory", dir, err);
}

}  // namespace

FileLog::FileLog(fs::path dir, bool sync_each) : dir_(std::move(dir)), sync_each_(sync_each) {}

FileLog::~FileLog() { CloseCurrent(); }

core::Result<std::unique_ptr<FileLog>> FileLog::Open(const fs::path& dir, bool sync_each) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Io("cannot create", dir, ec.value());
  std::unique_ptr<FileLog> log(new FileLog(dir, sync_each));
  auto listed = ListSegments(dir);
  if (!listed.ok()) return listed.status();
  for (auto& [first, path] : *listed) log->segments_.push_back({first, 0, std::move(path)});
  // Only the last segment is read here (Scan reads them all, once, when the store loads): its
  // end may be torn, and its newest record is the one later appends follow. An earlier segment
  // ends before the next one begins, which is bound enough for Trim.
  for (std::size_t i = 0; i + 1 < log->segments_.size(); ++i) {
    log->segments_[i].last = log->segments_[i + 1].first - 1;
  }
  if (!log->segments_.empty()) {
    Segment& seg = log->segments_.back();
    auto bytes = ReadFile(seg.path);
    if (!bytes.ok()) return bytes.status();
    std::optional<std::string> damage;
    bool torn = false;
    const std::size_t good = ParseSegment(
        *bytes, [&](std::uint64_t seq, std::string_view) { seg.last = seq; }, &damage, &torn);
    // A torn end: an append cut short by a crash, never acknowledged. Cut it off. Other damage
    // is left for Scan to report.
    if (damage && torn) {
      if (::truncate(seg.path.c_str(), static_cast<off_t>(good)) != 0) {
        return Io("cannot cut the torn end of", seg.path, errno);
      }
    }
  }
  return log;
}

core::Result<std::optional<LogCut>> FileLog::CutAtDamage(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return std::optional<LogCut>();  // no log (yet)
  auto segments = ListSegments(dir);
  if (!segments.ok()) return segments.status();
  for (std::size_t i = 0; i < segments->size(); ++i) {
    const fs::path& path = (*segments)[i].second;
    auto bytes = ReadFile(path);
    if (!bytes.ok()) return bytes.status();
    std::optional<std::string> damage;
    bool torn = false;
    std::uint64_t intact = 0;
    const std::size_t good = ParseSegment(
        *bytes, [&](std::uint64_t, std::string_view) { ++intact; }, &damage, &torn);
    if (!damage || (torn && i + 1 == segments->size())) continue;  // Open cuts a torn end
    LogCut cut;
    cut.damage = fmt::format("{}: {} at offset {}", path.string(), *damage, good);
    const std::string stamp = fmt::format("{:%Y%m%dT%H%M%SZ}", fmt::gmtime(std::time(nullptr)));
    cut.aside = dir / ("damaged-" + stamp);
    for (int k = 2; fs::exists(cut.aside, ec); ++k) {
      cut.aside = dir / fmt::format("damaged-{}-{}", stamp, k);
    }
    fs::create_directory(cut.aside, ec);
    if (ec) return Io("cannot create", cut.aside, ec.value());
    // A failure midway must leave a log that still refuses to open, never one with a gap: the
    // intact records go to a file of their own first (not a segment name), and the segments
    // move aside newest first, so that the damaged one moves last.
    const fs::path intact_file = fs::path(path).replace_extension(".intact");
    if (good > 0) {
      if (Status w = WriteFileSynced(intact_file, std::string_view(*bytes).substr(0, good));
          !w.ok()) {
        return w;
      }
    }
    for (std::size_t j = segments->size(); j-- > i;) {
      const fs::path& from = (*segments)[j].second;
      const auto size = fs::file_size(from, ec);
      cut.bytes_aside += ec ? 0 : size;
      fs::rename(from, cut.aside / from.filename(), ec);
      if (ec) return Io("cannot move aside", from, ec.value());
      ++cut.segments;
    }
    if (good > 0) {  // the intact records before the damage, back under the segment's name
      fs::rename(intact_file, path, ec);
      if (ec) return Io("cannot rename", intact_file, ec.value());
      cut.records_kept = intact;
      cut.bytes_aside -= good;
    }
    if (Status d = SyncDir(cut.aside); !d.ok()) return d;
    if (Status d = SyncDir(dir); !d.ok()) return d;
    return std::optional<LogCut>(std::move(cut));
  }
  return std::optional<LogCut>();
}

Status FileLog::OpenCurrent(std::uint64_t first_seq) {
  const fs::path path = dir_ / fmt::format("{:020}.wal", first_seq);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) return Io("cannot create", path, errno);
  size_ = 0;
  segments_.push_back({first_seq, 0, path});
  if (sync_each_) return SyncDir(dir_);
  return {};
}

void FileLog::CloseCurrent() {
  if (fd_ < 0) return;
  (void)::fdatasync(fd_);
  ::close(fd_);
  fd_ = -1;
}

Status FileLog::Append(std::span<const LogRecord> records) {
  std::lock_guard lock(mu_);
  if (broken_) {
    return Status("TSDB_IO", "history log: an earlier write failed and could not be undone");
  }
  if (records.empty()) return {};
  if (fd_ < 0) {
    if (Status s = OpenCurrent(records.front().seq); !s.ok()) return s;
  }
  std::vector<std::array<char, kHeader>> headers(records.size());
  std::vector<iovec> iov;
  iov.reserve(records.size() * 2);
  std::size_t total = 0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const LogRecord& r = records[i];
    char* h = headers[i].data();
    PutLE(h, r.bytes.size(), 4);
    PutLE(h + 4, r.seq, 8);
    PutLE(h + 12, Checksum(r.seq, r.bytes), 8);
    iov.push_back({h, kHeader});
    iov.push_back({const_cast<char*>(r.bytes.data()), r.bytes.size()});
    total += kHeader + r.bytes.size();
  }
  const fs::path& path = segments_.back().path;
  auto undo = [&](int err) {
    if (::ftruncate(fd_, static_cast<off_t>(size_)) != 0) broken_ = true;
    return Io("cannot write", path, err);
  };
  std::size_t at = 0;  // first iovec not yet fully written
  while (at < iov.size()) {
    const int n = static_cast<int>(std::min(kMaxIov, iov.size() - at));
    const ssize_t w = ::writev(fd_, &iov[at], n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return undo(errno);
    }
    auto left = static_cast<std::size_t>(w);
    while (at < iov.size() && left >= iov[at].iov_len) {
      left -= iov[at].iov_len;
      ++at;
    }
    if (left > 0) {  // a short write inside this iovec
      iov[at].iov_base = static_cast<char*>(iov[at].iov_base) + left;
      iov[at].iov_len -= left;
    }
  }
  if (sync_each_ && ::fdatasync(fd_) != 0) {
    // What reached the disk is unknown now: refuse further appends (as RocksDB does).
    broken_ = true;
    return Io("cannot sync", path, errno);
  }
  size_ += total;
  segments_.back().last = records.back().seq;
  return {};
}

Status FileLog::Sync() {
  std::lock_guard lock(mu_);
  if (fd_ < 0) return {};
  if (::fdatasync(fd_) != 0) return Io("cannot sync", segments_.back().path, errno);
  return {};
}

Status FileLog::Trim(std::uint64_t upto) {
  std::lock_guard lock(mu_);
  // The current segment is closed either way: the next append starts a new one, so this one
  // can go once a later trim covers it.
  CloseCurrent();
  std::vector<Segment> kept;
  for (Segment& seg : segments_) {
    if (seg.last <= upto) {
      std::error_code ec;
      fs::remove(seg.path, ec);
      if (ec) {
        kept.push_back(std::move(seg));
        continue;
      }
    } else {
      kept.push_back(std::move(seg));
    }
  }
  segments_ = std::move(kept);
  return {};
}

Status FileLog::Scan(const std::function<void(std::uint64_t, std::string_view)>& fn) const {
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    const Segment& seg = segments_[i];
    auto bytes = ReadFile(seg.path);
    if (!bytes.ok()) return bytes.status();
    std::optional<std::string> damage;
    bool torn = false;
    const std::size_t good = ParseSegment(*bytes, fn, &damage, &torn);
    if (damage) {
      return Status("TSDB_CHUNK_CORRUPT", fmt::format("history log {}: {} at offset {}",
                                                      seg.path.string(), *damage, good));
    }
  }
  return {};
}

std::size_t FileLog::segments() const {
  std::lock_guard lock(mu_);
  return segments_.size();
}

}  // namespace doppel::tsdb
