// How strongholdctl secures its channel to a TCP address, from its flags
// (--tls-ca, --tls-cert, --tls-key, --token-file) and $STRONGHOLD_TOKEN, and
// what it tells the user when the daemon refuses it (docs/security.md).
//
// A unix socket needs none of it (the daemon knows its peers from the
// kernel): the flags are refused there and $STRONGHOLD_TOKEN is ignored. On
// TCP any of them turns TLS on; without any the channel is plain, for a
// daemon on --insecure_loopback.
#ifndef STRONGHOLD_CLIENT_CHANNEL_SECURITY_H_
#define STRONGHOLD_CLIENT_CHANNEL_SECURITY_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "client/daemon_client.h"

namespace stronghold::client {

struct SecurityFlags {
  std::optional<std::string> tls_ca;      // --tls-ca FILE
  std::optional<std::string> tls_cert;    // --tls-cert FILE
  std::optional<std::string> tls_key;     // --tls-key FILE
  std::optional<std::string> token_file;  // --token-file FILE
  std::string token_env;                  // $STRONGHOLD_TOKEN; empty = unset
};

// Reads and checks the files for `target` (a gRPC target). INVALID_ARGUMENT
// naming the flag and the file for one that cannot be read or is not what
// it should be, a certificate without its key, a token with characters a
// header cannot carry, or TLS flags with a unix socket.
absl::StatusOr<ChannelSecurity> ResolveChannelSecurity(
    const SecurityFlags& flags, const std::string& target);

// For an error from a call to `address` that TLS or authentication
// explains (a refused token or certificate, a host name the daemon's
// certificate does not name, a daemon certificate that does not verify, a
// unix socket the user may not open): a sentence saying what happened and
// what to check. nullopt for other errors.
std::optional<std::string> SecurityAdvice(const absl::Status& status,
                                          const std::string& address,
                                          const ChannelSecurity& security);

}  // namespace stronghold::client

#endif  // STRONGHOLD_CLIENT_CHANNEL_SECURITY_H_
