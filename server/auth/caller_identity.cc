#include "server/auth/caller_identity.h"

#include <grpc/grpc_security_constants.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace stronghold::server {
namespace {

constexpr char kAuthorization[] = "authorization";
constexpr absl::string_view kBearer = "Bearer ";

template <typename Metadata>
std::vector<std::string> AuthorizationValues(const Metadata& metadata) {
  std::vector<std::string> values;
  auto [begin, end] = metadata.equal_range(kAuthorization);
  for (auto it = begin; it != end; ++it)
    values.emplace_back(it->second.data(), it->second.size());
  return values;
}

std::string AcceptedWays(const TcpAuthPolicy& policy) {
  if (policy.client_certificates && policy.tokens != nullptr) {
    return "a client certificate signed by a CA it trusts or a bearer token";
  }
  return policy.tokens != nullptr
             ? "a bearer token"
             : "a client certificate signed by a CA it trusts";
}

}  // namespace

absl::StatusOr<Principal> IdentifyTcpCaller(const TcpAuthPolicy& policy,
                                            const TcpCredentials& credentials) {
  if (policy.insecure_loopback) {
    return Principal{.name = kInsecureLoopbackPrincipal,
                     .kind = Principal::Kind::kInsecureLoopback};
  }
  if (policy.tokens != nullptr && !credentials.authorization.empty()) {
    if (credentials.authorization.size() > 1) {
      return absl::UnauthenticatedError(
          "more than one \"authorization\" header");
    }
    const std::string& value = credentials.authorization.front();
    if (!absl::StartsWithIgnoreCase(value, kBearer) ||
        value.size() == kBearer.size()) {
      return absl::UnauthenticatedError(
          "the \"authorization\" header is not \"Bearer <token>\"");
    }
    std::optional<std::string> principal =
        policy.tokens->Find(value.substr(kBearer.size()));
    if (!principal.has_value()) {
      return absl::UnauthenticatedError(
          "the bearer token is not one the daemon accepts");
    }
    return Principal{.name = *std::move(principal),
                     .kind = Principal::Kind::kToken};
  }
  if (policy.client_certificates && !credentials.verified_subject.empty()) {
    return Principal{.name = credentials.verified_subject,
                     .kind = Principal::Kind::kCertificate};
  }
  return absl::UnauthenticatedError(absl::StrCat(
      "the daemon requires ", AcceptedWays(policy), " on its TCP listener"));
}

std::string VerifiedSubject(const grpc::AuthContext& context) {
  if (!context.IsPeerAuthenticated()) return "";
  const std::vector<grpc::string_ref> subjects =
      context.FindPropertyValues(GRPC_X509_SUBJECT_PROPERTY_NAME);
  if (subjects.empty()) return "";
  return std::string(subjects.front().data(), subjects.front().size());
}

absl::StatusOr<Principal> CallerIdentity::Identify(
    const grpc::ServerContextBase& context) const {
  const std::string peer = context.peer();
  if (absl::StartsWith(peer, "fd:")) {
    absl::StatusOr<UnixPeer> unix_peer = unix_peers_->Find(peer);
    if (!unix_peer.ok()) return unix_peer.status();
    return Principal{.name = UnixPrincipalName(unix_peer->uid),
                     .kind = Principal::Kind::kUnixUser,
                     .uid = unix_peer->uid,
                     .gid = unix_peer->gid,
                     .admin = unix_peer->admin};
  }
  if (absl::StartsWith(peer, "ipv4:") || absl::StartsWith(peer, "ipv6:")) {
    TcpCredentials credentials{
        .authorization = AuthorizationValues(context.client_metadata())};
    if (std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
        auth != nullptr) {
      credentials.verified_subject = VerifiedSubject(*auth);
    }
    return IdentifyTcpCaller(tcp_, credentials);
  }
  return absl::UnauthenticatedError(
      absl::StrCat("unknown transport of peer \"", peer, "\""));
}

grpc::Status TcpAuthProcessor::Process(const InputMetadata& metadata,
                                       grpc::AuthContext* context,
                                       OutputMetadata*, OutputMetadata*) {
  TcpCredentials credentials{.authorization = AuthorizationValues(metadata)};
  if (context != nullptr)
    credentials.verified_subject = VerifiedSubject(*context);
  const absl::StatusOr<Principal> principal =
      IdentifyTcpCaller(policy_, credentials);
  if (principal.ok()) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      std::string(principal.status().message()));
}

}  // namespace stronghold::server
