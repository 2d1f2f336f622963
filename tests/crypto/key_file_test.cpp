#include "crypto/key_file.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "crypto/rng.h"
#include "tests/temp_dir.h"

namespace qun {
namespace {

// A fresh directory under /tmp, removed with its contents when the test ends.

// The cheapest Argon2id cost libsodium allows, so sealed tests run in milliseconds.
KeyFileOptions cheap() {
  KeyFileOptions options;
  options.opslimit = crypto_pwhash_OPSLIMIT_MIN;
  options.memlimit = crypto_pwhash_MEMLIMIT_MIN;
  return options;
}

Bytes read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

void write_all(const std::string& path, ByteView bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

const std::optional<std::string> no_passphrase;

// Proves a plain key file round-trips to the same key pair, is reported unsealed, leaves no
// temporary file behind, and loads even when a (useless) passphrase is given.
TEST_CASE("key file plain round trip", "[crypto]") {
  qun::test::TempDir dir{"qun-crypto"};
  Rng rng = Rng::from_u64(30);
  const SigningKey key = SigningKey::generate(rng);
  const std::string path = dir.file("identity");
  REQUIRE(write_key_file(path, key, no_passphrase, rng).ok());
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));

  const auto loaded = read_key_file(path, no_passphrase);
  REQUIRE(loaded.ok());
  CHECK(loaded->public_key() == key.public_key());
  CHECK(loaded->seed().equals(key.seed()));
  const auto sealed = key_file_is_sealed(path);
  REQUIRE(sealed.ok());
  CHECK_FALSE(*sealed);
  CHECK(read_key_file(path, std::string("ignored")).ok());
}

// Proves a sealed file round-trips with the right passphrase, is reported sealed, and does
// not contain the seed in the clear.
TEST_CASE("key file sealed round trip", "[crypto]") {
  qun::test::TempDir dir{"qun-crypto"};
  Rng rng = Rng::from_u64(31);
  const SigningKey key = SigningKey::generate(rng);
  const std::string path = dir.file("identity");
  REQUIRE(write_key_file(path, key, std::string("correct horse"), rng, cheap()).ok());

  const auto loaded = read_key_file(path, std::string("correct horse"));
  REQUIRE(loaded.ok());
  CHECK(loaded->public_key() == key.public_key());
  const auto sealed = key_file_is_sealed(path);
  REQUIRE(sealed.ok());
  CHECK(*sealed);

  const Bytes contents = read_all(path);
  const Seed seed = key.seed();
  const auto found =
      std::search(contents.begin(), contents.end(), seed.view().begin(), seed.view().end());
  CHECK(found == contents.end());

  // A memlimit that is not a whole number of KiB is stored rounded down and still loads.
  KeyFileOptions odd = cheap();
  odd.memlimit += 100;
  REQUIRE(write_key_file(dir.file("odd"), key, std::string("p"), rng, odd).ok());
  CHECK(read_key_file(dir.file("odd"), std::string("p")).ok());
}

// Proves a wrong passphrase gives wrong_passphrase and a missing one gives invalid_argument
// with a context that tells the person a passphrase is needed.
TEST_CASE("key file wrong or missing passphrase", "[crypto]") {
  qun::test::TempDir dir{"qun-crypto"};
  Rng rng = Rng::from_u64(32);
  const SigningKey key = SigningKey::generate(rng);
  const std::string path = dir.file("identity");
  REQUIRE(write_key_file(path, key, std::string("right"), rng, cheap()).ok());

  const auto wrong = read_key_file(path, std::string("wrong"));
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.error().code() == Errc::wrong_passphrase);
  const auto empty = read_key_file(path, std::string(""));
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().code() == Errc::wrong_passphrase);

  const auto missing = read_key_file(path, no_passphrase);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code() == Errc::invalid_argument);
  CHECK(missing.error().context().find("passphrase is needed") != std::string::npos);
}

