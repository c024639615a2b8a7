// Hardware profiles: validation, JSON, layer costs
// (core/plan/hardware_profile.h).
#include "core/plan/hardware_profile.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/plan/builtin_hardware_profiles.h"
#include "core/util/json.h"
#include "core/util/status_macros.h"

namespace stronghold::core {
namespace {

using HP = HardwareProfile;

constexpr double kTera = 1e12;
constexpr size_t kMaxDocumentBytes = size_t{1} << 20;
constexpr size_t kMaxProfileNameLength = 64;
constexpr size_t kMaxTextLength = 1024;
constexpr size_t kMaxPoints = 64;
constexpr size_t kMaxTimings = 256;

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("hardware profile: ", field, ": ", what));
}

// Refuses members other than `allowed` (a typo would otherwise be silently
// ignored and its figure taken from nowhere).
absl::Status OnlyKeys(const JsonValue& object, absl::string_view where,
                      std::initializer_list<absl::string_view> allowed) {
  for (const auto& [key, unused] : object.object) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      return Invalid(absl::StrCat(where, key), "unknown field");
  }
  return absl::OkStatus();
}

bool GoodName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxProfileNameLength) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

absl::Status CheckText(absl::string_view field, const std::string& text) {
  if (text.size() > kMaxTextLength)
    return Invalid(
        field, absl::StrFormat("longer than %d characters", kMaxTextLength));
  for (unsigned char c : text)
    if (c < 0x20) return Invalid(field, "control character");
  return absl::OkStatus();
}

absl::Status CheckRange(absl::string_view field, double v, double min,
                        double max) {
  if (!std::isfinite(v)) return Invalid(field, "not a finite number");
  if (!(v > 0)) return Invalid(field, absl::StrCat(v, " is not positive"));
  if (v < min || v > max)
    return Invalid(field, absl::StrFormat("%g outside [%g, %g]", v, min, max));
  return absl::OkStatus();
}

absl::StatusOr<Precision> ParsePrecision(absl::string_view field,
                                         absl::string_view text) {
  for (Precision p : {Precision::kFp32, Precision::kBf16, Precision::kFp16}) {
    if (text == PrecisionName(p)) return p;
  }
  return Invalid(field, absl::StrCat("precision \"", text,
                                     "\": expected fp32, bf16 or fp16"));
}

std::string Number(double v) { return absl::StrFormat("%.17g", v); }

}  // namespace

const std::vector<FigureBounds>& HardwareFigures() {
  // Bounds: a factor of ~1000 either side of any machine this project
  // could meet; what they keep out is nonsense (0, 1e300), not hardware.
  static const std::vector<FigureBounds> kFigures = {
      {"h2d_gbps", &HP::h2d_gbps, 0.01, 10000},
      {"d2h_gbps", &HP::d2h_gbps, 0.01, 10000},
      {"copy_latency_s", &HP::copy_latency_s, 1e-9, 1},
      {"pageable_copy_gbps", &HP::pageable_copy_gbps, 0.01, 10000},
      {"cpu_adamw_gbps", &HP::cpu_adamw_gbps, 0.01, 100000},
      {"cpu_adamw_lowp_gbps", &HP::cpu_adamw_lowp_gbps, 0.01, 100000},
      {"cpu_copy_gbps", &HP::cpu_copy_gbps, 0.01, 100000},
      {"cpu_single_thread_gbps", &HP::cpu_single_thread_gbps, 0.01, 10000},
      {"cpu_threads", &HP::cpu_threads, 1, 4096},
      {"nvme_read_gbps", &HP::nvme_read_gbps, 0.001, 10000},
      {"nvme_write_gbps", &HP::nvme_write_gbps, 0.001, 10000},
      {"device_adamw_gbps", &HP::device_adamw_gbps, 0.01, 1000000},
      {"layer_overhead_s", &HP::layer_overhead_s, 1e-9, 10},
      {"host_memory_bytes", &HP::host_memory_bytes, 1 << 20, 1e16},
      {"device_memory_bytes", &HP::device_memory_bytes, 1 << 20, 1e16},
  };
  return kFigures;
}

