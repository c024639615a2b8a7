#include "core/dist/c10d_communicator.h"

#include <torch/torch.h>

#include <exception>
#include <string>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/util/status_macros.h"

#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace stronghold::core {
namespace {

// The status of the exception being handled, for collective `what`: a
// timeout is DEADLINE_EXCEEDED, anything else (a dead or misbehaving peer)
// UNAVAILABLE.
absl::Status CollectiveError(const char* what, int rank, int size) {
  std::string message;
  try {
    throw;
  } catch (const c10::Error& e) {
    message = e.what_without_backtrace();
  } catch (const std::exception& e) {
    message = e.what();
  } catch (...) {
    message = "unknown exception";
  }
  const std::string text = absl::StrCat("collective ", what, " (rank ", rank,
                                        " of ", size, "): ", message);
  const std::string lower = absl::AsciiStrToLower(message);
  const bool timeout = absl::StrContains(lower, "timed out") ||
                       absl::StrContains(lower, "timeout");
  return timeout ? absl::DeadlineExceededError(text)
                 : absl::UnavailableError(text);
}

// Waits for a collective (its failure throws).
absl::Status Wait(const c10::intrusive_ptr<c10d::Work>& work) {
  work->wait();
  return absl::OkStatus();
}

// alltoall_base with equal splits (its split arguments are references).
c10::intrusive_ptr<c10d::Work> AllToAll(c10d::Backend* group, at::Tensor out,
                                        at::Tensor in) {
  std::vector<int64_t> equal;
  return group->alltoall_base(out, in, equal, equal);
}

class C10dCommunicator final : public Communicator {
 public:
  C10dCommunicator(const C10dCommunicatorOptions& options,
                   c10::intrusive_ptr<c10d::Backend> gloo,
                   c10::intrusive_ptr<c10d::Backend> nccl)
      : options_(options), gloo_(std::move(gloo)), nccl_(std::move(nccl)) {}

  int rank() const override { return options_.rank; }
  int world_size() const override { return options_.world_size; }
  bool ordered() const override { return options_.ordered; }

  absl::Status ReduceScatterSum(const at::Tensor& input,
                                const at::Tensor& output) override {
    return Run("reduce-scatter", [&] {
      Check(input.numel() == output.numel() * world_size(), "reduce-scatter");
      if (!options_.ordered) {
        at::Tensor out = output;
        at::Tensor in = input;
        return Wait(DeviceGroup(input)->_reduce_scatter_base(out, in));
      }
      at::Tensor pieces = at::empty_like(input);
      RETURN_IF_ERROR(Wait(AllToAll(DeviceGroup(input), pieces, input)));
      SumInOrder(pieces, output);
      return absl::OkStatus();
    });
  }

  absl::Status GatherPieces(const at::Tensor& input,
                            const at::Tensor& output) override {
    return Run("gather-pieces", [&] {
      Check(input.numel() == output.numel(), "gather-pieces");
      Check(input.numel() % world_size() == 0, "gather-pieces");
      return Wait(AllToAll(DeviceGroup(input), output, input));
    });
  }

  absl::Status AllGather(const at::Tensor& input,
                         const at::Tensor& output) override {
    return Run("all-gather", [&] {
      Check(output.numel() == input.numel() * world_size(), "all-gather");
      at::Tensor out = output;
      at::Tensor in = input;
      return Wait(DeviceGroup(input)->_allgather_base(out, in));
    });
  }

  absl::Status AllReduce(const at::Tensor& tensor, ReduceOp op) override {
    return Run("all-reduce", [&] {
      if (!options_.ordered || op == ReduceOp::kMax) {
        std::vector<at::Tensor> tensors{tensor};
        c10d::AllreduceOptions o;
        o.reduceOp =
            op == ReduceOp::kSum ? c10d::ReduceOp::SUM : c10d::ReduceOp::MAX;
        return Wait(DeviceGroup(tensor)->allreduce(tensors, o));
      }
      at::Tensor all =
          at::empty({world_size() * tensor.numel()}, tensor.options());
      at::Tensor in = tensor.reshape({-1});
      RETURN_IF_ERROR(Wait(DeviceGroup(tensor)->_allgather_base(all, in)));
      SumInOrder(all, tensor.view({-1}));
      return absl::OkStatus();
    });
  }

  absl::Status AllGatherHost(absl::Span<const double> in,
                             absl::Span<double> out) override {
    return GatherHost("host all-gather", in.data(), in.size(), out.data(),
                      out.size(), torch::kFloat64);
  }
  absl::Status AllGatherHost(absl::Span<const int64_t> in,
                             absl::Span<int64_t> out) override {
    return GatherHost("host all-gather", in.data(), in.size(), out.data(),
                      out.size(), torch::kInt64);
  }
  absl::Status AllReduceHost(absl::Span<double> values, ReduceOp op) override {
    return ReduceHost(values, op);
  }
  absl::Status AllReduceHost(absl::Span<int64_t> values, ReduceOp op) override {
    return ReduceHost(values, op);
  }

