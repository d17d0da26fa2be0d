#pragma once
// A small HTTP/1.1 server on 127.0.0.1 for the mailgun transport's unit tests: keep-alive,
// "Expect: 100-continue", one thread per connection, and a handler that decides each answer.
// It records every request, how many connections were opened and how many requests it was
// answering at once.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace postern::testing {

struct http_exchange {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  int connection = 0;  // 1, 2, ... in the order connections were accepted

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

/// What the handler answers: a status, fields and a body; or, with `hang`, nothing for that
/// long (then the connection is closed).
struct http_answer {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> fields;
  std::chrono::milliseconds hang{0};
  std::chrono::milliseconds delay{0};  // wait this long, then answer
};

class test_http_server {
 public:
  using handler = std::function<http_answer(const http_exchange&)>;

  explicit test_http_server(handler h) : handler_(std::move(h)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(listener_, 64) != 0)
      throw std::runtime_error("test_http_server: cannot listen");
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~test_http_server() {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    acceptor_.join();
    ::close(listener_);
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mutex_);
      for (int fd : open_) ::shutdown(fd, SHUT_RDWR);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
  }

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::vector<http_exchange> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  int connections() const { return connections_.load(); }
  int max_concurrent() const { return max_concurrent_.load(); }

  /// Waits until `n` requests have arrived (or `limit` passed).
  bool wait_for_requests(std::size_t n, std::chrono::milliseconds limit = std::chrono::seconds(10)) const {
    std::unique_lock lock(mutex_);
    return arrived_.wait_for(lock, limit, [&] { return requests_.size() >= n; });
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stopping_) return;
        continue;
      }
      const int id = ++connections_;
      std::lock_guard lock(mutex_);
      open_.push_back(fd);
      threads_.emplace_back([this, fd, id] {
        serve(fd, id);
        std::lock_guard l(mutex_);
        open_.erase(std::find(open_.begin(), open_.end(), fd));
        ::close(fd);
      });
    }
  }

  static bool send_all(int fd, const std::string& data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }

  // Sleeps up to `d`, returning early when the server stops.
  void pause(std::chrono::milliseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (!stopping_ && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  void serve(int fd, int id) {
    std::string buffer;
    char chunk[65536];
    const auto fill = [&]() {
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return false;
      buffer.append(chunk, static_cast<std::size_t>(n));
      return true;
    };
    while (!stopping_) {
      std::size_t end;
      while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
        if (!fill()) return;
      }
      http_exchange ex;
      ex.connection = id;
      const std::string head = buffer.substr(0, end);
      buffer.erase(0, end + 4);
      std::size_t line_end = head.find("\r\n");
      const std::string request_line = head.substr(0, line_end);
      const auto sp1 = request_line.find(' ');
      const auto sp2 = request_line.find(' ', sp1 + 1);
      ex.method = request_line.substr(0, sp1);
      ex.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
      while (line_end != std::string::npos) {
        const auto start = line_end + 2;
        line_end = head.find("\r\n", start);
        const std::string line =
            head.substr(start, line_end == std::string::npos ? std::string::npos : line_end - start);
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        ex.headers[name] = value;
      }
      if (ex.header("expect") == "100-continue" && !send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n")) return;
      const std::size_t length = ex.headers.count("content-length") ? std::stoul(ex.header("content-length")) : 0;
      while (buffer.size() < length) {
        if (!fill()) return;
      }
      ex.body = buffer.substr(0, length);
      buffer.erase(0, length);

      const int now = ++concurrent_;
      int seen = max_concurrent_.load();
      while (now > seen && !max_concurrent_.compare_exchange_weak(seen, now)) {
      }
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(ex);
      }
      arrived_.notify_all();
      const http_answer answer = handler_(ex);
      if (answer.hang.count() > 0) {
        pause(answer.hang);
        --concurrent_;
        return;
      }
      pause(answer.delay);
      std::string out = "HTTP/1.1 " + std::to_string(answer.status) + " Whatever\r\n";
      for (const auto& [k, v] : answer.fields) out += k + ": " + v + "\r\n";
      out += "Content-Length: " + std::to_string(answer.body.size()) + "\r\n\r\n" + answer.body;
      --concurrent_;
      if (!send_all(fd, out)) return;
    }
  }

  handler handler_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> concurrent_{0};
  std::atomic<int> max_concurrent_{0};
  mutable std::mutex mutex_;
  mutable std::condition_variable arrived_;
  std::vector<http_exchange> requests_;
  std::vector<int> open_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

/// One part of a multipart/form-data body.
struct form_field {
  std::string name;
  std::string filename;
  std::string content_type;
  std::string value;
};

/// Splits a multipart/form-data body (RFC 7578) into its parts.
inline std::vector<form_field> parse_form(const std::string& content_type, const std::string& body) {
  std::vector<form_field> out;
  const auto b = content_type.find("boundary=");
  if (b == std::string::npos) return out;
  std::string boundary = content_type.substr(b + 9);
  if (!boundary.empty() && boundary.front() == '"') boundary = boundary.substr(1, boundary.find('"', 1) - 1);
  const std::string delimiter = "--" + boundary;
  std::size_t at = body.find(delimiter);
  while (at != std::string::npos) {
    at += delimiter.size();
    if (body.compare(at, 2, "--") == 0) break;
    at += 2;  // CRLF
    const auto head_end = body.find("\r\n\r\n", at);
    const auto next = body.find("\r\n" + delimiter, head_end);
    if (head_end == std::string::npos || next == std::string::npos) break;
    form_field f;
    const std::string head = body.substr(at, head_end - at);
    const auto param = [&](const std::string& key) -> std::string {
      const auto p = head.find(key + "=\"");
      if (p == std::string::npos) return "";
      const auto s = p + key.size() + 2;
      return head.substr(s, head.find('"', s) - s);
    };
    f.name = param(" name");
    f.filename = param("filename");
    if (auto ct = head.find("Content-Type: "); ct != std::string::npos)
      f.content_type = head.substr(
          ct + 14, head.find("\r\n", ct) == std::string::npos ? std::string::npos : head.find("\r\n", ct) - ct - 14);
    f.value = body.substr(head_end + 4, next - head_end - 4);
    out.push_back(std::move(f));
    at = next + 2;
  }
  return out;
}

}  // namespace postern::testing
