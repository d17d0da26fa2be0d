// A plugin whose constructor rejects its settings, as a real one does for a bad value.
#include <postern/plugin.hpp>

#include <stdexcept>

namespace {
class refusing_transport final : public postern::transport {
 public:
  explicit refusing_transport(postern::host&) { throw std::invalid_argument("setting 'relay' is required"); }
  postern::probe_result probe() override { return {true, ""}; }
  void deliver(postern::delivery_request, postern::delivery_callback) override {}
};
}  // namespace

POSTERN_TRANSPORT_PLUGIN(refusing_transport, "refusing", "0.1.0", "Test plugin that refuses to start")
