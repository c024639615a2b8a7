// Every conversion of server/proto_convert.h over every field. Protobuf
// reflection sets every field of a JobSpec (nested messages, repeated
// fields, enums to each non-default value) and checks that it survives
// JobSpec -> JobConfig -> JobSpec; and it checks that converting a
// StepMetrics or a MemoryPlan whose every field is set leaves no field of the
// proto at its default. So a field added to the proto without a conversion
// fails here; a field added to the engine's structs fails the member counts
// below until the conversion and this test carry it.
#include "server/proto_convert.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/message_differencer.h>

#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace stronghold::server {
namespace {

namespace v1 = ::stronghold::v1;
using google::protobuf::Descriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// The number of members of aggregate T: the most initializers T{...}
// accepts. Catches a member added to an engine struct that the conversions
// (and the tables below) do not know about.
struct AnyMember {
  template <typename T>
  operator T() const {
    return T{};
  }
};
template <typename T, typename... Members>
constexpr int MemberCount() {
  if constexpr (requires { T{Members{}..., AnyMember{}}; }) {
    return MemberCount<T, Members..., AnyMember>();
  } else {
    return sizeof...(Members);
  }
}

// Sets every field of `message`, recursively, to a value that is not the
// default and that no other field has: numbers count up from *next,
// strings are "v<n>", bools true, repeated fields get two elements, and
// enums their `enum_pick`-th non-zero value (modulo their count).
void FillEveryField(Message* message, int* next, int enum_pick) {
  const Descriptor* d = message->GetDescriptor();
  const Reflection* r = message->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    for (int k = 0; k < (f->is_repeated() ? 2 : 1); ++k) {
      const int v = (*next)++;
      const bool rep = f->is_repeated();
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_MESSAGE:
          FillEveryField(
              rep ? r->AddMessage(message, f) : r->MutableMessage(message, f),
              next, enum_pick);
          break;
        case FieldDescriptor::CPPTYPE_INT32:
          rep ? r->AddInt32(message, f, v) : r->SetInt32(message, f, v);
          break;
        case FieldDescriptor::CPPTYPE_INT64:
          rep ? r->AddInt64(message, f, v) : r->SetInt64(message, f, v);
          break;
        case FieldDescriptor::CPPTYPE_UINT32:
          rep ? r->AddUInt32(message, f, v) : r->SetUInt32(message, f, v);
          break;
        case FieldDescriptor::CPPTYPE_UINT64:
          rep ? r->AddUInt64(message, f, v) : r->SetUInt64(message, f, v);
          break;
        case FieldDescriptor::CPPTYPE_DOUBLE:
          rep ? r->AddDouble(message, f, v + 0.25)
              : r->SetDouble(message, f, v + 0.25);
          break;
        case FieldDescriptor::CPPTYPE_FLOAT:
          rep ? r->AddFloat(message, f, v + 0.25f)
              : r->SetFloat(message, f, v + 0.25f);
          break;
        case FieldDescriptor::CPPTYPE_BOOL:
          rep ? r->AddBool(message, f, true) : r->SetBool(message, f, true);
          break;
        case FieldDescriptor::CPPTYPE_STRING: {
          const std::string s = "v" + std::to_string(v);
          rep ? r->AddString(message, f, s) : r->SetString(message, f, s);
          break;
        }
        case FieldDescriptor::CPPTYPE_ENUM: {
          std::vector<const EnumValueDescriptor*> values;
          for (int e = 0; e < f->enum_type()->value_count(); ++e) {
            if (f->enum_type()->value(e)->number() != 0) {
              values.push_back(f->enum_type()->value(e));
            }
          }
          ASSERT_FALSE(values.empty()) << f->full_name();
          const EnumValueDescriptor* e = values[enum_pick % values.size()];
          rep ? r->AddEnum(message, f, e) : r->SetEnum(message, f, e);
          break;
        }
      }
    }
  }
}

