#include "core/data/dataset.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

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
        case 1: Sentence(out); break;
        case 2: Arithmetic(out); break;
        default: Counting(out); break;
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
        "quick", "lazy", "red", "quiet", "brave", "small",
        "old",   "green", "wise", "bright", "cold", "happy"};
    static constexpr std::array<const char*, 12> kNoun = {
        "fox",    "dog",   "river", "king", "bird",   "tree",
        "stone", "child", "ship",  "city", "garden", "engine"};
    static constexpr std::array<const char*, 10> kVerb = {
        "sees", "follows", "builds", "finds", "carries",
        "watches", "likes", "moves", "guards", "trains"};
    static constexpr std::array<const char*, 6> kEnd = {
        "today", "at night", "near the sea", "in the morning",
        "without a sound", "again"};
    std::string s = absl::StrCat(Pick(kDet), " ", Pick(kAdj), " ", Pick(kNoun),
                                 " ", Pick(kVerb), " the ", Pick(kAdj), " ",
                                 Pick(kNoun), " ", Pick(kEnd), ".");
    s[0] = static_cast<char>(s[0] - 'a' + 'A');
    out += s;
  }

  void Arithmetic(std::string& out) {
    const int a = static_cast<int>(Next() % 50), b = static_cast<int>(Next() % 50);
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

absl::StatusOr<std::unique_ptr<Dataset>> Dataset::Open(
    const DataConfig& config, int64_t vocab, int seq_len) {
  std::unique_ptr<Dataset> d(new Dataset());
  d->seq_len_ = seq_len;
  if (config.source == "builtin") {
    if (vocab < 256) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model.vocab: the builtin dataset is byte-level and needs >= 256, got ",
          vocab));
    }
    d->owned_ = BuiltinCorpus();
    d->data_ = reinterpret_cast<const uint8_t*>(d->owned_.data());
    d->token_bytes_ = 1;
    d->num_tokens_ = static_cast<int64_t>(d->owned_.size());
  } else {
    int width = config.token_bytes;
    if (width == 0) {
      width = config.source.size() >= 4 &&
                      config.source.compare(config.source.size() - 4, 4, ".u32") == 0
                  ? 4
                  : 2;
    }
    d->token_bytes_ = width;
    const int fd = open(config.source.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return DataError(absl::StrCat("cannot open '", config.source,
                                    "': ", strerror(errno)));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
      const int err = errno;
      close(fd);
      return DataError(absl::StrCat("cannot stat '", config.source, "': ", strerror(err)));
    }
    const size_t bytes = static_cast<size_t>(st.st_size);
    if (bytes % width != 0) {
      close(fd);
      return DataError(absl::StrFormat(
          "'%s' has %d bytes, not a multiple of the token size %d", config.source,
          bytes, width));
    }
    d->num_tokens_ = static_cast<int64_t>(bytes / width);
    if (bytes > 0) {
      void* m = mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
      if (m == MAP_FAILED) {
        const int err = errno;
        close(fd);
        return DataError(absl::StrCat("cannot map '", config.source, "': ", strerror(err)));
      }
      d->mapping_ = m;
      d->mapping_bytes_ = bytes;
      d->data_ = static_cast<const uint8_t*>(m);
    }
    close(fd);
  }
  if (d->num_tokens_ <= seq_len) {
    return DataError(absl::StrFormat(
        "holds %d tokens; model.seq_len %d needs at least %d", d->num_tokens_,
        seq_len, seq_len + 1));
  }
  for (int64_t i = 0; i < d->num_tokens_; ++i) {
    const int64_t t = d->Token(i);
    if (t >= vocab) {
      return DataError(absl::StrFormat(
          "token %d at index %d is not below model.vocab (%d)", t, i, vocab));
    }
  }
  return d;
}

Dataset::~Dataset() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_bytes_);
}

int64_t Dataset::Token(int64_t i) const {
  const uint8_t* p = data_ + i * token_bytes_;
  switch (token_bytes_) {
    case 1: return p[0];
    case 2: return static_cast<int64_t>(p[0]) | (static_cast<int64_t>(p[1]) << 8);
    default:
      return static_cast<int64_t>(p[0]) | (static_cast<int64_t>(p[1]) << 8) |
             (static_cast<int64_t>(p[2]) << 16) | (static_cast<int64_t>(p[3]) << 24);
  }
}

void Dataset::Fill(uint64_t seed, int64_t first_sample, int rows,
                   int64_t* inputs, int64_t* targets) const {
  const uint64_t windows = static_cast<uint64_t>(num_tokens_ - seq_len_);
  for (int r = 0; r < rows; ++r) {
    // The index only feeds the hash: summed as uint64, so that it wraps
    // (defined) instead of overflowing near INT64_MAX.
    const uint64_t index = static_cast<uint64_t>(first_sample) + static_cast<uint64_t>(r);
    const int64_t offset =
        static_cast<int64_t>(Mix64(Mix64(seed) ^ index) % windows);
    // In int64: rows x seq_len can pass INT_MAX (micro_batch 2^20, seq_len 2^16).
    const int64_t row = int64_t{r} * seq_len_;
    for (int j = 0; j < seq_len_; ++j) {
      inputs[row + j] = Token(offset + j);
      targets[row + j] = Token(offset + j + 1);
    }
  }
}

}  // namespace stronghold::core
