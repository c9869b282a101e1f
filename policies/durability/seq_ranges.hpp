// Runs of sequence numbers, as the publishers' consumer groups keep them: what a member was
// sent and has not acknowledged (in send order), and what is to be handed to other members
// (ascending, merged). Shared by the tcp, shm and udp publishers.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "history.hpp"

namespace rill::detail {

/// Sequences first..last, both included.
struct SeqRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
};

/// Adds a run to a list of ascending, non-overlapping runs, merging neighbours.
void add_range(std::deque<SeqRange>& runs, std::uint64_t first, std::uint64_t last);

/// Appends a run to a member's in-flight list, which stays in the order things were sent
/// (its acks are cumulative in that order, not in sequence order).
void append_range(std::deque<SeqRange>& runs, std::uint64_t first, std::uint64_t last);

/// The name a durable group's acknowledged position is stored under ("group:NAME").
[[nodiscard]] inline std::string group_ack_key(std::string_view group) {
  return "group:" + std::string(group);
}

/// Where a durable group starts when it forms (again): what it had not acknowledged when
/// the publisher last stopped, from its stored position, is added to `resend`. `acked` is
/// the position acks count from; `lost`, what retention deleted before it.
struct GroupStart {
  std::uint64_t acked = 0;
  std::uint64_t lost = 0;
};
[[nodiscard]] GroupStart start_durable_group(const History& history, StartFrom from, std::string_view group,
                                             std::uint64_t next_seq, std::deque<SeqRange>& resend);

/// A consumer group's position: the group has handled everything below `low`, the oldest
/// message still owed to it (queued again in `resend`, or in flight at a member). Moves
/// `acked` forward and, for a durable group (`history` not null), notes it in the history
/// under group_ack_key(), stored by its next flush_acks(); a volatile group keeps it in
/// memory only. The same rule on every transport. Returns true when the position moved.
bool advance_group_position(std::uint64_t& acked, std::uint64_t low, History* history, std::string_view group);

}  // namespace rill::detail
