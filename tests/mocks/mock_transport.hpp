#pragma once
// gmock doubles for every SDK interface, for tests of code that uses them.

#include <postern/transport.hpp>

#include <gmock/gmock.h>

namespace postern::testing {

class mock_transport : public postern::transport {
 public:
  MOCK_METHOD(postern::probe_result, probe, (), (override));
  MOCK_METHOD(void, deliver, (postern::delivery_request request, postern::delivery_callback done), (override));
  MOCK_METHOD(void, stop, (), (override));
};

}  // namespace postern::testing
