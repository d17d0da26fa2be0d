#include "file_transport.hpp"

#include <postern/plugin.hpp>

POSTERN_TRANSPORT_PLUGIN(postern::transports::file_transport, "file", "1.0.0",
                         "Writes mail to local disk: a Maildir per recipient, or one .eml file per message")
