#pragma once

#include "submission/service.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <memory>

namespace postern::submission {

/// Awaits a submission from a coroutine: the service calls back on the spool's thread; the
/// coroutine resumes on its own executor. Takes the request by reference and creates no
/// temporaries with destructors: GCC 12 can destroy such temporaries of a co_await
/// expression twice.
template <class Token>
auto async_submit(service& service, request& request, Token&& token) {
  namespace asio = boost::asio;
  return asio::async_initiate<Token, void(postern::submit_result)>(
      [&service, &request](auto handler) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        auto work = asio::prefer(asio::get_associated_executor(*shared), asio::execution::outstanding_work.tracked);
        service.submit(std::move(request), [shared, work](postern::submit_result r) {
          asio::post(work, [shared, r = std::move(r)]() mutable { (*shared)(std::move(r)); });
        });
      },
      token);
}

}  // namespace postern::submission
