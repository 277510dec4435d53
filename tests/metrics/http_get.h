// A minimal HTTP/1.1 GET over loopback (Boost.Beast), for tests that query Prometheus
// and sweepd's /metrics.
#pragma once

#include <string>

namespace sweepd::testing {

// GETs http://host:port/target; returns the body, or throws std::runtime_error.
std::string HttpGet(const std::string& host, int port, const std::string& target);
// Percent-encodes a query parameter value.
std::string UrlEncode(const std::string& value);

}  // namespace sweepd::testing
