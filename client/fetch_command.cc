// `fetch JOB --out DIR`: downloads a checkpoint file, resuming an earlier
// partial download and verifying the daemon's SHA-256 before the file takes
// its final name (see checkpoint_writer.h).
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/checkpoint_writer.h"
#include "client/commands.h"
#include "client/daemon_client.h"
#include "client/human_format.h"
#include "client/json_output.h"
#include "client/table.h"
#include "core/status_macros.h"

namespace stronghold::client {
namespace {

// The API's default file (DownloadCheckpointRequest.file). The client names
// it explicitly because it must know the local file name before the first
// chunk arrives, to resume from DIR/<file>.part.
constexpr char kDefaultFile[] = "model.safetensors";

struct FetchOptions {
  std::string job;         // "jobs/7"
  std::string out_dir;     // where the file goes
  std::string checkpoint;  // empty = the newest
  std::string file;
};

void PrintFetched(const std::string& path, int64_t bytes,
                  const std::string& sha256, const CommandContext& context) {
  if (context.output == OutputFormat::kJson) {
    *context.out << "{\"path\": " << JsonQuote(path) << ", \"bytes\": " << bytes
                 << ", \"sha256\": " << JsonQuote(sha256) << "}\n";
    return;
  }
  PrintKeyValues(
      {{"path", path},
       {"size", absl::StrCat(bytes, " bytes (", HumanBytes(bytes), ")")},
       {"sha256", sha256}},
      *context.out);
}

absl::StatusOr<int> Fetch(const FetchOptions& options,
                          CommandContext& context) {
  ASSIGN_OR_RETURN(std::unique_ptr<CheckpointWriter> writer,
                   CheckpointWriter::Open(options.out_dir, options.file));
  const int64_t resumed_from = writer->size();
  if (writer->resumed()) {
    *context.err << "resuming " << writer->part_path() << " from "
                 << resumed_from << " bytes\n";
  }

  v1::DownloadCheckpointRequest request;
  request.set_name(options.job);
  request.set_checkpoint(options.checkpoint);
  request.set_file(options.file);
  request.set_offset(resumed_from);
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
  PrintFetched(writer->final_path(), writer->size(), digest, context);
  return 0;
}

}  // namespace

Command FetchCommand() {
  return {
      .name = "fetch",
      .args_usage = "JOB",
      .summary = "download a checkpoint file (resumable, SHA-256 checked)",
      .positional_args = 1,
      .flags = {{"out", "DIR", "directory to write into (required)"},
                {"checkpoint", "NAME", "checkpoint name; default the newest"},
                {"file", "NAME",
                 absl::StrCat("file in the checkpoint; default ",
                              kDefaultFile)}},
      .parse = [](const ParsedArgs& args) -> absl::StatusOr<Action> {
        FetchOptions options;
        ASSIGN_OR_RETURN(options.job, JobName(args.positional()[0]));
        std::optional<std::string> out = args.Get("out");
        if (!out.has_value() || out->empty()) {
          return absl::InvalidArgumentError(
              "fetch needs --out DIR (where to write the file)");
        }
        options.out_dir = *out;
        options.checkpoint = args.Get("checkpoint").value_or("");
        options.file = args.Get("file").value_or(kDefaultFile);
        if (options.file.empty()) {
          return absl::InvalidArgumentError("--file: empty file name");
        }
        return [options](CommandContext& context) {
          return Fetch(options, context);
        };
      },
  };
}

}  // namespace stronghold::client
