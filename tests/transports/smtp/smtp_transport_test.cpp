#include "smtp_transport.hpp"

#include "mocks/config_values.hpp"
#include "mocks/mock_host.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>

#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

namespace postern::transports {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using postern::testing::config_values;
using postern::testing::mock_host;
using ::testing::_;
using ::testing::NiceMock;
using ::testing::Return;
using ::testing::ReturnRef;

/// A scripted SMTP server on 127.0.0.1 with blocking sockets, a thread per connection. It
/// records what it received; `rcpt_replies` and the flags change what it answers.
class fake_relay {
 public:
  struct transaction {
    std::string mail;
    std::vector<std::string> rcpts;
    std::string data;
  };

  fake_relay() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { accept_loop(); });
  }

  ~fake_relay() {
    {
      // Sessions block in recv(): shutdown(2) wakes them. The sockets are closed only once
      // their threads are joined, so that no thread closes what another one reads.
      std::lock_guard lock(mutex_);
      stopping_ = true;
      for (const int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    }
    // A blocking accept() is not woken by close() from another thread: connect once to end it.
    {
      boost::system::error_code ec;
      asio::io_context io;
      tcp::socket wake(io);
      wake.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
      accept_thread_.join();
    }
    for (auto& t : sessions_) t.join();
  }

  std::uint16_t port() const { return port_; }

  // Script, set before the transport connects.
  std::string ehlo_keywords = "PIPELINING\r\n250-SIZE 1000000\r\n250-8BITMIME\r\n250-DSN\r\n250 ENHANCEDSTATUSCODES";
  std::map<std::string, std::string> rcpt_replies;  // address -> reply line; default 250
  std::string mail_reply = "250 2.1.0 Ok";
  std::string final_reply = "250 2.0.0 Ok: queued as FAKE1234";
  bool drop_after_data = false;          // close instead of answering the final "."
  bool close_after_transaction = false;  // close silently after each final reply

  // What happened.
  std::vector<transaction> transactions() {
    std::lock_guard lock(mutex_);
    return transactions_;
  }
  std::vector<std::string> commands() {
    std::lock_guard lock(mutex_);
    return commands_;
  }
  int connections() {
    std::lock_guard lock(mutex_);
    return connections_;
  }
  bool pipelined() {
    std::lock_guard lock(mutex_);
    return pipelined_;
  }

 private:
  void accept_loop() {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(io_);
      boost::system::error_code ec;
      acceptor_.accept(*socket, ec);
      if (ec) return;
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      ++connections_;
      sockets_.push_back(socket);
      fds_.push_back(socket->native_handle());
      sessions_.emplace_back([this, socket] { session(*socket); });
    }
  }

  void session(tcp::socket& s) {
    asio::streambuf in;
    boost::system::error_code ec;
    auto send = [&](const std::string& text) { asio::write(s, asio::buffer(text + "\r\n"), ec); };
    auto read_line = [&](std::string& line) {
      asio::read_until(s, in, "\r\n", ec);
      if (ec) return false;
      std::istream is(&in);
      std::getline(is, line);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return true;
    };
    send("220 fake ESMTP");
    transaction t;
    std::string line;
    while (read_line(line)) {
      const std::string verb = line.substr(0, 4);
      {
        std::lock_guard lock(mutex_);
        commands_.push_back(line);
      }
      if (verb == "EHLO") {
        send("250-fake\r\n250-" + ehlo_keywords);
      } else if (verb == "MAIL") {
        t = {};
        t.mail = line;
        std::lock_guard lock(mutex_);
        // Pipelined: the RCPTs were sent with MAIL, so they are here before MAIL is answered.
        if (in.size() > 0) pipelined_ = true;
        send(mail_reply);
      } else if (verb == "RCPT") {
        t.rcpts.push_back(line);
        const auto open = line.find('<'), close = line.find('>');
        const auto address = line.substr(open + 1, close - open - 1);
        const auto found = rcpt_replies.find(address);
        send(found == rcpt_replies.end() ? "250 2.1.5 Ok" : found->second);
      } else if (verb == "DATA") {
        send("354 go ahead");
        std::string body;
        while (read_line(line) && line != ".") body += line + "\r\n";
        t.data = body;
        if (drop_after_data) {
          ::shutdown(s.native_handle(), SHUT_RDWR);
          return;
        }
        {
          std::lock_guard lock(mutex_);
          transactions_.push_back(t);
        }
        send(final_reply);
        if (close_after_transaction) {
          ::shutdown(s.native_handle(), SHUT_RDWR);
          return;
        }
      } else if (verb == "RSET") {
        send("250 2.0.0 Ok");
      } else if (verb == "QUIT") {
        send("221 2.0.0 Bye");
        return;
      } else {
        send("502 5.5.2 Error: command not recognized");
      }
    }
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::thread accept_thread_;
  std::mutex mutex_;
  bool stopping_ = false;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
  std::vector<int> fds_;
  std::vector<std::thread> sessions_;
  std::vector<transaction> transactions_;
  std::vector<std::string> commands_;
  int connections_ = 0;
  bool pipelined_ = false;
};

