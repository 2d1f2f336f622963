#include "crypto/key_file.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <msgpack.hpp>
#include <string_view>

#include "crypto/aead.h"
#include "crypto/rng.h"

namespace qun {

namespace {

constexpr std::string_view key_file_magic = "qun-identity";
constexpr std::size_t key_file_fields = 9;
// A sealed file is about 160 bytes (magic 13, public key 34, salt 18, two integers up to 9 each,
// nonce 26, ciphertext 50, headers). Anything far larger is not one of ours; the bound keeps a
// mistaken path (a disk image, /dev/zero) from being read into memory.
constexpr std::size_t key_file_bytes_max = 512;
constexpr std::size_t salt_bytes = crypto_pwhash_SALTBYTES;
constexpr std::size_t sealed_seed_bytes = Seed::size() + aead_tag_bytes;
// Argon2 costs are read from the file, so they are bounded before use: an altered file must not
// make us compute for hours or allocate terabytes. The ceilings are four times libsodium's
// SENSITIVE opslimit and its SENSITIVE memlimit (1 GiB); writing refuses options outside them
// too, so we never write a file we would refuse to read.
constexpr unsigned long long opslimit_min = crypto_pwhash_OPSLIMIT_MIN;
constexpr unsigned long long opslimit_max = 4ull * crypto_pwhash_OPSLIMIT_SENSITIVE;
constexpr std::size_t memlimit_min = crypto_pwhash_MEMLIMIT_MIN;
constexpr std::size_t memlimit_max = crypto_pwhash_MEMLIMIT_SENSITIVE;
// crypto_pwhash passes memlimit / 1024 to Argon2 (which counts KiB), so values within one KiB
// derive the same key. Files store a whole number of KiB and readers reject anything else, so
// every change to a stored cost changes the key, and each file has one valid reading.
constexpr std::size_t memlimit_unit = 1024;
static_assert(memlimit_min % memlimit_unit == 0 && memlimit_max % memlimit_unit == 0);
static_assert(opslimit_min <= 2 && 2 <= opslimit_max, "KeyFileOptions default out of bounds");
static_assert(memlimit_min <= 64u * 1024 * 1024 && 64u * 1024 * 1024 <= memlimit_max,
              "KeyFileOptions default out of bounds");

struct SaltTag {};
using Salt = FixedBytes<salt_bytes, SaltTag>;

// A msgpack output stream over guarded memory: a plain key file holds the seed in the clear,
// and the encoded bytes should be wiped like any other copy of it.
class GuardedStream {
 public:
  void write(const char* data, std::size_t size) {
    if (size == 0) return;  // msgpack passes null for empty bodies; memcpy must not see it
    // The encoded size is fixed by our own field sizes; overflowing is a bug here.
    assert(size <= buf_.size() - size_ && "key file encoding exceeds key_file_bytes_max");
    std::memcpy(buf_.data() + size_, data, size);
    size_ += size;
  }
  ByteView view() const { return {buf_.data(), size_}; }