absl::Status ValidateHardwareProfile(const HardwareProfile& p) {
  if (!GoodName(p.name))
    return Invalid(
        "name", absl::StrFormat("\"%s\": 1..%d characters of [a-z0-9._-]",
                                p.name.substr(0, 80), kMaxProfileNameLength));
  RETURN_IF_ERROR(CheckText("description", p.description));
  for (const FigureBounds& f : HardwareFigures()) {
    RETURN_IF_ERROR(
        CheckRange(absl::StrCat("figures.", f.name), p.*f.field, f.min, f.max));
  }
  for (const auto& [name, source] : p.sources) {
    RETURN_IF_ERROR(
        CheckText(absl::StrCat("figures.", name, ".source"), source));
  }
  if (p.compute.empty()) return Invalid("compute", "no entry");
  if (p.compute.size() > 3) return Invalid("compute", "more than 3 entries");
  std::set<Precision> seen;
  for (size_t i = 0; i < p.compute.size(); ++i) {
    const DeviceCompute& c = p.compute[i];
    const std::string at = absl::StrCat("compute[", i, "]");
    if (!seen.insert(c.precision).second)
      return Invalid(at, "precision given twice");
    RETURN_IF_ERROR(
        CheckRange(absl::StrCat(at, ".peak_tflops"), c.peak_tflops, 1e-4, 1e5));
    RETURN_IF_ERROR(CheckText(absl::StrCat(at, ".source"), c.source));
    if (c.achieved.empty() || c.achieved.size() > kMaxPoints)
      return Invalid(absl::StrCat(at, ".achieved"),
                     absl::StrFormat("1..%d points", kMaxPoints));
    for (size_t j = 0; j < c.achieved.size(); ++j) {
      const std::string pt = absl::StrCat(at, ".achieved[", j, "]");
      const ComputePoint& q = c.achieved[j];
      if (q.hidden < 1 || q.hidden > kMaxHidden)
        return Invalid(absl::StrCat(pt, ".hidden"),
                       absl::StrFormat("outside [1, %d]", kMaxHidden));
      if (j > 0 && q.hidden <= c.achieved[j - 1].hidden)
        return Invalid(absl::StrCat(pt, ".hidden"), "not increasing");
      RETURN_IF_ERROR(
          CheckRange(absl::StrCat(pt, ".tflops"), q.tflops, 1e-5, 1e5));
      if (q.tflops > c.peak_tflops)
        return Invalid(absl::StrCat(pt, ".tflops"), "above peak_tflops");
    }
  }
  if (p.layer_timings.size() > kMaxTimings)
    return Invalid("layer_timings", absl::StrCat("more than ", kMaxTimings));
  for (size_t i = 0; i < p.layer_timings.size(); ++i) {
    const LayerTiming& t = p.layer_timings[i];
    const std::string at = absl::StrCat("layer_timings[", i, "]");
    const std::pair<const char*, std::pair<int, int>> ints[] = {
        {"hidden", {t.hidden, kMaxHidden}},
        {"heads", {t.heads, kMaxHidden}},
        {"seq_len", {t.seq_len, kMaxSeqLen}},
        {"micro_batch", {t.micro_batch, 1 << 20}}};
    for (const auto& [name, v] : ints) {
      if (v.first < 1 || v.first > v.second)
        return Invalid(absl::StrCat(at, ".", name),
                       absl::StrFormat("outside [1, %d]", v.second));
    }
    RETURN_IF_ERROR(
        CheckRange(absl::StrCat(at, ".forward_s"), t.forward_s, 1e-9, 3600));
    RETURN_IF_ERROR(
        CheckRange(absl::StrCat(at, ".backward_s"), t.backward_s, 1e-9, 3600));
  }
  return absl::OkStatus();
}

