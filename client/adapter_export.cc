#include "client/adapter_export.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <system_error>

#include <nlohmann/json.hpp>

#include "common/job_config.h"

namespace sweepd::client {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Candidate {
  std::vector<const ResultRecord*> jobs;
  double tradeoff_sum = 0;
};

std::string Text(const json& j, const char* key) {
  auto it = j.is_object() ? j.find(key) : j.end();
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Status CopyFolder(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::copy(from, to, fs::copy_options::recursive, ec);
  if (ec) return Status::Unavailable(from.string() + " -> " + to.string() + ": cannot copy: " + ec.message());
  return Status::Ok();
}

}  // namespace

Result<std::string> ExportBestAdapters(const std::vector<ResultRecord>& records, const std::vector<Filter>& filters,
                                       const std::string& dir) {
  std::map<std::map<std::string, std::string>, Candidate> groups;
  std::vector<std::map<std::string, std::string>> order;
  for (const ResultRecord& r : records) {
    if (!IsTrainingResult(r) || !r.result.contains("tradeoff") || !r.result["tradeoff"].is_number()) continue;
    bool keep = true;
    for (const Filter& f : filters) keep = keep && MatchesFilter(r, f);
    if (!keep) continue;
    auto key = ConfigurationKey(r);
    auto [it, inserted] = groups.try_emplace(key);
    if (inserted) order.push_back(key);
    it->second.jobs.push_back(&r);
    it->second.tradeoff_sum += r.result["tradeoff"].get<double>();
  }
  if (groups.empty()) {
    return Status::NotFound("--adapters: no finished training job with a trade-off" +
                            std::string(filters.empty() ? "" : " passes the filters") + "; nothing to copy");
  }
  const Candidate* best = nullptr;
  double best_mean = 0;
  for (const auto& key : order) {
    const Candidate& c = groups.at(key);
    const double mean = c.tradeoff_sum / static_cast<double>(c.jobs.size());
    if (best == nullptr || mean > best_mean) {
      best = &c;
      best_mean = mean;
    }
  }

  const fs::path out = fs::absolute(dir).lexically_normal();
  std::error_code ec;
  if (fs::exists(out) && (!fs::is_directory(out) || !fs::is_empty(out))) {
    return Status::InvalidArgument("--adapters " + dir + ": exists and is not empty; give a new folder (export never overwrites)");
  }
  // Every source first, so that a missing one is reported before anything is written.
  struct Copy {
    const ResultRecord* job;
    fs::path adapter, merged;
  };
  std::vector<Copy> copies;
  for (const ResultRecord* job : best->jobs) {
    const std::string output_dir = Text(job->config, "output_dir");
    if (output_dir.empty()) {
      return Status::InvalidArgument("--adapters: job " + job->job_id +
                                     " has no output_dir; set output_dir in the sweep spec so that train jobs leave "
                                     "their adapters where sweepctl can copy them");
    }
    const fs::path folder = OutputFolder(output_dir, job->job_id);
    if (!fs::is_regular_file(folder / "adapter" / "adapter_config.json")) {
      return Status::NotFound("--adapters: " + (folder / "adapter").string() +
                              ": no adapter folder (train jobs write it on their worker; run sweepctl where "
                              "output_dir is visible)");
    }
    const fs::path merged = folder / "merged";
    copies.push_back({job, folder / "adapter", fs::is_regular_file(merged / "config.json") ? merged : fs::path()});
  }

  const fs::path tmp = out.parent_path() / (out.filename().string() + ".partial-" + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) return Status::Unavailable(tmp.string() + ": cannot create: " + ec.message());
  json manifest = {{"criterion", "the highest mean trade-off over seeds (the export's Trade-off column)"},
                   {"tradeoff_mean", best_mean},
                   {"configuration", ConfigurationKey(*best->jobs.front())},
                   {"jobs", json::array()}};
  auto fail = [&](Status s) -> Result<std::string> {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    return s;
  };
  int merged_count = 0;
  for (const Copy& c : copies) {
    const std::string seed = "seed-" + std::to_string(c.job->config.value("seed", 0));
    fs::create_directories(tmp / seed, ec);
    if (Status s = CopyFolder(c.adapter, tmp / seed / "adapter"); !s.ok()) return fail(s);
    json entry = {{"job_id", c.job->job_id},
                  {"seed", c.job->config.value("seed", 0)},
                  {"tradeoff", c.job->result["tradeoff"]},
                  {"adapter", c.adapter.string()},
                  {"merged", nullptr}};
    if (!c.merged.empty()) {
      if (Status s = CopyFolder(c.merged, tmp / seed / "merged"); !s.ok()) return fail(s);
      entry["merged"] = c.merged.string();
      ++merged_count;
    }
    manifest["jobs"].push_back(entry);
  }
  std::ofstream(tmp / "best.json") << manifest.dump(2) << "\n";
  if (fs::exists(out)) fs::remove(out, ec);  // an empty folder, checked above
  fs::rename(tmp, out, ec);
  if (ec) return fail(Status::Unavailable(out.string() + ": cannot create: " + ec.message()));
  char mean[32];
  std::snprintf(mean, sizeof mean, "%.4g", best_mean);
  return "copied the best configuration (mean trade-off " + std::string(mean) + " over " +
         std::to_string(copies.size()) + " seed(s)): " + std::to_string(copies.size()) + " adapter folder(s), " +
         std::to_string(merged_count) + " merged model(s) to " + out.string() + " (best.json lists them)";
}

}  // namespace sweepd::client
