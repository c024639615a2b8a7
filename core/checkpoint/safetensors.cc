#include "core/checkpoint/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/util/file_util.h"
#include "core/util/sha256.h"
#include "core/util/status_macros.h"

namespace stronghold::core {

namespace {

int64_t Numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::Status Malformed(const std::string& path, absl::string_view what) {
  return absl::DataLossError(absl::StrCat(path, ": not a valid safetensors file: ", what));
}

// A minimal JSON reader for the safetensors header (objects, arrays,
// strings without escapes beyond \" and \\, integers).
class HeaderParser {
 public:
  HeaderParser(absl::string_view text, const std::string& path)
      : s_(text), path_(path) {}

  absl::StatusOr<SafetensorsFile> Parse(int64_t data_bytes) {
    SafetensorsFile file;
    RETURN_IF_ERROR(Expect('{'));
    if (Peek() == '}') return (++i_, file);
    while (true) {
      ASSIGN_OR_RETURN(std::string key, String());
      RETURN_IF_ERROR(Expect(':'));
      if (key == "__metadata__") {
        RETURN_IF_ERROR(Expect('{'));
        while (Peek() != '}') {
          ASSIGN_OR_RETURN(std::string k, String());
          RETURN_IF_ERROR(Expect(':'));
          ASSIGN_OR_RETURN(std::string v, String());
          file.metadata[k] = v;
          if (Peek() == ',') ++i_;
        }
        ++i_;
      } else {
        ASSIGN_OR_RETURN(SafetensorsEntry e, Entry());
        if (e.begin < 0 || e.end < e.begin || e.end > data_bytes) {
          return Malformed(path_, absl::StrCat("tensor ", key, " lies outside the file"));
        }
        file.tensors[key] = std::move(e);
      }
      if (Peek() == ',') {
        ++i_;
        continue;
      }
      return Expect('}').ok() ? absl::StatusOr<SafetensorsFile>(std::move(file))
                              : Malformed(path_, "unterminated header");
    }
  }

