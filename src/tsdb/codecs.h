// doppel::tsdb internals — the per-stream codes of a chunk: bucketed delta-of-delta numbers, the
// Gorilla XOR float code, Elias-gamma run lengths, and the stream decoders built on them.
//
// Not part of the component's API; the bit layout these implement is documented in chunk.h. The
// decoders are header-only so the iterator and the aggregate loops in chunk.cc inline them.
// Every decoder reports a bad stream through `error` (a static message) and never reads outside
// its span (BitReader); arithmetic on decoded numbers is modulo 2^64, so no input overflows.
#pragma once

#include <bit>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "tsdb/bit_stream.h"

namespace doppel::tsdb::internal {

inline constexpr const char* kValueStreamEnds = "count mismatch: the value stream ends early";

// Two's complement of the low `width` bits, widened to 64 (modulo 2^64).
inline std::uint64_t SignExtend(std::uint64_t v, int width) {
  const std::uint64_t sign = std::uint64_t{1} << (width - 1);
  return (v ^ sign) - sign;
}

// ---- Bucketed numbers (delta-of-delta of timestamps and of int64 values) ---------------------
//   0                  value 0                         1 bit
//   10    + 7 bits     [-64, 63]                       9 bits
//   110   + 12 bits    [-2048, 2047]                  15 bits
//   1110  + 20 bits    [-524288, 524287]              24 bits
//   11110 + 32 bits    [-2^31, 2^31-1]                37 bits
//   11111 + 64 bits    any value modulo 2^64          69 bits
// Payloads are two's complement, most significant bit first.

inline void WriteBucketed(BitWriter& out, std::uint64_t v) {
  const auto s = static_cast<std::int64_t>(v);
  if (s == 0) {
    out.Write(0, 1);
  } else if (s >= -64 && s <= 63) {
    out.Write((std::uint64_t{0b10} << 7) | (v & 0x7F), 9);
  } else if (s >= -2048 && s <= 2047) {
    out.Write((std::uint64_t{0b110} << 12) | (v & 0xFFF), 15);
  } else if (s >= -524288 && s <= 524287) {
    out.Write((std::uint64_t{0b1110} << 20) | (v & 0xFFFFF), 24);
  } else if (s >= INT32_MIN && s <= INT32_MAX) {
    out.Write((std::uint64_t{0b11110} << 32) | (v & 0xFFFFFFFF), 37);
  } else {
    out.Write(0b11111, 5);
    out.Write(v, 64);
  }
}

// Bits WriteBucketed uses for v.
inline int BucketedBits(std::uint64_t v) {
  const auto s = static_cast<std::int64_t>(v);
  if (s == 0) return 1;
  if (s >= -64 && s <= 63) return 9;
  if (s >= -2048 && s <= 2047) return 15;
  if (s >= -524288 && s <= 524287) return 24;
  if (s >= INT32_MIN && s <= INT32_MAX) return 37;
  return 69;
}

// Reads one bucketed number (modulo 2^64). On a short stream returns 0 with in.overrun() set.
inline std::uint64_t ReadBucketed(BitReader& in) {
  if (!in.ReadBit()) return 0;
  if (!in.ReadBit()) return SignExtend(in.Read(7), 7);
  if (!in.ReadBit()) return SignExtend(in.Read(12), 12);
  if (!in.ReadBit()) return SignExtend(in.Read(20), 20);
  if (!in.ReadBit()) return SignExtend(in.Read(32), 32);
  return in.ReadWide(64);
}

// ---- Elias gamma run lengths (n >= 1): floor(log2 n) zero bits, then n in binary --------------

inline int GammaBits(std::uint64_t n) { return 2 * (std::bit_width(n) - 1) + 1; }

inline void WriteGamma(BitWriter& out, std::uint64_t n) {
  const int width = std::bit_width(n);
  out.Write(0, width - 1);
  out.Write(n, width);
}

// False when the code is cut short or longer than 33 bits of magnitude (no chunk has such runs).
inline bool ReadGamma(BitReader& in, std::uint64_t* n) {
  int zeros = 0;
  while (!in.ReadBit()) {
    if (in.overrun() || ++zeros > 32) return false;
  }
  *n = (std::uint64_t{1} << zeros) | in.ReadWide(zeros);
  return !in.overrun();
}

// ---- Gorilla XOR floats --------------------------------------------------------------------

// The encoder's side: the previous value's bits and the current window.
struct XorEncoder {
  std::uint64_t prev = 0;
  int lead = 0;   // window: leading zeros ...
  int trail = 0;  // ... and trailing zeros; the window at the start is the whole word
  bool started = false;