absl::StatusOr<HardwareProfile> ParseHardwareProfile(absl::string_view json) {
  if (json.size() > kMaxDocumentBytes)
    return Invalid("document", absl::StrFormat("%d bytes, more than %d",
                                               json.size(), kMaxDocumentBytes));
  JsonOptions options;
  options.max_bytes = kMaxDocumentBytes;
  options.max_values = 20000;
  options.max_depth = 8;
  absl::StatusOr<JsonValue> doc = ParseJson(json, options);
  if (!doc.ok()) return Invalid("document", doc.status().message());
  if (doc->kind != JsonValue::Kind::kObject)
    return Invalid("document", "not an object");
  RETURN_IF_ERROR(OnlyKeys(*doc, "",
                           {"name", "description", "device_is_host", "figures",
                            "compute", "layer_timings"}));
  HardwareProfile p;
  ASSIGN_OR_RETURN(p.name, doc->String("name"));
  if (doc->object.count("description")) {
    ASSIGN_OR_RETURN(p.description, doc->String("description"));
  }
  ASSIGN_OR_RETURN(const JsonValue* host,
                   doc->Member("device_is_host", JsonValue::Kind::kBool));
  p.device_is_host = host->boolean;

  ASSIGN_OR_RETURN(const JsonValue* figures,
                   doc->Member("figures", JsonValue::Kind::kObject));
  for (const auto& [key, unused] : figures->object) {
    const auto& all = HardwareFigures();
    if (std::none_of(all.begin(), all.end(),
                     [&](const FigureBounds& f) { return key == f.name; }))
      return Invalid(absl::StrCat("figures.", key), "unknown figure");
  }
  for (const FigureBounds& f : HardwareFigures()) {
    const std::string at = absl::StrCat("figures.", f.name);
    auto it = figures->object.find(f.name);
    if (it == figures->object.end()) return Invalid(at, "missing");
    const JsonValue& v = it->second;
    if (v.kind != JsonValue::Kind::kObject)
      return Invalid(at, "expected {\"value\": N, \"source\": \"...\"}");
    RETURN_IF_ERROR(OnlyKeys(v, at + ".", {"value", "source"}));
    absl::StatusOr<double> value = v.Double("value");
    if (!value.ok()) return Invalid(at, value.status().message());
    p.*f.field = *value;
    if (v.object.count("source")) {
      absl::StatusOr<std::string> source = v.String("source");
      if (!source.ok()) return Invalid(at, source.status().message());
      p.sources[f.name] = *source;
    }
  }

  ASSIGN_OR_RETURN(const JsonValue* compute,
                   doc->Member("compute", JsonValue::Kind::kArray));
  if (compute->array.size() > 3) return Invalid("compute", "more than 3");
  for (size_t i = 0; i < compute->array.size(); ++i) {
    const JsonValue& c = compute->array[i];
    const std::string at = absl::StrCat("compute[", i, "]");
    if (c.kind != JsonValue::Kind::kObject) return Invalid(at, "not an object");
    RETURN_IF_ERROR(OnlyKeys(
        c, at + ".", {"precision", "peak_tflops", "achieved", "source"}));
    DeviceCompute d;
    absl::StatusOr<std::string> precision = c.String("precision");
    if (!precision.ok()) return Invalid(at, precision.status().message());
    ASSIGN_OR_RETURN(d.precision, ParsePrecision(at, *precision));
    absl::StatusOr<double> peak = c.Double("peak_tflops");
    if (!peak.ok()) return Invalid(at, peak.status().message());
    d.peak_tflops = *peak;
    if (c.object.count("source")) {
      absl::StatusOr<std::string> source = c.String("source");
      if (!source.ok()) return Invalid(at, source.status().message());
      d.source = *source;
    }
    absl::StatusOr<const JsonValue*> points =
        c.Member("achieved", JsonValue::Kind::kArray);
    if (!points.ok()) return Invalid(at, points.status().message());
    if ((*points)->array.size() > kMaxPoints)
      return Invalid(at + ".achieved", "too many points");
    for (size_t j = 0; j < (*points)->array.size(); ++j) {
      const JsonValue& q = (*points)->array[j];
      const std::string pt = absl::StrCat(at, ".achieved[", j, "]");
      if (q.kind != JsonValue::Kind::kObject)
        return Invalid(pt, "not an object");
      RETURN_IF_ERROR(OnlyKeys(q, pt + ".", {"hidden", "tflops"}));
      absl::StatusOr<int64_t> hidden = q.Int("hidden", 1, kMaxHidden);
      if (!hidden.ok()) return Invalid(pt, hidden.status().message());
      absl::StatusOr<double> tflops = q.Double("tflops");
      if (!tflops.ok()) return Invalid(pt, tflops.status().message());
      d.achieved.push_back({static_cast<int>(*hidden), *tflops});
    }
    p.compute.push_back(std::move(d));
  }

  if (doc->object.count("layer_timings")) {
    ASSIGN_OR_RETURN(const JsonValue* timings,
                     doc->Member("layer_timings", JsonValue::Kind::kArray));
    if (timings->array.size() > kMaxTimings)
      return Invalid("layer_timings", "too many entries");
    for (size_t i = 0; i < timings->array.size(); ++i) {
      const JsonValue& t = timings->array[i];
      const std::string at = absl::StrCat("layer_timings[", i, "]");
      if (t.kind != JsonValue::Kind::kObject)
        return Invalid(at, "not an object");
      RETURN_IF_ERROR(OnlyKeys(t, at + ".",
                               {"precision", "hidden", "heads", "seq_len",
                                "micro_batch", "forward_s", "backward_s"}));
      LayerTiming lt;
      absl::StatusOr<std::string> precision = t.String("precision");
      if (!precision.ok()) return Invalid(at, precision.status().message());
      ASSIGN_OR_RETURN(lt.precision, ParsePrecision(at, *precision));
      for (auto [key, field] :
           {std::pair<const char*, int*>{"hidden", &lt.hidden},
            {"heads", &lt.heads},
            {"seq_len", &lt.seq_len},
            {"micro_batch", &lt.micro_batch}}) {
        absl::StatusOr<int64_t> v = t.Int(key, 1, 1 << 20);
        if (!v.ok()) return Invalid(at, v.status().message());
        *field = static_cast<int>(*v);
      }
      for (auto [key, field] :
           {std::pair<const char*, double*>{"forward_s", &lt.forward_s},
            {"backward_s", &lt.backward_s}}) {
        absl::StatusOr<double> v = t.Double(key);
        if (!v.ok()) return Invalid(at, v.status().message());
        *field = *v;
      }
      p.layer_timings.push_back(lt);
    }
  }
  RETURN_IF_ERROR(ValidateHardwareProfile(p));
  return p;
}