 private:
  char Peek() {
    while (i_ < s_.size() && isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
    return i_ < s_.size() ? s_[i_] : '\0';
  }
  absl::Status Expect(char c) {
    if (Peek() != c) return Malformed(path_, absl::StrCat("expected '", std::string(1, c), "'"));
    ++i_;
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> String() {
    RETURN_IF_ERROR(Expect('"'));
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
      out += s_[i_++];
    }
    if (i_ >= s_.size()) return Malformed(path_, "unterminated string");
    ++i_;
    return out;
  }
  absl::StatusOr<int64_t> Int() {
    Peek();
    size_t start = i_;
    while (i_ < s_.size() && isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    if (start == i_ || i_ - start > 18) return Malformed(path_, "bad integer");
    return std::stoll(std::string(s_.substr(start, i_ - start)));
  }
  absl::StatusOr<std::vector<int64_t>> IntArray() {
    std::vector<int64_t> out;
    RETURN_IF_ERROR(Expect('['));
    while (Peek() != ']') {
      ASSIGN_OR_RETURN(int64_t v, Int());
      out.push_back(v);
      if (Peek() == ',') ++i_;
    }
    ++i_;
    return out;
  }
  absl::StatusOr<SafetensorsEntry> Entry() {
    SafetensorsEntry e;
    RETURN_IF_ERROR(Expect('{'));
    while (Peek() != '}') {
      ASSIGN_OR_RETURN(std::string k, String());
      RETURN_IF_ERROR(Expect(':'));
      if (k == "dtype") {
        ASSIGN_OR_RETURN(e.dtype, String());
      } else if (k == "shape") {
        ASSIGN_OR_RETURN(e.shape, IntArray());
      } else if (k == "data_offsets") {
        ASSIGN_OR_RETURN(std::vector<int64_t> o, IntArray());
        if (o.size() != 2) return Malformed(path_, "data_offsets needs 2 numbers");
        e.begin = o[0];
        e.end = o[1];
      } else {
        return Malformed(path_, absl::StrCat("unknown key ", k));
      }
      if (Peek() == ',') ++i_;
    }
    ++i_;
    return e;
  }

  absl::string_view s_;
  const std::string& path_;
  size_t i_ = 0;
};

}  // namespace

absl::StatusOr<std::string> WriteSafetensors(
    const std::string& path, const std::vector<SafetensorsTensor>& tensors,
    const std::map<std::string, std::string>& metadata) {
  std::vector<std::string> fields;
  if (!metadata.empty()) {
    std::vector<std::string> kv;
    for (const auto& [k, v] : metadata) kv.push_back(absl::StrCat("\"", k, "\":\"", v, "\""));
    fields.push_back(absl::StrCat("\"__metadata__\":{", absl::StrJoin(kv, ","), "}"));
  }
  int64_t offset = 0;
  for (const SafetensorsTensor& t : tensors) {
    const int64_t bytes = Numel(t.shape) * 4;
    fields.push_back(absl::StrCat("\"", t.name, "\":{\"dtype\":\"F32\",\"shape\":[",
                                  absl::StrJoin(t.shape, ","), "],\"data_offsets\":[",
                                  offset, ",", offset + bytes, "]}"));
    offset += bytes;
  }
  std::string header = absl::StrCat("{", absl::StrJoin(fields, ","), "}");
  header.append((8 - header.size() % 8) % 8, ' ');
  uint64_t n = header.size();
  unsigned char prefix[8];
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<unsigned char>(n >> (8 * i));

  ASSIGN_OR_RETURN(WritableFile file, WritableFile::Create(path));
  Sha256 digest;
  auto write = [&](const void* data, size_t bytes) {
    digest.Update(data, bytes);
    return file.Append(data, bytes);
  };
  RETURN_IF_ERROR(write(prefix, 8));
  RETURN_IF_ERROR(write(header.data(), header.size()));
  for (const SafetensorsTensor& t : tensors) {
    if (t.fill) RETURN_IF_ERROR(t.fill());
    RETURN_IF_ERROR(write(t.data, static_cast<size_t>(Numel(t.shape)) * 4));
  }
  RETURN_IF_ERROR(file.SyncAndClose());
  return digest.HexDigest();
}

namespace {

// The prefix and header of `path` (whose size is `size`), and the parsed
// header.
struct RawHeader {
  std::string bytes;  // the 8-byte prefix and the JSON header, as in the file
  SafetensorsFile file;
};

absl::StatusOr<RawHeader> ReadRawHeader(const std::string& path, int64_t size) {
  ASSIGN_OR_RETURN(std::string head, ReadFileRange(path, 0, 8));
  if (head.size() != 8) return Malformed(path, "shorter than 8 bytes");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(head[i])) << (8 * i);
  if (n > 100'000'000 || static_cast<int64_t>(8 + n) > size) {
    return Malformed(path, absl::StrCat("header of ", n, " bytes does not fit in ", size));
  }
  ASSIGN_OR_RETURN(std::string text, ReadFileRange(path, 8, static_cast<int64_t>(n)));
  if (text.size() != n) return Malformed(path, "truncated header");
  RawHeader raw;
  ASSIGN_OR_RETURN(raw.file, HeaderParser(text, path).Parse(size - 8 - static_cast<int64_t>(n)));
  raw.file.data_offset = 8 + static_cast<int64_t>(n);
  raw.bytes = head + text;
  return raw;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// Reads `bytes` bytes at `offset` of `fd` into `dst` and hashes them.
absl::Status ReadInto(int fd, const std::string& path, int64_t offset, int64_t bytes, char* dst,
                      Sha256& digest) {
  int64_t done = 0;
  while (done < bytes) {
    const size_t want = static_cast<size_t>(std::min<int64_t>(bytes - done, 64 << 20));
    const ssize_t n = pread(fd, dst + done, want, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("cannot read ", path, ": ", strerror(errno)));
    }
    if (n == 0) return Malformed(path, absl::StrCat("truncated at byte ", offset + done));
    digest.Update(dst + done, static_cast<size_t>(n));
    done += n;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SafetensorsFile> ReadSafetensorsHeader(const std::string& path) {
  ASSIGN_OR_RETURN(int64_t size, FileSize(path));
  ASSIGN_OR_RETURN(RawHeader raw, ReadRawHeader(path, size));
  return std::move(raw.file);
}

absl::StatusOr<std::string> ReadSafetensorsInto(const std::string& path,
                                                const std::vector<SafetensorsTarget>& tensors) {
  ASSIGN_OR_RETURN(int64_t size, FileSize(path));
  ASSIGN_OR_RETURN(RawHeader raw, ReadRawHeader(path, size));
  const SafetensorsFile& file = raw.file;

  // Match the file's tensors to the targets, then read them in file order.
  std::vector<std::pair<const SafetensorsEntry*, const SafetensorsTarget*>> order;
  for (const SafetensorsTarget& t : tensors) {
    auto it = file.tensors.find(t.name);
    if (it == file.tensors.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": tensor ", t.name, " is missing (another model shape?)"));
    }
    const SafetensorsEntry& e = it->second;
    if (e.dtype != "F32" || e.shape != t.shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": tensor ", t.name, " is ", e.dtype, " ", ShapeText(e.shape),
          ", the job's model needs F32 ", ShapeText(t.shape)));
    }
    order.emplace_back(&e, &t);
  }
  if (file.tensors.size() != tensors.size()) {
    for (const auto& [name, e] : file.tensors) {
      const bool known = std::any_of(tensors.begin(), tensors.end(),
                                     [&](const SafetensorsTarget& t) { return t.name == name; });
      if (!known) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": tensor ", name, " is not part of the job's model (another model shape?)"));
      }
    }
  }
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.first->begin < b.first->begin; });
  const bool hooked = std::any_of(tensors.begin(), tensors.end(),
                                  [](const SafetensorsTarget& t) { return bool(t.done); });
  for (size_t i = 0; hooked && i < order.size(); ++i) {
    if (order[i].second != &tensors[i]) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": tensor ", order[i].second->name, " is stored where ", tensors[i].name,
          " was expected; streamed loads need the order this program writes"));
    }
  }
  int64_t expect = 0;
  for (const auto& [e, t] : order) {
    if (e->begin != expect || e->end - e->begin != Numel(t->shape) * 4) {
      return Malformed(path, absl::StrCat("tensor ", t->name, " is not packed after the one before"));
    }
    expect = e->end;
  }
  if (file.data_offset + expect != size) {
    return Malformed(path, absl::StrCat("the file is ", size, " bytes, its header describes ",
                                        file.data_offset + expect));
  }

  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", strerror(errno)));
  Sha256 digest;
  digest.Update(raw.bytes.data(), raw.bytes.size());
  absl::Status status;
  for (const auto& [e, t] : order) {
    status = ReadInto(fd, path, file.data_offset + e->begin, e->end - e->begin,
                      reinterpret_cast<char*>(t->data), digest);
    if (status.ok() && t->done) status = t->done();
    if (!status.ok()) break;
  }
  close(fd);
  RETURN_IF_ERROR(status);
  return digest.HexDigest();
}

absl::StatusOr<std::vector<float>> ReadSafetensorsTensor(
    const std::string& path, const SafetensorsFile& file, const std::string& name) {
  auto it = file.tensors.find(name);
  if (it == file.tensors.end()) {
    return absl::NotFoundError(absl::StrCat(path, ": no tensor ", name));
  }
  const SafetensorsEntry& e = it->second;
  if (e.dtype != "F32" || (e.end - e.begin) != Numel(e.shape) * 4) {
    return Malformed(path, absl::StrCat("tensor ", name, " is not a dense F32 tensor"));
  }
  ASSIGN_OR_RETURN(std::string bytes, ReadFileRange(path, file.data_offset + e.begin, e.end - e.begin));
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

}  // namespace stronghold::core
