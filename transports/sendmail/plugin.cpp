#include "sendmail_transport.hpp"

#include <postern/plugin.hpp>

POSTERN_TRANSPORT_PLUGIN(postern::transports::sendmail_transport, "sendmail", "1.0.0",
                         "Hands mail to a local sendmail-compatible program (Postfix, Sendmail, msmtp)")
