#include "core/hf/hf_model.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/util/json.h"
#include "core/util/status_macros.h"

namespace stronghold::core {

namespace {

absl::Status Invalid(absl::string_view name, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(name, ": ", what));
}

// An optional member: absent or null reads as `fallback`.
const JsonValue* Optional(const JsonValue& root, absl::string_view key) {
  auto it = root.object.find(std::string(key));
  if (it == root.object.end() || it->second.kind == JsonValue::Kind::kNull)
    return nullptr;
  return &it->second;
}

absl::StatusOr<bool> OptionalBool(const JsonValue& root, absl::string_view key,
                                  bool fallback) {
  const JsonValue* v = Optional(root, key);
  if (v == nullptr) return fallback;
  if (v->kind != JsonValue::Kind::kBool) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", key, "\" is ", JsonKindName(v->kind), ", not a boolean"));
  }
  return v->boolean;
}

// GPT2LMHeadModel: the options of transformers' GPT2Config that change the
// math are refused unless they are ours.
absl::StatusOr<HfModel> ParseGpt2(const JsonValue& root) {
  HfModel hf;
  hf.architecture = kGpt2Architecture;
  ModelConfig& m = hf.model;
  ASSIGN_OR_RETURN(int64_t layers, root.Int("n_layer", 1, kMaxLayers));
  ASSIGN_OR_RETURN(int64_t hidden, root.Int("n_embd", 1, kMaxHidden));
  ASSIGN_OR_RETURN(int64_t heads, root.Int("n_head", 1, kMaxHidden));
  ASSIGN_OR_RETURN(int64_t vocab, root.Int("vocab_size", 2, kMaxVocab));
  ASSIGN_OR_RETURN(int64_t positions, root.Int("n_positions", 1, kMaxSeqLen));
  m.layers = static_cast<int>(layers);
  m.hidden = static_cast<int>(hidden);
  m.heads = static_cast<int>(heads);
  m.vocab = static_cast<int>(vocab);
  m.seq_len = static_cast<int>(positions);
  m.vocab_multiple = 1;
  hf.positions = positions;
  if (hidden % heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "n_embd ", hidden, " is not a multiple of n_head ", heads));
  }
  if (const JsonValue* inner = Optional(root, "n_inner")) {
    ASSIGN_OR_RETURN(int64_t n, inner->AsInt64("\"n_inner\""));
    if (n != 4 * hidden) {
      return absl::InvalidArgumentError(absl::StrCat(
          "n_inner ", n,
          ": this trainer's GPT MLP is 4 * n_embd = ", 4 * hidden));
    }
  }
  if (const JsonValue* act = Optional(root, "activation_function")) {
    if (act->kind != JsonValue::Kind::kString ||
        (act->text != "gelu_new" && act->text != "gelu_pytorch_tanh")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "activation_function ", JsonQuoted(act->text),
          ": this trainer's GPT uses GELU with the tanh approximation "
          "(\"gelu_new\")"));
    }
  }
  if (const JsonValue* eps = Optional(root, "layer_norm_epsilon")) {
    ASSIGN_OR_RETURN(double e, eps->AsDouble("\"layer_norm_epsilon\""));
    if (e != 1e-5) {
      return absl::InvalidArgumentError(absl::StrCat(
          "layer_norm_epsilon ", e, ": this trainer's LayerNorm uses 1e-05"));
    }
  }
  struct Flag {
    const char* key;
    bool ours;
  };
  for (const Flag& f :
       {Flag{"tie_word_embeddings", true}, Flag{"scale_attn_weights", true},
        Flag{"scale_attn_by_inverse_layer_idx", false},
        Flag{"add_cross_attention", false}}) {
    ASSIGN_OR_RETURN(bool value, OptionalBool(root, f.key, f.ours));
    if (value != f.ours) {
      return absl::InvalidArgumentError(absl::StrCat(
          f.key, " ", value ? "true" : "false", ": this trainer's GPT needs ",
          f.ours ? "true" : "false"));
    }
  }
  return hf;
}

