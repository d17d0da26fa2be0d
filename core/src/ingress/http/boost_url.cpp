// Boost.URL built into the core (header-only mode: the Debian package ships no libboost_url).
#include <boost/url/src.hpp>
