// The Kubernetes manifests (deploy/k8s/*.yaml) against the Kubernetes OpenAPI schema with a
// real validator (deploy/k8s/validate/validate.sh: kubernetes-models' validators, installed
// from npm into the test cache), which must refuse deliberately broken copies naming the
// file, line and field; and what the schema cannot know: the worker's grace period covers
// its drain, the probes use ports sweepd listens on, the coordinator has one replica.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "tests/support/process.h"

namespace sweepd {
namespace {

using sweepd::testing::MakeTempDir;
using sweepd::testing::ReadFile;
using sweepd::testing::RunCommand;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

const std::string kSource = SWEEPD_SOURCE_DIR;
const std::string kK8s = kSource + "/deploy/k8s";
const std::string kValidate = kK8s + "/validate/validate.sh";

std::vector<std::string> Manifests() {
  std::vector<std::string> files;
  for (const auto& f : std::filesystem::directory_iterator(kK8s)) {
    if (f.path().extension() == ".yaml") files.push_back(f.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Validates `files`; returns the exit status and sets `out` to the validator's output.
int Validate(const std::vector<std::string>& files, std::string* out) {
  std::vector<std::string> argv = {kValidate};
  argv.insert(argv.end(), files.begin(), files.end());
  return RunCommand(argv, out, 5min);  // the first run installs the npm packages
}

// A copy of `file` with `pattern` replaced by `replacement` (which must match once at least).
std::string BrokenCopy(const std::string& dir, const std::string& file, const std::string& pattern,
                       const std::string& replacement) {
  const std::string text = ReadFile(file);
  const std::regex re(pattern);
  EXPECT_TRUE(std::regex_search(text, re)) << pattern << " not in " << file;
  const std::string path = dir + "/" + std::filesystem::path(file).filename().string();
  std::ofstream(path) << std::regex_replace(text, re, replacement);
  return path;
}

// The documents of a manifest file by kind.
YAML::Node DocumentOf(const std::string& file, const std::string& kind) {
  for (const YAML::Node& doc : YAML::LoadAllFromFile(file)) {
    if (doc["kind"] && doc["kind"].as<std::string>() == kind) return doc;
  }
  ADD_FAILURE() << "no " << kind << " in " << file;
  return YAML::Node();
}

TEST(K8sManifests, EveryManifestMatchesTheKubernetesSchema) {
  const auto files = Manifests();
  ASSERT_GE(files.size(), 3u);
  std::string out;
  EXPECT_EQ(Validate(files, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("match the Kubernetes schema"));
}

TEST(K8sManifests, BrokenCopiesAreRefusedNamingFileLineAndField) {
  const std::string dir = MakeTempDir("sweepd-k8s-");
  const std::string worker = kK8s + "/sweep-worker.yaml";
  struct Case {
    std::string file, pattern, replacement, expected;
  };
  const std::vector<Case> cases = {
      // A number written as words.
      {worker, "terminationGracePeriodSeconds: [0-9]+", "terminationGracePeriodSeconds: soon",
       "/spec/template/spec/terminationGracePeriodSeconds: must be integer"},
      // A required field misspelt.
      {worker, "\n  selector:\n", "\n  selectr:\n", "/spec: missing selector"},
      // An API version a current release no longer serves.
      {worker, "apiVersion: apps/v1\n", "apiVersion: apps/v1beta1\n",
       "apps/v1beta1 Deployment is not part of this Kubernetes release's API"},
      // A list given as one string.
      {kK8s + "/sweepd.yaml", "accessModes: \\[\"ReadWriteOnce\"\\]", "accessModes: ReadWriteOnce",
       "/spec/volumeClaimTemplates/0/spec/accessModes: must be array"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expected);
    const std::string broken = BrokenCopy(dir, c.file, c.pattern, c.replacement);
    std::string out;
    EXPECT_EQ(Validate({broken}, &out), 1) << out;
    EXPECT_THAT(out, HasSubstr(broken + ":"));
    EXPECT_THAT(out, HasSubstr(c.expected));
    // The line named is the broken one.
    const std::regex line_ref(std::regex_replace(broken, std::regex("[.^$|()\\[\\]{}*+?\\\\]"),
                                                 "\\$&") +
                              ":([0-9]+):");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(out, m, line_ref)) << out;
    std::ifstream in(broken);
    std::string line;
    for (int n = 0; n < std::stoi(m[1]); ++n) std::getline(in, line);
    EXPECT_FALSE(line.empty()) << "line " << m[1] << " of " << broken;
  }
  // The originals still pass: the copies, not the validator, were broken.
  std::string out;
  EXPECT_EQ(Validate(Manifests(), &out), 0) << out;
  std::filesystem::remove_all(dir);
}

int64_t Seconds(const YAML::Node& config, const std::string& key) {
  EXPECT_TRUE(config["data"][key]) << key << " missing from the worker's ConfigMap";
  return std::stoll(config["data"][key].as<std::string>("0"));
}

TEST(K8sManifests, WorkerGracePeriodCoversTheAgentsDrainAndGpusAreRequested) {
  const std::string worker = kK8s + "/sweep-worker.yaml";
  const YAML::Node config = DocumentOf(worker, "ConfigMap");
  const YAML::Node pod = DocumentOf(worker, "Deployment")["spec"]["template"]["spec"];
  // docs/worker.md: a launcher must allow drain + kill grace + report time, and the final
  // heartbeat needs a few seconds more.
  const int64_t needed = Seconds(config, "SWEEP_WORKER_DRAIN_S") +
                         Seconds(config, "SWEEP_WORKER_KILL_GRACE_S") +
                         Seconds(config, "SWEEP_WORKER_REPORT_S") + 10;
  EXPECT_GE(pod["terminationGracePeriodSeconds"].as<int64_t>(), needed);
  const YAML::Node resources = pod["containers"][0]["resources"];
  ASSERT_TRUE(resources["requests"]["nvidia.com/gpu"]);
  EXPECT_EQ(resources["requests"]["nvidia.com/gpu"].as<int>(),
            resources["limits"]["nvidia.com/gpu"].as<int>());
  // The flags the shell passes come from the ConfigMap's keys.
  const std::string script = pod["containers"][0]["args"][0].as<std::string>();
  for (const auto& kv : config["data"]) {
    EXPECT_THAT(script, HasSubstr("$" + kv.first.as<std::string>())) << "unused ConfigMap key";
  }
}

TEST(K8sManifests, CoordinatorIsOneReplicaWithProbesOnThePortsItListensOn) {
  const std::string file = kK8s + "/sweepd.yaml";
  const YAML::Node set = DocumentOf(file, "StatefulSet");
  EXPECT_EQ(set["spec"]["replicas"].as<int>(), 1);
  const YAML::Node container = set["spec"]["template"]["spec"]["containers"][0];
  std::map<std::string, int> ports;
  for (const auto& p : container["ports"]) ports[p["name"].as<std::string>()] = p["containerPort"].as<int>();
  std::string args;
  for (const auto& a : container["args"]) args += a.as<std::string>() + " ";
  ASSERT_TRUE(ports.count("grpc") && ports.count("metrics"));
  EXPECT_THAT(args, HasSubstr("--listen=0.0.0.0:" + std::to_string(ports["grpc"])));
  EXPECT_THAT(args, HasSubstr("--metrics-listen=0.0.0.0:" + std::to_string(ports["metrics"])));
  EXPECT_EQ(container["readinessProbe"]["tcpSocket"]["port"].as<std::string>(), "grpc");
  EXPECT_EQ(container["livenessProbe"]["httpGet"]["port"].as<std::string>(), "metrics");
  EXPECT_EQ(container["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/metrics");
  // The database lives on the claim the StatefulSet makes for its pod.
  const std::string claim = set["spec"]["volumeClaimTemplates"][0]["metadata"]["name"].as<std::string>();
  bool mounted = false;
  for (const auto& m : container["volumeMounts"]) {
    if (m["name"].as<std::string>() == claim) {
      mounted = true;
      EXPECT_THAT(args, HasSubstr("--db=" + m["mountPath"].as<std::string>() + "/"));
    }
  }
  EXPECT_TRUE(mounted);
}

}  // namespace
}  // namespace sweepd