// An optional number member: absent or null reads as `fallback`.
absl::StatusOr<double> OptionalDouble(const JsonValue& root,
                                      absl::string_view key, double fallback) {
  const JsonValue* v = Optional(root, key);
  if (v == nullptr) return fallback;
  return v->AsDouble(absl::StrCat("\"", key, "\""));
}

// The RoPE base and variant: transformers 5 writes rope_parameters
// {rope_theta, rope_type}, 4.x rope_theta and rope_scaling. Only the plain
// ("default") rotation is ours; a scaled one (linear, dynamic, yarn,
// llama3, ...) is refused by name.
absl::StatusOr<double> ParseRope(const JsonValue& root) {
  ASSIGN_OR_RETURN(double theta, OptionalDouble(root, "rope_theta", 10000));
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    const JsonValue* rope = Optional(root, key);
    if (rope == nullptr) continue;
    if (rope->kind != JsonValue::Kind::kObject) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", key, "\" is ", JsonKindName(rope->kind), ", not an object"));
    }
    for (const char* type_key : {"rope_type", "type"}) {
      const JsonValue* type = Optional(*rope, type_key);
      if (type == nullptr) continue;
      if (type->kind != JsonValue::Kind::kString || type->text != "default") {
        return absl::InvalidArgumentError(absl::StrCat(
            key, ".", type_key, " ", JsonQuoted(type->text),
            ": RoPE scaling variants are not supported (only \"default\")"));
      }
    }
    ASSIGN_OR_RETURN(theta, OptionalDouble(*rope, "rope_theta", theta));
  }
  if (!(theta > 0) || theta > kMaxRopeTheta) {
    return absl::InvalidArgumentError(absl::StrCat(
        "rope_theta ", theta, " is outside (0, ", kMaxRopeTheta, "]"));
  }
  return theta;
}

// LlamaForCausalLM (and MistralForCausalLM without a sliding window): our
// llama layout. Options that change the math are refused unless ours.
absl::StatusOr<HfModel> ParseLlama(const JsonValue& root,
                                   const std::string& arch) {
  HfModel hf;
  hf.architecture = arch;
  ModelConfig& m = hf.model;
  m.architecture = Architecture::kLlama;
  ASSIGN_OR_RETURN(int64_t layers,
                   root.Int("num_hidden_layers", 1, kMaxLayers));
  ASSIGN_OR_RETURN(int64_t hidden, root.Int("hidden_size", 1, kMaxHidden));
  ASSIGN_OR_RETURN(int64_t heads,
                   root.Int("num_attention_heads", 1, kMaxHidden));
  ASSIGN_OR_RETURN(int64_t vocab, root.Int("vocab_size", 2, kMaxVocab));
  ASSIGN_OR_RETURN(int64_t inner,
                   root.Int("intermediate_size", 1, kMaxIntermediate));
  ASSIGN_OR_RETURN(int64_t positions,
                   root.Int("max_position_embeddings", 1, int64_t{1} << 24));
  int64_t kv = heads;
  if (Optional(root, "num_key_value_heads") != nullptr) {
    ASSIGN_OR_RETURN(kv, root.Int("num_key_value_heads", 1, heads));
  }
  if (hidden % heads != 0 || heads % kv != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hidden_size ", hidden, " must be a multiple of num_attention_heads ",
        heads, ", and that of num_key_value_heads ", kv));
  }
  if (Optional(root, "head_dim") != nullptr) {
    ASSIGN_OR_RETURN(int64_t head_dim, root.Int("head_dim", 1, kMaxHidden));
    if (head_dim != hidden / heads) {
      return absl::InvalidArgumentError(
          absl::StrCat("head_dim ", head_dim,
                       ": this trainer's llama uses hidden_size / "
                       "num_attention_heads = ",
                       hidden / heads));
    }
  }
  if (const JsonValue* act = Optional(root, "hidden_act")) {
    if (act->kind != JsonValue::Kind::kString || act->text != "silu") {
      return absl::InvalidArgumentError(
          absl::StrCat("hidden_act ", JsonQuoted(act->text),
                       ": this trainer's SwiGLU uses \"silu\""));
    }
  }
  if (const JsonValue* window = Optional(root, "sliding_window")) {
    return absl::InvalidArgumentError(
        absl::StrCat("sliding_window ", window->text,
                     ": sliding-window attention is not supported"));
  }
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    ASSIGN_OR_RETURN(bool bias, OptionalBool(root, key, false));
    if (bias) {
      return absl::InvalidArgumentError(absl::StrCat(
          key, " true: this trainer's llama layout has no biases"));
    }
  }
  ASSIGN_OR_RETURN(bool tied, OptionalBool(root, "tie_word_embeddings", false));
  ASSIGN_OR_RETURN(double eps, OptionalDouble(root, "rms_norm_eps", 1e-6));
  ASSIGN_OR_RETURN(double theta, ParseRope(root));
  m.layers = static_cast<int>(layers);
  m.hidden = static_cast<int>(hidden);
  m.heads = static_cast<int>(heads);
  m.kv_heads = static_cast<int>(kv);
  m.intermediate = static_cast<int>(inner);
  m.vocab = static_cast<int>(vocab);
  m.vocab_multiple = 1;
  m.norm_eps = eps;
  m.rope_theta = theta;
  m.tie_embeddings = tied;
  // RoPE has no table: a job trains on any length up to the model's
  // context; by default on at most kDefaultLlamaSeqLen of it.
  m.seq_len = static_cast<int>(std::min(positions, kDefaultLlamaSeqLen));
  hf.positions = positions;
  return hf;
}

}  // namespace

