#include "net/home.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "crypto/key_file.h"
#include "crypto/rng.h"
#include "store/store.h"

namespace qun::home {

std::string resolve(const std::optional<std::string>& flag) {
  if (flag && !flag->empty()) return *flag;
  if (const char* v = std::getenv("QUN_HOME"); v && *v) return v;
  if (const char* v = std::getenv("XDG_DATA_HOME"); v && *v) return std::string(v) + "/qun";
  if (const char* v = std::getenv("HOME"); v && *v) return std::string(v) + "/.local/share/qun";
  return ".qun";
}

Result<std::string> read_passphrase_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error(Errc::io, "cannot read passphrase file " + path);
  std::string line;
  std::getline(in, line);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return Error(Errc::invalid_argument, "passphrase file " + path + " is empty");
  return line;
}

Result<std::string> init(const std::string& home, const std::string& nick,
                         const std::optional<std::string>& passphrase) {
  std::error_code ec;
  std::filesystem::create_directories(home, ec);
  if (ec) return Error(Errc::io, "cannot create " + home + ": " + ec.message());
  ::chmod(home.c_str(), 0700);
  if (std::filesystem::exists(identity_path(home)))
    return Error(Errc::already_exists, home + " already has an identity");
  Rng rng = Rng::from_os();
  SigningKey key = SigningKey::generate(rng);
  QUN_TRY_VOID(write_key_file(identity_path(home), key, passphrase, rng));
  QUN_TRY(std::unique_ptr<Store> store, Store::open(store_dir(home)));
  WriteBatch batch;
  batch.put_meta(meta_nick, ByteView(reinterpret_cast<const std::uint8_t*>(nick.data()), nick.size()));
  QUN_TRY_VOID(store->commit(batch));
  return to_hex(key.public_key());
}

}  // namespace qun::home
