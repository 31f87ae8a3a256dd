#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "attnscope/sampling.h"

namespace attnscope {
namespace {

std::vector<float> log_probs(std::vector<double> p) {
  std::vector<float> out;
  for (double x : p) out.push_back(static_cast<float>(std::log(x)));
  return out;
}

std::vector<double> frequencies(Sampler& s, const std::vector<float>& logits, int draws) {
  std::vector<double> f(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) f[static_cast<size_t>(s.sample(logits))] += 1.0 / draws;
  return f;
}

SamplingParams unfiltered(float temperature, uint64_t seed = 1) {
  return SamplingParams{.temperature = temperature, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = seed};
}

TEST(Argmax, FirstOfTheLargest) {
  EXPECT_EQ(argmax(std::vector<float>{1, 3, 2}), 1);
  EXPECT_EQ(argmax(std::vector<float>{5, 5, 2}), 0);
  EXPECT_EQ(argmax(std::vector<float>{-INFINITY, -1}), 1);
}

TEST(Sampler, GreedyIsArgmaxWhateverTheSeed) {
  const std::vector<float> logits = {0.1f, 2.0f, 1.9f, -3.0f};
  for (uint64_t seed : {0u, 1u, 99u}) {
    Sampler s(SamplingParams{.temperature = 0.0f, .seed = seed});
    for (int i = 0; i < 10; ++i) EXPECT_EQ(s.sample(logits), 1);
  }
}

TEST(Sampler, TemperatureOneDrawsTheSoftmaxDistribution) {
  const std::vector<double> p = {0.5, 0.3, 0.2};
  Sampler s(unfiltered(1.0f));
  const auto f = frequencies(s, log_probs(p), 40000);
  for (size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(f[i], p[i], 0.01) << i;
}

TEST(Sampler, TemperatureSharpensAsAPower) {
  // At temperature 0.5 the probabilities become p^2 / sum(p^2).
  const std::vector<double> p = {0.5, 0.3, 0.2};
  Sampler s(unfiltered(0.5f));
  const auto f = frequencies(s, log_probs(p), 40000);
  const double z = 0.25 + 0.09 + 0.04;
  EXPECT_NEAR(f[0], 0.25 / z, 0.01);
  EXPECT_NEAR(f[1], 0.09 / z, 0.01);
  EXPECT_NEAR(f[2], 0.04 / z, 0.01);
}

TEST(Sampler, TopKKeepsOnlyTheKBest) {
  auto params = unfiltered(1.0f);
  params.top_k = 2;
  Sampler s(params);
  const auto f = frequencies(s, log_probs({0.4, 0.1, 0.3, 0.2}), 20000);
  EXPECT_EQ(f[1], 0.0);
  EXPECT_EQ(f[3], 0.0);
  EXPECT_NEAR(f[0], 0.4 / 0.7, 0.015);
}

TEST(Sampler, TopPKeepsTheSmallestSetReachingP) {
  auto params = unfiltered(1.0f);
  params.top_p = 0.7f;  // 0.5 alone < 0.7, 0.5 + 0.3 >= 0.7
  Sampler s(params);
  const auto f = frequencies(s, log_probs({0.5, 0.3, 0.2}), 20000);
  EXPECT_EQ(f[2], 0.0);
  EXPECT_NEAR(f[0], 0.5 / 0.8, 0.015);
}

TEST(Sampler, MinPDropsTokensBelowAFractionOfTheBest) {
  auto params = unfiltered(1.0f);
  params.min_p = 0.5f;  // threshold 0.25: keeps 0.5 and 0.3
  Sampler s(params);
  const auto f = frequencies(s, log_probs({0.2, 0.5, 0.3}), 20000);
  EXPECT_EQ(f[0], 0.0);
  EXPECT_GT(f[1], 0.5);
}

TEST(Sampler, SameSeedSameSequence) {
  const std::vector<float> logits = log_probs({0.25, 0.25, 0.25, 0.25});
  Sampler a(unfiltered(1.0f, 7)), b(unfiltered(1.0f, 7)), c(unfiltered(1.0f, 8));
  std::vector<int32_t> sa, sb, sc;
  for (int i = 0; i < 64; ++i) {
    sa.push_back(a.sample(logits));
    sb.push_back(b.sample(logits));
    sc.push_back(c.sample(logits));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
}

TEST(SamplingParams, ValidateNamesTheParameter) {
  auto bad_temp = SamplingParams{.temperature = -1.0f}.validate();
  ASSERT_FALSE(bad_temp.ok());
  EXPECT_NE(bad_temp.error().message.find("temperature"), std::string::npos);
  auto bad_p = SamplingParams{.temperature = 1.0f, .top_p = 0.0f}.validate();
  ASSERT_FALSE(bad_p.ok());
  EXPECT_NE(bad_p.error().message.find("top-p"), std::string::npos);
  auto bad_min = SamplingParams{.temperature = 1.0f, .min_p = 1.5f}.validate();
  ASSERT_FALSE(bad_min.ok());
  EXPECT_NE(bad_min.error().message.find("min-p"), std::string::npos);
  EXPECT_TRUE(SamplingParams{}.validate().ok());
}

}  // namespace
}  // namespace attnscope
