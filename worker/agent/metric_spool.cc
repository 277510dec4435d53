// MetricSpool: append-only JSON-lines file with an in-memory index by seq.
#include "worker/agent/metric_spool.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

namespace sweepd::agent {

Result<std::unique_ptr<MetricSpool>> MetricSpool::Create(const std::filesystem::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "w+e");
  if (f == nullptr) {
    return Status::Unavailable("cannot create metric spool " + path.string() + ": " +
                               std::strerror(errno));
  }
  return std::unique_ptr<MetricSpool>(new MetricSpool(path, f));
}

MetricSpool::MetricSpool(std::filesystem::path path, std::FILE* file)
    : path_(std::move(path)), file_(file) {}

MetricSpool::~MetricSpool() { std::fclose(file_); }

Result<int64_t> MetricSpool::Append(const std::string& json_line) {
  int64_t seq;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seq = static_cast<int64_t>(offsets_.size()) + 1;
    const std::string line = nlohmann::json{{"seq", seq}, {"json", json_line}}.dump(
                                 -1, ' ', false, nlohmann::json::error_handler_t::replace) +
                             "\n";
    if (std::fseek(file_, 0, SEEK_END) != 0) return Status::Internal("spool seek failed");
    const long offset = std::ftell(file_);
    if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
      return Status::Unavailable("cannot write metric spool " + path_.string() + ": " +
                                 std::strerror(errno));
    }
    offsets_.push_back(offset);
    lengths_.push_back(static_cast<int64_t>(line.size()));
  }
  if (listener_) listener_();
  return seq;
}

void MetricSpool::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  if (listener_) listener_();
}

std::vector<SpooledPoint> MetricSpool::ReadFrom(int64_t first_seq, size_t max,
                                                size_t max_bytes) const {
  std::vector<SpooledPoint> points;
  size_t bytes = 0;
  std::lock_guard<std::mutex> lock(mu_);
  for (int64_t seq = std::max<int64_t>(first_seq, 1);
       seq <= static_cast<int64_t>(offsets_.size()) && points.size() < max; ++seq) {
    std::string line(static_cast<size_t>(lengths_[seq - 1]), '\0');
    // Re-read from the file rather than keep every line in memory: a long run can
    // print a lot, and the file is what survives.
    if (std::fseek(file_, offsets_[seq - 1], SEEK_SET) != 0 ||
        std::fread(line.data(), 1, line.size(), file_) != line.size()) {
      break;
    }
    const auto record = nlohmann::json::parse(line, nullptr, false);
    if (record.is_discarded() || !record.is_object()) break;
    const auto json = record.find("json");
    if (json == record.end() || !json->is_string()) break;
    const size_t size = json->get_ref<const std::string&>().size();
    if (!points.empty() && bytes + size > max_bytes) break;
    bytes += size;
    points.push_back({seq, json->get<std::string>()});
  }
  return points;
}

int64_t MetricSpool::last_seq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int64_t>(offsets_.size());
}

bool MetricSpool::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

Result<std::vector<SpooledPoint>> ReadSpoolFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return Status::NotFound("no metric spool at " + path.string());
  std::vector<SpooledPoint> points;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const auto record = nlohmann::json::parse(line, nullptr, false);
    if (!record.is_object() || !record.contains("seq") || !record["seq"].is_number_integer() ||
        !record.contains("json") || !record["json"].is_string()) {
      return Status::InvalidArgument(path.string() + ":" + std::to_string(line_no) +
                                     ": not a spool record");
    }
    points.push_back({record["seq"].get<int64_t>(), record["json"].get<std::string>()});
  }
  return points;
}

}  // namespace sweepd::agent