absl::StatusOr<HfModel> ParseHfConfig(absl::string_view text,
                                      absl::string_view name) {
  if (static_cast<int64_t>(text.size()) > kMaxHfConfigBytes) {
    return Invalid(name, absl::StrCat("is ", text.size(),
                                      " bytes, more than the limit of ",
                                      kMaxHfConfigBytes));
  }
  JsonOptions options;
  options.max_bytes = kMaxHfConfigBytes;
  options.max_values = 1 << 16;
  options.max_depth = 16;
  absl::StatusOr<JsonValue> root = ParseJson(text, options);
  if (!root.ok()) return Invalid(name, root.status().message());
  if (root->kind != JsonValue::Kind::kObject)
    return Invalid(name, "is not a JSON object");
  absl::StatusOr<const JsonValue*> archs =
      root->Member("architectures", JsonValue::Kind::kArray);
  if (!archs.ok()) return Invalid(name, archs.status().message());
  if ((*archs)->array.size() != 1 ||
      (*archs)->array[0].kind != JsonValue::Kind::kString) {
    return Invalid(name, "\"architectures\" must hold one string");
  }
  const std::string& arch = (*archs)->array[0].text;
  absl::StatusOr<HfModel> hf;
  if (arch == kGpt2Architecture) {
    hf = ParseGpt2(*root);
  } else if (arch == kLlamaArchitecture || arch == "MistralForCausalLM") {
    hf = ParseLlama(*root, arch);
  } else if (arch == "Qwen2ForCausalLM") {
    hf = absl::InvalidArgumentError(absl::StrCat(
        "architecture ", arch,
        " is not supported: its attention has q/k/v biases, which this "
        "trainer's llama layout does not"));
  } else {
    hf = absl::InvalidArgumentError(absl::StrCat(
        "architecture ", JsonQuoted(arch), " is not supported (supported: ",
        kGpt2Architecture, ", ", kLlamaArchitecture, ", MistralForCausalLM)"));
  }
  if (!hf.ok()) return Invalid(name, hf.status().message());
  return hf;
}