/// A port on 127.0.0.1 where nothing listens (bound, then closed).
std::uint16_t closed_port() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

class smtp_transport_test : public ::testing::Test {
 protected:
  void SetUp() override {
    ON_CALL(host_, config()).WillByDefault(ReturnRef(config_));
    ON_CALL(host_, hostname()).WillByDefault(Return("gw.example"));
    ON_CALL(host_, resolve_path(_)).WillByDefault([](std::string_view p) { return std::string(p); });
    ON_CALL(host_, log(_, _)).WillByDefault([this](postern::log_level, std::string_view text) {
      std::lock_guard lock(log_mutex_);
      log_ += std::string(text) + "\n";
    });
  }

  void relays(std::vector<std::string> list) { config_.set_list("relays", std::move(list)); }
  void integer(const char* key, std::int64_t value) { config_.set(key, value); }
  void string(const char* key, std::string value) { config_.set(key, std::move(value)); }

  static postern::delivery_request request(std::vector<std::string> rcpts, std::string raw = "") {
    auto msg = std::make_shared<postern::message>();
    msg->queue_id = "QUEUEID000000001";
    msg->env.mail_from = "shop@example.com";
    for (std::size_t i = 0; i < rcpts.size(); ++i)
      msg->env.recipients.push_back({static_cast<std::uint32_t>(i), rcpts[i], "", 0});
    msg->raw = raw.empty() ? "Subject: hi\r\n\r\n.dot line\r\nbody\r\n" : raw;
    return {msg, msg->env.recipients};
  }

  /// Delivers and waits (bounded) for the callback; checks it came exactly once.
  std::vector<postern::recipient_result> run(smtp_transport& t, postern::delivery_request r) {
    auto calls = std::make_shared<std::atomic<int>>(0);
    auto promise = std::make_shared<std::promise<std::vector<postern::recipient_result>>>();
    auto future = promise->get_future();
    t.deliver(std::move(r), [calls, promise](std::vector<postern::recipient_result> results) {
      if (calls->fetch_add(1) == 0) promise->set_value(std::move(results));
    });
    if (future.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
      ADD_FAILURE() << "no answer within 20 s; log:\n" << log();
      return {};
    }
    auto results = future.get();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(calls->load(), 1);
    return results;
  }

  static std::map<std::uint32_t, postern::smtp_reply> by_index(const std::vector<postern::recipient_result>& results) {
    std::map<std::uint32_t, postern::smtp_reply> out;
    for (const auto& r : results) out[r.recipient_index] = r.reply;
    return out;
  }

  std::string log() {
    std::lock_guard lock(log_mutex_);
    return log_;
  }

  config_values config_{"test.toml [transports.smtp]"};
  NiceMock<mock_host> host_;
  std::mutex log_mutex_;
  std::string log_;
};

TEST_F(smtp_transport_test, without_relays_it_is_unavailable_and_defers) {
  smtp_transport t(host_);
  const auto p = t.probe();
  EXPECT_FALSE(p.available);
  EXPECT_NE(p.reason.find("no relay configured (set relays = [\"host:port\"] in test.toml [transports.smtp])"),
            std::string::npos)
      << p.reason;
  const auto results = run(t, request({"a@example.com", "b@example.com"}));
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) {
    EXPECT_EQ(r.reply.code, 451);
    EXPECT_EQ(r.reply.enhanced, "4.3.5");
  }
}

