// The help pages of rill and its commands. They live here, not beside each command, because
// cmd_serve.cpp, cmd_deliver.cpp and cmd_log.cpp are compiled only with RILL_WITH_HTTP /
// RILL_WITH_LOG, and a build without them must still explain those commands.
// Every option below is one the command parses, with the default its code applies.
#include <cstdio>
#include <string>
#include <string_view>

#include "args.hpp"

namespace rill::cli {

namespace {

constexpr std::string_view pub_help = R"help(usage: rill pub ENDPOINT TOPIC [TOPIC...] [OPTIONS]

Publish messages on TOPIC from a publisher bound at ENDPOINT (e.g. tcp://127.0.0.1:5555). With
several topics, each has its own publisher (id and sequence) on the one ENDPOINT, and messages go
to the topics in turn. Payloads are generated ("rill SEQ", padded to --size), given (--data) or
read from stdin (--stdin). Ends with a JSON stats line per topic on stderr.

Options:
  --count N                 messages to publish on each topic (default 10, or 1 with --data);
                            ignored with --stdin (its lines go to the topics in turn)
  --until-seq N             publish until sequence N is sent: a persistent publisher continues its
                            log's sequence, so nothing is sent when it is already past N
                            (not with --count or --stdin)
  --data TEXT               publish TEXT as the payload of every message
  --stdin                   publish each line of stdin (without its newline) until end of input
                            (not with --data)
  --size BYTES              pad generated payloads with '.' to BYTES bytes (default 0: no padding)
  --rate MSGS_PER_S         messages per second, paced from the start; fractions allowed
                            (default 0: as fast as possible)
  --batch N                 coalesce up to N messages into one transport frame (default 1)
  --timeout-ms MS           longest one publish waits for backpressure credit, in milliseconds;
                            then the same message is tried again (default 1000)
  --wait-subs N             wait for N subscribers on each topic before publishing (default 0:
                            do not wait)
  --wait-ms MS              how long to wait for them, in milliseconds; then exit 1 (default 10000)
  --linger-ms MS            after the last message, keep serving joins, acks and catch-up for MS
                            milliseconds (default 0)
  --durability MODE         what late joiners get: volatile (nothing; the default),
                            transient-local:N (the last N messages, kept in memory) or
                            persistent:DIR (every message logged in DIR before it is sent; the
                            publisher's id and sequence continue after a restart; with several
                            topics, each topic's log is in DIR/TOPIC, '/' written %2F)
  -h, --help                show this page
)help";

constexpr std::string_view sub_help = R"help(usage: rill sub ENDPOINT... [URL] TOPIC_PREFIX [OPTIONS]

Subscribe at each publisher ENDPOINT (e.g. tcp://127.0.0.1:5555) to the topics starting with
TOPIC_PREFIX ("" for all), print each message on stdout, one line each, and end with a JSON stats
line. With an http:// or https:// URL among the words before TOPIC_PREFIX, POST each message to URL
instead (webhook delivery) and print only the stats line.

Options:
  --count N                 stop after N messages (default 0: no limit). Printing: N handled
                            (printed, not failed by --fail-if). Delivering: N finished, i.e.
                            answered 2xx or dead-lettered (not counted when received, nor when acked)
  --idle-exit-ms MS         exit once nothing has arrived for MS milliseconds (delivering: and no
                            POST is pending) (default 0: run until SIGINT or SIGTERM)
  --policy POLICY           when this subscriber falls behind: drop-oldest:N or drop-newest:N (N
                            messages queued), buffer:BYTES, or backpressure:N (the publisher waits)
                            (default drop-oldest:1024; backpressure:1024 with --durable)
  --idle MODE               how to wait for messages: spin (busy poll), backoff (spin, yield, then
                            sleep up to 1 ms), block (sleep in the kernel) or spin-block (spin 50
                            microseconds, then block) (default backoff)
  --durability MODE         what to ask the publishers for: volatile (live only), transient-local
                            (what they keep, then live), transient-local:N (at most N of those)
                            or persistent (needs --durable)
                            (default volatile; persistent with --durable)
  --durable NAME            durable subscription: a persistent publisher keeps NAME's acknowledged
                            position, and a restart resumes from it
  --from WHERE              where a --durable subscription starts: start, end or last-ack
                            (default last-ack)
  --state-dir DIR           directory of a --durable subscription's exactly-once state
                            (default: the current directory)
  --group NAME              consumer group: subscriptions sharing NAME split the messages, each to
                            one member
  -h, --help                show this page

Printing only:
  --format FORMAT           json, text or hex (default json)
  --work-us N               simulate N microseconds of handler work per message (default 0)
  --max-attempts N          handler calls per message before it is dead-lettered, at most 1000
                            (default 0: a failure is counted, not retried; 3 with --dead-letter)
  --backoff-ms MS           wait before the first retry, in milliseconds; it doubles on each retry
                            up to max(1000, MS) (default 10)
  --dead-letter DIR         directory of the dead-letter log (default none: a message out of
                            attempts is logged and skipped)
  --fail-if TEXT            fail the handler on payloads containing TEXT (to try retries)

Webhook delivery only (with a URL):
  --secret-file FILE        sign each POST with every secret in FILE, one per line (whsec_<base64>
                            or raw bytes; '#' starts a comment line) (default: unsigned)
  --retry-schedule LIST     comma-separated waits before each attempt, 1 .. 100 of them; a number
                            without a unit is milliseconds, units ms, s, m and h; a message is
                            dead-lettered after as many failed attempts as entries
                            (default 0,5s,5m,30m,2h,5h,10h,10h)
  --retry-jitter F          scale each non-zero wait by a random factor in [1-F, 1+F], F in 0 .. 1
                            (default 0.2)
  --deliver-timeout-ms MS   per attempt: a 2xx must arrive within MS milliseconds (default 15000)
  --window N                messages in flight or waiting for a retry (default 16)
  --dead-letter FILE        append messages that failed every attempt (or got 400, 401, 404 or 410)
                            to FILE as JSON lines (default rill-dead-letters.jsonl)
  --ca-file PEM             also trust the CA certificates in PEM (e.g. a private CA)
With a URL, --from and --state-dir need --durable, and --durable does not combine with --group.
A --durable delivery acks a message only once it finished, so a crash sends at most --window again.
)help";

constexpr std::string_view serve_help = R"help(usage: rill serve --http HOST:PORT --publish ENDPOINT [OPTIONS]

Receive webhooks: POST /topics/TOPIC publishes the body on TOPIC and answers 202. Every topic
is published on the one --publish endpoint (each its own publisher, id and sequence), so
'rill sub ENDPOINT PREFIX' gets every topic the prefix matches, including topics first POSTed
after it subscribed (from their first message); GET /topics lists topics and their publishers.

Options:
  --http HOST:PORT          where to listen for HTTP (required)
  --publish ENDPOINT        where every topic is published: tcp://HOST:PORT, shm://NAME or
                            udp://GROUP:PORT (required)
  --topics A,B,...          the only topics accepted; others get 404 (default: any topic)
  --max-topics N            at most N topics, at least 1; more get 503 (default 64)
  --secret-file FILE        publish only requests signed with a secret in FILE, one per line
                            (whsec_<base64> or raw bytes; '#' starts a comment line); others get
                            401 (default: signatures are not checked)
  --tolerance-s S           with --secret-file: how far webhook-timestamp may be from now, in
                            seconds; further gets 401 (default 300)
  --replay-cache N          webhook-ids remembered for de-duplication: a repeated one gets 202 and
                            is not published again (default 100000)
  --carry-headers NAME,...  request headers to carry as message headers, besides content-type,
                            webhook-id, webhook-timestamp, x-github-event, x-github-delivery and
                            x-request-id
  --max-body BYTES          largest request body; past it 413 (default 1048576)
  --max-header BYTES        largest request header, 256 .. 1048576; past it 431 (default 8192)
  --header-timeout-ms MS    time to a complete header, in milliseconds; then 408 (default 10000)
  --body-timeout-ms MS      time from the header to the complete body, in milliseconds; then 408
                            (default 30000)
  --idle-timeout-ms MS      close a keep-alive connection idle for MS milliseconds (default 60000)
  --max-connections N       open connections, at least 1; more are accepted and closed
                            (default 4096)
  --publish-timeout-ms MS   longest a publish waits under backpressure, in milliseconds; then 429
                            (default 200)
  --durability MODE         what each topic's late joiners get: volatile (nothing; the default),
                            transient-local:N (the last N messages of each topic) or persistent:DIR
                            (topic T logged in DIR/T; ids and sequences continue after a restart;
                            under --fsync always, 202 means the message is logged durably)
  --tls-cert FILE           serve HTTPS only: the certificate chain (PEM, leaf first); with
  --tls-key FILE            its private key (PEM). TLS 1.2 and 1.3, forward-secret AEAD ciphers
                            only; SIGHUP reads both files again (a bad pair keeps the old one)
  -h, --help                show this page
)help";

// The persistent log's options: rill pub and rill serve parse them alike (apply_log_options()),
// so their pages share this text.
constexpr std::string_view log_options_help = R"help(
Persistent log (only with --durability persistent:DIR):
  --fsync POLICY            always, every:MS (1 .. 3600000 milliseconds) or never (default every:10)
  --segment-bytes N         roll to a new segment file past N bytes (default 67108864, 64 MiB)
  --retention-bytes N       delete the oldest sealed segments past N bytes in all
                            (default 0: keep all)
  --retention-age-ms MS     delete sealed segments whose newest record is older than MS milliseconds
                            (default 0: keep all)
  --direct-io               write segments with O_DIRECT, bypassing the page cache (default off)
)help";

constexpr std::string_view perf_help = R"help(usage: rill perf TRANSPORT [OPTIONS]

Measure rill's round-trip latency (ping-pong) and throughput over TRANSPORT (tcp, udp or shm)
beside the raw transport (tcp: ZeroMQ, udp: a UDP socket pair, shm: raw shared memory), the two
alternating in rounds; prints a summary on stdout. For http, run perf/http_perf.sh from the
source tree.

Options:
  --size BYTES              payload size in bytes (default 64; at least 1 byte is sent)
  --count N                 timed round trips, split over the --repeat rounds (default 20000)
  --warmup N                untimed round trips before the timed ones, split over the rounds
                            (default 2000)
  --throughput-count N      messages in each throughput run (default 1000000)
  --rate MSGS_PER_S         send rate of the throughput runs in messages per second
                            (default 0: as fast as possible)
  --batch N                 rill's messages per transport frame in the throughput runs (default 1)
  --repeat N                rounds of each measurement; throughput reports each side's median run
                            (default 3)
  --skip-throughput         measure latency only
  --placement WHERE         cross (the two processes on different cores), same (one core) or none
                            (where the OS likes) (default cross)
  --idle MODE               how a receiver waits: spin (busy poll) or block (sleep in the kernel)
                            (default spin)
  --base-port PORT          the raw baseline uses PORT .. PORT+19 and rill the ports above,
                            1 .. 65000 (default 27100)
  --reliable 0|1            udp only: rill's endpoints unreliable or reliable (default 1)
  --mtu BYTES               udp only: the MTU of rill's endpoints in bytes (default 1500)
  --auth                    udp only: measure rill with authenticated datagrams (a fresh
                            auth_key_file) against rill without them, instead of the raw baseline
  --json FILE               also write the results as JSON to FILE
  --plot FILE.svg           also write the latency percentile curves as SVG to FILE.svg
  -h, --help                show this page
)help";