// Every field of `message` (recursively, named by path) that is at its
// default: unset, empty, zero, false.
std::vector<std::string> DefaultFields(const Message& message,
                                       const std::string& prefix = "") {
  std::vector<std::string> out;
  const Descriptor* d = message.GetDescriptor();
  const Reflection* r = message.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string name = prefix + f->name();
    if (f->is_repeated() ? r->FieldSize(message, f) == 0
                         : !r->HasField(message, f)) {
      out.push_back(name);
    } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      const int n = f->is_repeated() ? r->FieldSize(message, f) : 1;
      for (int k = 0; k < n; ++k) {
        const Message& m = f->is_repeated()
                               ? r->GetRepeatedMessage(message, f, k)
                               : r->GetMessage(message, f);
        for (std::string& s : DefaultFields(m, name + ".")) {
          out.push_back(std::move(s));
        }
      }
    }
  }
  return out;
}

std::string Differences(const Message& a, const Message& b) {
  std::string report;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&report);
  differencer.Compare(a, b);
  return report;
}

TEST(ProtoConvertTest, EveryJobSpecFieldSurvivesJobConfigAndBack) {
  // The engine's structs, member by member (a new one must reach the
  // proto: ToJobSpec, ToJobConfig and this test). OffloadConfig's last
  // member, host_checkpoints, is resolved by the planner, not asked.
  EXPECT_EQ(MemberCount<core::JobConfig>(), 7);
  EXPECT_EQ(MemberCount<core::DistributedConfig>(), 7);
  EXPECT_EQ(MemberCount<core::ModelConfig>(), 12);
  EXPECT_EQ(MemberCount<core::TrainingConfig>(), 14);
  // OffloadConfig's `automatic` is which options were left unset: all set
  // here (round trip of an unset one: AutomaticOptionsStayUnset).
  EXPECT_EQ(MemberCount<core::OffloadConfig>(), 10);
  EXPECT_EQ(MemberCount<core::DataConfig>(), 2);
  EXPECT_EQ(MemberCount<core::CheckpointConfig>(), 2);

  // Each enum through each of its values (PRECISION_UNSPECIFIED and
  // OFFLOAD_METHOD_UNSPECIFIED mean defaults, so they cannot come back).
  for (int enum_pick = 0; enum_pick < 3; ++enum_pick) {
    v1::JobSpec spec;
    int next = 1;
    FillEveryField(&spec, &next, enum_pick);
    ASSERT_EQ(DefaultFields(spec), std::vector<std::string>{});
    // resume_from and init_from are the daemon's, not the engine's: the job
    // manager keeps them on the stored spec (proto_convert.h).
    spec.clear_resume_from();
    spec.clear_init_from();

    const v1::JobSpec back = ToJobSpec(ToJobConfig(spec));
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(spec, back))
        << "enum pick " << enum_pick << ":\n"
        << Differences(spec, back);
  }
}

// The speed options a spec leaves unset are automatic in the config and
// stay unset in the spec made from it; set ones (false and 0 included) are
// not automatic.
TEST(ProtoConvertTest, AutomaticOptionsStayUnset) {
  v1::JobSpec spec;
  core::JobConfig c = ToJobConfig(spec);
  EXPECT_TRUE(c.offload.automatic.speculative_updates);
  EXPECT_TRUE(c.offload.automatic.device_embedding_optimizer);
  EXPECT_TRUE(c.offload.automatic.device_resident_layers);
  v1::OffloadSpec back = ToJobSpec(c).offload();
  EXPECT_FALSE(back.has_speculative_updates());
  EXPECT_FALSE(back.has_device_embedding_optimizer());
  EXPECT_FALSE(back.has_device_resident_layers());

  spec.mutable_offload()->set_speculative_updates(false);
  spec.mutable_offload()->set_device_resident_layers(0);
  c = ToJobConfig(spec);
  EXPECT_FALSE(c.offload.automatic.speculative_updates);
  EXPECT_TRUE(c.offload.automatic.device_embedding_optimizer);
  EXPECT_FALSE(c.offload.automatic.device_resident_layers);
  back = ToJobSpec(c).offload();
  EXPECT_TRUE(back.has_speculative_updates());
  EXPECT_FALSE(back.has_device_embedding_optimizer());
  EXPECT_TRUE(back.has_device_resident_layers());
}