TEST_F(smtp_transport_test, probe_names_what_is_wrong) {
  relays({"127.0.0.1:" + std::to_string(closed_port())});
  smtp_transport refused(host_);
  auto p = refused.probe();
  EXPECT_FALSE(p.available);
  EXPECT_NE(p.reason.find("cannot connect: Connection refused"), std::string::npos) << p.reason;

  relays({"nonexistent.invalid"});
  smtp_transport unresolvable(host_);
  p = unresolvable.probe();
  EXPECT_FALSE(p.available);
  EXPECT_NE(p.reason.find("relay nonexistent.invalid:25: cannot resolve nonexistent.invalid"), std::string::npos)
      << p.reason;

  fake_relay relay;
  relays({"127.0.0.1:" + std::to_string(relay.port())});
  smtp_transport good(host_);
  p = good.probe();
  EXPECT_TRUE(p.available) << p.reason;
  EXPECT_NE(p.reason.find("answers EHLO: ESMTP PIPELINING SIZE=1000000"), std::string::npos) << p.reason;
  const auto commands = relay.commands();
  EXPECT_EQ(commands, (std::vector<std::string>{"EHLO gw.example", "QUIT"})) << "a probe sends no mail";
}

TEST_F(smtp_transport_test, delivers_several_recipients_in_one_pipelined_transaction) {
  fake_relay relay;
  relays({"127.0.0.1:" + std::to_string(relay.port())});
  smtp_transport t(host_);
  const auto results = run(t, request({"a@example.com", "b@example.com", "c@example.com"}));
  ASSERT_EQ(results.size(), 3u);
  for (const auto& r : results) {
    EXPECT_EQ(r.reply.code, 250) << r.reply.text;
    EXPECT_EQ(r.remote_id, "FAKE1234");
  }
  const auto tx = relay.transactions();
  ASSERT_EQ(tx.size(), 1u);
  EXPECT_EQ(tx[0].mail, "MAIL FROM:<shop@example.com> SIZE=32");
  EXPECT_EQ(tx[0].rcpts.size(), 3u);
  EXPECT_EQ(tx[0].data, "Subject: hi\r\n\r\n..dot line\r\nbody\r\n") << "dot-stuffed on the wire";
  EXPECT_TRUE(relay.pipelined());
}

TEST_F(smtp_transport_test, reuses_the_connection_with_rset_and_splits_beyond_max_recipients) {
  fake_relay relay;
  relays({"127.0.0.1:" + std::to_string(relay.port())});
  integer("max_recipients", 2);
  integer("max_connections", 1);
  smtp_transport t(host_);
  auto results = run(t, request({"a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com"}));
  ASSERT_EQ(results.size(), 5u);
  for (const auto& r : results) EXPECT_EQ(r.reply.code, 250) << r.reply.text;
  results = run(t, request({"f@example.com"}));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 250);
  const auto tx = relay.transactions();
  ASSERT_EQ(tx.size(), 4u);
  EXPECT_EQ(tx[0].rcpts.size(), 2u);
  EXPECT_EQ(tx[2].rcpts.size(), 1u);
  EXPECT_EQ(relay.connections(), 1);
  const auto commands = relay.commands();
  EXPECT_EQ(std::count(commands.begin(), commands.end(), "RSET"), 3) << "an RSET before each reused transaction";
}