 private:
  SecretBuffer buf_{key_file_bytes_max};
  std::size_t size_ = 0;
};

Error errno_error(const char* what, const std::string& path) {
  const int err = errno;
  const Errc code = (err == ENOSPC || err == EDQUOT) ? Errc::disk_full : Errc::io;
  return Error(code, std::string(what) + " " + path + ": " + std::strerror(err));
}

// Argon2id of the passphrase into a 32-byte key. Fails only when memory runs out.
Result<SymmetricKey> passphrase_key(const std::string& passphrase, const Salt& salt,
                                    unsigned long long opslimit, std::size_t memlimit) {
  SymmetricKey key;
  if (crypto_pwhash(key.data(), key.size(), passphrase.data(), passphrase.size(), salt.data(),
                    opslimit, memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return Error(Errc::internal, "passphrase hashing failed (out of memory?)");
  }
  return key;
}

// Writes all of data, retrying short writes and interruptions.
bool write_all(int fd, ByteView data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::string parent_dir(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Moves tmp to path only if path does not exist, atomically. rename() would silently replace
// an identity created meanwhile; renameat2(RENAME_NOREPLACE) and link() both refuse.
Result<void> publish_no_replace(const std::string& tmp, const std::string& path) {
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0) {
    return ok_result();
  }
  if (errno == EEXIST) return Error(Errc::already_exists, "key file " + path);
  if (errno != EINVAL && errno != ENOSYS) return errno_error("rename key file to", path);
  // The file system has no RENAME_NOREPLACE: link() is atomic and never replaces either.
  if (::link(tmp.c_str(), path.c_str()) != 0) {
    if (errno == EEXIST) return Error(Errc::already_exists, "key file " + path);
    return errno_error("link key file to", path);
  }
  ::unlink(tmp.c_str());
  return ok_result();
}

Result<void> fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_error("open directory", dir);
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  if (rc != 0) return errno_error("fsync directory", dir);
  return ok_result();
}

Result<void> write_file_atomically(const std::string& path, ByteView contents) {
  const std::string tmp = path + ".tmp";
  // O_EXCL: a leftover .tmp from a crash is reported rather than reused or removed, because it
  // may be a complete key the person still wants; O_NOFOLLOW keeps a planted symlink out.
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      return Error(Errc::io, "temporary file " + tmp + " exists (left by a crash?); remove it");
    }
    return errno_error("create", tmp);
  }
  auto fail = [&](const char* what) -> Error {
    Error error = errno_error(what, tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return error;
  };
  // The umask can only remove bits from 0600, but an odd umask could remove the owner's own;
  // set the mode explicitly so the person can always read their key.
  if (::fchmod(fd, 0600) != 0) return fail("chmod");
  if (!write_all(fd, contents)) return fail("write");
  if (::fsync(fd) != 0) return fail("fsync");
  if (::close(fd) != 0) {
    Error error = errno_error("close", tmp);
    ::unlink(tmp.c_str());
    return error;
  }
  auto published = publish_no_replace(tmp, path);
  if (!published.ok()) {
    ::unlink(tmp.c_str());
    return published.error();
  }
  // The rename is durable only once the directory entry is on disk. If this fails the file is
  // in place but maybe not durable; reporting io lets the caller decide, and a retry would see
  // already_exists rather than overwrite.
  return fsync_dir(parent_dir(path));
}

// The file's contents, in guarded memory because a plain file holds the seed in the clear.
struct RawFile {
  SecretBuffer bytes{key_file_bytes_max + 1};
  std::size_t size = 0;
  ByteView view() const { return {bytes.data(), size}; }
};

Result<RawFile> read_raw(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Error(Errc::not_found, "key file " + path);
    return errno_error("open key file", path);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Error error = errno_error("stat key file", path);
    ::close(fd);
    return error;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error(Errc::io, "key file " + path + " is not a regular file");
  }
  // A file readable by group or others (st.st_mode & 077) still loads: refusing would lock a
  // person out of their identity over a permission bit. It deserves a warning once qun has a
  // log sink; there is none in crypto/ yet.
  RawFile raw;
  // Read up to one byte past the bound so an oversized file is detected without trusting
  // st_size, which can change between fstat and read.
  while (raw.size < raw.bytes.size()) {
    const ssize_t n = ::read(fd, raw.bytes.data() + raw.size, raw.bytes.size() - raw.size);
    if (n < 0) {
      if (errno == EINTR) continue;
      Error error = errno_error("read key file", path);
      ::close(fd);
      return error;
    }
    if (n == 0) break;
    raw.size += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (raw.size > key_file_bytes_max) {
    return Error(Errc::malformed, "key file " + path + " is too large to be a key file");
  }
  return raw;
}

struct ParsedKeyFile {
  PublicKey public_key;
  bool sealed = false;
  Salt salt;
  unsigned long long opslimit = 0;
  std::size_t memlimit = 0;
  Nonce nonce;
  Bytes ciphertext;  // sealed files only
  Seed seed;         // plain files only
};

// Always returning true makes msgpack point str/bin objects into our guarded buffer instead of
// copying them (and the seed) into its heap zone.
bool reference_everything(msgpack::type::object_type, std::size_t, void*) { return true; }

std::optional<ByteView> as_bin(const msgpack::object& o, std::size_t expected_size) {
  if (o.type != msgpack::type::BIN || o.via.bin.size != expected_size) return std::nullopt;
  return ByteView(reinterpret_cast<const std::uint8_t*>(o.via.bin.ptr), o.via.bin.size);
}

std::optional<std::uint64_t> as_uint(const msgpack::object& o) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) return std::nullopt;
  return o.via.u64;
}

