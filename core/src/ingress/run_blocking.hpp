#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <memory>
#include <type_traits>

namespace postern::ingress {

/// Runs `f` on `pool` (work that blocks: SQLite queries and commits, password hashing) and
/// resumes the caller on its own executor with the result, so that I/O threads keep serving
/// other connections. Used by the SMTP and HTTP sessions alike.
/// `f` is moved from; pass a named object (GCC 12 may destroy temporaries of a co_await
/// expression twice).
template <class F, class Token>
auto run_blocking(boost::asio::thread_pool& pool, F& f, Token&& token) {
  namespace asio = boost::asio;
  using result = std::invoke_result_t<F&>;
  return asio::async_initiate<Token, void(result)>(
      [&pool, &f](auto handler) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        auto work = asio::prefer(asio::get_associated_executor(*shared), asio::execution::outstanding_work.tracked);
        asio::post(pool, [shared, work, fn = std::move(f)]() mutable {
          result r = fn();
          asio::post(work, [shared, r = std::move(r)]() mutable { (*shared)(std::move(r)); });
        });
      },
      token);
}

}  // namespace postern::ingress
