// qun-demo: a small community on one machine, without networking yet. Three people and a relay,
// each with a key file and an LMDB store in its own home under DIR; events move between them
// the way the overlay will move them. Shows invites while the inviter is offline, history
// visible to newcomers, a removal that locks the removed member out, and everything surviving
// a restart. Usage: qun-demo [DIR]   (default: ./qun-demo-homes, replaced on each run)
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>

#include "crypto/key_file.h"
#include "crypto/rng.h"
#include "node/group_store.h"

using namespace qun;

namespace {

std::uint64_t now_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count());
}

[[noreturn]] void die(const std::string& what, const Error& e) {
  std::cerr << "qun-demo: " << what << ": " << e.message() << "\n";
  std::exit(1);
}

template <typename T>
T need(Result<T> r, const std::string& what) {
  if (!r.ok()) die(what, r.error());
  return std::move(r).value();
}

struct Person {
  std::string nick;
  std::string home;
  SigningKey key;
  SymmetricKey storage;
  std::unique_ptr<Store> store;
  std::unique_ptr<Replica> replica;
};

Person make_person(const std::string& root, const std::string& nick, Rng& rng) {
  std::string home = root + "/" + nick;
  std::filesystem::create_directories(home);
  SigningKey key = SigningKey::generate(rng);
  if (auto w = write_key_file(home + "/identity.key", key, std::nullopt, rng); !w.ok())
    die("writing " + nick + "'s key file", w.error());
  SigningKey loaded = need(read_key_file(home + "/identity.key", std::nullopt), "reading key file");
  SymmetricKey storage = storage_key_for(loaded);
  auto store = need(Store::open(home + "/db"), "opening " + nick + "'s store");
  return Person{nick, home, std::move(loaded), std::move(storage), std::move(store), nullptr};
}

// Moves every event `from` has to `to` and persists what `to` admitted.
void deliver(const Replica& from, Replica& to, Store& to_store, const SymmetricKey* storage) {
  std::vector<Event> events;
  for (const auto* rec : from.group().ordered()) events.push_back(rec->event);
  auto report = to.ingest(std::move(events));
  if (auto r = persist(to_store, to, report, to.take_new_keys(), storage); !r.ok())
    die("storing events", r.error());
}

void persist_own(Person& p, const std::vector<Event>& events) {
  IngestReport own;
  for (const auto& e : events) own.admitted.push_back(e.id);
  if (auto r = persist(*p.store, *p.replica, own, p.replica->take_new_keys(), &p.storage); !r.ok())
    die("storing " + p.nick + "'s event", r.error());
}

void show(const Person& p) {
  const Replica& r = *p.replica;
  std::cout << "\n  -- what " << p.nick << " sees in #" << r.name().value_or("?") << " --\n";
  for (const auto& m : r.history()) {
    std::string who = r.nick(m.author).value_or(short_hex(m.author));
    if (m.kind == EventKind::post) {
      std::cout << "  <" << who << "> " << m.text.value_or("[encrypted: no key]") << "\n";
    } else if (m.kind == EventKind::join) {
      std::cout << "  * " << who << " joined\n";
    } else if (m.kind == EventKind::remove) {
      std::cout << "  * " << who << " removed " << r.nick(*m.target).value_or(short_hex(*m.target)) << "\n";
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  crypto_init();
  std::string root = argc > 1 ? argv[1] : "qun-demo-homes";
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root);
  Rng rng = Rng::from_os();

  Person ada = make_person(root, "ada", rng);
  Person bob = make_person(root, "bob", rng);
  Person cy = make_person(root, "cy", rng);
  auto relay_store = need(Store::open(root + "/relay/db"), "opening the relay's store");

  std::cout << "qun-demo: homes in " << root << "/ (ada, bob, cy, relay)\n";
  auto t = now_ms();
  ada.replica = std::make_unique<Replica>(
      need(Replica::create_group({ada.key, rng, t}, "lobby", "ada", GroupSettings{}), "create"));
  persist_own(ada, {ada.replica->group().ordered().front()->event});
  auto first = need(ada.replica->post({ada.key, rng, t + 1}, "welcome to the lobby!"), "post");
  persist_own(ada, first);
  std::cout << "ada created #lobby (group " << short_hex(ada.replica->id()) << ")\n";

  auto [inv_ev, code] = need(ada.replica->invite({ada.key, rng, t + 2}, 2, t + 86'400'000, {}), "invite");
  persist_own(ada, {inv_ev});
  std::string code_text = encode_invite_code(code);
  std::cout << "ada's invite code: " << code_text << "\n";

  Replica relay(ada.replica->id(), nullptr);
  deliver(*ada.replica, relay, *relay_store, nullptr);
  std::cout << "ada goes offline; the relay holds " << relay.group().size()
            << " events it cannot read\n";

  for (Person* p : {&bob, &cy}) {
    InviteCode parsed = need(decode_invite_code(code_text), "invite code");
    p->replica = std::make_unique<Replica>(parsed.group, &p->key);
    deliver(relay, *p->replica, *p->store, &p->storage);
    auto join = need(p->replica->join({p->key, rng, now_ms()}, parsed, p->nick), "join");
    persist_own(*p, {join});
    deliver(*p->replica, relay, *relay_store, nullptr);
    std::cout << p->nick << " joined through the relay\n";
  }
  deliver(relay, *bob.replica, *bob.store, &bob.storage);
  deliver(relay, *cy.replica, *cy.store, &cy.storage);
  persist_own(bob, need(bob.replica->post({bob.key, rng, now_ms()}, "hi all, bob here"), "post"));
  persist_own(cy, need(cy.replica->post({cy.key, rng, now_ms()}, "cy says hello"), "post"));
  deliver(*bob.replica, relay, *relay_store, nullptr);
  deliver(*cy.replica, relay, *relay_store, nullptr);

  std::cout << "ada comes back online and catches up from the relay\n";
  deliver(relay, *ada.replica, *ada.store, &ada.storage);
  persist_own(ada, {need(ada.replica->remove({ada.key, rng, now_ms()}, cy.key.public_key()), "remove")});
  persist_own(ada, need(ada.replica->post({ada.key, rng, now_ms()}, "cy has left the building"), "post"));
  deliver(*ada.replica, relay, *relay_store, nullptr);
  deliver(relay, *bob.replica, *bob.store, &bob.storage);
  deliver(relay, *cy.replica, *cy.store, &cy.storage);
  std::cout << "ada removed cy: the group key rotated to epoch " << ada.replica->state().epoch << "\n";

  // Restart everyone from disk.
  for (Person* p : {&ada, &bob, &cy}) {
    Hash group = p->replica->id();
    p->replica.reset();
    p->store.reset();
    p->store = need(Store::open(p->home + "/db"), "reopening store");
    p->replica = std::make_unique<Replica>(
        need(load_replica(*p->store, group, &p->key, &p->storage), "loading " + p->nick));
  }
  std::cout << "everyone restarted and reloaded from their LMDB stores\n";
  show(ada);
  show(bob);
  show(cy);
  std::cout << "\nThe networked node and `qun chat` come next (see docs/ and the issues).\n";
  return 0;
}
