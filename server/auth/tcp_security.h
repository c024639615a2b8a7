// The TCP listener's security, from strongholdd's flags (docs/security.md).
//
// TCP is served only with TLS and client authentication: --tls_cert and
// --tls_key (the daemon's certificate), and --tls_client_ca (mutual TLS:
// clients present a certificate that CA signed) and/or --token_file (bearer
// tokens). With both, a client may use either; a certificate it presents is
// verified in any case. Plain TCP is allowed only on a loopback address and
// only with --insecure_loopback (tests). The messages name those flags.
#ifndef STRONGHOLD_SERVER_AUTH_TCP_SECURITY_H_
#define STRONGHOLD_SERVER_AUTH_TCP_SECURITY_H_

#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/auth/caller_identity.h"

namespace stronghold::server {

struct TcpSecurityOptions {
  std::string listen;         // host:port; empty = no TCP listener
  std::string tls_cert_file;  // PEM certificate chain of the daemon
  std::string tls_key_file;   // its PEM private key (unencrypted)
  std::string
      tls_client_ca_file;  // PEM CA certificates that sign client certificates
  std::string token_file;  // server/auth/token_file.h
  bool insecure_loopback = false;
};

struct TcpSecurity {
  // For ServerBuilder::AddListeningPort; null when there is no listener.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  TcpAuthPolicy policy;  // for CallerIdentity
};

// Checks the combination of options and loads their files. INVALID_ARGUMENT
// naming the flags for a combination that is not allowed (a non-loopback
// address without TLS and client authentication above all), and naming the
// flag and the file for one that cannot be read or does not parse.
absl::StatusOr<TcpSecurity> SetUpTcpSecurity(const TcpSecurityOptions& options);

// Whether `host_port` ("127.0.0.1:7070", "[::1]:7070", "localhost:7070")
// names a loopback address; ":7070" and "0.0.0.0:7070" do not.
// INVALID_ARGUMENT for something that is not host:port.
absl::StatusOr<bool> IsLoopbackAddress(const std::string& host_port);

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_AUTH_TCP_SECURITY_H_
