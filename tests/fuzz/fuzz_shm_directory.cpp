// Fuzz target for the shm directory's decoders (transport/shm/shm_directory.hpp): the
// geometry check a subscriber runs on /dev/shm/rill.NAME, then the channel and registry
// entries it reads. Properties: nothing is read outside the input; an accepted geometry
// puts both tables inside the file, aligned and apart; an entry read has its lengths in
// bounds and is the one encoded back by write_channel / write_subscriber. The input is
// also read as one bare channel entry and one registry entry.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

#include "fuzz_check.hpp"
#include "transport/shm/shm_directory.hpp"

namespace {

namespace shm = rill::detail::shm;
using rill::fuzz::expect;

volatile std::uint64_t g_sink = 0;

void check_channel(const shm::ChannelEntry& e) {
  const auto c = shm::read_channel(e);
  if (!c) return;
  expect(c->publisher_id != 0, "accepted a channel with publisher id 0");
  expect(c->topic.size() <= shm::max_topic_bytes, "accepted a topic over 256 bytes");
  // Encoding what was read and reading it again gives it back.
  auto copy = std::make_unique<shm::ChannelEntry>();
  shm::write_channel(*copy, c->publisher_id, c->topic);
  const auto again = shm::read_channel(*copy);
  expect(again && again->publisher_id == c->publisher_id && again->topic == c->topic, "channel does not round-trip");
  g_sink = g_sink + c->topic.size();
}

void check_subscriber(const shm::SubscriberEntry& e) {
  const auto r = shm::read_subscriber(e);
  if (!r) return;
  expect(r->pid != 0, "accepted a registry entry without a pid");
  expect(r->prefix.size() <= shm::max_prefix_bytes && r->durable_name.size() <= shm::max_durable_name_bytes &&
             r->group.size() <= shm::max_group_name_bytes,
         "accepted a registry entry with a length out of bounds");
  auto copy = std::make_unique<shm::SubscriberEntry>();
  shm::write_subscriber(*copy, *r);
  const auto again = shm::read_subscriber(*copy);
  expect(again && again->subscription_id == r->subscription_id && again->prefix == r->prefix &&
             again->durable_name == r->durable_name && again->group == r->group &&
             again->policy_capacity == r->policy_capacity,
         "registry entry does not round-trip");
  g_sink = g_sink + r->prefix.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* input, std::size_t size) {
  // An 8-aligned copy (the entries hold atomic words); ASan sees reads past `size` only
  // within the last word's padding, which the checks below never reach.
  auto words = std::make_unique_for_overwrite<std::uint64_t[]>((size + 7) / 8 + 1);
  if (size != 0) std::memcpy(words.get(), input, size);
  auto* base = reinterpret_cast<std::byte*>(words.get());
  const std::span<const std::byte> file{base, size};

  if (size >= sizeof(shm::ChannelEntry)) check_channel(*reinterpret_cast<const shm::ChannelEntry*>(base));
  if (size >= sizeof(shm::SubscriberEntry)) check_subscriber(*reinterpret_cast<const shm::SubscriberEntry*>(base));

  const auto geo = shm::check_directory(file);
  if (!geo) return 0;
  const auto end = [&](std::uint64_t offset, std::uint64_t count, std::uint64_t each) { return offset + count * each; };
  expect(geo->channel_count > 0 && geo->channel_count <= shm::max_dir_entries, "channel count out of bounds");
  expect(geo->subscriber_count <= shm::max_dir_entries, "subscriber count out of bounds");
  expect(geo->channels_offset >= shm::dir_header_bytes && geo->channels_offset % 64 == 0 &&
             end(geo->channels_offset, geo->channel_count, sizeof(shm::ChannelEntry)) <= size,
         "accepted a channel table outside the file");
  expect(geo->subscribers_offset >= shm::dir_header_bytes && geo->subscribers_offset % 64 == 0 &&
             end(geo->subscribers_offset, geo->subscriber_count, sizeof(shm::SubscriberEntry)) <= size,
         "accepted a registry outside the file");
  const bool apart = end(geo->channels_offset, geo->channel_count, sizeof(shm::ChannelEntry)) <= geo->subscribers_offset ||
                     end(geo->subscribers_offset, geo->subscriber_count, sizeof(shm::SubscriberEntry)) <= geo->channels_offset;
  expect(apart, "accepted overlapping tables");
  for (std::uint32_t i = 0; i < geo->channel_count; ++i) {
    check_channel(reinterpret_cast<const shm::ChannelEntry*>(base + geo->channels_offset)[i]);
  }
  for (std::uint32_t i = 0; i < geo->subscriber_count; ++i) {
    check_subscriber(reinterpret_cast<const shm::SubscriberEntry*>(base + geo->subscribers_offset)[i]);
  }
  return 0;
}