constexpr std::string_view log_help = R"help(usage: rill log list DIR [--verify]
       rill log inspect DIR [OPTIONS]
       rill log replay DIR ENDPOINT [OPTIONS]
       rill log dlq DIR [list]
       rill log dlq DIR redrive ENDPOINT [OPTIONS]

Look into the persistent log in DIR (a publisher's --durability persistent:DIR).
  list      one JSON line for the log, then one per segment, per durable subscription's acknowledged
            position and for the dead letters
  inspect   print the records as messages on stdout
  replay    re-publish records of one topic from a new publisher bound at ENDPOINT (fresh id,
            sequences from 1; the original PUBLISHER:SEQ in the rill-replay-of header); ends with a
            JSON stats line on stderr
  dlq       list the dead letters in DIR/dead-letters (the default), or redrive them: re-publish
            them from a new publisher bound at ENDPOINT, one topic per run (the first letter's)

list:
  --verify                  check every record of every segment, not only past the checkpoints
inspect:
  --from SEQ                first sequence to print (default 0: the first in the log)
  --to SEQ                  last sequence to print (default 0: to the end)
  --since-ns TS             start at the first record stamped at or after TS, in nanoseconds since
                            the Unix epoch (default 0: off)
  --count N                 stop after printing N messages (default 0: all)
  --format FORMAT           json, text or hex (default json)
  --follow                  at the end, wait for new records (until SIGINT or --idle-exit-ms)
  --idle-exit-ms MS         with --follow: exit once no record came for MS milliseconds
                            (default 0: never)
replay:
  --from SEQ                first sequence to re-publish (default 0: the first in the log)
  --to SEQ                  last sequence to re-publish (default 0: to the end)
  --topic T                 the topic to re-publish; records of other topics are skipped
                            (default: the topic of the first record in range)
  --rate MSGS_PER_S         messages per second (default 0: as fast as possible)
dlq redrive:
  --from DLQ_SEQ            first dead letter to re-drive (default 0: the first not yet re-driven)
replay and dlq redrive:
  --wait-subs N             wait for N subscribers before publishing (default 0: do not wait)
  --wait-ms MS              how long to wait for them, in milliseconds; then exit 1 (default 10000)
  --linger-ms MS            after the last message, keep serving subscribers for MS milliseconds
                            (default 0)
  -h, --help                show this page
)help";

constexpr std::string_view transports_help = R"help(usage: rill transports

List the transports compiled into this build and what each supports.

Options:
  -h, --help                show this page
)help";