TEST_F(smtp_transport_test, closes_an_idle_connection_with_quit_after_idle_timeout) {
  fake_relay relay;
  relays({"127.0.0.1:" + std::to_string(relay.port())});
  string("idle_timeout", "300ms");
  smtp_transport t(host_);
  ASSERT_EQ(run(t, request({"a@example.com"}))[0].reply.code, 250);
  auto commands = relay.commands();
  EXPECT_EQ(commands.back(), "DATA") << "kept open for the next message";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (relay.commands().back() != "QUIT" && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(relay.commands().back(), "QUIT");
  // The next message opens a new connection.
  ASSERT_EQ(run(t, request({"b@example.com"}))[0].reply.code, 250);
  EXPECT_EQ(relay.connections(), 2);
}

TEST_F(smtp_transport_test, keeps_to_max_connections_per_relay) {
  fake_relay relay;
  relays({"127.0.0.1:" + std::to_string(relay.port())});
  integer("max_connections", 2);
  smtp_transport t(host_);
  std::vector<std::future<std::vector<postern::recipient_result>>> pending;
  for (int i = 0; i < 12; ++i) {
    auto promise = std::make_shared<std::promise<std::vector<postern::recipient_result>>>();
    pending.push_back(promise->get_future());
    t.deliver(request({"r" + std::to_string(i) + "@example.com"}),
              [promise](std::vector<postern::recipient_result> r) { promise->set_value(std::move(r)); });
  }
  for (auto& f : pending) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    EXPECT_EQ(f.get().at(0).reply.code, 250);
  }
  EXPECT_LE(relay.connections(), 2);
  EXPECT_EQ(relay.transactions().size(), 12u);
}

TEST_F(smtp_transport_test, maps_replies_per_recipient) {
  fake_relay relay;
  relay.rcpt_replies["bad@example.com"] = "550 5.1.1 <bad@example.com>: Recipient address rejected: unknown";
  relay.rcpt_replies["later@example.com"] = "451 4.7.1 <later@example.com>: greylisted";
  relays({"127.0.0.1:" + std::to_string(relay.port())});
  smtp_transport t(host_);
  const auto r = by_index(run(t, request({"bad@example.com", "later@example.com", "good@example.com"})));
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r.at(0).code, 550);
  EXPECT_EQ(r.at(0).enhanced, "5.1.1");
  EXPECT_EQ(r.at(0).text, "<bad@example.com>: Recipient address rejected: unknown");
  EXPECT_EQ(r.at(1).code, 451);
  EXPECT_EQ(r.at(1).enhanced, "4.7.1");
  EXPECT_EQ(r.at(2).code, 250);
  EXPECT_EQ(r.at(2).text, "Ok: queued as FAKE1234");
}

TEST_F(smtp_transport_test, a_refused_mail_affects_every_recipient) {
  fake_relay relay;
  relay.mail_reply = "553 5.7.1 <shop@example.com>: Sender address rejected";
  relays({"127.0.0.1:" + std::to_string(relay.port())});
  smtp_transport t(host_);
  for (const auto& [index, reply] : by_index(run(t, request({"a@example.com", "b@example.com"})))) {
    EXPECT_EQ(reply.code, 553) << index;
    EXPECT_EQ(reply.enhanced, "5.7.1");
  }
}

TEST_F(smtp_transport_test, a_connection_lost_after_data_defers_and_never_claims_delivery) {
  fake_relay relay;
  relay.drop_after_data = true;
  relay.rcpt_replies["bad@example.com"] = "550 5.1.1 unknown";
  relays({"127.0.0.1:" + std::to_string(relay.port())});
  smtp_transport t(host_);
  const auto r = by_index(run(t, request({"a@example.com", "bad@example.com"})));
  EXPECT_EQ(r.at(0).code, 451);
  EXPECT_EQ(r.at(0).enhanced, "4.4.2");
  EXPECT_NE(r.at(0).text.find("may or may not have taken the message"), std::string::npos) << r.at(0).text;
  EXPECT_EQ(r.at(1).code, 550) << "a refused recipient keeps its own reply";
}

TEST_F(smtp_transport_test, a_reused_connection_the_relay_closed_is_replaced_without_a_failure) {
  fake_relay relay;
  relay.close_after_transaction = true;
  relays({"127.0.0.1:" + std::to_string(relay.port())});
  smtp_transport t(host_);
  for (int i = 0; i < 3; ++i) {
    const auto results = run(t, request({"a@example.com"}));
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].reply.code, 250) << results[0].reply.text << "\n" << log();
  }
  EXPECT_EQ(relay.transactions().size(), 3u);
  EXPECT_EQ(relay.connections(), 3);
}

