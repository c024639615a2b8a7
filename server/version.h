#ifndef STRONGHOLD_SERVER_VERSION_H_
#define STRONGHOLD_SERVER_VERSION_H_

namespace stronghold::server {

inline constexpr char kVersion[] = "0.1.0";

}  // namespace stronghold::server

#endif  // STRONGHOLD_SERVER_VERSION_H_