constexpr std::string_view keygen_help = R"help(usage: rill keygen NAME
       rill keygen --udp FILE

Make a CurveZMQ key pair for encrypted, authenticated tcp endpoints: NAME.key (the public key
line, then the secret key line, Z85; mode 0600) and NAME.pub (the public key line). Prints the
public key. Never overwrites a file. Use them as
  publisher:  tcp://HOST:PORT?curve_key=NAME.key&curve_allow=ALLOWED   (one public key a line)
  subscriber: tcp://HOST:PORT?curve_key=ME.key&curve_server=NAME.pub

With --udp, write FILE: a new group key for authenticated udp multicast (32 random bytes as 64
hex digits; mode 0600; never overwritten), and print its key id. Give the same file to every
publisher and subscriber of the group: udp://GROUP:PORT?auth_key_file=FILE. A file may hold
two keys (one a line) while keys are rotated: the first signs, both are accepted.

Options:
  -h, --help                show this page
)help";

constexpr std::string_view cdc_help = R"help(usage: rill cdc POSTGRES_URI --slot NAME --publication NAME --publish ENDPOINT
                --durability persistent:DIR [OPTIONS]

Capture the changes of PostgreSQL's publication NAME through logical replication (pgoutput) and
publish them: one topic per table, PREFIX + SCHEMA/TABLE, on ENDPOINT, each message a JSON object
in Debezium's envelope (before, after, source, op c/u/d/t/r, ts_ms); BEGIN and END markers of every
transaction on PREFIX + "transactions". POSTGRES_URI is a libpq URI, e.g.
postgresql://USER@HOST:PORT/DB; the server needs wal_level=logical and the user the REPLICATION
attribute. The slot is created if missing. Each topic's log is DIR/TOPIC ('/' written %2F); the
slot is confirmed only up to what the logs hold durably, and on restart what the logs already hold
is skipped, so every change is in the logs exactly once. A lost connection is retried with
back-off (100 ms doubling to --max-backoff-ms); a bad URI, a missing publication, a slot that
vanished after changes were captured, or a log that cannot be written ends the command (exit 1).
Ends with a JSON stats line on stderr at SIGINT/SIGTERM.