// A single-rank job (no section, or world_size 1) converts to exactly the
// spec it had before ranks existed: no distributed section.
TEST(ProtoConvertTest, OneRankHasNoDistributedSection) {
  v1::JobSpec spec;
  EXPECT_FALSE(ToJobSpec(ToJobConfig(spec)).has_distributed());
  spec.mutable_distributed()->set_world_size(1);
  spec.mutable_distributed()->set_job_key("whatever-key");
  EXPECT_FALSE(ToJobSpec(ToJobConfig(spec)).has_distributed());
  spec.mutable_distributed()->set_world_size(0);  // 0 = 1
  EXPECT_FALSE(ToJobConfig(spec).distributed.enabled());
}

TEST(ProtoConvertTest, DistributedDefaults) {
  v1::JobSpec spec;
  spec.mutable_distributed()->set_world_size(2);
  const core::JobConfig c = ToJobConfig(spec);
  EXPECT_TRUE(c.distributed.enabled());
  EXPECT_EQ(c.distributed.collective_timeout_s,
            core::kDefaultCollectiveTimeoutS);
}

TEST(ProtoConvertTest, RedactionHidesOnlyTheJobKey) {
  v1::Job job;
  v1::DistributedSpec* d = job.mutable_spec()->mutable_distributed();
  d->set_world_size(2);
  d->set_rank(1);
  d->set_master_addr("node-0");
  d->set_job_key("the-real-secret");
  RedactSecrets(&job);
  EXPECT_EQ(job.spec().distributed().job_key(), core::kRedactedJobKey);
  EXPECT_EQ(job.spec().distributed().master_addr(), "node-0");
  EXPECT_EQ(job.spec().distributed().rank(), 1);
  EXPECT_EQ(job.SerializeAsString().find("the-real-secret"), std::string::npos);
  v1::Job single;  // nothing to hide: no section appears
  RedactSecrets(&single);
  EXPECT_FALSE(single.spec().has_distributed());
}

// A llama spec that names neither kv_heads nor intermediate gets heads and
// DefaultIntermediate(hidden); its effective spec shows every llama field.
// A GPT's effective spec shows none of them.
TEST(ProtoConvertTest, LlamaDefaultsAndGptSpecsWithoutLlamaFields) {
  v1::JobSpec spec;
  spec.mutable_model()->set_architecture(v1::LLAMA);
  spec.mutable_model()->set_hidden(96);
  spec.mutable_model()->set_heads(6);
  const core::JobConfig c = ToJobConfig(spec);
  EXPECT_TRUE(c.model.llama());
  EXPECT_EQ(c.model.kv_heads, 6);
  EXPECT_EQ(c.model.intermediate, 256);
  EXPECT_EQ(c.model.rope_theta, 10000);
  EXPECT_EQ(c.model.norm_eps, 1e-5);
  EXPECT_FALSE(c.model.tie_embeddings);
  const v1::ModelSpec back = ToJobSpec(c).model();
  EXPECT_EQ(back.architecture(), v1::LLAMA);
  EXPECT_TRUE(back.has_kv_heads() && back.has_intermediate() &&
              back.has_rope_theta() && back.has_norm_eps() &&
              back.has_tie_embeddings());

  const v1::ModelSpec gpt = ToJobSpec(ToJobConfig(v1::JobSpec())).model();
  EXPECT_EQ(gpt.architecture(), v1::GPT);
  EXPECT_FALSE(gpt.has_kv_heads() || gpt.has_intermediate() ||
               gpt.has_rope_theta() || gpt.has_norm_eps() ||
               gpt.has_tie_embeddings())
      << gpt.DebugString();
}

TEST(ProtoConvertTest, UnsetOptionalFieldsTakeTheDefaults) {
  const core::JobConfig defaults;
  const core::JobConfig c = ToJobConfig(v1::JobSpec());
  EXPECT_EQ(c.model.layers, defaults.model.layers);
  EXPECT_EQ(c.training.lr, defaults.training.lr);
  EXPECT_EQ(c.training.micro_batch, c.training.batch) << "no accumulation";
  EXPECT_EQ(c.data.source, "builtin");
  EXPECT_EQ(c.offload.method, core::OffloadMethod::kResident);
  EXPECT_EQ(c.training.precision, core::Precision::kFp32);
}

