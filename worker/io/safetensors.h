// Reading and writing safetensors files (8-byte little-endian header length, a JSON
// header, raw little-endian data). Reads are memory-mapped: Get() views the mapping on CPU,
// CopyTo() copies a tensor straight into a tensor on any device, in its dtype.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <torch/torch.h>

namespace sweepd::io {

// An open safetensors file. Tensors returned by Get() view the mapping and stay valid
// while any copy of this object (or the tensor) lives.
class SafetensorsFile {
 public:
  // Throws InvalidInput naming the file and the problem (missing, truncated, bad header), IoError
  // when the system cannot read a file that is there (worker/failures.h).
  static SafetensorsFile Open(const std::string& path);

  const std::string& path() const { return path_; }
  bool Has(const std::string& name) const { return entries_.count(name) > 0; }
  std::vector<std::string> Names() const;
  // The tensor `name`; throws InvalidInput "FILE: no tensor 'NAME'" when absent.
  torch::Tensor Get(const std::string& name) const;
  std::vector<int64_t> Shape(const std::string& name) const;
  // Copies tensor `name` into `dst` (same shape, any device and floating dtype) without a
  // host copy in another dtype: the mapped bytes go to dst's device as they are (on CUDA
  // through pinned staging chunks, asynchronously; the caller synchronises before reading the
  // host side again) and are converted there. The file's pages are released from this
  // process afterwards, so a model's load peaks near its own size in host memory. Throws
  // InvalidInput "FILE: tensor 'NAME' ..." for an absent tensor, another shape, or a
  // non-floating tensor copied into a floating one.
  void CopyTo(const std::string& name, torch::Tensor& dst) const;
  const std::map<std::string, std::string>& Metadata() const { return metadata_; }

 private:
  struct Entry {
    torch::ScalarType dtype;
    std::vector<int64_t> shape;
    size_t begin = 0;
    size_t end = 0;
  };
  struct Mapping;

  std::string path_;
  std::shared_ptr<Mapping> mapping_;
  size_t data_offset_ = 0;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` (any device and layout; copied to contiguous CPU) atomically:
// to PATH.tmp, fsync, rename. Throws IoError on failure (a full disk: "No space left on device").
void SaveSafetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                     const std::map<std::string, std::string>& metadata = {});

}  // namespace sweepd::io