absl::StatusOr<ModelConfig> ResolveHfModel(const HfModel& hf,
                                           const RequestedModel& requested) {
  ModelConfig m = hf.model;
  const bool llama = m.llama();
  if (requested.architecture.has_value() &&
      *requested.architecture != m.architecture) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.architecture ", ArchitectureName(*requested.architecture),
        " contradicts config.json architectures ", hf.architecture));
  }
  // A requested field that contradicts config.json, naming both.
  auto text = [](auto v) {
    if constexpr (std::is_same_v<decltype(v), bool>) {
      return std::string(v ? "true" : "false");
    } else {
      return absl::StrCat(v);
    }
  };
  absl::Status contradiction;
  auto check = [&](const char* field, const auto& value, auto config_value,
                   const char* config_key) {
    if (!contradiction.ok() || !value.has_value() || *value == config_value)
      return;
    contradiction = absl::InvalidArgumentError(
        absl::StrCat(field, " ", text(*value), " contradicts config.json ",
                     config_key, " ", text(config_value)));
  };
  check("model.layers", requested.layers, m.layers,
        llama ? "num_hidden_layers" : "n_layer");
  check("model.hidden", requested.hidden, m.hidden,
        llama ? "hidden_size" : "n_embd");
  check("model.heads", requested.heads, m.heads,
        llama ? "num_attention_heads" : "n_head");
  check("model.vocab", requested.vocab, m.vocab, "vocab_size");
  check("model.vocab_multiple", requested.vocab_multiple, 1,
        "(an imported vocabulary is never padded: 1)");
  check("model.kv_heads", requested.kv_heads, m.key_value_heads(),
        "num_key_value_heads");
  check("model.intermediate", requested.intermediate, m.intermediate,
        "intermediate_size");
  if (llama) {
    check("model.rope_theta", requested.rope_theta, m.rope_theta, "rope_theta");
    check("model.norm_eps", requested.norm_eps, m.norm_eps, "rms_norm_eps");
    check("model.tie_embeddings", requested.tie_embeddings, m.tie_embeddings,
          "tie_word_embeddings");
  }
  RETURN_IF_ERROR(contradiction);
  if (requested.seq_len.has_value()) {
    if (*requested.seq_len > hf.positions) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model.seq_len ", *requested.seq_len, " contradicts config.json ",
          llama ? "max_position_embeddings " : "n_positions ", hf.positions,
          llama ? " (the model's context)"
                : " (the position table has no rows beyond it)"));
    }
    m.seq_len = *requested.seq_len;
  }
  return m;
}

namespace {

// Our llama layout's tensors as LlamaForCausalLM names them: q, k and v fill
// the rows of attn.qkv in that order, gate and up those of mlp.gate_up.
std::vector<HfTensor> LlamaTensorsOf(const HfModel& hf,
                                     const BufferLayout& layout) {
  const ModelConfig& m = hf.model;
  const int64_t h = m.hidden;
  std::vector<HfTensor> out;
  // `rows` of [rows, cols] (or [rows]) going to `target` from `first_row`.
  auto add = [&](std::string name, std::string target, int64_t first_row,
                 int64_t rows) {
    const TensorSlice& t = layout.tensor(target);
    std::vector<int64_t> shape = t.shape;
    shape[0] = rows;
    out.push_back({.name = std::move(name),
                   .shape = std::move(shape),
                   .target = std::move(target),
                   .target_row = first_row,
                   .rows = rows});
  };
  if (layout.name == "embedding") {
    add("model.embed_tokens.weight", "wte.weight", 0, m.vocab);
  } else if (layout.name == "final_norm") {
    add("model.norm.weight", "norm.weight", 0, h);
    if (m.untied_head()) add("lm_head.weight", "lm_head.weight", 0, m.vocab);
  } else {
    const std::string p = absl::StrCat(
        "model.layers.", layout.name.substr(std::string_view("layers.").size()),
        ".");
    const int64_t q = m.heads * m.head_dim();
    const int64_t kv = m.key_value_heads() * m.head_dim();
    const int64_t inner = m.intermediate;
    add(p + "input_layernorm.weight", "ln1.weight", 0, h);
    add(p + "self_attn.q_proj.weight", "attn.qkv.weight", 0, q);
    add(p + "self_attn.k_proj.weight", "attn.qkv.weight", q, kv);
    add(p + "self_attn.v_proj.weight", "attn.qkv.weight", q + kv, kv);
    add(p + "self_attn.o_proj.weight", "attn.proj.weight", 0, h);
    add(p + "post_attention_layernorm.weight", "ln2.weight", 0, h);
    add(p + "mlp.gate_proj.weight", "mlp.gate_up.weight", 0, inner);
    add(p + "mlp.up_proj.weight", "mlp.gate_up.weight", inner, inner);
    add(p + "mlp.down_proj.weight", "mlp.down.weight", 0, h);
  }
  return out;
}

}  // namespace