Result<ParsedKeyFile> parse_fields(const msgpack::object& root, const std::string& path) {
  const Error malformed(Errc::malformed, "not a qun key file: " + path);
  if (root.type != msgpack::type::ARRAY || root.via.array.size < 2) return malformed;
  const msgpack::object* f = root.via.array.ptr;
  if (f[0].type != msgpack::type::STR ||
      std::string_view(f[0].via.str.ptr, f[0].via.str.size) != key_file_magic) {
    return malformed;
  }
  // The version is checked before the layout, which a later version may change.
  const auto version = as_uint(f[1]);
  if (!version) return malformed;
  if (*version != static_cast<std::uint64_t>(key_file_version)) {
    return Error(Errc::version_mismatch, "key file " + path + " has version " +
                                             std::to_string(*version) + ", expected " +
                                             std::to_string(key_file_version));
  }
  if (root.via.array.size != key_file_fields) return malformed;

  ParsedKeyFile out;
  const auto public_key = as_bin(f[2], PublicKey::size());
  if (!public_key || f[3].type != msgpack::type::BOOLEAN) return malformed;
  out.public_key = *PublicKey::from_view(*public_key);
  out.sealed = f[3].via.boolean;
  const auto opslimit = as_uint(f[5]);
  const auto memlimit = as_uint(f[6]);
  if (!opslimit || !memlimit) return malformed;

  if (!out.sealed) {
    // Plain files carry empty cost fields, so each file has exactly one valid reading.
    const auto salt = as_bin(f[4], 0);
    const auto nonce = as_bin(f[7], 0);
    const auto seed = as_bin(f[8], Seed::size());
    if (!salt || !nonce || !seed || *opslimit != 0 || *memlimit != 0) return malformed;
    std::copy(seed->begin(), seed->end(), out.seed.data());
    return out;
  }
  const auto salt = as_bin(f[4], salt_bytes);
  const auto nonce = as_bin(f[7], Nonce::size());
  const auto ciphertext = as_bin(f[8], sealed_seed_bytes);
  if (!salt || !nonce || !ciphertext) return malformed;
  if (*opslimit < opslimit_min || *opslimit > opslimit_max || *memlimit < memlimit_min ||
      *memlimit > memlimit_max || *memlimit % memlimit_unit != 0) {
    return Error(Errc::malformed, "key file " + path + " has out-of-range passphrase costs");
  }
  out.salt = *Salt::from_view(*salt);
  out.opslimit = *opslimit;
  out.memlimit = static_cast<std::size_t>(*memlimit);
  out.nonce = *Nonce::from_view(*nonce);
  out.ciphertext.assign(ciphertext->begin(), ciphertext->end());
  return out;
}

Result<ParsedKeyFile> parse(ByteView bytes, const std::string& path) {
  // Bounds on every msgpack size, so a hostile file cannot make the decoder allocate: one array
  // of our field count, no maps or exts, strings and bins no longer than our longest field.
  const msgpack::unpack_limit limit(/*array=*/key_file_fields, /*map=*/0, /*str=*/32,
                                    /*bin=*/64, /*ext=*/0, /*depth=*/2);
  try {
    std::size_t offset = 0;
    bool referenced = false;
    msgpack::object_handle handle =
        msgpack::unpack(reinterpret_cast<const char*>(bytes.data()), bytes.size(), offset,
                        referenced, reference_everything, nullptr, limit);
    if (offset != bytes.size()) {
      return Error(Errc::malformed, "trailing bytes after key file: " + path);
    }
    return parse_fields(handle.get(), path);
  } catch (...) {
    // msgpack throws on truncated input, type errors and limit overflows; all mean corruption.
    return Error(Errc::malformed, "not a qun key file: " + path);
  }
}

}  // namespace

