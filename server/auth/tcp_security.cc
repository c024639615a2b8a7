#include "server/auth/tcp_security.h"

#include <arpa/inet.h>
#include <grpcpp/security/server_credentials.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "core/util/pem.h"
#include "core/util/status_macros.h"

namespace stronghold::server {
namespace {

constexpr char kNeeds[] =
    "--tls_cert and --tls_key, and --tls_client_ca (client certificates) "
    "and/or --token_file (bearer tokens)";

}  // namespace

absl::StatusOr<bool> IsLoopbackAddress(const std::string& host_port) {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos || colon + 1 == host_port.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected host:port, got \"", host_port, "\""));
  }
  std::string host = host_port.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  return inet_pton(AF_INET6, host.c_str(), &v6) == 1 &&
         IN6_IS_ADDR_LOOPBACK(&v6);
}

absl::StatusOr<TcpSecurity> SetUpTcpSecurity(
    const TcpSecurityOptions& options) {
  const bool tls =
      !options.tls_cert_file.empty() || !options.tls_key_file.empty();
  const bool client_auth =
      !options.tls_client_ca_file.empty() || !options.token_file.empty();
  if (options.listen.empty()) {
    if (tls || client_auth || options.insecure_loopback) {
      return absl::InvalidArgumentError(
          "--tls_cert, --tls_key, --tls_client_ca, --token_file and "
          "--insecure_loopback apply to the TCP listener, and --listen is not "
          "set");
    }
    return TcpSecurity{};
  }
  ASSIGN_OR_RETURN(const bool loopback, IsLoopbackAddress(options.listen));
  if (options.insecure_loopback) {
    if (!loopback) {
      return absl::InvalidArgumentError(
          absl::StrCat("--insecure_loopback: --listen ", options.listen,
                       " is not a loopback address; plain TCP is for tests on "
                       "127.0.0.0/8, ::1 or localhost only. Serve it with ",
                       kNeeds));
    }
    if (tls || client_auth) {
      return absl::InvalidArgumentError(
          "--insecure_loopback serves plain TCP and cannot be combined with "
          "--tls_cert, --tls_key, --tls_client_ca or --token_file");
    }
    return TcpSecurity{.credentials = grpc::InsecureServerCredentials(),
                       .policy = {.insecure_loopback = true}};
  }
  if (options.tls_cert_file.empty() || options.tls_key_file.empty() ||
      !client_auth) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen ", options.listen,
        " needs TLS and client authentication: ", kNeeds,
        loopback
            ? " (or, for tests on this loopback address, --insecure_loopback)"
            : ""));
  }

  ASSIGN_OR_RETURN(const std::string cert,
                   core::ReadPemFile("--tls_cert", options.tls_cert_file,
                                     core::PemKind::kCertificates));
  ASSIGN_OR_RETURN(const std::string key,
                   core::ReadPemFile("--tls_key", options.tls_key_file,
                                     core::PemKind::kPrivateKey));
  if (absl::Status s = core::CheckKeyMatchesCertificate(key, cert); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--tls_key: ", options.tls_key_file, ": ", s.message(),
                     " of --tls_cert ", options.tls_cert_file));
  }
  TcpSecurity security;
  grpc::SslServerCredentialsOptions ssl(
      GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  ssl.pem_key_cert_pairs.push_back({.private_key = key, .cert_chain = cert});
  if (!options.tls_client_ca_file.empty()) {
    ASSIGN_OR_RETURN(
        ssl.pem_root_certs,
        core::ReadPemFile("--tls_client_ca", options.tls_client_ca_file,
                          core::PemKind::kCertificates));
    security.policy.client_certificates = true;
    // With tokens too, a client may come without a certificate; one it
    // presents is verified all the same.
    ssl.client_certificate_request =
        options.token_file.empty()
            ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
            : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  if (!options.token_file.empty()) {
    absl::StatusOr<TokenTable> tokens = TokenTable::Load(options.token_file);
    if (!tokens.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--token_file: ", tokens.status().message()));
    }
    security.policy.tokens =
        std::make_shared<const TokenTable>(*std::move(tokens));
  }
  security.credentials = grpc::SslServerCredentials(ssl);
  security.credentials->SetAuthMetadataProcessor(
      std::make_shared<TcpAuthProcessor>(security.policy));
  return security;
}

}  // namespace stronghold::server
