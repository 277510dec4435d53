// Checkpoint folders (see checkpoint.h).
#include "worker/trainer/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "worker/failures.h"
#include "worker/io/safetensors.h"

namespace sweepd::trainer {
namespace fs = std::filesystem;
namespace {

constexpr const char* kAdapterFile = "adapter_model.safetensors";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kCheckpointPrefix = "step-";
constexpr const char* kSetAsidePrefix = "corrupt-";

void WriteState(const fs::path& file, const nlohmann::json& state) {
  {
    std::ofstream out(file);
    out << state.dump(2) << "\n";
    out.flush();
    if (!out) throw IoError(IoErrorText(file.string(), "cannot write"));
    out.close();
    if (!out) throw IoError(IoErrorText(file.string(), "cannot write"));
  }
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int err = errno;
    if (fd >= 0) ::close(fd);
    errno = err;
    throw IoError(IoErrorText(file.string(), "fsync failed"));
  }
  ::close(fd);
}

// Throws InvalidInput for a missing or malformed file, as io::SafetensorsFile does.
nlohmann::json ReadState(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw InvalidInput(IoErrorText(file.string(), "cannot open"));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw InvalidInput(file.string() + ": " + e.what());
  }
}

// Byte for byte (NaN included), on the CPU.
bool SameBytes(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor x = a.detach().to(torch::kCPU).contiguous(), y = b.detach().to(torch::kCPU).contiguous();
  if (x.scalar_type() != y.scalar_type() || x.sizes() != y.sizes()) return false;
  return std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * x.element_size()) == 0;
}

// The file as written, read back: what a later resume would load.
void VerifyTensors(const fs::path& file, const std::map<std::string, torch::Tensor>& written) {
  const std::map<std::string, torch::Tensor> read = ReadAllTensors(file.string());
  bool same = read.size() == written.size();
  for (auto it = written.begin(); same && it != written.end(); ++it) {
    auto r = read.find(it->first);
    same = r != read.end() && SameBytes(r->second, it->second);
  }
  if (!same) throw IoError(file.string() + ": the checkpoint read back differs from what was written");
}

}  // namespace

std::map<std::string, torch::Tensor> ReadAllTensors(const std::string& path) {
  auto file = io::SafetensorsFile::Open(path);
  std::map<std::string, torch::Tensor> out;
  for (const std::string& name : file.Names()) out[name] = file.Get(name).clone();
  return out;
}

std::string SaveCheckpoint(const std::string& workdir, int64_t step, const std::map<std::string, torch::Tensor>& adapter,
                           const std::map<std::string, torch::Tensor>& optimizer, const nlohmann::json& state) {
  char name[32];
  std::snprintf(name, sizeof(name), "%s%08lld", kCheckpointPrefix, static_cast<long long>(step));
  const fs::path root = fs::path(workdir) / "checkpoints";
  const fs::path final_dir = root / name;
  const fs::path tmp = root / (std::string(".") + name + ".tmp" + std::to_string(::getpid()));
  try {
    fs::create_directories(tmp);
    io::SaveSafetensors((tmp / kAdapterFile).string(), adapter, {{"format", "pt"}});
    io::SaveSafetensors((tmp / kOptimizerFile).string(), optimizer, {{"format", "pt"}});
    WriteState(tmp / kStateFile, state);
    VerifyTensors(tmp / kAdapterFile, adapter);
    VerifyTensors(tmp / kOptimizerFile, optimizer);
    if (ReadState(tmp / kStateFile) != state) {
      throw IoError((tmp / kStateFile).string() + ": read back differs from what was written");
    }
  } catch (const InvalidInput& e) {  // what was just written does not read back
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    throw IoError(std::string("checkpoint read back: ") + e.what());
  } catch (...) {
    std::error_code ignored;  // a full disk: free what this attempt wrote, keep the older ones
    fs::remove_all(tmp, ignored);
    throw;
  }
  // A checkpoint of this step already there (a retry that reached it again) goes only once
  // the new one is in place.
  const fs::path old = root / (std::string(".") + name + ".old" + std::to_string(::getpid()));
  if (fs::exists(final_dir)) fs::rename(final_dir, old);
  fs::rename(tmp, final_dir);
  std::error_code ignored;
  fs::remove_all(old, ignored);
  return final_dir.string();
}

void SetAsideCheckpoint(const std::string& path, const std::string& problem) {
  const fs::path folder(path);
  const fs::path aside = folder.parent_path() / (kSetAsidePrefix + folder.filename().string());
  std::error_code ec;
  fs::remove_all(aside, ec);
  fs::rename(folder, aside, ec);
  throw CorruptCheckpoint(problem + (ec ? "; cannot set it aside (" + ec.message() + "): remove " + path + " by hand"
                                        : "; set aside as " + aside.string() +
                                              ", the next attempt resumes from the checkpoint before it"));
}

std::optional<Checkpoint> LoadLatestCheckpoint(const std::string& workdir) {
  const fs::path root = fs::path(workdir) / "checkpoints";
  if (!fs::is_directory(root)) return std::nullopt;
  std::optional<fs::path> best;
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string n = entry.path().filename().string();
    if (!entry.is_directory() || n.rfind(kCheckpointPrefix, 0) != 0) continue;
    if (!best || n > best->filename().string()) best = entry.path();
  }
  if (!best) return std::nullopt;
  Checkpoint c;
  c.path = best->string();
  try {
    c.adapter = ReadAllTensors((*best / kAdapterFile).string());
    c.optimizer = ReadAllTensors((*best / kOptimizerFile).string());
    c.state = ReadState(*best / kStateFile);
    c.step = c.state.at("step").get<int64_t>();
  } catch (const IoError&) {
    throw;  // the machine failed to read it, which says nothing about the checkpoint
  } catch (const std::exception& e) {
    SetAsideCheckpoint(c.path, e.what());
  }
  return c;
}

}  // namespace sweepd::trainer
