// The principal of each call (server/auth/principal.h, docs/security.md).
//
// The transport decides how a caller is known, and gRPC's peer() tells the
// transports apart:
//  - "fd:N": a unix socket connection the daemon accepted itself; the
//    kernel's credentials of its peer (server/auth/unix_peers.h). Any
//    "authorization" metadata is ignored: the socket's peer is who it is.
//  - "ipv4:..." / "ipv6:...": the TCP listener, which is either TLS with
//    client authentication, where the caller is a bearer token's principal
//    (when --token_file is set and the call carries "authorization: Bearer
//    T") or the subject of the client certificate TLS verified (when
//    --tls_client_ca is set); or plain loopback TCP under
//    --insecure_loopback (tests only), where every caller is
//    "insecure-loopback".
//  - anything else is refused (UNAUTHENTICATED).
//
// On TLS, gRPC's AuthMetadataProcessor (TcpAuthProcessor below) runs the
// same check before a call reaches any service (health and reflection
// included) and refuses it early. It only accepts or refuses: the auth
// context it is given is the connection's, shared by every call on it, so
// nothing per call is stored there; the handler derives the principal again
// from the call's own metadata.
#ifndef STRONGHOLD_SERVER_AUTH_CALLER_IDENTITY_H_
#define STRONGHOLD_SERVER_AUTH_CALLER_IDENTITY_H_

#include <grpcpp/security/auth_metadata_processor.h>
#include <grpcpp/server_context.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/auth/principal.h"
#include "server/auth/token_file.h"
#include "server/auth/unix_peers.h"

namespace stronghold::server {

// How callers on the TCP listener are identified.
struct TcpAuthPolicy {
  // Plain TCP on a loopback address: every caller is "insecure-loopback".
  // Excludes the two below.
  bool insecure_loopback = false;
  // TLS verified the client's certificate: its subject is the principal.
  bool client_certificates = false;
  // Bearer tokens; null = not accepted.
  std::shared_ptr<const TokenTable> tokens;
};

// What a TCP call presented.
struct TcpCredentials {
  // The values of the call's "authorization" metadata (normally none or one).
  std::vector<std::string> authorization;
  // The subject of the client certificate TLS verified ("CN=alice,O=Lab");
  // empty when none was.
  std::string verified_subject;
};

// The principal of a TCP call under `policy`. A call that presents a token
// where tokens are accepted is identified by it alone (a wrong token is
// refused even with a valid certificate). UNAUTHENTICATED saying what is
// missing or wrong otherwise.
absl::StatusOr<Principal> IdentifyTcpCaller(const TcpAuthPolicy& policy,
                                            const TcpCredentials& credentials);

// The subject of the certificate TLS verified for this connection; empty
// when none was.
std::string VerifiedSubject(const grpc::AuthContext& context);

class CallerIdentity {
 public:
  // `unix_peers` (the accepted unix connections) must outlive this.
  CallerIdentity(const UnixPeerTable* unix_peers, TcpAuthPolicy tcp)
      : unix_peers_(unix_peers), tcp_(std::move(tcp)) {}

  // The principal of the call `context` belongs to; UNAUTHENTICATED when it
  // cannot be told.
  absl::StatusOr<Principal> Identify(
      const grpc::ServerContextBase& context) const;

 private:
  const UnixPeerTable* const unix_peers_;
  const TcpAuthPolicy tcp_;
};

// Refuses TLS calls that IdentifyTcpCaller would refuse, before they reach
// a service. Non-blocking: it hashes a token and compares, nothing more.
class TcpAuthProcessor final : public grpc::AuthMetadataProcessor {
 public:
  explicit TcpAuthProcessor(TcpAuthPolicy policy)
      : policy_(std::move(policy)) {}
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& metadata,
                       grpc::AuthContext* context, OutputMetadata* consumed,
                       OutputMetadata* response) override;

 private:
  const TcpAuthPolicy policy_;
};

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_AUTH_CALLER_IDENTITY_H_
