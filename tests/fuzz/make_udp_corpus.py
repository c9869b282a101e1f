#!/usr/bin/env python3
"""Seeds for fuzz_udp (tests/fuzz/corpus/udp). Input format: a mode byte (bit 0:
reliable), then datagrams as [u16 little-endian length][bytes]. Layouts: PROTOCOL.md,
"UDP multicast". Regenerate only when the datagram format changes."""
import os
import struct

PUB = 7
out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "udp")


def header(t, flags=0, pub=PUB):
    return b"RLU\x01" + struct.pack("<BBHQ", t, flags, 0, pub)


def data(first, envelopes):
    d = header(1) + struct.pack("<QII", first, len(envelopes), 0)
    for e in envelopes:
        d += struct.pack("<II", len(e), 0) + e + b"\0" * ((-len(e)) % 8)
    return d


def frags(seq, msg, size):
    count = (len(msg) + size - 1) // size
    out = []
    for i in range(count):
        piece = msg[i * size:(i + 1) * size]
        out.append(header(2) + struct.pack("<QIIIIII", seq, len(msg), size, i, count, i * size, 0) + piece)
    return out


def hb(next_seq, oldest, bye=False):
    return header(4 if bye else 3, 1) + struct.pack("<QQ", next_seq, oldest)


def welcome(next_seq, sub=5):
    return header(5) + struct.pack("<QQ", sub, next_seq)


def durable_welcome(next_seq, lost, sub=5):
    return header(5, 0x10) + struct.pack("<QQQ", sub, next_seq, lost)


def durable_status(kind=2, frm=0, history=0, ack=0, name=b"audit", prefix=b"md/"):
    return (header(0x11, 0x19) + struct.pack("<QQQIBBH", 5, 10, 8, 64, 4, 0, len(prefix)) + prefix +
            struct.pack("<BBHIQ", kind, frm, len(name), history, ack) + name)


def reject(offered=0, requested=2, reason=b"less offered"):
    return header(6) + struct.pack("<QBBHI", 5, offered, requested, len(reason), 0) + reason


def status(prefix=b"md/"):
    return header(0x11, 0x09) + struct.pack("<QQQIBBH", 5, 10, 8, 64, 4, 0, len(prefix)) + prefix


def nak(ranges):
    d = header(0x12) + struct.pack("<QHHI", 5, len(ranges), 0, 0)
    for r in ranges:
        d += struct.pack("<QQII", *r)
    return d


def leave():
    return header(0x13) + struct.pack("<Q", 5)


def seed(name, reliable, dgrams, durable=False):
    body = bytes([(1 if reliable else 0) | (2 if durable else 0)])
    for d in dgrams:
        body += struct.pack("<H", len(d)) + d
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(body)


env = [bytes([i]) * (8 + i) for i in range(1, 6)]
msg = bytes(range(256)) * 10
f = frags(3, msg, 700)
os.makedirs(out_dir, exist_ok=True)
seed("data_in_order", True, [welcome(1), data(1, env[:2]), data(3, env[2:])])
seed("data_reordered_dup", True, [welcome(1), data(3, env[:1]), data(1, env[:2]), data(3, env[:1]), data(4, env)])
seed("data_best_effort_gap", False, [welcome(1), data(1, env[:1]), data(5, env[:2]), data(2, env[:1])])
seed("data_before_welcome", True, [data(1, env), welcome(2), data(2, env[:3])])
seed("frags_in_order", True, [welcome(1), data(1, env[:2])] + f + [hb(4, 1)])
seed("frags_reversed_lost_one", True, [welcome(3)] + list(reversed(f[1:])) + [hb(4, 1), f[0]])
seed("frags_best_effort_cut", False, [welcome(1), f[0], f[1]] + frags(4, msg, 900))
seed("frags_mismatched_geometry", True, [welcome(3), f[0]] + frags(3, msg + b"x", 700))
seed("heartbeat_gives_up", True, [welcome(1), data(1, env[:1]), data(5, env[:1]), hb(9, 4), data(4, env[:1])])
seed("bye_tail", True, [welcome(1), data(1, env[:3]), hb(6, 1, bye=True), data(4, env[:2])])
seed("bye_best_effort", False, [welcome(1), data(1, env[:1]), hb(10, 10, bye=True)])
seed("control_types", True, [status(), nak([(3, 9, 0, 0xFFFFFFFF), (12, 12, 4, 7)]), leave(), welcome(1)])
seed("far_ahead", True, [welcome(1), data(1, env[:1]), data(20000, env[:1]), data(16385, env[:1]), hb(40000, 1)])
seed("huge_first_seq", True, [welcome(0x3FFFFFFFFFFFFF00), data(0x3FFFFFFFFFFFFFF0, env[:4]), hb(0x3FFFFFFFFFFFFFFF, 1)])
seed("durable_history_then_live", True, [durable_welcome(3, 2), data(40, env[:2]), hb(42, 30), data(3, env),
                                         hb(42, 30), data(8, env), hb(42, 20)], durable=True)
seed("durable_control_types", True, [durable_status(), durable_status(1, 0, 100, 0, b""), reject(),
                                     durable_welcome(9, 8)], durable=True)
bad = data(1, env[:2])
seed("malformed_shapes", True, [welcome(1), bad[:-3], bad + b"\0" * 8, b"RLU\x02" + bad[4:], header(9), b"hello",
                                 header(2) + b"\0" * 40])
print("wrote", len(os.listdir(out_dir)), "seeds to", out_dir)