Result<void> write_key_file(const std::string& path, const SigningKey& key,
                            const std::optional<std::string>& passphrase, Rng& rng,
                            const KeyFileOptions& options) {
  crypto_init();
  if (passphrase) {
    // An empty passphrase would seal the key with something anyone can guess; the caller
    // means "no passphrase" and should pass std::nullopt.
    if (passphrase->empty()) return Error(Errc::invalid_argument, "empty passphrase");
    if (options.opslimit < opslimit_min || options.opslimit > opslimit_max ||
        options.memlimit < memlimit_min || options.memlimit > memlimit_max) {
      return Error(Errc::invalid_argument, "passphrase costs out of range");
    }
  }
  // Checked first for a clear error; publish_no_replace closes the race with a concurrent writer.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) return Error(Errc::already_exists, "key file " + path);
  if (errno != ENOENT) return errno_error("stat", path);

  GuardedStream stream;
  msgpack::packer<GuardedStream> packer(stream);
  packer.pack_array(key_file_fields);
  packer.pack_str(static_cast<std::uint32_t>(key_file_magic.size()));
  packer.pack_str_body(key_file_magic.data(), static_cast<std::uint32_t>(key_file_magic.size()));
  packer.pack_uint32(static_cast<std::uint32_t>(key_file_version));
  const PublicKey& public_key = key.public_key();
  packer.pack_bin(public_key.size());
  packer.pack_bin_body(reinterpret_cast<const char*>(public_key.data()), public_key.size());
  const auto pack_bytes = [&](ByteView b) {
    packer.pack_bin(static_cast<std::uint32_t>(b.size()));
    packer.pack_bin_body(reinterpret_cast<const char*>(b.data()),
                         static_cast<std::uint32_t>(b.size()));
  };

  const Seed seed = key.seed();
  if (!passphrase) {
    packer.pack_false();
    pack_bytes({});
    packer.pack_uint64(0);
    packer.pack_uint64(0);
    pack_bytes({});
    pack_bytes(seed.view());
  } else {
    Salt salt;
    rng.fill(salt.bytes);
    const Nonce nonce = random_nonce(rng);
    const std::size_t memlimit = options.memlimit / memlimit_unit * memlimit_unit;
    QUN_TRY(const SymmetricKey sealing_key,
            passphrase_key(*passphrase, salt, options.opslimit, memlimit));
    // The public key as associated data binds the ciphertext to the identity it claims.
    const Bytes ciphertext = aead_encrypt(sealing_key, nonce, public_key.view(), seed.view());
    packer.pack_true();
    pack_bytes(salt.view());
    packer.pack_uint64(options.opslimit);
    packer.pack_uint64(memlimit);
    pack_bytes(nonce.view());
    pack_bytes(ciphertext);
  }
  return write_file_atomically(path, stream.view());
}

Result<SigningKey> read_key_file(const std::string& path,
                                 const std::optional<std::string>& passphrase) {
  crypto_init();
  QUN_TRY(const RawFile raw, read_raw(path));
  QUN_TRY(const ParsedKeyFile parsed, parse(raw.view(), path));

  const Seed* seed = &parsed.seed;
  Seed opened;
  if (parsed.sealed) {
    if (!passphrase) {
      return Error(Errc::invalid_argument,
                   "key file " + path + " is sealed with a passphrase; a passphrase is needed");
    }
    QUN_TRY(const SymmetricKey sealing_key,
            passphrase_key(*passphrase, parsed.salt, parsed.opslimit, parsed.memlimit));
    // Decrypted straight into guarded memory: aead_decrypt would return the seed in a vector.
    unsigned long long opened_size = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            opened.data(), &opened_size, nullptr, parsed.ciphertext.data(),
            parsed.ciphertext.size(), parsed.public_key.data(), parsed.public_key.size(),
            parsed.nonce.data(), sealing_key.data()) != 0) {
      // A wrong passphrase and an altered file are indistinguishable here; the passphrase is by
      // far the likelier cause and the one the person can act on.
      return Error(Errc::wrong_passphrase, "key file " + path);
    }
    seed = &opened;
  }
  // A plain file passed a passphrase loads anyway: there is nothing for it to unlock.
  SigningKey key = SigningKey::from_seed(*seed);
  if (key.public_key() != parsed.public_key) {
    return Error(Errc::malformed, "key file " + path + " public key does not match its seed");
  }
  return key;
}

Result<bool> key_file_is_sealed(const std::string& path) {
  crypto_init();
  QUN_TRY(const RawFile raw, read_raw(path));
  QUN_TRY(const ParsedKeyFile parsed, parse(raw.view(), path));
  return parsed.sealed;
}

}  // namespace qun
