#pragma once
// The message body of an SMTP transaction, read incrementally from DATA or BDAT.
//
// Rules (documented in docs/smtp.md):
//  - DATA ends only at <CRLF>.<CRLF>. A "." line after a bare LF, or ended by a bare LF, is
//    content, never the end: no SMTP smuggling.
//  - A line starting with "." loses that dot (RFC 5321 §4.5.2). BDAT content is not unstuffed.
//  - Bare CR or bare LF in the content: with `normalise` they become CRLF (as Postfix does by
//    default); with `reject` the message is refused (550 5.5.2) once its end is read.
//  - A line over 1000 octets with its CRLF refuses the message (500 5.5.2).
//  - Beyond `max_size` octets nothing more is stored and the message is refused (552 5.3.4).
// In every case the reader consumes the whole body, so the session stays in step.

#include <cstddef>
#include <string>
#include <string_view>

namespace postern::ingress::smtp {

enum class line_ending_rule { normalise, reject };

class data_reader {
 public:
  enum class mode { data, bdat };
  enum class problem { none, too_big, line_too_long, bare_line_ending };

  data_reader(mode m, std::size_t max_size, line_ending_rule rule);

  /// Consumes input; returns how many bytes it used. In data mode it stops right after the
  /// end marker, leaving what follows (pipelined commands) to the caller.
  std::size_t feed(std::string_view input);
  /// Data mode: the end marker was read.
  bool finished() const noexcept { return finished_; }
  /// Bdat mode: the last chunk was fed; a final unterminated line is completed with CRLF.
  void finish_chunks();

  problem error() const noexcept { return problem_; }
  /// Octets of content seen so far (stored or not), for the size limit.
  std::size_t size() const noexcept { return seen_; }
  /// The message with CRLF line endings. Call once, after the end.
  std::string take() { return std::move(out_); }

 private:
  void line_done(bool ended_by_lf);
  void store(std::string_view content, bool first_segment);
  void flag(problem p) {
    if (problem_ == problem::none) problem_ = p;
  }

  mode mode_;
  std::size_t max_size_;
  line_ending_rule rule_;
  std::string line_;
  std::size_t line_length_ = 0;     // true length, even past what line_ keeps
  bool last_was_cr_ = false;       // the byte before the LF that ends the line
  bool previous_crlf_ = true;       // the command before the data ended with CRLF
  bool finished_ = false;
  std::size_t seen_ = 0;
  std::string out_;
  problem problem_ = problem::none;
};

}  // namespace postern::ingress::smtp
