#include "core/data/dataset.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/data/megatron_index.h"
#include "core/util/status_macros.h"

namespace stronghold::core {

namespace {

absl::Status DataError(absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("data.source: ", message));
}

// A tiny deterministic generator of English-like text with learnable
// structure at several scales: word spelling, agreement, arithmetic facts.
class CorpusWriter {
 public:
  explicit CorpusWriter(uint64_t seed) : state_(seed) {}

  std::string Write(size_t bytes) {
    std::string out;
    out.reserve(bytes + 256);
    while (out.size() < bytes) {
      switch (Next() % 4) {
        case 0:
        case 1:
          Sentence(out);
          break;
        case 2:
          Arithmetic(out);
          break;
        default:
          Counting(out);
          break;
      }
      out += (Next() % 6 == 0) ? "\n" : " ";
    }
    return out;
  }

 private:
  uint64_t Next() { return Mix64(state_++); }
  template <size_t N>
  const char* Pick(const std::array<const char*, N>& words) {
    return words[Next() % N];
  }

  void Sentence(std::string& out) {
    static constexpr std::array<const char*, 8> kDet = {
        "the", "a", "one", "every", "that", "this", "some", "each"};
    static constexpr std::array<const char*, 12> kAdj = {
        "quick", "lazy",  "red",  "quiet",  "brave", "small",
        "old",   "green", "wise", "bright", "cold",  "happy"};
    static constexpr std::array<const char*, 12> kNoun = {
        "fox",   "dog",   "river", "king", "bird",   "tree",
        "stone", "child", "ship",  "city", "garden", "engine"};
    static constexpr std::array<const char*, 10> kVerb = {
        "sees",    "follows", "builds", "finds",  "carries",
        "watches", "likes",   "moves",  "guards", "trains"};
    static constexpr std::array<const char*, 6> kEnd = {
        "today",          "at night",        "near the sea",
        "in the morning", "without a sound", "again"};
    std::string s = absl::StrCat(Pick(kDet), " ", Pick(kAdj), " ", Pick(kNoun),
                                 " ", Pick(kVerb), " the ", Pick(kAdj), " ",
                                 Pick(kNoun), " ", Pick(kEnd), ".");
    s[0] = static_cast<char>(s[0] - 'a' + 'A');
    out += s;
  }

  void Arithmetic(std::string& out) {
    const int a = static_cast<int>(Next() % 50),
              b = static_cast<int>(Next() % 50);
    if (Next() % 2) {
      absl::StrAppend(&out, a, " plus ", b, " is ", a + b, ".");
    } else {
      absl::StrAppend(&out, a + b, " minus ", b, " is ", a, ".");
    }
  }

  void Counting(std::string& out) {
    const int start = static_cast<int>(Next() % 90);
    out += "Counting:";
    for (int i = 0; i < 6; ++i) absl::StrAppend(&out, " ", start + i);
    out += ".";
  }

  uint64_t state_;
};

}  // namespace

std::string Dataset::BuiltinCorpus() {
  return CorpusWriter(/*seed=*/20221114).Write(size_t{1} << 20);
}

std::string IndexedBinPath(absl::string_view index_source) {
  index_source.remove_suffix(4);  // ".idx"
  return absl::StrCat(index_source, ".bin");
}

absl::StatusOr<std::unique_ptr<Dataset>> Dataset::Open(const DataConfig& config,
                                                       int64_t vocab,
                                                       int seq_len) {
  if (config.source != "builtin") {
    auto open_file = [](const std::string& path) -> absl::StatusOr<UniqueFd> {
      UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!fd.valid()) {
        return DataError(
            absl::StrCat("cannot open '", path, "': ", strerror(errno)));
      }
      return fd;
    };
    ASSIGN_OR_RETURN(UniqueFd file, open_file(config.source));
    if (!config.indexed()) {
      return OpenFile(std::move(file), config, vocab, seq_len);
    }
    ASSIGN_OR_RETURN(UniqueFd bin, open_file(IndexedBinPath(config.source)));
    return OpenIndexed(std::move(file), std::move(bin), config, vocab, seq_len);
  }
  if (vocab < 256) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model.vocab: the builtin dataset is byte-level and needs >= 256, got ",
        vocab));
  }
  std::unique_ptr<Dataset> d(new Dataset());
  d->seq_len_ = seq_len;
  d->vocab_ = vocab;
  d->name_ = config.source;
  d->owned_ = BuiltinCorpus();
  d->format_ = {.bytes = 1, .is_signed = false};
  d->num_tokens_ = static_cast<int64_t>(d->owned_.size());
  return d;
}

absl::StatusOr<std::unique_ptr<Dataset>> Dataset::OpenFiles(
    DataFiles files, const DataConfig& config, int64_t vocab, int seq_len) {
  if (!files.file.valid()) return Open(config, vocab, seq_len);
  if (!config.indexed()) {
    return OpenFile(std::move(files.file), config, vocab, seq_len);
  }
  if (!files.bin.valid()) {
    return absl::InternalError(absl::StrCat(
        "data.source: the index '", config.source, "' came without its .bin"));
  }
  return OpenIndexed(std::move(files.file), std::move(files.bin), config, vocab,
                     seq_len);
}

