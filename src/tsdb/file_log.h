// doppel::tsdb::FileLog — the history store's write-ahead log as files of its own.
//
// Why not keys in the database: a write-ahead record is written once, read only after a crash
// and deleted at the next checkpoint. As a RocksDB value it was copied into a WriteBatch, the
// database's WAL and its memtable (with the page faults of fresh memtable memory), flushed to a
// table file and compacted away again: about a fifth of the append path's CPU. Appended to a file
// it is one writev into the page cache and one fdatasync.
//
// Layout: a directory of segments `<first seq, 20 digits>.wal`. A segment is a sequence of
// records, each
//     u32 payload length | u64 seq | u64 XXH3_64bits(payload, seed = seq ^ length) | payload
// (little-endian). Sequence numbers increase through the log. Trim(upto) deletes every segment
// whose records are all <= upto and starts a new segment for the next append (so the current one
// can go at the next trim).
//
// Durability: Append returns after the records are written to the file (they survive kill -9)
// and, with sync_each, after fdatasync (they survive a power loss); a new segment's directory
// entry is synced too. Sync() syncs what was appended (the store's interval policy).
//
// Damage: Open drops a torn last record of the last segment (a crash in the middle of an append
// that was therefore never acknowledged) by truncating the file; anything else that does not
// parse (a bad record followed by more data, a bad record in an earlier segment) is
// TSDB_CHUNK_CORRUPT from Scan, naming the file and offset — never returned as data. To start
// anyway, CutAtDamage (before Open) recovers the log to a point in time: its last intact record
// before the damage; what follows is set aside, not deleted.
//
// Threads: every method may be called from any thread (one mutex).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace doppel::tsdb {

struct LogRecord {
  std::uint64_t seq = 0;
  std::string_view bytes;
};

// What CutAtDamage set aside.
struct LogCut {
  std::string damage;              // "<segment>: <what> at offset <n>", as Scan reports it
  std::filesystem::path aside;     // the folder the segments went to
  std::size_t segments = 0;        // moved there (the damaged one and every later one)
  std::uint64_t records_kept = 0;  // intact records of the damaged segment written back
  std::uint64_t bytes_aside = 0;   // of the moved segments, past what was written back
};

class FileLog {
 public:
  // Creates the directory if needed. TSDB_IO.
  static core::Result<std::unique_ptr<FileLog>> Open(const std::filesystem::path& dir,
                                                     bool sync_each);

  // Point-in-time recovery of the log in `dir` (not open): when a record is damaged where Scan
  // would report it (anything but a torn end of the last segment, which Open cuts), the damaged
  // segment and every later one move to dir/damaged-<UTC time>/, and the damaged segment's
  // intact records before the damage are written back (synced) under its name, so the log ends
  // at its last intact record. Records after the damage are then not replayed: acknowledged
  // points may be among them, which is why this is never automatic. nullopt: nothing damaged,
  // nothing changed. TSDB_IO; a failure midway leaves a log that still refuses to open (never one
  // with a gap), and calling this again goes on.
  static core::Result<std::optional<LogCut>> CutAtDamage(const std::filesystem::path& dir);
  ~FileLog();
  FileLog(const FileLog&) = delete;
  FileLog& operator=(const FileLog&) = delete;

  // Appends the records (sequence numbers above every earlier one). TSDB_IO; after a failure the
  // file is cut back to before the call, or, if even that fails, every later append fails.
  core::Status Append(std::span<const LogRecord> records);
  core::Status Sync();                    // fdatasync of the current segment
  core::Status Trim(std::uint64_t upto);  // deletes the segments wholly <= upto
  // Every record in order. TSDB_IO, TSDB_CHUNK_CORRUPT.
  core::Status Scan(const std::function<void(std::uint64_t seq, std::string_view bytes)>& fn) const;

  std::size_t segments() const;  // for tests

 private:
  struct Segment {
    // Sequence numbers: the first, and the newest (0 while empty); for a segment before the
    // last one found at Open, the next one's first - 1 (an upper bound: it is not read).
    std::uint64_t first = 0, last = 0;
    std::filesystem::path path;
  };
  FileLog(std::filesystem::path dir, bool sync_each);
  core::Status OpenCurrent(std::uint64_t first_seq);  // a new segment
  void CloseCurrent();

  std::filesystem::path dir_;
  bool sync_each_;
  mutable std::mutex mu_;
  std::vector<Segment> segments_;  // by first; the last one is current when fd_ >= 0
  int fd_ = -1;
  std::uint64_t size_ = 0;  // of the current segment
  bool broken_ = false;
};

}  // namespace doppel::tsdb
