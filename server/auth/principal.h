// Who is calling: the identity every RPC is made under (docs/security.md).
//
// A principal is derived per call by server/auth/caller_identity.h from how
// the caller reached the daemon: a unix socket peer's kernel credentials
// (SO_PEERCRED), a verified TLS client certificate, or a bearer token. Its
// name is what a job records as its owner (Job.owner) and what per-principal
// limits count against; `admin` lets it act on every job.
#ifndef STRONGHOLD_SERVER_AUTH_PRINCIPAL_H_
#define STRONGHOLD_SERVER_AUTH_PRINCIPAL_H_

#include <cstdint>
#include <string>

namespace stronghold::server {

struct Principal {
  enum class Kind {
    kUnixUser,     // a unix socket peer: name "uid:<uid>"
    kCertificate,  // TCP, a verified client certificate: name = its subject
    kToken,        // TCP, a bearer token: name = the token file's principal
    kInsecureLoopback,  // TCP on --insecure_loopback (tests only):
                        // "insecure-loopback"
  };

  std::string name;  // never empty for an identified caller
  Kind kind = Kind::kUnixUser;
  // The unix peer's user and primary group; -1 for the other kinds.
  int64_t uid = -1;
  int64_t gid = -1;
  // Root, or a member of the daemon's admin group (primary or supplementary,
  // as the kernel saw the peer when it connected): may act on every job.
  bool admin = false;
};

// The name of a unix socket peer's principal: "uid:1000".
inline std::string UnixPrincipalName(int64_t uid) {
  return "uid:" + std::to_string(uid);
}

// The principal of plain loopback TCP (--insecure_loopback): every such
// client is this one principal.
inline constexpr char kInsecureLoopbackPrincipal[] = "insecure-loopback";

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_AUTH_PRINCIPAL_H_
