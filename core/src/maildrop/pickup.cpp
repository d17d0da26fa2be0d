#include "maildrop/pickup.hpp"

#include "logging/log.hpp"
#include "maildrop/maildrop.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace asio = boost::asio;

namespace postern::maildrop {

pickup::pickup(asio::io_context& io, std::filesystem::path dir, submission::service& submission,
               std::chrono::milliseconds interval)
    : strand_(asio::make_strand(io)),
      timer_(strand_),
      dir_(std::move(dir)),
      submission_(submission),
      interval_(interval),
      log_(logging::get("maildrop")) {}

void pickup::retry_later(const std::string& name) {
  retry_after_[name] = std::chrono::steady_clock::now() + std::chrono::seconds(30);
}

void pickup::set_aside(const std::filesystem::path& file, const std::string& subdir, const std::string& why) {
  const std::string name = file.filename().string();
  std::error_code ec;
  std::filesystem::create_directories(dir_ / subdir, ec);
  if (!ec) std::filesystem::rename(file, dir_ / subdir / name, ec);
  if (ec) {
    log_->error("maildrop file {}: {}; cannot move it to {}/: {}; next try in 30s", name, why, subdir, ec.message());
    retry_later(name);
    return;
  }
  log_->error("maildrop file {}: {}; moved to {}/", name, why, subdir);
}

void pickup::start() {
  std::filesystem::create_directories(dir_ / "new");
  std::filesystem::create_directories(dir_ / "tmp");
  asio::co_spawn(strand_, run(), asio::detached);
}

void pickup::stop() {
  asio::post(strand_, [this] {
    stopping_ = true;
    timer_.cancel();
  });
}

asio::awaitable<void> pickup::run() {
  while (!stopping_) {
    scan();
    timer_.expires_after(interval_);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

void pickup::scan() {
  const auto now = std::chrono::steady_clock::now();
  for (const auto& file : waiting(dir_)) {
    if (in_progress_.size() >= 256) break;  // bounded: the spool's batches take the rest next tick
    const std::string name = file.filename().string();
    if (in_progress_.count(name)) continue;
    if (auto it = retry_after_.find(name); it != retry_after_.end()) {
      if (now < it->second) continue;
      retry_after_.erase(it);
    }
    take(file);
  }
}

void pickup::take(const std::filesystem::path& file) {
  const std::string name = file.filename().string();
  std::string error;
  bool temporary = false;
  auto d = read(file, error, &temporary);
  if (!d && temporary) {
    log_->warn("maildrop file {}: {}; next try in 30s", name, error);
    retry_later(name);
    return;
  }
  if (!d) return set_aside(file, "corrupt", error);
  submission::request req;
  req.tenant = d->tenant;
  req.env.mail_from = d->mail_from;
  for (auto& r : d->recipients) req.env.recipients.push_back({0, std::move(r), "", d->notify});
  req.env.envid = d->envid;
  req.env.ret = d->ret == "full" ? postern::dsn_ret::full : d->ret == "hdrs" ? postern::dsn_ret::headers : postern::dsn_ret::unspecified;
  req.raw = std::move(d->raw);
  req.trace.protocol = "local";
  req.trace.local_user = d->user;
  req.source = "local";
  req.origin_key = "maildrop:" + name;
  in_progress_.insert(name);
  submission_.submit(std::move(req), [this, file, name](postern::submit_result r) {
    asio::post(strand_, [this, file, name, r = std::move(r)] {
      in_progress_.erase(name);
      if (r.accepted) {
        // The spool has it; if the file cannot go, the next hand-over is a no-op (origin key).
        std::error_code ec;
        if (!std::filesystem::remove(file, ec) && ec) retry_later(name);
        return;
      }
      if (r.reply.permanent()) {
        // Refused for good (a bad address the sendmail command could not see): keep the file
        // for the operator rather than dropping mail silently.
        set_aside(file, "rejected",
                  "refused: " + std::to_string(r.reply.code) + " " + r.reply.enhanced + " " + r.reply.text);
      } else {
        // Refused for now (spool full, a policy deferring): try again later, not every tick.
        retry_later(name);
        log_->warn("maildrop file {} not taken yet: {} {}; next try in 30s", name, r.reply.code, r.reply.text);
      }
    });
  });
}

}  // namespace postern::maildrop
