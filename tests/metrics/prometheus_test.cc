// sweepd's metrics against a real Prometheus server: Debian's `prometheus` scrapes a real
// sweepd during a real tiny sweep; every PromQL expression of dashboards/*.json and of the
// alert rules is evaluated through Prometheus's HTTP API. promtool checks the config and
// rules. After the sweep and the retention, /metrics no longer carries per-job series.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "tests/metrics/http_get.h"
#include "tests/support/process.h"

namespace sweepd {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using testing::ChildProcess;
using testing::HttpGet;
using testing::MakeTempDir;
using testing::ReadFile;
using testing::RunCommand;
using testing::UrlEncode;
using testing::WaitForPortFile;
using testing::WaitUntil;

const std::string kBin = SWEEPD_BIN_DIR;
const std::string kSource = SWEEPD_SOURCE_DIR;
const char* kPrometheus = "/usr/bin/prometheus";
const char* kPromtool = "/usr/bin/promtool";

// A port that was free a moment ago (the kernel's pick for port 0).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

// Every PromQL expression of a dashboard, with its template variables.
struct Dashboard {
  std::string file;
  std::vector<std::string> exprs;
  std::vector<std::pair<std::string, std::string>> variables;  // name -> label_values(...) query
};

std::vector<Dashboard> LoadDashboards() {
  std::vector<Dashboard> out;
  for (const auto& entry :
       std::filesystem::directory_iterator(kSource + "/dashboards/grafana/dashboards")) {
    if (entry.path().extension() != ".json") continue;
    json d = json::parse(ReadFile(entry.path()));
    Dashboard db;
    db.file = entry.path().filename();
    for (const auto& v : d["templating"]["list"]) {
      if (v.value("type", "") == "query") db.variables.emplace_back(v["name"], v["definition"]);
    }
    for (const auto& p : d["panels"]) {
      for (const auto& t : p["targets"]) db.exprs.push_back(t["expr"]);
    }
    out.push_back(std::move(db));
  }
  return out;
}

std::vector<std::string> AlertExpressions() {
  std::vector<std::string> exprs;
  const YAML::Node rules = YAML::LoadFile(kSource + "/dashboards/prometheus/sweepd-alerts.yml");
  for (const auto& group : rules["groups"]) {
    for (const auto& rule : group["rules"]) exprs.push_back(Trim(rule["expr"].as<std::string>()));
  }
  return exprs;
}

class PrometheusScrape : public ::testing::Test {
 protected:
  json Query(const std::string& promql) {
    return json::parse(HttpGet("127.0.0.1", prom_port_, "/api/v1/query?query=" + UrlEncode(promql)));
  }
  int prom_port_ = 0;
};

TEST(Promtool, AcceptsTheShippedConfigAndRules) {
  std::string out;
  EXPECT_EQ(RunCommand({kPromtool, "check", "config", kSource + "/dashboards/prometheus/prometheus.yml"},
                       &out),
            0)
      << out;
  EXPECT_EQ(RunCommand({kPromtool, "check", "rules",
                        kSource + "/dashboards/prometheus/sweepd-alerts.yml"},
                       &out),
            0)
      << out;
}

TEST_F(PrometheusScrape, EveryDashboardAndAlertExpressionReturnsSeriesAndJobSeriesExpire) {
  const std::string dir = MakeTempDir("sweepd-prom-");
  const int metrics_port = FreePort();
  prom_port_ = FreePort();
  const std::string addr_file = dir + "/sweepd.addr";
  ChildProcess sweepd({kBin + "/sweepd", "--db", dir + "/sweepd.db", "--listen", "127.0.0.1:0",
                       "--port-file", addr_file, "--metrics-listen",
                       "127.0.0.1:" + std::to_string(metrics_port),
                       "--metrics-retention-seconds", "20"},
                      dir + "/sweepd.log");
  const std::string address = WaitForPortFile(addr_file, 30s);
  ASSERT_FALSE(address.empty()) << ReadFile(dir + "/sweepd.log");

  {
    std::ofstream cfg(dir + "/prometheus.yml");
    cfg << "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        << "rule_files: ['" << kSource << "/dashboards/prometheus/sweepd-alerts.yml']\n"
        << "scrape_configs:\n  - job_name: sweepd\n    static_configs:\n"
        << "      - targets: ['127.0.0.1:" << metrics_port << "']\n";
  }
  ChildProcess prometheus({kPrometheus, "--config.file=" + dir + "/prometheus.yml",
                           "--storage.tsdb.path=" + dir + "/tsdb",
                           "--web.listen-address=127.0.0.1:" + std::to_string(prom_port_)},
                          dir + "/prometheus.log");
  ASSERT_TRUE(WaitUntil(
      [&] {
        try {
          return Query("up{job=\"sweepd\"} == 1")["data"]["result"].size() == 1;
        } catch (const std::exception&) {
          return false;
        }
      },
      60s))
      << ReadFile(dir + "/prometheus.log");

  ChildProcess worker({kBin + "/sweep-worker", "--coordinator", address, "--workdir", dir + "/worker"},
                      dir + "/worker.log", {"SWEEPD_CACHE=" + std::string(SWEEPD_TEST_CACHE)});
  std::string out;
  ASSERT_EQ(RunCommand({kBin + "/sweepctl", "--coordinator", address, "submit",
                        kSource + "/tests/metrics/tiny-sweep.yaml"},
                       &out),
            0)
      << out;
  ASSERT_EQ(RunCommand({kBin + "/sweepctl", "--coordinator", address, "watch", "metrics-tiny"}, &out,
                       15min),
            0)
      << out << ReadFile(dir + "/worker.log");
  // Prometheus has scraped the finished jobs' final numbers.
  ASSERT_TRUE(WaitUntil([&] { return Query("sweepd_job_tradeoff_score")["data"]["result"].size() >= 2; },
                        30s));
  std::this_thread::sleep_for(3s);  // a few more scrapes, so that rate() has two samples

  for (const auto& db : LoadDashboards()) {
    std::map<std::string, std::string> values = {{"$__rate_interval", "1m"}};
    for (const auto& [name, definition] : db.variables) {
      std::smatch m;
      ASSERT_TRUE(std::regex_match(definition, m, std::regex(R"(label_values\((.*),\s*(\w+)\))")))
          << db.file << ": variable " << name << " is not a label_values query";
      std::string series = m[1];
      for (const auto& [k, v] : values) series = std::regex_replace(series, std::regex("\\" + k), v);
      json r = Query("group by (" + std::string(m[2]) + ") (" + series + ")");
      ASSERT_FALSE(r["data"]["result"].empty()) << db.file << ": variable " << name << " has no values";
      values["$" + name] = r["data"]["result"][0]["metric"][std::string(m[2])];
    }
    for (std::string expr : db.exprs) {
      const std::string original = expr;
      for (const auto& [k, v] : values) expr = std::regex_replace(expr, std::regex("\\" + k), v);
      json r = Query(expr);
      ASSERT_EQ(r["status"], "success") << db.file << ": " << original << "\n" << r.dump();
      EXPECT_FALSE(r["data"]["result"].empty()) << db.file << ": no series for " << expr;
    }
  }

  // Alert expressions are valid, every metric they read exists, and the rules loaded healthy.
  for (const auto& expr : AlertExpressions()) {
    json r = Query(expr);
    ASSERT_EQ(r["status"], "success") << expr << "\n" << r.dump();
    std::set<std::string> names;
    std::regex name_re(R"(sweepd_[a-z_]+)");
    for (auto it = std::sregex_iterator(expr.begin(), expr.end(), name_re); it != std::sregex_iterator();
         ++it) {
      names.insert(it->str());
    }
    for (const auto& name : names) {
      EXPECT_FALSE(Query(name)["data"]["result"].empty()) << "alert reads " << name << ": no series";
    }
  }
  json rules = json::parse(HttpGet("127.0.0.1", prom_port_, "/api/v1/rules"));
  int rule_count = 0;
  for (const auto& g : rules["data"]["groups"]) {
    for (const auto& rule : g["rules"]) {
      ++rule_count;
      EXPECT_EQ(rule["health"], "ok") << rule.dump();
    }
  }
  EXPECT_EQ(rule_count, static_cast<int>(AlertExpressions().size()));

  // Retention: the finished jobs' series leave /metrics.
  EXPECT_NE(HttpGet("127.0.0.1", metrics_port, "/metrics").find("sweepd_job_loss{"), std::string::npos);
  EXPECT_TRUE(WaitUntil(
      [&] { return HttpGet("127.0.0.1", metrics_port, "/metrics").find("job=\"") == std::string::npos; },
      90s))
      << HttpGet("127.0.0.1", metrics_port, "/metrics");

  worker.Stop();
  prometheus.Stop();
  sweepd.Stop();
}

}  // namespace
}  // namespace sweepd