Options:
  --slot NAME               logical replication slot (lower-case letters, digits, '_')
  --publication NAME        publication to stream (must exist: CREATE PUBLICATION ...)
  --publish ENDPOINT        where every topic is published (e.g. tcp://127.0.0.1:5555)
  --durability persistent:DIR
                            the log directory (required)
  --topic-prefix P          prefix of every topic (default cdc/)
  --snapshot initial|never  initial: when the slot is created, first publish every row of the
                            publication's tables as of the slot's start (op r), then a SNAPSHOT
                            marker on PREFIX + "transactions"; a run stopped during it cannot
                            resume it (drop the slot, empty DIR). never (the default): stream only
  --status-ms MS            how often the flushed position is confirmed while changes flow
                            (default 200)
  --max-backoff-ms MS       longest delay between reconnect attempts (default 5000)
  --timeout-ms MS           longest one publish waits for backpressure credit before it is tried
                            again (the slot is not read meanwhile; default 1000)
  --fsync POLICY            as below, but rill cdc's default is always: every message is durable
                            before it is sent, so a killed run leaves no lost sequence numbers
  -h, --help                show this page
)help";

constexpr std::string_view nexmark_help = R"help(usage: rill nexmark gen [OPTIONS]

Generate the Nexmark benchmark's Person, Auction and Bid events (Apache Beam's reference
generator: each event a function of its number; 1 person, 3 auctions, 46 bids in every 50).
Print them on stdout, one JSON object a line:
  {"event_type":0|1|2,"person":{...}|null,"auction":{...}|null,"bid":{...}|null}
