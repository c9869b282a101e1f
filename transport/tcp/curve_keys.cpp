#include "rill/curve_keys.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <fstream>

#include <zmq.h>

namespace rill {

namespace {

constexpr std::size_t z85_key_chars = 40;

Result<void> write_new(const std::string& path, const std::string& text, mode_t mode) {
  // O_EXCL: a key is never replaced by accident (rotation is a new name, see README).
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    const int err = errno;
    return fail(err == EEXIST ? Errc::invalid_argument : Errc::io_error, "cannot create " + path, err);
  }
  ::fchmod(fd, mode);  // the umask may have taken bits from `mode`; the public file stays readable
  const auto written = ::write(fd, text.data(), text.size());
  const int err = errno;
  const bool ok = written == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return fail(Errc::io_error, "cannot write " + path, err);
  return {};
}

// The non-empty lines of a small file, without '\r'.
Result<std::array<std::string, 2>> first_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) return fail(Errc::invalid_argument, "cannot read key file " + path, errno);
  std::array<std::string, 2> lines;
  std::size_t n = 0;
  std::string line;
  while (n < lines.size() && std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines[n++] = line;
  }
  return lines;
}

}  // namespace

bool is_z85_key(std::string_view text) noexcept {
  if (text.size() != z85_key_chars) return false;
  std::array<char, z85_key_chars + 1> z{};
  text.copy(z.data(), text.size());
  std::array<std::uint8_t, 32> raw{};
  return zmq_z85_decode(raw.data(), z.data()) != nullptr;
}

Result<CurveKeyPair> write_curve_key_files(std::string_view name) {
  if (name.empty()) return fail(Errc::invalid_argument, "keygen needs a NAME");
  if (!zmq_has("curve")) return fail(Errc::unsupported, "this libzmq is built without CURVE (libsodium)");
  std::array<char, z85_key_chars + 1> pub{};
  std::array<char, z85_key_chars + 1> sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0) return fail(Errc::io_error, "zmq_curve_keypair failed", zmq_errno());
  CurveKeyPair pair{pub.data(), sec.data()};
  const std::string base(name);
  if (::access((base + ".pub").c_str(), F_OK) == 0) return fail(Errc::invalid_argument, base + ".pub exists already");
  if (auto r = write_new(base + ".key", pair.public_key + "\n" + pair.secret_key + "\n", 0600); !r) {
    return std::unexpected(r.error());
  }
  if (auto r = write_new(base + ".pub", pair.public_key + "\n", 0644); !r) return std::unexpected(r.error());
  return pair;
}

Result<CurveKeyPair> read_curve_key_pair(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return fail(Errc::invalid_argument, "cannot read key file " + path, errno);
  if ((st.st_mode & 077) != 0) {
    return fail(Errc::permission_denied, "key file " + path + " holds a secret key but group or others may read it (chmod 600 it)");
  }
  auto lines = first_lines(path);
  if (!lines) return std::unexpected(lines.error());
  CurveKeyPair pair{(*lines)[0], (*lines)[1]};
  if (!is_z85_key(pair.public_key) || !is_z85_key(pair.secret_key)) {
    return fail(Errc::invalid_argument, "key file " + path + " must hold two Z85 lines of 40 characters: public, then secret (see rill keygen)");
  }
  std::array<char, z85_key_chars + 1> derived{};
  if (zmq_curve_public(derived.data(), pair.secret_key.c_str()) != 0 || pair.public_key != derived.data()) {
    return fail(Errc::invalid_argument, "key file " + path + ": the public key does not belong to the secret key");
  }
  return pair;
}

Result<std::string> read_curve_public_key(const std::string& path) {
  auto lines = first_lines(path);
  if (!lines) return std::unexpected(lines.error());
  if (!is_z85_key((*lines)[0])) {
    return fail(Errc::invalid_argument, "public key file " + path + " must start with a Z85 line of 40 characters (see rill keygen)");
  }
  return (*lines)[0];
}

}  // namespace rill