std::vector<HfTensor> HfTensorsOf(const HfModel& hf,
                                  const BufferLayout& layout) {
  if (hf.model.llama()) return LlamaTensorsOf(hf, layout);
  const ModelConfig& m = hf.model;
  const int64_t h = m.hidden;
  std::vector<HfTensor> out;
  // A tensor stored as ours is ([rows, ...] or [n]).
  auto plain = [&](std::string name, std::string target) {
    const TensorSlice& t = layout.tensor(target);
    out.push_back({.name = absl::StrCat("transformer.", name),
                   .alias = name,
                   .shape = t.shape,
                   .target = std::move(target),
                   .rows = t.shape[0]});
  };
  // A Conv1D weight, stored [in, out] = ours transposed.
  auto conv = [&](std::string name, std::string target) {
    const TensorSlice& t = layout.tensor(target);
    out.push_back({.name = absl::StrCat("transformer.", name),
                   .alias = name,
                   .shape = {t.shape[1], t.shape[0]},
                   .target = std::move(target),
                   .rows = t.shape[1],
                   .transposed = true});
  };
  if (layout.name == "embedding") {
    plain("wte.weight", "wte.weight");
    out.push_back({.name = "transformer.wpe.weight",
                   .alias = "wpe.weight",
                   .shape = {hf.positions, h},
                   .target = "wpe.weight",
                   .rows = m.seq_len});
  } else if (layout.name == "final_norm") {
    plain("ln_f.weight", "lnf.weight");
    plain("ln_f.bias", "lnf.bias");
  } else {
    const std::string p = absl::StrCat(
        "h.", layout.name.substr(std::string_view("layers.").size()), ".");
    plain(p + "ln_1.weight", "ln1.weight");
    plain(p + "ln_1.bias", "ln1.bias");
    conv(p + "attn.c_attn.weight", "attn.qkv.weight");
    plain(p + "attn.c_attn.bias", "attn.qkv.bias");
    conv(p + "attn.c_proj.weight", "attn.proj.weight");
    plain(p + "attn.c_proj.bias", "attn.proj.bias");
    plain(p + "ln_2.weight", "ln2.weight");
    plain(p + "ln_2.bias", "ln2.bias");
    conv(p + "mlp.c_fc.weight", "mlp.fc1.weight");
    plain(p + "mlp.c_fc.bias", "mlp.fc1.bias");
    conv(p + "mlp.c_proj.weight", "mlp.fc2.weight");
    plain(p + "mlp.c_proj.bias", "mlp.fc2.bias");
  }
  return out;
}

bool IgnoredHfTensor(const HfModel& hf, absl::string_view name) {
  if (hf.model.llama()) {
    // A tied head is the embedding; older files carry RoPE's frequencies.
    return (name == "lm_head.weight" && !hf.model.untied_head()) ||
           absl::EndsWith(name, ".rotary_emb.inv_freq");
  }
  // The tied head is wte; the causal masks older files carry are not
  // weights.
  return name == "lm_head.weight" || absl::EndsWith(name, ".attn.bias") ||
         absl::EndsWith(name, ".attn.masked_bias");
}

