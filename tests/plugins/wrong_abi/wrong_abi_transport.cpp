// Compiled with POSTERN_SDK_ABI_VERSION=999: the host must refuse it and name both versions.
#include <postern/plugin.hpp>

namespace {
class wrong_abi_transport final : public postern::transport {
 public:
  explicit wrong_abi_transport(postern::host&) {}
  postern::probe_result probe() override { return {true, ""}; }
  void deliver(postern::delivery_request, postern::delivery_callback) override {}
};
}  // namespace

POSTERN_TRANSPORT_PLUGIN(wrong_abi_transport, "wrong_abi", "0.1.0", "Test plugin built for another ABI")
