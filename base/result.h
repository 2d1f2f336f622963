// Result<T>: a value or an Error, the return type of every fallible function in qun.
//
// C++20 has no std::expected, so this is a small one of our own. No exception crosses a module
// boundary: code that calls a throwing library (msgpack-cxx) catches and converts to an Error.
// An Error is a code (what the caller can act on) and a short context (what a person reads).
// Error context never holds secrets or plaintext: ids, sizes and reasons only.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace qun {

enum class Errc {
  ok = 0,
  invalid_argument,   // the caller passed something unusable
  malformed,          // bytes that do not decode (peer input, corrupted file)
  too_large,          // past a named bound
  bad_signature,      // a signature that does not verify
  decrypt_failed,     // AEAD or sealed box authentication failed (wrong key or tampered)
  wrong_passphrase,   // a sealed key file opened with the wrong passphrase
  not_found,          // no such item
  already_exists,     // an item that must be new exists
  unauthorized,       // the author had no right to do this
  missing_parents,    // an event whose parents are not known yet
  io,                 // the operating system refused a file operation
  disk_full,          // the store's map or the disk is full
  version_mismatch,   // a database or file of another schema version
  internal,           // a bug in our own code or a library's unexpected failure
};

// A short, stable name for an error code, for logs and messages.
const char* errc_name(Errc code);

class [[nodiscard]] Error {
 public:
  Error(Errc code, std::string context) : code_(code), context_(std::move(context)) {}
  Errc code() const { return code_; }
  const std::string& context() const { return context_; }
  // "code: context", one line for logs and people.
  std::string message() const { return std::string(errc_name(code_)) + ": " + context_; }

 private:
  Errc code_;
  std::string context_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design, like expected
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_{Errc::ok, ""};
  bool ok_ = true;
};

inline Result<void> ok_result() { return Result<void>(); }

}  // namespace qun

// Propagates an error from a Result-returning expression, else binds its value.
#define QUN_CONCAT_INNER(a, b) a##b
#define QUN_CONCAT(a, b) QUN_CONCAT_INNER(a, b)
#define QUN_TRY_IMPL(tmp, decl, expr) \
  auto tmp = (expr);                  \
  if (!tmp.ok()) return tmp.error();  \
  decl = std::move(tmp).value()
#define QUN_TRY(decl, expr) QUN_TRY_IMPL(QUN_CONCAT(qun_try_, __LINE__), decl, expr)
#define QUN_TRY_VOID(expr)                                 \
  do {                                                     \
    auto qun_try_void_ = (expr);                           \
    if (!qun_try_void_.ok()) return qun_try_void_.error(); \
  } while (0)
