// The node home: the directory that holds one node's identity, store and control socket.
//
//   <home>/identity.key   Ed25519 identity (crypto/key_file.h; optionally passphrase-sealed)
//   <home>/db/            the LMDB environment (store/store.h)
//   <home>/control.sock   the running node's control socket (mode 0600)
//   <home>/lock           held (flock) by the running node: one node per home
//   <home>/search.db      a member's search index (search/index.h; mode 0600, plaintext,
//                         rebuilt from the store when missing)
//
// Which home: --home DIR, else $QUN_HOME, else $XDG_DATA_HOME/qun, else ~/.local/share/qun.
#pragma once

#include <optional>
#include <string>

#include "base/result.h"

namespace qun::home {

std::string resolve(const std::optional<std::string>& flag);
inline std::string identity_path(const std::string& home) { return home + "/identity.key"; }
inline std::string store_dir(const std::string& home) { return home + "/db"; }
inline std::string socket_path(const std::string& home) { return home + "/control.sock"; }
inline std::string lock_path(const std::string& home) { return home + "/lock"; }
inline std::string search_path(const std::string& home) { return home + "/search.db"; }
// Blobs of shared files (net/blob_store.h): one directory per group, blobs in packs.
inline std::string files_dir(const std::string& home) { return home + "/files"; }
// A relay's allow-list: one admin key (64 hex digits) per line; '#' starts a comment.
inline std::string relay_allow_path(const std::string& home) { return home + "/relay-allow"; }

// Store meta keys kept by the CLI and the daemon.
inline constexpr const char* meta_nick = "nick";
inline constexpr const char* meta_mode = "mode";  // "member" or "relay", fixed at first start

// Reads a passphrase file: its first line, without the newline. Errors name the file.
[[nodiscard]] Result<std::string> read_passphrase_file(const std::string& path);

// Creates the home (mode 0700), its identity and its store, recording the nick.
// Errc::already_exists when the home already has an identity.
[[nodiscard]] Result<std::string> init(const std::string& home, const std::string& nick,
                                       const std::optional<std::string>& passphrase);

}  // namespace qun::home