TEST_F(smtp_transport_test, fails_over_to_the_next_relay) {
  fake_relay relay;
  relays({"127.0.0.1:" + std::to_string(closed_port()), "127.0.0.1:" + std::to_string(relay.port())});
  smtp_transport t(host_);
  auto results = run(t, request({"a@example.com"}));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 250) << results[0].reply.text;
  EXPECT_EQ(relay.transactions().size(), 1u);
  // The dead relay is skipped for a while rather than tried for every message.
  results = run(t, request({"b@example.com"}));
  EXPECT_EQ(results[0].reply.code, 250);
  EXPECT_NE(log().find("Connection refused"), std::string::npos) << log();
}

TEST_F(smtp_transport_test, no_relay_reachable_defers_with_every_reason) {
  const auto a = closed_port(), b = closed_port();
  relays({"127.0.0.1:" + std::to_string(a), "127.0.0.1:" + std::to_string(b)});
  smtp_transport t(host_);
  const auto results = run(t, request({"a@example.com"}));
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 451);
  EXPECT_EQ(results[0].reply.enhanced, "4.4.1");
  EXPECT_NE(results[0].reply.text.find("relay 127.0.0.1:" + std::to_string(a) + ": cannot connect"), std::string::npos)
      << results[0].reply.text;
  EXPECT_NE(results[0].reply.text.find("relay 127.0.0.1:" + std::to_string(b) + ": cannot connect"), std::string::npos)
      << results[0].reply.text;
}

TEST_F(smtp_transport_test, tls_required_without_starttls_defers) {
  fake_relay relay;
  relays({"127.0.0.1:" + std::to_string(relay.port())});
  string("tls", "required");
  smtp_transport t(host_);
  const auto p = t.probe();
  EXPECT_TRUE(p.available) << "it answers EHLO; the TLS problem is named, and deliveries defer with it";
  EXPECT_NE(p.reason.find("deliveries through it will be deferred"), std::string::npos) << p.reason;
  EXPECT_NE(p.reason.find("does not offer STARTTLS, and tls = \"required\""), std::string::npos) << p.reason;
  const auto results = run(t, request({"a@example.com"}));
  EXPECT_EQ(results[0].reply.code, 451);
  EXPECT_EQ(results[0].reply.enhanced, "4.7.4");
  EXPECT_TRUE(relay.transactions().empty());
}

TEST_F(smtp_transport_test, utf8_addresses_need_smtputf8) {
  fake_relay relay;
  relays({"127.0.0.1:" + std::to_string(relay.port())});
  smtp_transport t(host_);
  const auto r = by_index(run(t, request({"j\xc3\xb6rg@example.com", "ann@example.com"})));
  EXPECT_EQ(r.at(0).code, 550);
  EXPECT_EQ(r.at(0).enhanced, "5.6.7");
  EXPECT_NE(r.at(0).text.find("SMTPUTF8"), std::string::npos);
  EXPECT_EQ(r.at(1).code, 250);
}

TEST_F(smtp_transport_test, stop_answers_what_is_in_flight_and_later_calls) {
  // A relay that never answers the greeting: the attempt is in flight when stop() comes.
  asio::io_context io;
  tcp::acceptor silent(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  relays({"127.0.0.1:" + std::to_string(silent.local_endpoint().port())});
  smtp_transport t(host_);
  std::promise<std::vector<postern::recipient_result>> answered;
  auto future = answered.get_future();
  t.deliver(request({"a@example.com"}), [&](std::vector<postern::recipient_result> r) { answered.set_value(r); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto started = std::chrono::steady_clock::now();
  t.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(4));
  ASSERT_EQ(future.wait_for(std::chrono::seconds(1)), std::future_status::ready);
  const auto results = future.get();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].reply.code, 451);
  EXPECT_NE(results[0].reply.text.find("postern is stopping"), std::string::npos) << results[0].reply.text;

  const auto after = run(t, request({"b@example.com"}));
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].reply.code, 451);
  EXPECT_FALSE(t.probe().available);
  t.stop();  // idempotent
}

}  // namespace
}  // namespace postern::transports
