#include "core/util/pem.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "core/util/file_util.h"

namespace stronghold::core {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

Bio MemoryBio(absl::string_view pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// OpenSSL's reason for the last failure, and the error queue cleared.
std::string OpenSslError() {
  const unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "no PEM block found";
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : absl::StrCat("OpenSSL error ", code);
}

// Refuses to ask for a passphrase.
int NoPassphrase(char*, int, int, void*) { return -1; }

}  // namespace

absl::Status CheckPemCertificates(absl::string_view pem) {
  Bio bio = MemoryBio(pem);
  int count = 0;
  ERR_clear_error();
  while (
      Cert cert{PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)})
    ++count;
  // The loop ends at the end of the data (PEM_R_NO_START_LINE) or at a
  // block that does not parse.
  const unsigned long last = ERR_peek_last_error();
  const bool clean_end = ERR_GET_LIB(last) == ERR_LIB_PEM &&
                         ERR_GET_REASON(last) == PEM_R_NO_START_LINE;
  if (count == 0 || !clean_end) {
    const std::string why = OpenSslError();
    return absl::InvalidArgumentError(
        count == 0 ? absl::StrCat("not a PEM certificate (", why, ")")
                   : absl::StrCat("certificate ", count + 1,
                                  " does not parse (", why, ")"));
  }
  ERR_clear_error();
  return absl::OkStatus();
}

absl::Status CheckPemPrivateKey(absl::string_view pem) {
  Bio bio = MemoryBio(pem);
  ERR_clear_error();
  Key key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not an unencrypted PEM private key (", OpenSslError(), ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckKeyMatchesCertificate(absl::string_view key_pem,
                                        absl::string_view cert_pem) {
  Bio key_bio = MemoryBio(key_pem);
  Bio cert_bio = MemoryBio(cert_pem);
  ERR_clear_error();
  Key key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassphrase, nullptr));
  Cert cert(PEM_read_bio_X509(cert_bio.get(), nullptr, NoPassphrase, nullptr));
  const bool match = key != nullptr && cert != nullptr &&
                     X509_check_private_key(cert.get(), key.get()) == 1;
  ERR_clear_error();
  if (!match) {
    return absl::InvalidArgumentError(
        "the private key does not belong to the certificate");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadPemFile(absl::string_view flag,
                                        const std::string& path, PemKind kind) {
  absl::StatusOr<std::string> pem = ReadFile(path);
  if (!pem.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", pem.status().message()));
  }
  const absl::Status check = kind == PemKind::kCertificates
                                 ? CheckPemCertificates(*pem)
                                 : CheckPemPrivateKey(*pem);
  if (!check.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", path, ": ", check.message()));
  }
  return pem;
}

}  // namespace stronghold::core
