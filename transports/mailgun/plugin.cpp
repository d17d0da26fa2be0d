#include "mailgun_transport.hpp"

#include <postern/plugin.hpp>

POSTERN_TRANSPORT_PLUGIN(postern::transports::mailgun_transport, "mailgun", "1.0.0",
                         "Sends mail through Mailgun's HTTP API (messages.mime, libcurl)")
