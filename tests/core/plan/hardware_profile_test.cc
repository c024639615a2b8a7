// Hardware profiles (core/plan/hardware_profile.h): the built-in ones parse
// and round-trip, and a hostile document is refused naming the field.
#include "core/plan/hardware_profile.h"

#include <string>

#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"

namespace stronghold::core {
namespace {

std::string H200Json() {
  absl::StatusOr<HardwareProfile> p = NamedHardwareProfile("h200");
  EXPECT_TRUE(p.ok()) << p.status();
  return HardwareProfileToJson(*p);
}

// `json` with the first `from` replaced by `to`; fails if absent.
std::string Edit(std::string json, const std::string& from,
                 const std::string& to) {
  const size_t at = json.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) json.replace(at, from.size(), to);
  return json;
}

void ExpectRefused(const std::string& json, const std::string& field) {
  absl::StatusOr<HardwareProfile> p = ParseHardwareProfile(json);
  ASSERT_FALSE(p.ok()) << "accepted; expected a refusal naming " << field;
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find(field), std::string::npos)
      << p.status().message();
}

TEST(HardwareProfileTest, BuiltInProfilesParseWithSources) {
  const std::vector<std::string> names = NamedHardwareProfiles();
  for (const char* want : {"h100-pcie-gen5", "h200", "v100-32gb-vm"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  }
  for (const std::string& name : names) {
    absl::StatusOr<HardwareProfile> p = NamedHardwareProfile(name);
    ASSERT_TRUE(p.ok()) << name << ": " << p.status();
    EXPECT_EQ(p->name, name);
    // Every figure says where it came from.
    for (const FigureBounds& f : HardwareFigures()) {
      EXPECT_FALSE(p->sources[f.name].empty()) << name << " " << f.name;
    }
    for (const DeviceCompute& c : p->compute) EXPECT_FALSE(c.source.empty());
  }
  EXPECT_EQ(NamedHardwareProfile("a100").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(HardwareProfileTest, RoundTrips) {
  absl::StatusOr<HardwareProfile> p = NamedHardwareProfile("h200");
  ASSERT_TRUE(p.ok());
  p->layer_timings.push_back({Precision::kBf16, 512, 8, 256, 4, 0.012, 0.025});
  const std::string json = HardwareProfileToJson(*p);
  absl::StatusOr<HardwareProfile> q = ParseHardwareProfile(json);
  ASSERT_TRUE(q.ok()) << q.status() << "\n" << json;
  EXPECT_EQ(HardwareProfileToJson(*q), json);
  EXPECT_EQ(q->h2d_gbps, p->h2d_gbps);
  ASSERT_EQ(q->layer_timings.size(), 1u);
  EXPECT_EQ(q->layer_timings[0].backward_s, 0.025);
}

TEST(HardwareProfileTest, RefusesHostileDocuments) {
  const std::string good = H200Json();
  ASSERT_TRUE(ParseHardwareProfile(good).ok());
  ExpectRefused(Edit(good, "\"h2d_gbps\": {\"value\": 55.5",
                     "\"h2d_gbps\": {\"value\": 0"),
                "figures.h2d_gbps");
  ExpectRefused(Edit(good, "\"h2d_gbps\": {\"value\": 55.5",
                     "\"h2d_gbps\": {\"value\": -3"),
                "figures.h2d_gbps");
  ExpectRefused(Edit(good, "\"d2h_gbps\": {\"value\": 55.5",
                     "\"d2h_gbps\": {\"value\": 1e300"),
                "figures.d2h_gbps");
  ExpectRefused(Edit(good, "\"d2h_gbps\": {\"value\": 55.5",
                     "\"d2h_gbps\": {\"value\": 1e999"),
                "figures.d2h_gbps");
  ExpectRefused(Edit(good, "\"d2h_gbps\": {\"value\": 55.5",
                     "\"d2h_gbps\": {\"value\": NaN"),
                "document");
  ExpectRefused(Edit(good, "\"d2h_gbps\": {\"value\": 55.5",
                     "\"d2h_gbps\": {\"value\": \"fast\""),
                "figures.d2h_gbps");
  ExpectRefused(Edit(good, "\"cpu_threads\"", "\"cpu_thread\""),
                "figures.cpu_thread");
  ExpectRefused(
      Edit(good, "\"device_is_host\"", "\"extra\": 1, \"device_is_host\""),
      "extra");
  ExpectRefused(Edit(good, "\"name\": \"h200\"", "\"name\": \"../etc\""),
                "name");
  ExpectRefused(Edit(good, "\"precision\": \"bf16\"", "\"precision\": \"fp8\""),
                "compute[1]");
  ExpectRefused(
      Edit(good, "\"precision\": \"bf16\"", "\"precision\": \"fp32\""),
      "compute[1]");
  ExpectRefused(Edit(good, "\"tflops\": 666.7", "\"tflops\": 2000"),
                "compute[1].achieved[0].tflops");
  ExpectRefused(Edit(good, "\"hidden\": 2048, \"tflops\": 666.7",
                     "\"hidden\": 0, \"tflops\": 666.7"),
                "compute[1]");
  ExpectRefused("[]", "document");
  ExpectRefused(std::string(2 << 20, ' '), "document");
  ExpectRefused(absl::StrReplaceAll(good, {{"\"layer_timings\": []",
                                            "\"layer_timings\": [{}]"}}),
                "layer_timings[0]");
  // A missing figure.
  HardwareProfile p = *ParseHardwareProfile(good);
  std::string json = HardwareProfileToJson(p);
  const size_t at = json.find("    \"nvme_read_gbps\"");
  ASSERT_NE(at, std::string::npos);
  json.erase(at, json.find('\n', at) + 1 - at);
  ExpectRefused(json, "figures.nvme_read_gbps");
}

TEST(HardwareProfileTest, LayerCostFromCurveOrTiming) {
  HardwareProfile p = *NamedHardwareProfile("h200");
  JobConfig c;
  c.model = {.layers = 4,
             .hidden = 2048,
             .heads = 16,
             .seq_len = 1024,
             .vocab = 50304};
  c.training.batch = c.training.micro_batch = 4;
  absl::StatusOr<LayerCost> cost = LayerComputeCost(p, c);
  ASSERT_TRUE(cost.ok());
  EXPECT_FALSE(cost->measured);
  EXPECT_NEAR(cost->forward_s, 8.95e-3, 0.01e-3);  // the run B profile
  EXPECT_NEAR(cost->backward_s, 2 * cost->forward_s - p.layer_overhead_s,
              1e-12);
  p.layer_timings.push_back({Precision::kFp32, 2048, 16, 1024, 4, 0.01, 0.03});
  cost = LayerComputeCost(p, c);
  ASSERT_TRUE(cost.ok());
  EXPECT_TRUE(cost->measured);
  EXPECT_EQ(cost->backward_s, 0.03);
  // fp16 uses bf16's figures (the same tensor cores).
  c.training.precision = Precision::kFp16;
  EXPECT_TRUE(LayerComputeCost(p, c).ok());
  // Curve: interpolated in log(hidden) between points, clamped outside.
  DeviceCompute d{Precision::kFp32, 100, {{1024, 10}, {4096, 30}}, ""};
  EXPECT_DOUBLE_EQ(AchievedTflops(d, 512), 10);
  EXPECT_DOUBLE_EQ(AchievedTflops(d, 2048), 20);
  EXPECT_DOUBLE_EQ(AchievedTflops(d, 8192), 30);
}

}  // namespace
}  // namespace stronghold::core
