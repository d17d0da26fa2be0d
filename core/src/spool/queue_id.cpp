#include "spool/queue_id.hpp"

#include <cstdint>
#include <random>

namespace postern::spool {
namespace {
constexpr char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
}

std::string make_queue_id(std::chrono::system_clock::time_point now) {
  thread_local std::mt19937_64 random{std::random_device{}()};
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
  // 80 bits: time in the top 48, randomness in the low 32.
  const std::uint64_t high = ms >> 32;                                   // 16 bits
  const std::uint64_t low = (ms << 32) | (random() & 0xffffffffull);    // 64 bits
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i) {
    const int shift = (15 - i) * 5;
    std::uint64_t bits;
    if (shift + 5 <= 64) bits = low >> shift;
    else if (shift >= 64) bits = high >> (shift - 64);
    else bits = (low >> shift) | (high << (64 - shift));
    id[static_cast<std::size_t>(i)] = alphabet[bits & 31];
  }
  return id;
}

bool looks_like_queue_id(std::string_view text) {
  if (text.size() != 16) return false;
  for (char c : text) {
    if (std::string_view(alphabet).find(c) == std::string_view::npos) return false;
  }
  return true;
}

}  // namespace postern::spool
