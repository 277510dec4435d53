// RpcMetricsInterceptorFactory: times every RPC of both services in one place (a gRPC
// server interceptor) and reports method, status code and latency to CoordinatorMetrics.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include "server/coordinator_metrics.h"

namespace sweepd::server {

class RpcMetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `metrics` must outlive the server.
  explicit RpcMetricsInterceptorFactory(CoordinatorMetrics& metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;

 private:
  CoordinatorMetrics& metrics_;
};

}  // namespace sweepd::server
