#include "base/result.h"

namespace qun {

const char* errc_name(Errc code) {
  switch (code) {
    case Errc::ok: return "ok";
    case Errc::invalid_argument: return "invalid argument";
    case Errc::malformed: return "malformed";
    case Errc::too_large: return "too large";
    case Errc::bad_signature: return "bad signature";
    case Errc::decrypt_failed: return "decryption failed";
    case Errc::wrong_passphrase: return "wrong passphrase";
    case Errc::not_found: return "not found";
    case Errc::already_exists: return "already exists";
    case Errc::unauthorized: return "unauthorized";
    case Errc::missing_parents: return "missing parents";
    case Errc::io: return "i/o error";
    case Errc::disk_full: return "disk full";
    case Errc::version_mismatch: return "version mismatch";
    case Errc::internal: return "internal error";
  }
  return "unknown error";
}

}  // namespace qun
