#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace postern::transports {

/// One part of a multipart/form-data body.
struct form_part {
  std::string name;
  std::string value;                        ///< The content, unless `data` is set.
  std::shared_ptr<const std::string> data;  ///< Large content, streamed without a copy; kept alive by the transfer.
  std::string filename;                     ///< Non-empty: the part is a file upload.
  std::string content_type;                 ///< Empty: libcurl's default.
};

/// One HTTP request: a GET, or a POST of a multipart form.
struct http_request {
  enum class verb { get, post };
  verb method = verb::post;
  std::string url;
  std::string username;  ///< HTTP Basic credentials when non-empty. Never logged, never in an error text.
  std::string password;
  std::vector<form_part> form;                       ///< The POST body (multipart/form-data).
  std::chrono::milliseconds timeout{30000};          ///< The whole transfer, connection included.
  std::chrono::milliseconds connect_timeout{10000};  ///< The TCP (and TLS) connection.
};

/// How a transfer ended without an HTTP answer.
enum class transfer_error {
  none,            ///< An answer came; see `http_response::status`.
  timed_out,       ///< `timeout` passed (or no slot freed within it).
  cannot_resolve,  ///< The host name did not resolve.
  cannot_connect,  ///< Refused, unreachable, or the connection timed out.
  tls,             ///< The TLS handshake or the certificate check failed.
  broken,          ///< The connection broke while sending or receiving.
  stopped,         ///< The client was stopped before an answer came.
  other,
};

/// The outcome of one request.
struct http_response {
  int status = 0;  ///< The HTTP status; 0 when `error` is set.
  transfer_error error = transfer_error::none;
  std::string error_text;                ///< libcurl's description when `error` is set (no credentials in it).
  std::string body;                      ///< At most `max_body` bytes of the answer's body.
  std::string retry_after;               ///< The Retry-After field's value, as sent; empty when absent.
  long new_connections = 0;              ///< Connections opened for this request (0: an existing one was reused).
  std::chrono::milliseconds elapsed{0};  ///< From submission to the end, time waiting for a slot included.

  static constexpr std::size_t max_body = 64 * 1024;
};

/// An HTTP client on libcurl's multi interface, with a thread of its own.
///
/// `submit` only queues the request and returns; the client's thread runs every transfer, at
/// most `max_in_flight` of them at once (the others wait in order, within their own timeout),
/// and keeps connections open between requests so that a busy gateway reuses them rather than
/// paying a TCP and TLS handshake per message.
///
/// Threading: `submit` and `stop` may be called from any thread. Callbacks run on the client's
/// thread, one at a time: keep them short.
class http_client {
 public:
  using callback = std::function<void(http_response)>;

  /// Starts the transfer thread. `max_in_flight` >= 1.
  explicit http_client(std::size_t max_in_flight);
  /// Stops (see `stop`) and joins the thread.
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  /// Queues a request. `done` is called exactly once, with the answer or the reason there is
  /// none; on the calling thread, at once, if the client is stopped already.
  void submit(http_request request, callback done);

  /// Ends every transfer in flight or waiting, calling its callback with
  /// `transfer_error::stopped`, and joins the thread. Idempotent; later submissions are answered
  /// `stopped` at once.
  void stop();

  /// Runs one request on the calling thread and waits for it (for probes: no connection reuse).
  static http_response perform(const http_request& request);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// The standard reason phrase of an HTTP status ("Too Many Requests"), or "" when unknown.
/// HTTP/2 answers carry none, so replies take it from here.
const char* http_reason(int status) noexcept;

}  // namespace postern::transports
