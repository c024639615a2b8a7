#include "core/model/gpt_layout.h"

#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace stronghold::core {

int64_t TensorSlice::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const TensorSlice& BufferLayout::tensor(std::string_view tensor_name) const {
  for (const TensorSlice& t : tensors) {
    if (t.name == tensor_name) return t;
  }
  LOG(FATAL) << "no tensor " << tensor_name << " in buffer " << name;
}

namespace {

class LayoutBuilder {
 public:
  explicit LayoutBuilder(std::string name) { layout_.name = std::move(name); }
  LayoutBuilder& Add(std::string name, std::vector<int64_t> shape) {
    TensorSlice t{std::move(name), layout_.count, std::move(shape)};
    layout_.count += t.numel();
    layout_.tensors.push_back(std::move(t));
    return *this;
  }
  // Everything added so far is weight-decayed.
  LayoutBuilder& EndDecayed() {
    layout_.decay_count = layout_.count;
    return *this;
  }
  BufferLayout Build() { return std::move(layout_); }

 private:
  BufferLayout layout_;
};

}  // namespace

namespace {

// Every layout's size is the one ModelConfig computes (the planner's and the
// checkpoints' figures); a difference would corrupt the tiers' offsets.
BufferLayout Checked(BufferLayout layout, int64_t expected_count) {
  CHECK_EQ(layout.count, expected_count) << "layout of " << layout.name;
  return layout;
}

}  // namespace

BufferLayout EmbeddingLayout(const ModelConfig& m) {
  LayoutBuilder b("embedding");
  b.Add("wte.weight", {m.padded_vocab(), m.hidden});
  if (!m.llama()) b.Add("wpe.weight", {m.seq_len, m.hidden});
  return Checked(b.EndDecayed().Build(), m.embedding_parameters());
}

namespace {

BufferLayout GptBlockLayout(const ModelConfig& m, int layer) {
  const int64_t h = m.hidden;
  return LayoutBuilder(absl::StrCat("layers.", layer))
      .Add("attn.qkv.weight", {3 * h, h})
      .Add("attn.proj.weight", {h, h})
      .Add("mlp.fc1.weight", {4 * h, h})
      .Add("mlp.fc2.weight", {h, 4 * h})
      .EndDecayed()
      .Add("ln1.weight", {h})
      .Add("ln1.bias", {h})
      .Add("attn.qkv.bias", {3 * h})
      .Add("attn.proj.bias", {h})
      .Add("ln2.weight", {h})
      .Add("ln2.bias", {h})
      .Add("mlp.fc1.bias", {4 * h})
      .Add("mlp.fc2.bias", {h})
      .Build();
}

BufferLayout LlamaBlockLayout(const ModelConfig& m, int layer) {
  const int64_t h = m.hidden, hd = m.head_dim(), i = m.intermediate;
  const int64_t q = m.heads * hd, kv = m.key_value_heads() * hd;
  return LayoutBuilder(absl::StrCat("layers.", layer))
      .Add("attn.qkv.weight", {q + 2 * kv, h})  // q heads, k heads, v heads
      .Add("attn.proj.weight", {h, q})
      .Add("mlp.gate_up.weight", {2 * i, h})  // gate rows, then up rows
      .Add("mlp.down.weight", {h, i})
      .EndDecayed()
      .Add("ln1.weight", {h})  // RMSNorm gains
      .Add("ln2.weight", {h})
      .Build();
}

}  // namespace

BufferLayout BlockLayout(const ModelConfig& m, int layer) {
  return Checked(
      m.llama() ? LlamaBlockLayout(m, layer) : GptBlockLayout(m, layer),
      m.parameters_per_layer());
}

BufferLayout FinalNormLayout(const ModelConfig& m) {
  LayoutBuilder b("final_norm");
  if (!m.llama()) {
    b.EndDecayed().Add("lnf.weight", {m.hidden}).Add("lnf.bias", {m.hidden});
  } else {
    if (m.untied_head()) b.Add("lm_head.weight", {m.padded_vocab(), m.hidden});
    b.EndDecayed().Add("norm.weight", {m.hidden});
  }
  return Checked(b.Build(), m.final_parameters());
}

std::vector<BufferLayout> ModelLayout(const ModelConfig& m) {
  std::vector<BufferLayout> out;
  out.reserve(m.layers + 2);
  out.push_back(EmbeddingLayout(m));
  for (int i = 0; i < m.layers; ++i) out.push_back(BlockLayout(m, i));
  out.push_back(FinalNormLayout(m));
  return out;
}

}  // namespace stronghold::core