  void Append(std::uint64_t bits, BitWriter& out) {
    if (!started) {
      out.Write(bits, 64);
      prev = bits;
      started = true;
      return;
    }
    const std::uint64_t x = bits ^ prev;
    prev = bits;
    if (x == 0) {
      out.Write(0, 1);
      return;
    }
    int new_lead = std::countl_zero(x);
    if (new_lead > 31) new_lead = 31;  // 5-bit field
    const int new_trail = std::countr_zero(x);
    const int window_len = 64 - lead - trail;
    const int new_len = 64 - new_lead - new_trail;
    // Reuse the window when the value fits in it and that is not longer than opening a new one
    // (which costs 11 bits of window description).
    if (new_lead >= lead && new_trail >= trail && window_len <= new_len + 11) {
      out.Write(0b10, 2);
      out.Write(x >> trail, window_len);
      return;
    }
    out.Write(0b11, 2);
    out.Write(static_cast<std::uint64_t>(new_lead), 5);
    out.Write(static_cast<std::uint64_t>(new_len & 63), 6);  // 64 is written as 0
    out.Write(x >> new_trail, new_len);
    lead = new_lead;
    trail = new_trail;
  }
};

struct XorDecoder {
  BitReader in;
  std::uint64_t bits = 0;
  int trail = 0;
  int len = 64;
  bool started = false;
  const char* error = nullptr;

  // Decodes the next value's bits into *out. False on a bad or short stream (see `error`).
  bool Next(std::uint64_t* out) {
    if (!started) {
      bits = in.ReadWide(64);
      started = true;
    } else if (in.ReadBit()) {
      if (in.ReadBit()) {
        const int lead = static_cast<int>(in.Read(5));
        int n = static_cast<int>(in.Read(6));
        if (n == 0) n = 64;
        if (lead + n > 64) {
          error = "bad stream: XOR window with leading zeros + length > 64";
          return false;
        }
        len = n;
        trail = 64 - lead - n;
      }
      bits ^= in.ReadWide(len) << trail;
    }
    if (in.overrun()) {
      error = kValueStreamEnds;
      return false;
    }
    *out = bits;
    return true;
  }
};

// ---- Timestamps: delta-of-delta in the chunk's unit, after the header's first timestamp --------

struct TimestampDecoder {
  BitReader in;
  std::uint64_t unit_ns = 1;
  std::int64_t t = 0;      // the last timestamp decoded (starts at the header's first)
  std::int64_t max_t = 0;  // the header's last timestamp
  std::uint64_t delta = 0;
  const char* error = nullptr;

  // Decodes the timestamp after `t`. False on a bad or short stream.
  bool Next() {
    delta += ReadBucketed(in);
    if (in.overrun()) {
      error = "count mismatch: the timestamp stream ends early";
      return false;
    }
    std::uint64_t delta_ns = 0;
    if (__builtin_mul_overflow(delta, unit_ns, &delta_ns) ||
        delta_ns > static_cast<std::uint64_t>(max_t) - static_cast<std::uint64_t>(t)) {
      error = "bad stream: a timestamp after the header's last timestamp";
      return false;
    }
    t = static_cast<std::int64_t>(static_cast<std::uint64_t>(t) + delta_ns);
    return true;
  }
};

// ---- int64 values: the first bucketed as is, then delta-of-delta -------------------------------

struct IntDecoder {
  BitReader in;
  std::uint64_t value = 0;
  std::uint64_t delta = 0;
  bool started = false;
  const char* error = nullptr;

  bool Next(std::int64_t* out) {
    if (!started) {
      value = ReadBucketed(in);
      started = true;
    } else {
      delta += ReadBucketed(in);
      value += delta;
    }
    if (in.overrun()) {
      error = kValueStreamEnds;
      return false;
    }
    *out = static_cast<std::int64_t>(value);
    return true;
  }
};

// ---- bool values: the first value's bit, then gamma-coded run lengths of alternating values ----

struct BoolDecoder {
  BitReader in;
  std::uint64_t points_left = 0;  // points not yet decoded
  std::uint64_t run_left = 0;     // points left in the current run
  bool value = false;
  bool started = false;
  const char* error = nullptr;

  bool Next(bool* out) {
    if (run_left == 0) {
      if (!started) {
        value = in.ReadBit();
        started = true;
      } else {
        value = !value;
      }
      if (!ReadGamma(in, &run_left)) {
        error = in.overrun() ? kValueStreamEnds : "bad stream: a run length code over 33 bits";
        return false;
      }
      if (run_left > points_left) {
        error = "bad stream: a run longer than the points left";
        return false;
      }
    }
    --run_left;
    --points_left;
    *out = value;
    return true;
  }
};

// ---- string values: runs of (dictionary code, gamma run length) ------------------------------
// A run's code has bit_width(seen) bits, where `seen` is the number of dictionary entries earlier
// runs introduced; code == seen introduces the next entry (so the first run's code has 0 bits).

struct StringDecoder {
  BitReader in;
  std::span<const std::string_view> dictionary;
  std::uint64_t points_left = 0;
  std::uint64_t run_left = 0;
  std::uint64_t seen = 0;
  std::uint64_t code = 0;
  const char* error = nullptr;

  bool Next(std::string_view* out) {
    if (run_left == 0) {
      code = in.ReadWide(std::bit_width(seen));
      if (code > seen || code >= dictionary.size()) {
        error = "bad stream: a string code outside the dictionary";
        return false;
      }
      if (code == seen) ++seen;
      if (!ReadGamma(in, &run_left)) {
        error = in.overrun() ? kValueStreamEnds : "bad stream: a run length code over 33 bits";
        return false;
      }
      if (run_left > points_left) {
        error = "bad stream: a run longer than the points left";
        return false;
      }
    }
    --run_left;
    --points_left;
    *out = dictionary[code];
    return true;
  }
};

}  // namespace doppel::tsdb::internal
