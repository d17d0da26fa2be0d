#include "smtp_transport.hpp"

#include <postern/plugin.hpp>

POSTERN_TRANSPORT_PLUGIN(postern::transports::smtp_transport, "smtp", "1.0.0",
                         "Relays mail through smarthosts over SMTP (pooled connections, PIPELINING, STARTTLS, AUTH)")
