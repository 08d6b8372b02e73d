// Tests of the history's write-ahead log files (tsdb/file_log.h): records come back in order
// across reopen, trim drops whole segments, a torn end is cut off and later appends follow the
// intact records, damage anywhere else is reported with file and offset and never returned as
// data.
#include "tsdb/file_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "scratch_dir.h"

namespace doppel::tsdb {
namespace {

namespace fs = std::filesystem;
using Records = std::vector<std::pair<std::uint64_t, std::string>>;

std::unique_ptr<FileLog> OpenLog(const fs::path& dir, bool sync = true) {
  auto r = FileLog::Open(dir, sync);
  if (!r.ok()) {
    ADD_FAILURE() << r.status().ToString();
    return nullptr;
  }
  return std::move(*r);
}

void Append(FileLog& log, const Records& recs) {
  std::vector<LogRecord> out;
  for (const auto& [seq, bytes] : recs) out.push_back({seq, bytes});
  core::Status s = log.Append(out);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

core::Result<Records> ScanAll(const FileLog& log) {
  Records out;
  core::Status s = log.Scan(
      [&](std::uint64_t seq, std::string_view b) { out.emplace_back(seq, std::string(b)); });
  if (!s.ok()) return s;
  return out;
}

std::vector<fs::path> Segments(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(FileLogTest, RecordsComeBackInOrderAfterReopen) {
  testing::ScratchDir dir("doppel-filelog");
  const Records recs{{1, "one"}, {2, ""}, {3, std::string(100000, 'x')}, {7, "seven"}};
  {
    auto log = OpenLog(dir.path());
    Append(*log, {recs[0], recs[1]});
    Append(*log, {recs[2]});
    Append(*log, {recs[3]});
    auto now = ScanAll(*log);
    ASSERT_TRUE(now.ok());
    EXPECT_EQ(*now, recs);
  }
  auto log = OpenLog(dir.path());
  auto again = ScanAll(*log);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, recs);
  // Appends after a reopen go to a new segment, after the old records.
  Append(*log, {{8, "eight"}});
  auto more = ScanAll(*OpenLog(dir.path()));
  ASSERT_TRUE(more.ok());
  ASSERT_EQ(more->size(), 5u);
  EXPECT_EQ(more->back(), (std::pair<std::uint64_t, std::string>{8, "eight"}));
}

TEST(FileLogTest, ManyRecordsInOneAppend) {
  // More records than one writev takes (IOV_MAX).
  testing::ScratchDir dir("doppel-filelog");
  auto log = OpenLog(dir.path(), false);
  Records recs;
  for (std::uint64_t i = 1; i <= 3000; ++i) recs.emplace_back(i, std::string(i % 17, 'a'));
  Append(*log, recs);
  auto got = ScanAll(*OpenLog(dir.path()));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, recs);
}

TEST(FileLogTest, TrimDropsWholeSegmentsOnly) {
  testing::ScratchDir dir("doppel-filelog");
  auto log = OpenLog(dir.path());
  Append(*log, {{1, "a"}, {2, "b"}});
  ASSERT_TRUE(log->Trim(1).ok());  // the segment holds 2 > 1: kept, but closed
  Append(*log, {{3, "c"}});        // a new segment
  EXPECT_EQ(log->segments(), 2u);
  auto all = ScanAll(*log);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
  ASSERT_TRUE(log->Trim(2).ok());  // the first segment goes
  EXPECT_EQ(log->segments(), 1u);
  auto rest = ScanAll(*OpenLog(dir.path()));
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(*rest, (Records{{3, "c"}}));
  ASSERT_TRUE(log->Trim(3).ok());
  EXPECT_EQ(log->segments(), 0u);
  EXPECT_TRUE(Segments(dir.path()).empty());
  Append(*log, {{4, "d"}});
  auto last = ScanAll(*OpenLog(dir.path()));
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, (Records{{4, "d"}}));
}

TEST(FileLogTest, TrimAfterAReopenDropsEarlierSegmentsOnlyWhenCovered) {
  // Open reads only the last segment; an earlier one is bounded by where the next one begins.
  testing::ScratchDir dir("doppel-filelog");
  {
    auto log = OpenLog(dir.path());
    Append(*log, {{1, "a"}, {2, "b"}});
    ASSERT_TRUE(log->Trim(0).ok());
    Append(*log, {{5, "e"}});
  }
  auto log = OpenLog(dir.path());
  EXPECT_EQ(log->segments(), 2u);
  ASSERT_TRUE(log->Trim(3).ok());  // the first segment may hold up to 4: kept
  EXPECT_EQ(log->segments(), 2u);
  ASSERT_TRUE(log->Trim(4).ok());
  EXPECT_EQ(log->segments(), 1u);
  auto rest = ScanAll(*log);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(*rest, (Records{{5, "e"}}));
  ASSERT_TRUE(log->Trim(5).ok());  // the last one's newest record was read at Open
  EXPECT_EQ(log->segments(), 0u);
}

TEST(FileLogTest, ATornEndIsCutOffAndLaterAppendsFollowTheIntactRecords) {
  for (std::size_t cut : {1u, 5u, 19u, 20u, 23u}) {  // into the payload, the header, both
    SCOPED_TRACE(cut);
    testing::ScratchDir dir("doppel-filelog");
    {
      auto log = OpenLog(dir.path());
      Append(*log, {{1, "first"}, {2, "second record"}});
    }
    const fs::path seg = Segments(dir.path()).at(0);
    fs::resize_file(seg, fs::file_size(seg) - cut);
    auto log = OpenLog(dir.path());
    auto got = ScanAll(*log);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, (Records{{1, "first"}}));
    Append(*log, {{3, "third"}});
    auto after = ScanAll(*OpenLog(dir.path()));
    ASSERT_TRUE(after.ok()) << after.status().ToString();
    EXPECT_EQ(*after, (Records{{1, "first"}, {3, "third"}}));
  }
}

