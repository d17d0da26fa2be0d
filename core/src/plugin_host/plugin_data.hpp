#pragma once

#include "campaign/campaign_store.hpp"

#include <postern/host.hpp>

#include <stdexcept>
#include <string>

namespace postern::plugin_host {

/// One plugin's `host::store()`: its keys in the campaign database's plugin_data table, apart
/// from every other plugin's. Without a database (one-shot commands such as `postern plugins`)
/// every call throws, naming the plugin.
class plugin_data final : public postern::plugin_store {
 public:
  plugin_data(std::string plugin, campaign::campaign_store* store) : plugin_(std::move(plugin)), store_(store) {}

  std::optional<std::string> get(std::string_view key) override { return db().data_get(plugin_, key); }
  void put(std::string_view key, std::string_view value) override { db().data_put(plugin_, key, value); }
  bool put_new(std::string_view key, std::string_view value) override { return db().data_put_new(plugin_, key, value); }
  std::optional<std::int64_t> add(std::string_view key, std::int64_t delta, std::int64_t ceiling) override {
    return db().data_add(plugin_, key, delta, ceiling);
  }
  void erase(std::string_view key) override { db().data_erase(plugin_, key); }

 private:
  campaign::campaign_store& db() const {
    if (!store_) throw std::runtime_error("plugin " + plugin_ + ": no data store in this command");
    return *store_;
  }

  std::string plugin_;
  campaign::campaign_store* store_;
};

}  // namespace postern::plugin_host