or publish each row object on topic nexmark/person, nexmark/auction or nexmark/bid of ENDPOINT.
Ends with a JSON stats line on stderr.

Options:
  --events N                events to generate (default 100000; 0: until SIGINT or SIGTERM)
  --rate EVENTS_PER_S       event-time rate, and the wall-clock pace of the output (default: event
                            times 100 us apart, as 10000 events/s, output as fast as possible)
  --format json             the output format (json, the only one so far)
  --publish ENDPOINT        publish on ENDPOINT (e.g. tcp://127.0.0.1:5555) instead of printing
  --wait-subs N             with --publish, wait for N subscribers on each topic first (default 0)
  --wait-ms MS              how long to wait for them; then exit 1 (default 10000)
  --first-event-id N        id of the first event: a second generator continues where one of
                            N events stopped with --first-event-id N (default 0)
  --base-time-ms MS         event time of event 0, ms since the epoch (default 1436918400000,
                            2015-07-15T00:00:00Z)
  --out-of-order-group N    permute event times within each group of N events (default 1: in order)
  -h, --help                show this page
)help";

constexpr std::string_view query_help = R"help(usage: rill query ENDPOINT... (--file JOB.sql | --sql TEXT) [OPTIONS]

Run a streaming SQL script. CREATE TABLE declares the input (its 'topic', JSON payloads, a
WATERMARK FOR its event-time column) and sinks ('topic' and 'endpoint'); one SELECT prints its
rows, or INSERT INTO sink SELECT publishes them there. The input topic is subscribed on every
ENDPOINT. Runs: projections, expressions, WHERE, and GROUP BY window_start, window_end over
TABLE(TUMBLE|HOP|SESSION(...)) with COUNT, COUNT(DISTINCT), SUM, MIN, MAX, AVG and HAVING
(README "Streaming SQL"). Each row carries its changelog kind (+I, -U, +U, -D); a watermark line
follows the rows of every window-closing watermark advance. At exit the open windows close.
A query error exits 2 with line:column: message. Ends with a JSON stats line on stderr.

Example:
  rill query tcp://127.0.0.1:5555 --sql "CREATE TABLE t (k STRING, v INT, ts TIMESTAMP(3),
    WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ('topic' = 'in', 'format' = 'json');
    SELECT k, window_end, SUM(v) FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '10' SECOND))
    GROUP BY k, window_start, window_end"

Options:
  --file JOB.sql            the script
  --sql TEXT                the script, inline
  --format json|text        printed rows: {"op":"+I","row":{...}} and {"watermark":"<ISO time>"}
                            (json, the default), or +I[v1, v2] and "watermark <ISO time>" (text)
  --count N                 exit after N output rows
  --idle-exit-ms MS         exit after MS without input
  --wait-subs N             with INSERT INTO, wait (up to 20 s) for N subscribers on the sink before
                            reading input, so they miss no row
  --state DIR               exactly once across restarts (INSERT INTO only): the input is read
                            through a durable subscription (its publisher must be persistent),
                            the windows and input positions are checkpointed in DIR, and the sink
                            is a persistent publisher (log in DIR/sink-log) whose rows are not
                            sent twice after a restart (one input publisher)
  --checkpoint-ms MS        how often to checkpoint with --state (default 1000)
  -h, --help                show this page
)help";

struct Command {
  std::string_view name;
  std::string_view summary;  // its line on the main page
  std::string_view help;
  std::string_view more{};  // shared text after the page (the log options)
};

