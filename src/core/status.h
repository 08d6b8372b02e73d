// doppel::core — errors as values.
//
// A Status is either OK or an error with a stable machine-readable `code` (UPPER_SNAKE, never
// renamed once shipped), a `message` a person understands, and optionally the JSON pointer of
// the offending input. Result<T> is a T or a Status. Nothing in doppel throws across a component
// boundary; callers check every Status.
#pragma once

#include <cassert>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace doppel::core {

class Status {
 public:
  Status() = default;  // OK
  Status(std::string code, std::string message, std::string pointer = {})
      : rep_(code.empty() ? nullptr
                          : std::make_unique<Rep>(Rep{
                                std::move(code), std::move(message), std::move(pointer), {}})) {}
  Status(const Status& other) : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}
  Status& operator=(const Status& other) {
    if (this != &other) rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;
  ~Status() = default;

  static Status Ok() { return {}; }

  bool ok() const { return rep_ == nullptr; }
  const std::string& code() const { return rep_ ? rep_->code : Empty(); }
  const std::string& message() const { return rep_ ? rep_->message : Empty(); }
  const std::string& pointer() const { return rep_ ? rep_->pointer : Empty(); }

  // Further problems of the same failure (e.g. every violation of an invalid write). An OK
  // status has none and takes none.
  const std::vector<Status>& details() const {
    static const std::vector<Status> kNone;
    return rep_ ? rep_->details : kNone;
  }
  Status&& WithDetails(std::vector<Status> details) && {
    if (rep_) rep_->details = std::move(details);
    return std::move(*this);
  }

  // "CODE: message (at /pointer)" — for logs and CLI output.
  std::string ToString() const;

 private:
  // An error's parts; OK is no Rep at all, so that passing OK around costs a null pointer.
  struct Rep {
    std::string code;
    std::string message;
    std::string pointer;
    std::vector<Status> details;
  };
  static const std::string& Empty() {
    static const std::string kEmpty;
    return kEmpty;
  }
  std::unique_ptr<Rep> rep_;
};

// A value of T or an error Status. REQUIRES: the Status given on construction is not OK.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
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