namespace {

// A regular file's size, for the token files.
absl::StatusOr<int64_t> RegularFileBytes(int fd, absl::string_view name) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return DataError(
        absl::StrCat("cannot stat '", name, "': ", strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return DataError(absl::StrCat("'", name, "' is not a file"));
  }
  return static_cast<int64_t>(st.st_size);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Dataset>> Dataset::OpenFile(
    UniqueFd file, const DataConfig& config, int64_t vocab, int seq_len) {
  std::unique_ptr<Dataset> d(new Dataset());
  d->seq_len_ = seq_len;
  d->vocab_ = vocab;
  d->name_ = config.source;
  d->format_.bytes = config.token_bytes != 0 ? config.token_bytes
                     : absl::EndsWith(config.source, ".u32") ? 4
                                                             : 2;
  d->file_ = std::move(file);
  ASSIGN_OR_RETURN(const int64_t bytes,
                   RegularFileBytes(d->file_.get(), config.source));
  if (bytes % d->format_.bytes != 0) {
    return DataError(absl::StrFormat(
        "'%s' has %d bytes, not a multiple of the token size %d", config.source,
        bytes, d->format_.bytes));
  }
  d->num_tokens_ = bytes / d->format_.bytes;
  RETURN_IF_ERROR(d->CheckTokens());
  return d;
}

absl::StatusOr<std::unique_ptr<Dataset>> Dataset::OpenIndexed(
    UniqueFd index, UniqueFd bin, const DataConfig& config, int64_t vocab,
    int seq_len) {
  std::unique_ptr<Dataset> d(new Dataset());
  d->seq_len_ = seq_len;
  d->vocab_ = vocab;
  d->name_ = IndexedBinPath(config.source);
  d->file_ = std::move(bin);
  ASSIGN_OR_RETURN(const int64_t bin_bytes,
                   RegularFileBytes(d->file_.get(), d->name_));
  ASSIGN_OR_RETURN(
      const MegatronIndex parsed,
      ReadMegatronIndex(index.get(), config.source, bin_bytes, d->name_));
  d->format_ = parsed.format;
  d->num_tokens_ = parsed.tokens;
  RETURN_IF_ERROR(d->CheckTokens());
  return d;
}

Dataset::~Dataset() = default;

absl::Status Dataset::CheckTokens() const {
  if (num_tokens_ <= seq_len_) {
    return DataError(absl::StrFormat(
        "'%s' holds %d tokens; model.seq_len %d needs at least %d", name_,
        num_tokens_, seq_len_, seq_len_ + 1));
  }
  constexpr int64_t kChunk = int64_t{1} << 18;
  std::vector<uint8_t> scratch(kChunk * format_.bytes);
  std::vector<int64_t> ids(kChunk);
  for (int64_t first = 0; first < num_tokens_; first += kChunk) {
    const int64_t count = std::min(kChunk, num_tokens_ - first);
    RETURN_IF_ERROR(ReadTokens(first, count, scratch.data(), ids.data()));
    for (int64_t i = 0; i < count; ++i) {
      if (ids[i] < 0 || ids[i] >= vocab_) {
        return DataError(absl::StrFormat(
            "token %d at index %d of '%s' is %s model.vocab (%d)", ids[i],
            first + i, name_,
            ids[i] < 0 ? "negative, not an id of" : "not below", vocab_));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Dataset::ReadTokens(int64_t first, int64_t count, uint8_t* scratch,
                                 int64_t* out) const {
  const int w = format_.bytes;
  const uint8_t* p = reinterpret_cast<const uint8_t*>(owned_.data()) + first;
  if (file_.valid()) {
    const int64_t want = count * w, at = first * w;
    absl::StatusOr<int64_t> got = PreadUpTo(file_.get(), at, want, scratch);
    if (!got.ok()) {
      return absl::DataLossError(absl::StrFormat("data.source: '%s': %s", name_,
                                                 got.status().message()));
    }
    if (*got < want) {
      return absl::DataLossError(
          absl::StrFormat("data.source: '%s' has nothing to read at byte %d, "
                          "but held %d bytes of tokens when the job started: "
                          "the token file was truncated while the job ran",
                          name_, at + *got, num_tokens_ * w));
    }
    p = scratch;
  }
  DecodeTokens(p, count, format_, out);
  return absl::OkStatus();
}

absl::Status Dataset::Fill(uint64_t seed, int64_t first_sample, int rows,
                           int64_t* inputs, int64_t* targets) const {
  const uint64_t windows = static_cast<uint64_t>(num_tokens_ - seq_len_);
  // One sample's tokens: its inputs and, shifted by one, its targets.
  std::vector<int64_t> window(seq_len_ + 1);
  std::vector<uint8_t> scratch(file_.valid() ? window.size() * format_.bytes
                                             : 0);
  for (int r = 0; r < rows; ++r) {
    // The index only feeds the hash: summed as uint64, so that it wraps
    // (defined) instead of overflowing near INT64_MAX.
    const uint64_t index =
        static_cast<uint64_t>(first_sample) + static_cast<uint64_t>(r);
    const int64_t offset =
        static_cast<int64_t>(Mix64(Mix64(seed) ^ index) % windows);
    RETURN_IF_ERROR(
        ReadTokens(offset, seq_len_ + 1, scratch.data(), window.data()));
    for (int j = 0; j <= seq_len_; ++j) {
      if (window[j] < 0 || window[j] >= vocab_) {
        return absl::DataLossError(absl::StrFormat(
            "data.source: token %d at index %d of '%s' is not in [0, "
            "model.vocab %d): the token file changed while the job ran",
            window[j], offset + j, name_, vocab_));
      }
    }
    // In int64: rows x seq_len can pass INT_MAX (micro_batch 2^20, seq_len
    // 2^16).
    const int64_t row = int64_t{r} * seq_len_;
    std::copy(window.begin(), window.end() - 1, inputs + row);
    std::copy(window.begin() + 1, window.end(), targets + row);
  }
  return absl::OkStatus();
}

}  // namespace stronghold::core
