#include "crypto/secret.h"

#include <catch2/catch.hpp>
#include <utility>

#include "crypto/keys.h"

namespace qun {
namespace {

// Proves a new buffer is zero-filled (sodium_malloc's canary bytes are cleared) and that size 0
// is a valid empty buffer.
TEST_CASE("SecretBuffer starts zeroed; size 0 holds nothing", "[crypto]") {
  SecretBuffer buf(100);
  REQUIRE(buf.size() == 100);
  REQUIRE(buf.data() != nullptr);
  for (auto b : buf.view()) CHECK(b == 0);

  SecretBuffer empty(0);
  CHECK(empty.size() == 0);
  CHECK(empty.view().empty());
  CHECK(empty.equals(SecretBuffer(0)));
  SecretBuffer empty_clone = empty.clone();
  CHECK(empty_clone.size() == 0);
}

// Proves moving transfers the bytes and leaves the source empty, by construction and by
// assignment (including onto a buffer that already holds a secret, which must be freed).
TEST_CASE("SecretBuffer move semantics", "[crypto]") {
  SecretBuffer a(4);
  a.data()[0] = 7;
  const std::uint8_t* original = a.data();

  SecretBuffer b(std::move(a));
  CHECK(b.data() == original);
  CHECK(b.size() == 4);
  CHECK(b.data()[0] == 7);
  CHECK(a.data() == nullptr);  // NOLINT(bugprone-use-after-move): the contract under test
  CHECK(a.size() == 0);

  SecretBuffer c(16);
  c = std::move(b);
  CHECK(c.data() == original);
  CHECK(c.size() == 4);
  CHECK(b.data() == nullptr);  // NOLINT(bugprone-use-after-move)
  CHECK(b.size() == 0);

  // Self-move leaves the object intact.
  SecretBuffer& alias = c;
  c = std::move(alias);
  CHECK(c.data() == original);
}

// Proves clone makes an independent copy in new memory and equals compares contents and size.
TEST_CASE("SecretBuffer clone and equals", "[crypto]") {
  SecretBuffer a(32);
  for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = static_cast<std::uint8_t>(i);
  SecretBuffer b = a.clone();
  CHECK(b.data() != a.data());
  CHECK(a.equals(b));
  b.data()[31] ^= 1;
  CHECK_FALSE(a.equals(b));
  CHECK_FALSE(a.equals(SecretBuffer(31)));

  Seed s1;
  s1.data()[0] = 1;
  Seed s2 = s1.clone();
  CHECK(s1.equals(s2));
  s2.data()[0] = 2;
  CHECK_FALSE(s1.equals(s2));
}

// Proves crypto_init is idempotent (it is called from every entry point).
TEST_CASE("crypto_init may be called repeatedly", "[crypto]") {
  crypto_init();
  crypto_init();
  SUCCEED();
}

}  // namespace
}  // namespace qun
