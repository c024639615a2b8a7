// `fetch JOB [--step N] --out DIR`: downloads a whole checkpoint (every file
// its manifest lists, the manifest last, so DIR holds a complete checkpoint
// once manifest.json appears), or one file with --file.
//
// The checkpoint is pinned before anything is downloaded and remembered in
// DIR/.fetch: a fetch that is interrupted and run again continues the same
// checkpoint, even if the job has written newer ones meanwhile, and each file
// continues from its DIR/<file>.part (see checkpoint_writer.h). Every file is
// checked against the daemon's SHA-256 and the manifest's.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/checkpoint_writer.h"
#include "client/commands.h"
#include "client/daemon_client.h"
#include "client/human_format.h"
#include "client/json_output.h"
#include "client/table.h"
#include "core/checkpoint/checkpoint_files.h"
#include "core/checkpoint/checkpoint_manifest.h"
#include "core/util/file_util.h"
#include "core/util/json.h"
#include "core/util/sha256.h"
#include "core/util/status_macros.h"

namespace stronghold::client {
namespace {

namespace fs = std::filesystem;

// Remembers the pinned checkpoint of an unfinished fetch.
constexpr char kPinFile[] = ".fetch";

struct FetchOptions {
  std::string job;         // "jobs/7"
  std::string out_dir;     // where the files go
  std::string checkpoint;  // empty = the pinned one, else the newest
  std::string file;        // empty = every file of the checkpoint
  std::string format;      // "" = the checkpoint's files; "hf" = its export
};

// The Hugging Face export's files that are not shards (the shards are named
// by the index).
constexpr char kHfIndexFile[] = "model.safetensors.index.json";
constexpr const char* kHfFiles[] = {"config.json", "generation_config.json",
                                    kHfIndexFile};

struct Fetched {
  std::string path;
  int64_t bytes = 0;
  std::string sha256;
};

// Picks the checkpoint: the one asked for, else the one an interrupted
// fetch of the same job into `out_dir` pinned, else the newest.
absl::StatusOr<std::string> PinCheckpoint(const FetchOptions& options,
                                          const v1::Job& job,
                                          CommandContext& context) {
  const auto& names = job.checkpoints();
  auto listed = [&](const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  if (!options.checkpoint.empty()) {
    if (!listed(options.checkpoint)) {
      return absl::NotFoundError(absl::StrCat(
          job.name(), " has no checkpoint ", options.checkpoint, " (it has ",
          names.empty() ? "none" : absl::StrJoin(names, ", "), ")"));
    }
    return options.checkpoint;
  }
  if (names.empty()) {
    return absl::NotFoundError(
        absl::StrCat("job ", job.name(), " has no checkpoint yet"));
  }
  const std::string pin_path = (fs::path(options.out_dir) / kPinFile).string();
  if (absl::StatusOr<std::string> pin = core::ReadFile(pin_path); pin.ok()) {
    const std::vector<std::string> words =
        absl::StrSplit(*pin, absl::ByAnyChar(" \n"), absl::SkipEmpty());
    if (words.size() == 2 && words[0] == job.name() && listed(words[1])) {
      *context.err << "continuing the fetch of " << words[1] << " (pinned in "
                   << pin_path << ")\n";
      return words[1];
    }
  }
  return names[names.size() - 1];
}

// Downloads one file (resuming DIR/<file>.part) and checks it against the
// daemon's digest and, when given, the manifest's.
absl::StatusOr<Fetched> FetchFile(const FetchOptions& options,
                                  const std::string& checkpoint,
                                  const std::string& file,
                                  const core::ManifestFile* expected,
                                  CommandContext& context) {
  const std::string final_path = (fs::path(options.out_dir) / file).string();
  if (expected != nullptr && fs::exists(final_path)) {
    // Done by an earlier, interrupted run of this fetch.
    absl::StatusOr<std::string> digest = core::Sha256File(final_path);
    if (digest.ok() && *digest == expected->sha256) {
      return Fetched{final_path, expected->bytes, *digest};
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<CheckpointWriter> writer,
                   CheckpointWriter::Open(options.out_dir, file));
  const int64_t resumed_from = writer->size();
  if (writer->resumed()) {
    *context.err << "resuming " << writer->part_path() << " from "
                 << resumed_from << " bytes\n";
  }
  v1::DownloadCheckpointRequest request;
  request.set_name(options.job);
  request.set_checkpoint(checkpoint);
  request.set_file(file);
  request.set_offset(resumed_from);
  request.set_format(options.format);
  std::string sha256;
  int64_t total_bytes = -1;
  absl::Status status = context.client->DownloadCheckpoint(
      request, [&](const v1::CheckpointChunk& chunk) -> absl::Status {
        RETURN_IF_ERROR(writer->Append(chunk.offset(), chunk.data()));
        if (chunk.total_bytes() > 0) total_bytes = chunk.total_bytes();
        if (!chunk.sha256().empty()) sha256 = chunk.sha256();
        return absl::OkStatus();
      });
  if (status.ok() && total_bytes >= 0 && writer->size() < total_bytes) {
    status = absl::DataLossError(absl::StrCat("the download ended after ",
                                              writer->size(), " of ",
                                              total_bytes, " bytes"));
  } else if (status.ok() && sha256.empty()) {
    status = absl::DataLossError(
        "the daemon ended the download without the file's SHA-256");
  } else if (status.ok() && expected != nullptr && sha256 != expected->sha256) {
    status = absl::DataLossError(absl::StrCat(
        file, ": the daemon's SHA-256 ", sha256, " is not the manifest's ",
        expected->sha256, " (the checkpoint is damaged on the daemon)"));
  }
  if (!status.ok()) {
    std::string note;
    if (writer->size() > 0) {
      note = absl::StrCat("; the ", writer->size(), " bytes received are in ",
                          writer->part_path(),
                          ": run the same command again to resume");
    }
    if (resumed_from > 0) {
      absl::StrAppend(&note, " (or delete ", writer->part_path(),
                      " to start over)");
    }
    absl::Status annotated(status.code(), absl::StrCat(status.message(), note));
    if (IsInterruptedStream(status)) MarkInterruptedStream(annotated);
    return annotated;
  }
  ASSIGN_OR_RETURN(const std::string digest, writer->Commit(sha256));
  return Fetched{writer->final_path(), writer->size(), digest};
}

// The checkpoint's manifest.json, downloaded into memory and parsed (it
// checks its own digest).
absl::StatusOr<std::pair<std::string, core::CheckpointManifest>> FetchManifest(
    const FetchOptions& options, const std::string& checkpoint,
    CommandContext& context) {
  v1::DownloadCheckpointRequest request;
  request.set_name(options.job);
  request.set_checkpoint(checkpoint);
  request.set_file(core::kManifestFile);
  std::string text, sha256;
  RETURN_IF_ERROR(context.client->DownloadCheckpoint(
      request, [&](const v1::CheckpointChunk& chunk) -> absl::Status {
        if (chunk.offset() != static_cast<int64_t>(text.size())) {
          return absl::DataLossError("manifest.json: chunks out of order");
        }
        text += chunk.data();
        if (!chunk.sha256().empty()) sha256 = chunk.sha256();
        return absl::OkStatus();
      }));
  if (sha256 != core::Sha256Hex(text)) {
    return absl::DataLossError("manifest.json: SHA-256 mismatch in transit");
  }
  ASSIGN_OR_RETURN(
      core::CheckpointManifest manifest,
      core::ParseManifest(text, absl::StrCat(options.job, "/", checkpoint, "/",
                                             core::kManifestFile)));
  return std::make_pair(std::move(text), std::move(manifest));
}

void PrintFetched(const std::string& checkpoint,
                  const std::vector<Fetched>& files,
                  const CommandContext& context) {
  if (context.output == OutputFormat::kJson) {
    std::vector<std::string> items;
    for (const Fetched& f : files) {
      items.push_back(absl::StrCat("{\"path\": ", JsonQuote(f.path),
                                   ", \"bytes\": ", f.bytes,
                                   ", \"sha256\": ", JsonQuote(f.sha256), "}"));
    }
    *context.out << "{\"checkpoint\": " << JsonQuote(checkpoint)
                 << ", \"files\": [" << absl::StrJoin(items, ", ") << "]}\n";
    return;
  }
  *context.out << "checkpoint " << checkpoint << "\n";
  Table table({"PATH", "SIZE", "SHA256"}, {1});
  for (const Fetched& f : files) {
    table.AddRow({f.path, HumanBytes(f.bytes), f.sha256});
  }
  table.Print(*context.out);
}

// The Hugging Face export of `checkpoint` (written by the daemon on the
// first request): config.json, generation_config.json, the index, then
// every shard the index names. Each file is checked against the daemon's
// SHA-256 as it arrives.
absl::StatusOr<std::vector<Fetched>> FetchHf(const FetchOptions& options,
                                             const std::string& checkpoint,
                                             CommandContext& context) {
  std::vector<Fetched> fetched;
  for (const char* file : kHfFiles) {
    ASSIGN_OR_RETURN(Fetched f,
                     FetchFile(options, checkpoint, file, nullptr, context));
    fetched.push_back(std::move(f));
  }
  ASSIGN_OR_RETURN(const std::string text, core::ReadFile(fetched.back().path));
  ASSIGN_OR_RETURN(const core::JsonValue index, core::ParseJson(text));
  ASSIGN_OR_RETURN(const core::JsonValue* map,
                   index.Member("weight_map", core::JsonValue::Kind::kObject));
  std::vector<std::string> shards;
  for (const auto& [tensor, file] : map->object) {
    if (file.kind != core::JsonValue::Kind::kString ||
        file.text.find('/') != std::string::npos || file.text.empty() ||
        file.text == "." || file.text == "..") {
      return absl::DataLossError(absl::StrCat(kHfIndexFile, ": weight_map[",
                                              tensor, "] is not a file name"));
    }
    if (std::find(shards.begin(), shards.end(), file.text) == shards.end())
      shards.push_back(file.text);
  }
  for (const std::string& shard : shards) {
    ASSIGN_OR_RETURN(Fetched f,
                     FetchFile(options, checkpoint, shard, nullptr, context));
    fetched.push_back(std::move(f));
  }
  return fetched;
}

absl::StatusOr<int> Fetch(const FetchOptions& options,
                          CommandContext& context) {
  ASSIGN_OR_RETURN(const v1::Job job, context.client->GetJob(options.job));
  ASSIGN_OR_RETURN(const std::string checkpoint,
                   PinCheckpoint(options, job, context));
  std::vector<Fetched> fetched;
  if (!options.file.empty()) {
    ASSIGN_OR_RETURN(Fetched f, FetchFile(options, checkpoint, options.file,
                                          nullptr, context));
    fetched.push_back(std::move(f));
    PrintFetched(checkpoint, fetched, context);
    return 0;
  }

  std::error_code ec;
  fs::create_directories(options.out_dir, ec);
  const std::string pin_path = (fs::path(options.out_dir) / kPinFile).string();
  RETURN_IF_ERROR(core::WriteFileAtomically(
      pin_path, absl::StrCat(job.name(), " ", checkpoint, "\n")));
  if (options.format == "hf") {
    ASSIGN_OR_RETURN(fetched, FetchHf(options, checkpoint, context));
    fs::remove(pin_path, ec);
    PrintFetched(checkpoint, fetched, context);
    return 0;
  }
  ASSIGN_OR_RETURN(auto manifest, FetchManifest(options, checkpoint, context));
  for (const core::ManifestFile& file : manifest.second.files) {
    ASSIGN_OR_RETURN(Fetched f,
                     FetchFile(options, checkpoint, file.name, &file, context));
    fetched.push_back(std::move(f));
  }
  // Last: DIR now holds a complete checkpoint (core::VerifyCheckpoint reads
  // it like the daemon's own).
  const std::string manifest_path =
      (fs::path(options.out_dir) / core::kManifestFile).string();
  RETURN_IF_ERROR(core::WriteFileAtomically(manifest_path, manifest.first));
  fetched.push_back({manifest_path, static_cast<int64_t>(manifest.first.size()),
                     core::Sha256Hex(manifest.first)});
  fs::remove(pin_path, ec);
  PrintFetched(checkpoint, fetched, context);
  return 0;
}

}  // namespace

Command FetchCommand() {
  return {
      .name = "fetch",
      .args_usage = "JOB",
      .summary = "download a checkpoint (resumable, SHA-256 checked)",
      .positional_args = 1,
      .flags = {{"out", "DIR", "directory to write into (required)"},
                {"step", "N", "the checkpoint of step N; default the newest"},
                {"checkpoint", "NAME", "checkpoint by name, e.g. step-000030"},
                {"file", "NAME",
                 "only this file of the checkpoint, e.g. model.safetensors"},
                {"format", "hf",
                 "the checkpoint as a Hugging Face model directory "
                 "(config.json, sharded safetensors, index) that "
                 "transformers loads; written by the daemon on first "
                 "request"}},
      .parse = [](const ParsedArgs& args) -> absl::StatusOr<Action> {
        FetchOptions options;
        ASSIGN_OR_RETURN(options.job, JobName(args.positional()[0]));
        std::optional<std::string> out = args.Get("out");
        if (!out.has_value() || out->empty()) {
          return absl::InvalidArgumentError(
              "fetch needs --out DIR (where to write the files)");
        }
        options.out_dir = *out;
        options.checkpoint = args.Get("checkpoint").value_or("");
        if (std::optional<std::string> step = args.Get("step")) {
          int64_t n = 0;
          if (!options.checkpoint.empty()) {
            return absl::InvalidArgumentError(
                "give --step or --checkpoint, not both");
          }
          if (!absl::SimpleAtoi(*step, &n) || n <= 0) {
            return absl::InvalidArgumentError(
                absl::StrCat("--step: invalid value \"", *step,
                             "\" (expected a positive step number)"));
          }
          options.checkpoint = core::CheckpointName(n);
        }
        options.format = args.Get("format").value_or("");
        if (!options.format.empty() && options.format != "hf") {
          return absl::InvalidArgumentError(absl::StrCat(
              "--format: expected hf, got \"", options.format, "\""));
        }
        if (args.Has("file")) {
          options.file = args.Get("file").value_or("");
          if (options.file.empty()) {
            return absl::InvalidArgumentError("--file: empty file name");
          }
        }
        return [options](CommandContext& context) {
          return Fetch(options, context);
        };
      },
  };
}

}  // namespace stronghold::client
