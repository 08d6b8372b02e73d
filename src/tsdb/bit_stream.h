// doppel::tsdb internals — MSB-first bit streams and LEB128 varints for the chunk codec.
//
// Not part of the component's API (see chunk.h). Bits are written most significant bit first:
// the first bit of a stream is bit 7 of its first byte. A finished stream is padded with zero bits
// to a whole byte; a reader is told the stream's exact length in bits, so padding never reads as
// data. BitReader never reads outside the span it was given: reading past the stream's end
// returns zeros and latches overrun(), which the decoders turn into TSDB_CHUNK_CORRUPT.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace doppel::tsdb::internal {

inline std::uint64_t LoadBigEndian64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
  return v;
}

// Appends bits to a byte vector. Up to 63 bits wait in an accumulator until a word is full.
class BitWriter {
 public:
  // Appends the low `width` bits of `bits` (0 <= width <= 64), most significant first.
  void Write(std::uint64_t bits, int width) {
    if (width == 0) return;
    if (width < 64) bits &= (std::uint64_t{1} << width) - 1;
    const int room = 64 - pending_;  // 1..64
    if (width < room) {
      acc_ = (acc_ << width) | bits;
      pending_ += width;
      return;
    }
    // Fill the accumulator to 64 bits, flush it, keep the rest.
    const int rest = width - room;  // 0..63
    const std::uint64_t word = room == 64 ? bits : (acc_ << room) | (bits >> rest);
    FlushWord(word);
    acc_ = rest == 0 ? 0 : bits & ((std::uint64_t{1} << rest) - 1);
    pending_ = rest;
  }
  void WriteBit(bool bit) { Write(bit ? 1 : 0, 1); }

  std::size_t bit_count() const { return bytes_.size() * 8 + static_cast<std::size_t>(pending_); }
  std::size_t byte_count() const { return (bit_count() + 7) / 8; }

  // Appends the stream, zero-padded to a whole byte, to *out.
  void AppendTo(std::vector<std::uint8_t>* out) const {
    out->insert(out->end(), bytes_.begin(), bytes_.end());
    if (pending_ == 0) return;
    const std::uint64_t left = acc_ << (64 - pending_);
    for (int i = 0; i < (pending_ + 7) / 8; ++i) {
      out->push_back(static_cast<std::uint8_t>(left >> (56 - 8 * i)));
    }
  }

 private:
  void FlushWord(std::uint64_t word) {
    for (int shift = 56; shift >= 0; shift -= 8) {
      bytes_.push_back(static_cast<std::uint8_t>(word >> shift));
    }
  }

  std::vector<std::uint8_t> bytes_;
  std::uint64_t acc_ = 0;  // the low `pending_` bits are waiting
  int pending_ = 0;        // 0..63
};

// Reads bits from a byte span, bounds-checked.
class BitReader {
 public:
  BitReader() = default;
  // Reads the first `bits` bits of `bytes`. REQUIRES: bytes.size() == ceil(bits / 8).
  BitReader(std::span<const std::uint8_t> bytes, std::size_t bits)
      : p_(bytes.data()), end_(bytes.data() + bytes.size()), left_(bits) {}

  // The next `width` bits (1 <= width <= 56) as an unsigned number. Past the end: 0, overrun().
  std::uint64_t Read(int width) {
    if (static_cast<std::size_t>(width) > left_) return Overrun();
    left_ -= static_cast<std::size_t>(width);
    if (cached_ < width) {
      Refill();
      if (cached_ < width) return Overrun();
    }
    const std::uint64_t v = cache_ >> (64 - width);
    cache_ <<= width;
    cached_ -= width;
    return v;
  }
  // Like Read for 0 <= width <= 64.
  std::uint64_t ReadWide(int width) {
    if (width == 0) return 0;
    if (width <= 56) return Read(width);
    const std::uint64_t hi = Read(width - 32);
    return (hi << 32) | Read(32);
  }
  bool ReadBit() { return Read(1) != 0; }

  // Reads zero bits, at most `max` (1 <= max <= 64) of them. Returns how many came before a 1 bit
  // (the 1 is read too), or `max` when `max` zeros came first (the bit after them is not read).
  // A stream that ends first: what was counted, with overrun() set.
  int ReadZeros(int max) {
    int zeros = 0;
    while (zeros < max) {
      if (cached_ == 0) Refill();
      const int usable =
          left_ < static_cast<std::size_t>(cached_) ? static_cast<int>(left_) : cached_;
      if (usable == 0) {
        Overrun();
        return zeros;
      }
      const int lead = std::countl_zero(cache_);  // 64 for an all-zero cache
      const int need = max - zeros;
      if (lead < usable && lead < need) {  // the 1 bit is within reach
        Skip(lead + 1);
        return zeros + lead;
      }
      const int take = usable < need ? usable : need;  // all zeros
      Skip(take);
      zeros += take;
    }
    return max;
  }

  bool overrun() const { return overrun_; }

  // True when every bit was read and the padding after them is zero.
  bool AtCleanEnd() const { return !overrun_ && left_ == 0 && p_ == end_ && cache_ == 0; }

 private:
  // Tops the cache up with whole bytes; bits below the valid ones stay zero.
  void Refill() {
    if (end_ - p_ >= 8) {
      const std::uint64_t v = LoadBigEndian64(p_);
      const int take = ((64 - cached_) / 8) * 8;  // whole bytes that fit
      if (take == 0) return;
      if (take == 64) {
        cache_ = v;
      } else {
        cache_ |= (v >> (64 - take)) << (64 - cached_ - take);
      }
      p_ += take / 8;
      cached_ += take;
      return;
    }
    while (cached_ <= 56 && p_ < end_) {
      cache_ |= static_cast<std::uint64_t>(*p_++) << (56 - cached_);
      cached_ += 8;
    }
  }
  // Drops the next n cached bits. REQUIRES: n <= cached_, n <= left_.
  void Skip(int n) {
    cache_ = n == 64 ? 0 : cache_ << n;
    cached_ -= n;
    left_ -= static_cast<std::size_t>(n);
  }
  std::uint64_t Overrun() {
    overrun_ = true;
    left_ = 0;
    cache_ = 0;
    cached_ = 0;
    p_ = end_;
    return 0;
  }

  const std::uint8_t* p_ = nullptr;
  const std::uint8_t* end_ = nullptr;
  std::size_t left_ = 0;     // bits of the stream not yet read
  std::uint64_t cache_ = 0;  // the next `cached_` bits, left-aligned; the rest zero
  int cached_ = 0;
  bool overrun_ = false;
};

// ---- LEB128 varints (7 bits per byte, least significant group first, high bit = more) --------

inline std::size_t VarintSize(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

inline void PutVarint(std::uint64_t v, std::vector<std::uint8_t>* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<std::uint8_t>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<std::uint8_t>(v));
}

// Reads a varint at *pos. False when it runs past the end or does not fit 64 bits.
inline bool GetVarint(std::span<const std::uint8_t> in, std::size_t* pos, std::uint64_t* v) {
  std::uint64_t result = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*pos >= in.size()) return false;
    const std::uint8_t byte = in[(*pos)++];
    const std::uint64_t group = byte & 0x7F;
    if (shift == 63 && group > 1) return false;
    result |= group << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

}  // namespace doppel::tsdb::internal