std::string HardwareProfileToJson(const HardwareProfile& p) {
  std::string out = absl::StrCat(
      "{\n  \"name\": ", JsonQuoted(p.name),
      ",\n  \"description\": ", JsonQuoted(p.description),
      ",\n  \"device_is_host\": ", p.device_is_host ? "true" : "false",
      ",\n  \"figures\": {\n");
  const auto& figures = HardwareFigures();
  for (size_t i = 0; i < figures.size(); ++i) {
    const FigureBounds& f = figures[i];
    absl::StrAppend(&out, "    \"", f.name,
                    "\": {\"value\": ", Number(p.*f.field));
    if (auto it = p.sources.find(f.name); it != p.sources.end())
      absl::StrAppend(&out, ", \"source\": ", JsonQuoted(it->second));
    absl::StrAppend(&out, "}", i + 1 < figures.size() ? ",\n" : "\n");
  }
  absl::StrAppend(&out, "  },\n  \"compute\": [\n");
  for (size_t i = 0; i < p.compute.size(); ++i) {
    const DeviceCompute& c = p.compute[i];
    std::vector<std::string> points;
    for (const ComputePoint& q : c.achieved)
      points.push_back(absl::StrCat("{\"hidden\": ", q.hidden,
                                    ", \"tflops\": ", Number(q.tflops), "}"));
    absl::StrAppend(&out, "    {\"precision\": \"", PrecisionName(c.precision),
                    "\", \"peak_tflops\": ", Number(c.peak_tflops),
                    ", \"achieved\": [", absl::StrJoin(points, ", "),
                    "], \"source\": ", JsonQuoted(c.source), "}",
                    i + 1 < p.compute.size() ? ",\n" : "\n");
  }
  absl::StrAppend(&out, "  ],\n  \"layer_timings\": [");
  for (size_t i = 0; i < p.layer_timings.size(); ++i) {
    const LayerTiming& t = p.layer_timings[i];
    absl::StrAppend(&out, i == 0 ? "\n" : ",\n", "    {\"precision\": \"",
                    PrecisionName(t.precision), "\", \"hidden\": ", t.hidden,
                    ", \"heads\": ", t.heads, ", \"seq_len\": ", t.seq_len,
                    ", \"micro_batch\": ", t.micro_batch,
                    ", \"forward_s\": ", Number(t.forward_s),
                    ", \"backward_s\": ", Number(t.backward_s), "}");
  }
  absl::StrAppend(&out, p.layer_timings.empty() ? "]\n}\n" : "\n  ]\n}\n");
  return out;
}

