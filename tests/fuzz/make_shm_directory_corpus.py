#!/usr/bin/env python3
"""Seeds for fuzz_shm_directory (tests/fuzz/corpus/shm_directory): small directories laid
out as PROTOCOL.md section 11.2 says (header page, channel table, subscriber registry),
then cut and lying copies, and bare entries. Regenerate only when the directory layout
changes."""
import os
import struct

out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "shm_directory")
CHANNEL = 320
SUBSCRIBER = 576


def header(channels, subscribers, ch_off, sub_off, total, version=1, magic=b"RILLDIR\0", instance=0x1234,
           pid=4242):
    h = magic + struct.pack("<IIQQQIIIIQQ", version, 4096, total, instance, 777, pid, channels, subscribers, 0,
                            ch_off, sub_off)
    h += b"\0" * (128 - len(h))
    h += struct.pack("<II", 1, 3)  # state live, generation 3
    return h + b"\0" * (4096 - len(h))


def channel(pub_id, topic, state=2, rewrites=1, topic_bytes=None):
    n = len(topic) if topic_bytes is None else topic_bytes
    e = struct.pack("<QQI", rewrites << 8 | state, pub_id, n) + b"\0" * 44
    return e + topic.ljust(256, b"\0")[:256]


def subscriber(pid, sid, prefix, name=b"", group=b"", state=2, lengths=None):
    p, n, g = lengths or (len(prefix), len(name), len(group))
    e = struct.pack("<QQQQIIIIQII", pid << 8 | state, 777, sid, 64, 1, 0, 0, p, 0, n, g)
    e += b"\0" * (64 - len(e))
    return e + prefix.ljust(256, b"\0")[:256] + name.ljust(128, b"\0")[:128] + group.ljust(128, b"\0")[:128]


def directory(chs, subs, **kw):
    ch_off = 4096
    sub_off = ch_off + len(chs) * CHANNEL
    sub_off += (-sub_off) % 64
    body = b"".join(chs)
    body += b"\0" * (sub_off - ch_off - len(body))
    body += b"".join(subs)
    total = 4096 + len(body)
    return header(len(chs), len(subs), ch_off, sub_off, total, **kw) + body


def write(name, data):
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(data)


os.makedirs(out_dir, exist_ok=True)
good = directory([channel(0xfeed, b"md/quotes"), channel(0xbeef, b"md/trades", state=3)],
                 [subscriber(99, 0x51, b"md/", b"durable-a", b"grp")])
write("dir_two_channels", good)
write("dir_empty_tables", directory([channel(0, b"", state=0)], []))
write("dir_long_topic", directory([channel(7, b"t" * 256)], [subscriber(5, 6, b"p" * 256, b"n" * 128, b"g" * 128)]))
write("dir_topic_too_long", directory([channel(7, b"t", topic_bytes=300)], [subscriber(5, 6, b"", lengths=(999, 0, 0))]))
write("dir_bad_version", directory([channel(1, b"a")], [], version=2))
write("dir_segment_magic", directory([channel(1, b"a")], [], magic=b"RILLSHM\0"))
write("dir_no_instance", directory([channel(1, b"a")], [], instance=0))
write("dir_cut_half", good[: len(good) // 2])
write("dir_cut_header", good[:100])
lying = bytearray(good)
struct.pack_into("<I", lying, 44, 4000)  # channel_count past the file
write("dir_count_lies", bytes(lying))
overlap = bytearray(good)
struct.pack_into("<Q", overlap, 64, 4096 + 64)  # registry over the channel table
write("dir_overlap", bytes(overlap))
write("entry_channel", channel(0xabc, b"x/y"))
write("entry_subscriber", subscriber(3, 4, b"x/", b"", b"g"))
print("wrote", len(os.listdir(out_dir)), "seeds to", out_dir)
