// The method registry: every registration is complete and self-consistent, and Resolve,
// the one reader of adapter settings, replaces aliases and refuses unknown options.
#include "common/methods/registry.h"

#include <set>

#include <gtest/gtest.h>

namespace sweepd::methods {
namespace {

using nlohmann::json;

TEST(MethodRegistry, EveryMethodIsCompleteAndItsDefaultsPassItsOwnChecks) {
  std::set<std::string> names;
  for (const MethodInfo* m : Methods()) {
    EXPECT_TRUE(names.insert(m->name).second) << "registered twice: " << m->name;
    EXPECT_FALSE(m->label.empty()) << m->name;
    EXPECT_TRUE(m->count) << m->name;
    for (const std::string& k : m->label_keys) EXPECT_NE(FindOption(*m, k), nullptr) << m->name << " " << k;
    if (!m->size_knob.empty()) {
      EXPECT_NE(FindOption(*m, m->size_knob), nullptr) << m->name;
    }
    for (const OptionSpec& o : m->options) {
      if (o.default_value.is_null()) continue;
      EXPECT_EQ(CheckOptionValue(o, o.default_value), "") << m->name << " " << o.name;
    }
    // The method alone, all defaults, is valid settings.
    EXPECT_TRUE(Resolve({{"method", m->name}}).ok()) << m->name;
  }
  EXPECT_EQ(FindMethod("lorax"), nullptr);
}

TEST(MethodRegistry, AnAliasIsReplacedByWhatItSets) {
  Result<MethodSettings> s = Resolve({{"method", "jora"}, {"S", 96}, {"k", 24}});
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->json(), json({{"method", "jora"}, {"S_L", 96}, {"S_R", 96}, {"k", 24}}));
  EXPECT_EQ(s->Int("S_L"), 96);
  EXPECT_EQ(s->Int("S_R"), 96);
  Result<MethodSettings> lora = Resolve({{"method", "lora"}, {"lora_alpha", 32}});
  ASSERT_TRUE(lora.ok()) << lora.status().message();
  EXPECT_EQ(lora->Number("alpha"), 32.0);
  EXPECT_FALSE(lora->json().contains("lora_alpha"));
}

TEST(MethodRegistry, AnAliasAndItsTargetTogetherAreRefused) {
  Result<MethodSettings> s = Resolve({{"method", "jora"}, {"S", 96}, {"S_L", 64}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("'S' and 'S_L'"), std::string::npos) << s.status().message();
}

TEST(MethodRegistry, AnUnknownOptionIsRefusedNamingItAndTheKnownOnes) {
  Result<MethodSettings> s = Resolve({{"method", "jora"}, {"SL", 96}});
  ASSERT_FALSE(s.ok());
  const std::string& msg = s.status().message();
  EXPECT_NE(msg.find("unknown option 'SL' of jora"), std::string::npos) << msg;
  EXPECT_NE(msg.find("S_L"), std::string::npos) << "lists the known options: " << msg;
  EXPECT_NE(msg.find("S (sets S_L and S_R)"), std::string::npos) << msg;
}

TEST(MethodRegistry, TypesAndRangesAreChecked) {
  Result<MethodSettings> s = Resolve({{"method", "lora"}, {"r", "eight"}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("'r' must be an integer"), std::string::npos) << s.status().message();
  Result<MethodSettings> zero = Resolve({{"method", "lora"}, {"r", 0}});
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.status().message().find("at least 1"), std::string::npos) << zero.status().message();
  Result<MethodSettings> choice = Resolve({{"method", "jora"}, {"core", "dense"}});
  ASSERT_FALSE(choice.ok());
  EXPECT_NE(choice.status().message().find("one of diag"), std::string::npos) << choice.status().message();
}

TEST(MethodRegistry, JoraDefaultsAreReadFromItsRegistration) {
  Result<MethodSettings> s = Resolve({{"method", "jora"}});
  ASSERT_TRUE(s.ok());
  const OptionSpec* sl = FindOption(s->method(), "S_L");
  const OptionSpec* k = FindOption(s->method(), "k");
  ASSERT_NE(sl, nullptr);
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(s->Int("S_L"), sl->default_value.get<int64_t>());
  EXPECT_EQ(s->Int("k"), k->default_value.get<int64_t>());
  // The default count uses the same defaults: 2·S_L rotation slots and a diagonal core.
  LinearShape shape{"q", 128, 128, false, false};
  Result<int64_t> n = s->method().count(*s, shape);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, sl->default_value.get<int64_t>() * 2 + 128 + 128);
}

}  // namespace
}  // namespace sweepd::methods
