// safetensors I/O: https://github.com/huggingface/safetensors format, mmap-based reading.
#include "worker/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "worker/failures.h"

namespace sweepd::io {
namespace {

// A file that is not what it should be: the input's fault (a checkpoint's reader turns it
// into CorruptCheckpoint).
[[noreturn]] void Fail(const std::string& path, const std::string& what) {
  throw InvalidInput(path + ": " + what);
}

// A system call that failed on a file that is there: the machine's fault. A missing file (or
// one this user may not read) is the input's.
[[noreturn]] void FailIo(const std::string& path, const std::string& what) {
  const int err = errno;
  if (err == ENOENT || err == ENOTDIR || err == EACCES) Fail(path, what + ": " + std::strerror(err));
  throw IoError(IoErrorText(path, what));
}

torch::ScalarType ParseDtype(const std::string& path, const std::string& name,
                             const std::string& d) {
  static const std::map<std::string, torch::ScalarType> kTypes = {
      {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16},
      {"BF16", torch::kBFloat16}, {"I64", torch::kInt64}, {"I32", torch::kInt32},
      {"I16", torch::kInt16},   {"I8", torch::kInt8},     {"U8", torch::kUInt8},
      {"BOOL", torch::kBool}};
  auto it = kTypes.find(d);
  if (it == kTypes.end()) Fail(path, "tensor '" + name + "' has unsupported dtype " + d);
  return it->second;
}

std::string DtypeName(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat64: return "F64";
    case torch::kFloat32: return "F32";
    case torch::kFloat16: return "F16";
    case torch::kBFloat16: return "BF16";
    case torch::kInt64: return "I64";
    case torch::kInt32: return "I32";
    case torch::kInt16: return "I16";
    case torch::kInt8: return "I8";
    case torch::kUInt8: return "U8";
    case torch::kBool: return "BOOL";
    default: throw std::runtime_error("safetensors: unsupported dtype " +
                                      std::string(c10::toString(t)));
  }
}

}  // namespace

struct SafetensorsFile::Mapping {
  void* data = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (data != nullptr && data != MAP_FAILED) munmap(data, size);
  }
};

SafetensorsFile SafetensorsFile::Open(const std::string& path) {
  SafetensorsFile f;
  f.path_ = path;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) FailIo(path, "cannot open");
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    errno = err;
    FailIo(path, "cannot stat");
  }
  auto mapping = std::make_shared<Mapping>();
  mapping->size = static_cast<size_t>(st.st_size);
  if (mapping->size < 8) {
    ::close(fd);
    Fail(path, "not a safetensors file (shorter than 8 bytes)");
  }
  mapping->data = mmap(nullptr, mapping->size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping->data == MAP_FAILED) FailIo(path, "mmap failed");
  f.mapping_ = mapping;

  const auto* bytes = static_cast<const unsigned char*>(mapping->data);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > mapping->size - 8) Fail(path, "truncated: header length beyond end of file");
  f.data_offset_ = 8 + header_len;
  const size_t data_size = mapping->size - f.data_offset_;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(bytes + 8), header_len));
  } catch (const nlohmann::json::exception& e) {
    Fail(path, std::string("bad JSON header: ") + e.what());
  }
  if (!header.is_object()) Fail(path, "bad header: not a JSON object");
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      for (auto m = it->begin(); m != it->end(); ++m) {
        f.metadata_[m.key()] = m->is_string() ? m->get<std::string>() : m->dump();
      }
      continue;
    }
    const auto& v = it.value();
    try {
      Entry e;
      e.dtype = ParseDtype(path, it.key(), v.at("dtype").get<std::string>());
      e.shape = v.at("shape").get<std::vector<int64_t>>();
      auto offsets = v.at("data_offsets").get<std::vector<size_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size) {
        Fail(path, "tensor '" + it.key() + "' has data offsets outside the file (truncated?)");
      }
      e.begin = offsets[0];
      e.end = offsets[1];
      int64_t numel = 1;
      for (int64_t d : e.shape) numel *= d;
      const size_t expected = static_cast<size_t>(numel) * c10::elementSize(e.dtype);
      if (expected != e.end - e.begin) {
        Fail(path, "tensor '" + it.key() + "' holds " + std::to_string(e.end - e.begin) +
                       " bytes, its shape needs " + std::to_string(expected));
      }
      f.entries_[it.key()] = std::move(e);
    } catch (const nlohmann::json::exception& ex) {
      Fail(path, "bad header entry '" + it.key() + "': " + ex.what());
    }
  }
  return f;
}

std::vector<std::string> SafetensorsFile::Names() const {
  std::vector<std::string> names;
  for (const auto& [k, v] : entries_) names.push_back(k);
  return names;
}

std::vector<int64_t> SafetensorsFile::Shape(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) Fail(path_, "no tensor '" + name + "'");
  return it->second.shape;
}

torch::Tensor SafetensorsFile::Get(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) Fail(path_, "no tensor '" + name + "'");
  const Entry& e = it->second;
  auto* base = static_cast<char*>(mapping_->data) + data_offset_ + e.begin;
  auto keep = mapping_;  // the tensor keeps the mapping alive
  auto options = torch::TensorOptions().dtype(e.dtype);
  if (e.end == e.begin) return torch::empty(e.shape, options);
  // The mapping is read-only (MAP_PRIVATE, PROT_READ): clone before writing in place.
  return torch::from_blob(base, e.shape, [keep](void*) {}, options);
}

void SaveSafetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                     const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    const size_t n = c.numel() * c.element_size();
    header[name] = {{"dtype", DtypeName(c.scalar_type())},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + n}}};
    offset += n;
    data.push_back(c);
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0) h.push_back(' ');  // keep tensor data 8-byte aligned
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw IoError(IoErrorText(tmp, "cannot open for writing"));
    unsigned char len[8];
    uint64_t hl = h.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((hl >> (8 * i)) & 0xff);
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(h.data(), static_cast<std::streamsize>(h.size()));
    for (const auto& c : data) {
      out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.numel() * c.element_size()));
    }
    out.flush();
    if (!out) throw IoError(IoErrorText(tmp, "write failed"));
    out.close();
    if (!out) throw IoError(IoErrorText(tmp, "write failed"));
  }
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    const bool synced = ::fsync(fd) == 0;
    const int err = errno;
    ::close(fd);
    errno = err;
    if (!synced) throw IoError(IoErrorText(tmp, "fsync failed"));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    throw IoError(IoErrorText(path, "cannot rename temporary file"));
  }
}

}  // namespace sweepd::io
