#pragma once
// Small RAII and I/O helpers over GMime's C API, shared by the MIME code of the core.

#include <gmime/gmime.h>

#include <memory>
#include <string>
#include <string_view>

namespace postern::mime {

struct gobject_unref {
  void operator()(void* object) const { g_object_unref(object); }
};
/// A GObject reference owned by C++ scope.
template <class T>
using owned = std::unique_ptr<T, gobject_unref>;

/// Calls g_mime_init() once per process (it is not thread-safe on its own).
void ensure_gmime();

/// An entity written out with CRLF line endings.
std::string to_crlf_text(GMimeObject* object);

/// Parses a whole message; null when the text is not one.
owned<GMimeMessage> parse_message(std::string_view raw);

}  // namespace postern::mime