constexpr Command commands[] = {
    {"pub", "publish messages on one or more topics of one endpoint", pub_help, log_options_help},
    {"sub", "print the messages of topics under a prefix, or deliver them to a webhook URL", sub_help},
    {"serve", "receive webhooks over HTTP and publish them on topics", serve_help, log_options_help},
    {"cdc", "capture a PostgreSQL publication's changes into topics, exactly once", cdc_help, log_options_help},
    {"perf", "measure rill's latency and throughput beside the raw transport", perf_help},
    {"log", "look into a persistent log: list | inspect | replay | dlq (dead letters)", log_help},
    {"nexmark", "generate the Nexmark benchmark's event streams: rill nexmark gen", nexmark_help},
    {"query", "run a streaming SQL script over topics: windows, aggregates, filters", query_help},
    {"transports", "list the compiled transports and what each supports", transports_help},
    {"keygen", "make a CurveZMQ key pair for tcp (NAME.key, NAME.pub), or a udp group key (--udp FILE)", keygen_help},
    {"help", "show this page, or a command's options: rill help COMMAND", {}},
};

constexpr std::string_view main_tail = R"help(
Run 'rill help COMMAND' or 'rill COMMAND --help' for a command's options.

Exit status:
  0  done
  1  runtime failure (e.g. a publish, a log or a wait for subscribers failed)
  2  bad usage (unknown command or option, bad or unsupported value)
)help";

const Command* find_command(std::string_view name) {
  for (const auto& c : commands) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

void put(std::string_view text, std::FILE* out) {
  if (!text.empty()) std::fwrite(text.data(), 1, text.size(), out);
}

// What a page says when part of its command is left out of this build.
std::string_view build_note(std::string_view name) {
#ifndef RILL_WITH_HTTP
  if (name == "serve") return "\nrill serve is not built in this build (configure with -DRILL_WITH_HTTP=ON).\n";
  if (name == "sub") return "\nWebhook delivery is not built in this build (configure with -DRILL_WITH_HTTP=ON).\n";
#endif
#ifndef RILL_WITH_CDC
  if (name == "cdc") return "\nrill cdc is not built in this build (configure with -DRILL_WITH_CDC=ON).\n";
#endif
#ifndef RILL_WITH_LOG
  if (name == "log") return "\nrill log is not built in this build (configure with -DRILL_WITH_LOG=ON).\n";
#endif
  static_cast<void>(name);
  return {};
}

}  // namespace

void print_main_help(bool to_stderr) {
  std::FILE* out = to_stderr ? stderr : stdout;
  put("usage: rill COMMAND [ARGUMENTS] [OPTIONS]\n\nCommands:\n", out);
  for (const auto& c : commands) {
    std::fprintf(out, "  %-12.*s%.*s\n", static_cast<int>(c.name.size()), c.name.data(),
                 static_cast<int>(c.summary.size()), c.summary.data());
  }
  put(main_tail, out);
}

int print_help(std::string_view command) {
  if (command == "help" || command == "--help" || command == "-h") {
    print_main_help(false);
    return exit_ok;
  }
  const auto* c = find_command(command);
  if (c == nullptr) return unknown_command(command);
  put(c->help, stdout);
  put(c->more, stdout);
  put(build_note(command), stdout);
  return exit_ok;
}

bool is_command(std::string_view command) { return find_command(command) != nullptr; }

std::string_view missing_build_option(std::string_view command) {
#ifndef RILL_WITH_TCP
  if (command == "keygen") return "RILL_WITH_TCP";
#endif
#ifndef RILL_WITH_HTTP
  if (command == "serve") return "RILL_WITH_HTTP";
#endif
#ifndef RILL_WITH_CDC
  if (command == "cdc") return "RILL_WITH_CDC";
#endif
#ifndef RILL_WITH_LOG
  if (command == "log") return "RILL_WITH_LOG";
#endif
#ifndef RILL_WITH_SQL
  if (command == "query") return "RILL_WITH_SQL";
#endif
  static_cast<void>(command);
  return {};
}

namespace {

std::string command_names() {
  std::string names;
  for (const auto& c : commands) {
    if (!names.empty()) names += ", ";
    names += c.name;
  }
  return names;
}

}  // namespace

// Usage errors are one line on stderr (the CLI's contract), so the list goes on that line.
int unknown_command(std::string_view command) {
  std::fprintf(stderr, "rill: unknown command '%.*s' (commands: %s; run 'rill --help' for what each does)\n",
               static_cast<int>(command.size()), command.data(), command_names().c_str());
  return exit_usage;
}

int missing_command() {
  std::fprintf(stderr, "rill: missing command (commands: %s; run 'rill --help' for what each does)\n",
               command_names().c_str());
  return exit_usage;
}

}  // namespace rill::cli