// Proves written files have mode 0600 whatever the umask, sealed or not.
TEST_CASE("key file mode is 0600", "[crypto]") {
  qun::test::TempDir dir{"qun-crypto"};
  Rng rng = Rng::from_u64(33);
  const SigningKey key = SigningKey::generate(rng);
  const mode_t old_umask = ::umask(0);  // the most permissive umask: 0600 must still hold
  const auto plain = write_key_file(dir.file("plain"), key, no_passphrase, rng);
  const auto sealed = write_key_file(dir.file("sealed"), key, std::string("p"), rng, cheap());
  ::umask(old_umask);
  REQUIRE(plain.ok());
  REQUIRE(sealed.ok());
  for (const char* name : {"plain", "sealed"}) {
    struct stat st {};
    REQUIRE(::stat(dir.file(name).c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);
  }
}

// Proves an existing identity is never overwritten: the second write fails with
// already_exists and the first key still loads. Also a dangling symlink counts as existing.
TEST_CASE("key file refuses to overwrite", "[crypto]") {
  qun::test::TempDir dir{"qun-crypto"};
  Rng rng = Rng::from_u64(34);
  const SigningKey first = SigningKey::generate(rng);
  const SigningKey second = SigningKey::generate(rng);
  const std::string path = dir.file("identity");
  REQUIRE(write_key_file(path, first, no_passphrase, rng).ok());
  const auto again = write_key_file(path, second, no_passphrase, rng);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().code() == Errc::already_exists);
  CHECK(read_key_file(path, no_passphrase)->public_key() == first.public_key());

  const std::string link = dir.file("dangling");
  REQUIRE(::symlink(dir.file("nowhere").c_str(), link.c_str()) == 0);
  CHECK(write_key_file(link, first, no_passphrase, rng).error().code() == Errc::already_exists);
}

// Proves a leftover temporary file is reported, not silently replaced or followed.
TEST_CASE("key file write reports a stale temporary file", "[crypto]") {
  qun::test::TempDir dir{"qun-crypto"};
  Rng rng = Rng::from_u64(35);
  const SigningKey key = SigningKey::generate(rng);
  const std::string path = dir.file("identity");
  write_all(path + ".tmp", as_bytes("left over"));
  const auto r = write_key_file(path, key, no_passphrase, rng);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code() == Errc::io);
  CHECK_FALSE(std::filesystem::exists(path));
}

// Proves bad arguments are refused before anything is written: an empty passphrase and Argon2
// costs outside the bounds a reader accepts.
TEST_CASE("key file write rejects empty passphrase and bad costs", "[crypto]") {
  qun::test::TempDir dir{"qun-crypto"};
  Rng rng = Rng::from_u64(36);
  const SigningKey key = SigningKey::generate(rng);
  CHECK(write_key_file(dir.file("a"), key, std::string(""), rng, cheap()).error().code() ==
        Errc::invalid_argument);
  KeyFileOptions too_cheap = cheap();
  too_cheap.opslimit = 0;
  CHECK(write_key_file(dir.file("b"), key, std::string("p"), rng, too_cheap).error().code() ==
        Errc::invalid_argument);
  KeyFileOptions too_big = cheap();
  too_big.memlimit = std::size_t{4} << 30;
  CHECK(write_key_file(dir.file("c"), key, std::string("p"), rng, too_big).error().code() ==
        Errc::invalid_argument);
  CHECK_FALSE(std::filesystem::exists(dir.file("a")));
}

// Proves reading never crashes on a truncated file: every proper prefix of a plain and of a
// sealed file, including the empty file, is an error (malformed).
TEST_CASE("key file truncated at every length is an error", "[crypto]") {
  qun::test::TempDir dir{"qun-crypto"};
  Rng rng = Rng::from_u64(37);
  const SigningKey key = SigningKey::generate(rng);
  REQUIRE(write_key_file(dir.file("plain"), key, no_passphrase, rng).ok());
  REQUIRE(write_key_file(dir.file("sealed"), key, std::string("p"), rng, cheap()).ok());
  for (const char* name : {"plain", "sealed"}) {
    const Bytes full = read_all(dir.file(name));
    REQUIRE(full.size() > 40);
    for (std::size_t n = 0; n < full.size(); ++n) {
      const std::string path = dir.file(std::string("cut_") + name);
      write_all(path, ByteView(full).first(n));
      const auto r = read_key_file(path, std::string("p"));
      INFO(name << " truncated to " << n << " bytes");
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().code() == Errc::malformed);
      CHECK_FALSE(key_file_is_sealed(path).ok());
    }
  }
}

