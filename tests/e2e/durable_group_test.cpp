// Consumer group of 3 `rill sub` processes on 100,000 messages from a persistent publisher,
// one member killed (SIGKILL) midway: every message handled by exactly one member, none lost.
#include <doctest/doctest.h>

#include <vector>

#include "durable_util.hpp"

namespace rill::e2e {

TEST_CASE("group: 3 durable members split 100000 messages; one killed midway; each message handled once, none lost") {
  constexpr std::uint64_t messages = 100'000;
  auto dir = shm_temp_dir();
  const auto ep = tcp_endpoint(free_port());
  auto member_args = [&](int i) {
    return std::vector<std::string>{"sub",
                                    ep,
                                    "grp/",
                                    "--group",
                                    "g",
                                    "--durable",
                                    "g",
                                    "--durability",
                                    "persistent",
                                    "--state-dir",
                                    (dir / ("state-" + std::to_string(i))).string(),
                                    "--policy",
                                    "backpressure:256",
                                    "--idle-exit-ms",
                                    "4000"};
  };
  auto out = [&](int i) { return dir / ("member-" + std::to_string(i) + ".out"); };
  std::vector<std::unique_ptr<Process>> members;
  for (int i = 0; i < 3; ++i) std::filesystem::create_directories(dir / ("state-" + std::to_string(i)));
  for (int i = 0; i < 3; ++i)
    members.push_back(spawn_rill_appending(dir, "member-" + std::to_string(i), member_args(i), out(i)));
  auto pub = spawn_rill(dir, "pub",
                        {"pub", ep, "grp/t", "--durability", "persistent:" + (dir / "log").string(), "--count",
                         std::to_string(messages), "--wait-subs", "3", "--linger-ms", "600000"});
  // Midway: member 1 has handled a share of the run; kill it.
  REQUIRE(wait_until(
      [&] { return parse_delivered(read_file(out(1))).messages.size() >= messages / 6 || !members[1]->running(); },
      120s));
  REQUIRE(members[1]->running());
  members[1]->kill(SIGKILL);
  (void)members[1]->wait(10s);
  // The survivors finish (idle exit once the publisher has nothing more for them).
  for (int i : {0, 2}) {
    const auto e = members[i]->wait(240s);
    INFO("member " << i << ": " << members[i]->err());
    CHECK(e.ok());
  }
  pub->kill(SIGTERM);
  const auto pe = pub->wait(30s);
  INFO("pub: " << pub->err());
  CHECK(pe.ok());

  std::vector<int> handled(messages + 1, 0);
  std::vector<std::size_t> per_member;
  for (int i = 0; i < 3; ++i) {
    const auto got = parse_delivered(read_file(out(i)));
    CHECK(got.bad == 0);
    per_member.push_back(got.messages.size());
    std::uint64_t prev = 0;
    std::size_t unordered = 0;
    for (const auto& m : got.messages) {
      REQUIRE(m.seq >= 1);
      REQUIRE(m.seq <= messages);
      ++handled[m.seq];
      unordered += m.seq <= prev;  // each member sees its share in order
      prev = m.seq;
    }
    CHECK(unordered == 0);
  }
  MESSAGE("members handled " << per_member[0] << ", " << per_member[1] << " (killed), " << per_member[2]);
  std::size_t lost = 0;
  std::size_t twice = 0;
  for (std::uint64_t s = 1; s <= messages; ++s) {
    lost += handled[s] == 0;
    twice += handled[s] > 1;
  }
  CHECK(lost == 0);
  CHECK(twice == 0);
  CHECK(per_member[0] > 0);
  CHECK(per_member[2] > 0);
}

}  // namespace rill::e2e
