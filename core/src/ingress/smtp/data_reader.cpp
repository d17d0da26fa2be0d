#include "ingress/smtp/data_reader.hpp"

#include <cstring>

namespace postern::ingress::smtp {
namespace {
constexpr std::size_t max_line = 1000;  // RFC 5321 §4.5.3.1.6, CRLF included
}

data_reader::data_reader(mode m, std::size_t max_size, line_ending_rule rule)
    : mode_(m), max_size_(max_size), rule_(rule) {}

std::size_t data_reader::feed(std::string_view input) {
  std::size_t pos = 0;
  while (pos < input.size() && !finished_) {
    const void* found = std::memchr(input.data() + pos, '\n', input.size() - pos);
    const std::size_t end = found ? static_cast<std::size_t>(static_cast<const char*>(found) - input.data()) : input.size();
    const std::string_view piece = input.substr(pos, end - pos);
    line_length_ += piece.size();
    if (!piece.empty()) last_was_cr_ = piece.back() == '\r';
    // Keep at most one line's worth: a longer line is refused anyway.
    if (line_.size() < max_line + 1) line_.append(piece.substr(0, max_line + 1 - line_.size()));
    pos = end;
    if (!found) break;
    ++pos;  // the LF
    line_length_ += 1;
    line_done(true);
  }
  return pos;
}

void data_reader::finish_chunks() {
  if (line_length_ > 0) line_done(false);
}

void data_reader::line_done(bool ended_by_lf) {
  const bool crlf = ended_by_lf && last_was_cr_;
  std::string_view content(line_);
  if (crlf && !content.empty() && content.back() == '\r') content.remove_suffix(1);
  if (mode_ == mode::data && crlf && previous_crlf_ && content == ".") {
    finished_ = true;
    return;
  }
  seen_ += line_length_;
  if (line_length_ > max_line) flag(problem::line_too_long);
  const bool bare_cr = content.find('\r') != std::string_view::npos;
  const bool bare_lf = ended_by_lf && !crlf;
  if ((bare_cr || bare_lf) && rule_ == line_ending_rule::reject) flag(problem::bare_line_ending);

  // Bare CRs split the content into several lines when normalising.
  bool first = true;
  while (true) {
    const auto cr = content.find('\r');
    store(content.substr(0, cr), first);
    first = false;
    if (cr == std::string_view::npos) break;
    content.remove_prefix(cr + 1);
  }
  previous_crlf_ = crlf;
  line_.clear();
  line_length_ = 0;
  last_was_cr_ = false;
}

void data_reader::store(std::string_view content, bool first_segment) {
  if (mode_ == mode::data && first_segment && previous_crlf_ && !content.empty() && content.front() == '.')
    content.remove_prefix(1);
  if (problem_ != problem::none) return;  // refused already: keep reading, stop storing
  if (out_.size() + content.size() + 2 > max_size_) {
    flag(problem::too_big);
    out_.clear();
    out_.shrink_to_fit();
    return;
  }
  out_.append(content);
  out_.append("\r\n");
}

}  // namespace postern::ingress::smtp
