#include "core/checkpoint/checkpoint_manifest.h"

#include <algorithm>
#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/util/json.h"
#include "core/util/sha256.h"
#include "core/util/status_macros.h"

namespace stronghold::core {

namespace {

constexpr char kDigestKey[] = "\"manifest_sha256\": \"";
constexpr size_t kHexDigits = 64;

bool IsHexDigest(absl::string_view s) {
  return s.size() == kHexDigits && std::all_of(s.begin(), s.end(), [](char c) {
           return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f');
         });
}

// SHA-256 of `text` with the 64 characters at `at` read as '0's.
std::string DigestWithHole(absl::string_view text, size_t at) {
  Sha256 digest;
  digest.Update(text.data(), at);
  const std::string zeros(kHexDigits, '0');
  digest.Update(zeros.data(), zeros.size());
  digest.Update(text.data() + at + kHexDigits, text.size() - at - kHexDigits);
  return digest.HexDigest();
}

// %.17g: doubles survive the round trip through text exactly.
std::string Exact(double x) { return absl::StrFormat("%.17g", x); }

absl::Status Damaged(const std::string& path, absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat(path, ": damaged checkpoint manifest: ", what));
}

// Reads the fields shared by v1 and v2.
absl::Status ReadFiles(const JsonValue& root, CheckpointManifest& m) {
  ASSIGN_OR_RETURN(m.position.step, root.Int("step", 0));
  ASSIGN_OR_RETURN(const JsonValue* files,
                   root.Member("files", JsonValue::Kind::kArray));
  for (const JsonValue& f : files->array) {
    if (f.kind != JsonValue::Kind::kObject) {
      return absl::InvalidArgumentError("\"files\" must hold objects");
    }
    ManifestFile file;
    ASSIGN_OR_RETURN(file.name, f.String("name"));
    ASSIGN_OR_RETURN(file.bytes, f.Int("bytes", 0));
    ASSIGN_OR_RETURN(file.sha256, f.String("sha256"));
    // A name is opened inside the checkpoint directory: no separators, no
    // hidden or dot names, no control characters (a NUL would cut the path).
    if (file.name.empty() || file.name.find('/') != std::string::npos ||
        file.name[0] == '.' ||
        std::any_of(file.name.begin(), file.name.end(), [](char c) {
          return static_cast<unsigned char>(c) < 0x20;
        })) {
      return absl::InvalidArgumentError(absl::StrCat(
          "file name ", JsonQuoted(file.name), " is not a plain name"));
    }
    if (!IsHexDigest(file.sha256)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad digest of ", file.name));
    }
    if (m.file(file.name) != nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.name, " listed twice"));
    }
    m.files.push_back(std::move(file));
  }
  return absl::OkStatus();
}

// The llama fields (ManifestModel::architecture).
absl::Status ReadArchitecture(const JsonValue& model, ManifestModel& m) {
  ASSIGN_OR_RETURN(m.architecture, model.String("architecture"));
  if (m.architecture == "gpt") return absl::OkStatus();
  if (m.architecture != "llama") {
    return absl::InvalidArgumentError(
        absl::StrCat("model.architecture: \"", m.architecture,
                     "\" is neither \"gpt\" nor \"llama\""));
  }
  constexpr int64_t kIntMax = std::numeric_limits<int>::max();
  ASSIGN_OR_RETURN(m.kv_heads, model.Int("kv_heads", 1, kIntMax));
  ASSIGN_OR_RETURN(m.intermediate, model.Int("intermediate", 1, kIntMax));
  ASSIGN_OR_RETURN(m.rope_theta, model.Double("rope_theta"));
  ASSIGN_OR_RETURN(m.norm_eps, model.Double("norm_eps"));
  ASSIGN_OR_RETURN(const JsonValue* tie,
                   model.Member("tie_embeddings", JsonValue::Kind::kBool));
  m.tie_embeddings = tie->boolean;
  return absl::OkStatus();
}

absl::Status ReadV2(const JsonValue& root, CheckpointManifest& m) {
  ASSIGN_OR_RETURN(m.precision, root.String("precision"));
  ASSIGN_OR_RETURN(const JsonValue* model,
                   root.Member("model", JsonValue::Kind::kObject));
  // The model's sizes and the batch are ints: refused, not truncated, when
  // they do not fit.
  constexpr int64_t kIntMax = std::numeric_limits<int>::max();
  ASSIGN_OR_RETURN(m.model.layers, model->Int("layers", 1, kIntMax));
  ASSIGN_OR_RETURN(m.model.hidden, model->Int("hidden", 1, kIntMax));
  ASSIGN_OR_RETURN(m.model.heads, model->Int("heads", 1, kIntMax));
  ASSIGN_OR_RETURN(m.model.seq_len, model->Int("seq_len", 1, kIntMax));
  ASSIGN_OR_RETURN(m.model.vocab, model->Int("vocab", 1, kIntMax));
  // Optional: derived values, so a manifest parsed and written again is the
  // same text.
  if (model->object.count("vocab_multiple") > 0) {
    ASSIGN_OR_RETURN(
        m.model.vocab_multiple,
        model->Int("vocab_multiple", 1, ManifestModel::kMaxVocabMultiple));
  }
  if (model->object.count("padded_vocab") > 0) {
    ASSIGN_OR_RETURN(m.model.padded_vocab, model->Int("padded_vocab"));
  }
  if (model->object.count("parameters") > 0) {
    ASSIGN_OR_RETURN(m.model.parameters, model->Int("parameters"));
  }
  if (model->object.count("architecture") > 0) {
    RETURN_IF_ERROR(ReadArchitecture(*model, m.model));
  }
  ASSIGN_OR_RETURN(const JsonValue* t,
                   root.Member("training", JsonValue::Kind::kObject));
  TrainingPosition& p = m.position;
  ASSIGN_OR_RETURN(p.optimizer_step, t->Int("optimizer_step", 0));
  ASSIGN_OR_RETURN(p.seed, t->Uint("seed"));
  ASSIGN_OR_RETURN(p.batch, t->Int("batch", 1, kIntMax));
  ASSIGN_OR_RETURN(p.next_sample, t->Int("next_sample", 0));
  ASSIGN_OR_RETURN(p.lr, t->Double("lr"));
  ASSIGN_OR_RETURN(p.next_lr, t->Double("next_lr"));
  // Optional: absent before mixed precision and in fp32/bf16 checkpoints.
  if (t->object.count("loss_scale") > 0) {
    ASSIGN_OR_RETURN(p.loss_scale, t->Double("loss_scale"));
    // 0 means "none" and is written by leaving the member out; a scale of
    // 0 or below would flip or zero every gradient of a resumed fp16 job.
    if (!(p.loss_scale > 0)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"loss_scale\" must be > 0 when present, got ", p.loss_scale));
    }
    ASSIGN_OR_RETURN(p.loss_scale_good_steps,
                     t->Int("loss_scale_good_steps", 0));
  }
  return absl::OkStatus();
}

}  // namespace

