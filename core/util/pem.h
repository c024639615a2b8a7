// Checks of PEM certificate and key files before they are handed to gRPC's
// TLS (which would only fail later, at a handshake, with a message that
// names no file). Parsing is OpenSSL's; nothing here is cryptography of our
// own.
#ifndef STRONGHOLD_CORE_UTIL_PEM_H_
#define STRONGHOLD_CORE_UTIL_PEM_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace stronghold::core {

// OK when `pem` holds one or more X.509 certificates and nothing else that
// fails to parse. INVALID_ARGUMENT saying what is wrong otherwise.
absl::Status CheckPemCertificates(absl::string_view pem);

// OK when `pem` holds an unencrypted private key (an encrypted one would need
// a passphrase nobody is there to type). INVALID_ARGUMENT otherwise.
absl::Status CheckPemPrivateKey(absl::string_view pem);

// OK when the private key in `key_pem` belongs to the first certificate in
// `cert_pem` (both already checked). INVALID_ARGUMENT otherwise.
absl::Status CheckKeyMatchesCertificate(absl::string_view key_pem,
                                        absl::string_view cert_pem);

enum class PemKind { kCertificates, kPrivateKey };

// The contents of the PEM file at `path`, checked to hold `kind`.
// INVALID_ARGUMENT starting with `flag` (the flag that named the file) for
// a file that cannot be read or does not hold it.
absl::StatusOr<std::string> ReadPemFile(absl::string_view flag,
                                        const std::string& path, PemKind kind);

}  // namespace stronghold::core

#endif  // STRONGHOLD_CORE_UTIL_PEM_H_
