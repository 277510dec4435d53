// Reading a spec's bytes with a cap and checking them as UTF-8 (RFC 3629: no overlong forms,
// no surrogates, nothing above U+10FFFF), so that no later stage sees an unbounded or
// non-UTF-8 input.
#include "spec/spec_text.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/utf8.h"

namespace sweepd::spec {
namespace {

const std::string kLimitText = "the 1 MiB limit for a spec";

// Why a file of this type is not read as a spec; "" for a regular file.
std::string NotARegularFile(mode_t mode) {
  if (S_ISREG(mode)) return "";
  if (S_ISDIR(mode)) return "is a directory, not a spec file; name the YAML file inside it";
  if (S_ISFIFO(mode)) return "is a pipe (FIFO), not a spec file; to pipe a spec in, give - and use stdin";
  if (S_ISSOCK(mode)) return "is a socket, not a spec file; give a YAML file";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "is a device, not a spec file; give a YAML file";
  return "is not a regular file; give a YAML file";
}

// Reads `fd` to its end, failing once more than kMaxSpecBytes have arrived.
Result<std::string> ReadCapped(int fd, const std::string& name) {
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) return text;
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::InvalidArgument(name + ": cannot read the spec: " + std::strerror(errno));
    }
    if (static_cast<int64_t>(text.size()) + n > kMaxSpecBytes) {
      return Status::InvalidArgument(name + ": the spec is over " + kLimitText +
                                     "; a sweep spec is a short YAML file (see sweeps/README.md)");
    }
    text.append(buf, static_cast<size_t>(n));
  }
}

}  // namespace

Result<std::string> ReadSpecText(const std::string& path) {
  if (path == "-") return ReadCapped(STDIN_FILENO, "stdin");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return Status::NotFound(path + ": cannot read the spec: no such file; check the path");
    }
    return Status::InvalidArgument(path + ": cannot read the spec: " + std::strerror(errno));
  }
  if (std::string why = NotARegularFile(st.st_mode); !why.empty()) {
    return Status::InvalidArgument(path + ": " + why);
  }
  if (st.st_size > kMaxSpecBytes) {
    return Status::InvalidArgument(path + ": the spec is " + std::to_string(st.st_size) + " bytes, over " +
                                   kLimitText + "; a sweep spec is a short YAML file (see sweeps/README.md)");
  }
  // O_NONBLOCK: if the path was swapped for a FIFO since stat(), open() must not wait for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return Status::InvalidArgument(path + ": cannot open the spec: " + std::strerror(errno));
  struct stat opened {};
  std::string why = ::fstat(fd, &opened) != 0 ? std::string("cannot be examined") : NotARegularFile(opened.st_mode);
  if (!why.empty()) {
    ::close(fd);
    return Status::InvalidArgument(path + ": " + why);
  }
  Result<std::string> text = ReadCapped(fd, path);
  ::close(fd);
  return text;
}

std::optional<SpecProblem> CheckSpecText(const std::string& text, const std::string& file) {
  if (static_cast<int64_t>(text.size()) > kMaxSpecBytes) {
    return SpecProblem{file, 0, 0, "",
                       "the spec is " + std::to_string(text.size()) + " bytes, over " + kLimitText +
                           "; a sweep spec is a short YAML file (see sweeps/README.md)"};
  }
  int line = 1, column = 1;
  for (size_t i = 0; i < text.size();) {
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned char>(text[i]));
      return SpecProblem{file, line, column, "",
                         std::string("byte ") + hex +
                             " is not UTF-8; a spec must be UTF-8 text: retype the character or re-save the file as UTF-8"};
    }
    if (text[i] == '\0') {
      return SpecProblem{file, line, column, "", "a NUL byte; a spec must be text: remove it"};
    }
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
    i += n;
  }
  return std::nullopt;
}

std::string Excerpt(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "... (" + std::to_string(text.size()) + " bytes)";
}

}  // namespace sweepd::spec