TEST(ProtoConvertTest, EveryStepMetricsFieldReachesTheProto) {
  ASSERT_EQ(MemberCount<core::StepMetrics>(), 28)
      << "a StepMetrics member was added: carry it in ToStepMetrics "
         "(proto/stronghold/v1/stronghold.proto) and list it below";
  core::StepMetrics s;
  s.step = 3;
  s.steps = 30;
  s.loss = 2.5;
  s.lr = 1e-3;
  s.grad_norm = 0.75;
  s.step_s = 1.5;
  s.compute_s = 0.5;
  s.optimizer_s = 0.125;
  s.h2d_wait_s = 0.0625;
  s.d2h_wait_s = 0.03125;
  s.nvme_wait_s = 0.015625;
  s.samples_per_s = 16;
  s.tokens_per_s = 1024;
  s.model_tflops = 0.004;
  s.window = 2;
  s.device_peak_bytes = 4096;
  s.h2d_bytes = 5000;
  s.d2h_bytes = 6000;
  s.nvme_read_bytes = 7000;
  s.nvme_reused_bytes = 8000;
  s.nvme_write_bytes = 9000;
  s.nvme_unplanned_reads = 11;
  s.loss_scale = 65536;
  s.skipped = true;
  s.rolled_back = true;
  s.layer_forward_s = 0.25;
  s.layer_backward_s = 0.375;
  s.layer_optimizer_s = 0.75;

  const v1::StepMetrics m = ToStepMetrics(s, /*device_peak_flops=*/8e9);
  // predicted_step_s is the run's, not the step's: the job runner sets it
  // (server/job_runner.cc).
  EXPECT_EQ(DefaultFields(m), std::vector<std::string>{"predicted_step_s"});
  // Each StepMetrics field by name, from the core::StepMetrics member of that
  // name; the list must cover the proto (mfu is derived).
  const std::vector<std::pair<std::string, double>> expected = {
      {"step", s.step},
      {"total_steps", s.steps},
      {"loss", s.loss},
      {"lr", s.lr},
      {"grad_norm", s.grad_norm},
      {"step_s", s.step_s},
      {"compute_s", s.compute_s},
      {"optimizer_s", s.optimizer_s},
      {"h2d_wait_s", s.h2d_wait_s},
      {"d2h_wait_s", s.d2h_wait_s},
      {"nvme_wait_s", s.nvme_wait_s},
      {"samples_per_s", s.samples_per_s},
      {"tokens_per_s", s.tokens_per_s},
      {"model_tflops", s.model_tflops},
      {"window", s.window},
      {"device_peak_bytes", static_cast<double>(s.device_peak_bytes)},
      {"h2d_bytes", static_cast<double>(s.h2d_bytes)},
      {"d2h_bytes", static_cast<double>(s.d2h_bytes)},
      {"nvme_read_bytes", static_cast<double>(s.nvme_read_bytes)},
      {"nvme_reused_bytes", static_cast<double>(s.nvme_reused_bytes)},
      {"nvme_write_bytes", static_cast<double>(s.nvme_write_bytes)},
      {"nvme_unplanned_reads", static_cast<double>(s.nvme_unplanned_reads)},
      {"loss_scale", s.loss_scale},
      {"skipped", 1},
      {"rolled_back", 1},
      {"layer_forward_s", s.layer_forward_s},
      {"layer_backward_s", s.layer_backward_s},
      {"layer_optimizer_s", s.layer_optimizer_s},
      {"mfu", 0.004e12 / 8e9},
  };
  EXPECT_EQ(static_cast<int>(expected.size()) + 1,  // + predicted_step_s
            v1::StepMetrics::descriptor()->field_count());
  const Reflection* r = m.GetReflection();
  for (const auto& [name, value] : expected) {
    const FieldDescriptor* f =
        v1::StepMetrics::descriptor()->FindFieldByName(name);
    ASSERT_NE(f, nullptr) << name;
    double got = 0;
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
        got = r->GetInt32(m, f);
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        got = r->GetInt64(m, f);
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        got = r->GetDouble(m, f);
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        got = r->GetBool(m, f);
        break;
      default:
        ADD_FAILURE() << name << ": unexpected type";
    }
    EXPECT_DOUBLE_EQ(got, value) << name;
  }
  // An unknown peak leaves MFU unknown (0), not infinite.
  EXPECT_EQ(ToStepMetrics(s, /*device_peak_flops=*/0).mfu(), 0);
}

