// doppel::core — errors as values.
//
// A Status is either OK or an error with a stable machine-readable `code` (UPPER_SNAKE, never
// renamed once shipped), a `message` a person understands, and optionally the JSON pointer of
// the offending input. Result<T> is a T or a Status. Nothing in doppel throws across a component
// boundary; callers check every Status.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace doppel::core {

class Status {
 public:
  Status() = default;  // OK
  Status(std::string code, std::string message, std::string pointer = {})
      : code_(std::move(code)), message_(std::move(message)), pointer_(std::move(pointer)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_.empty(); }
  const std::string& code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& pointer() const { return pointer_; }

  // Further problems of the same failure (e.g. every violation of an invalid write).
  const std::vector<Status>& details() const { return details_; }
  Status&& WithDetails(std::vector<Status> details) && {
    details_ = std::move(details);
    return std::move(*this);
  }

  // "CODE: message (at /pointer)" — for logs and CLI output.
  std::string ToString() const;

 private:
  std::string code_;
  std::string message_;
  std::string pointer_;
  std::vector<Status> details_;
};

// A value of T or an error Status. REQUIRES: the Status given on construction is not OK.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // REQUIRES: !ok().
  const Status& status() const { return std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace doppel::core