  absl::Status Barrier() override {
    return Run("barrier",
               [&] { return Wait(gloo_->barrier(c10d::BarrierOptions())); });
  }

 private:
  // Runs a collective; exceptions become its status. After a failure every
  // call fails with it: the peers' positions in the sequence are unknown.
  template <typename F>
  absl::Status Run(const char* what, F&& body) {
    if (!broken_.ok()) return broken_;
    absl::Status status;
    try {
      status = body();
    } catch (...) {
      status = CollectiveError(what, rank(), world_size());
    }
    if (!status.ok()) broken_ = status;
    return status;
  }

  static void Check(bool ok, const char* what) {
    TORCH_CHECK(ok, what, ": sizes do not match the world size");
  }

  // Adds `pieces` (world_size() x out.numel()) into `out` in rank order.
  void SumInOrder(const at::Tensor& pieces, const at::Tensor& out) {
    const int64_t n = out.numel();
    at::Tensor flat = out.view({-1});
    flat.copy_(pieces.narrow(0, 0, n));
    for (int r = 1; r < world_size(); ++r)
      flat.add_(pieces.narrow(0, r * n, n));
  }

  c10d::Backend* DeviceGroup(const at::Tensor& t) {
    if (t.is_cuda()) {
      TORCH_CHECK(nccl_, "a CUDA tensor, but this build has no NCCL group");
      return nccl_.get();
    }
    return gloo_.get();
  }

  absl::Status GatherHost(const char* what, const void* in, size_t n, void* out,
                          size_t out_n, torch::ScalarType type) {
    return Run(what, [&] {
      Check(out_n == n * world_size(), what);
      const auto o = torch::TensorOptions().dtype(type);
      at::Tensor src =
          torch::from_blob(const_cast<void*>(in), {static_cast<int64_t>(n)}, o);
      at::Tensor dst = torch::from_blob(out, {static_cast<int64_t>(out_n)}, o);
      return Wait(gloo_->_allgather_base(dst, src));
    });
  }

  template <typename T>
  absl::Status ReduceHost(absl::Span<T> values, ReduceOp op) {
    std::vector<T> all(values.size() * world_size());
    absl::Status s =
        AllGatherHost(absl::Span<const T>(values), absl::Span<T>(all));
    if (!s.ok()) return s;
    for (size_t i = 0; i < values.size(); ++i) {
      T acc = all[i];
      for (int r = 1; r < world_size(); ++r) {
        const T v = all[r * values.size() + i];
        acc = op == ReduceOp::kSum ? acc + v : (v > acc ? v : acc);
      }
      values[i] = acc;
    }
    return absl::OkStatus();
  }

  const C10dCommunicatorOptions options_;
  c10::intrusive_ptr<c10d::Backend> gloo_;  // the host's collectives
  c10::intrusive_ptr<c10d::Backend> nccl_;  // CUDA tensors'; null: none
  absl::Status broken_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Communicator>> CreateC10dCommunicator(
    const c10::intrusive_ptr<c10d::Store>& store,
    const C10dCommunicatorOptions& options) {
  if (options.world_size < 1 || options.rank < 0 ||
      options.rank >= options.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", options.rank, " of world size ",
                     options.world_size, ": need 0 <= rank < world size"));
  }
  if (!store) return absl::InvalidArgumentError("no c10d store");
  try {
    auto gloo_options =
        c10d::ProcessGroupGloo::Options::create(options.timeout);
    gloo_options->devices.push_back(
        options.gloo_hostname.empty()
            ? c10d::ProcessGroupGloo::createDefaultDevice()
            : c10d::ProcessGroupGloo::createDeviceForHostname(
                  options.gloo_hostname));
    c10::intrusive_ptr<c10d::Backend> nccl;
#ifdef USE_C10D_NCCL
    auto gloo_store = c10::make_intrusive<c10d::PrefixStore>("gloo", store);
    auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
    nccl_options->timeout = options.timeout;
    nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(
        c10::make_intrusive<c10d::PrefixStore>("nccl", store), options.rank,
        options.world_size, nccl_options);
#else
    const c10::intrusive_ptr<c10d::Store>& gloo_store = store;
#endif
    c10::intrusive_ptr<c10d::Backend> gloo =
        c10::make_intrusive<c10d::ProcessGroupGloo>(
            gloo_store, options.rank, options.world_size, gloo_options);
    return std::unique_ptr<Communicator>(
        new C10dCommunicator(options, std::move(gloo), std::move(nccl)));
  } catch (...) {
    return CollectiveError("connecting the process group", options.rank,
                           options.world_size);
  }
}

}  // namespace stronghold::core