TEST(ProtoConvertTest, EveryMemoryPlanFieldReachesTheProto) {
  ASSERT_EQ(MemberCount<core::ExecutionPlan>(), 31)
      << "an ExecutionPlan member was added: carry it in ToProto";
  ASSERT_EQ(MemberCount<core::PlannedBuffer>(), 4)
      << "a PlannedBuffer member was added: carry it in ToProto";
  core::ExecutionPlan p;
  p.method = core::OffloadMethod::kL2L;
  p.reference = true;
  p.automatic_window = true;
  p.slots = 17;
  p.host_checkpoints = true;
  p.kept_follows_window = true;
  p.device_resident_layers = 18;
  p.device_embedding_optimizer = true;
  p.speculative_updates = true;
  p.parameters = 1;
  p.parameters_per_layer = 2;
  p.bytes_device = 3;
  p.bytes_pinned = 4;
  p.bytes_host = 5;
  p.bytes_ssd = 6;
  p.budget_device_bytes = 7;
  p.budget_host_bytes = 8;
  p.fits = true;
  p.reason = "nine";
  p.window = 10;
  p.ssd_layers = 11;
  p.ssd_weight_layers = 12;
  p.ssd_grads_transient = true;
  p.kept_activation_layers = 13;
  p.device = "cpu";
  p.model_flops_per_step = 14.5;
  p.world_size = 19;
  p.rank_parameters = 20;
  p.rank_parameters_per_layer = 21;
  p.d2h_bytes_per_step = 22;
  p.buffers = {{.name = "a", .tier = "host", .bytes = 15, .shape = "[15]"},
               {.name = "b", .tier = "ssd", .bytes = 16, .shape = "[16]"}};

  const v1::MemoryPlan m = ToProto(p);
  // max_layers takes a search over plans (core::MaxTrainableLayers),
  // prediction a hardware profile (PlanJobRequest.predict) and
  // automatic_choice the job's admission (ResolveJob): JobManager sets them,
  // not the conversion.
  EXPECT_EQ(DefaultFields(m),
            (std::vector<std::string>{"max_layers", "automatic_choice",
                                      "prediction"}));
  EXPECT_EQ(m.world_size(), 19);
  EXPECT_EQ(m.rank_parameters(), 20);
  EXPECT_EQ(m.rank_parameters_per_layer(), 21);
  EXPECT_EQ(m.d2h_bytes_per_step(), 22);
  EXPECT_EQ(m.parameters(), 1);
  EXPECT_EQ(m.parameters_per_layer(), 2);
  EXPECT_EQ(m.device_bytes(), 3);
  EXPECT_EQ(m.pinned_bytes(), 4);
  EXPECT_EQ(m.host_bytes(), 5);
  EXPECT_EQ(m.ssd_bytes(), 6);
  EXPECT_EQ(m.device_budget_bytes(), 7);
  EXPECT_EQ(m.host_budget_bytes(), 8);
  EXPECT_TRUE(m.fits());
  EXPECT_EQ(m.reason(), "nine");
  EXPECT_EQ(m.window(), 10);
  EXPECT_EQ(m.ssd_layers(), 11);
  EXPECT_EQ(m.ssd_weight_layers(), 12);
  EXPECT_TRUE(m.ssd_grads_transient());
  EXPECT_EQ(m.kept_activation_layers(), 13);
  EXPECT_EQ(m.device(), "cpu");
  EXPECT_EQ(m.model_flops_per_step(), 14.5);
  EXPECT_EQ(m.method(), v1::L2L);
  EXPECT_TRUE(m.reference());
  EXPECT_TRUE(m.automatic_window());
  EXPECT_EQ(m.slots(), 17);
  EXPECT_TRUE(m.host_checkpoints());
  EXPECT_TRUE(m.kept_follows_window());
  EXPECT_EQ(m.device_resident_layers(), 18);
  EXPECT_TRUE(m.device_embedding_optimizer());
  EXPECT_TRUE(m.speculative_updates());
  ASSERT_EQ(m.buffers_size(), 2);
  EXPECT_EQ(m.buffers(1).name(), "b");
  EXPECT_EQ(m.buffers(1).tier(), "ssd");
  EXPECT_EQ(m.buffers(1).bytes(), 16);
  EXPECT_EQ(m.buffers(1).shape(), "[16]");
}

}  // namespace
}  // namespace stronghold::server
