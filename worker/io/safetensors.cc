// safetensors I/O: https://github.com/huggingface/safetensors format, mmap-based reading;
// CopyTo() stages a tensor to the GPU in pinned chunks, as safetensors' own `safe_open(...,
// device="cuda")` path and PyTorch's pin_memory + non_blocking copies do.
#include "worker/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
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

std::string ShapeText(at::IntArrayRef shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << "]";
  return out.str();
}

// memcpy on every intra-op thread: the page faults of a mapped file are the slow part, and
// they proceed in parallel.
void CopyBytesParallel(void* dst, const void* src, size_t n) {
  constexpr int64_t kGrain = int64_t{4} << 20;
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
  at::parallel_for(0, static_cast<int64_t>(n), kGrain,
                   [&](int64_t begin, int64_t end) { std::memcpy(d + begin, s + begin, end - begin); });
}

// Mapped bytes -> a contiguous CUDA tensor of the same bytes, through pinned chunks copied
// asynchronously on the current stream. PyTorch's caching host allocator records an event on
// each chunk's block, so a block is reused only once its copy is done, and filling the next
// chunk overlaps the previous one's transfer.
void StageToDevice(const char* src, size_t n, const torch::Tensor& target) {
  constexpr size_t kChunk = size_t{64} << 20;
  torch::Tensor bytes = torch::from_blob(target.data_ptr(), {static_cast<int64_t>(n)},
                                         torch::TensorOptions().dtype(torch::kUInt8).device(target.device()));
  const auto pinned_options = torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(true);
  for (size_t offset = 0; offset < n; offset += kChunk) {
    const size_t len = std::min(kChunk, n - offset);
    torch::Tensor pinned = torch::empty({static_cast<int64_t>(len)}, pinned_options);
    CopyBytesParallel(pinned.data_ptr(), src + offset, len);
    bytes.narrow(0, static_cast<int64_t>(offset), static_cast<int64_t>(len)).copy_(pinned, /*non_blocking=*/true);
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

void SafetensorsFile::CopyTo(const std::string& name, torch::Tensor& dst) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) Fail(path_, "no tensor '" + name + "'");
  const Entry& e = it->second;
  if (dst.sizes() != at::IntArrayRef(e.shape)) {
    Fail(path_, "tensor '" + name + "' has shape " + ShapeText(e.shape) + " but " + ShapeText(dst.sizes()) +
                    " is expected");
  }
  if (dst.is_floating_point() && !c10::isFloatingType(e.dtype)) {
    Fail(path_, "tensor '" + name + "' is " + DtypeName(e.dtype) +
                    "; a model weight must be F32, BF16 or F16 (is this the model's own checkpoint?)");
  }
  if (e.end == e.begin) return;
  const char* src = static_cast<const char*>(mapping_->data) + data_offset_ + e.begin;
  const size_t n = e.end - e.begin;
  if (dst.is_cuda()) {
    // Raw bytes to the device, converted there: never a host copy in another dtype.
    const bool direct = dst.scalar_type() == e.dtype && dst.is_contiguous();
    torch::Tensor target = direct ? dst : torch::empty(e.shape, dst.options().dtype(e.dtype));
    StageToDevice(src, n, target);
    if (!direct) dst.copy_(target);
  } else if (dst.scalar_type() == e.dtype && dst.is_contiguous()) {
    CopyBytesParallel(dst.data_ptr(), src, n);
  } else {
    dst.copy_(Get(name));
  }
  // Drop the copied range from this process's resident pages (the page cache keeps them);
  // the mapping stays valid and faults them in again if they are read later.
  const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t first = (data_offset_ + e.begin) / page * page;
  const size_t last = std::min(mapping_->size, (data_offset_ + e.end + page - 1) / page * page);
  madvise(static_cast<char*>(mapping_->data) + first, last - first, MADV_DONTNEED);
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
