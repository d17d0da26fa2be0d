#include "http_client.hpp"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

namespace postern::transports {
namespace {

using clock = std::chrono::steady_clock;

void init_curl_once() {
  // curl_global_init is not safe to race with other libcurl calls on every build of the
  // library; once per process, never undone (the host may use libcurl too).
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

/// Streams a shared string into a form part without copying it.
struct part_reader {
  std::shared_ptr<const std::string> data;
  std::size_t offset = 0;

  static std::size_t read(char* buffer, std::size_t size, std::size_t items, void* self) {
    auto& r = *static_cast<part_reader*>(self);
    const std::size_t n = std::min(size * items, r.data->size() - r.offset);
    std::memcpy(buffer, r.data->data() + r.offset, n);
    r.offset += n;
    return n;
  }
  // libcurl rewinds when it must send the body again (a redirect, an authentication round).
  static int seek(void* self, curl_off_t offset, int origin) {
    auto& r = *static_cast<part_reader*>(self);
    if (origin != SEEK_SET || offset < 0 || static_cast<std::size_t>(offset) > r.data->size())
      return CURL_SEEKFUNC_CANTSEEK;
    r.offset = static_cast<std::size_t>(offset);
    return CURL_SEEKFUNC_OK;
  }
};

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

transfer_error classify(CURLcode rc) {
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return transfer_error::timed_out;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return transfer_error::cannot_resolve;
    case CURLE_COULDNT_CONNECT: return transfer_error::cannot_connect;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS: return transfer_error::tls;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return transfer_error::broken;
    default: return transfer_error::other;
  }
}

/// One request and everything libcurl needs while it runs.
struct transfer {
  http_request request;
  http_client::callback done;
  clock::time_point queued = clock::now();
  CURL* easy = nullptr;
  curl_mime* mime = nullptr;
  curl_slist* headers = nullptr;
  std::vector<std::unique_ptr<part_reader>> readers;
  char error[CURL_ERROR_SIZE] = {};
  http_response response;

  transfer(http_request r, http_client::callback d) : request(std::move(r)), done(std::move(d)) {}
  ~transfer() {
    // The easy handle goes first: libcurl reads the form until the handle is cleaned up.
    if (easy) curl_easy_cleanup(easy);
    if (mime) curl_mime_free(mime);
    if (headers) curl_slist_free_all(headers);
  }
  transfer(const transfer&) = delete;
  transfer& operator=(const transfer&) = delete;

  static std::size_t on_body(char* data, std::size_t size, std::size_t items, void* self) {
    auto& body = static_cast<transfer*>(self)->response.body;
    const std::size_t n = size * items;
    // The rest is read and dropped: the connection stays usable for the next request.
    if (body.size() < http_response::max_body) body.append(data, std::min(n, http_response::max_body - body.size()));
    return n;
  }

  static std::size_t on_header(char* data, std::size_t size, std::size_t items, void* self) {
    auto& t = *static_cast<transfer*>(self);
    const std::string_view line(data, size * items);
    // A new status line starts a new answer (after "100 Continue"): forget the last one's fields.
    if (line.starts_with("HTTP/")) t.response.retry_after.clear();
    if (starts_with_nocase(line, "retry-after:")) t.response.retry_after = std::string(trim(line.substr(12)));
    return size * items;
  }

  /// Prepares the easy handle; false (with `response` filled) when libcurl refuses.
  bool setup() {
    easy = curl_easy_init();
    if (!easy) {
      response.error = transfer_error::other;
      response.error_text = "libcurl could not make a transfer handle";
      return false;
    }
    const auto& r = request;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, this);
    curl_easy_setopt(easy, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);  // several threads; timeouts must not use SIGALRM
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(r.timeout.count()));
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::min(r.connect_timeout, r.timeout).count()));
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "postern-mailgun/1.0");
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &transfer::on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &transfer::on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, this);
    if (!r.username.empty()) {
      curl_easy_setopt(easy, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
      curl_easy_setopt(easy, CURLOPT_USERNAME, r.username.c_str());
      curl_easy_setopt(easy, CURLOPT_PASSWORD, r.password.c_str());
    }
    headers = curl_slist_append(headers, "Accept: application/json");
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    if (r.method == http_request::verb::get) {
      curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
      return true;
    }
    mime = curl_mime_init(easy);
    for (const auto& p : r.form) {
      curl_mimepart* part = curl_mime_addpart(mime);
      curl_mime_name(part, p.name.c_str());
      if (p.data) {
        auto& reader = readers.emplace_back(std::make_unique<part_reader>(part_reader{p.data, 0}));
        curl_mime_data_cb(part, static_cast<curl_off_t>(p.data->size()), &part_reader::read, &part_reader::seek,
                          nullptr, reader.get());
      } else {
        curl_mime_data(part, p.value.data(), p.value.size());
      }
      if (!p.filename.empty()) curl_mime_filename(part, p.filename.c_str());
      if (!p.content_type.empty()) curl_mime_type(part, p.content_type.c_str());
    }
    curl_easy_setopt(easy, CURLOPT_MIMEPOST, mime);
    return true;
  }

  /// Fills `response` from the finished transfer.
  void finish(CURLcode rc) {
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &response.new_connections);
    if (rc == CURLE_OK) {
      response.status = static_cast<int>(status);
    } else {
      // An answer cut short (or a status with no body after it) counts as no answer: the
      // caller cannot know what the peer did with the request.
      response.status = 0;
      response.error = classify(rc);
      response.error_text = error[0] ? error : curl_easy_strerror(rc);
      while (!response.error_text.empty() && std::isspace(static_cast<unsigned char>(response.error_text.back())))
        response.error_text.pop_back();
    }
  }

  void complete() {
    response.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - queued);
    auto callback = std::move(done);
    try {
      callback(std::move(response));
    } catch (...) {
      // A callback that throws must not take the transfer thread down with it.
    }
  }
};