TEST(FileLogTest, GarbageAtTheEndIsATornEnd) {
  testing::ScratchDir dir("doppel-filelog");
  {
    auto log = OpenLog(dir.path());
    Append(*log, {{1, "first"}});
  }
  const fs::path seg = Segments(dir.path()).at(0);
  {
    std::ofstream out(seg, std::ios::binary | std::ios::app);
    out.write("\x05\x00\x00", 3);  // a header cut short
  }
  auto got = ScanAll(*OpenLog(dir.path()));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, (Records{{1, "first"}}));
  EXPECT_EQ(fs::file_size(seg), 20u + 5u);  // cut back to the intact record
}

void FlipByte(const fs::path& file, std::size_t at) {
  std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
  f.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x40);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&c, 1);
}

TEST(FileLogTest, DamageInTheMiddleIsReportedNotReturned) {
  testing::ScratchDir dir("doppel-filelog");
  {
    auto log = OpenLog(dir.path());
    Append(*log, {{1, "first"}, {2, "second"}, {3, "third"}});
  }
  const fs::path seg = Segments(dir.path()).at(0);
  const auto size = fs::file_size(seg);
  FlipByte(seg, 25 + 20 + 2);  // inside "second"'s payload
  auto log = OpenLog(dir.path());
  Records seen;
  core::Status s =
      log->Scan([&](std::uint64_t q, std::string_view b) { seen.emplace_back(q, std::string(b)); });
  EXPECT_EQ(s.code(), "TSDB_CHUNK_CORRUPT");
  EXPECT_NE(s.message().find(seg.filename().string()), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("offset 25"), std::string::npos) << s.message();
  EXPECT_EQ(seen, (Records{{1, "first"}}));  // the damaged record and what follows: not data
  EXPECT_EQ(fs::file_size(seg), size);       // evidence kept: Open cut nothing
}

TEST(FileLogTest, DamageInAnEarlierSegmentIsReportedEvenAtItsEnd) {
  testing::ScratchDir dir("doppel-filelog");
  {
    auto log = OpenLog(dir.path());
    Append(*log, {{1, "first"}});
    ASSERT_TRUE(log->Trim(0).ok());  // closes the segment; the next append starts another
    Append(*log, {{2, "second"}});
  }
  const fs::path first = Segments(dir.path()).at(0);
  fs::resize_file(first, fs::file_size(first) - 1);
  auto got = ScanAll(*OpenLog(dir.path()));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), "TSDB_CHUNK_CORRUPT");
}

