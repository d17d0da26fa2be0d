#include "cli/cli.hpp"
#include "cli/purge.hpp"

#include "maildrop/maildrop.hpp"
#include "spool/spool.hpp"
#include "submission/header_block.hpp"

#include <sysexits.h>

#include <ctime>
#include <iomanip>
#include <iostream>

namespace postern::cli {
namespace {

std::string local_time(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  localtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%a %b %d %H:%M:%S", &tm);
  return buffer;
}

std::string reply_text(const postern::smtp_reply& r) {
  if (!r.code) return "";
  return std::to_string(r.code) + (r.enhanced.empty() ? "" : " " + r.enhanced) + " " + r.text;
}

void print_maildrop_backlog(const config::settings& s) {
  const auto waiting = maildrop::waiting(s.maildrop_dir()).size();
  if (waiting) std::cout << "-- " << waiting << " message(s) in the maildrop, not yet taken by the server\n";
}

int list(spool::spool& spool, const config::settings& s) {
  const auto messages = spool.pending();
  if (messages.empty()) {
    std::cout << "Mail queue is empty\n";
    print_maildrop_backlog(s);
    return 0;
  }
  std::cout << "-Queue ID-------- --Size-- ----Arrival Time---- -Sender/Recipient-------\n";
  std::uint64_t bytes = 0;
  for (const auto& m : messages) {
    bytes += m.size;
    std::cout << m.msg->queue_id << (m.held ? '!' : ' ') << std::setw(8) << m.size << ' ' << std::setw(20)
              << local_time(m.msg->arrival) << "  " << (m.msg->env.mail_from.empty() ? "MAILER-DAEMON" : m.msg->env.mail_from)
              << '\n';
    for (const auto& r : m.recipients) {
      if (r.state >= spool::recipient_state::delivered) continue;
      if (r.last_reply.code) std::cout << std::string(50, ' ') << '(' << reply_text(r.last_reply) << ")\n";
      std::cout << std::string(50, ' ') << r.rcpt.address << '\n';
    }
    std::cout << '\n';
  }
  std::cout << "-- " << (bytes + 1023) / 1024 << " Kbytes in " << messages.size()
            << (messages.size() == 1 ? " Request.\n" : " Requests.\n");
  print_maildrop_backlog(s);
  return 0;
}

int show(spool::spool& spool, const std::string& id) {
  auto m = spool.load(id, true);
  if (!m) {
    std::cerr << "postern: no message " << id << " in the queue\n";
    return EX_NOINPUT;
  }
  const auto& msg = *m->msg;
  std::cout << "queue id:   " << msg.queue_id << (m->held ? " (held)" : "") << '\n'
            << "arrival:    " << local_time(msg.arrival) << '\n'
            << "tenant:     " << msg.tenant << '\n'
            << "source:     " << m->source << '\n'
            << "stream:     " << postern::to_string(msg.stream) << '\n'
            << "size:       " << m->size << '\n'
            << "sender:     <" << msg.env.mail_from << ">\n";
  if (!msg.campaign_id.empty()) std::cout << "campaign:   " << msg.campaign_id << '\n';
  std::cout << "recipients:\n";
  for (const auto& r : m->recipients) {
    std::cout << "  <" << r.rcpt.address << "> " << spool::to_string(r.state) << ", attempts " << r.attempts;
    if (r.state < spool::recipient_state::delivered) std::cout << ", next " << local_time(r.next_attempt);
    if (!r.transport.empty()) std::cout << ", via " << r.transport;
    if (r.last_reply.code) std::cout << ", last: " << reply_text(r.last_reply);
    std::cout << '\n';
  }
  std::cout << "events:\n";
  for (const auto& e : spool.events(id)) {
    std::cout << "  " << local_time(e.time) << ' ' << e.type;
    if (!e.recipient.empty()) std::cout << " <" << e.recipient << '>';
    if (!e.transport.empty()) std::cout << " via " << e.transport;
    if (e.reply.code) std::cout << ": " << reply_text(e.reply);
    std::cout << '\n';
  }
  if (msg.raw.empty()) {
    std::cout << "content:    no longer kept (every recipient reached a final state)\n";
  } else {
    std::cout << "headers:\n" << msg.raw.substr(0, submission::header_section_length(msg.raw));
  }
  return 0;
}

int act(std::size_t changed, const std::string& what, const std::string& id) {
  if (changed == 0 && !id.empty()) {
    std::cerr << "postern: " << what << ": no pending message " << id << " (or nothing to change)\n";
    return 1;
  }
  std::cout << what << ": " << changed << (what == "flush" ? " recipient(s)\n" : " message(s)\n");
  return 0;
}

int purge(spool::spool& spool, const config::settings& s) {
  campaign::campaign_store campaigns(s.server.data_dir / "campaigns.db");
  const std::atomic<bool> never{false};
  const auto counts = purge_old_mail(spool, campaigns, s, never);
  std::cout << "purge: dropped the content of " << counts.contents_dropped
            << " message(s) finished before spool.keep_content, deleted " << counts.messages_deleted
            << " message(s) finished before spool.keep_history\n";
  return 0;
}

}  // namespace

int queue_command(const config::settings& s, const std::string& action, const std::string& id) {
  spool::spool spool(spool::spool_options{s.spool.dir, s.spool.max_batch, nullptr, s.spool.keep_content});
  if (action == "list") return list(spool, s);
  if (action == "show") return show(spool, id);
  if (action == "flush") return act(spool.flush(id), action, id);
  if (action == "hold") return act(spool.hold(id), action, id);
  if (action == "release") return act(spool.release(id), action, id);
  if (action == "delete") return act(spool.remove(id), action, id);
  if (action == "purge") return purge(spool, s);
  return EX_USAGE;
}

}  // namespace postern::cli