absl::StatusOr<const DeviceCompute*> ComputeFor(const HardwareProfile& p,
                                                Precision precision) {
  const DeviceCompute* fallback = nullptr;
  for (const DeviceCompute& c : p.compute) {
    if (c.precision == precision) return &c;
    if (precision != Precision::kFp32 && c.precision != Precision::kFp32)
      fallback = &c;
  }
  if (fallback != nullptr) return fallback;
  return absl::NotFoundError(absl::StrCat("hardware profile ", p.name,
                                          " has no ", PrecisionName(precision),
                                          " compute figures"));
}

double AchievedTflops(const DeviceCompute& c, int hidden) {
  const std::vector<ComputePoint>& a = c.achieved;
  if (hidden <= a.front().hidden) return a.front().tflops;
  if (hidden >= a.back().hidden) return a.back().tflops;
  for (size_t i = 1; i < a.size(); ++i) {
    if (hidden > a[i].hidden) continue;
    const double x0 = std::log(a[i - 1].hidden), x1 = std::log(a[i].hidden);
    const double t = (std::log(hidden) - x0) / (x1 - x0);
    return a[i - 1].tflops + t * (a[i].tflops - a[i - 1].tflops);
  }
  return a.back().tflops;
}

double LayerForwardFlops(const JobConfig& c) {
  const double b = c.training.micro_batch, s = c.model.seq_len,
               h = c.model.hidden;
  if (!c.model.llama()) return 24 * b * s * h * h + 4 * b * s * s * h;
  // A step's model FLOPs are 3x the forward's: one layer's share, less the
  // head's.
  const ModelConfig& m = c.model;
  const double per_layer =
      (m.model_flops_per_step(/*batch=*/1) / 3.0 -
       2.0 * s * h * static_cast<double>(m.padded_vocab())) /
      m.layers;
  return b * per_layer;
}

double HeadForwardFlops(const JobConfig& c) {
  return 2.0 * c.training.micro_batch * c.model.seq_len * c.model.hidden *
         static_cast<double>(c.model.padded_vocab());
}

absl::StatusOr<LayerCost> LayerComputeCost(const HardwareProfile& p,
                                           const JobConfig& c) {
  const Precision precision = c.training.precision;
  for (const LayerTiming& t : p.layer_timings) {
    // Measured timings are of GPT blocks (core/profile/measure.cc).
    if (!c.model.llama() && t.precision == precision &&
        t.hidden == c.model.hidden && t.heads == c.model.heads &&
        t.seq_len == c.model.seq_len && t.micro_batch == c.training.micro_batch)
      return LayerCost{t.forward_s, t.backward_s, /*measured=*/true};
  }
  ASSIGN_OR_RETURN(const DeviceCompute* compute, ComputeFor(p, precision));
  const double rate = AchievedTflops(*compute, c.model.hidden) * kTera;
  const double forward = LayerForwardFlops(c) / rate;
  // Backward does twice the forward's FLOPs (two GEMMs per forward GEMM).
  return LayerCost{p.layer_overhead_s + forward,
                   p.layer_overhead_s + 2 * forward, /*measured=*/false};
}

std::vector<std::string> NamedHardwareProfiles() {
  std::vector<std::string> names;
  for (const auto& [name, json] : BuiltinHardwareProfileJson())
    names.push_back(name);
  return names;
}

absl::StatusOr<HardwareProfile> NamedHardwareProfile(absl::string_view name) {
  for (const auto& [n, json] : BuiltinHardwareProfileJson()) {
    if (n == name) return ParseHardwareProfile(json);
  }
  return absl::NotFoundError(absl::StrCat(
      "no hardware profile named \"", name.substr(0, 80),
      "\"; built in: ", absl::StrJoin(NamedHardwareProfiles(), ", ")));
}

}  // namespace stronghold::core