const ManifestFile* CheckpointManifest::file(absl::string_view name) const {
  for (const ManifestFile& f : files) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string ManifestToJson(const CheckpointManifest& m) {
  const TrainingPosition& p = m.position;
  std::string out = absl::StrCat(
      "{\n  \"format\": ", JsonQuoted(m.format), ",\n  \"step\": ", p.step,
      ",\n  \"precision\": ", JsonQuoted(m.precision), ",\n");
  absl::StrAppend(
      &out, "  \"model\": {\"layers\": ", m.model.layers,
      ", \"hidden\": ", m.model.hidden, ", \"heads\": ", m.model.heads,
      ", \"seq_len\": ", m.model.seq_len, ", \"vocab\": ", m.model.vocab,
      ", \"vocab_multiple\": ", m.model.vocab_multiple,
      ", \"padded_vocab\": ", m.model.padded_vocab,
      ", \"parameters\": ", m.model.parameters);
  if (m.model.architecture != "gpt") {
    absl::StrAppend(
        &out, ", \"architecture\": ", JsonQuoted(m.model.architecture),
        ", \"kv_heads\": ", m.model.kv_heads,
        ", \"intermediate\": ", m.model.intermediate,
        ", \"rope_theta\": ", Exact(m.model.rope_theta),
        ", \"norm_eps\": ", Exact(m.model.norm_eps),
        ", \"tie_embeddings\": ", m.model.tie_embeddings ? "true" : "false");
  }
  absl::StrAppend(&out, "},\n");
  absl::StrAppend(
      &out, "  \"training\": {\"optimizer\": \"AdamW\", ",
      "\"optimizer_step\": ", p.optimizer_step, ", \"seed\": ", p.seed,
      ", \"batch\": ", p.batch, ", \"next_sample\": ", p.next_sample,
      ", \"lr\": ", Exact(p.lr), ", \"next_lr\": ", Exact(p.next_lr));
  if (p.loss_scale > 0) {
    absl::StrAppend(&out, ", \"loss_scale\": ", Exact(p.loss_scale),
                    ", \"loss_scale_good_steps\": ", p.loss_scale_good_steps);
  }
  absl::StrAppend(&out, "},\n");
  absl::StrAppend(&out, "  \"files\": [");
  for (size_t i = 0; i < m.files.size(); ++i) {
    const ManifestFile& f = m.files[i];
    absl::StrAppend(
        &out, i == 0 ? "\n" : ",\n", "    {\"name\": ", JsonQuoted(f.name),
        ", \"bytes\": ", f.bytes, ", \"sha256\": \"", f.sha256, "\"}");
  }
  absl::StrAppend(&out, "\n  ],\n  ", kDigestKey);
  const size_t hole = out.size();
  absl::StrAppend(&out, std::string(kHexDigits, '0'), "\"\n}\n");
  const std::string digest = DigestWithHole(out, hole);
  out.replace(hole, kHexDigits, digest);
  return out;
}

absl::StatusOr<CheckpointManifest> ParseManifest(absl::string_view text,
                                                 const std::string& path) {
  absl::StatusOr<JsonValue> root = ParseJson(text);
  if (!root.ok()) return Damaged(path, root.status().message());
  if (root->kind != JsonValue::Kind::kObject) {
    return Damaged(path, "not a JSON object");
  }
  CheckpointManifest m;
  absl::StatusOr<std::string> format = root->String("format");
  if (!format.ok()) return Damaged(path, format.status().message());
  m.format = *format;
  if (m.format == kCheckpointFormat) {
    const size_t at = text.find(kDigestKey);
    if (at == absl::string_view::npos ||
        text.find(kDigestKey, at + 1) != absl::string_view::npos) {
      return Damaged(path, "no single \"manifest_sha256\"");
    }
    const size_t hole = at + sizeof(kDigestKey) - 1;
    const absl::string_view recorded = text.substr(hole, kHexDigits);
    if (!IsHexDigest(recorded) || DigestWithHole(text, hole) != recorded) {
      return Damaged(path, "its SHA-256 does not match \"manifest_sha256\"");
    }
    absl::Status s = ReadV2(*root, m);
    if (!s.ok()) return Damaged(path, s.message());
  } else if (m.format != kCheckpointFormatV1) {
    return Damaged(path, absl::StrCat("unknown format \"", m.format, "\""));
  }
  absl::Status s = ReadFiles(*root, m);
  if (!s.ok()) return Damaged(path, s.message());
  return m;
}

}  // namespace stronghold::core