// Proves random bytes (from a fixed seed, many lengths) and non-key-file msgpack are reported
// malformed, as is a file with trailing bytes or one far too large; no input crashes.
TEST_CASE("key file garbage is malformed", "[crypto]") {
  qun::test::TempDir dir{"qun-crypto"};
  Rng rng = Rng::from_u64(38);
  const std::string path = dir.file("garbage");
  for (int i = 0; i < 300; ++i) {
    Bytes junk(rng.uniform(300) + 1);
    rng.fill(junk);
    write_all(path, junk);
    const auto r = read_key_file(path, no_passphrase);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code() == Errc::malformed);
  }
  // Valid msgpack that is not a key file: an int, a map, an array of the wrong magic, and a
  // huge declared array length (0xdd = array32) that must not allocate.
  for (const Bytes& b :
       {Bytes{0x01}, Bytes{0x80}, Bytes{0x92, 0xa1, 'x', 0x01}, Bytes{0xdd, 0x7f, 0xff, 0xff, 0xff},
        Bytes{0xc6, 0xff, 0xff, 0xff, 0xff}}) {
    write_all(path, b);
    CHECK(read_key_file(path, no_passphrase).error().code() == Errc::malformed);
  }

  Rng key_rng = Rng::from_u64(39);
  const SigningKey key = SigningKey::generate(key_rng);
  REQUIRE(write_key_file(dir.file("good"), key, no_passphrase, key_rng).ok());
  Bytes trailing = read_all(dir.file("good"));
  trailing.push_back(0);
  write_all(path, trailing);
  CHECK(read_key_file(path, no_passphrase).error().code() == Errc::malformed);
  write_all(path, Bytes(100000, 0x90));
  CHECK(read_key_file(path, no_passphrase).error().code() == Errc::malformed);
}

// Proves the version field is checked: version 2 with the right magic is version_mismatch,
// not malformed, so a newer qun's file gets an actionable error.
TEST_CASE("key file of another version is version_mismatch", "[crypto]") {
  qun::test::TempDir dir{"qun-crypto"};
  Rng rng = Rng::from_u64(40);
  const SigningKey key = SigningKey::generate(rng);
  const std::string path = dir.file("identity");
  REQUIRE(write_key_file(path, key, no_passphrase, rng).ok());
  Bytes contents = read_all(path);
  // [0] array header, [1] str header, [2..13] "qun-identity", [14] positive fixint version.
  REQUIRE(contents[14] == 0x01);
  contents[14] = 0x02;
  const std::string other = dir.file("v2");
  write_all(other, contents);
  const auto r = read_key_file(other, no_passphrase);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code() == Errc::version_mismatch);
}

// Proves a plain file whose stored public key does not match its seed is malformed, so a
// corrupted file never yields an identity other than the one it names.
TEST_CASE("key file with mismatched public key is malformed", "[crypto]") {
  qun::test::TempDir dir{"qun-crypto"};
  Rng rng = Rng::from_u64(41);
  const SigningKey key = SigningKey::generate(rng);
  const std::string path = dir.file("identity");
  REQUIRE(write_key_file(path, key, no_passphrase, rng).ok());
  Bytes contents = read_all(path);
  // The public key's bin32 body starts after magic (14), version (1) and bin header (2).
  contents[17] ^= 0x01;
  write_all(path, contents);
  CHECK(read_key_file(path, no_passphrase).error().code() == Errc::malformed);
}

// Proves every single flipped bit anywhere in a sealed file is detected: the read fails with
// wrong_passphrase (authentication) or malformed (structure), never succeeds or crashes.
TEST_CASE("key file sealed with a flipped byte fails", "[crypto]") {
  qun::test::TempDir dir{"qun-crypto"};
  Rng rng = Rng::from_u64(42);
  const SigningKey key = SigningKey::generate(rng);
  const std::string path = dir.file("identity");
  REQUIRE(write_key_file(path, key, std::string("p"), rng, cheap()).ok());
  const Bytes full = read_all(path);
  const std::string bad_path = dir.file("flipped");
  for (std::size_t i = 0; i < full.size(); ++i) {
    Bytes bad = full;
    bad[i] ^= 0x01;
    write_all(bad_path, bad);
    const auto r = read_key_file(bad_path, std::string("p"));
    INFO("flipped byte " << i);
    REQUIRE_FALSE(r.ok());
    const Errc code = r.error().code();
    CHECK((code == Errc::wrong_passphrase || code == Errc::malformed ||
           code == Errc::version_mismatch));
  }
  // The last bytes are the ciphertext's tag: an authentication failure, reported as a wrong
  // passphrase since the two cannot be told apart.
  Bytes bad = full;
  bad[full.size() - 1] ^= 0x01;
  write_all(bad_path, bad);
  CHECK(read_key_file(bad_path, std::string("p")).error().code() == Errc::wrong_passphrase);
}

// Proves a missing file is not_found, for reading and for the sealed query.
TEST_CASE("key file missing is not_found", "[crypto]") {
  qun::test::TempDir dir{"qun-crypto"};
  CHECK(read_key_file(dir.file("absent"), no_passphrase).error().code() == Errc::not_found);
  CHECK(key_file_is_sealed(dir.file("absent")).error().code() == Errc::not_found);
}

}  // namespace
}  // namespace qun
