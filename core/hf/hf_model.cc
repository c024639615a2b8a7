#include "core/hf/hf_model.h"

#include <cmath>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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
  } else if (arch == "LlamaForCausalLM" || arch == "MistralForCausalLM") {
    hf = absl::InvalidArgumentError(absl::StrCat(
        "architecture ", arch,
        " needs model.architecture llama, which this build does not have "
        "yet"));
  } else if (arch == "Qwen2ForCausalLM") {
    hf = absl::InvalidArgumentError(absl::StrCat(
        "architecture ", arch,
        " is not supported: its attention has q/k/v biases, which this "
        "trainer's llama layout does not"));
  } else {
    hf = absl::InvalidArgumentError(
        absl::StrCat("architecture ", JsonQuoted(arch),
                     " is not supported (supported: ", kGpt2Architecture, ")"));
  }
  if (!hf.ok()) return Invalid(name, hf.status().message());
  return hf;
}

absl::StatusOr<ModelConfig> ResolveHfModel(const HfModel& hf,
                                           const RequestedModel& requested) {
  ModelConfig m = hf.model;
  struct Check {
    const char* field;
    const std::optional<int>& value;
    int config_value;
    const char* config_key;
  };
  for (const Check& c : {
           Check{"model.layers", requested.layers, m.layers, "n_layer"},
           Check{"model.hidden", requested.hidden, m.hidden, "n_embd"},
           Check{"model.heads", requested.heads, m.heads, "n_head"},
           Check{"model.vocab", requested.vocab, m.vocab, "vocab_size"},
           Check{"model.vocab_multiple", requested.vocab_multiple, 1,
                 "(an imported vocabulary is never padded: 1)"},
       }) {
    if (c.value.has_value() && *c.value != c.config_value) {
      return absl::InvalidArgumentError(
          absl::StrCat(c.field, " ", *c.value, " contradicts config.json ",
                       c.config_key, " ", c.config_value));
    }
  }
  if (requested.seq_len.has_value()) {
    if (*requested.seq_len > hf.positions) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.seq_len ", *requested.seq_len,
                       " contradicts config.json n_positions ", hf.positions,
                       " (the position table has no rows beyond it)"));
    }
    m.seq_len = *requested.seq_len;
  }
  return m;
}

std::vector<HfTensor> HfTensorsOf(const HfModel& hf,
                                  const BufferLayout& layout) {
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
  // The tied head is wte; the causal masks older files carry are not
  // weights.
  return name == "lm_head.weight" || absl::EndsWith(name, ".attn.bias") ||
         absl::EndsWith(name, ".attn.masked_bias");
}

HfModel HfModelOf(const ModelConfig& model) {
  HfModel hf;
  hf.architecture = kGpt2Architecture;
  hf.model = model;
  hf.model.vocab = static_cast<int>(model.padded_vocab());
  hf.model.vocab_multiple = 1;
  hf.positions = model.seq_len;
  return hf;
}

std::string HfConfigJson(const ModelConfig& model) {
  const HfModel hf = HfModelOf(model);
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