HfModel HfModelOf(const ModelConfig& model) {
  HfModel hf;
  hf.model = model;
  hf.positions = model.seq_len;
  if (model.llama()) {
    // The first `vocab` rows of the (possibly padded) buffers.
    hf.architecture = kLlamaArchitecture;
    return hf;
  }
  hf.architecture = kGpt2Architecture;
  hf.model.vocab = static_cast<int>(model.padded_vocab());
  hf.model.vocab_multiple = 1;
  return hf;
}

namespace {

std::string LlamaConfigJson(const ModelConfig& m) {
  return absl::StrCat(
      "{\n  \"architectures\": [\"", kLlamaArchitecture,
      "\"],\n  \"model_type\": \"llama\",\n  \"vocab_size\": ", m.vocab,
      ",\n  \"hidden_size\": ", m.hidden,
      ",\n  \"intermediate_size\": ", m.intermediate,
      ",\n  \"num_hidden_layers\": ", m.layers,
      ",\n  \"num_attention_heads\": ", m.heads,
      ",\n  \"num_key_value_heads\": ", m.key_value_heads(),
      ",\n  \"head_dim\": ", m.head_dim(),
      ",\n  \"max_position_embeddings\": ", m.seq_len,
      ",\n  \"hidden_act\": \"silu\",\n  \"rms_norm_eps\": ",
      absl::StrFormat("%.17g", m.norm_eps),
      ",\n  \"rope_theta\": ", absl::StrFormat("%.17g", m.rope_theta),
      ",\n  \"rope_scaling\": null,\n  \"attention_bias\": false,\n"
      "  \"attention_dropout\": 0.0,\n  \"mlp_bias\": false,\n"
      "  \"initializer_range\": 0.02,\n  \"tie_word_embeddings\": ",
      m.tie_embeddings ? "true" : "false",
      ",\n  \"use_cache\": true,\n  \"bos_token_id\": null,\n"
      "  \"eos_token_id\": null,\n  \"torch_dtype\": \"float32\"\n}\n");
}

}  // namespace

std::string HfConfigJson(const ModelConfig& model) {
  const HfModel hf = HfModelOf(model);
  if (model.llama()) return LlamaConfigJson(hf.model);
  const ModelConfig& m = hf.model;
  return absl::StrCat(
      "{\n  \"architectures\": [\"", kGpt2Architecture,
      "\"],\n  \"model_type\": \"gpt2\",\n  \"vocab_size\": ", m.vocab,
      ",\n  \"n_positions\": ", m.seq_len, ",\n  \"n_ctx\": ", m.seq_len,
      ",\n  \"n_embd\": ", m.hidden, ",\n  \"n_layer\": ", m.layers,
      ",\n  \"n_head\": ", m.heads,
      ",\n  \"n_inner\": null,\n  \"activation_function\": \"gelu_new\",\n"
      "  \"layer_norm_epsilon\": 1e-05,\n  \"resid_pdrop\": 0.0,\n"
      "  \"embd_pdrop\": 0.0,\n  \"attn_pdrop\": 0.0,\n"
      "  \"initializer_range\": 0.02,\n  \"scale_attn_weights\": true,\n"
      "  \"tie_word_embeddings\": true,\n  \"use_cache\": true,\n"
      "  \"bos_token_id\": null,\n  \"eos_token_id\": null,\n"
      "  \"torch_dtype\": \"float32\"\n}\n");
}

std::string HfGenerationConfigJson(const ModelConfig& model) {
  // What transformers writes for a model made from its config: no length
  // limit of our own (generate's max_length would override the caller's
  // max_new_tokens with a warning); n_positions bounds it.
  (void)model;
  return "{\n  \"_from_model_config\": true,\n  \"use_cache\": true\n}\n";
}

}  // namespace stronghold::core
