// libFuzzer target for the SMTP command parser and the DATA/BDAT reader.
// Besides "does not crash" it checks properties, and aborts when one fails:
//  - the reader's result does not depend on how the input is split into reads;
//  - what it accepts has only CRLF line endings and no line over 998 octets;
//  - a parsed command never carries CR, LF or NUL.
#include "ingress/smtp/command.hpp"
#include "ingress/smtp/data_reader.hpp"

#include <postern/xtext.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace postern::ingress::smtp;

namespace {

struct outcome {
  bool finished;
  data_reader::problem problem;
  std::size_t consumed;
  std::string text;
};

outcome read_all(std::string_view input, std::size_t step, data_reader::mode mode, line_ending_rule rule) {
  data_reader r(mode, 4096, rule);
  std::size_t pos = 0;
  while (pos < input.size() && !r.finished()) {
    const auto piece = input.substr(pos, std::min(step, input.size() - pos));
    const auto used = r.feed(piece);
    pos += used;
    if (used < piece.size()) break;
  }
  if (mode == data_reader::mode::bdat) r.finish_chunks();
  const auto problem = r.error();
  return {r.finished(), problem, pos, r.take()};
}

void check_reader(std::string_view input, data_reader::mode mode, line_ending_rule rule) {
  const auto whole = read_all(input, input.size() + 1, mode, rule);
  const auto bytewise = read_all(input, 1, mode, rule);
  const auto odd = read_all(input, 7, mode, rule);
  for (const auto* other : {&bytewise, &odd}) {
    if (other->finished != whole.finished || other->problem != whole.problem || other->consumed != whole.consumed ||
        (whole.problem == data_reader::problem::none && other->text != whole.text))
      std::abort();
  }
  if (whole.problem != data_reader::problem::none) return;
  std::size_t line = 0;
  for (std::size_t i = 0; i < whole.text.size(); ++i) {
    const char c = whole.text[i];
    if (c == '\r') {
      if (i + 1 >= whole.text.size() || whole.text[i + 1] != '\n') std::abort();
    } else if (c == '\n') {
      if (i == 0 || whole.text[i - 1] != '\r') std::abort();
      if (line > 999) std::abort();
      line = 0;
      continue;
    }
    ++line;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t start = 0;
  while (start < input.size()) {
    auto end = input.find('\n', start);
    if (end == std::string_view::npos) end = input.size();
    auto line = input.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto r = parse_command(line);
    if (r.cmd) {
      for (const auto& s : {r.cmd->argument, r.cmd->address}) {
        if (s.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) std::abort();
      }
    } else if (r.error.code < 500 || r.error.code > 504) {
      std::abort();
    }
    // xtext: whatever decodes encodes back to text that decodes to the same octets, and any
    // octets survive encoding and decoding.
    if (const auto decoded = postern::decode_xtext(line)) {
      if (postern::decode_xtext(postern::encode_xtext(*decoded)) != decoded) std::abort();
    }
    if (postern::decode_xtext(postern::encode_xtext(line)) != std::string(line)) std::abort();
    start = end + 1;
  }
  check_reader(input, data_reader::mode::data, line_ending_rule::normalise);
  check_reader(input, data_reader::mode::data, line_ending_rule::reject);
  check_reader(input, data_reader::mode::bdat, line_ending_rule::normalise);
  return 0;
}
