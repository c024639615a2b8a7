#include "client/channel_security.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/daemon_address.h"
#include "core/util/file_util.h"
#include "core/util/pem.h"
#include "core/util/status_macros.h"

namespace stronghold::client {
namespace {

// A token as a header carries it. The token itself is never printed.
absl::StatusOr<std::string> CheckToken(absl::string_view token,
                                       absl::string_view source) {
  token = absl::StripAsciiWhitespace(token);
  bool valid = !token.empty();
  for (const char c : token) valid = valid && c > 0x20 && c < 0x7f;
  if (!valid) {
    return absl::InvalidArgumentError(
        absl::StrCat(source,
                     ": a token is one word of printable ASCII (no spaces or "
                     "control characters)"));
  }
  return std::string(token);
}

}  // namespace

absl::StatusOr<ChannelSecurity> ResolveChannelSecurity(
    const SecurityFlags& flags, const std::string& target) {
  const bool any_flag =
      flags.tls_ca.has_value() || flags.tls_cert.has_value() ||
      flags.tls_key.has_value() || flags.token_file.has_value();
  if (UnixSocketPath(target).has_value() ||
      absl::StartsWith(target, "unix-abstract:")) {
    if (any_flag) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tls-ca, --tls-cert, --tls-key and --token-file apply to TCP "
          "addresses; ",
          target,
          " is a unix socket, where the daemon knows you from the kernel"));
    }
    return ChannelSecurity{};
  }
  if (flags.tls_cert.has_value() != flags.tls_key.has_value()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key go together: the certificate and its private "
        "key");
  }
  ChannelSecurity security;
  security.tls = any_flag || !flags.token_env.empty();
  if (flags.tls_ca.has_value()) {
    ASSIGN_OR_RETURN(security.root_certs_pem,
                     core::ReadPemFile("--tls-ca", *flags.tls_ca,
                                       core::PemKind::kCertificates));
  }
  if (flags.tls_cert.has_value()) {
    ASSIGN_OR_RETURN(security.cert_chain_pem,
                     core::ReadPemFile("--tls-cert", *flags.tls_cert,
                                       core::PemKind::kCertificates));
    ASSIGN_OR_RETURN(security.private_key_pem,
                     core::ReadPemFile("--tls-key", *flags.tls_key,
                                       core::PemKind::kPrivateKey));
    if (absl::Status s = core::CheckKeyMatchesCertificate(
            security.private_key_pem, security.cert_chain_pem);
        !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tls-key: ", *flags.tls_key, ": ", s.message(), " of --tls-cert"));
    }
  }
  if (flags.token_file.has_value()) {
    absl::StatusOr<std::string> text = core::ReadFile(*flags.token_file);
    if (!text.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--token-file: ", text.status().message()));
    }
    const absl::string_view first_line =
        absl::string_view(*text).substr(0, text->find('\n'));
    ASSIGN_OR_RETURN(security.bearer_token,
                     CheckToken(first_line, absl::StrCat("--token-file: ",
                                                         *flags.token_file)));
  } else if (!flags.token_env.empty()) {
    ASSIGN_OR_RETURN(security.bearer_token,
                     CheckToken(flags.token_env, "$STRONGHOLD_TOKEN"));
  }
  return security;
}

std::optional<std::string> SecurityAdvice(const absl::Status& status,
                                          const std::string& address,
                                          const ChannelSecurity& security) {
  const absl::string_view message = status.message();
  const bool has_cert = !security.cert_chain_pem.empty();
  const bool has_token = !security.bearer_token.empty();
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    return absl::StrCat(
        "the daemon at ", address, " did not accept your credentials (",
        message, "); ",
        has_token ? "check the token (--token-file or $STRONGHOLD_TOKEN)"
        : has_cert
            ? "check that it accepts your client certificate (--tls-cert), or "
              "use a token (--token-file or $STRONGHOLD_TOKEN)"
            : "give a client certificate (--tls-cert and --tls-key) or a token "
              "(--token-file or $STRONGHOLD_TOKEN)");
  }
  if (status.code() != absl::StatusCode::kUnavailable &&
      status.code() != absl::StatusCode::kUnknown) {
    return std::nullopt;
  }
  constexpr absl::string_view kPeerName = "Peer name ";
  if (const size_t at = message.find(kPeerName);
      at != absl::string_view::npos &&
      absl::StrContains(message, "is not in peer certificate")) {
    absl::string_view name = message.substr(at + kPeerName.size());
    name = name.substr(0, name.find(' '));
    return absl::StrCat(
        "the daemon's TLS certificate is not issued for \"", name,
        "\", the host in ", address,
        ": connect with a host name or address that its certificate names");
  }
  if (!security.tls && UnixSocketPath(address).has_value() &&
      absl::StrContains(message, "Permission denied")) {
    return absl::StrCat(
        "you may not open the socket ", *UnixSocketPath(address),
        " (permission denied): it admits the daemon's user and the socket's "
        "group; ask the daemon's administrator to add you to that group");
  }
  if (security.tls && absl::StrContains(message, "certificate verify failed")) {
    return absl::StrCat("cannot verify the TLS certificate of the daemon at ",
                        address, " (", message,
                        "): give the CA that signed it with --tls-ca");
  }
  if (absl::StrContains(message, "Socket closed") ||
      absl::StrContains(message, "Connection reset")) {
    if (!security.tls) {
      return absl::StrCat(
          "the daemon at ", address, " closed the connection (", message,
          "); if it serves TLS, give its CA with --tls-ca and a client "
          "certificate (--tls-cert, --tls-key) or a token (--token-file)");
    }
    return absl::StrCat(
        "the daemon at ", address, " refused the connection (", message,
        "), as it does when ",
        has_cert
            ? "it does not trust your client certificate: check that "
              "--tls-cert is signed by a CA the daemon trusts (its "
              "--tls_client_ca)"
            : "it requires a client certificate: give --tls-cert and --tls-key",
        has_token
            ? ""
            : ", or use a token (--token-file) if the daemon accepts tokens");
  }
  return std::nullopt;
}

}  // namespace stronghold::client
