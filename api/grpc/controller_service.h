// The controller's gRPC services: Controller (controller.proto), plus Admin and Catalog
// (kv.proto) so that `gojodb cluster status` and `gojodb collections ...` work against a
// controller too. A follower forwards leader-only calls to the leader (one hop: a
// forwarded call that meets a follower again answers UNAVAILABLE with the leader hint,
// and the client retries).
#pragma once

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>

#include "core/controller/controller.h"
#include "gojodb/v1/controller.grpc.pb.h"
#include "gojodb/v1/kv.grpc.pb.h"

namespace gojodb::rpc {

// Conversions between the controller's records and their protobuf forms.
void ToProto(const controller::NodeRecord& in, v1::NodeDescriptor* out);
controller::NodeRecord FromProto(const v1::NodeDescriptor& in);
void ToProto(const controller::ShardRecord& in, v1::ShardDescriptor* out);
controller::ShardRecord FromProto(const v1::ShardDescriptor& in);
void ToProto(const controller::Settings& in, v1::Settings* out);

// Channels to other controller members, by id; addresses come from `resolve`.
class LeaderChannels {
 public:
  // Returns the gRPC address of member `id`, or "" if unknown.
  using Resolver = std::function<std::string(uint64_t id)>;
  explicit LeaderChannels(Resolver resolve) : resolve_(std::move(resolve)) {}
  std::shared_ptr<grpc::Channel> Get(uint64_t id);

 private:
  Resolver resolve_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;  // GUARDED_BY(mu_)
};

class ControllerServices {
 public:
  // Pointers are not owned and must outlive the services.
  ControllerServices(controller::Controller* c, LeaderChannels* leaders);
  ~ControllerServices();
  void RegisterOn(grpc::ServerBuilder* builder);

 private:
  class ControllerImpl;
  class AdminImpl;
  class CatalogImpl;
  std::unique_ptr<ControllerImpl> controller_;
  std::unique_ptr<AdminImpl> admin_;
  std::unique_ptr<CatalogImpl> catalog_;
};

}  // namespace gojodb::rpc