// Point-in-time recovery: damage in the middle of the second of three segments. The first
// segment and the second's records before the damage stay and replay; the damaged segment (as it
// was) and the third move to damaged-<time>/; appends go on after the last intact record.
TEST(FileLogTest, CutAtDamageKeepsTheIntactPrefixAndSetsTheRestAside) {
  testing::ScratchDir dir("doppel-filelog");
  {
    auto log = OpenLog(dir.path());
    Append(*log, {{1, "one"}, {2, "two"}});
    ASSERT_TRUE(log->Trim(0).ok());  // each Trim closes the segment: three segments
    Append(*log, {{3, "three"}, {4, "four"}, {5, "five"}});
    ASSERT_TRUE(log->Trim(0).ok());
    Append(*log, {{6, "six"}});
  }
  const std::vector<fs::path> segments = Segments(dir.path());
  ASSERT_EQ(segments.size(), 3u);
  const std::uintmax_t second_size = fs::file_size(segments[1]);
  {  // flip a byte of record 4's payload ("four"): its checksum fails, record 5 follows it
    std::fstream f(segments[1], std::ios::in | std::ios::out | std::ios::binary);
    const auto header = static_cast<std::streamoff>(4 + 8 + 8);
    f.seekp(header + 5 + header + 1);
    f.put('X');
  }
  auto damaged = ScanAll(*OpenLog(dir.path()));
  ASSERT_FALSE(damaged.ok());
  EXPECT_EQ(damaged.status().code(), "TSDB_CHUNK_CORRUPT");

  auto cut = FileLog::CutAtDamage(dir.path());
  ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  ASSERT_TRUE(cut->has_value());
  const LogCut& c = **cut;
  EXPECT_NE(c.damage.find(segments[1].filename().string()), std::string::npos) << c.damage;
  EXPECT_NE(c.damage.find("checksum"), std::string::npos) << c.damage;
  EXPECT_EQ(c.segments, 2u);
  EXPECT_EQ(c.records_kept, 1u);  // record 3
  EXPECT_EQ(c.aside.parent_path(), dir.path());
  EXPECT_TRUE(c.aside.filename().string().starts_with("damaged-")) << c.aside;
  // The evidence: the damaged segment as it was, and the later one.
  EXPECT_EQ(fs::file_size(c.aside / segments[1].filename()), second_size);
  EXPECT_TRUE(fs::exists(c.aside / segments[2].filename()));
  EXPECT_FALSE(fs::exists(segments[2]));
  EXPECT_FALSE(fs::exists(fs::path(segments[1]).replace_extension(".intact")));  // renamed back

  auto log = OpenLog(dir.path());
  auto got = ScanAll(*log);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, (Records{{1, "one"}, {2, "two"}, {3, "three"}}));
  Append(*log, {{4, "four again"}});
  got = ScanAll(*OpenLog(dir.path()));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->back(), (std::pair<std::uint64_t, std::string>{4, "four again"}));
  // Nothing damaged now: a second recovery changes nothing.
  auto again = FileLog::CutAtDamage(dir.path());
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
}

// A log that is intact, or whose only flaw is a torn end (which Open cuts), is left alone; so is
// a directory that does not exist. A damaged segment without an intact record before the damage
// moves aside whole (with every later one).
TEST(FileLogTest, CutAtDamageLeavesAnUndamagedLogAlone) {
  testing::ScratchDir dir("doppel-filelog");
  auto none = FileLog::CutAtDamage(dir / "missing");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_FALSE(fs::exists(dir / "missing"));
  {
    auto log = OpenLog(dir.path());
    Append(*log, {{1, "one"}, {2, "two"}});
  }
  const fs::path seg = Segments(dir.path()).at(0);
  fs::resize_file(seg, fs::file_size(seg) - 1);  // torn end
  auto torn = FileLog::CutAtDamage(dir.path());
  ASSERT_TRUE(torn.ok());
  EXPECT_FALSE(torn->has_value());
  EXPECT_EQ(Segments(dir.path()).size(), 1u);
  auto got = ScanAll(*OpenLog(dir.path()));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, (Records{{1, "one"}}));
  {  // record 2 in a second segment, then damage the first segment's only record
    auto log = OpenLog(dir.path());
    Append(*log, {{2, "two"}});
  }
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4 + 8 + 8);
    f.put('X');
  }
  auto cut = FileLog::CutAtDamage(dir.path());
  ASSERT_TRUE(cut.ok());
  ASSERT_TRUE(cut->has_value());
  EXPECT_EQ((*cut)->records_kept, 0u);
  EXPECT_FALSE(fs::exists(seg));
  got = ScanAll(*OpenLog(dir.path()));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->empty());
}

TEST(FileLogTest, OtherFilesInTheDirectoryAreIgnored) {
  testing::ScratchDir dir("doppel-filelog");
  std::ofstream(dir / "README") << "not a segment";
  std::ofstream(dir / "123.wal") << "not a segment name either";
  auto log = OpenLog(dir.path());
  Append(*log, {{1, "a"}});
  auto got = ScanAll(*OpenLog(dir.path()));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, (Records{{1, "a"}}));
}

TEST(FileLogTest, OpenFailsWhenTheDirectoryCannotBeCreated) {
  testing::ScratchDir dir("doppel-filelog");
  std::ofstream(dir / "file") << "x";
  auto r = FileLog::Open(dir / "file" / "log", true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), "TSDB_IO");
}

}  // namespace
}  // namespace doppel::tsdb
