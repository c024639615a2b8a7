#include "core/checkpoint/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/util/file_util.h"
#include "core/util/json.h"
#include "core/util/sha256.h"
#include "core/util/status_macros.h"
#include "core/util/unique_fd.h"

namespace stronghold::core {

namespace {

int64_t Numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::Status Malformed(const std::string& path, absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat(path, ": not a valid safetensors file: ", what));
}

// The largest header accepted, as in the format's reference implementation.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// Bytes per element of each dtype the format defines; 0 = not a dtype.
int64_t DtypeBytes(absl::string_view dtype) {
  static const auto* const kBytes =
      new std::map<std::string, int64_t, std::less<>>{
          {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
          {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
          {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8}};
  auto it = kBytes->find(dtype);
  return it == kBytes->end() ? 0 : it->second;
}

// One tensor's entry, {"dtype", "shape", "data_offsets"} and nothing else,
// checked against the data section's `data_bytes`: the offsets are uint64
// in the format, and any that do not fit, lie outside the data or disagree
// with the shape's bytes are refused (INVALID_ARGUMENT, the caller adds the
// file), so nothing downstream can overflow on them.
absl::StatusOr<SafetensorsEntry> ParseEntry(const JsonValue& v,
                                            int64_t data_bytes) {
  if (v.kind != JsonValue::Kind::kObject) {
    return absl::InvalidArgumentError(
        absl::StrCat("is ", JsonKindName(v.kind), ", not an object"));
  }
  for (const auto& [key, unused] : v.object) {
    if (key != "dtype" && key != "shape" && key != "data_offsets") {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown key ", JsonQuoted(key)));
    }
  }
  SafetensorsEntry e;
  ASSIGN_OR_RETURN(e.dtype, v.String("dtype"));
  const int64_t element_bytes = DtypeBytes(e.dtype);
  if (element_bytes == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown dtype ", JsonQuoted(e.dtype)));
  }
  ASSIGN_OR_RETURN(const JsonValue* shape,
                   v.Member("shape", JsonValue::Kind::kArray));
  int64_t bytes = element_bytes;
  for (const JsonValue& d : shape->array) {
    ASSIGN_OR_RETURN(int64_t dim, d.AsInt64("a \"shape\" dimension"));
    if (dim < 0)
      return absl::InvalidArgumentError(
          absl::StrCat("shape dimension ", dim, " < 0"));
    if (__builtin_mul_overflow(bytes, dim, &bytes)) {
      return absl::InvalidArgumentError("the shape's bytes overflow 64 bits");
    }
    e.shape.push_back(dim);
  }
  ASSIGN_OR_RETURN(const JsonValue* offsets,
                   v.Member("data_offsets", JsonValue::Kind::kArray));
  if (offsets->array.size() != 2) {
    return absl::InvalidArgumentError("\"data_offsets\" needs 2 numbers");
  }
  ASSIGN_OR_RETURN(uint64_t begin,
                   offsets->array[0].AsUint64("\"data_offsets\"[0]"));
  ASSIGN_OR_RETURN(uint64_t end,
                   offsets->array[1].AsUint64("\"data_offsets\"[1]"));
  if (begin > end || end > static_cast<uint64_t>(data_bytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("data_offsets [", begin, ", ", end, "] lie outside the ",
                     data_bytes, " bytes of data"));
  }
  e.begin = static_cast<int64_t>(begin);
  e.end = static_cast<int64_t>(end);
  if (e.end - e.begin != bytes) {
    return absl::InvalidArgumentError(absl::StrCat("holds ", e.end - e.begin,
                                                   " bytes, its ", e.dtype,
                                                   " shape needs ", bytes));
  }
  return e;
}

// The JSON header (whose data section has `data_bytes`): an object of
// entries and an optional "__metadata__" object of strings.
absl::StatusOr<SafetensorsFile> ParseHeader(absl::string_view text,
                                            int64_t data_bytes,
                                            const std::string& path) {
  JsonOptions options;
  options.max_bytes = kMaxHeaderBytes;
  absl::StatusOr<JsonValue> root = ParseJson(text, options);
  if (!root.ok())
    return Malformed(path, absl::StrCat("header: ", root.status().message()));
  if (root->kind != JsonValue::Kind::kObject)
    return Malformed(path, "the header is not an object");
  SafetensorsFile file;
  for (const auto& [name, value] : root->object) {
    if (name == "__metadata__") {
      if (value.kind != JsonValue::Kind::kObject) {
        return Malformed(path, "\"__metadata__\" is not an object");
      }
      for (const auto& [k, v] : value.object) {
        if (v.kind != JsonValue::Kind::kString) {
          return Malformed(path, absl::StrCat("metadata ", JsonQuoted(k),
                                              " is not a string"));
        }
        file.metadata[k] = v.text;
      }
      continue;
    }
    absl::StatusOr<SafetensorsEntry> e = ParseEntry(value, data_bytes);
    if (!e.ok()) {
      return Malformed(
          path, absl::StrCat("tensor ", JsonQuoted(name), " (header byte ",
                             value.offset, "): ", e.status().message()));
    }
    file.tensors[name] = *std::move(e);
  }
  return file;
}

}  // namespace

absl::StatusOr<std::string> WriteSafetensors(
    const std::string& path, const std::vector<SafetensorsTensor>& tensors,
    const std::map<std::string, std::string>& metadata) {
  std::vector<std::string> fields;
  if (!metadata.empty()) {
    std::vector<std::string> kv;
    for (const auto& [k, v] : metadata)
      kv.push_back(absl::StrCat(JsonQuoted(k), ":", JsonQuoted(v)));
    fields.push_back(
        absl::StrCat("\"__metadata__\":{", absl::StrJoin(kv, ","), "}"));
  }
  int64_t offset = 0;
  for (const SafetensorsTensor& t : tensors) {
    const int64_t bytes = Numel(t.shape) * 4;
    fields.push_back(
        absl::StrCat(JsonQuoted(t.name), ":{\"dtype\":\"F32\",\"shape\":[",
                     absl::StrJoin(t.shape, ","), "],\"data_offsets\":[",
                     offset, ",", offset + bytes, "]}"));
    offset += bytes;
  }
  std::string header = absl::StrCat("{", absl::StrJoin(fields, ","), "}");
  header.append((8 - header.size() % 8) % 8, ' ');
  uint64_t n = header.size();
  unsigned char prefix[8];
  for (int i = 0; i < 8; ++i)
    prefix[i] = static_cast<unsigned char>(n >> (8 * i));

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

// Reads exactly `bytes` bytes at `offset` of `fd` into `dst` (hashed into
// `digest` when not null); DATA_LOSS naming `path` when the file ends first.
absl::Status PreadFully(int fd, const std::string& path, int64_t offset,
                        int64_t bytes, char* dst, Sha256* digest) {
  int64_t done = 0;
  while (done < bytes) {
    const size_t want =
        static_cast<size_t>(std::min<int64_t>(bytes - done, 64 << 20));
    const ssize_t n =
        pread(fd, dst + done, want, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(
          absl::StrCat("cannot read ", path, ": ", strerror(errno)));
    }
    if (n == 0)
      return Malformed(path, absl::StrCat("truncated at byte ", offset + done));
    if (digest != nullptr) digest->Update(dst + done, static_cast<size_t>(n));
    done += n;
  }
  return absl::OkStatus();
}

absl::StatusOr<RawHeader> ReadRawHeader(int fd, const std::string& path,
                                        int64_t size) {
  std::string head(8, '\0');
  if (size < 8) return Malformed(path, "shorter than 8 bytes");
  RETURN_IF_ERROR(PreadFully(fd, path, 0, 8, head.data(), nullptr));
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<uint64_t>(static_cast<unsigned char>(head[i])) << (8 * i);
  if (n > kMaxHeaderBytes || static_cast<int64_t>(8 + n) > size) {
    return Malformed(
        path, absl::StrCat("header of ", n, " bytes does not fit in ", size));
  }
  std::string text(n, '\0');
  RETURN_IF_ERROR(
      PreadFully(fd, path, 8, static_cast<int64_t>(n), text.data(), nullptr));
  RawHeader raw;
  ASSIGN_OR_RETURN(raw.file,
                   ParseHeader(text, size - 8 - static_cast<int64_t>(n), path));
  raw.file.data_offset = 8 + static_cast<int64_t>(n);
  raw.bytes = head + text;
  return raw;
}

absl::StatusOr<int64_t> FdSize(int fd, const std::string& path) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return absl::InternalError(
        absl::StrCat("cannot stat ", path, ": ", strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a regular file"));
  }
  return static_cast<int64_t>(st.st_size);
}

// Opens `path` for reading.
absl::StatusOr<UniqueFd> OpenForReading(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid())
    return absl::NotFoundError(
        absl::StrCat("cannot open ", path, ": ", strerror(errno)));
  return fd;
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace

absl::StatusOr<SafetensorsFile> ReadSafetensorsHeader(const std::string& path) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenForReading(path));
  return ReadSafetensorsHeader(fd.get(), path);
}

absl::StatusOr<SafetensorsFile> ReadSafetensorsHeader(int fd,
                                                      const std::string& name) {
  ASSIGN_OR_RETURN(int64_t size, FdSize(fd, name));
  ASSIGN_OR_RETURN(RawHeader raw, ReadRawHeader(fd, name, size));
  return std::move(raw.file);
}

absl::Status ReadSafetensorsBytes(int fd, const std::string& name,
                                  const SafetensorsFile& file,
                                  const SafetensorsEntry& entry, void* dst) {
  return PreadFully(fd, name, file.data_offset + entry.begin,
                    entry.end - entry.begin, static_cast<char*>(dst), nullptr);
}

absl::StatusOr<std::string> ReadSafetensorsInto(
    const std::string& path, const std::vector<SafetensorsTarget>& tensors) {
  ASSIGN_OR_RETURN(UniqueFd fd, OpenForReading(path));
  ASSIGN_OR_RETURN(int64_t size, FdSize(fd.get(), path));
  ASSIGN_OR_RETURN(RawHeader raw, ReadRawHeader(fd.get(), path, size));
  const SafetensorsFile& file = raw.file;

  // Match the file's tensors to the targets, then read them in file order.
  std::vector<std::pair<const SafetensorsEntry*, const SafetensorsTarget*>>
      order;
  for (const SafetensorsTarget& t : tensors) {
    auto it = file.tensors.find(t.name);
    if (it == file.tensors.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": tensor ", t.name, " is missing (another model shape?)"));
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
    // Not a structured binding: clang 14 (the fuzzers' compiler) cannot
    // capture one in a lambda.
    for (const auto& entry : file.tensors) {
      const std::string& name = entry.first;
      const bool known = std::any_of(
          tensors.begin(), tensors.end(),
          [&](const SafetensorsTarget& t) { return t.name == name; });
      if (!known) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": tensor ", name,
            " is not part of the job's model (another model shape?)"));
      }
    }
  }
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.first->begin < b.first->begin;
  });
  const bool hooked =
      std::any_of(tensors.begin(), tensors.end(),
                  [](const SafetensorsTarget& t) { return bool(t.done); });
  for (size_t i = 0; hooked && i < order.size(); ++i) {
    if (order[i].second != &tensors[i]) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": tensor ", order[i].second->name, " is stored where ",
          tensors[i].name,
          " was expected; streamed loads need the order this program writes"));
    }
  }
  int64_t expect = 0;
  for (const auto& [e, t] : order) {
    if (e->begin != expect || e->end - e->begin != Numel(t->shape) * 4) {
      return Malformed(path,
                       absl::StrCat("tensor ", t->name,
                                    " is not packed after the one before"));
    }
    expect = e->end;
  }
  if (file.data_offset + expect != size) {
    return Malformed(path, absl::StrCat("the file is ", size,
                                        " bytes, its header describes ",
                                        file.data_offset + expect));
  }

  Sha256 digest;
  digest.Update(raw.bytes.data(), raw.bytes.size());
  for (const auto& [e, t] : order) {
    RETURN_IF_ERROR(PreadFully(fd.get(), path, file.data_offset + e->begin,
                               e->end - e->begin,
                               reinterpret_cast<char*>(t->data), &digest));
    if (t->done) RETURN_IF_ERROR(t->done());
  }
  return digest.HexDigest();
}

absl::StatusOr<std::vector<float>> ReadSafetensorsTensor(
    const std::string& path, const SafetensorsFile& file,
    const std::string& name) {
  auto it = file.tensors.find(name);
  if (it == file.tensors.end()) {
    return absl::NotFoundError(absl::StrCat(path, ": no tensor ", name));
  }
  const SafetensorsEntry& e = it->second;
  if (e.dtype != "F32" || (e.end - e.begin) != Numel(e.shape) * 4) {
    return Malformed(
        path, absl::StrCat("tensor ", name, " is not a dense F32 tensor"));
  }
  ASSIGN_OR_RETURN(
      std::string bytes,
      ReadFileRange(path, file.data_offset + e.begin, e.end - e.begin));
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

}  // namespace stronghold::core
