// doppel::tsdb internals — the per-stream codes of a chunk: bucketed delta-of-delta numbers, the
// Gorilla XOR float code, the decimal float code (adaptive Rice-coded first differences of n in
// n / 10^k), Elias-gamma run lengths, and the stream decoders built on them.
//
// Not part of the component's API; the bit layout these implement is documented in chunk.h. The
// decoders are header-only so the iterator and the aggregate loops in chunk.cc inline them.
// Every decoder reports a bad stream through `error` (a static message) and never reads outside
// its span (BitReader); arithmetic on decoded numbers is modulo 2^64, so no input overflows.
#pragma once

#include <bit>
#include <cmath>
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
    std::uint64_t x = 0;
    switch (Step(bits, &x)) {
      case Code::kFirst:
        out.Write(bits, 64);
        return;
      case Code::kSame:
        out.Write(0, 1);
        return;
      case Code::kWindow:
        out.Write(0b10, 2);
        out.Write(x >> trail, 64 - lead - trail);
        return;
      case Code::kNewWindow: {
        const int len = 64 - lead - trail;
        out.Write(0b11, 2);
        out.Write(static_cast<std::uint64_t>(lead), 5);
        out.Write(static_cast<std::uint64_t>(len & 63), 6);  // 64 is written as 0
        out.Write(x >> trail, len);
        return;
      }
    }
  }

  // The bits Append would write for `bits`, with the state updated as Append does.
  int Cost(std::uint64_t bits) {
    std::uint64_t x = 0;
    switch (Step(bits, &x)) {
      case Code::kFirst:
        return 64;
      case Code::kSame:
        return 1;
      case Code::kWindow:
        return 2 + 64 - lead - trail;
      case Code::kNewWindow:
        return 2 + 5 + 6 + 64 - lead - trail;
    }
    return 0;
  }

 private:
  enum class Code { kFirst, kSame, kWindow, kNewWindow };

  // Moves the state past `bits` (*x: bits XOR the previous bits) and says how it is coded; for
  // kNewWindow lead and trail are already the new window's.
  Code Step(std::uint64_t bits, std::uint64_t* x) {
    if (!started) {
      prev = bits;
      started = true;
      return Code::kFirst;
    }
    *x = bits ^ prev;
    prev = bits;
    if (*x == 0) return Code::kSame;
    int new_lead = std::countl_zero(*x);
    if (new_lead > 31) new_lead = 31;  // 5-bit field
    const int new_trail = std::countr_zero(*x);
    const int window_len = 64 - lead - trail;
    const int new_len = 64 - new_lead - new_trail;
    // Reuse the window when the value fits in it and that is not longer than opening a new one
    // (which costs 11 bits of window description).
    if (new_lead >= lead && new_trail >= trail && window_len <= new_len + 11) {
      return Code::kWindow;
    }
    lead = new_lead;
    trail = new_trail;
    return Code::kNewWindow;
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

// ---- Decimal floats: value = static_cast<double>(n) / 10^k, |n| < 2^53 ------------------------
// Both operands of the division are exact doubles (n is an integer below 2^53, 10^k for k <= 22),
// so IEEE division gives the double nearest to the decimal n·10^-k: what strtod gives for the
// decimal's text. A value is coded so only when that reproduces its bits exactly.

inline constexpr int kMaxDecimalScale = 22;
inline constexpr std::int64_t kMaxDecimalMagnitude = (std::int64_t{1} << 53) - 1;
inline constexpr double kPowersOf10[kMaxDecimalScale + 1] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
// The decimal code's escape: this many zero bits, then 6 bits of width.
inline constexpr int kDecimalEscapeZeros = 12;
inline constexpr int kDecimalMaxWidth = 55;  // |n - p| < 2^54, so its zigzag is below 2^55
inline constexpr int kDecimalRawWidth = 63;  // the width field of a raw 64-bit value

// Sets *n to the integer with static_cast<double>(*n) / 10^k bit-identical to v, |*n| < 2^53, and
// returns true; false when there is none (NaN, ±Inf, -0.0, denormals, more decimals than k, too
// large) or rounding v·10^k does not find it (|n| near 2^53). REQUIRES: 0 <= k <= 22.
inline bool ToDecimal(double v, int k, std::int64_t* n) {
  const double x = v * kPowersOf10[k];
  if (!(std::fabs(x) < 0x1p53)) return false;  // NaN and ±Inf too
  // Round to nearest: trunc(x ± 0.5) below 2^52 (wrong only next to a half, where no decimal's
  // image lies); from 2^52 on every double is an integer (and x + 0.5 could round up to 2^53).
  const double rounded = !(std::fabs(x) < 0x1p52) ? x : x < 0 ? x - 0.5 : x + 0.5;
  const auto r = static_cast<std::int64_t>(rounded);
  if (r > kMaxDecimalMagnitude || r < -kMaxDecimalMagnitude) return false;
  if (std::bit_cast<std::uint64_t>(static_cast<double>(r) / kPowersOf10[k]) !=
      std::bit_cast<std::uint64_t>(v)) {
    return false;
  }
  *n = r;
  return true;
}

inline std::uint64_t ZigZag(std::uint64_t d) { return (d << 1) ^ (0 - (d >> 63)); }
inline std::uint64_t UnZigZag(std::uint64_t z) { return (z >> 1) ^ (0 - (z & 1)); }

// The Rice parameter r of the decimal code, shared by encoder and decoder: 0 at first; after each
// integer-coded value but the chunk's first, m = m - m/8 + 2z (an average of z, times 16) and
// r = max(0, bit_width(m/16) - 1). z < 2^55 keeps m below 2^60.
struct RiceAdapter {
  std::uint64_t mean16 = 0;
  int rice = 0;
  bool started = false;

  void Update(std::uint64_t z) {
    if (!started) {
      started = true;
      return;
    }
    mean16 = mean16 - (mean16 >> 3) + (z << 1);
    const int width = std::bit_width(mean16 >> 4);
    rice = width > 0 ? width - 1 : 0;
  }
};

struct DecimalEncoder {
  std::uint64_t prev = 0;  // the last integer-coded n (modulo 2^64), 0 before the first
  RiceAdapter adapter;

  // Codes n (REQUIRES: |n| < 2^53).
  void Append(std::int64_t n, BitWriter& out) {
    const std::uint64_t z = ZigZag(static_cast<std::uint64_t>(n) - prev);
    prev = static_cast<std::uint64_t>(n);
    const int r = adapter.rice;
    const std::uint64_t q = z >> r;
    if (q < kDecimalEscapeZeros) {
      // q zero bits, a 1, the low r bits of z: one number of q + 1 + r bits.
      const int width = static_cast<int>(q) + 1 + r;
      const std::uint64_t low = z & ((std::uint64_t{1} << r) - 1);  // r <= 55
      if (width <= 64) {
        out.Write((std::uint64_t{1} << r) | low, width);
      } else {
        out.Write(1, static_cast<int>(q) + 1);
        out.Write(low, r);
      }
    } else {
      const int width = std::bit_width(z);
      out.Write(static_cast<std::uint64_t>(width), kDecimalEscapeZeros + 6);  // 12 zeros, width
      out.Write(z, width);
    }
    adapter.Update(z);
  }

  // Codes a value that is not integer-coded: its 64 bits after the escape. The state stays.
  static void AppendRaw(std::uint64_t bits, BitWriter& out) {
    out.Write(kDecimalRawWidth, kDecimalEscapeZeros + 6);
    out.Write(bits, 64);
  }
};

struct DecimalDecoder {
  BitReader in;
  double divisor = 1;  // 10^k
  std::uint64_t prev = 0;
  RiceAdapter adapter;
  const char* error = nullptr;

  // The next value as coded: *raw and its bits, or an integer n (as uint64) with |n| < 2^53.
  bool NextCode(bool* raw, std::uint64_t* value) {
    const int zeros = in.ReadZeros(kDecimalEscapeZeros);
    std::uint64_t z = 0;
    if (zeros < kDecimalEscapeZeros) {
      z = (static_cast<std::uint64_t>(zeros) << adapter.rice) | in.ReadWide(adapter.rice);
    } else {
      const int width = static_cast<int>(in.Read(6));
      if (width == kDecimalRawWidth) {
        *value = in.ReadWide(64);
        *raw = true;
        if (in.overrun()) {
          error = kValueStreamEnds;
          return false;
        }
        return true;
      }
      if ((width == 0 || width > kDecimalMaxWidth) && !in.overrun()) {
        error = "bad stream: a decimal escape width no writer produces";
        return false;
      }
      z = in.ReadWide(width);
    }
    if (in.overrun()) {
      error = kValueStreamEnds;
      return false;
    }
    const std::uint64_t n = prev + UnZigZag(z);
    const auto s = static_cast<std::int64_t>(n);
    if (s > kMaxDecimalMagnitude || s < -kMaxDecimalMagnitude) {
      error = "bad stream: a decimal integer beyond 2^53 - 1";
      return false;
    }
    prev = n;
    adapter.Update(z);
    *raw = false;
    *value = n;
    return true;
  }

  // The next value's bits.
  bool Next(std::uint64_t* out) {
    bool raw = false;
    std::uint64_t v = 0;
    if (!NextCode(&raw, &v)) return false;
    *out = raw ? v
               : std::bit_cast<std::uint64_t>(static_cast<double>(static_cast<std::int64_t>(v)) /
                                              divisor);
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
