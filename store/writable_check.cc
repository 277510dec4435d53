// The database's write permissions, before sweepd opens it (see writable_check.h).
#include "store/writable_check.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

namespace sweepd::store {
namespace {

// Why `path` cannot be written, or "" when it can (or does not exist).
std::string WhyReadOnly(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";  // missing: the open reports it
  struct statvfs fs {};
  if (::statvfs(path.c_str(), &fs) == 0 && (fs.f_flag & ST_RDONLY) != 0) {
    return "is on a read-only file system";
  }
  if ((st.st_mode & S_IWUSR) == 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return std::string("has mode ") + mode + " (no write permission)";
  }
  if (::access(path.c_str(), W_OK) != 0 && errno == EACCES) return "is not writable by this user";
  return "";
}

}  // namespace

Status CheckWritable(const std::string& path) {
  const std::filesystem::path file(path);
  std::filesystem::path folder = file.parent_path();
  if (folder.empty()) folder = ".";
  if (std::string why = WhyReadOnly(path); !why.empty()) {
    return Status::FailedPrecondition("database " + path + " " + why +
                                      "; sweepd writes every state change there: make it writable "
                                      "(chmod u+w) or give --db a writable copy");
  }
  if (std::string why = WhyReadOnly(folder.string()); !why.empty()) {
    return Status::FailedPrecondition("the folder " + folder.string() + " of database " + path + " " +
                                      why +
                                      "; SQLite keeps its -wal and -shm files beside the database: "
                                      "make the folder writable or put --db in one that is");
  }
  return Status::Ok();
}

}  // namespace sweepd::store