http_response stopped_response() {
  http_response r;
  r.error = transfer_error::stopped;
  r.error_text = "the transport is stopping";
  return r;
}

}  // namespace

struct http_client::impl {
  explicit impl(std::size_t limit) : max_in_flight(std::max<std::size_t>(1, limit)) {
    init_curl_once();
    multi = curl_multi_init();
    // Connections stay open in the multi handle's cache between requests; as many as may be
    // in flight at once, per host and in all.
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, static_cast<long>(max_in_flight));
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(max_in_flight));
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, static_cast<long>(max_in_flight));
    thread = std::thread([this] { run(); });
  }

  ~impl() {
    stop();
    curl_multi_cleanup(multi);
  }

  void submit(http_request request, callback done) {
    auto t = std::make_unique<transfer>(std::move(request), std::move(done));
    {
      std::lock_guard lock(mutex);
      if (!stopping) {
        queue.push_back(std::move(t));
      }
    }
    if (t) {  // stopped already: answered here, once
      t->response = stopped_response();
      t->complete();
      return;
    }
    curl_multi_wakeup(multi);
  }

  void stop() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    curl_multi_wakeup(multi);
    if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
  }

  void run() {
    // A peer that closes while libcurl writes raises SIGPIPE in the writing thread; the host
    // does not ignore it, so it is blocked here, where it would be raised.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);

    while (true) {
      std::vector<std::unique_ptr<transfer>> starting, expired;
      auto wait = std::chrono::milliseconds(1000);
      {
        std::lock_guard lock(mutex);
        if (stopping) break;
        while (active.size() + starting.size() < max_in_flight && !queue.empty()) {
          starting.push_back(std::move(queue.front()));
          queue.pop_front();
        }
        // Those still waiting for a slot do so within their own timeout.
        const auto now = clock::now();
        for (auto it = queue.begin(); it != queue.end();) {
          const auto deadline = (*it)->queued + (*it)->request.timeout;
          if (deadline <= now) {
            expired.push_back(std::move(*it));
            it = queue.erase(it);
          } else {
            wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(deadline - now));
            ++it;
          }
        }
      }
      for (auto& t : expired) {
        t->response.error = transfer_error::timed_out;
        t->response.error_text =
            "no connection slot came free within the timeout (max_in_flight = " + std::to_string(max_in_flight) + ")";
        t->complete();
      }
      for (auto& t : starting) {
        if (!t->setup() || curl_multi_add_handle(multi, t->easy) != CURLM_OK) {
          if (t->response.error == transfer_error::none) {
            t->response.error = transfer_error::other;
            t->response.error_text = "libcurl refused the transfer";
          }
          t->complete();
          continue;
        }
        transfer* raw = t.get();
        active.emplace(raw, std::move(t));
      }

      int running = 0;
      curl_multi_perform(multi, &running);
      int left = 0;
      bool finished = false;
      while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
        if (m->msg != CURLMSG_DONE) continue;
        char* tag = nullptr;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &tag);
        auto* raw = reinterpret_cast<transfer*>(tag);
        const CURLcode rc = m->data.result;  // read before the handle is removed: `m` dies with it
        curl_multi_remove_handle(multi, m->easy_handle);
        auto found = active.find(raw);
        if (found == active.end()) continue;
        auto t = std::move(found->second);
        active.erase(found);
        t->finish(rc);
        t->complete();
        finished = true;
      }
      // A freed slot goes to the next waiting request at once, not after the next wake-up.
      if (finished) continue;
      curl_multi_poll(multi, nullptr, 0, static_cast<int>(std::max<long long>(1, wait.count())), nullptr);
    }

    // Stopping: every request still here gets its answer.
    std::deque<std::unique_ptr<transfer>> waiting;
    {
      std::lock_guard lock(mutex);
      waiting.swap(queue);
    }
    for (auto& [raw, t] : active) {
      curl_multi_remove_handle(multi, t->easy);
      t->response = stopped_response();
      t->complete();
    }
    active.clear();
    for (auto& t : waiting) {
      t->response = stopped_response();
      t->complete();
    }
  }

  const std::size_t max_in_flight;
  CURLM* multi = nullptr;
  std::mutex mutex;
  std::deque<std::unique_ptr<transfer>> queue;            // guarded by mutex
  bool stopping = false;                                  // guarded by mutex
  std::map<transfer*, std::unique_ptr<transfer>> active;  // the client's thread only
  std::thread thread;
};

http_client::http_client(std::size_t max_in_flight) : impl_(std::make_unique<impl>(max_in_flight)) {}

http_client::~http_client() = default;

void http_client::submit(http_request request, callback done) {
  impl_->submit(std::move(request), std::move(done));
}

void http_client::stop() {
  impl_->stop();
}

http_response http_client::perform(const http_request& request) {
  init_curl_once();
  transfer t(request, nullptr);
  if (!t.setup()) return t.response;
  const CURLcode rc = curl_easy_perform(t.easy);
  t.finish(rc);
  t.response.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - t.queued);
  return t.response;
}

const char* http_reason(int status) noexcept {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

}  // namespace postern::transports
